"""Beyond the sheet: other saliency methods, the paper's other sections, and how far to trust the maps.

assignment_4b.py is the assignment (the paper's section 3.1); this script imports it and adds:
  --method     SmoothGrad, Integrated Gradients and Grad-CAM beside the paper's map (or all four);
  --checkpoint the maps of a painting-style AlexNet fine-tuned by assignment_4a.py instead of VGG-16;
  --class-model the paper's section 2: the image that maximises a class score;
  --localise   the paper's section 3.2: an object box per image from its map (GrabCut);
  --trust      sanity checks: cascading model randomisation and deletion/insertion AUCs.

    python saliency_extras.py --method all                 # the four methods side by side -> report/saliency/
    python saliency_extras.py --method integrated-gradients --ig-steps 64 --ig-baseline mean
    python saliency_extras.py --checkpoint runs/<run>/best.pt --images my_paintings/ --method all
    python saliency_extras.py --class-model "tiger cat" --cm-steps 200
    python saliency_extras.py --method all --trust --localise

Writes, into report/saliency_extras/ (never over assignment_4b.py's report/saliency/), what assignment_4b.py writes
(figures, predictions.csv with the centre share and the box measures per method, settings.json),
plus: ig_completeness_gap in predictions.csv (Integrated Gradients), boxes.csv and localisation.png (--localise),
sanity.csv, sanity.png and deletion_insertion.csv (--trust), class_model_<index>_<name>.png (--class-model).
"""
import argparse
import copy
import csv
import functools
import math
import os
import re
import sys

import numpy as np
import torch

import assignment_4b as a4b
import vgg16

# ---- defaults ----
OUT_DIR = os.path.join(a4b.ROOT, "report", "saliency_extras")  # beside assignment_4b.py's, never over it
PAINTINGS_OUT_DIR = os.path.join(a4b.ROOT, "report", "saliency_paintings")  # the default --out with --checkpoint
METHODS = ["vanilla", "smoothgrad", "integrated-gradients", "gradcam"]
LABELS = {"vanilla": a4b.MAP_TITLE, "smoothgrad": "SmoothGrad", "integrated-gradients": "Integrated Gradients",
          "gradcam": "Grad-CAM (last conv block)"}
OVERLAID = ("gradcam",)  # maps drawn over the crop: Grad-CAM is coarse, 14x14 upsampled
SG_SAMPLES = 25         # SmoothGrad: noisy copies per image (cost: that many vanilla passes)
SG_NOISE = 0.15         # SmoothGrad: noise std as a fraction of the image's value range (Smilkov et al.: 0.1-0.2)
SG_SEED = 0             # SmoothGrad: seed of the noise, so that a map can be reproduced
IG_STEPS = 32           # Integrated Gradients: points on the path from the baseline (cost: that many passes)
IG_GAP_WARN = 0.05      # Integrated Gradients: warn when the attributions' sum is this far off S(I) - S(baseline)
CM_STEPS = 100          # class model: gradient-ascent steps
CM_LR = 1.0             # class model: step size on the (normalised) image
CM_L2 = 1e-3            # class model: weight of the L2 penalty lambda * ||I||^2
FG_QUANTILE = 0.95      # localisation: pixels above this saliency quantile seed the foreground colour model
BG_QUANTILE = 0.30      # localisation: pixels below this quantile seed the background colour model
DEL_STEPS = 16          # deletion / insertion: points on each curve after the start
RANDOMISE_SEED = 0      # cascading randomisation: seed of the re-initialised weights


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Saliency beyond the sheet: SmoothGrad, Integrated Gradients, Grad-CAM, "
                                            "a fine-tuned painting model, the class model, localisation and sanity "
                                            "checks.", parents=[a4b.make_parser()], add_help=False,
                                conflict_handler="resolve")  # assignment_4b.py's flags, and its --out redefined:
    p.add_argument("--out", default=None, help="folder for the figures and predictions.csv (default: "
                                               "report/saliency_extras/, or report/saliency_paintings/ with "
                                               "--checkpoint)")
    p.add_argument("--method", choices=METHODS + ["all"], default="vanilla",
                   help="vanilla: the paper's gradient map; smoothgrad: averaged over noisy copies; "
                        "integrated-gradients: "
                        "gradients along a path from a baseline image; gradcam: class activation map of the last conv "
                        "block; all: the four side by side, one row per image (default: vanilla)")
    p.add_argument("--sg-samples", type=int, default=SG_SAMPLES,
                   help="SmoothGrad: noisy copies per image. The map is the mean over the copies of the paper's map "
                        "max_c |dS_C/dI| (Smilkov et al.'s definition); Captum's NoiseTunnel instead takes max_c of "
                        f"the averaged |g|, Smilkov's code averages signed gradients (default: {SG_SAMPLES})")
    p.add_argument("--sg-noise", type=float, default=SG_NOISE,
                   help=f"SmoothGrad: noise std / the image's value range (default: {SG_NOISE})")
    p.add_argument("--ig-steps", type=int, default=IG_STEPS,
                   help="Integrated Gradients: steps along the path (right Riemann sum). Each image's completeness gap "
                        "|sum of attributions - (S_C(I) - S_C(baseline))| / |S_C(I) - S_C(baseline)| is printed and "
                        f"written to predictions.csv, with a warning above {IG_GAP_WARN:.0%}% (default: {IG_STEPS})")
    # {IG_GAP_WARN:.0%}% above: "5%" and a "%" that argparse's formatting swallows, so that --help prints 5%
    p.add_argument("--ig-baseline", choices=["black", "mean"], default="black",
                   help="Integrated Gradients: the image the path starts from: black, or the ImageNet mean colour "
                        "(default: black)")
    p.add_argument("--checkpoint", default=None, metavar="RUN/best.pt",
                   help="explain a painting-style model fine-tuned by assignment_4a.py (runs/<run>/best.pt) instead of "
                        "VGG-16: its AlexNet, its style names, its preprocessing; --out then defaults to "
                        "report/saliency_paintings/ (otherwise report/saliency_extras/, so that the paper's maps of "
                        "assignment_4b.py in report/saliency/ are never overwritten)")
    p.add_argument("--class-model", default=None, metavar="CLASS",
                   help="instead of explaining images: the image that maximises this class's score with an L2 "
                        "penalty (Simonyan et al. 2014, sec. 2), by gradient ascent from a zero image; a name or index")
    p.add_argument("--cm-steps", type=int, default=CM_STEPS, help=f"class model: gradient-ascent steps (default: "
                                                                  f"{CM_STEPS})")
    p.add_argument("--cm-lr", type=float, default=CM_LR, help=f"class model: step size (default: {CM_LR})")
    p.add_argument("--cm-l2", type=float, default=CM_L2, help="class model: L2 penalty weight lambda (default: "
                                                              f"{CM_L2})")
    p.add_argument("--localise", action="store_true",
                   help="also localise the object from the map (Simonyan et al. 2014, sec. 3.2: GrabCut seeded by the "
                        "95%% / 30%% saliency quantiles, the largest connected component's box); writes boxes.csv "
                        "and localisation.png")
    p.add_argument("--trust", action="store_true",
                   help="also test how far to trust each map: cascading model randomisation (Adebayo et al. 2018; "
                        "costs one map per weight layer, 16 for VGG-16) and deletion/insertion AUCs (Petsiuk et al. "
                        "2018); writes sanity.csv, sanity.png, deletion_insertion.csv")
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


# ---- the methods: each (model, images (N, 3, H, W), classes (N,)) -> maps (N, H, W) ----

def gradients_in_chunks(model, x, classes, precision, chunk):
    """dS_C/dI for many inputs (noisy copies, path points), `chunk` per forward/backward pass."""
    return torch.cat([a4b.score_gradients(model, x[i:i + chunk], classes[i:i + chunk], precision)[2]
                      for i in range(0, len(x), chunk)])


def smoothgrad(model, images, classes, samples=SG_SAMPLES, noise=SG_NOISE, precision="fp32", chunk=a4b.BATCH_SIZE,
               seed=SG_SEED):
    """SmoothGrad (Smilkov et al. 2017): the vanilla map max_c |dS_C/dI| averaged over `samples` copies of each image
    with Gaussian noise of std noise x (max - min) of that image: the paper's M(x) = 1/n sum M(x + noise) with M the
    Simonyan map (Captum's NoiseTunnel averages |g| before the max over channels). noise=0 gives the vanilla map."""
    n, shape = len(images), images.shape[1:]
    spread = (images.flatten(1).amax(1) - images.flatten(1).amin(1)).view(n, 1, 1, 1, 1)
    eps = torch.randn((n, samples, *shape), generator=torch.Generator().manual_seed(seed)).to(images.device)
    noisy = (images[:, None] + noise * spread * eps).flatten(0, 1)              # (N * samples, 3, H, W)
    grads = gradients_in_chunks(model, noisy, classes.repeat_interleave(samples), precision, chunk)
    return grads.abs().amax(dim=1).view(n, samples, *shape[1:]).mean(dim=1)


def integrated_gradients(model, images, classes, baseline, steps=IG_STEPS, precision="fp32", chunk=a4b.BATCH_SIZE):
    """Integrated Gradients (Sundararajan et al. 2017): (I - I0) x the mean gradient at `steps` points on the straight
    path from the baseline I0 to I (right Riemann sum). The attributions of an image add up to S_C(I) - S_C(I0),
    more exactly as steps grow. -> attributions (N, 3, H, W); their map is |.| max over channels."""
    n = len(images)
    baseline = baseline.expand_as(images)
    alphas = torch.arange(1, steps + 1, device=images.device, dtype=images.dtype).view(1, steps, 1, 1, 1) / steps
    path = (baseline[:, None] + alphas * (images - baseline)[:, None]).flatten(0, 1)  # (N * steps, 3, H, W)
    grads = gradients_in_chunks(model, path, classes.repeat_interleave(steps), precision, chunk)
    return (images - baseline) * grads.view(n, steps, *images.shape[1:]).mean(dim=1)


@torch.no_grad()
def ig_completeness_gap(model, images, classes, baseline, attributions, precision="fp32"):
    """Integrated Gradients' completeness axiom: an image's attributions add up to S_C(I) - S_C(I0) as steps grow.
    -> the relative gap |sum(attributions) - (S_C(I) - S_C(I0))| / |S_C(I) - S_C(I0)| per image, (N,)."""
    n = len(images)
    with vgg16.autocast(precision, images.device):
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
    with torch.no_grad(), vgg16.autocast(precision, images.device):
        acts = feats[:cut](images).float()
    acts.requires_grad_(True)
    with vgg16.autocast(precision, images.device):
        scores = model.classifier(torch.flatten(model.avgpool(feats[cut:](acts)), 1))
    one_hot = torch.zeros_like(scores).scatter_(1, classes[:, None], 1.0)
    (d_acts,) = torch.autograd.grad(scores, acts, grad_outputs=one_hot)
    cam = torch.relu((d_acts.float().mean(dim=(2, 3), keepdim=True) * acts).sum(dim=1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return cam[:, 0].detach()


def vanilla(model, images, classes, precision="fp32"):
    return a4b.saliency_maps(model, images, classes, precision)[0]


def integrated_gradients_with_gap(model, images, classes, baseline, steps=IG_STEPS, precision="fp32",
                                  chunk=a4b.BATCH_SIZE):
    """-> Integrated Gradients' map |attributions| max over channels (N, H, W), and each image's completeness gap."""
    attr = integrated_gradients(model, images, classes, baseline, steps, precision, chunk)
    gap = ig_completeness_gap(model, images, classes, baseline, attr, precision)
    return attr.abs().amax(dim=1), {"ig_completeness_gap": gap}


def without_columns(method):
    """A method that gives maps alone -> one that also gives its (no) per-image columns, as the table needs."""
    return functools.wraps(method)(lambda *a, **k: (method(*a, **k), {}))


def make_explainers(args, baseline):
    """The table of methods with this run's settings: {name: f(model, images, classes) -> (maps (N, H, W),
    {predictions.csv column: (N,) values})}."""
    return {"vanilla": functools.partial(without_columns(vanilla), precision=args.precision),
            "smoothgrad": functools.partial(without_columns(smoothgrad), samples=args.sg_samples,
                                            noise=args.sg_noise, precision=args.precision, chunk=args.batch_size),
            "integrated-gradients": functools.partial(integrated_gradients_with_gap, baseline=baseline,
                                                      steps=args.ig_steps, precision=args.precision,
                                                      chunk=args.batch_size),
            "gradcam": functools.partial(without_columns(gradcam), precision=args.precision)}


def ig_baseline(kind, preprocess, device):
    """Integrated Gradients' baseline, normalised (1, 3, 1, 1): a black image, or the mean colour (0 normalised)."""
    mean, std = torch.tensor(preprocess.mean).view(1, 3, 1, 1), torch.tensor(preprocess.std).view(1, 3, 1, 1)
    return ((0 - mean) / std if kind == "black" else torch.zeros(1, 3, 1, 1)).to(device)


# ---- the paper's section 2: class model visualisation ----

def class_model(model, cls, size=224, steps=CM_STEPS, lr=CM_LR, l2=CM_L2, precision="fp32", device="cpu"):
    """argmax_I S_c(I) - l2 * ||I||^2 by gradient ascent from the zero image (the mean image, once normalised).
    -> the image (3, size, size) normalised, the objective at every step."""
    x = torch.zeros(1, 3, size, size, device=device, requires_grad=True)
    history = []
    for _ in range(steps):
        with vgg16.autocast(precision, x.device):
            score = model(x)[0, cls].float()
        objective = score - l2 * (x * x).sum()
        (grad,) = torch.autograd.grad(objective, x)
        history.append(objective.item())
        with torch.no_grad():
            x += lr * grad
    return x.detach()[0], history


def run_class_model(args, model, categories, cls, device, preprocess):
    """--class-model: the image, shown as the paper shows it (the mean image added back, clipped), and one line."""
    image, history = class_model(model, cls, steps=args.cm_steps, lr=args.cm_lr, l2=args.cm_l2,
                                 precision=args.precision, device=device)
    name = re.sub(r"[^A-Za-z0-9]+", "_", categories[cls]).strip("_")
    path = os.path.join(args.out, f"class_model_{cls}_{name}.png")
    plt = a4b.pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.8))
    ax.imshow(a4b.denormalise(image, preprocess))
    ax.set_title(f"class model: {categories[cls]} ({args.cm_steps} steps, lambda {args.cm_l2:g})", fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"class {cls} '{categories[cls]}': objective S_c - lambda ||I||^2 from {history[0]:.3f} to "
          f"{history[-1]:.3f} in {args.cm_steps} steps; wrote {path}")


# ---- the paper's section 3.2: weakly supervised localisation ----

def localise(image, smap, fg_quantile=FG_QUANTILE, bg_quantile=BG_QUANTILE, iterations=5):
    """image: (H, W, 3) uint8 RGB; smap: (H, W). Pixels above the fg_quantile of saliency are foreground seeds, below
    the bg_quantile background seeds; GrabCut (a graph cut with Gaussian-mixture colour models, OpenCV's) labels the
    pixels in between, which start as 'probably background'. -> the object mask (H, W) bool (the largest connected
    component of the foreground) and its box (x0, y0, x1, y1), or None when nothing is foreground."""
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


def localise_all(out_dir, files, crops, maps, titles):
    """--localise: a box per image from its (first method's) map; boxes.csv and localisation.png."""
    plt = a4b.pyplot()
    cols = min(3, len(files))
    fig, axes = plt.subplots(-(-len(files) // cols), cols, figsize=(3.4 * cols, 3.6 * -(-len(files) // cols)),
                             squeeze=False)
    with open(os.path.join(out_dir, "boxes.csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "x0", "y0", "x1", "y1", "mask_share"])
        for ax, f, crop, m, t in zip(axes.flat, files, crops, maps, titles):
            mask, box = localise((crop * 255).round().astype(np.uint8), m)
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


# ---- how far to trust a map: model randomisation, deletion / insertion ----

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


def randomisation_test(model, x, classes, explain, original, seed=RANDOMISE_SEED, desc=None):
    """Cascading model randomisation (Adebayo et al. 2018): re-initialise the weight layers from the top down, one
    more at each step, and compare the map with `original` (the trained model's map of the same method). A map that
    explains the model should change. -> [(layer randomised last, mean rank correlation with the original map over
    the images where it is defined, NaN where it is defined for none)], starting with ("none", 1.0)."""
    rnd = copy.deepcopy(model)
    layers = [(n, m) for n, m in rnd.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))][::-1]
    from tqdm import tqdm
    torch.manual_seed(seed)
    out = [("none", 1.0)]
    for name, m in tqdm(layers, desc=desc, unit="layer", file=sys.stderr, disable=desc is None):
        m.reset_parameters()
        out.append((name, rank_correlation(original, explain(rnd, x, classes)[0]).nanmean().item()))
    return out


@torch.no_grad()
def deletion_insertion(model, x, classes, maps, steps=DEL_STEPS, precision="fp32", chunk=a4b.BATCH_SIZE):
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
            with vgg16.autocast(precision, x.device):
                probs.append(model(frames[i:i + chunk]).float().softmax(dim=1))
        p = torch.cat(probs).view(n, steps + 1, -1).gather(2, classes.view(n, 1, 1).expand(n, steps + 1, 1))[..., 0]
        aucs.append(((p[:, 1:] + p[:, :-1]) / 2).mean(dim=1))                        # trapezoid over [0, 1]
    return aucs[0], aucs[1]


def trust_scores(model, x, classes, maps, explainers, args):
    """--trust for every method. -> {method: randomisation curve}, {method: (deletion AUCs (N,), insertion (N,))}."""
    sanity = {m: randomisation_test(model, x, classes, explainers[m], maps[m].to(x.device),
                                    desc=f"randomisation test, {m}") for m in maps}  # minutes for SmoothGrad and IG
    del_ins = {m: deletion_insertion(model, x, classes, maps[m].to(x.device), precision=args.precision,
                                     chunk=args.batch_size) for m in maps}
    return sanity, del_ins


def write_trust(out_dir, files, sanity, del_ins):
    """sanity.csv, sanity.png and deletion_insertion.csv, and one line per method."""
    with open(os.path.join(out_dir, "sanity.csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "layers_randomised", "last_layer_randomised", "mean_rank_correlation"])
        for m, curve in sanity.items():
            w.writerows([m, i, name, fmt_rho(r)] for i, (name, r) in enumerate(curve))
    plt = a4b.pyplot()
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
    fig.savefig(os.path.join(out_dir, "sanity.png"), dpi=110)
    plt.close(fig)
    with open(os.path.join(out_dir, "deletion_insertion.csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "method", "deletion_auc", "insertion_auc"])
        for m, (dele, ins) in del_ins.items():
            w.writerows([os.path.basename(f), m, f"{d:.4f}", f"{i:.4f}"]
                        for f, d, i in zip(files, dele.tolist(), ins.tolist()))
            print(f"{m:22s} deletion AUC {dele.mean():.3f} (lower is better), insertion AUC {ins.mean():.3f} (higher), "
                  f"rank correlation after randomising every layer {fmt_rho(sanity[m][-1][1])}")


# ---- a painting-style model of assignment_4a.py ----

def load_style_model(path):
    """An AlexNet fine-tuned by assignment_4a.py -> (model in eval mode, style names, preprocessing)."""
    from torchvision.models import AlexNet_Weights, alexnet

    import assignment_4a
    if os.path.isdir(path):
        raise vgg16.RunError(f"--checkpoint {path} is a run folder: give {os.path.join(path, 'best.pt')}")
    if not os.path.isfile(path):
        raise vgg16.RunError(f"--checkpoint {path} does not exist: give runs/<run>/best.pt from assignment_4a.py")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        if not assignment_4a.is_training_checkpoint(ck):
            raise KeyError("no model, config and classes")
        classes, remove = list(ck["classes"]), int(ck["config"]["remove"])
    except vgg16.DAMAGED + (TypeError,) as e:  # not a file of torch.save, or not what assignment_4a.py saves
        raise vgg16.RunError(f"--checkpoint {path} is not a checkpoint of assignment_4a.py "
                             f"({e.__class__.__name__})") from e
    def build():  # its own surgery
        return assignment_4a.remove_last_fc_layers(alexnet(weights=None), remove, len(classes))
    try:  # with "frozen", only the trained tensors are stored: the rest are the ImageNet weights it was trained from
        model = build_from_frozen(ck, remove, len(classes), path) if "frozen" in ck else \
            assignment_4a.load_weights(build, ck["model"])
    except assignment_4a.RunError as e:  # the ImageNet weights missing, or not the ones it was trained from
        raise vgg16.RunError(f"--checkpoint {path}: {e}") from None
    except (RuntimeError, TypeError, AttributeError) as e:
        with torch.device("meta"):
            last = len(build().classifier) - 1
        outputs = next((v.shape[0] for k, v in ck["model"].items() if k.endswith(".weight") and k.startswith(
            f"classifier.{last}.")), None) if isinstance(ck.get("model"), dict) else None
        why = (f"its new layer has {outputs} outputs but it lists {len(classes)} style names" if outputs is not None
               and outputs != len(classes) else str(e).splitlines()[0].rstrip(":"))
        raise vgg16.RunError(f"--checkpoint {path} does not fit a remove-{remove} AlexNet: {why}; use a best.pt that "
                             "assignment_4a.py wrote unchanged") from None
    return model.eval(), classes, AlexNet_Weights.IMAGENET1K_V1.transforms()


def build_from_frozen(ck, remove, n_classes, path):
    """A checkpoint that stores only its trained tensors: the pretrained AlexNet (the weights the run named), the
    run's surgery, then its tensors, the frozen ones checked against the run's digest."""
    import assignment_4a
    model = assignment_4a.remove_last_fc_layers(assignment_4a.load_alexnet(ck["config"].get("weights"))[0], remove,
                                                n_classes)
    return assignment_4a.load_model_state(model, ck, path)


# ---- the script ----

def load_model(args):
    """-> model on the device (channels_last), its class names, its preprocessing, the device."""
    if args.checkpoint:
        model, categories, preprocess = load_style_model(args.checkpoint)
        model, device = a4b.on_device(model, args)
        return model, categories, preprocess, device
    model, device = a4b.pretrained_vgg16(args)
    return model, vgg16.WEIGHTS.meta["categories"], vgg16.WEIGHTS.transforms(), device


def every_method_maps(model, batch, target, explainers, args, device):
    """Every chosen method's maps, batch by batch, for the class C of each image (one forward pass picks it).
    -> {method: (N, H, W)}, classes (N,), probabilities (N, C), {predictions.csv column: [value per image]}."""
    from tqdm import tqdm
    maps, classes, probs, columns = {m: [] for m in explainers}, [], [], {}
    for start in tqdm(range(0, len(batch), args.batch_size), desc="saliency", unit="batch", file=sys.stderr):
        x = batch[start:start + args.batch_size].to(device, memory_format=vgg16.memory_format_of(model))
        with torch.no_grad(), vgg16.autocast(args.precision, device):
            scores = model(x).float()                                   # (n, C): picks C and gives the probabilities
        c = scores.argmax(dim=1) if target is None else torch.full((len(x),), target, device=device)
        classes.append(c.cpu()), probs.append(scores.softmax(dim=1).cpu())
        for m, explain in explainers.items():
            out, cols = explain(model, x, c)
            maps[m].append(out.float().cpu())
            for name, values in cols.items():
                columns.setdefault(name, []).extend(values.tolist())
    return {m: torch.cat(v) for m, v in maps.items()}, torch.cat(classes), torch.cat(probs), columns


def draw_methods(axes, crop, maps, title):
    """The crop, then each method's map ({method: (H, W)}; Grad-CAM's over the crop), and where there is one method,
    its map over the crop, as assignment_4b.draw_row draws it."""
    scaled = {name: smap / max(float(smap.max()), 1e-12) for name, smap in maps.items()}  # [0, 1] for display
    panels = list(scaled.items()) + ([("overlay", next(iter(scaled.values())))] if len(scaled) == 1 else [])
    axes[0].imshow(crop)
    axes[0].set_title(title, fontsize=9)
    for ax, (name, m) in zip(axes[1:], panels):
        over = name in OVERLAID or name == "overlay"
        if over:
            ax.imshow(crop)
        ax.imshow(m, cmap="jet" if over else "gray", alpha=0.5 if over else None)
        ax.set_title(LABELS.get(name, name), fontsize=9)
    for a in axes:
        a.axis("off")


def warn_about_gaps(files, gaps, ig_steps):
    """Integrated Gradients far from complete: which images, and the --ig-steps that should do."""
    if max(gaps) > IG_GAP_WARN:
        worst = max(range(len(gaps)), key=gaps.__getitem__)
        print(f"warning: Integrated Gradients: {sum(g > IG_GAP_WARN for g in gaps)} image(s) have attributions that "
              f"add up to more than {IG_GAP_WARN:.0%} off S_C(I) - S_C(baseline) (worst {gaps[worst]:.1%}, "
              f"{os.path.basename(files[worst])}); --ig-steps {ig_steps_for(gaps[worst], ig_steps)} should "
              "bring it under", file=sys.stderr)


def main(argv=None):
    args = parse_args(argv)
    a4b.check_requirements()
    try:
        a4b.prepare_out(args.out)
        model, categories, preprocess, device = load_model(args)
        if args.class_model is not None:  # the paper's section 2 needs no images
            return run_class_model(args, model, categories, vgg16.resolve_class(args.class_model, categories), device,
                                   preprocess)
        target = vgg16.resolve_class(args.target, categories)
        images = a4b.load_images(a4b.list_images(args.images), preprocess)
    except vgg16.RunError as e:  # the user's mistake, or the machine's state: one line; anything else is a bug
        sys.exit(f"error: {e}")
    methods = METHODS if args.method == "all" else [args.method]
    table = make_explainers(args, ig_baseline(args.ig_baseline, preprocess, device))
    explainers = {m: table[m] for m in methods}
    files, batch = images.files, images.inputs
    maps, classes, probs, columns = every_method_maps(model, batch, target, explainers, args, device)
    gaps = columns.get("ig_completeness_gap")
    titles = a4b.print_predictions(files, classes, probs, categories, notes=gaps and [
        f", Integrated Gradients completeness gap {g:.1%}" for g in gaps])
    if gaps:
        warn_about_gaps(files, gaps, args.ig_steps)
    crops = [a4b.denormalise(x, preprocess) for x in batch]
    rows = [{m: v[i].numpy() for m, v in maps.items()} for i in range(len(files))]
    a4b.save_figures(args.out, files, crops, rows, titles, draw=draw_methods, cols=1 + len(maps) + (len(maps) == 1))
    a4b.write_predictions(os.path.join(args.out, "predictions.csv"), files, probs, classes, categories,
                          {**a4b.centre_columns(maps), **{name: [f"{v:.4f}" for v in values] for name, values in
                                                         columns.items()},
                           **a4b.box_columns(images, maps, a4b.read_boxes(args.images), preprocess)})
    a4b.write_settings(os.path.join(args.out, "settings.json"), args, methods, len(files), images.skipped,
                       model=f"--checkpoint {args.checkpoint}" if args.checkpoint else "VGG-16 (ImageNet)",
                       sg_samples=args.sg_samples, sg_noise=args.sg_noise, ig_steps=args.ig_steps,
                       ig_baseline=args.ig_baseline)
    if args.localise:
        localise_all(args.out, files, crops, maps[methods[0]].numpy(), titles)
    if args.trust:
        write_trust(args.out, files, *trust_scores(model, batch.to(device), classes.to(device), maps, explainers, args))
    a4b.print_written(args.out, len(files), images.skipped)


if __name__ == "__main__":
    main()
