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
import signal
import struct
import sys
import zlib
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

import vgg16

# ---- defaults ----
ROOT = os.path.dirname(os.path.abspath(__file__))
IMAGES_DIR = os.path.join(ROOT, "My-Images")
OUT_DIR = os.path.join(ROOT, "report", "saliency")
BATCH_SIZE = 8          # images per forward/backward pass
TOP_K = 5               # predictions written to the CSV
LABELS = {"vanilla": "saliency max_c |dS_C/dI|"}  # the figures' column title per method
BOX_TOLERANCE = 15      # pointing game: a peak this many pixels (of the 224x224 input) outside the box still hits
CENTRE_PRIOR_SIGMA = 0.25  # the centre-prior baseline: a Gaussian of this std (a fraction of the side), centred
GRID_ROWS = 20          # images per grid page: grid.png, then grid-2.png ... (a 240-image grid would be 97 MB)
DRAFT_SIZE = 512        # big JPEGs are decoded at reduced scale, keeping both sides >= this (2x the 256 resize)
MAX_PIXELS = 2 * 89_478_485  # larger images are refused (PIL's decompression-bomb limit)
MAX_ASPECT = 20         # images longer than this many times their width (or wider) are refused
PRECISIONS = ("fp32", "tf32", "bf16")  # --precision: see set_precision
# how far maps of the faster precisions agree with fp32 maps, as measured on random VGG-16 weights (docs/speed.md)
MAP_AGREEMENT = {"tf32": "87.6% of the pixels within 5% of the map's maximum and Spearman's rho down to 0.90 "
                         "(NVIDIA H200)",
                 "bf16": "Spearman's rho 0.37-0.50 (NVIDIA H200) and 0.38 (an AVX-512 CPU)"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
# What PIL raises for damaged image data, beyond UnidentifiedImageError: OSError (truncated), SyntaxError (a broken
# PNG chunk), EOFError, struct.error and zlib.error from its plugins, ValueError. A programming error is not among them.
DAMAGED_IMAGE = (OSError, SyntaxError, EOFError, ValueError, struct.error, zlib.error)


def make_parser(description="Image-specific class saliency maps (Simonyan et al. 2014, sec. 3.1) from an "
                            "ImageNet VGG-16.", out_default="report/saliency/"):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--images", default=IMAGES_DIR, help="folder of images to explain, with boxes.csv if the objects' "
                                                        "boxes are known (default: My-Images/)")
    p.add_argument("--out", default=None, help=f"folder for the figures and predictions.csv (default: {out_default})")
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
                         "for convolutions and matrix products on NVIDIA GPUs from Ampere on (fp32 elsewhere); its maps "
                         f"are not fp32's: {MAP_AGREEMENT['tf32']}. bf16: bf16 autocast, faster on recent GPUs and "
                         "CPUs with bf16 units (AVX512-BF16, AMX), much slower on CPUs without them; its maps agree "
                         f"poorly with fp32's: {MAP_AGREEMENT['bf16']}. Measured on random weights (docs/speed.md). "
                         "The precision that ran goes to settings.json (default: fp32)").replace("%", "%%"))
    return p


def parse_args(argv=None, parser=None, default_out=OUT_DIR):
    p = parser or make_parser()
    args = p.parse_args(argv)
    args.out = args.out or default_out
    if args.batch_size < 1:
        p.error(f"--batch-size must be at least 1, got {args.batch_size}")
    return args


# ---- the method: steps 1-5 ----

def score_gradients(model, images, classes=None, precision="fp32"):
    """Steps 1-4. -> scores (N, C) float32, classes (N,), dS_C/dI (N, 3, H, W). The gradient goes to the pixels
    only: autograd skips the weight gradients, and the model's parameter .grad stay as they were."""
    x = images.detach().clone(memory_format=memory_format_of(model)).requires_grad_(True)
    with autocast(precision, x.device):
        scores = model(x)                           # 1. forward pass -> 2. class scores S (N, C), before the softmax
    if classes is None:
        classes = scores.detach().argmax(dim=1)     # C: each image's top-scoring class
    classes = torch.as_tensor(classes, dtype=torch.long, device=x.device).expand(len(x))
    one_hot = torch.zeros_like(scores).scatter_(1, classes[:, None], 1.0)   # 3. dS/dS_c: 1 for C, 0 elsewhere
    (grad,) = torch.autograd.grad(scores, x, grad_outputs=one_hot)         # 4. back to the pixels: w = dS_C/dI
    return scores.detach().float(), classes, grad.float()


def saliency_maps(model, images, classes=None, precision="fp32"):
    """Vanilla gradient saliency (Simonyan et al. 2014, sec. 3.1), batched.

    images: (N, 3, H, W) normalised batch; classes: None (top-scoring class per image), an int, or (N,) indices.
    Returns maps (N, H, W) >= 0, classes used (N,) long, scores (N, C) float32 (before the softmax).
    The model should be in eval mode (dropout off) and has no batch-norm, so each image's map depends on that
    image alone.
    """
    scores, classes, grad = score_gradients(model, images, classes, precision)
    return grad.abs().amax(dim=1), classes, scores  # 5. max_c |w(c, i, j)|: (N, 3, H, W) -> (N, H, W)


# ---- device and precision (copied whole in assignment_4a.py) ----

def resolve_device(name):
    if name != "auto":
        if not device_available(name):
            raise ValueError(f"--device {name}: not available on this machine; use --device auto or cpu")
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_available(name):
    d = torch.device(name)
    if d.type == "cuda":
        return torch.cuda.is_available() and (d.index or 0) < torch.cuda.device_count()
    if d.type == "mps":
        return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return True


def warn_if_slow_bf16(precision, device):
    """bf16 autocast on a CPU without bf16 units is emulated: measured 20x slower than fp32 (AMD EPYC, AVX2)."""
    if precision == "bf16" and device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        print("warning: this CPU has no bf16 units (AVX512-BF16 or AMX): bf16 runs much slower than fp32 here; "
              "use --precision fp32", file=sys.stderr)


def autocast(precision, device):
    """The one autocast context of this script: bf16 where --precision bf16, else a no-op."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def set_precision(precision):
    """--precision as PyTorch's switches: fp32 and bf16 run every fp32 convolution and matrix product in IEEE fp32,
    tf32 lets CUDA use TF32 (10-bit mantissa) for them. Set over whatever was there before: PyTorch's default lets
    cuDNN convolutions use TF32 on Ampere and newer GPUs, and a notebook may have switched matrix products too."""
    tf32 = precision == "tf32"
    b = torch.backends
    if hasattr(b, "fp32_precision"):  # PyTorch >= 2.9, where mixing in the older switches is an error
        b.fp32_precision = "ieee"
        for backend, op in (("cuda", "matmul"), ("cudnn", "conv"), ("cudnn", "rnn"), ("mkldnn", "matmul"),
                            ("mkldnn", "conv"), ("mkldnn", "rnn")):
            switch = getattr(getattr(b, backend, None), op, None)
            if switch is not None:  # TF32 is NVIDIA's: a CPU (mkldnn) stays IEEE
                switch.fp32_precision = "tf32" if tf32 and backend != "mkldnn" else "ieee"
    else:
        torch.set_float32_matmul_precision("high" if tf32 else "highest")
        b.cudnn.allow_tf32 = tf32


def precision_that_runs(precision, device):
    """The precision as this device runs it: tf32 is fp32 where there are no TF32 units (a CPU, Apple's GPU, an NVIDIA
    GPU older than Ampere)."""
    if precision == "tf32" and not (device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8):
        return "fp32"
    return precision


def apply_precision(precision, device):
    """--precision on this device: the switches set for what runs there, a note where that is not what was asked.
    -> the precision that runs, for the outputs to record."""
    ran = precision_that_runs(precision, device)
    if ran != precision:
        print(f"note: --precision {precision}: {device} has no TF32 units, so this runs in {ran}", file=sys.stderr)
    set_precision(ran)
    return ran


def stop_on_sigterm():
    """A kill (SIGTERM: a closed terminal, a cluster's time limit) stops the run as Ctrl-C does, so that what was
    finished is kept and said, instead of exit 143 without a word."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)


def check_requirements():
    """Stop with one sentence where an installed package is older than requirements.txt's bound (the Anaconda
    environment of earlier assignments, say), instead of failing later with a TypeError or AttributeError that says
    nothing about versions. A package that is not installed is left to its import."""
    from importlib import metadata
    path = os.path.join(ROOT, "requirements.txt")
    release = lambda v: tuple(int(p) for p in re.findall(r"\d+", v.split("+")[0])[:3]) + (0,) * 3  # noqa: E731
    for line in open(path, encoding="utf-8") if os.path.isfile(path) else ():
        m = re.match(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)", line)
        try:
            have = metadata.version(m.group(1)) if m else None
        except metadata.PackageNotFoundError:
            continue
        if have and release(have)[:3] < release(m.group(2))[:3]:
            sys.exit(f"error: {m.group(1)} {have} is older than this project needs ({m.group(1)}>={m.group(2)}): "
                     f"pip install -U \"{m.group(1)}>={m.group(2)}\" (or pip install -r {path})")


def memory_format_of(model):
    """channels_last if the model's 3x3 convolution weights are stored that way (main() does this), else the default:
    inputs are laid out like the weights, so no convolution converts them."""
    w = next((m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1), None)
    cl = w is not None and w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    return torch.channels_last if cl else torch.contiguous_format


# ---- inputs: the class, the images ----

def resolve_class(target, categories):
    """--class value -> class index. Accepts an index, an exact name, or a part of a name that names one class."""
    if target is None:
        return None
    if target.strip().lstrip("-").isdigit():
        idx = int(target)
        if not 0 <= idx < len(categories):
            raise ValueError(f"--class {idx} is out of range: class indices go from 0 to {len(categories) - 1}")
        return idx
    key = target.strip().lower()
    exact = [i for i, c in enumerate(categories) if c.lower() == key]
    if exact:
        return exact[0]
    partial = [i for i, c in enumerate(categories) if key in c.lower()]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        raise ValueError(f"--class '{target}' matches no class name of the model; give an index 0-{len(categories) - 1} "
                         f"or a name such as '{categories[min(281, len(categories) - 1)]}'")
    names = ", ".join(f"{i}: {categories[i]}" for i in partial[:8])
    raise ValueError(f"--class '{target}' matches {len(partial)} classes ({names}{', ...' if len(partial) > 8 else ''}); "
                     "give one of these indices or the full name")


def list_images(folder):
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"image folder {folder} does not exist: create it and put photographs in it, "
                                "or pass --images PATH")
    files, ignored = [], []
    for f in sorted(os.listdir(folder)):
        path = os.path.join(folder, f)
        # only regular files (or links to them): a folder or a pipe named x.jpg is ignored, never opened
        if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS and not f.startswith(".") and os.path.isfile(path):
            files.append(path)
        elif not f.startswith("."):
            ignored.append(f + ("/" if os.path.isdir(path) else ""))
    if ignored:
        print(f"note: ignored {len(ignored)} entr{'y' if len(ignored) == 1 else 'ies'} of {folder} that are not image "
              f"files ({', '.join(ignored[:5])}{', ...' if len(ignored) > 5 else ''}); sub-folders are not searched",
              file=sys.stderr)
    if not files:
        raise FileNotFoundError(f"no image files in {folder} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def open_rgb(path):
    """Open any image file as 8-bit RGB, upright. Raises ValueError with the reason if it cannot be used.
    (Copied, unchanged, in assignment_4a.py, assignment_4b.py, download_wikiart.py: one behaviour for alpha, 16-bit,
    palette and EXIF.)"""
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ValueError(f"{im.width}x{im.height} pixels is above the {MAX_PIXELS // 10**6}-megapixel limit")
            if max(im.size) > MAX_ASPECT * min(im.size):  # resized to 256 on its short side, a 1x20000 strip: 6 GB
                raise ValueError(f"{im.width}x{im.height} pixels: a strip, not a picture (sides more than "
                                 f"{MAX_ASPECT}:1)")
            im.draft("RGB", (DRAFT_SIZE, DRAFT_SIZE))  # JPEG: decode at 1/2..1/8 scale, both sides kept >= this
            im = ImageOps.exif_transpose(im)  # also loads the pixels, so truncation shows up here
            im.load()
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise ValueError(f"not a readable image ({e.__class__.__name__})") from None
    except DAMAGED_IMAGE as e:  # truncated or corrupt data
        raise ValueError(f"damaged image data ({e.__class__.__name__}: {e})") from None
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit / 32-bit grayscale: scale to 8 bits
        a = np.asarray(im, dtype=np.float32)
        # Pillow < 10.1 opens a 16-bit PNG as "I": values within 16 bits are read as 16-bit data
        sixteen = im.mode.startswith("I;16") or (im.mode == "I" and 0 <= a.min() and a.max() <= 65535)
        top = 65535.0 if sixteen else max(float(a.max()), 1.0)
        im = Image.fromarray(np.clip(a / top * 255.0, 0, 255).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")  # transparent pixels become white, not whatever colour hides under them
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return im.convert("RGB")  # also L, P, CMYK, YCbCr -> RGB


class Images(NamedTuple):
    files: list            # the usable files
    batch: torch.Tensor    # (N, 3, 224, 224) normalised, as the network sees them
    sizes: list            # (width, height) of each upright original, to map boxes through the preprocessing
    skipped: int           # unusable files


def load_images(files, preprocess):
    """-> Images. Unusable files are skipped with a warning."""
    kept, tensors, sizes = [], [], []
    for f in files:
        try:
            im = open_rgb(f)
            tensors.append(preprocess(im))
            kept.append(f)
            sizes.append(im.size)
        except ValueError as e:
            print(f"warning: skipping {f}: {e}", file=sys.stderr)
    if not tensors:
        raise ValueError(f"none of the files in {os.path.dirname(files[0])} could be read as an image")
    return Images(kept, torch.stack(tensors), sizes, len(files) - len(kept))


# ---- outputs: figures, predictions.csv, settings.json ----

def center_share(maps):
    """(N, H, W) -> (N,): the share of saliency mass in the central box (middle half of each side, 25% of the
    area). 0.25 for a map spread evenly; near 1 when the map sits on a centred object."""
    h, w = maps.shape[-2:]
    inner = maps[:, h // 4:h - h // 4, w // 4:w - w // 4].sum(dim=(1, 2))
    return inner / maps.sum(dim=(1, 2)).clamp(min=1e-30)


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


def box_in_crop(box, size, preprocess):
    """A box in the original's pixels -> the same box in the network's input, through the preprocessing's resize
    (shorter side to resize_size, as torchvision computes it) and centre crop. -> (x0, y0, x1, y1) clipped to the
    crop, and the share of the box's area that lies in it (0: the crop shows none of it)."""
    w, h = size
    short = preprocess.resize_size[0]
    rw, rh = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)  # torchvision's rounding
    crop = preprocess.crop_size[0]
    left, top = int(round((rw - crop) / 2.0)), int(round((rh - crop) / 2.0))
    x0, y0, x1, y1 = box[0] * rw / w - left, box[1] * rh / h - top, box[2] * rw / w - left, box[3] * rh / h - top
    clipped = (max(x0, 0), max(y0, 0), min(x1, crop), min(y1, crop))
    inside = max(clipped[2] - clipped[0], 0) * max(clipped[3] - clipped[1], 0)
    return clipped, inside / ((x1 - x0) * (y1 - y0))


def box_measures(smap, box, tolerance=BOX_TOLERANCE):
    """smap (H, W) >= 0, box (x0, y0, x1, y1) in its pixels. -> whether the map's maximum lies in the box or within
    `tolerance` pixels of it (the pointing game, Zhang et al. 2016), and the share of the map's mass in the box."""
    y, x = divmod(int(smap.argmax()), smap.shape[1])
    x0, y0, x1, y1 = box
    hit = x0 - tolerance <= x + 0.5 <= x1 + tolerance and y0 - tolerance <= y + 0.5 <= y1 + tolerance
    cols, rows = torch.arange(smap.shape[1]) + 0.5, torch.arange(smap.shape[0]) + 0.5  # pixel centres
    inside = ((rows >= y0) & (rows < y1))[:, None] & ((cols >= x0) & (cols < x1))[None, :]
    return hit, float(smap[inside].sum() / smap.sum().clamp(min=1e-30))


def centre_prior(h, w, sigma=CENTRE_PRIOR_SIGMA):
    """The baseline that knows nothing of the image: a Gaussian at the centre, std sigma x the side. (H, W)."""
    ys, xs = (torch.arange(h) + 0.5 - h / 2) / (sigma * h), (torch.arange(w) + 0.5 - w / 2) / (sigma * w)
    return torch.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2))


def box_columns(images, maps, boxes, preprocess):
    """predictions.csv's box columns for every image: the object, its box in the crop, the box's share of the crop
    (what a uniform map puts in it), and for each method's map and for the centre prior: the pointing game's hit and
    the share of the map's mass in the box. Empty for an image without a box; 'outside the crop' for a box the crop
    does not show."""
    cols = {k: [] for k in ["object", "box_in_crop", "box_share_of_crop"] + [f"{k}_{m}" for m in list(maps) +
                                                                               ["centre_prior"] for k in ("hit", "box_mass")]}
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


def draw_row(axes, crop, maps, title, labels, overlaid=()):
    """The input crop, then each method's map (the ones in `overlaid` over the crop); one method alone also gets
    an overlay."""
    axes[0].imshow(crop)
    axes[0].set_title(title, fontsize=9)
    for ax, (name, smap) in zip(axes[1:], maps.items()):
        m = smap / max(float(smap.max()), 1e-12)  # scale each map to [0, 1] for display
        if name in overlaid:
            ax.imshow(crop)
        ax.imshow(m, cmap="jet" if name in overlaid else "gray", alpha=0.5 if name in overlaid else None)
        ax.set_title(labels[name], fontsize=9)
    if len(maps) == 1:
        axes[2].imshow(crop)
        axes[2].imshow(m, cmap="jet", alpha=0.5)
        axes[2].set_title("overlay", fontsize=9)
    for a in axes:
        a.axis("off")


def save_figures(out_dir, files, crops, maps, titles, labels=LABELS, overlaid=()):
    """5. rendered. maps: {method: (N, H, W) array}. One figure per image, and grid pages with one row per image."""
    plt = pyplot()
    cols = 1 + len(maps) + (len(maps) == 1)
    rows = [{name: m[i] for name, m in maps.items()} for i in range(len(files))]
    for stem, crop, row, t in zip(figure_names(files), crops, rows, titles):
        fig, axes = plt.subplots(1, cols, figsize=(3.3 * cols, 3.6))
        draw_row(axes, crop, row, t, labels, overlaid)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, stem + "_saliency.png"), dpi=110)
        plt.close(fig)
    for old in os.listdir(out_dir):  # pages of an earlier, longer run
        if re.fullmatch(r"grid-\d+\.png", old):
            os.remove(os.path.join(out_dir, old))
    for page, first in enumerate(range(0, len(files), GRID_ROWS)):
        n = min(GRID_ROWS, len(files) - first)
        fig, axes = plt.subplots(n, cols, figsize=(3 * cols, 3.1 * n), squeeze=False)
        for ax_row, crop, row, t in zip(axes, crops[first:], rows[first:], titles[first:]):
            draw_row(ax_row, crop, row, t, labels, overlaid)
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


def write_predictions(path, files, probs, classes, categories, maps, extra=None, k=TOP_K):
    """One row per image: the class explained, the top-k predictions, each method's centre share, and any extra
    per-image columns ({name: [value per image]})."""
    extra = extra or {}
    k = min(k, probs.shape[1])  # a painting-style model may have fewer than 5 classes
    top_p, top_i = probs.topk(k, dim=1)
    centre = {name: center_share(m).tolist() for name, m in maps.items()}
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as fh:  # caf\xe9.jpg stays legible
        w = csv.writer(fh)
        w.writerow(["file", "class_used", "class_used_name", "class_used_prob"]
                   + [c for r in range(1, k + 1) for c in (f"top{r}", f"top{r}_name", f"top{r}_prob")]
                   + [f"center_share_{name}" for name in maps] + list(extra))
        for i, (f, p, c, ti, tp) in enumerate(zip(files, probs, classes.tolist(), top_i.tolist(), top_p.tolist())):
            row = [printable(os.path.basename(f)), c, categories[c], f"{p[c]:.6f}"]
            for j, q in zip(ti, tp):
                row += [j, categories[j], f"{q:.6f}"]
            w.writerow(row + [f"{centre[name][i]:.4f}" for name in maps] + [v[i] for v in extra.values()])


def write_settings(path, args, methods, n_images, skipped, model="VGG-16 (ImageNet)", **extra):
    """What produced the outputs in this folder, for the report to describe them as they were made."""
    with open(path, "w") as fh:
        json.dump({"model": model, "methods": methods, "class": args.target,
                   "precision": getattr(args, "precision_ran", args.precision),
                   "images": n_images, "skipped": skipped, **extra}, fh, indent=2)


def write_outputs(args, images, preprocess, maps, classes, probs, categories, titles):
    """The figures, predictions.csv (with the box measures where boxes.csv has the image) and settings.json."""
    save_figures(args.out, images.files, [denormalise(x, preprocess) for x in images.batch], {"vanilla": maps.numpy()},
                 titles)
    write_predictions(os.path.join(args.out, "predictions.csv"), images.files, probs, classes, categories,
                      {"vanilla": maps}, extra=box_columns(images, {"vanilla": maps}, read_boxes(args.images), preprocess))
    write_settings(os.path.join(args.out, "settings.json"), args, ["vanilla"], len(images.files), images.skipped)
    print_written(args.out, len(images.files), images.skipped)


def print_written(out_dir, n, skipped):
    pages = -(-n // GRID_ROWS)
    print(f"wrote {n} figures, grid.png" + (f" (and grid-2.png ... grid-{pages}.png, {GRID_ROWS} images a page)"
                                            if pages > 1 else "") + f" and predictions.csv to {out_dir}"
          + (f"; skipped {skipped} unusable file(s)" if skipped else ""))


# ---- the script ----

def prepare_out(folder):
    if os.path.exists(folder) and not os.path.isdir(folder):  # before any map is computed
        raise ValueError(f"--out {folder} is a file, not a folder: give a folder for the figures")
    os.makedirs(folder, exist_ok=True)


def load_vgg16(args):
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
        images = load_images(list_images(args.images), preprocess)
        model, device = load_vgg16(args)
    except (ValueError, FileNotFoundError, vgg16.WeightsUnavailable, OSError) as e:
        sys.exit(f"error: {e}")
    maps, classes, probs, interrupted = compute_maps(model, images.batch, target, args, device)
    if interrupted:  # what finished is written: the images of the finished batches
        images = Images(images.files[:len(maps)], images.batch[:len(maps)], images.sizes[:len(maps)], images.skipped)
    titles = print_predictions(images.files, classes, probs, categories)
    write_outputs(args, images, preprocess, maps, classes, probs, categories, titles)
    if interrupted:
        sys.exit(f"interrupted: the {len(maps)} images of the finished batches are written to {args.out}; run the same "
                 "command again for all of them")


if __name__ == "__main__":
    main()
