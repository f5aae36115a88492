"""Where a student waits in Part 1: AlexNet fine-tuning throughput, measured on a generated dataset.

    python bench/bench_finetune.py                          # 192 train + 64 val images of ~1600x1200, batch 64
    python bench/bench_finetune.py --images 96 --side 800 --precision bf16 --device cuda

Prints: decoding speed (once, into the cache); the bare model step (forward + backward + SGD on random
tensors) against a full fine-tune epoch of assignment_4a.py (target >= 0.85 of it); a --train new epoch on
cached features against a tutorial-style epoch (ImageFolder + transforms + the whole network every epoch;
target >= 20x); peak memory. Random weights: speed does not depend on their values.
"""
import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import assignment_4a as a4a  # noqa: E402


def make_dataset(root, n_train, n_val, side, classes=4):
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            d = os.path.join(root, split, f"Style_{i % classes}")
            os.makedirs(d, exist_ok=True)
            w, h = side, side * 3 // 4  # paintings: large, not square
            small = rng.integers(0, 256, (h // 16, w // 16, 3), dtype=np.uint8)  # smooth, JPEG-like content
            Image.fromarray(small).resize((w, h), Image.BILINEAR).save(os.path.join(d, f"{i:04d}.jpg"), quality=90)


def bare_step_rate(model, batch, device, precision, iters=4):
    params = [p for p in model.parameters()]
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    x = torch.randn(batch, 3, 224, 224, device=device)
    y = torch.randint(0, 4, (batch,), device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(x)
        loss = torch.nn.functional.cross_entropy(out.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    step(), step()  # warm-up: oneDNN picks its kernels on the first calls
    t = time.perf_counter()
    for _ in range(iters):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * iters / (time.perf_counter() - t)


def tutorial_epoch(data_dir, weights_path, batch, device):
    """The textbook loop: decode + transform every image every epoch, the whole network forward each step."""
    from torchvision.datasets import ImageFolder
    from torch.utils.data import DataLoader
    model, weights = a4a.load_alexnet(weights_path)
    model = a4a.remove_last_fc_layers(model, 1, 4)
    trained = a4a.set_trainable(model, "new")
    model.to(device).eval()
    opt = torch.optim.SGD(trained, lr=1e-3, momentum=0.9)
    loader = DataLoader(ImageFolder(os.path.join(data_dir, "train"), weights.transforms()), batch_size=batch,
                        shuffle=True, num_workers=0)
    t = time.perf_counter()
    for x, y in loader:
        loss = torch.nn.functional.cross_entropy(model(x.to(device)), y.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=192, help="training images (default: %(default)s)")
    p.add_argument("--side", type=int, default=1600, help="image width in pixels (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=a4a.BATCH_SIZE, help="default: %(default)s")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="default: %(default)s")
    p.add_argument("--device", default="auto", help="default: %(default)s")
    args = p.parse_args(argv)
    device = a4a.resolve_device(args.device)
    tmp = tempfile.mkdtemp()
    try:
        torch.manual_seed(0)
        weights = os.path.join(tmp, "alexnet.pth")
        import torchvision
        torch.save(torchvision.models.alexnet().state_dict(), weights)
        data_dir = os.path.join(tmp, "data")
        make_dataset(data_dir, args.images, args.images // 3, args.side)
        print(f"device {device}, {torch.get_num_threads()} threads, {args.precision}, batch {args.batch_size}, "
              f"{args.images} train / {args.images // 3} val images of {args.side}x{args.side * 3 // 4}")
        cfg = dict(data=data_dir, workers=os.cpu_count() or 1, epochs=2, batch_size=args.batch_size, lr=1e-3,
                   momentum=0.9, weight_decay=5e-4, precision=args.precision, device=args.device, weights=weights,
                   runs=os.path.join(tmp, "runs"), name=None, seed=0)
        t = time.perf_counter()
        data = a4a.load_data(cfg)
        n_all = args.images + args.images // 3
        print(f"decode once into the cache: {n_all / (time.perf_counter() - t):.0f} img/s")

        model = a4a.remove_last_fc_layers(a4a.load_alexnet(weights)[0], 1, 4).to(device).train()
        bare = bare_step_rate(model, args.batch_size, device, args.precision)
        full = a4a.train_run(dict(cfg, remove=1, train="all", augment=True, name="all"), data)
        rate = args.images / full["epochs"][-1]["seconds_train"]  # the training pass, without validation
        print(f"full fine-tune (--train all, augmented): bare model step {bare:.1f} img/s, training epoch "
              f"{rate:.1f} img/s = {rate / bare:.2f} of the bare step (target >= 0.85)")

        new = a4a.train_run(dict(cfg, remove=1, train="new", augment=False, name="new", epochs=10), data)
        t_new = np.median([e["seconds"] for e in new["epochs"][1:]])
        t_first = new["seconds_total"] - sum(e["seconds"] for e in new["epochs"][1:])
        t_tut = tutorial_epoch(data_dir, weights, args.batch_size, device)
        print(f"--train new: cached-feature epoch {t_new * 1000:.0f} ms (first epoch with model loading and the "
              f"one-off frozen-layer pass: {t_first:.1f}s) vs "
              f"tutorial-style epoch {t_tut:.1f}s = {t_tut / t_new:.0f}x per epoch; over 10 epochs "
              f"{10 * t_tut / new['seconds_total']:.1f}x (target >= 20x per epoch)")
        mem = (torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda"
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
        print(f"peak memory {mem:.2f} GiB ({'GPU' if device.type == 'cuda' else 'process RSS, whole benchmark'}, "
              f"batch {args.batch_size}; target <= 4 GB)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
