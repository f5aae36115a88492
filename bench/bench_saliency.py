"""Speed of the saliency step (assignment_4b.saliency_maps) against a bare VGG-16 forward + backward.

    python bench/bench_saliency.py                       # batch 8, 224x224, fp32 and bf16, on the auto device
    python bench/bench_saliency.py --batch-size 16 --iters 5 --device cuda

Prints images/s for both, their ratio (target >= 0.9), the share of the machine's measured matrix-multiply
FLOP/s that the saliency step reaches, peak memory, and how closely the bf16 maps agree with fp32.
Random weights: speed does not depend on their values.
"""
import argparse
import os
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import assignment_4b as a4b  # noqa: E402
import vgg16  # noqa: E402


def vgg16_forward_flops(size=224):
    """Multiply-adds x 2 of one VGG-16 forward pass at size x size, counted from the architecture data."""
    flops, c, s = 0, 3, size
    for v in vgg16.CFG:
        if v == "M":
            s //= 2
        else:
            flops += 2 * s * s * c * v * 9
            c = v
    return flops + 2 * (512 * 7 * 7 * 4096 + 4096 * 4096 + 4096 * vgg16.NUM_CLASSES)


def matmul_flops_per_s(device, dtype, n=2048, reps=10):
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, iters, device):
    fn()  # warm-up
    sync(device)
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    return (time.perf_counter() - t) / iters


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=a4b.BATCH_SIZE, help="images per pass (default: %(default)s)")
    p.add_argument("--iters", type=int, default=2, help="timed passes per measurement (default: %(default)s)")
    p.add_argument("--size", type=int, default=224, help="image side in pixels (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (default: %(default)s)")
    p.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"], default=None,
                   help="what to measure (default: fp32 and bf16; fp32 alone on a CPU without bf16 units, where "
                        "bf16 is emulated and about 20x slower)")
    p.add_argument("--method-images", type=int, default=2,
                   help="images for the per-method timing at the script's defaults (0 skips it; default: %(default)s)")
    args = p.parse_args(argv)

    device = a4b.resolve_device(args.device)
    torch.manual_seed(0)
    model = vgg16.VGG16().eval().to(device)
    x = torch.randn(args.batch_size, 3, args.size, args.size, device=device)
    fwd = vgg16_forward_flops(args.size)
    print(f"device {device}, {torch.get_num_threads()} threads, batch {args.batch_size}, {args.size}x{args.size}, "
          f"VGG-16 forward {fwd / 1e9:.1f} GFLOP/image, torch {torch.__version__}")

    precisions = args.precisions or ["fp32", "bf16"]
    if args.precisions is None and device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        precisions = ["fp32"]
        print("bf16 not measured: this CPU has no bf16 units (AVX512-BF16/AMX); pass --precisions fp32 bf16 to force")
    maps = {}
    for precision in precisions:
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        peak_mm = matmul_flops_per_s(device, dtype)

        def bare():  # forward + full backward (weights and input), as a training step would do
            model.zero_grad(set_to_none=True)
            xi = x.clone().requires_grad_(True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = model(xi)
            out.sum().backward()

        def saliency():
            maps[precision] = a4b.saliency_maps(model, x, precision=precision)[0]

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t_sal = timed(saliency, args.iters, device)
        mem = (torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda"
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
        t_bare = timed(bare, args.iters, device)
        model.zero_grad(set_to_none=True)
        n = args.batch_size
        # saliency = forward + backward to the input only: about 2 forward passes of FLOPs
        achieved = 2 * fwd * n / t_sal
        print(f"{precision}: saliency {n / t_sal:6.2f} img/s | bare forward+backward {n / t_bare:6.2f} img/s | "
              f"ratio {t_bare / t_sal:.2f} (target >= 0.9) | {achieved / 1e9:.0f} GFLOP/s = "
              f"{achieved / peak_mm:.0%} of measured {precision} matmul {peak_mm / 1e9:.1f} GFLOP/s | "
              f"peak memory {mem:.2f} GiB ({'GPU' if device.type == 'cuda' else 'process RSS'})")

    if args.method_images:
        x2 = x[:args.method_images]
        _, cls, _ = a4b.saliency_maps(model, x2)
        base = torch.zeros(1, 3, 1, 1, device=device)
        runs = {"vanilla": lambda: a4b.saliency_maps(model, x2, cls),
                "smoothgrad": lambda: a4b.smoothgrad(model, x2, cls, chunk=args.batch_size),
                "integrated-gradients": lambda: a4b.integrated_gradients(model, x2, cls, base, chunk=args.batch_size),
                "gradcam": lambda: a4b.gradcam(model, x2, cls)}
        print(f"seconds per image, fp32, {len(x2)} images, chunks of {args.batch_size} (SmoothGrad {a4b.SG_SAMPLES} "
              f"samples, Integrated Gradients {a4b.IG_STEPS} steps): " + ", ".join(
                  f"{name} {timed(fn, 1, device) / len(x2):.2f}" for name, fn in runs.items()))
    if len(maps) < 2:
        return
    a, b = maps["fp32"].flatten().cpu().numpy(), maps["bf16"].flatten().cpu().numpy()
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    top = lambda v: set(np.argsort(v)[-len(v) // 20:])  # noqa: E731 (top 5% of pixels)
    print(f"bf16 vs fp32 maps: Pearson r {np.corrcoef(a, b)[0, 1]:.4f}, Spearman rho "
          f"{np.corrcoef(rank(a), rank(b))[0, 1]:.4f}, top-5% pixel overlap {len(top(a) & top(b)) / len(top(a)):.1%}, "
          f"max |diff| / max {np.abs(a - b).max() / a.max():.3f}")


if __name__ == "__main__":
    main()
