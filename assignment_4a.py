"""Part 1: transfer learning. Fine-tune an ImageNet AlexNet on WikiArt painting styles, watched in TensorBoard.

The sheet's items, in the order this file gives them:
  head surgery   `remove_last_fc_layers`: AlexNet's classifier is fc6 -> fc7 -> fc8 (1000 ImageNet classes);
                 remove fc8 (--remove 1) or fc7 and fc8 (--remove 2), then add one new FC layer, 4096 -> one
                 output per style. `set_trainable`: only the new layer (--train new), every FC layer (fc) or
                 the whole network (all) trains.
  loss           `cross_entropy`, written out; `accuracy`, top-1.
  optimisation   `SGD`: gradient descent with momentum and weight decay, written out; `lr_at`: its schedule.
  training       `train_one_epoch` and `evaluate`.
  TensorBoard    `log_step` and `log_epoch`: training loss, train and validation accuracy, and more.
Then one run, its epoch loop in one place (`train_run`); `main`, its flags and the settings, each declared once
(`Config`); then the machinery (weights, devices, figures, checkpoints, the decode cache, frozen layers run once,
resuming).
One rule for both graded scripts: each stands alone but for vgg16.py, which assignment_4b.py imports (the sheet's
layout); a helper vgg16.py holds for it (devices, precision, image decoding, weights) is copied here whole, and
the project's tests fail when any name defined in two scripts differs. A user's mistake is a `RunError`, printed
in one line; any other exception is a bug and keeps its traceback.

    python download_wikiart.py                          # datasets/wikiart/{train,val}/<Style>/*.jpg
    python assignment_4a.py --remove 1 --train new      # seconds per epoch: frozen features computed once
    python assignment_4a.py --remove 2 --train all --epochs 15 --precision bf16
    python assignment_4a.py --compare                   # --remove 1 2 x --train new fc, then a table
    python assignment_4a.py --resume runs/remove1-new-20261124-101500
    tensorboard --logdir runs

Each run writes runs/<remove>-<train>-<time>/: TensorBoard events (loss/train, loss/val, accuracy/train,
accuracy/val per epoch; loss/train_step; lr; the validation confusion matrix; hparams), config.json,
metrics.json, last.pt and best.pt. Images are decoded once into a memory-mapped cache beside the dataset
(datasets/wikiart/.cache/), rebuilt when the dataset's files change.
"""


import argparse
import csv
import errno
import hashlib
import inspect
import json
import math
import os
import pickle
import random
import re
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
import urllib.error
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import NamedTuple, Optional

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import nn


# ---- defaults ----

ROOT = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.path.join(ROOT, "datasets", "wikiart")
RUNS_DIR = os.path.join(ROOT, "runs")
EPOCHS = 10           # with --train new the loss flattens after ~10 passes over ~3200 paintings
BATCH_SIZE = 64       # fits in < 4 GB for a full fine-tune; small enough for ~50 steps an epoch
LR = 1e-3             # 1/10 of AlexNet's original 0.01: fine-tuning should nudge pretrained weights, not erase them
MOMENTUM = 0.9        # as in the AlexNet paper
WEIGHT_DECAY = 5e-4   # as in the AlexNet paper; regularises the new layer on a small dataset
SEED = 0
DECODE_WORKERS = os.cpu_count() or 1  # threads that decode images into the cache
DEVICE = "auto"       # cuda, then mps, then cpu
PRECISION = "fp32"    # IEEE single precision on every device: see set_precision
SEED_STREAMS = {"shuffle": 0, "crops": 500, "dropout": 999}  # per-epoch random streams: seed x 1000 + epoch + this
COMPARE_REMOVE = [1, 2]        # --compare: every --remove here x every --train here
COMPARE_TRAIN = ["new", "fc"]
CACHE_SIZE = 256      # images are cached as the centre 256x256 of a shorter-side-256 resize (uint8)
CROP = 224            # the network's input: centre crop (eval), random crop + flip (train, with --augment)
EVAL_BATCH = 256      # images (or feature vectors) per evaluation step: no gradients, so larger than training's
FROZEN_BATCH = 128    # images per pass through the frozen convolutional layers (once per image)
FEATURE_BATCH = 1024  # feature vectors per pass through frozen FC layers
DEVICE_CACHE_SHARE = 0.5  # on a GPU, the uint8 images move there if they take at most this share of its free memory
DECODE_VERSION = 3    # part of the cache key: bump when the cache changes (2: open_rgb as in 4b; 3: file names kept)
MISTAKES_SHOWN = 8    # the validation paintings the best epoch gets most confidently wrong, in TensorBoard
DRAFT_SIZE = 512        # big JPEGs are decoded at reduced scale, keeping both sides >= this (2x the 256 resize)
MAX_PIXELS = 2 * 89_478_485  # larger images are refused (PIL's decompression-bomb limit)
MAX_ASPECT = 20         # images longer than this many times their width (or wider) are refused
PRECISIONS = ("fp32", "tf32", "bf16")  # --precision: see set_precision
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
# What PIL raises for damaged image data, beyond UnidentifiedImageError: OSError (truncated), SyntaxError (a broken
# PNG chunk), EOFError, struct.error and zlib.error from its plugins, ValueError. A programming error is not among them.
DAMAGED_IMAGE = (OSError, SyntaxError, EOFError, ValueError, struct.error, zlib.error)


# ---- the sheet's step 4: head surgery, and what trains ----

def remove_last_fc_layers(model, n, num_classes):
    """Drop the last n FC layers (fc8, or fc7+fc8, with fc7's ReLU) and add one new FC layer: 4096 -> num_classes."""
    # BEGIN SOLUTION: Part 1, step 4, the head surgery: remove the last n FC layers of model.classifier (fc8, or fc7 and
    #   fc8) and add one new nn.Linear(4096, num_classes) in their place; return the model
    layers = list(model.classifier)  # Dropout, fc6, ReLU, Dropout, fc7, ReLU, fc8
    linear = [i for i, m in enumerate(layers) if isinstance(m, nn.Linear)]
    assert len(linear) == 3, "expected AlexNet's classifier with fc6, fc7, fc8"
    cut = linear[-1] if n == 1 else linear[-2]  # keep everything before the first removed FC layer
    kept = layers[:cut]  # --remove 2 keeps the dropout that fed fc7: it now feeds the new layer
    new = nn.Linear(layers[linear[-n - 1]].out_features, num_classes)  # 4096 inputs in both cases
    model.classifier = nn.Sequential(*kept, new)
    return model
    # END SOLUTION


def set_trainable(model, train):
    """Freeze everything, then unfreeze the new layer / all FC layers / everything. -> trained parameters."""
    # BEGIN SOLUTION: Part 1, step 4, what trains: set requires_grad so that only the new layer (new), every FC layer
    #   (fc) or the whole network (all) trains; return the trained parameters
    for p in model.parameters():
        p.requires_grad_(train == "all")
    if train == "fc":
        for m in model.classifier:
            for p in m.parameters():
                p.requires_grad_(True)
    for p in model.classifier[-1].parameters():
        p.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]
    # END SOLUTION


# ---- the sheet's step 3: the loss, the accuracy, gradient descent written out ----

def cross_entropy(logits, labels):
    """Mean over the batch of -log softmax(logits)[true class]: the loss SGD minimises."""
    # BEGIN SOLUTION: Part 1, step 3, the loss: return the batch's mean of -log softmax(logits)[i, labels[i]], written
    #   out (not F.cross_entropy)
    return -(logits.log_softmax(dim=1).gather(1, labels[:, None])).mean()
    # END SOLUTION


def accuracy(logits, labels):
    """Top-1 accuracy: the share of images whose highest score is the true style."""
    # BEGIN SOLUTION: Part 1, step 3, the accuracy: return the share (a float) of rows of logits whose highest score is
    #   at labels[i]
    return (logits.argmax(dim=1) == labels).float().mean().item()
    # END SOLUTION


class SGD:
    """Gradient descent with momentum and weight decay, written out: for every trained weight w with gradient g,
        d <- g + weight_decay * w                      (the L2 penalty's gradient)
        v <- d on the first step, else momentum * v + d  (the velocity, kept between steps)
        w <- w - lr * v
    the update torch.optim.SGD makes (dampening 0, no Nesterov), bit for bit; d is written over the gradient.
    state_dict() has torch.optim.SGD's layout, so a checkpoint's optimizer state (the velocities) loads in either."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        self.params = list(params)
        self.param_groups = [{"lr": lr, "momentum": momentum, "dampening": 0, "weight_decay": weight_decay,
                              "nesterov": False, "maximize": False}]
        self.velocity = [None] * len(self.params)

    def zero_grad(self):
        """Forget the last step's gradients (backward() adds to .grad): None, so the next backward() writes them."""
        for w in self.params:
            w.grad = None

    @torch.no_grad()
    def step(self):
        group = self.param_groups[0]
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        # BEGIN SOLUTION: Part 1, step 3, gradient descent: for every weight w with a gradient, d = w.grad +
        #   weight_decay * w, the velocity v = d on the first step and momentum * v + d after (kept in
        #   self.velocity[i]), then w -= lr * v
        for i, w in enumerate(self.params):
            d = w.grad
            if d is None:
                continue
            if weight_decay:  # in place: the gradient is not read again (zero_grad drops it), and a new 230 MB
                d.add_(w, alpha=weight_decay)  # tensor per step for AlexNet's 57 M weights cost 3x this whole step
            if momentum:
                if self.velocity[i] is None:
                    self.velocity[i] = d.clone()
                else:
                    self.velocity[i].mul_(momentum).add_(d)
                d = self.velocity[i]
            w.add_(d, alpha=-lr)
        # END SOLUTION

    def state_dict(self):
        return {"state": {i: {"momentum_buffer": v} for i, v in enumerate(self.velocity) if v is not None},
                "param_groups": [dict(self.param_groups[0], params=list(range(len(self.params))))]}

    def load_state_dict(self, state):
        (group,) = state["param_groups"]
        if len(group["params"]) != len(self.params):
            raise RunError(f"the checkpoint's optimizer has {len(group['params'])} trained tensors, this model "
                           f"{len(self.params)}")
        self.param_groups[0].update({k: group[k] for k in ("lr", "momentum", "weight_decay") if k in group})
        for i, w in enumerate(self.params):
            v = state["state"].get(i, state["state"].get(str(i), {})).get("momentum_buffer")
            self.velocity[i] = None if v is None else v.to(device=w.device, dtype=w.dtype).clone()


def lr_at(segments, epoch):
    """The learning rate of epoch (from 0): each segment [start, end, lr] is a half cosine from lr at `start` toward 0
    at `end`. A run has one segment; each extension by --resume --epochs adds one for the epochs not yet trained."""
    start, end, lr = next(seg for seg in reversed(segments) if seg[0] <= epoch)
    return lr * 0.5 * (1 + math.cos(math.pi * (epoch - start) / (end - start)))


# ---- one epoch of training, one evaluation ----

def train_one_epoch(trained_part, split, optimizer, cfg, epoch, device, log, first_step):
    """One pass of SGD over the split; log(step, loss) after every step, steps counted from first_step.
    -> mean loss, accuracy (over the batches as they were trained: under dropout, and augmentation if on)."""
    from tqdm import tqdm
    trained_part.train()
    n, batch_size = len(split.labels), cfg.batch_size
    order = batch_order(n, epoch, cfg.seed)
    crops = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch, "crops")) if split.augment else None
    total_loss, total_correct = 0.0, 0
    bar = tqdm(rows_in_batches(split.x, order, batch_size, device), total=math.ceil(n / batch_size),
               desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step", leave=False, file=sys.stderr)
    for k, (idx, rows) in enumerate(bar):
        x, y = split.batch(idx, device, cfg.precision, crops, rows), split.labels[idx].to(device)
        with autocast(cfg.precision, device):
            logits = trained_part(x)
        loss = cross_entropy(logits.float(), y)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the training loss became {loss.item()} in epoch {epoch + 1} (step {k + 1}): "
                                     "lower --lr and run again")
        optimizer.zero_grad()
        loss.backward()   # d loss / d w for every trained parameter
        optimizer.step()  # the written-out update: see SGD.step
        total_loss += loss.item() * len(idx)
        total_correct += round(accuracy(logits, y) * len(idx))  # an exact count of correct images
        bar.set_postfix(loss=f"{loss.item():.3f}")
        log(first_step + k, loss.item())
    return total_loss / n, total_correct / n


@torch.inference_mode()
def evaluate(trained_part, split, cfg, device, num_classes):
    """-> mean loss, top-1 accuracy, confusion matrix (true x predicted) on the whole split, and every image's class
    probabilities (N, C) for the per-painting record of the best epoch."""
    trained_part.eval()
    total_loss, confusion, probs = 0.0, torch.zeros(num_classes, num_classes, dtype=torch.long), []
    for i in range(0, len(split.labels), EVAL_BATCH):
        idx = torch.arange(i, min(i + EVAL_BATCH, len(split.labels)))
        x, y = split.batch(idx, device, cfg.precision), split.labels[idx].to(device)
        with autocast(cfg.precision, device):
            logits = trained_part(x).float()
        total_loss += cross_entropy(logits, y).item() * len(y)
        confusion += torch.bincount(y.cpu() * num_classes + logits.argmax(1).cpu(),
                                    minlength=num_classes ** 2).view(num_classes, num_classes)
        probs.append(logits.softmax(dim=1).cpu())
    return (total_loss / len(split.labels), confusion.diag().sum().item() / len(split.labels), confusion,
            torch.cat(probs))


# ---- the sheet's step 5: TensorBoard, every write in one place ----

def log_step(writer, step, loss):
    # BEGIN SOLUTION: Part 1, step 5, TensorBoard: write the training loss of this SGD step as the scalar
    #   loss/train_step at this step
    writer.add_scalar("loss/train_step", loss, step)
    # END SOLUTION


def log_epoch(writer, cfg, record, final=None):
    """One epoch's scalars. final: the run's end, given as (best validation accuracy, last epoch's record): its
    hyper-parameters and results go to the HParams tab."""
    if record is not None:
        # BEGIN SOLUTION: Part 1, step 5, TensorBoard: write the epoch's training loss, validation loss, train and
        #   validation accuracy and learning rate (record's loss_train, loss_val, accuracy_train, accuracy_val, lr) as
        #   scalars loss/train, loss/val, accuracy/train, accuracy/val, lr at step record['epoch']
        for tag, key in (("loss/train", "loss_train"), ("loss/val", "loss_val"), ("accuracy/train", "accuracy_train"),
                         ("accuracy/val", "accuracy_val"), ("lr", "lr")):
            writer.add_scalar(tag, record[key], record["epoch"])
        # END SOLUTION
    if final is not None:
        best, last = final
        writer.add_hparams({k: getattr(cfg, k) for k in settings(hparam=True)}
                           | {"augment": str(cfg.augment), "precision": cfg.precision_ran},
                           {"hparam/best_accuracy_val": best, "hparam/final_accuracy_val": last.get("accuracy_val", 0),
                            "hparam/final_accuracy_train": last.get("accuracy_train", 0)}, run_name=".")


def log_best(writer, epoch, confusion_fig, mistakes_fig):
    """The best epoch so far, in the Images tab: its confusion matrix and its most confident mistakes."""
    writer.add_figure("confusion_matrix/val", confusion_fig, epoch)
    if mistakes_fig is not None:
        add_jpeg_figure(writer, "most_confident_mistakes/val", mistakes_fig, epoch)


def add_jpeg_figure(writer, tag, fig, step):
    """A figure of photographs (paintings) in the Images tab as a JPEG: add_figure stores a PNG, 0.6 MB for eight
    paintings at each new best epoch, which the hand-in's event files then carry; this is about a tenth of that."""
    import io

    from PIL import Image
    from tensorboard.compat.proto.summary_pb2 import Summary
    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", dpi=100, pil_kwargs={"quality": 85})
    pyplot().close(fig)
    w, h = Image.open(io.BytesIO(buf.getvalue())).size
    image = Summary.Image(height=h, width=w, colorspace=3, encoded_image_string=buf.getvalue())
    writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)


# ---- one run: the epoch loop, and what it calls first ----

def train_run(cfg, data, resume=None):
    """Train one (remove, train) configuration; returns its metrics dict. data: both splits, decoded (load_data).
    resume: (run folder, its last.pt) to continue. Each epoch: its learning rate, one pass of SGD, the evaluation,
    its record (metrics.json, TensorBoard, last.pt and best.pt). Ctrl-C saves interrupted.pt and says what was kept;
    a diverging loss ends the run, returned with metrics["diverged"] set."""
    from torch.utils.tensorboard import SummaryWriter
    t0 = time.time()  # the run's time includes its one-off frozen-layer pass
    device = resolve_device(cfg.device)
    warn_if_slow_bf16(cfg.precision, device)
    cfg = replace(cfg, precision_ran=apply_precision(cfg.precision, device))  # config.json and metrics.json say it
    seed_everything(cfg.seed)
    model, trained, param_counts, norm = build_model(cfg, len(data.classes), device)
    schedule = lr_schedule(cfg)  # the learning rate of every epoch: SGD takes its epoch's rate below
    optimizer = SGD(trained, lr=lr_at(schedule, 0), momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    frozen = frozen_record(model, cfg.weights)  # once a run, not each epoch: 0.15 s on a CPU for 57 M weights
    run = start_or_resume(Run(cfg, data.classes, "", model, optimizer, param_counts, data, device, frozen=frozen),
                          resume)
    print(f"\n== run {run.dir}: remove {cfg.remove} FC layer(s), train {cfg.train}, "
          f"augment {cfg.augment}, {cfg.precision_ran} on {device}\n{layer_table(model, trained)}")
    try:
        trained_part, train, val = prepare_data(run, norm)
    except KeyboardInterrupt:
        print(f"\ninterrupted before epoch {run.start + 1}, while the frozen layers ran once over the images: "
              + what_was_kept(run, run.start))
        raise
    steps_per_epoch = math.ceil(len(train.labels) / cfg.batch_size)
    # purge_step: a resumed run drops the step losses an interrupted epoch had logged after the last checkpoint
    writer = SummaryWriter(run.dir, purge_step=run.start * steps_per_epoch if resume else None)
    conditions = train_conditions(trained_part, train.augment)
    epoch = run.start
    try:
        for epoch in range(run.start, cfg.epochs):
            optimizer.param_groups[0]["lr"] = lr_at(schedule, epoch)
            torch.manual_seed(epoch_seed(cfg.seed, epoch, "dropout"))  # dropout draws from the global generator
            t_start = time.time()
            loss_train, accuracy_train = train_one_epoch(trained_part, train, optimizer, cfg, epoch, device,
                                                         lambda step, loss: log_step(writer, step, loss),
                                                         epoch * steps_per_epoch)
            seconds_train = time.time() - t_start
            loss_val, accuracy_val, confusion, probs = evaluate(trained_part, val, cfg, device, len(run.classes))
            run.history.append({"epoch": epoch + 1, "loss_train": loss_train, "loss_val": loss_val,
                                "accuracy_train": accuracy_train, "accuracy_val": accuracy_val,
                                "lr": optimizer.param_groups[0]["lr"], "seconds": time.time() - t_start,
                                "seconds_train": seconds_train, "precision": cfg.precision_ran,
                                "train_conditions": conditions})
            improved = accuracy_val > run.best
            run.best = max(run.best, accuracy_val)
            if improved:  # the best epoch's figures, and its per-painting predictions for the report's tests
                write_val_predictions(run, probs)
                log_best(writer, epoch + 1, confusion_figure(confusion, run.classes),
                         mistakes_figure(run.data.val, probs, run.classes))
            log_epoch(writer, cfg, run.history[-1])
            write_metrics(run, confusion if improved else None)  # first: small, and kept if the disk fills up next
            save_checkpoint(run, "last.pt", epoch + 1)
            if improved:  # the same bytes as last.pt: one file under both names, not two copies of up to 456 MB
                link_checkpoint(os.path.join(run.dir, "last.pt"), os.path.join(run.dir, "best.pt"))
            print(f"epoch {epoch + 1:3d}/{cfg.epochs}  loss {loss_train:.4f} / {loss_val:.4f}  accuracy "
                  f"{accuracy_train:.3f} / {accuracy_val:.3f} (train, {conditions} / val)  "
                  f"{run.history[-1]['seconds']:5.1f}s train+eval" + ("  * best" if improved else ""))
        log_epoch(writer, cfg, None, final=(run.best, run.history[-1] if run.history else {}))
    except KeyboardInterrupt:
        save_checkpoint(run, "interrupted.pt", epoch)
        print(f"\ninterrupted in epoch {epoch + 1}: interrupted.pt holds the weights at the moment of Ctrl-C; "
              + what_was_kept(run, epoch))
        raise
    except FloatingPointError as e:
        run.diverged = f"{e}; the checkpoints of the finished epochs are in {run.dir}"
        print(f"error: run {os.path.basename(run.dir)} diverged: {run.diverged}", file=sys.stderr)
    finally:  # Ctrl-C, a full disk: what was logged reaches the disk, then the error goes on
        writer.close()
    stale = os.path.join(run.dir, "interrupted.pt")
    if not run.diverged and os.path.exists(stale):  # the epochs it was cut from are trained now
        os.remove(stale)
        print(f"removed {stale}: the weights of an earlier Ctrl-C, now behind last.pt")
    metrics = write_metrics(run)
    metrics["seconds_total"], metrics["run_dir"] = time.time() - t0, run.dir
    return metrics


def build_model(cfg, num_classes, device):
    """The pretrained AlexNet after the surgery, with its trained part unfrozen.
    -> model, trained parameters, parameter counts, the weights' normalisation (mean, std) as (1, 3, 1, 1)."""
    model, imagenet = load_alexnet(cfg.weights)
    counts = {"imagenet_alexnet": sum(p.numel() for p in model.parameters())}  # 61.1 M before the surgery
    model = remove_last_fc_layers(model, cfg.remove, num_classes)
    trained = set_trainable(model, cfg.train)
    counts.update(after_surgery=sum(p.numel() for p in model.parameters()), trained=sum(p.numel() for p in trained))
    model.to(device, memory_format=torch.channels_last)  # PyTorch's fast path for convolutions (1.2x here on a CPU)
    tf = imagenet.transforms()
    return model, trained, counts, (torch.tensor(tf.mean).view(1, 3, 1, 1), torch.tensor(tf.std).view(1, 3, 1, 1))


def lr_schedule(cfg):
    """The run's learning rate of every epoch, as [first epoch, end, lr] segments for `lr_at`: one half cosine from
    --lr over --epochs, or, for a run extended by --resume --epochs, the segments resume_config recorded."""
    return cfg.lr_segments or [[0, cfg.epochs, cfg.lr]]


def train_conditions(trained_part, augment):
    """What was active while the training set trained, for the epoch line and the report: dropout (in the trained
    part: the frozen layers run in eval mode) and augmentation."""
    active = [w for w, on in (("dropout", any(isinstance(m, nn.Dropout) and m.p > 0 for m in trained_part.modules())),
                              ("augmentation", augment)) if on]
    return "under " + " and ".join(active) if active else "as evaluated"


def what_was_kept(run, finished):
    """After Ctrl-C: what the run folder holds, and the command that goes on from there. A new run stopped before it
    wrote anything but config.json leaves no folder: the same command starts it again."""
    if finished:
        return (f"last.pt holds the {finished} finished epoch(s); continue with: python assignment_4a.py --resume "
                f"{run.dir}")
    if os.listdir(run.dir) == ["config.json"]:
        shutil.rmtree(run.dir)
        return f"nothing was trained, so {run.dir} is removed: the same command starts the run again"
    return (f"no epoch finished, so there is nothing to resume: start the run again (add --name "
            f"{os.path.basename(run.dir)} --overwrite to reuse its folder {run.dir})")


# ---- the recipe: main, its flags, the settings, the plan of runs ----

class RunError(Exception):
    """A mistake in what the user gave, or a state of the machine, that stops the script (a missing file, a flag that
    cannot be, a full disk): its message says what to do, and main prints it in one line. Anything else is a bug and
    keeps its traceback. (Copied, unchanged, in assignment_4a.py, download_wikiart.py and vgg16.py.)"""


def main(argv=None):
    args = parse_args(argv)
    check_requirements()
    stop_on_sigterm()
    torch.backends.cudnn.benchmark = True
    results = []
    try:
        if args.resume:
            cfg, checkpoint = resume_config(args)
            plan, resume = [cfg], (args.resume, checkpoint)
        else:
            plan, resume = plan_runs(args), None
        try:
            data = load_data(plan[0], expected_classes=list(checkpoint["classes"]) if resume else None,
                                run_dir=args.resume)
        except KeyboardInterrupt:
            print("\ninterrupted while decoding the images into the cache: nothing was trained yet; the same command "
                  "starts again (the cache is written whole or not at all)")
            raise
        for cfg in plan:
            results.append(train_run(cfg, data, resume=resume))
    except RunError as e:  # the user's to mend; any other exception is a bug and shows its traceback
        sys.exit(f"error: {e}")
    except PermissionError as e:  # --runs on a read-only drive
        sys.exit(f"error: cannot write {e.filename} ({e.strerror}): give --runs a folder you can write to")
    except KeyboardInterrupt:
        sys.exit(130)
    if len(results) > 1 or args.compare:
        print("\n" + comparison_table(results))
    logdir = os.path.dirname(os.path.abspath(results[-1]["run_dir"]))  # absolute: it works from any folder
    print(f"\nTensorBoard: tensorboard --logdir {logdir}")
    diverged = [m for m in results if m.get("diverged")]
    if diverged:
        sys.exit("error: " + "; ".join(f"run {m['run']} diverged: {m['diverged']}" for m in diverged))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Fine-tune an ImageNet AlexNet on WikiArt styles after head surgery.")
    p.add_argument("--data", default=DATA_DIR,
                   help="dataset with train/<Style>/ and val/<Style>/ image folders (default: datasets/wikiart/ in "
                        "the project)")
    p.add_argument("--remove", type=int, nargs="+", choices=[1, 2], default=[1],
                   help="FC layers to remove before adding the new one: 1 = fc8, 2 = fc7 and fc8; several values run "
                        "one after another (default: 1)")
    p.add_argument("--train", nargs="+", choices=["new", "fc", "all"], default=["new"],
                   help="what trains: the new layer only, all FC layers, or the whole network; several values run one "
                        "after another. The frozen part always runs in eval mode, so with `new` the dropout before "
                        "fc6/fc7 is off: a linear probe on fixed features (default: new)")
    p.add_argument("--compare", action="store_true",
                   help=f"run --remove 1 2 x --train new fc ({len(COMPARE_REMOVE) * len(COMPARE_TRAIN)} runs) and "
                        "print a comparison table")
    p.add_argument("--epochs", type=int, default=EPOCHS,
                   help="passes over the training set; with --resume, the new total (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="images per SGD step (default: %(default)s)")
    p.add_argument("--lr", type=float, default=LR,
                   help="SGD learning rate of epoch 1, then cosine-annealed per epoch: epoch e of E runs at "
                        "lr x (1 + cos(pi (e-1) / E)) / 2, so the last epoch's rate is small but not 0 (default: "
                        "%(default)s)")
    p.add_argument("--momentum", type=float, default=MOMENTUM, help="SGD momentum (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=WEIGHT_DECAY,
                   help="L2 penalty on the trained weights (default: %(default)s)")
    p.add_argument("--augment", choices=["auto", "on", "off"], default="auto",
                   help="random 224 crop + horizontal flip of training images; auto = on only for --train all "
                        "(off lets frozen layers run once per image instead of once per epoch) (default: auto)")
    p.add_argument("--precision", choices=PRECISIONS, default=PRECISION,
                   help="fp32: IEEE single precision on every device (TF32 switched off). tf32: TF32 tensor cores for "
                        "convolutions and matrix products on NVIDIA GPUs from Ampere on, the fast path for training "
                        "there (fp32 elsewhere). bf16: bf16 autocast (CPU and GPU), faster where the hardware has bf16 "
                        "units, much slower on CPUs without them. The precision that ran goes to config.json and "
                        "metrics.json (default: %(default)s)")
    p.add_argument("--device", default=DEVICE, help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps "
                                                    "(default: %(default)s)")
    p.add_argument("--weights", default=None,
                   help="local AlexNet ImageNet state dict (.pth) (default: torchvision's "
                        "AlexNet_Weights.IMAGENET1K_V1, "
                        "downloaded once into torchvision's cache)")
    p.add_argument("--runs", default=RUNS_DIR,
                   help="folder that receives one sub-folder per run (default: runs/ in the project)")
    p.add_argument("--name", default=None,
                   help="run folder name under --runs (default: remove<N>-<train>-<date-time>, with -2, -3 ... "
                        "added when two runs start in the same second); an existing name is refused unless --overwrite")
    p.add_argument("--overwrite", action="store_true", help="replace the run folder --name if it already exists")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its last.pt, exactly as if it had not stopped; --data, "
                        "--device, --workers, --precision may change, and --epochs N extends it (the epochs not yet "
                        "trained anneal from the rate the next epoch would have had, or a finished run's last rate, "
                        "toward 0 at epoch N); flags that define the run (surgery, what trains, lr ...) are refused")
    p.add_argument("--seed", type=int, default=SEED,
                   help="seed for initialisation, shuffling, augmentation and dropout (default: %(default)s)")
    p.add_argument("--workers", type=int, default=DECODE_WORKERS,
                   help="threads that decode images for the cache (default: the number of CPU cores, %(default)s)")
    args = p.parse_args(argv)
    check_args(p, args)
    args.given = given_flags(p, argv)
    return args


def check_args(p, args):
    """Numbers in range, names that are folder names; --compare's runs filled in."""
    if args.compare:
        args.remove, args.train = list(COMPARE_REMOVE), list(COMPARE_TRAIN)
    for flag in ("epochs", "batch_size", "workers"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be at least 1")
    for flag, value, low in (("lr", args.lr, "positive"), ("momentum", args.momentum, ">= 0"),
                             ("weight-decay", args.weight_decay, ">= 0")):
        if not math.isfinite(value) or value < 0 or (low == "positive" and value == 0):
            p.error(f"--{flag} {value}: must be a finite number, {low}")
    if args.name and (len(args.remove) > 1 or len(args.train) > 1):
        p.error("--name names one run; leave it out when --remove or --train has several values")
    if args.name and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", args.name):
        p.error(f"--name {args.name!r}: a folder name under --runs, of letters, digits, '.', '_' and '-'")


def setting(resume, default=MISSING, default_factory=MISSING, per_run=False, compared=False, hparam=False):
    """A Config field with its marks, so that every list of settings is derived from one declaration:
    resume      "fixed": the flag defines the run, and --resume refuses another value; "changeable": --resume may
                give a new one; None: not a flag (set by the script)
    per_run     the command line may give several values (--remove 1 2), one per run of the plan: the flag is a list
                of the field's values (--augment: auto, on or off, for the field's True or False)
    compared    the report compares runs only where they agree on it
    hparam      shown in TensorBoard's HParams tab"""
    return field(default=default, default_factory=default_factory,
                 metadata={"resume": resume, "per_run": per_run, "compared": compared, "hparam": hparam})


@dataclass
class Config:
    """One run's configuration: built once per run from the command line (`plan_runs`) or from a resumed run's
    checkpoint (`resume_config`); saved as a dict in config.json and in the checkpoints (metrics.json holds what the
    run did, not this). Each field is declared once with its marks (`setting`), its default from the constants at
    the top, which the flags share; `settings(mark)` lists them."""
    data: str = setting("changeable")                                        # dataset folder (train/, val/)
    runs: str = setting("fixed")                                             # where run folders go
    remove: int = setting("fixed", per_run=True, hparam=True)                # FC layers removed: 1 (fc8), 2 (+fc7)
    train: str = setting("fixed", per_run=True, hparam=True)                 # what trains: new, fc or all
    augment: bool = setting("fixed", per_run=True, compared=True, hparam=True)  # random crops and flips
    epochs: int = setting("changeable", default=EPOCHS, compared=True, hparam=True)
    batch_size: int = setting("fixed", default=BATCH_SIZE, compared=True, hparam=True)
    lr: float = setting("fixed", default=LR, compared=True, hparam=True)    # epoch 1's rate (lr_schedule)
    momentum: float = setting("fixed", default=MOMENTUM, compared=True, hparam=True)
    weight_decay: float = setting("fixed", default=WEIGHT_DECAY, compared=True, hparam=True)
    seed: int = setting("fixed", default=SEED, compared=True)
    workers: int = setting("changeable", default=DECODE_WORKERS)
    device: str = setting("changeable", default=DEVICE)                     # as given: auto, cpu, cuda ...
    precision: str = setting("changeable", default=PRECISION, compared=True)  # as asked: fp32, tf32 or bf16
    weights: Optional[str] = setting("fixed", default=None, compared=True)  # a local AlexNet state dict
    name: Optional[str] = setting("fixed", default=None)                    # the run folder's name, if given
    overwrite: bool = setting("fixed", default=False)
    # the schedule's [first epoch, end, lr] segments once --resume --epochs extended the run; empty: one half cosine
    # from lr over epochs (lr_schedule). The report compares the rates the epochs ran at.
    lr_segments: list = setting(None, default_factory=list)
    precision_ran: Optional[str] = setting(None, default=None)  # what ran: fp32 where tf32 has no TF32 units

    @classmethod
    def from_checkpoint(cls, d):
        """A configuration as a checkpoint holds it. Keys this version does not know are dropped; what a run saved
        before a flag existed gets that flag's default."""
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in fields(cls)}})


def settings(**marks):
    """The names of Config's fields with these marks, in declaration order: settings(resume="fixed")."""
    return tuple(f.name for f in fields(Config) if all(f.metadata[k] == v for k, v in marks.items()))


def as_flag(cfg, name):
    """A setting of cfg as its flag gives it, for comparing a flag typed on --resume: a per-run flag's list of one
    value; --augment's on or off."""
    value = getattr(cfg, name)
    if name == "augment":
        value = "on" if value else "off"
    return [value] if Config.__dataclass_fields__[name].metadata["per_run"] else value


FLAGS_NOT_SETTINGS = ("compare", "resume")  # the command-line flags that are no Config field: they choose runs


@dataclass
class Run:
    """One training run as it goes: its configuration, folder, model and optimizer, and what it has done so far."""
    cfg: Config
    classes: list
    dir: str
    model: nn.Module
    optimizer: SGD
    param_counts: dict                 # ImageNet AlexNet, after the surgery, trained
    data: "Data"                       # both splits, decoded
    device: torch.device
    start: int = 0                     # epochs finished before this process (resumed runs)
    best: float = -1.0                 # best validation accuracy so far
    history: list = field(default_factory=list)  # one record per finished epoch
    frozen: Optional[dict] = None      # frozen_record: the tensors training leaves as loaded (names, digest, source)
    diverged: Optional[str] = None     # why the run stopped early, if it did


def plan_runs(args):
    """One configuration per (--remove, --train) pair: the flags' values, each per-run flag's one value."""
    base = {name: getattr(args, name) for name in settings(per_run=False) if name not in settings(resume=None)}
    return [Config(**base, remove=r, train=t, augment=(t == "all") if args.augment == "auto" else args.augment == "on")
            for r in args.remove for t in args.train]


def comparison_table(results):
    header = f"{'run':36s} {'remove':>6s} {'train':>5s} {'epochs':>6s} {'best val':>8s} {'final train':>11s} " \
             f"{'final val':>9s} {'wall':>7s}"
    rows = [header, "-" * len(header)]
    for m in results:
        f = m["epochs"][-1] if m["epochs"] else {"epoch": 0}
        cells = (f"{m['best_val_accuracy']:8.3f} {f['accuracy_train']:11.3f} {f['accuracy_val']:9.3f}" if m["epochs"]
                 else f"{'-':>8s} {'-':>11s} {'-':>9s}")
        rows.append(f"{m['run']:36s} {m['remove']:6d} {m['train']:>5s} {f['epoch']:6d} {cells} "
                    f"{m['seconds_total']:6.0f}s"
                    + (f"  DIVERGED in epoch {f['epoch'] + 1}" if m.get("diverged") else ""))
    return "\n".join(rows + ["wall: the whole run, its weights, the frozen layers' one pass and every epoch (the "
                              "report's training time adds up the epochs alone)"])


# ==== the machinery: weights, seeds, devices, figures, checkpoints, the decode cache, frozen layers once, resuming ====

# ---- the pretrained AlexNet ----

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


def load_alexnet(weights_path=None):
    from torchvision.models import AlexNet_Weights, alexnet
    imagenet = AlexNet_Weights.IMAGENET1K_V1
    target = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(imagenet.url))
    if weights_path:
        if not os.path.isfile(weights_path):
            raise RunError(f"--weights {weights_path} does not exist")
        where, fix = f"--weights {weights_path}", f"give the AlexNet ImageNet file from {imagenet.url}"
        try:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
        except DAMAGED as e:  # an HTML page saved as .pth, a truncated file, a pickle with code in it
            raise RunError(f"{where} is not a readable state dict ({e.__class__.__name__}): {fix}") from None
    else:
        where, fix = target, f"delete it and download {imagenet.url} again (or pass --weights PATH)"
        try:
            state = torchvision_state_dict(imagenet)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise RunError(f"could not download the AlexNet weights ({getattr(e, 'reason', e)}): offline, "
                           f"download {imagenet.url} elsewhere and put it at {target}, or pass --weights PATH"
                           ) from None
        except DAMAGED as e:  # the cached file is not a state dict (an error page saved in its place)
            raise RunError(f"{where} is not a readable state dict ({e.__class__.__name__}): {fix}") from None
    if is_training_checkpoint(state):
        raise RunError(f"{where} is a checkpoint of assignment_4a.py, not ImageNet weights: continue it with "
                       "--resume RUN_DIR, or explain it with saliency_extras.py --checkpoint")
    try:
        model = load_weights(lambda: alexnet(weights=None), state)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise RunError(f"{where} is not an AlexNet ImageNet state dict ({str(e).splitlines()[0]}): {fix}") from None
    return model, imagenet


def layer_table(model, trained):
    ids = {id(p) for p in trained}
    lines = []
    for name, m in list(model.features.named_children()) + [("avgpool", model.avgpool)] + \
            [(f"classifier.{n}", c) for n, c in model.classifier.named_children()]:
        name = name if name.startswith(("classifier", "avgpool")) else f"features.{name}"
        params = list(m.parameters())
        state = "" if not params else ("  trained" if id(params[0]) in ids else "  frozen")
        lines.append(f"  {name:14s} {m}{state}")
    n_trained = sum(p.numel() for p in trained)
    lines.append(f"  {n_trained:,} of {sum(p.numel() for p in model.parameters()):,} parameters train")
    return "\n".join(lines)


# ---- random streams, devices, precision, package versions ----

def epoch_seed(seed, epoch, stream):
    """The seed of one random stream ("shuffle", "crops", "dropout") in one epoch: it depends only on (seed, epoch),
    so that a run resumed at this epoch replays exactly what the uninterrupted run does."""
    return seed * 1000 + epoch + SEED_STREAMS[stream]


def batch_order(n, epoch, seed):
    """The shuffled order of the training set in this epoch."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed(seed, epoch, "shuffle")))


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def stop_on_sigterm():
    """A kill (SIGTERM: a closed terminal, a cluster's time limit) stops the run as Ctrl-C does, so that what was
    finished is kept and said, instead of exit 143 without a word."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)


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


def device_available(name):
    d = torch.device(name)
    if d.type == "cuda":
        return torch.cuda.is_available() and (d.index or 0) < torch.cuda.device_count()
    if d.type == "mps":
        return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return True


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


# ---- figures for TensorBoard ----

def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no window)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def confusion_figure(confusion, classes):
    """The confusion matrix as a figure, each row (true style) as shares of its paintings."""
    plt = pyplot()
    c = (confusion.float() / confusion.sum(1, keepdim=True).clamp(min=1)).numpy()
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(c, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set(xlabel="predicted style", ylabel="true style")
    for (i, j), v in np.ndenumerate(c):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if v > 0.5 else "black")
    fig.tight_layout()
    return fig


def most_confident_mistakes(labels, probs, k=MISTAKES_SHOWN):
    """-> the indices of the (up to k) wrongly predicted images, most confident first."""
    predicted = probs.argmax(dim=1)
    wrong = (predicted != labels).nonzero()[:, 0]
    return wrong[probs[wrong, predicted[wrong]].argsort(descending=True)][:k].tolist()


def mistakes_figure(split, probs, classes):
    """Thumbnails of the validation paintings the model gets most confidently wrong: true style, predicted style and
    its probability. None when every painting is right."""
    picked = most_confident_mistakes(split.labels, probs)
    if not picked:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(picked), figsize=(2.2 * len(picked), 2.8), squeeze=False)
    for ax, i in zip(axes[0], picked):
        p = int(probs[i].argmax())
        ax.imshow(split.images[i].permute(1, 2, 0).numpy())
        ax.set_title(f"true {classes[int(split.labels[i])]}\npredicted {classes[p]}\np = {probs[i, p]:.2f}", fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    return fig


# ---- checkpoints, metrics.json, val_predictions.csv ----

def save_checkpoint(run, name, epoch):
    """The run as it stands: "model" holds the tensors training changes (a --train new run's new layer: 160 kB, not
    AlexNet's 230 MB); "frozen" names the others, the ImageNet weights as loaded, with the digest of their values
    that loading checks (taken once per run: nothing updates them)."""
    atomic_save({"model": trained_state(run.model), "frozen": run.frozen,
                 "optimizer": run.optimizer.state_dict(),
                 "epoch": epoch, "best_val_accuracy": run.best, "config": asdict(run.cfg), "classes": run.classes,
                 "history": run.history},
                os.path.join(run.dir, name))


def trained_state(model):
    """The state dict's entries that training changes: the parameters that require a gradient."""
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in model.state_dict().items() if k in trained}


def frozen_record(model, weights):
    """-> {"names", "sha256", "weights"}: the state dict's entries that training leaves as the ImageNet weights gave
    them, a SHA-256 of their values (names, dtypes, shapes and bytes, in order), and where those weights came from."""
    state, trained = model.state_dict(), trained_state(model)
    names = [k for k in state if k not in trained]
    return {"names": names, "sha256": tensors_digest(state, names),
            "weights": weights or "torchvision's AlexNet_Weights.IMAGENET1K_V1"}


def tensors_digest(state, names):
    digest = hashlib.sha256()
    for k in names:
        t = state[k].detach().to("cpu").contiguous()
        digest.update(f"{k} {t.dtype} {tuple(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def load_model_state(model, checkpoint, where):
    """A checkpoint's weights into model, a freshly built pretrained AlexNet after the same surgery. A checkpoint
    with "frozen" holds only the trained tensors: the rest must be, bit for bit, the ImageNet weights they were
    trained on top of (their digest is compared), else a RunError says which weights it needs. One without it (older
    runs) holds every tensor."""
    frozen = checkpoint.get("frozen")
    if frozen is None:
        model.load_state_dict(checkpoint["model"])
        return model
    state = model.state_dict()
    missing = [k for k in state if k not in checkpoint["model"]]
    if missing != list(frozen["names"]) or set(checkpoint["model"]) - set(state):
        raise RunError(f"{where} does not fit this model: it stores {', '.join(sorted(checkpoint['model']))} and "
                       f"leaves {len(frozen['names'])} tensor(s) to the ImageNet weights; use the file "
                       "assignment_4a.py wrote, unchanged")
    if tensors_digest(state, missing) != frozen["sha256"]:
        raise RunError(f"{where} was trained on top of other ImageNet weights than the ones loaded now "
                       f"({frozen['weights']}, SHA-256 of the frozen layers {frozen['sha256'][:12]}...): give "
                       "those weights (--weights PATH, or torchvision's file in its cache)")
    model.load_state_dict(checkpoint["model"], strict=False)
    return model


def atomic_save(obj, path):
    """torch.save to a temporary name, then rename: a kill or a full disk mid-write leaves the previous file intact
    and no temporary file behind. A full disk is a RunError naming the folder and the space needed."""
    tmp = path + ".tmp"
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        full = getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(e)
        if not full:
            raise
        need = sum(t.numel() * t.element_size() for t in tensors_in(obj))
        raise RunError(f"no space left on the disk of {os.path.dirname(path) or '.'} to write "
                       f"{os.path.basename(path)} (about {need / 1e6:.0f} MB needed): free that much there, or "
                       "move the run to another disk and --resume it there") from None


def link_checkpoint(src, dst):
    """dst becomes the file src is, without a second copy on disk: a hard link made under a temporary name and
    renamed over dst. The next atomic_save of src gives src a new file, so dst keeps these bytes. A file system
    without hard links gets a copy."""
    tmp = dst + ".tmp"
    if os.path.exists(tmp):
        os.remove(tmp)
    try:
        os.link(src, tmp)
    except OSError:
        try:
            shutil.copyfile(src, tmp)
        except OSError as e:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise RunError(f"could not write {dst} ({e.strerror}): that file system takes no hard links, and a copy "
                           f"of {os.path.basename(src)} needs {os.path.getsize(src) / 1e6:.0f} MB there") from None
    os.replace(tmp, dst)


def tensors_in(obj):
    if torch.is_tensor(obj):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from tensors_in(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from tensors_in(v)


def write_val_predictions(run, probs):
    """val_predictions.csv: per validation painting of the best epoch, its true and predicted style, the probabilities
    of both and its loss. The report's paired tests (McNemar) and its gallery of mistakes read it."""
    labels, predicted = run.data.val.labels, probs.argmax(dim=1)
    p_true = probs.gather(1, labels[:, None])[:, 0]
    path = os.path.join(run.dir, "val_predictions.csv")
    with open(path + ".tmp", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "true_style", "predicted_style", "p_true", "p_predicted", "loss"])
        for f, y, q, pt, pq in zip(run.data.val.files, labels.tolist(), predicted.tolist(), p_true.tolist(),
                                   probs.max(dim=1).values.tolist()):
            w.writerow([f, run.classes[y], run.classes[q], f"{pt:.8g}", f"{pq:.8g}",
                        f"{-math.log(max(pt, 1e-45)):.8g}"])
    os.replace(path + ".tmp", path)


def write_metrics(run, confusion=None):
    """metrics.json: the run's configuration, data counts, every epoch, the best epoch and its confusion matrix."""
    path = os.path.join(run.dir, "metrics.json")
    old = json.load(open(path)) if os.path.exists(path) else {}
    best_row = max(run.history, key=lambda h: h["accuracy_val"]) if run.history else None
    splits = {"train": run.data.train, "val": run.data.val}
    m = {"run": os.path.basename(run.dir), "remove": run.cfg.remove, "train": run.cfg.train,
         "precision": run.cfg.precision_ran or run.cfg.precision,
         "classes": run.classes,
         "counts": {s: {c: int((d.labels == i).sum()) for i, c in enumerate(run.classes)} for s, d in splits.items()},
         "skipped_images": {s: d.skipped for s, d in splits.items()},
         "parameters": run.param_counts, "epochs": run.history, "best": best_row, "best_val_accuracy": run.best,
         "best_confusion": confusion.tolist() if confusion is not None else old.get("best_confusion"),
         "val_predictions": "val_predictions.csv" if os.path.exists(os.path.join(run.dir, "val_predictions.csv"))
         else None,
         "diverged": run.diverged}
    with open(path + ".tmp", "w") as fh:
        json.dump(m, fh, indent=2)
    os.replace(path + ".tmp", path)
    return m


# ---- data: decode each image once into a uint8 cache beside the dataset ----

class DecodedSplit(NamedTuple):
    images: torch.Tensor   # (N, 3, 256, 256) uint8, memory-mapped from the cache
    labels: torch.Tensor   # (N,) style indices
    skipped: int           # files that could not be decoded
    files: list            # (N,) each image's path relative to the dataset folder: split/Style/name


class Data(NamedTuple):
    classes: list
    train: DecodedSplit
    val: DecodedSplit
    feature_memo: dict     # frozen convolutional features, computed once per process and shared by the runs


def load_data(cfg, expected_classes=None, run_dir=None):
    """The dataset's styles and both splits, decoded once into the cache. expected_classes: a resumed run's styles,
    checked before anything is decoded."""
    train_files, train_labels, classes = list_split(cfg.data, "train")
    if expected_classes is not None:
        check_classes(run_dir, expected_classes, classes)
    val_files, val_labels, _ = list_split(cfg.data, "val", classes)
    cache = cache_folder(cfg.data)
    data = Data(classes, load_split_cached(train_files, train_labels, cache, "train", cfg.workers, cfg.data),
                   load_split_cached(val_files, val_labels, cache, "val", cfg.workers, cfg.data), {})
    usable = torch.bincount(data.train.labels, minlength=len(classes))
    empty = [c for c, n in zip(classes, usable.tolist()) if n == 0]
    if empty:
        raise RunError(f"{os.path.join(cfg.data, 'train', empty[0])} has no usable image (every file there was "
                       "skipped above): every style needs training images; replace them, or remove the style's "
                       "folder from train/ and val/")
    skipped = data.train.skipped + data.val.skipped
    print(f"dataset {cfg.data}: {len(classes)} styles, {len(data.train.labels)} train / "
          f"{len(data.val.labels)} val images" + (f"; skipped {skipped} unusable image(s)" if skipped else ""))
    return data


def list_split(root, split, classes=None):
    """-> (files, labels, classes) of root/split/<class>/<image>, classes sorted as ImageFolder sorts them."""
    folder = os.path.join(root, split)
    if not os.path.isdir(folder):
        raise RunError(f"no dataset at {folder}: run `python download_wikiart.py` first "
                       f"(or pass --data PATH to a folder with train/ and val/)")
    found = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)) and not d.startswith("."))
    if classes is None:
        classes = found
    elif found != classes:
        raise RunError(f"{folder} has styles {found} but train/ has {classes}: the splits must have the same styles")
    files, labels = [], []
    for i, c in enumerate(classes):
        names = sorted(n for n in os.listdir(os.path.join(folder, c))
                       if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS and not n.startswith("."))
        if not names and split == "train":
            raise RunError(f"{os.path.join(folder, c)} has no images: every style needs training images; fill it "
                           "(python download_wikiart.py) or remove the folder from train/ and val/")
        if not names:
            print(f"warning: {os.path.join(folder, c)} has no images: the validation accuracy of {c} cannot be "
                  "measured", file=sys.stderr)
        files += [os.path.join(folder, c, n) for n in names]
        labels += [i] * len(names)
    if len(classes) < 2 or not files:
        raise RunError(f"{folder} needs at least 2 style folders with images in them; found {len(classes)} "
                       f"folders and {len(files)} images: run `python download_wikiart.py`")
    return files, labels, classes


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


def decode(path):
    """File -> (3, 256, 256) uint8: shorter side resized to 256 exactly as the AlexNet weights' transforms do,
    then the centre 256x256. Returns None (with a warning) for a file that is not a usable image."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF
    try:
        if not os.path.isfile(path):  # a broken link, a folder or a pipe named like an image: never open it
            raise ValueError("not a regular file (a broken link, a folder or a pipe)")
        im = open_rgb(path)
        im = TF.resize(im, CACHE_SIZE, interpolation=InterpolationMode.BILINEAR, antialias=True)
        return TF.pil_to_tensor(TF.center_crop(im, CACHE_SIZE))
    except ValueError as e:  # open_rgb's word for a file that is not a usable image; a bug surfaces as itself
        print(f"warning: skipping {path}: not a usable image ({e})", file=sys.stderr)
        return None


def file_stamp(path):
    try:
        st = os.stat(path)
        return st.st_size, st.st_mtime_ns
    except OSError:  # a broken link: decode() skips it
        return -1, 0


def cache_folder(data_dir, quiet=False):
    """Where the decoded images are cached: datasets/<name>/.cache beside the images, or, where the dataset's folder
    is read-only (a course's shared drive), the user's cache folder (~/.cache/assignment4/<the dataset's path's hash>,
    or $XDG_CACHE_HOME's), said once."""
    here = os.path.join(data_dir, ".cache")
    try:
        os.makedirs(here, exist_ok=True)
        tempfile.TemporaryFile(dir=here).close()  # writable, not only present
        return here
    except OSError:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        alt = os.path.join(base, "assignment4", hashlib.sha1(os.path.abspath(data_dir).encode()).hexdigest()[:12])
        try:
            os.makedirs(alt, exist_ok=True)
        except OSError as e:
            raise RunError(f"cannot write the decode cache beside the dataset ({here}) nor in {alt} "
                           f"({e.strerror}): make one of them writable") from None
        if not quiet:
            print(f"note: {data_dir} is read-only: the decoded images are cached in {alt} instead")
        return alt


def load_split_cached(files, labels, cache_dir, split, workers, root=None):
    """Decode every image once into <cache_dir>/<split>-<key>.u8, a raw (N, 3, 256, 256) uint8 file written image by
    image and read back memory-mapped, so memory stays flat however large the dataset (the full WikiArt is 16 GB
    decoded); <key> changes when any file's name, size or time does. Safe for two runs started together: each writes
    under its own temporary name, none removes another's, and the second waits for the first's cache and reuses it.
    -> DecodedSplit (the images memory-mapped; files relative to root, the dataset folder)."""
    from tqdm import tqdm
    root = root or os.path.dirname(cache_dir)
    stat = [(os.path.relpath(f, root), *file_stamp(f)) for f in files]
    key = hashlib.sha1(json.dumps([CACHE_SIZE, DECODE_VERSION, stat]).encode()).hexdigest()[:16]
    data_path, meta_path = (os.path.join(cache_dir, f"{split}-{key}.{ext}") for ext in ("u8", "json"))
    os.makedirs(cache_dir, exist_ok=True)
    wait_for_another_decoder(cache_dir, os.path.basename(data_path), meta_path, split)
    if os.path.exists(meta_path):
        try:
            return open_cache(data_path, meta_path)
        except (OSError, ValueError, KeyError, TypeError) as e:  # truncated by a kill or a full disk: decode again
            print(f"warning: the cache {data_path} is damaged ({e.__class__.__name__}: {e}); decoding the images "
                  "again", file=sys.stderr)
    remove_stale_caches(cache_dir, split, key)
    part = f"{data_path}.{os.getpid()}-{threading.get_ident()}.part"  # this run's own: another run's is left alone
    kept = []
    try:
        with open(part, "wb") as fh, ThreadPoolExecutor(workers) as pool:  # PIL releases the GIL
            for i, x in enumerate(tqdm(pool.map(decode, files), total=len(files), desc=f"decoding {split} (once)",
                                       unit="img", file=sys.stderr)):
                if x is not None:
                    fh.write(x.numpy().tobytes())  # one image at a time: nothing accumulates in memory
                    kept.append(i)
    except BaseException as e:
        if os.path.exists(part):
            os.remove(part)
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise RunError(f"no space left in {cache_dir} for the decoded images "
                           f"({len(files) * 3 * CACHE_SIZE ** 2 / 1e9:.1f} GB "
                           "needed): free that much there") from None
        raise
    if not kept:
        os.remove(part)
        raise RunError(f"none of the {len(files)} {split} images could be decoded")
    os.replace(part, data_path)  # a run that finished the same key first wrote the same bytes
    with open(part + ".json", "w") as fh:  # written last: its presence says the images are complete
        json.dump({"count": len(kept), "shape": [3, CACHE_SIZE, CACHE_SIZE], "labels": [labels[i] for i in kept],
                   "skipped": len(files) - len(kept), "files": [stat[i][0] for i in kept]}, fh)
    os.replace(part + ".json", meta_path)
    return open_cache(data_path, meta_path)


def wait_for_another_decoder(cache_dir, name, meta_path, split, quiet_s=30):
    """Another run decoding the same images (its temporary file grew in the last quiet_s seconds): wait until it has
    finished, or stopped growing (it died), rather than decode the same images twice. A finished image file whose
    metadata is not written yet (the other run is between its two renames) counts as still being written."""
    said = False
    while not os.path.exists(meta_path):
        now = time.time()
        growing = [p for p in os.listdir(cache_dir) if (p == name or p.startswith(name + ".") and p.endswith(".part"))
                   and now - os.path.getmtime(os.path.join(cache_dir, p)) < quiet_s]
        if not growing:
            return
        if not said:
            print(f"note: another run is decoding the {split} images into {cache_dir}; waiting for it to finish, then "
                  "using its cache", file=sys.stderr)
            said = True
        time.sleep(0.5)


def remove_stale_caches(cache_dir, split, key, day_s=86400):
    """The dataset changed: the finished caches of this split under other keys are stale, and so are temporary files
    older than a day (a killed run's). Another run's recent temporary file is its work in progress: left alone."""
    for old in os.listdir(cache_dir):
        path = os.path.join(cache_dir, old)
        if not old.startswith(f"{split}-"):
            continue
        if old.endswith(".part") or old.endswith(".part.json"):
            if time.time() - os.path.getmtime(path) > day_s:
                os.remove(path)
        elif old.endswith((".pt", ".u8", ".json")) and not old.startswith(f"{split}-{key}."):
            os.remove(path)


def open_cache(data_path, meta_path):
    meta = json.load(open(meta_path))
    shape = (meta["count"], *meta["shape"])
    if os.path.getsize(data_path) != math.prod(shape):
        raise ValueError(f"{os.path.getsize(data_path)} bytes where {math.prod(shape)} were written")
    images = np.memmap(data_path, dtype=np.uint8, mode="c", shape=shape)  # copy-on-write: the file is never changed
    return DecodedSplit(torch.from_numpy(images), torch.tensor(meta["labels"]), int(meta["skipped"]), meta["files"])


def to_input(images, mean, std, augment=False, generator=None, device=None):
    """(N, 3, 256, 256) uint8, on the CPU or already on `device` -> (N, 3, 224, 224) normalised float on `device`
    (default: where the images are), channels_last like the model's weights (PyTorch's fast path for convolutions):
    the centre crop, or a random crop + horizontal flip. The offsets and flips are drawn on the CPU from `generator`
    whatever the device, so that a run draws the same crops everywhere and resumes bit for bit. The uint8 batch goes
    to the device (4x fewer bytes than float), where the crop, flip and normalisation run as batched tensor
    operations; the crops are gathered as uint8 in channels_last, then converted and normalised in place."""
    device = torch.device(device) if device is not None else images.device
    n, m = len(images), CACHE_SIZE - CROP
    if augment:
        ys, xs = torch.randint(0, m + 1, (2, n), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5
    images = to_device(images, device)
    if not augment:
        x = images[:, :, m // 2:m // 2 + CROP, m // 2:m // 2 + CROP].contiguous(memory_format=torch.channels_last)
    elif device.type == "cpu":  # slice copies: on a CPU 2x faster than a gather, measured
        x = torch.empty((n, 3, CROP, CROP), dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
        for i, (y0, x0, flip) in enumerate(zip(ys.tolist(), xs.tolist(), flips.tolist())):
            crop = images[i, :, y0:y0 + CROP, x0:x0 + CROP]
            x[i] = crop.flip(-1) if flip else crop
    else:  # one gather for the batch, not a kernel launch per image; the same pixels (a test checks)
        x = crop_by_gather(images, ys.to(device), xs.to(device), flips.to(device))
    mean, std = mean.to(device), std.to(device)
    return x.float().sub_(mean * 255).div_(std * 255)


def crop_by_gather(images, ys, xs, flips):
    """(N, 3, S, S) uint8 -> (N, 3, CROP, CROP) uint8 channels_last: image i's crop at (ys[i], xs[i]), mirrored
    left-right where flips[i], as one indexing operation."""
    ar = torch.arange(CROP, device=images.device)
    rows = ys[:, None] + ar                                          # (N, CROP)
    cols = xs[:, None] + torch.where(flips[:, None], CROP - 1 - ar, ar)  # (N, CROP), right to left where flipped
    n = torch.arange(len(images), device=images.device)
    nhwc = images.permute(0, 2, 3, 1)[n[:, None, None], rows[:, :, None], cols[:, None, :]]  # (N, CROP, CROP, 3)
    return nhwc.permute(0, 3, 1, 2)  # NCHW shape, channels_last memory


def to_device(images, device):
    """uint8 images onto the device: from pinned memory without waiting, where the device is a GPU."""
    if images.device == device:
        return images
    if device.type == "cuda":
        return images.pin_memory().to(device, non_blocking=True)
    return images.to(device)


# ---- frozen layers once: what the trained part sees ----

class FeatureSplit(NamedTuple):
    """A split as the frozen layers leave it, computed once per image (prepare_data): (N, D) features and labels."""
    x: torch.Tensor
    labels: torch.Tensor
    augment = False  # features are never augmented: a class attribute, not a field

    def batch(self, idx, device, precision, generator=None, rows=None):
        """The trained part's input for the examples idx (rows: x[idx], if already gathered)."""
        rows = self.x[idx.to(self.x.device)] if rows is None else rows
        return rows.to(device, non_blocking=True)


class ImageSplit(NamedTuple):
    """A split as the cached uint8 images: each batch is cropped (at random, and flipped, where augment) and
    normalised with the weights' (mean, std), then passed through `prefix`, the frozen layers before the trained part
    (none under --train all)."""
    x: torch.Tensor
    labels: torch.Tensor
    prefix: nn.Module
    norm: tuple
    augment: bool = False

    def batch(self, idx, device, precision, generator=None, rows=None):
        """The trained part's input for the examples idx (rows: x[idx], if already gathered); generator draws the
        crops and flips when augmenting."""
        rows = self.x[idx.to(self.x.device)] if rows is None else rows
        x = to_input(rows, *self.norm, self.augment, generator, device)
        if not len(self.prefix):
            return x
        with torch.no_grad(), autocast(precision, device):
            return self.prefix(x).float()


def rows_in_batches(x, order, batch_size, device, ahead=None):
    """(idx, x[idx]) for each batch of `order`. Where the rows come from the CPU to a GPU, a background thread gathers
    and pins the next batch's rows while this one trains (ahead=True forces that, for tests)."""
    starts = range(0, len(order), batch_size)
    if not (ahead if ahead is not None else x.device.type == "cpu" and device.type == "cuda"):
        for i in starts:
            yield order[i:i + batch_size], x[order[i:i + batch_size].to(x.device)]
        return
    pin = device.type == "cuda"

    def gather(i):
        rows = x[order[i:i + batch_size]]
        return rows.pin_memory() if pin else rows
    with ThreadPoolExecutor(max_workers=1) as pool:
        coming = pool.submit(gather, 0)
        for i in starts:
            rows = coming.result()
            if i + batch_size < len(order):
                coming = pool.submit(gather, i + batch_size)
            yield order[i:i + batch_size], rows


def frozen_prefix(model):
    """-> (prefix, trained part): prefix = the layers up to the last frozen one (plus param-free deterministic layers
    after it), run in eval mode without gradients; the trained part is the rest (the whole network for --train all,
    whose prefix is empty)."""
    layers = list(model.features) + [model.avgpool, nn.Flatten()] + list(model.classifier)
    frozen_at = [i for i, m in enumerate(layers) if any(True for _ in m.parameters()) and
                 not next(m.parameters()).requires_grad]
    k = frozen_at[-1] + 1 if frozen_at else 0
    while k and k < len(layers) and isinstance(layers[k], (nn.ReLU, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Flatten)):
        k += 1
    return nn.Sequential(*layers[:k]).eval(), nn.Sequential(*layers[k:])


def prepare_data(run, norm):
    """-> (the trained part, train, val): each split a FeatureSplit where the frozen layers can run once per image
    here, not once per epoch (and the convolutional part once per process), else an ImageSplit (augmented training
    images, and --train all)."""
    prefix, trained_part = frozen_prefix(run.model)
    out = []
    for name, decoded in (("train", run.data.train), ("val", run.data.val)):
        augment = name == "train" and run.cfg.augment
        if len(prefix) and not augment:
            key = (name, run.cfg.precision_ran, run.cfg.weights, str(run.device))
            features = run_prefix(prefix, decoded.images, norm, run.cfg, run.device, run.data.feature_memo, key)
            out.append(FeatureSplit(features, decoded.labels))
        else:
            images = on_device_if_it_fits(decoded.images, run.device, name)
            out.append(ImageSplit(images, decoded.labels, prefix, norm, augment))
    return (trained_part, *out)


def on_device_if_it_fits(images, device, name):
    """The uint8 cache moved onto a GPU when it takes at most DEVICE_CACHE_SHARE of the memory free there (4,000
    paintings: 0.8 GB), so that a batch is gathered, cropped and normalised on the device with no copy from the host.
    Otherwise (and on a CPU) it stays where it is, and batches travel from pinned memory."""
    if device.type != "cuda":
        return images
    free, _ = torch.cuda.mem_get_info(device)
    if images.numel() > DEVICE_CACHE_SHARE * free:
        print(f"note: the {name} images ({images.numel() / 2**30:.1f} GB as uint8) take more than "
              f"{DEVICE_CACHE_SHARE:.0%} of the GPU's free memory: they stay in host memory, batches are sent to the "
              "GPU one by one", file=sys.stderr)
        return images
    return images.to(device)


@torch.no_grad()
def run_prefix(prefix, images, norm, cfg, device, memo, key):
    """Frozen layers once per image: (N, 3, 256, 256) uint8 -> features (N, D) float32, kept on the device and
    written into one preallocated tensor (no list of pieces to concatenate: peak memory is the features once).
    The convolutional part is the same in every run of a --compare: it is computed once per process (memo[key])
    and the frozen FC layers of each run, if any, are applied to it."""
    cut = next(i + 1 for i, m in enumerate(prefix) if isinstance(m, nn.Flatten))  # frozen prefixes hold every conv
    conv, rest = prefix[:cut], prefix[cut:]
    if key not in memo:
        memo[key] = in_batches(conv, images, FROZEN_BATCH, lambda x: to_input(x, *norm, device=device), cfg, device,
                               desc="frozen layers (once)")  # (N, 9216) after conv + avgpool + flatten
    if not len(rest):
        return memo[key]
    return in_batches(rest, memo[key], FEATURE_BATCH, lambda x: x, cfg, device)


def in_batches(layers, x, batch, prepare, cfg, device, desc=None):
    """layers(prepare(x[i:i + batch])) for every batch, written into one preallocated (N, D) float32 tensor."""
    from tqdm import tqdm
    out = None
    for i in tqdm(range(0, len(x), batch), desc=desc, unit="batch", leave=False, file=sys.stderr, disable=desc is None):
        with autocast(cfg.precision, device):
            y = layers(prepare(x[i:i + batch])).float()
        if out is None:
            out = feature_store((len(x), *y.shape[1:]), y.device, cache_folder(cfg.data, quiet=True))
        out[i:i + len(y)] = y
    return out


def feature_store(shape, device, folder):
    """An empty float32 tensor for features. On the CPU it is a memory-mapped temporary file (in the decode cache's
    folder, else the system's temporary folder), so that the features are page cache the kernel can drop, not
    process memory: 53 KB per image for --remove 1 --train new, 4.3 GB for the 81,444-painting WikiArt. The file has
    no name (or is deleted when closed, on Windows) and goes when the tensor does."""
    if device.type != "cpu":
        return torch.empty(shape, dtype=torch.float32, device=device)
    try:
        fh = tempfile.TemporaryFile(dir=folder, prefix="features-")
    except OSError:  # a read-only dataset folder
        fh = tempfile.TemporaryFile(prefix="features-")
    return torch.from_numpy(np.memmap(fh, dtype=np.float32, mode="w+", shape=shape))


# ---- resuming and run folders ----

def given_flags(parser, argv):
    """The destinations of the flags the user typed: a second parse into a namespace that already holds a marker for
    every destination (argparse fills in a default only where the namespace has no value), so that only what was
    typed replaces its marker."""
    unset = object()
    marked = argparse.Namespace(**{dest: unset for dest in vars(parser.parse_args([]))})
    return {dest for dest, value in vars(parser.parse_args(argv, namespace=marked)).items() if value is not unset}


def resume_config(args):
    """--resume: the run's saved configuration, with the flags that may change applied and the others checked.
    -> (cfg, checkpoint)"""
    path = os.path.join(args.resume, "last.pt")
    if not os.path.isfile(path) and os.path.isfile(os.path.join(args.resume, "config.json")):
        raise RunError(f"--resume {args.resume}: that run never finished an epoch (no last.pt), so there is "
                       "nothing to resume: start it again (--name "
                       f"{os.path.basename(os.path.normpath(args.resume))}"
                       " --overwrite reuses its folder)")
    if not os.path.isfile(path):
        raise RunError(f"--resume {args.resume}: no last.pt there (give a run folder under {args.runs}/)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        cfg, done = Config.from_checkpoint(checkpoint["config"]), int(checkpoint["epoch"])
    except DAMAGED + (TypeError,) as e:  # truncated, not a checkpoint of this script, or pickled code
        raise RunError(f"--resume {args.resume}: last.pt could not be read ({e.__class__.__name__}); if best.pt "
                       "there is intact, copy it over last.pt to resume from the best epoch, or start a new run") from e
    if args.compare and "compare" in args.given:
        raise RunError(f"--compare cannot change on --resume ({args.resume} is one run): leave it out, or start new "
                       "runs")
    for flag in sorted(args.given & set(settings(resume="fixed"))):
        value, saved = getattr(args, flag), as_flag(cfg, flag)
        if flag == "augment" and value == "auto":
            value = "on" if cfg.train == "all" else "off"
        if value != saved:
            raise RunError(f"--{flag.replace('_', '-')} cannot change on --resume ({args.resume} was trained with "
                           f"{saved}): leave it out, or start a new run")
    for flag in args.given & set(settings(resume="changeable")) - {"epochs"}:  # --epochs: with the schedule below
        setattr(cfg, flag, getattr(args, flag))
    if "device" not in args.given and not device_available(cfg.device if cfg.device != "auto" else "cpu"):
        print(f"note: {args.resume} ran on {cfg.device}, which this machine lacks: continuing on --device auto")
        cfg.device = "auto"
    end = cfg.epochs
    if "epochs" in args.given and args.epochs != end:
        if args.epochs <= done:
            raise RunError(f"--epochs {args.epochs}: {args.resume} already has {done} finished epoch(s); give a "
                           "larger total to extend it")
        schedule = lr_schedule(cfg)  # the epochs not yet trained anneal from the rate the next one would have had
        lr = lr_at(schedule, done) if done < end else lr_at(schedule, done - 1)
        cfg.lr_segments = [seg for seg in schedule if seg[0] < done] + [[done, args.epochs, lr]]
        cfg.epochs = args.epochs
    elif done >= end:
        raise RunError(f"--resume {args.resume}: the run finished its {end} epochs; pass --epochs N (more than "
                       f"{end}) to extend it")
    return cfg, checkpoint


def check_classes(run_dir, saved, classes):
    if saved != classes:
        missing, new = [c for c in saved if c not in classes], [c for c in classes if c not in saved]
        diff = "; ".join(x for x in (f"missing: {', '.join(missing)}" if missing else "",
                                     f"new: {', '.join(new)}" if new else "") if x) \
            or "the same styles in another order"
        raise RunError(f"--resume {run_dir}: the dataset's styles are not the run's ({diff}); resume with the dataset "
                       "it was trained on (--data PATH), or start a new run")


def start_or_resume(run, resume):
    """A new run folder, or the resumed run's state loaded into model and optimizer; config.json written. -> run"""
    if resume:
        run.dir, checkpoint = resume
        check_classes(run.dir, list(checkpoint["classes"]), run.classes)
        load_model_state(run.model, checkpoint, os.path.join(run.dir, "last.pt"))
        run.optimizer.load_state_dict(checkpoint["optimizer"])
        run.start, run.best, run.history = checkpoint["epoch"], checkpoint["best_val_accuracy"], checkpoint["history"]
        print(f"resuming {run.dir} after epoch {run.start} (best val accuracy so far {run.best:.3f})")
    else:
        run.dir = make_run_dir(run.cfg)
    with open(os.path.join(run.dir, "config.json"), "w") as fh:
        json.dump(dict(asdict(run.cfg), classes=run.classes), fh, indent=2)
    return run


def make_run_dir(cfg):
    """A new folder for the run, created exclusively: two runs started in the same second get -2, -3 ...; an existing
    --name is refused unless --overwrite."""
    os.makedirs(cfg.runs, exist_ok=True)
    if cfg.name:
        path = os.path.join(cfg.runs, cfg.name)
        if os.path.exists(path):
            if not cfg.overwrite:
                resumable = os.path.isfile(os.path.join(path, "last.pt"))
                raise RunError(f"--name {cfg.name}: {path} already exists; choose another --name, "
                               + (f"continue it with --resume {path}, " if resumable else "")
                               + "or replace it with --overwrite")
            shutil.rmtree(path)
        os.makedirs(path)
        return path
    base = os.path.join(cfg.runs, f"remove{cfg.remove}-{cfg.train}-{time.strftime('%Y%m%d-%H%M%S')}")
    for k in range(1, 1000):
        path = base if k == 1 else f"{base}-{k}"
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            continue
    raise RunError(f"could not create a new run folder like {base}")


if __name__ == "__main__":
    main()
