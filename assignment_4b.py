"""Part 2: image-specific class saliency maps from a pretrained VGG-16.

Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks", ICLR workshop 2014, section 3.1.
For every image in My-Images/:
  1. forward pass through VGG-16;
  2. class scores S (un-normalised, before the softmax);
  3. a one-hot derivative at the score layer: dS/dS_c = 1 for class C, 0 elsewhere
     (C = the top-scoring class, or the class given with --class);
  4. back-propagate it to the input pixels: w = dS_C / dI;
  5. saliency M(i, j) = max over the 3 colour channels of |w(c, i, j)|, rendered.

    python assignment_4b.py                            # My-Images/ -> report/saliency/
    python assignment_4b.py --class "tiger cat"       # the map for one named class (or an index: --class 282)
    python assignment_4b.py --images photos/ --out out/ --precision bf16 --weights vgg16-397923af.pth

Writes, into --out: <image>_saliency.png per image (input crop, map, map over the crop), grid.png
(all images), predictions.csv (top-5 labels and probabilities per image; with Integrated Gradients, each image's
completeness gap), settings.json (the model, methods and their settings, for the report).
"""
import argparse
import csv
import json
import math
import os
import re
import sys

import numpy as np
import torch
from torch import nn
from PIL import Image, ImageOps, UnidentifiedImageError

import vgg16

# ---- defaults ----
IMAGES_DIR = "My-Images"
OUT_DIR = os.path.join("report", "saliency")
PAINTINGS_OUT_DIR = os.path.join("report", "saliency_paintings")  # the default with --checkpoint
BATCH_SIZE = 8          # images per forward/backward pass
TOP_K = 5               # predictions written to the CSV
METHODS = ["vanilla", "smoothgrad", "integrated-gradients", "gradcam"]
LABELS = {"vanilla": "saliency max_c |dS_C/dI|", "smoothgrad": "SmoothGrad", "integrated-gradients": "Integrated Gradients",
          "gradcam": "Grad-CAM (last conv block)"}  # the figures' column titles
SG_SAMPLES = 25         # SmoothGrad: noisy copies per image (cost: that many vanilla passes)
SG_NOISE = 0.15         # SmoothGrad: noise std as a fraction of the image's value range (Smilkov et al.: 0.1-0.2)
FG_QUANTILE = 0.95      # localisation: pixels above this saliency quantile seed the foreground colour model
BG_QUANTILE = 0.30      # localisation: pixels below this quantile seed the background colour model
DEL_STEPS = 16          # deletion / insertion: points on each curve after the start
CM_STEPS = 100         # class model visualisation: gradient-ascent steps
CM_LR = 1.0             # class model visualisation: step size on the (normalised) image
CM_L2 = 1e-3            # class model visualisation: weight of the L2 penalty lambda * ||I||^2
IG_STEPS = 32           # Integrated Gradients: points on the path from the baseline (cost: that many passes)
IG_GAP_WARN = 0.05      # Integrated Gradients: warn when the attributions' sum is this far off S(I) - S(baseline)
DRAFT_SIZE = 512        # big JPEGs are decoded at reduced scale, keeping both sides >= this (2x the 256 resize)
MAX_PIXELS = 2 * 89_478_485  # larger images are refused (PIL's decompression-bomb limit)
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
GRID_ROWS = 20          # images per grid page: grid.png, then grid-2.png, grid-3.png ... (a 240-image grid is 97 MB)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" to a flag's help, unless the help already says it or there is nothing to say."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Image-specific class saliency maps (Simonyan et al. 2014, sec. 3.1) "
                                "from an ImageNet VGG-16.", formatter_class=HelpFormatter)
    p.add_argument("--images", default=IMAGES_DIR, help="folder of images to explain")
    p.add_argument("--out", default=None,
                   help=f"folder for the figures and predictions.csv (default: {OUT_DIR}, or {PAINTINGS_OUT_DIR} "
                        "with --checkpoint)")
    p.add_argument("--class", dest="target", default=None,
                   help="class C to explain for every image: an ImageNet index (0-999) or a class name "
                        "(e.g. 'tabby' or 'tiger cat'; a unique part of a name also works); default: each image's top-scoring class")
    p.add_argument("--weights", default=None,
                   help="local VGG-16 state dict (.pth); default: torchvision's ImageNet weights, "
                        "downloaded once into " + vgg16.default_checkpoint_path())
    p.add_argument("--method", choices=METHODS + ["all"], default="vanilla",
                   help="vanilla: the paper's gradient map; smoothgrad: averaged over noisy copies; integrated-gradients: "
                        "gradients along a path from a baseline image; gradcam: class activation map of the last conv "
                        "block; all: the four side by side, one row per image")
    p.add_argument("--sg-samples", type=int, default=SG_SAMPLES,
                   help="SmoothGrad: noisy copies per image. The map is the mean over the copies of the paper's map "
                        "max_c |dS_C/dI| (Smilkov et al.'s definition, M(x) averaged over x + noise); Captum's "
                        "NoiseTunnel instead takes max_c of the averaged |g|, Smilkov's code averages signed gradients")
    p.add_argument("--sg-noise", type=float, default=SG_NOISE, help="SmoothGrad: noise std / the image's value range")
    p.add_argument("--ig-steps", type=int, default=IG_STEPS,
                   help="Integrated Gradients: steps along the path (right Riemann sum). Each image's completeness gap "
                        "|sum of attributions - (S_C(I) - S_C(baseline))| / |S_C(I) - S_C(baseline)| is printed and "
                        f"written to predictions.csv, with a warning above {IG_GAP_WARN:.0%}%")  # %% for argparse
    p.add_argument("--ig-baseline", choices=["black", "mean"], default="black",
                   help="Integrated Gradients: the image the path starts from (black, or the ImageNet mean colour)")
    p.add_argument("--checkpoint", default=None, metavar="RUN/best.pt",
                   help="explain a painting-style model fine-tuned by assignment_4a.py (runs/<run>/best.pt) instead of "
                        "VGG-16: its AlexNet, its style names, its preprocessing")
    p.add_argument("--localise", action="store_true",
                   help="also localise the object from the map (Simonyan et al. 2014, sec. 3.2: GrabCut seeded by the "
                        "95%% / 30%% saliency quantiles, the largest connected component's box); writes boxes.csv "
                        "and localisation.png")
    p.add_argument("--trust", action="store_true",
                   help="also test how far to trust each map: cascading model randomisation (Adebayo et al. 2018; "
                        "costs one map per weight layer, 16 for VGG-16) and deletion/insertion AUCs (Petsiuk et al. "
                        "2018); writes sanity.csv, sanity.png, deletion_insertion.csv")
    p.add_argument("--class-model", default=None, metavar="CLASS",
                   help="instead of explaining images: the image that maximises this class's score with an L2 "
                        "penalty (Simonyan et al. 2014, sec. 2), by gradient ascent from a zero image; a name or index")
    p.add_argument("--cm-steps", type=int, default=CM_STEPS, help="class model: gradient-ascent steps")
    p.add_argument("--cm-lr", type=float, default=CM_LR, help="class model: step size")
    p.add_argument("--cm-l2", type=float, default=CM_L2, help="class model: L2 penalty weight lambda")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="images per forward/backward pass")
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16 autocast: faster on recent GPUs and CPUs with bf16 units (AVX512-BF16, AMX), much "
                        "slower on CPUs without them; bench/bench_saliency.py measures how well its maps agree with fp32")
    args = p.parse_args(argv)
    args.out = args.out or (PAINTINGS_OUT_DIR if args.checkpoint else OUT_DIR)
    for flag in ("batch_size", "sg_samples", "ig_steps", "cm_steps"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    for flag in ("sg_noise", "cm_lr", "cm_l2"):
        value = getattr(args, flag)
        if not math.isfinite(value) or value < 0:
            p.error(f"--{flag.replace('_', '-')} must be a finite number >= 0, got {value}")
    return args


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


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no window): the one place this script imports it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def remove_last_fc_layers(model, n, num_classes):
    """Drop the last n FC layers (fc8, or fc7+fc8, with fc7's ReLU) and add one new FC layer: 4096 -> num_classes."""
    layers = list(model.classifier)  # Dropout, fc6, ReLU, Dropout, fc7, ReLU, fc8
    linear = [i for i, m in enumerate(layers) if isinstance(m, nn.Linear)]
    assert len(linear) == 3, "expected AlexNet's classifier with fc6, fc7, fc8"
    cut = linear[-1] if n == 1 else linear[-2]  # keep everything before the first removed FC layer
    kept = layers[:cut]  # --remove 2 keeps the dropout that fed fc7: it now feeds the new layer
    new = nn.Linear(layers[linear[-n - 1]].out_features, num_classes)  # 4096 inputs in both cases
    model.classifier = nn.Sequential(*kept, new)
    return model


def load_style_model(path):
    """An AlexNet fine-tuned by assignment_4a.py -> (model in eval mode, style names, preprocessing)."""
    from torchvision.models import AlexNet_Weights, alexnet
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--checkpoint {path} does not exist: give runs/<run>/best.pt from assignment_4a.py")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        classes, remove = list(ck["classes"]), int(ck["config"]["remove"])
    except Exception as e:
        raise ValueError(f"--checkpoint {path} is not a checkpoint of assignment_4a.py ({e.__class__.__name__})") from None
    model = remove_last_fc_layers(alexnet(weights=None), remove, len(classes))  # the same surgery as assignment_4a
    try:
        model.load_state_dict(ck["model"])
    except (RuntimeError, TypeError, AttributeError) as e:
        head = next((v.shape[0] for k, v in ck["model"].items() if k.endswith(".weight") and k.startswith(
            f"classifier.{len(model.classifier) - 1}.")), None) if isinstance(ck.get("model"), dict) else None
        why = (f"its new layer has {head} outputs but it lists {len(classes)} style names" if head is not None
               and head != len(classes) else str(e).splitlines()[0].rstrip(":"))
        raise ValueError(f"--checkpoint {path} does not fit a remove-{remove} AlexNet: {why}; use a best.pt that "
                         "assignment_4a.py wrote unchanged") from None
    return model.eval(), classes, AlexNet_Weights.IMAGENET1K_V1.transforms()


def resolve_class(target, categories):
    """--class value -> ImageNet index. Accepts an index, an exact name, or a word that names one class."""
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


def open_rgb(path):
    """Open any image file as 8-bit RGB, upright. Raises ValueError with the reason if it cannot be used.
    (Copied, unchanged, in assignment_4a.py, assignment_4b.py, download_wikiart.py: one behaviour for alpha, 16-bit,
    palette and EXIF.)"""
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ValueError(f"{im.width}x{im.height} pixels is above the {MAX_PIXELS // 10**6}-megapixel limit")
            im.draft("RGB", (DRAFT_SIZE, DRAFT_SIZE))  # JPEG: decode at 1/2..1/8 scale, both sides kept >= this
            im = ImageOps.exif_transpose(im)  # also loads the pixels, so truncation shows up here
            im.load()
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise ValueError(f"not a readable image ({e.__class__.__name__})") from None
    except OSError as e:  # truncated or corrupt data
        raise ValueError(f"damaged image data ({e})") from None
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit / 32-bit grayscale: scale to 8 bits
        a = np.asarray(im, dtype=np.float32)
        top = 65535.0 if im.mode.startswith("I;16") else max(float(a.max()), 1.0)
        im = Image.fromarray(np.clip(a / top * 255.0, 0, 255).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")  # transparent pixels become white, not whatever colour hides under them
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return im.convert("RGB")  # also L, P, CMYK, YCbCr -> RGB


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


def figure_names(files):
    """-> one output stem per file: its name without the extension, or with it where two files share a stem
    (a.jpg and a.png -> a_jpg, a_png), so that no figure overwrites another."""
    stems = [os.path.splitext(os.path.basename(f))[0] for f in files]
    return [stem if stems.count(stem) == 1 else f"{stem}_{os.path.splitext(f)[1].lstrip('.').lower()}"
            for f, stem in zip(files, stems)]


def load_images(files, preprocess):
    """-> kept file names, (N, 3, 224, 224) normalised batch, skipped count. Unusable files are skipped with a warning."""
    kept, tensors = [], []
    for f in files:
        try:
            tensors.append(preprocess(open_rgb(f)))
            kept.append(f)
        except ValueError as e:
            print(f"warning: skipping {f}: {e}", file=sys.stderr)
    return kept, (torch.stack(tensors) if tensors else None), len(files) - len(kept)


def memory_format_of(model):
    """channels_last if the model's 3x3 convolution weights are stored that way (main() does this), else the default:
    inputs are laid out like the weights, so no convolution converts them."""
    w = next((m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1), None)
    cl = w is not None and w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    return torch.channels_last if cl else torch.contiguous_format


def score_gradients(model, images, classes=None, precision="fp32"):
    """-> scores (N, C) float32, classes (N,), dS_C/dI (N, 3, H, W): one forward pass, then a one-hot derivative
    at the score layer (1 for class C, 0 elsewhere) back-propagated to the pixels only, so autograd skips the
    weight gradients and the model's parameter .grad stay as they were."""
    x = images.detach().clone(memory_format=memory_format_of(model)).requires_grad_(True)
    with autocast(precision, x.device):
        scores = model(x)                                       # (N, C) class scores S, before the softmax
    if classes is None:
        classes = scores.detach().argmax(dim=1)
    classes = torch.as_tensor(classes, dtype=torch.long, device=x.device).expand(len(x))
    one_hot = torch.zeros_like(scores).scatter_(1, classes[:, None], 1.0)
    (grad,) = torch.autograd.grad(scores, x, grad_outputs=one_hot)
    return scores.detach().float(), classes, grad.float()


def saliency_maps(model, images, classes=None, precision="fp32"):
    """Vanilla gradient saliency (Simonyan et al. 2014, sec. 3.1), batched.

    images: (N, 3, H, W) normalised batch; classes: None (top-scoring class per image), an int, or (N,) indices.
    Returns maps (N, H, W) >= 0, classes used (N,) long, scores (N, C) float32 (before the softmax).
    The model should be in eval mode (dropout off) and has no batch-norm, so each image's map depends on that
    image alone.
    """
    scores, classes, grad = score_gradients(model, images, classes, precision)
    return grad.abs().amax(dim=1), classes, scores                 # (N, 3, H, W) -> (N, H, W)


def _gradients_in_chunks(model, x, classes, precision, chunk):
    """dS_C/dI for many inputs (noisy copies, path points), `chunk` per forward/backward pass."""
    return torch.cat([score_gradients(model, x[i:i + chunk], classes[i:i + chunk], precision)[2]
                      for i in range(0, len(x), chunk)])


def smoothgrad(model, images, classes, samples=SG_SAMPLES, noise=SG_NOISE, precision="fp32", chunk=BATCH_SIZE, seed=0):
    """SmoothGrad (Smilkov et al. 2017): the vanilla map max_c |dS_C/dI| averaged over `samples` copies of each image
    with Gaussian noise of std noise x (max - min) of that image: the paper's M(x) = 1/n sum M(x + noise) with M the
    Simonyan map (Captum's NoiseTunnel averages |g| before the max over channels). noise=0 gives the vanilla map.
    -> (N, H, W)."""
    n, shape = len(images), images.shape[1:]
    spread = (images.flatten(1).amax(1) - images.flatten(1).amin(1)).view(n, 1, 1, 1, 1)
    eps = torch.randn((n, samples, *shape), generator=torch.Generator().manual_seed(seed)).to(images.device)
    noisy = (images[:, None] + noise * spread * eps).flatten(0, 1)              # (N * samples, 3, H, W)
    grads = _gradients_in_chunks(model, noisy, classes.repeat_interleave(samples), precision, chunk)
    return grads.abs().amax(dim=1).view(n, samples, *shape[1:]).mean(dim=1)


def integrated_gradients(model, images, classes, baseline, steps=IG_STEPS, precision="fp32", chunk=BATCH_SIZE):
    """Integrated Gradients (Sundararajan et al. 2017): (I - I0) x the mean gradient at `steps` points on the straight
    path from the baseline I0 to I (right Riemann sum). The attributions of an image add up to S_C(I) - S_C(I0),
    more exactly as steps grow. -> attributions (N, 3, H, W); their map is |.| max over channels."""
    n = len(images)
    baseline = baseline.expand_as(images)
    alphas = torch.arange(1, steps + 1, device=images.device, dtype=images.dtype).view(1, steps, 1, 1, 1) / steps
    path = (baseline[:, None] + alphas * (images - baseline)[:, None]).flatten(0, 1)  # (N * steps, 3, H, W)
    grads = _gradients_in_chunks(model, path, classes.repeat_interleave(steps), precision, chunk)
    return (images - baseline) * grads.view(n, steps, *images.shape[1:]).mean(dim=1)


@torch.no_grad()
def ig_completeness_gap(model, images, classes, baseline, attributions, precision="fp32"):
    """Integrated Gradients' completeness axiom: an image's attributions add up to S_C(I) - S_C(I0) as steps grow.
    -> the relative gap |sum(attributions) - (S_C(I) - S_C(I0))| / |S_C(I) - S_C(I0)| per image, (N,)."""
    n = len(images)
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        scores = model(torch.cat([images, baseline.expand_as(images)])).float()
    picked = scores.gather(1, torch.cat([classes, classes])[:, None])[:, 0]
    delta = picked[:n] - picked[n:]
    return ((attributions.flatten(1).sum(1) - delta).abs() / delta.abs().clamp(min=1e-12)).cpu()


def ig_steps_for(gap, steps, target=IG_GAP_WARN):
    """The --ig-steps that should bring a gap under target: a Riemann sum's error falls as 1/steps; a power of 2."""
    return 2 ** math.ceil(math.log2(max(steps * gap / target, steps + 1)))


def gradcam(model, images, classes, precision="fp32"):
    """Grad-CAM (Selvaraju et al. 2017) on the last convolutional block: the activations A (N, K, h, w) after the
    last conv + ReLU, weighted by the spatial mean of dS_C/dA, summed over K, ReLU, upsampled to (N, H, W)."""
    feats = model.features
    cut = max(i for i, m in enumerate(feats) if isinstance(m, torch.nn.Conv2d)) + 2  # through that conv's ReLU
    with torch.no_grad(), autocast(precision, images.device):
        acts = feats[:cut](images).float()
    acts.requires_grad_(True)
    with autocast(precision, images.device):
        scores = model.classifier(torch.flatten(model.avgpool(feats[cut:](acts)), 1))
    one_hot = torch.zeros_like(scores).scatter_(1, classes[:, None], 1.0)
    (d_acts,) = torch.autograd.grad(scores, acts, grad_outputs=one_hot)
    cam = torch.relu((d_acts.float().mean(dim=(2, 3), keepdim=True) * acts).sum(dim=1, keepdim=True))
    return torch.nn.functional.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0].detach()


def class_model(model, cls, size=224, steps=CM_STEPS, lr=CM_LR, l2=CM_L2, precision="fp32", device="cpu"):
    """Class model visualisation (Simonyan et al. 2014, sec. 2): argmax_I S_c(I) - l2 * ||I||^2 by gradient ascent
    from the zero image (the mean image, once normalised). -> the image (3, size, size) normalised, the objective
    at every step."""
    x = torch.zeros(1, 3, size, size, device=device, requires_grad=True)
    history = []
    for _ in range(steps):
        with autocast(precision, x.device):
            score = model(x)[0, cls].float()
        objective = score - l2 * (x * x).sum()
        (grad,) = torch.autograd.grad(objective, x)
        history.append(objective.item())
        with torch.no_grad():
            x += lr * grad
    return x.detach()[0], history


def class_model_pixels(image, preprocess):
    """(3, H, W) optimised image, in the network's normalised space -> (H, W, 3) in [0, 1] as the paper shows it:
    the mean image added back (x std + mean), clipped; colour balance and brightness are the network's own."""
    return denormalise(image, preprocess)


def save_class_model(path, image, title, preprocess):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.8))
    ax.imshow(class_model_pixels(image, preprocess))
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def localise(image, smap, fg_quantile=FG_QUANTILE, bg_quantile=BG_QUANTILE, iterations=5):
    """Weakly supervised localisation (Simonyan et al. 2014, sec. 3.2). image: (H, W, 3) uint8 RGB; smap: (H, W).
    Pixels above the fg_quantile of saliency are foreground seeds, below the bg_quantile background seeds; GrabCut
    (a graph cut with Gaussian-mixture colour models, OpenCV's) labels the pixels in between, which start as
    'probably background'. -> the object mask (H, W) bool (the largest connected component of the foreground)
    and its box (x0, y0, x1, y1), or None when nothing is foreground."""
    import cv2
    hi, lo = np.quantile(smap, fg_quantile), np.quantile(smap, bg_quantile)
    mask = np.full(smap.shape, cv2.GC_PR_BGD, np.uint8)
    mask[smap <= lo] = cv2.GC_BGD
    mask[smap >= hi] = cv2.GC_FGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(np.ascontiguousarray(image[..., ::-1]), mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return fg.astype(bool), None
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))  # label 0 is the background
    x, y, w, h = (int(v) for v in stats[k, :4])
    return labels == k, (x, y, x + w, y + h)


def explain(model, x, classes, method, opts):
    """(N, H, W) map of one method; opts: precision, chunk, sg_samples, sg_noise, ig_steps, baseline."""
    if method == "vanilla":
        return saliency_maps(model, x, classes, opts["precision"])[0]
    if method == "smoothgrad":
        return smoothgrad(model, x, classes, opts["sg_samples"], opts["sg_noise"], opts["precision"], opts["chunk"])
    if method == "integrated-gradients":
        return integrated_gradients(model, x, classes, opts["baseline"], opts["ig_steps"], opts["precision"],
                                    opts["chunk"]).abs().amax(dim=1)
    if method == "gradcam":
        return gradcam(model, x, classes, opts["precision"])
    raise ValueError(f"unknown method {method!r}: one of {', '.join(METHODS)}")


def average_ranks(x):
    """(N, P) -> (N, P) float64 ranks within each row, ties sharing the mean of the ranks they span (as Spearman's
    rho needs: a map with a zero plateau has many ties)."""
    values, order = x.double().sort(dim=1, stable=True)
    ranks = torch.empty_like(values)
    for i in range(len(x)):
        v = values[i]
        starts = torch.ones_like(v, dtype=torch.bool)
        starts[1:] = v[1:] != v[:-1]
        group = starts.cumsum(0) - 1                                  # tie group of each sorted position
        size = torch.bincount(group).double()
        first = size.cumsum(0) - size                                # rank (from 0) of each group's first member
        ranks[i, order[i]] = (first + (size - 1) / 2)[group]
    return ranks


def rank_correlation(a, b):
    """Spearman's rho of each pair of maps: (N, H, W), (N, H, W) -> (N,) float64; NaN where it is undefined (a
    constant map has no ranking)."""
    ra, rb = average_ranks(a.flatten(1)), average_ranks(b.flatten(1))
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    den = ra.norm(dim=1) * rb.norm(dim=1)
    return torch.where(den > 0, (ra * rb).sum(1) / den.clamp(min=1e-300), torch.full_like(den, float("nan")))


def fmt_rho(r):
    return "undefined" if r != r else f"{r:.4f}"


def randomisation_test(model, x, classes, method, opts, seed=0):
    """Cascading model randomisation (Adebayo et al. 2018): re-initialise the weight layers from the top down, one
    more at each step, and compare the map with the trained model's. A map that explains the model should change:
    -> [(layer randomised last, mean rank correlation with the original map over the images where it is defined,
    NaN where it is defined for none)], starting with ("none", 1.0)."""
    import copy
    original = explain(model, x, classes, method, opts)
    rnd = copy.deepcopy(model)
    layers = [(n, m) for n, m in rnd.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))][::-1]
    torch.manual_seed(seed)
    out = [("none", 1.0)]
    for name, m in layers:
        m.reset_parameters()
        rho = rank_correlation(original, explain(rnd, x, classes, method, opts))
        out.append((name, rho.nanmean().item()))
    return out


@torch.no_grad()
def deletion_insertion(model, x, classes, maps, steps=DEL_STEPS, precision="fp32", chunk=BATCH_SIZE):
    """Deletion and insertion (Petsiuk et al. 2018): the class probability as the most salient pixels are removed
    (set to the mean colour, 0 once normalised) or inserted into a blurred copy, in `steps` equal steps.
    -> areas under both curves (N,), (N,): a low deletion and a high insertion area mean a faithful map."""
    from torchvision.transforms.functional import gaussian_blur
    n, _, h, w = x.shape
    order = maps.flatten(1).argsort(dim=1, descending=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(h * w, device=x.device).expand(n, -1))
    k = (torch.linspace(0, 1, steps + 1, device=x.device) * h * w).round().long()    # pixels changed at each step
    top = (rank[:, None, :] < k[None, :, None]).view(n, steps + 1, 1, h, w).float()  # 1 = among the k most salient
    blurred = gaussian_blur(x, kernel_size=[51, 51], sigma=[10.0, 10.0])
    aucs = []
    for start, end in ((x, torch.zeros_like(x)), (blurred, x)):                     # deletion, then insertion
        frames = (start[:, None] * (1 - top) + end[:, None] * top).flatten(0, 1)       # (N * (steps + 1), 3, H, W)
        probs = []
        for i in range(0, len(frames), chunk):
            with autocast(precision, x.device):
                probs.append(model(frames[i:i + chunk]).float().softmax(dim=1))
        p = torch.cat(probs).view(n, steps + 1, -1).gather(2, classes.view(n, 1, 1).expand(n, steps + 1, 1))[..., 0]
        aucs.append(((p[:, 1:] + p[:, :-1]) / 2).mean(dim=1))                        # trapezoid over [0, 1]
    return aucs[0], aucs[1]


def center_share(maps):
    """(N, H, W) -> (N,): the share of saliency mass in the central box (middle half of each side, 25% of the
    area). 0.25 for a map spread evenly; near 1 when the map sits on a centred object."""
    h, w = maps.shape[-2:]
    inner = maps[:, h // 4:h - h // 4, w // 4:w - w // 4].sum(dim=(1, 2))
    return inner / maps.sum(dim=(1, 2)).clamp(min=1e-30)


def denormalise(x, preprocess):
    """(3, H, W) normalised tensor -> (H, W, 3) float array in [0, 1], the crop the network saw."""
    mean = torch.tensor(preprocess.mean).view(3, 1, 1)
    std = torch.tensor(preprocess.std).view(3, 1, 1)
    return (x.cpu().float() * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()


def draw_row(axes, crop, maps, title):
    """The input crop, then each method's map (Grad-CAM over the crop); one method alone also gets an overlay."""
    axes[0].imshow(crop)
    axes[0].set_title(title, fontsize=9)
    for ax, (name, smap) in zip(axes[1:], maps.items()):
        m = smap / max(float(smap.max()), 1e-12)  # scale each map to [0, 1] for display
        if name == "gradcam":
            ax.imshow(crop)
            ax.imshow(m, cmap="jet", alpha=0.5)
        else:
            ax.imshow(m, cmap="gray")
        ax.set_title(LABELS[name], fontsize=9)
    if len(maps) == 1:
        axes[2].imshow(crop)
        axes[2].imshow(m, cmap="jet", alpha=0.5)
        axes[2].set_title("overlay", fontsize=9)
    for a in axes:
        a.axis("off")


def save_figures(out_dir, files, crops, maps, titles):
    """maps: {method: (N, H, W)}. One figure per image and grid.png with one row per image."""
    plt = pyplot()
    os.makedirs(out_dir, exist_ok=True)
    cols = 1 + len(maps) + (len(maps) == 1)
    rows = [{name: m[i] for name, m in maps.items()} for i in range(len(files))]
    written = []
    for stem, crop, row, t in zip(figure_names(files), crops, rows, titles):
        fig, axes = plt.subplots(1, cols, figsize=(3.3 * cols, 3.6))
        draw_row(axes, crop, row, t)
        fig.tight_layout()
        path = os.path.join(out_dir, stem + "_saliency.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    for old in os.listdir(out_dir):  # pages of an earlier, longer run
        if re.fullmatch(r"grid-\d+\.png", old):
            os.remove(os.path.join(out_dir, old))
    for page, first in enumerate(range(0, len(files), GRID_ROWS)):
        n = min(GRID_ROWS, len(files) - first)
        fig, axes = plt.subplots(n, cols, figsize=(3 * cols, 3.1 * n), squeeze=False)
        for ax_row, crop, row, t in zip(axes, crops[first:], rows[first:], titles[first:]):
            draw_row(ax_row, crop, row, t)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "grid.png" if page == 0 else f"grid-{page + 1}.png"), dpi=90)
        plt.close(fig)
    return written


def write_settings(path, args, methods, n_images, skipped):
    """What produced the outputs in this folder, for the report to describe them as they were made."""
    with open(path, "w") as fh:
        json.dump({"model": f"--checkpoint {args.checkpoint}" if args.checkpoint else "VGG-16 (ImageNet)",
                   "methods": methods, "class": args.target, "precision": args.precision, "images": n_images,
                   "skipped": skipped, "sg_samples": args.sg_samples, "sg_noise": args.sg_noise,
                   "ig_steps": args.ig_steps, "ig_baseline": args.ig_baseline}, fh, indent=2)


def write_predictions(path, files, probs, classes, categories, maps, k=TOP_K, extra=None):
    """One row per image: the class explained, the top-k predictions, each method's centre share, and any extra
    per-image columns ({name: [value per image]})."""
    extra = extra or {}
    k = min(k, probs.shape[1])  # a style model may have fewer than 5 classes
    top_p, top_i = probs.topk(k, dim=1)
    centre = {name: center_share(m).tolist() for name, m in maps.items()}
    first = next(iter(maps))
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "class_used", "class_used_name", "class_used_prob", "saliency_center_share"]
                   + [c for r in range(1, k + 1) for c in (f"top{r}", f"top{r}_name", f"top{r}_prob")]
                   + [f"center_share_{name}" for name in maps] + list(extra))
        for i, (f, p, c, ti, tp) in enumerate(zip(files, probs, classes.tolist(), top_i.tolist(), top_p.tolist())):
            row = [os.path.basename(f), c, categories[c], f"{p[c]:.6f}", f"{centre[first][i]:.4f}"]
            for j, q in zip(ti, tp):
                row += [j, categories[j], f"{q:.6f}"]
            w.writerow(row + [f"{centre[name][i]:.4f}" for name in maps] + [v[i] for v in extra.values()])


def localise_all(out_dir, files, crops, maps, titles):
    """--localise: a box per image from its (first method's) map; boxes.csv and localisation.png."""
    plt = pyplot()
    cols = min(3, len(files))
    rows = -(-len(files) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.6 * rows), squeeze=False)
    with open(os.path.join(out_dir, "boxes.csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "x0", "y0", "x1", "y1", "mask_share"])
        for ax, f, crop, m, t in zip(axes.flat, files, crops, maps, titles):
            img = (crop * 255).round().astype(np.uint8)
            mask, box = localise(img, m)
            w.writerow([os.path.basename(f), *(box or ("", "", "", "")), f"{mask.mean():.4f}"])
            ax.imshow(crop)
            ax.imshow(np.ma.masked_where(~mask, mask), cmap="autumn", alpha=0.35)
            if box:
                ax.add_patch(plt.Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, color="lime", lw=2))
            ax.set_title(t, fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "localisation.png"), dpi=100)
    plt.close(fig)


def trust(args, model, batch, classes, maps, files, opts, device):
    """--trust: the randomisation test and deletion/insertion for every method; CSVs, a plot, printed tables."""
    plt = pyplot()
    x, c = batch.to(device), classes.to(device)
    sanity = {m: randomisation_test(model, x, c, m, opts) for m in maps}
    with open(os.path.join(args.out, "sanity.csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "layers_randomised", "last_layer_randomised", "mean_rank_correlation"])
        for m, curve in sanity.items():
            w.writerows([m, i, name, fmt_rho(r)] for i, (name, r) in enumerate(curve))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for m, curve in sanity.items():
        ax.plot([r for _, r in curve], marker="o", label=m)
    names = [n for n, _ in next(iter(sanity.values()))]
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    ax.set(ylabel="rank correlation with the original map", xlabel="weights re-initialised from the top down, to",
           ylim=(-0.2, 1.05))
    ax.axhline(0, color="gray", lw=0.5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "sanity.png"), dpi=110)
    plt.close(fig)
    with open(os.path.join(args.out, "deletion_insertion.csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "method", "deletion_auc", "insertion_auc"])
        for m, mp in maps.items():
            dele, ins = deletion_insertion(model, x, c, mp.to(device), precision=args.precision, chunk=args.batch_size)
            w.writerows([os.path.basename(f), m, f"{d:.4f}", f"{i:.4f}"] for f, d, i in zip(files, dele.tolist(),
                                                                                             ins.tolist()))
            print(f"{m:22s} deletion AUC {dele.mean():.3f} (lower is better), insertion AUC {ins.mean():.3f} (higher), "
                  f"rank correlation after randomising every layer {fmt_rho(sanity[m][-1][1])}")


def run_class_model(args, model, categories, cls, device, preprocess):
    image, history = class_model(model, cls, steps=args.cm_steps, lr=args.cm_lr, l2=args.cm_l2,
                                 precision=args.precision, device=device)
    os.makedirs(args.out, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9]+", "_", categories[cls]).strip("_")
    path = os.path.join(args.out, f"class_model_{cls}_{name}.png")
    save_class_model(path, image, f"class model: {categories[cls]} ({args.cm_steps} steps, lambda {args.cm_l2:g})",
                     preprocess)
    print(f"class {cls} '{categories[cls]}': objective S_c - lambda ||I||^2 from {history[0]:.3f} to "
          f"{history[-1]:.3f} in {args.cm_steps} steps; wrote {path}")


def load_inputs(args):
    """-> categories, preprocessing, device, model (channels_last), the --class index, the --class-model index, and
    (files, batch, skipped) unless --class-model asks for no images. ValueError etc. for what cannot be used."""
    categories = vgg16.WEIGHTS.meta["categories"]
    preprocess = vgg16.WEIGHTS.transforms()  # resize 256, centre crop 224, ImageNet mean/std
    if os.path.exists(args.out) and not os.path.isdir(args.out):  # before any map is computed
        raise ValueError(f"--out {args.out} is a file, not a folder: give a folder for the figures")
    os.makedirs(args.out, exist_ok=True)
    if args.checkpoint:
        style_model, categories, preprocess = load_style_model(args.checkpoint)
    target = resolve_class(args.target, categories)
    cm_class = resolve_class(args.class_model, categories)
    images = None
    if cm_class is None:
        images = load_images(list_images(args.images), preprocess)
        if images[1] is None:
            raise ValueError(f"none of the files in {args.images} could be read as an image")
    device = resolve_device(args.device)
    warn_if_slow_bf16(args.precision, device)
    # channels_last: PyTorch's fast path for convolutions (saliency 1.2x here on a CPU); inputs follow the weights
    model = (style_model if args.checkpoint else vgg16.load_vgg16(args.weights)).to(
        device, memory_format=torch.channels_last)
    return categories, preprocess, device, model, target, cm_class, images


def compute_maps(args, model, batch, target, methods, baseline, device):
    """Every method's maps for every image, batch by batch. -> {method: (N, H, W)}, classes (N,), softmax
    probabilities (N, C), Integrated Gradients' completeness gap per image (or None)."""
    from tqdm import tqdm
    opts = dict(precision=args.precision, chunk=args.batch_size, sg_samples=args.sg_samples, sg_noise=args.sg_noise,
                ig_steps=args.ig_steps, baseline=baseline)
    maps, classes, probs, gaps = {m: [] for m in methods}, [], [], []
    for start in tqdm(range(0, len(batch), args.batch_size), desc="saliency", unit="batch", file=sys.stderr):
        x = batch[start:start + args.batch_size].to(device)
        vanilla, c, s = saliency_maps(model, x, target, args.precision)
        classes.append(c.cpu()), probs.append(s.softmax(dim=1).cpu())
        for m in methods:
            if m == "vanilla":
                out = vanilla
            elif m == "integrated-gradients":  # its attributions also give the completeness gap
                attr = integrated_gradients(model, x, c, baseline, args.ig_steps, args.precision, args.batch_size)
                gaps.append(ig_completeness_gap(model, x, c, baseline, attr, args.precision))
                out = attr.abs().amax(dim=1)
            else:
                out = explain(model, x, c, m, opts)
            maps[m].append(out.float().cpu())
    return ({m: torch.cat(v) for m, v in maps.items()}, torch.cat(classes), torch.cat(probs),
            torch.cat(gaps).tolist() if gaps else None, opts)


def print_predictions(files, classes, probs, categories, gaps, ig_steps):
    """One line per image (and a warning when Integrated Gradients is far from complete). -> figure titles."""
    titles = []
    for n, (f, c, p) in enumerate(zip(files, classes.tolist(), probs)):
        top = int(p.argmax())
        print(f"{os.path.basename(f)}: predicted '{categories[top]}' (p={p[top]:.3f}), "
              f"saliency for class {c} '{categories[c]}' (p={p[c]:.3f})"
              + (f", Integrated Gradients completeness gap {gaps[n]:.1%}" if gaps else ""))
        titles.append(f"{categories[c]} (p={p[c]:.2f})")
    if gaps and max(gaps) > IG_GAP_WARN:
        worst = max(range(len(gaps)), key=gaps.__getitem__)
        print(f"warning: Integrated Gradients: {sum(g > IG_GAP_WARN for g in gaps)} image(s) have attributions that "
              f"add up to more than {IG_GAP_WARN:.0%} off S_C(I) - S_C(baseline) (worst {gaps[worst]:.1%}, "
              f"{os.path.basename(files[worst])}); --ig-steps {ig_steps_for(gaps[worst], ig_steps)} should "
              "bring it under", file=sys.stderr)
    return titles


def main(argv=None):
    args = parse_args(argv)
    try:
        categories, preprocess, device, model, target, cm_class, images = load_inputs(args)
    except (ValueError, FileNotFoundError, vgg16.WeightsUnavailable, RuntimeError, OSError) as e:
        sys.exit(f"error: {e}")
    if cm_class is not None:  # the class model (the paper's section 2) needs no images
        return run_class_model(args, model, categories, cm_class, device, preprocess)
    files, batch, skipped = images
    methods = METHODS if args.method == "all" else [args.method]
    # Integrated Gradients' baseline, normalised: a black image, or the ImageNet mean colour (0 after normalising)
    mean, std = torch.tensor(preprocess.mean).view(1, 3, 1, 1), torch.tensor(preprocess.std).view(1, 3, 1, 1)
    baseline = ((0 - mean) / std if args.ig_baseline == "black" else torch.zeros(1, 3, 1, 1)).to(device)
    maps, classes, probs, gaps, opts = compute_maps(args, model, batch, target, methods, baseline, device)
    titles = print_predictions(files, classes, probs, categories, gaps, args.ig_steps)
    crops = [denormalise(x, preprocess) for x in batch]
    save_figures(args.out, files, crops, {m: v.numpy() for m, v in maps.items()}, titles)
    write_predictions(os.path.join(args.out, "predictions.csv"), files, probs, classes, categories, maps,
                      extra={"ig_completeness_gap": [f"{g:.4f}" for g in gaps]} if gaps else {})
    write_settings(os.path.join(args.out, "settings.json"), args, methods, len(files), skipped)
    if args.localise:
        localise_all(args.out, files, crops, next(iter(maps.values())).numpy(), titles)
    if args.trust:
        trust(args, model, batch, classes, maps, files, opts, device)
    pages = -(-len(files) // GRID_ROWS)
    print(f"wrote {len(files)} figures, grid.png" + (f" (and grid-2.png ... grid-{pages}.png, {GRID_ROWS} images a page)"
                                                     if pages > 1 else "") + f" and predictions.csv to {args.out}"
          + (f"; skipped {skipped} unusable file(s)" if skipped else ""))


if __name__ == "__main__":
    main()
