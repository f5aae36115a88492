"""Ground truth for the maps: does each method show the evidence a model used, on a model whose evidence is known?

Real VGG-16 weights say nothing about this: nobody knows which pixels ImageNet's classes rest on. So, after XAI-TRIS
(Clark, Wilming, Haufe 2023): generated images whose class is decided only by a planted pattern, a "T" or an "L"
tetromino at a random place, on white or smooth noise, with a distractor (a square) elsewhere that does not decide
the class. A small CNN learns the task (the run stops and says so if it does not); then every method's map of every
test image is scored against the pattern's true box, beside four baselines that see no model (a random map, a centre
prior, the image's edges, the image's brightness):

  pointing game   the map's maximum inside the true box (Zhang et al. 2016);
  mass share      the share of the map's mass inside it;
  rank AUC        the map as a detector of the box's pixels (area under the ROC curve; 0.5 = no better than chance).

Each with a 95% interval over the test images, and whether the method beats each baseline (a paired 95% interval of
the per-image differences above 0). The sanity checks run on the trained model: cascading randomisation (the
scores should fall to the baselines as layers are re-initialised) and deletion/insertion AUCs.

    python saliency_ground_truth.py                      # -> report/ground_truth/: ground_truth.csv, ground_truth.png
    python saliency_ground_truth.py --out gt/ --train-images 3000 --seed 1

What it cannot show: a small CNN on synthetic patterns is not VGG-16 on photographs. A method that fails here is
suspect everywhere; one that passes has passed one test, on one kind of evidence.
"""
import argparse
import csv
import math
import os
import sys
import time

import torch
from torch import nn

import assignment_4b as a4b
import saliency_extras as ex

from report.stats import Z95, wilson_interval  # the report's statistics, written once

# ---- defaults ----
OUT_DIR = os.path.join(a4b.ROOT, "report", "ground_truth")
SIDE = 64               # image side in pixels
CELL = 4                # a tetromino cell in pixels: the pattern is 3x3 cells, 12x12 pixels
AMPLITUDE = 1.5         # the pattern's and the distractor's added brightness, against noise of std 1
PATTERNS = {"T": [(0, 0), (0, 1), (0, 2), (1, 1)], "L": [(0, 0), (1, 0), (2, 0), (2, 1)]}  # (row, column) cells
DISTRACTOR = [(0, 0), (0, 1), (1, 0), (1, 1)]  # a square: present in every image, says nothing of the class
TRAIN_IMAGES, TEST_IMAGES = 2000, 200
EPOCHS, BATCH, LR = 15, 64, 3e-3
MIN_ACCURACY = 0.95     # below this test accuracy the model has not learned the task: nothing to explain
SEED = 0
METHODS = ex.METHODS
BASELINES = ["uniform", "centre prior", "edges", "brightness"]  # maps that see no model (the last two: the image)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="A saliency benchmark whose evidence is known: planted patterns, a small "
                                            "CNN, every method scored against the true region.")
    p.add_argument("--out", default=OUT_DIR, help="folder for ground_truth.csv and ground_truth.png "
                                                  "(default: report/ground_truth/)")
    p.add_argument("--train-images", type=int, default=TRAIN_IMAGES, help=f"training images (default: {TRAIN_IMAGES})")
    p.add_argument("--test-images", type=int, default=TEST_IMAGES,
                   help=f"test images, the ones explained and scored (default: {TEST_IMAGES})")
    p.add_argument("--epochs", type=int, default=EPOCHS, help=f"most training epochs (default: {EPOCHS})")
    p.add_argument("--seed", type=int, default=SEED, help="seed of the data, the model and the noise (default: "
                                                          f"{SEED})")
    args = p.parse_args(argv)
    for flag in ("train_images", "test_images", "epochs"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    return args


# ---- the data: a planted pattern decides the class ----

def smooth_noise(n, generator):
    """Low-frequency noise: white noise at 1/8 of the side, upsampled; std 1 like the white noise."""
    coarse = torch.randn(n, 3, SIDE // 8, SIDE // 8, generator=generator)
    x = nn.functional.interpolate(coarse, size=(SIDE, SIDE), mode="bilinear", align_corners=False)
    return x / x.flatten(1).std(1).view(n, 1, 1, 1)


def stamp(x, cells, top, left):
    for r, c in cells:
        x[:, top + r * CELL:top + (r + 1) * CELL, left + c * CELL:left + (c + 1) * CELL] += AMPLITUDE


def make_data(n, generator):
    """-> images (n, 3, SIDE, SIDE), labels (n,) (0: T, 1: L), true boxes (n, 4) (x0, y0, x1, y1) of the pattern.
    Half the images have white noise behind, half smooth noise; the pattern and the distractor never overlap."""
    labels = torch.randint(0, 2, (n,), generator=generator)
    x = torch.where(torch.arange(n).view(n, 1, 1, 1) % 2 == 0, torch.randn(n, 3, SIDE, SIDE, generator=generator),
                    smooth_noise(n, generator))
    boxes, span = [], SIDE - 3 * CELL
    for i in range(n):
        while True:
            (py, px), (dy, dx) = torch.randint(0, span + 1, (2, 2), generator=generator).tolist()
            if abs(py - dy) > 3 * CELL or abs(px - dx) > 3 * CELL:  # apart
                break
        stamp(x[i], PATTERNS["TL"[labels[i]]], py, px)
        stamp(x[i], DISTRACTOR, dy, dx)
        boxes.append((px, py, px + 3 * CELL, py + 3 * CELL))
    return x, labels, torch.tensor(boxes, dtype=torch.float32)


# ---- the model: a small CNN laid out as the scripts' methods expect (features, avgpool, classifier) ----

class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU())
        self.avgpool = nn.AdaptiveMaxPool2d(1)  # the pattern is somewhere: a max over positions finds it
        self.classifier = nn.Linear(64, 2)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def train(model, x, y, epochs, seed):
    """A few lines of plain PyTorch: Adam, cross-entropy, shuffled batches. -> the model in eval mode. (SGD learns the
    task too, but into features less selective for the pattern: Grad-CAM then points at it half as often.)"""
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=g).split(BATCH):
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def accuracy(model, x, y):
    return (model(x).argmax(1) == y).float().mean().item()


# ---- maps: the methods and the baselines that see no model ----

def method_maps(model, x, classes, method):
    if method == "vanilla":
        return a4b.saliency_maps(model, x, classes)[0]
    if method == "smoothgrad":
        return ex.smoothgrad(model, x, classes, chunk=256)
    if method == "integrated-gradients":
        return ex.integrated_gradients(model, x, classes, torch.zeros(1, 3, 1, 1), chunk=256).abs().amax(dim=1)
    return ex.gradcam(model, x, classes)


def baseline_maps(x, name, seed):
    n = len(x)
    if name == "uniform":  # a random map: its maximum lands anywhere, its mass is spread evenly on average
        return torch.rand(n, SIDE, SIDE, generator=torch.Generator().manual_seed(seed))
    if name == "centre prior":
        return a4b.centre_prior(SIDE, SIDE)[None].expand(n, -1, -1)
    if name == "brightness":  # what a map that ignores the gradient shows: the pattern and the distractor alike
        return x.abs().amax(dim=1)
    sobel = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    kernels = torch.stack([sobel, sobel.T])[:, None]              # (2, 1, 3, 3): x and y derivatives
    g = nn.functional.conv2d(x.reshape(-1, 1, SIDE, SIDE), kernels, padding=1)
    return g.norm(dim=1).view(n, 3, SIDE, SIDE).amax(dim=1)        # edge strength, max over colour channels


# ---- scores against the truth ----

def scores(maps, boxes):
    """-> per image: pointing hit (0/1), mass share in the box, rank AUC of the map for the box's pixels; (n,) each."""
    hits, mass, auc = [], [], []
    for m, b in zip(maps, boxes.tolist()):
        hit, share = a4b.box_measures(m, b, tolerance=0)
        hits.append(float(hit))
        mass.append(share)
        inside = torch.zeros(SIDE, SIDE, dtype=torch.bool)
        inside[int(b[1]):int(b[3]), int(b[0]):int(b[2])] = True
        auc.append(rank_auc(m.flatten(), inside.flatten()))
    return torch.tensor(hits), torch.tensor(mass), torch.tensor(auc)


def rank_auc(values, positive):
    """Area under the ROC curve of `values` as a detector of `positive`: the Mann-Whitney U statistic over both
    counts, with ties counted as half (the average ranks of saliency_extras.average_ranks)."""
    ranks = ex.average_ranks(values[None].double())[0] + 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))




def mean_interval(v, proportion=False):
    """Mean and its 95% interval over the images: Wilson's for a proportion (the pointing game; the report's
    wilson_interval), else the normal one (n >= 30 here)."""
    v, n = v.double(), len(v)
    if proportion:
        p = v.mean().item()
        return (p, *wilson_interval(round(p * n), n))
    half = Z95 * v.std().item() / math.sqrt(n) if n > 1 else float("nan")
    return v.mean().item(), v.mean().item() - half, v.mean().item() + half


def beats(a, b):
    """a's per-image scores beat b's: the paired 95% interval of the differences lies above 0."""
    return mean_interval(a - b)[1] > 0


# ---- the benchmark ----

def evaluate_maps(all_maps, x, classes, boxes, model):
    """-> {name: (hits, mass, auc)} and {name: (deletion AUC mean, insertion AUC mean)} for every map."""
    scored = {name: scores(m, boxes) for name, m in all_maps.items()}
    faithful = {}
    for name, m in all_maps.items():
        dele, ins = ex.deletion_insertion(model, x, classes, m.contiguous(), chunk=512)
        faithful[name] = (dele.mean().item(), ins.mean().item())
    return scored, faithful


def randomisation_rows(model, x, classes, boxes, seed):
    """Cascading randomisation of the trained model, top down: each method's scores as more layers are random."""
    import copy
    rnd = copy.deepcopy(model)
    layers = [(n, m) for n, m in rnd.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))][::-1]
    torch.manual_seed(seed)
    rows = []
    for k, (name, layer) in enumerate(layers, start=1):
        layer.reset_parameters()
        for method in ("vanilla", "gradcam"):
            hits, mass, auc = scores(method_maps(rnd, x, classes, method), boxes)
            rows.append((f"{method} (randomised)", k, name, hits, mass, auc))
    return rows


def write_scores(path, scored, faithful, random_rows):
    head = ["kind", "map", "layers_randomised", "last_layer_randomised"] + [
        f"{s}{part}" for s in ("pointing", "mass_share", "rank_auc") for part in ("", "_lo", "_hi")] + [
        "deletion_auc", "insertion_auc"] + [f"beats_{b.replace(' ', '_')}" for b in BASELINES]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(head)
        for name, (hits, mass, auc) in scored.items():
            kind = "method" if name in METHODS else "baseline"
            w.writerow([kind, name, 0, ""] + [f"{v:.4f}" for j, s in enumerate((hits, mass, auc))
                                              for v in mean_interval(s, proportion=j == 0)]
                       + [f"{v:.4f}" for v in faithful[name]]
                       + [("yes" if all(beats(s, scored[b][i]) for i, s in enumerate((hits, mass, auc)))
                           else "no") if kind == "method" else "" for b in BASELINES])
        for name, k, layer, hits, mass, auc in random_rows:
            w.writerow(["randomised", name, k, layer] + [f"{v:.4f}" for j, s in enumerate((hits, mass, auc))
                                                         for v in mean_interval(s, proportion=j == 0)]
                       + ["", ""] + [""] * len(BASELINES))


def figure(path, x, boxes, all_maps, k=4):
    plt = a4b.pyplot()
    names = list(all_maps)
    fig, axes = plt.subplots(k, 1 + len(names), figsize=(1.7 * (1 + len(names)), 1.8 * k), squeeze=False)
    for i in range(k):
        img = x[i].permute(1, 2, 0)
        axes[i][0].imshow(((img - img.min()) / (img.max() - img.min())).numpy())
        for j, name in enumerate(names):
            axes[i][j + 1].imshow(all_maps[name][i].numpy(), cmap="gray")
        for ax in axes[i]:
            x0, y0, x1, y1 = boxes[i].tolist()
            ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, color="lime", lw=1.2))
            ax.axis("off")
    for j, name in enumerate(["image, true box"] + names):
        axes[0][j].set_title(name, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def print_table(scored):
    print(f"{'map':22s} {'pointing game':>15s} {'mass in box':>13s} {'rank AUC':>10s}")
    for name, (hits, mass, auc) in scored.items():
        print(f"{name:22s} " + " ".join(f"{mean_interval(s)[0]:>{w}.3f}" for s, w in ((hits, 15), (mass, 13),
                                                                                       (auc, 10))))


def main(argv=None):
    args = parse_args(argv)
    t0 = time.time()
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    x_train, y_train, _ = make_data(args.train_images, g)
    x_test, y_test, boxes = make_data(args.test_images, g)
    model = train(SmallCNN(), x_train, y_train, args.epochs, args.seed)
    acc = accuracy(model, x_test, y_test)
    print(f"small CNN: test accuracy {acc:.3f} on {args.test_images} images (chance 0.5)")
    if acc < MIN_ACCURACY:
        sys.exit(f"error: the model did not learn the task (test accuracy {acc:.3f} < {MIN_ACCURACY}): its maps would "
                 "explain nothing; give more --train-images or --epochs")
    classes = y_test  # explain the true class: the one whose evidence is known
    all_maps = {m: method_maps(model, x_test, classes, m).detach() for m in METHODS}
    all_maps.update({b: baseline_maps(x_test, b, args.seed) for b in BASELINES})
    scored, faithful = evaluate_maps(all_maps, x_test, classes, boxes, model)
    random_rows = randomisation_rows(model, x_test, classes, boxes, args.seed)
    os.makedirs(args.out, exist_ok=True)
    write_scores(os.path.join(args.out, "ground_truth.csv"), scored, faithful, random_rows)
    figure(os.path.join(args.out, "ground_truth.png"), x_test, boxes, all_maps)
    print_table(scored)
    print(f"wrote ground_truth.csv and ground_truth.png to {args.out} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
