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
"""
import inspect
import os
import pickle
import urllib.error
import zipfile

import torch
from torch import nn
from torchvision.models import VGG16_Weights

WEIGHTS = VGG16_Weights.IMAGENET1K_V1
NUM_CLASSES = len(WEIGHTS.meta["categories"])  # 1000
# 13 conv layers (3x3, stride 1, pad 1) with these output channels; "M" = 2x2 max-pool, stride 2
CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class WeightsUnavailable(RuntimeError):
    """The pretrained weights could neither be found locally nor downloaded."""


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


def torchvision_state_dict(weights, progress=True):
    """torchvision's weights API: the cached file at $TORCH_HOME/hub/checkpoints/<name of weights.url> if present,
    else downloaded (its hash checked against the file name) and cached; always read with weights_only=True.
    torchvision < 0.16 (torch < 2.1) cannot pass weights_only through get_state_dict: there the same file is fetched
    with torch.hub's own downloader and read here. (Copied, unchanged, in assignment_4a.py.)"""
    if "weights_only" in inspect.signature(torch.hub.load_state_dict_from_url).parameters:
        return weights.get_state_dict(progress=progress, check_hash=True, map_location="cpu", weights_only=True)
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
    if not os.path.isfile(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        digest = torch.hub.HASH_REGEX.search(os.path.basename(path))
        torch.hub.download_url_to_file(weights.url, path, digest.group(1) if digest else None, progress=progress)
    return torch.load(path, map_location="cpu", weights_only=True)


def is_training_checkpoint(state):
    """Whether a loaded .pt is a checkpoint of assignment_4a.py (its model, configuration and style names), not a
    state dict of ImageNet weights. (Copied, unchanged, in assignment_4a.py and vgg16.py.)"""
    return isinstance(state, dict) and {"model", "config", "classes"} <= set(state)


def _read_state_dict(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file {path} does not exist: give the path of a VGG-16 .pth state dict")
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
