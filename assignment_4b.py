"""Part 2: image-specific class saliency maps from a pretrained VGG-16.

Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks", ICLR workshop 2014, section 3.1.
For every image in My-Images/ (the comments "# 1." ... "# 5." mark the lines that do each step):
  1. forward pass through VGG-16;
  2. class scores S (un-normalised, before the softmax);
  3. a one-hot derivative at the score layer: dS/dS_c = 1 for class C, 0 elsewhere
     (C = the top-scoring class, or the class given with --class);
  4. back-propagate it to the input pixels: w = dS_C / dI;
  5. saliency M(i, j) = max over the 3 colour channels of |w(c, i, j)|, rendered.

    python assignment_4b.py                            # My-Images/ -> report/saliency/
    python assignment_4b.py --class "tiger cat"       # the map for one named class (or an index: --class 282)
    python assignment_4b.py --images photos/ --out out/ --precision bf16 --weights vgg16-397923af.pth

Writes, into --out: <image>_saliency.png per image (input crop, map, map over the crop), grid.png (all images),
predictions.csv (per image: the class explained, the top-5 labels and probabilities, the map's centre share, and
where My-Images/boxes.csv gives the object's box: whether the map's peak falls in it and the share of the map's mass
inside it, beside what a uniform map and a centre prior give), settings.json (what produced them, for the report).

Beyond the sheet: saliency_extras.py (SmoothGrad, Integrated Gradients, Grad-CAM, the class model, localisation,
sanity checks, a fine-tuned painting model) imports this script and writes the same files.
"""
import argparse
import csv
import json
import os
import re
import sys
from typing import NamedTuple

import torch

import vgg16
from vgg16 import (IMAGE_EXTENSIONS, MAP_AGREEMENT, PRECISIONS, RunError, apply_precision, autocast,
                   box_in_crop, box_measures, centre_prior, centre_share, check_requirements, crop_boxes,
                   memory_format_of, open_rgb, resolve_class, resolve_device, stop_on_sigterm, warn_if_slow_bf16)

# ---- defaults ----
ROOT = os.path.dirname(os.path.abspath(__file__))
IMAGES_DIR = os.path.join(ROOT, "My-Images")
OUT_DIR = os.path.join(ROOT, "report", "saliency")
BATCH_SIZE = 8          # images per forward/backward pass
TOP_K = 5               # predictions written to the CSV
MAP_TITLE = "saliency max_c |dS_C/dI|"  # the figures' title above the map
GRID_ROWS = 4           # images per grid page (grid.png, grid-2.png ...): a page prints whole on an A4 page


def make_parser():
    p = argparse.ArgumentParser(description="Image-specific class saliency maps (Simonyan et al. 2014, sec. 3.1) "
                                            "from an ImageNet VGG-16.")
    p.add_argument("--images", default=IMAGES_DIR, help="folder of images to explain, with boxes.csv if the objects' "
                                                        "boxes are known (default: My-Images/)")
    p.add_argument("--out", default=OUT_DIR, help="folder for the figures and predictions.csv (default: "
                                                  "report/saliency/)")
    p.add_argument("--class", dest="target", default=None,
                   help="class C to explain for every image: an index (0-999) or a class name ('tabby', 'tiger cat'; "
                        "a unique part of a name also works) (default: each image's top-scoring class)")
    p.add_argument("--weights", default=None,
                   help="local VGG-16 state dict (.pth) (default: torchvision's ImageNet weights, downloaded once "
                        "into " + vgg16.default_checkpoint_path() + ")")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"images per forward/backward pass (default: "
                                                                       f"{BATCH_SIZE})")
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps "
                                                    "(default: auto)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help=("fp32: IEEE single precision on every device (TF32 switched off). tf32: TF32 tensor cores "
                         "for convolutions and matrix products on NVIDIA GPUs from Ampere on (fp32 elsewhere); its "
                         f"maps are not fp32's: {MAP_AGREEMENT['tf32']}. bf16: bf16 autocast, faster on recent GPUs "
                         "and CPUs with bf16 units (AVX512-BF16, AMX), much slower on CPUs without them; its maps "
                         f"agree poorly with fp32's: {MAP_AGREEMENT['bf16']}. Measured on random weights "
                         "(docs/speed.md). "
                         "The precision that ran goes to settings.json (default: fp32)").replace("%", "%%"))
    return p


def parse_args(argv=None):
    p = make_parser()
    args = p.parse_args(argv)
    if args.batch_size < 1:
        p.error(f"--batch-size must be at least 1, got {args.batch_size}")
    return args


# ---- the method: steps 1-5 ----

def score_gradients(model, images, classes=None, precision="fp32"):
    """Steps 1-4. -> scores (N, C) float32, classes (N,), dS_C/dI (N, 3, H, W). The gradient goes to the pixels
    only: autograd skips the weight gradients, and the model's parameter .grad stay as they were."""
    # BEGIN SOLUTION: Part 2, steps 1-4: a forward pass of images (as a leaf that requires grad) through model, its
    #   class scores S (N, C), a one-hot derivative dS/dS_c (1 for each image's class C, its top-scoring class when
    #   classes is None), back-propagated to the pixels; return scores, classes (N,) and dS_C/dI (N, 3, H, W)
    x = images.detach().clone(memory_format=memory_format_of(model)).requires_grad_(True)
    with autocast(precision, x.device):
        scores = model(x)                           # 1. forward pass -> 2. class scores S (N, C), before the softmax
    if classes is None:
        classes = scores.detach().argmax(dim=1)     # C: each image's top-scoring class
    classes = torch.as_tensor(classes, dtype=torch.long, device=x.device).expand(len(x))
    one_hot = torch.zeros_like(scores).scatter_(1, classes[:, None], 1.0)   # 3. dS/dS_c: 1 for C, 0 elsewhere
    (grad,) = torch.autograd.grad(scores, x, grad_outputs=one_hot)         # 4. back to the pixels: w = dS_C/dI
    return scores.detach().float(), classes, grad.float()
    # END SOLUTION


def saliency_maps(model, images, classes=None, precision="fp32"):
    """Vanilla gradient saliency (Simonyan et al. 2014, sec. 3.1), batched.

    images: (N, 3, H, W) normalised batch; classes: None (top-scoring class per image), an int, or (N,) indices.
    Returns maps (N, H, W) >= 0, classes used (N,) long, scores (N, C) float32 (before the softmax).
    The model should be in eval mode (dropout off) and has no batch-norm, so each image's map depends on that
    image alone.
    """
    scores, classes, grad = score_gradients(model, images, classes, precision)
    # BEGIN SOLUTION: Part 2, the map: return the maximum over the colour channels of the absolute gradient, (N, 3, H,
    #   W) -> (N, H, W), then classes and scores
    return grad.abs().amax(dim=1), classes, scores  # 5. max_c |w(c, i, j)|: (N, 3, H, W) -> (N, H, W)
    # END SOLUTION


# ---- inputs: the images ----

def is_image_file(folder, name):
    """Whether folder/name is an image this script maps: an image extension, not hidden, a regular file (or a link to
    one): a folder or a pipe named x.jpg is never opened. The report applies the same rule to the folder."""
    return (os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS and not name.startswith(".")
            and os.path.isfile(os.path.join(folder, name)))


def list_images(folder):
    if not os.path.isdir(folder):
        raise RunError(f"image folder {folder} does not exist: create it and put photographs in it, or pass "
                       "--images PATH")
    files, ignored = [], []
    for f in sorted(os.listdir(folder)):
        path = os.path.join(folder, f)
        if is_image_file(folder, f):
            files.append(path)
        elif not f.startswith("."):
            ignored.append(f + ("/" if os.path.isdir(path) else ""))
    if ignored:
        print(f"note: ignored {len(ignored)} entr{'y' if len(ignored) == 1 else 'ies'} of {folder} that are not image "
              f"files ({', '.join(ignored[:5])}{', ...' if len(ignored) > 5 else ''}); sub-folders are not searched",
              file=sys.stderr)
    if not files:
        raise RunError(f"no image files in {folder} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


class Images(NamedTuple):
    files: list            # the usable files
    inputs: torch.Tensor   # (N, 3, 224, 224) normalised, as the network sees them
    sizes: list            # (width, height) of each upright original, to map boxes through the preprocessing
    skipped: int           # unusable files
    skipped_files: tuple = ()  # their names, for settings.json and the report


def load_images(files, preprocess):
    """-> Images. Unusable files are skipped with a warning."""
    kept, tensors, sizes, skipped = [], [], [], []
    for f in files:
        try:
            im = open_rgb(f)
            tensors.append(preprocess(im))
            kept.append(f)
            sizes.append(im.size)
        except ValueError as e:
            print(f"warning: skipping {f}: {e}", file=sys.stderr)
            skipped.append(os.path.basename(f))
    if not tensors:
        raise RunError(f"none of the files in {os.path.dirname(files[0])} could be read as an image")
    return Images(kept, torch.stack(tensors), sizes, len(skipped), tuple(skipped))


# ---- outputs: figures, predictions.csv, settings.json ----

def read_boxes(folder):
    """boxes.csv beside the images: file, x0, y0, x1, y1 (pixels of the upright original, x1 and y1 exclusive),
    object. -> {file name: ((x0, y0, x1, y1), object)}; a row that cannot be used is a warning."""
    path = os.path.join(folder, "boxes.csv")
    if not os.path.isfile(path):
        return {}
    boxes = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for line, r in enumerate(csv.DictReader(fh), start=2):
            try:
                box = tuple(float(r[k]) for k in ("x0", "y0", "x1", "y1"))
                if not (box[0] < box[2] and box[1] < box[3]):
                    raise ValueError("x0 < x1 and y0 < y1 are needed")
                boxes[r["file"]] = box, (r.get("object") or "the object").strip()
            except (KeyError, TypeError, ValueError) as e:
                print(f"warning: {path} line {line}: not a box ({e}); give file,x0,y0,x1,y1,object", file=sys.stderr)
    return boxes


def box_columns(images, maps, boxes, preprocess):
    """predictions.csv's box columns for every image: the object, its box in the crop, the box's share of the crop
    (what a uniform map puts in it), and for each method's map and for the centre prior: the pointing game's hit and
    the share of the map's mass in the box. Empty for an image without a box; 'outside the crop' for a box the crop
    does not show."""
    measured = list(maps) + ["centre_prior"]
    cols = {k: [] for k in ["object", "box_in_crop", "box_share_of_crop"]
            + [f"{k}_{m}" for m in measured for k in ("hit", "box_mass")]}
    for i, (f, size) in enumerate(zip(images.files, images.sizes)):
        box, what = boxes.get(os.path.basename(f), (None, ""))
        if box is None:
            for k in cols:
                cols[k].append("")
            continue
        crop, seen = box_in_crop(box, size, preprocess)
        cols["object"].append(what)
        cols["box_in_crop"].append("outside the crop" if seen == 0 else " ".join(f"{v:.0f}" for v in crop))
        side = preprocess.crop_size[0]
        cols["box_share_of_crop"].append(f"{(crop[2] - crop[0]) * (crop[3] - crop[1]) / side ** 2:.4f}" if seen else "")
        for name, m in list(maps.items()) + [("centre_prior", centre_prior(side, side)[None].expand(len(images.files),
                                                                                                    -1, -1))]:
            hit, mass = box_measures(m[i], crop) if seen else (None, None)
            cols[f"hit_{name}"].append("" if hit is None else int(hit))
            cols[f"box_mass_{name}"].append("" if mass is None else f"{mass:.4f}")
    return cols


def denormalise(x, preprocess):
    """(3, H, W) normalised tensor -> (H, W, 3) float array in [0, 1], the crop the network saw."""
    mean = torch.tensor(preprocess.mean).view(3, 1, 1)
    std = torch.tensor(preprocess.std).view(3, 1, 1)
    return (x.cpu().float() * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no window)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def figure_names(files):
    """-> one output stem per file: its name without the extension, or with it where two files share a stem
    (a.jpg and a.png -> a_jpg, a_png), so that no figure overwrites another."""
    stems = [os.path.splitext(os.path.basename(f))[0] for f in files]
    return [stem if stems.count(stem) == 1 else f"{stem}_{os.path.splitext(f)[1].lstrip('.').lower()}"
            for f, stem in zip(files, stems)]


def draw_row(axes, crop, smap, title):
    """The input crop, the map, and the map over the crop."""
    m = smap / max(float(smap.max()), 1e-12)  # scaled to [0, 1] for display
    axes[0].imshow(crop)
    axes[1].imshow(m, cmap="gray")
    axes[2].imshow(crop)
    axes[2].imshow(m, cmap="jet", alpha=0.5)
    for ax, t in zip(axes, (title, MAP_TITLE, "overlay")):
        ax.set_title(t, fontsize=9)
        ax.axis("off")


def mark_peak_and_box(ax, smap, box):
    """On a map panel: the map's peak (a white +) and, where the image has one, its object's box in the crop (green),
    so that the pointing game's answer can be checked by eye. Pixel i spans [i, i + 1) in the box's coordinates,
    [i - 0.5, i + 0.5) in imshow's."""
    from matplotlib.patches import Rectangle
    y, x = divmod(int(smap.argmax()), smap.shape[1])
    ax.plot(x, y, marker="+", color="white", markersize=16, markeredgewidth=2.5)
    if box is not None:
        x0, y0, x1, y1 = box
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="lime", linewidth=2))


def save_figures(out_dir, files, crops, maps, titles, draw=draw_row, cols=3, boxes=None):
    """5. rendered: one figure per image, and grid pages with one row per image; each row is
    draw(its `cols` axes, crop, maps[i], title), headed by the file's name. Given boxes (per image its object's box
    in the crop, or None), the last panel also marks the map's peak and the box. Titles are sized to print at
    7.5 pt or more once a 3-panel grid page is scaled to the report's 160 mm."""
    plt = pyplot()
    size = min(12.0, 7.5 * 3 * cols / (160 / 25.4))
    marks = boxes if boxes is not None else [False] * len(files)  # False: nothing marked

    chars = int(3 * 72 / (0.6 * size))  # characters of a title line across its 3-inch panel

    def row(axes, f, crop, smap, t, box):  # a long file name wraps within its panel, after a _ - . or space if it can
        name = re.findall(rf".{{1,{chars}}}(?:[_\-. ]|$)|.{{1,{chars}}}", printable(os.path.basename(f)))
        draw(axes, crop, smap, "\n".join(name + [t]))
        for ax in axes:
            ax.title.set_fontsize(size)
        if box is not False:
            mark_peak_and_box(axes[-1], smap, box)
    for stem, f, crop, smap, t, box in zip(figure_names(files), files, crops, maps, titles, marks):
        fig, axes = plt.subplots(1, cols, figsize=(3.3 * cols, 3.9))
        row(axes, f, crop, smap, t, box)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, stem + "_saliency.png"), dpi=110)
        plt.close(fig)
    written = {stem + "_saliency.png" for stem in figure_names(files)}
    for old in os.listdir(out_dir):  # pages of an earlier, longer run; figures of images no longer mapped
        if re.fullmatch(r"grid-\d+\.png", old) or (old.endswith("_saliency.png") and old not in written):
            os.remove(os.path.join(out_dir, old))
    for page, first in enumerate(range(0, len(files), GRID_ROWS)):
        n = min(GRID_ROWS, len(files) - first)
        fig, axes = plt.subplots(n, cols, figsize=(3 * cols, 3.4 * n), squeeze=False)
        for ax_row, f, crop, smap, t, box in zip(axes, files[first:], crops[first:], maps[first:], titles[first:],
                                                 marks[first:]):
            row(ax_row, f, crop, smap, t, box)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "grid.png" if page == 0 else f"grid-{page + 1}.png"), dpi=90)
        plt.close(fig)


def print_predictions(files, classes, probs, categories, notes=None):
    """One line per image (plus notes[i] where given). -> the figure titles."""
    titles = []
    for n, (f, c, p) in enumerate(zip(files, classes.tolist(), probs)):
        top = int(p.argmax())
        print(f"{printable(os.path.basename(f))}: predicted '{categories[top]}' (p={p[top]:.3f}), "
              f"saliency for class {c} '{categories[c]}' (p={p[c]:.3f})" + (notes[n] if notes else ""))
        titles.append(f"{categories[c]} (p={p[c]:.2f})")
    return titles


def printable(name):
    """A file name as text every terminal and CSV reader takes: a byte that is not UTF-8 (an old archive's caf\xe9.jpg)
    is shown as \\xe9 instead of stopping the run."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def write_predictions(path, files, probs, classes, categories, columns, k=TOP_K):
    """One row per image: the class explained, the top-k predictions, then `columns` ({name: [value per image]})."""
    k = min(k, probs.shape[1])  # a painting-style model may have fewer than 5 classes
    top_p, top_i = probs.topk(k, dim=1)
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as fh:  # caf\xe9.jpg stays legible
        w = csv.writer(fh)
        w.writerow(["file", "class_used", "class_used_name", "class_used_prob"]
                   + [c for r in range(1, k + 1) for c in (f"top{r}", f"top{r}_name", f"top{r}_prob")] + list(columns))
        for i, (f, p, c, ti, tp) in enumerate(zip(files, probs, classes.tolist(), top_i.tolist(), top_p.tolist())):
            row = [printable(os.path.basename(f)), c, categories[c], f"{p[c]:.6f}"]
            for j, q in zip(ti, tp):
                row += [j, categories[j], f"{q:.6f}"]
            w.writerow(row + [v[i] for v in columns.values()])


def centre_columns(maps):
    """{method: maps (N, H, W)} -> predictions.csv's centre_share_<method> columns."""
    return {f"centre_share_{name}": [f"{v:.4f}" for v in centre_share(m).tolist()] for name, m in maps.items()}


def write_settings(path, args, methods, n_images, skipped, model="VGG-16 (ImageNet)", **extra):
    """What produced the outputs in this folder, for the report to describe them as they were made."""
    with open(path, "w") as fh:
        json.dump({"model": model, "methods": methods, "class": args.target,
                   "precision": getattr(args, "precision_ran", args.precision),
                   "images": n_images, "skipped": skipped, **extra}, fh, indent=2)


def write_outputs(args, images, preprocess, maps, classes, probs, categories, titles, listed=(), interrupted=False):
    """The figures, predictions.csv (with the box measures where boxes.csv has the image) and settings.json, which
    also records the images the folder held (listed), those skipped as unusable, and whether Ctrl-C cut the run
    short: the report checks the outputs against the folder as it is then."""
    by_method, boxes = {"vanilla": maps}, read_boxes(args.images)
    save_figures(args.out, images.files, [denormalise(x, preprocess) for x in images.inputs], maps.numpy(), titles,
                 boxes=crop_boxes(images, boxes, preprocess))
    write_predictions(os.path.join(args.out, "predictions.csv"), images.files, probs, classes, categories,
                      {**centre_columns(by_method), **box_columns(images, by_method, boxes, preprocess)})
    write_settings(os.path.join(args.out, "settings.json"), args, ["vanilla"], len(images.files), images.skipped,
                   listed=sorted(os.path.basename(f) for f in listed), skipped_files=list(images.skipped_files),
                   interrupted=interrupted)
    print_written(args.out, len(images.files), images.skipped)


def print_written(out_dir, n, skipped):
    pages = -(-n // GRID_ROWS)
    print(f"wrote {n} figures, grid.png" + (f" (and grid-2.png ... grid-{pages}.png, {GRID_ROWS} images a page)"
                                            if pages > 1 else "") + f" and predictions.csv to {out_dir}"
          + (f"; skipped {skipped} unusable file(s)" if skipped else ""))


# ---- the script ----

def prepare_out(folder):
    if os.path.exists(folder) and not os.path.isdir(folder):  # before any map is computed
        raise RunError(f"--out {folder} is a file, not a folder: give a folder for the figures")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:  # a read-only or shared drive
        raise RunError(f"cannot write in --out {folder} ({e.strerror}): give a folder you can write to") from None


def pretrained_vgg16(args):
    """-> VGG-16 with ImageNet weights on the device, channels_last, and the device."""
    return on_device(vgg16.load_vgg16(args.weights), args)


def on_device(model, args):
    """-> the model on --device in channels_last, and the device. channels_last: PyTorch's fast path for
    convolutions (saliency 1.35x here on a CPU); inputs follow the weights' layout."""
    device = resolve_device(args.device)
    warn_if_slow_bf16(args.precision, device)
    args.precision_ran = apply_precision(args.precision, device)
    return model.to(device, memory_format=torch.channels_last), device


def compute_maps(model, batch, target, args, device):
    """The paper's map for every image, batch by batch. -> maps (N, H, W), classes (N,), probabilities (N, C), and
    whether Ctrl-C (or a kill) stopped it: then the maps of the batches that finished, n <= N."""
    from tqdm import tqdm
    maps, classes, probs = [], [], []
    try:
        for start in tqdm(range(0, len(batch), args.batch_size), desc="saliency", unit="batch", file=sys.stderr):
            m, c, s = saliency_maps(model, batch[start:start + args.batch_size].to(device), target, args.precision)
            maps.append(m.cpu()), classes.append(c.cpu()), probs.append(s.softmax(dim=1).cpu())
    except KeyboardInterrupt:
        if not maps:
            sys.exit("\ninterrupted before the first batch finished: nothing to write")
        return torch.cat(maps), torch.cat(classes), torch.cat(probs), True
    return torch.cat(maps), torch.cat(classes), torch.cat(probs), False


def main(argv=None):
    args = parse_args(argv)
    check_requirements()
    stop_on_sigterm()
    categories = vgg16.WEIGHTS.meta["categories"]  # the 1000 ImageNet names and the preprocessing travel with
    preprocess = vgg16.WEIGHTS.transforms()        # the weights: resize 256, centre crop 224, ImageNet mean/std
    try:
        prepare_out(args.out)
        target = resolve_class(args.target, categories)
        listed = list_images(args.images)
        images = load_images(listed, preprocess)
        model, device = pretrained_vgg16(args)
    except RunError as e:  # the user's mistake, or the machine's state: one line; anything else is a bug
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:  # Ctrl-C while the images or the weights load: one line, not torch's traceback
        sys.exit("\ninterrupted while loading the images and the weights: no map was computed and nothing was "
                 "written; run the same command again")
    maps, classes, probs, interrupted = compute_maps(model, images.inputs, target, args, device)
    if interrupted:  # what finished is written: the images of the finished batches
        images = images._replace(files=images.files[:len(maps)], inputs=images.inputs[:len(maps)],
                                 sizes=images.sizes[:len(maps)])
    titles = print_predictions(images.files, classes, probs, categories)
    write_outputs(args, images, preprocess, maps, classes, probs, categories, titles, listed, interrupted)
    if interrupted:
        sys.exit(f"interrupted: the {len(maps)} images of the finished batches are written to {args.out}; run the same "
                 "command again for all of them")


if __name__ == "__main__":
    main()
