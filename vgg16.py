"""VGG-16 (Simonyan & Zisserman, 2015) written out in PyTorch, loadable with torchvision's ImageNet weights.

The architecture is data: `CFG` lists the 13 convolution widths and the 5 max-pools, one `make_layers`
loop turns it into `features`. Module names (`features`, `avgpool`, `classifier`) and indices match
torchvision's `models/vgg.py`, so the published checkpoint `VGG16_Weights.IMAGENET1K_V1` loads with
`strict=True` and gives the same logits.

    from vgg16 import load_vgg16, WEIGHTS
    model = load_vgg16()                      # downloads once into torchvision's cache
    model = load_vgg16("path/to/vgg16.pth")   # or a local state dict, e.g. offline
    preprocess = WEIGHTS.transforms()         # resize 256, centre crop 224, ImageNet mean/std
    names = WEIGHTS.meta["categories"]        # the 1000 ImageNet class names

Offline: put the file from `WEIGHTS.url` at `default_checkpoint_path()`
(`$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth`, by default under `~/.cache/torch`).

The rest is how assignment_4b.py runs the network, kept here so that the graded script shows the method:
the device and the precision (`resolve_device`, `apply_precision`, `autocast`), a class named on the command
line (`resolve_class`), packages older than requirements.txt allows (`check_requirements`), a kill stopping the run
as Ctrl-C does (`stop_on_sigterm`), and any image file opened as the network's RGB input (`open_rgb`).
"""
import inspect
import os
import pickle
import re
import signal
import struct
import sys
import urllib.error
import zipfile
import zlib

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import nn
from torchvision.models import VGG16_Weights

ROOT = os.path.dirname(os.path.abspath(__file__))
WEIGHTS = VGG16_Weights.IMAGENET1K_V1
NUM_CLASSES = len(WEIGHTS.meta["categories"])  # 1000
# 13 conv layers (3x3, stride 1, pad 1) with these output channels; "M" = 2x2 max-pool, stride 2
CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class RunError(Exception):
    """A mistake in what the user gave, or a state of the machine, that stops the script (a missing file, a flag that
    cannot be, a full disk): its message says what to do, and main prints it in one line. Anything else is a bug and
    keeps its traceback. (Copied, unchanged, in assignment_4a.py, download_wikiart.py and vgg16.py.)"""


class WeightsUnavailable(RunError):
    """The pretrained weights could neither be found locally nor downloaded, or are not VGG-16's: a RunError."""


def make_layers(cfg=CFG, in_channels=3):
    layers = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_channels = v
    return nn.Sequential(*layers)


class VGG16(nn.Module):
    def __init__(self, num_classes=NUM_CLASSES, dropout=0.5):
        super().__init__()
        self.features = make_layers(CFG)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))  # any input size >= 32 px -> (N, 512, 7, 7)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),  # fc6
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),         # fc7
            nn.Linear(4096, num_classes),                                              # fc8: class scores
        )

    def forward(self, x):  # (N, 3, H, W) normalised -> (N, num_classes) un-normalised scores
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def default_checkpoint_path():
    """Where torchvision's loader looks for (and caches) the ImageNet weights."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(WEIGHTS.url))


# What torch.load raises for a file that is not a state dict: an HTML page or a pickle with code in it
# (UnpicklingError), a truncated zip (RuntimeError), an empty file (EOFError). A TypeError or AttributeError is not
# among them: that is a library too old for this code, and deleting the file would not help.
DAMAGED = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError, zipfile.BadZipFile)


def torchvision_state_dict(imagenet, progress=True):
    """torchvision's weights API: the cached file at $TORCH_HOME/hub/checkpoints/<name of imagenet.url> if present,
    else downloaded (its hash checked against the file name) and cached; always read with weights_only=True.
    torchvision < 0.16 (torch < 2.1) cannot pass weights_only through get_state_dict: there the same file is fetched
    with torch.hub's own downloader and read here. (Copied, unchanged, in assignment_4a.py.)"""
    if "weights_only" in inspect.signature(torch.hub.load_state_dict_from_url).parameters:
        return imagenet.get_state_dict(progress=progress, check_hash=True, map_location="cpu", weights_only=True)
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(imagenet.url))
    if not os.path.isfile(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        digest = torch.hub.HASH_REGEX.search(os.path.basename(path))
        torch.hub.download_url_to_file(imagenet.url, path, digest.group(1) if digest else None, progress=progress)
    return torch.load(path, map_location="cpu", weights_only=True)


def is_training_checkpoint(state):
    """Whether a loaded .pt is a checkpoint of assignment_4a.py (its model, configuration and style names), not a
    state dict of ImageNet weights. (Copied, unchanged, in assignment_4a.py and vgg16.py.)"""
    return isinstance(state, dict) and {"model", "config", "classes"} <= set(state)


def _read_state_dict(path):
    if not os.path.isfile(path):
        raise RunError(f"weights file {path} does not exist: give the path of a VGG-16 .pth state dict")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except DAMAGED as e:  # a pickle with code in it, a truncated or non-torch file
        raise WeightsUnavailable(f"weights file {path} could not be read as a state dict ({e.__class__.__name__}: "
                                 "damaged, not a PyTorch file, or holding code, which is never loaded); download it "
                                 "again from " + WEIGHTS.url) from None
    if is_training_checkpoint(state):
        raise WeightsUnavailable(f"weights file {path} is a checkpoint of assignment_4a.py, not ImageNet weights: "
                                 "explain it with saliency_extras.py --checkpoint instead")
    return state.get("model", state) if isinstance(state, dict) else state


def load_weights(build, state):
    """build() -> a module holding `state` (strictly: a missing, extra or misshapen key raises RuntimeError). Its
    parameters are never initialised, since the state replaces them: built on PyTorch's meta device and given the
    state's tensors (1.6 s saved for VGG-16, 0.8 s for AlexNet), or, before torch 2.1, allocated empty and copied
    into. (Copied, unchanged, in assignment_4a.py and vgg16.py.)"""
    with torch.device("meta"):
        model = build()
    if "assign" in inspect.signature(model.load_state_dict).parameters:
        model.load_state_dict(state, strict=True, assign=True)
    else:
        model.to_empty(device="cpu").load_state_dict(state, strict=True)
    return model


def load_vgg16(weights_path=None, progress=True):
    """VGG-16 in eval mode with ImageNet weights: from `weights_path`, or torchvision's cache / download."""
    if weights_path is not None:
        state = _read_state_dict(weights_path)
    else:
        try:
            # torchvision's weights API: the cached file if present, else download (hash checked) then cache
            state = torchvision_state_dict(WEIGHTS, progress)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise WeightsUnavailable(
                f"could not download the VGG-16 weights ({getattr(e, 'reason', e)}): offline, download "
                f"{WEIGHTS.url} elsewhere and put it at {default_checkpoint_path()}, or pass --weights PATH") from None
        except DAMAGED as e:  # the cached file is not a state dict (an error page saved in its place)
            raise WeightsUnavailable(f"{default_checkpoint_path()} could not be read as a state dict "
                                     f"({e.__class__.__name__}): delete it and download {WEIGHTS.url} again, or pass "
                                     "--weights PATH") from None
    try:
        model = load_weights(VGG16, state)
    except (RuntimeError, TypeError, AttributeError) as e:  # not a mapping of VGG-16's names to its shapes
        where = weights_path or default_checkpoint_path()
        raise WeightsUnavailable(f"{where} is not a VGG-16 ImageNet state dict: {str(e).splitlines()[0]}") from None
    return model.eval()


# ---- where and how it runs: the device, the precision, the class, the packages, a kill. What assignment_4a.py or
# download_wikiart.py also needs of it is copied there whole; tests/test_copies.py finds each copy and checks it ----

PRECISIONS = ("fp32", "tf32", "bf16")  # --precision: see set_precision
# how far maps of the faster precisions agree with fp32 maps, as measured on random VGG-16 weights (docs/speed.md)
MAP_AGREEMENT = {"tf32": "87.6% of the pixels within 5% of the map's maximum and Spearman's rho down to 0.90 "
                         "(NVIDIA H200)",
                 "bf16": "Spearman's rho 0.37-0.50 (NVIDIA H200) and 0.38 (an AVX-512 CPU)"}


def resolve_device(name):
    if name != "auto":
        if not device_available(name):
            raise RunError(f"--device {name}: not available on this machine; use --device auto or cpu")
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


def memory_format_of(model):
    """channels_last if the model's 3x3 convolution weights are stored that way (main() does this), else the default:
    inputs are laid out like the weights, so no convolution converts them."""
    w = next((m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1), None)
    cl = w is not None and w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    return torch.channels_last if cl else torch.contiguous_format


def resolve_class(target, categories):
    """--class value -> class index. Accepts an index, an exact name, or a part of a name that names one class."""
    if target is None:
        return None
    if target.strip().lstrip("-").isdigit():
        idx = int(target)
        if not 0 <= idx < len(categories):
            raise RunError(f"--class {idx} is out of range: class indices go from 0 to {len(categories) - 1}")
        return idx
    key = target.strip().lower()
    exact = [i for i, c in enumerate(categories) if c.lower() == key]
    if exact:
        return exact[0]
    partial = [i for i, c in enumerate(categories) if key in c.lower()]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        raise RunError(f"--class '{target}' matches no class name of the model; give an index "
                         f"0-{len(categories) - 1} "
                         f"or a name such as '{categories[min(281, len(categories) - 1)]}'")
    names = ", ".join(f"{i}: {categories[i]}" for i in partial[:8])
    raise RunError(f"--class '{target}' matches {len(partial)} classes "
                     f"({names}{', ...' if len(partial) > 8 else ''}); "
                     "give one of these indices or the full name")


def check_requirements():
    """Stop with one sentence where installed packages are older than requirements.txt's bounds (the Anaconda
    environment of earlier assignments, say), naming every one of them, instead of failing later with a TypeError or
    AttributeError that says nothing about versions. A package that is not installed is left to its import."""
    from importlib import metadata
    path = os.path.join(ROOT, "requirements.txt")
    release = lambda v: tuple(int(p) for p in re.findall(r"\d+", v.split("+")[0])[:3]) + (0,) * 3  # noqa: E731
    old = []  # (name, installed version, bound)
    for line in open(path, encoding="utf-8") if os.path.isfile(path) else ():
        m = re.match(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)", line)
        try:
            have = metadata.version(m.group(1)) if m else None
        except metadata.PackageNotFoundError:
            continue
        if have and release(have)[:3] < release(m.group(2))[:3]:
            old.append((m.group(1), have, m.group(2)))
    if old:
        sys.exit(f"error: {' and '.join(f'{n} {have}' for n, have, _ in old)} "
                 f"{'is' if len(old) == 1 else 'are'} older than this project needs "
                 f"({', '.join(f'{n}>={bound}' for n, _, bound in old)}): pip install -U "
                 + " ".join(f'"{n}>={bound}"' for n, _, bound in old) + f" (or pip install -r {path})")


def stop_on_sigterm():
    """A kill (SIGTERM: a closed terminal, a cluster's time limit) stops the run as Ctrl-C does, so that what was
    finished is kept and said, instead of exit 143 without a word."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)


# ---- its inputs: any image file as 8-bit RGB, upright (open_rgb copied whole in assignment_4a.py and
# download_wikiart.py) ----

DRAFT_SIZE = 512        # big JPEGs are decoded at reduced scale, keeping both sides >= this (2x the 256 resize)
MAX_PIXELS = 2 * 89_478_485  # larger images are refused (PIL's decompression-bomb limit)
MAX_ASPECT = 20         # images longer than this many times their width (or wider) are refused
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
# What PIL raises for damaged image data, beyond UnidentifiedImageError: OSError (truncated), SyntaxError (a broken
# PNG chunk), EOFError, struct.error and zlib.error from its plugins, ValueError. A programming error is not among them.
DAMAGED_IMAGE = (OSError, SyntaxError, EOFError, ValueError, struct.error, zlib.error)


def open_rgb(path):
    """Open any image file as 8-bit RGB, upright. Raises ValueError with the reason if it cannot be used.
    (Copied, unchanged, in assignment_4a.py, vgg16.py, download_wikiart.py: one behaviour for alpha, 16-bit,
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


# ---- measuring a map against the image's object (assignment_4b.py's predictions.csv columns, which the report
# reads): the box mapped into the network's crop, the pointing game and the mass inside, and two baselines ----

BOX_TOLERANCE = 15      # pointing game: a peak this many pixels (of the 224x224 input) outside the box still hits
CENTRE_PRIOR_SIGMA = 0.25  # the centre-prior baseline: a Gaussian of this std (a fraction of the side), centred


def centre_share(maps):
    """(N, H, W) -> (N,): the share of saliency mass in the central box (middle half of each side, 25% of the
    area). 0.25 for a map spread evenly; near 1 when the map sits on a centred object."""
    h, w = maps.shape[-2:]
    inner = maps[:, h // 4:h - h // 4, w // 4:w - w // 4].sum(dim=(1, 2))
    return inner / maps.sum(dim=(1, 2)).clamp(min=1e-30)


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


def crop_boxes(images, boxes, preprocess):
    """Each image's object box in the network's crop, for the figures: None where it has none or the crop hides it."""
    out = []
    for f, size in zip(images.files, images.sizes):
        box = boxes.get(os.path.basename(f), (None, ""))[0]
        crop, seen = box_in_crop(box, size, preprocess) if box is not None else (None, 0)
        out.append(crop if seen else None)
    return out
