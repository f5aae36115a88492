"""Speed of assignment_4b.saliency_maps against the floor (the best plain-PyTorch way to get the same maps) and
the peer a user would reach for (Captum's Saliency), interleaved in one process, medians of repeats.

    python bench/bench_saliency.py                       # batch 8, 224x224, fp32, 5 repeats, on the auto device
    python bench/bench_saliency.py --repeats 9 --device cuda --precisions fp32 bf16

The same work everywhere: a forward pass, a one-hot derivative at the top class, the gradient to the pixels,
max over channels of its absolute value. Variants, run in turn within every repeat:
  ours        saliency_maps() on the model as assignment_4b.py holds it (channels_last)
  floor NCHW  plain PyTorch, gradient to the input only (frozen parameters), default memory layout
  floor CL    the same with model and input in channels_last
  Captum      captum.attr.Saliency(model).attribute(x, target, abs=True), then max over channels (pip install captum)
The floor is the faster of the two plain variants; ours / floor above 1.0 would mean the floor is wrong.
bf16 is measured only where the hardware has bf16 units (CUDA, AVX512-BF16, AMX), with its maps' rank
agreement with fp32. Random weights: speed does not depend on their values.
"""
import argparse
import copy
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import assignment_4b as a4b  # noqa: E402
import saliency_extras as ex  # noqa: E402
import vgg16  # noqa: E402


def cpu_name():
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def bf16_native(device):
    return device.type == "cuda" or (device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain_saliency(model, x, precision):
    """The floor: nothing but the recipe, gradient to the input only."""
    xi = x.detach().clone(memory_format=vgg16.memory_format_of(model)).requires_grad_(True)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        s = model(xi)
    one_hot = torch.zeros_like(s).scatter_(1, s.argmax(1, keepdim=True), 1.0)
    (g,) = torch.autograd.grad(s, xi, one_hot)
    return g.float().abs().amax(dim=1)


def agreement(ref, other, within=0.05):
    """How far maps of another precision agree with fp32's, by the measures docs/speed.md reports: Spearman's rho
    per image, the share of pixels within `within` of the fp32 map's maximum, and the overlap of the top 5%."""
    rho = ex.rank_correlation(ref, other)
    close = ((other - ref).abs() <= within * ref.flatten(1).amax(1).view(-1, 1, 1)).double().mean().item()
    a, b = ref.flatten().numpy(), other.flatten().numpy()
    top = lambda v: set(np.argsort(v)[-len(v) // 20:])  # noqa: E731 (top 5% of pixels)
    return (f"Spearman rho mean {rho.mean():.4f} (min {rho.min():.4f}), {close:.1%} of pixels within "
            f"{within:.0%} of the maximum, top-5% pixel overlap {len(top(a) & top(b)) / len(top(a)):.1%}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=a4b.BATCH_SIZE, help="images per pass (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=5, help="rounds of every variant; medians reported (default: "
                                                          "%(default)s)")
    p.add_argument("--size", type=int, default=224, help="image side in pixels (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (default: %(default)s)")
    p.add_argument("--precisions", nargs="+", choices=vgg16.PRECISIONS, default=["fp32", "tf32", "bf16"],
                   help="bf16 is skipped where the hardware has no bf16 units, tf32 where it has no TF32 units; the "
                        "maps of each are compared with fp32's (default: %(default)s)")
    p.add_argument("--method-images", type=int, default=0,
                   help="also time each --method at the script's defaults on this many images (default: %(default)s)")
    args = p.parse_args(argv)

    device = vgg16.resolve_device(args.device)
    torch.manual_seed(0)
    nchw = vgg16.VGG16().eval().to(device)
    for q in nchw.parameters():
        q.requires_grad_(False)  # the floor's model: frozen, so autograd builds no weight-gradient work
    cl = copy.deepcopy(nchw).to(memory_format=torch.channels_last)
    ours = copy.deepcopy(nchw).to(memory_format=torch.channels_last)  # as main() holds it: parameters as loaded
    for q in ours.parameters():
        q.requires_grad_(True)
    x = torch.randn(args.batch_size, 3, args.size, args.size, device=device)
    try:
        from captum.attr import Saliency
        captum = Saliency(copy.deepcopy(nchw).requires_grad_(True))
    except ImportError:
        captum = None
        print("Captum not installed (pip install captum): its column is left out")
    print(f"{cpu_name()} ({os.cpu_count()} logical cores) | device {device}, {torch.get_num_threads()} threads | "
          f"torch {torch.__version__} | batch {args.batch_size}, {args.size}x{args.size}, {args.repeats} repeats")
    maps = {}
    for precision in args.precisions:
        if precision == "bf16" and not bf16_native(device):
            print("bf16: not measured, this CPU has no bf16 units (AVX512-BF16 or AMX): emulated, it runs ~20x "
                  "slower than fp32 and the scripts warn")
            continue
        if vgg16.precision_that_runs(precision, device) != precision:
            print(f"{precision}: not measured, {device} has no TF32 units (it would run fp32)")
            continue
        vgg16.set_precision(precision)  # every variant, the floor's too, in the same arithmetic
        cls = a4b.saliency_maps(ours, x, precision=precision)[1]
        variants = {"ours": lambda: a4b.saliency_maps(ours, x, precision=precision)[0],
                    "floor NCHW": lambda: plain_saliency(nchw, x, precision),
                    "floor CL": lambda: plain_saliency(cl, x, precision)}
        if captum is not None and precision == "fp32":
            variants["Captum Saliency"] = lambda: captum.attribute(x, target=cls, abs=True).amax(dim=1)
        times = {k: [] for k in variants}
        for fn in variants.values():
            fn()  # warm-up: oneDNN / cuDNN pick their kernels on the first calls
        for _ in range(args.repeats):
            for name, fn in variants.items():  # interleaved: drift in clock or load hits every variant alike
                sync(device)
                t = time.perf_counter()
                out = fn()
                sync(device)
                times[name].append(time.perf_counter() - t)
                if name == "ours":
                    maps[precision] = out
        rate = {k: args.batch_size / statistics.median(v) for k, v in times.items()}
        spread = {k: (max(v) - min(v)) / statistics.median(v) for k, v in times.items()}
        floor = max(rate["floor NCHW"], rate["floor CL"])
        print(f"{precision}: " + " | ".join(f"{k} {r:.2f} img/s (spread {spread[k]:.0%})" for k, r in rate.items()))
        print(f"{precision}: ours / floor {rate['ours'] / floor:.2f} (target >= 0.9)"
              + (f" | ours / Captum {rate['ours'] / rate['Captum Saliency']:.2f}" if "Captum Saliency" in rate else "")
              + f" | channels_last / NCHW floor {rate['floor CL'] / rate['floor NCHW']:.2f}")
    vgg16.set_precision("fp32")
    for other in [q for q in maps if q != "fp32" and "fp32" in maps]:
        print(f"{other} vs fp32 maps: {agreement(maps['fp32'].cpu(), maps[other].cpu())}")
    if args.method_images:
        x2 = x[:args.method_images]
        _, c2, _ = a4b.saliency_maps(ours, x2)
        base = torch.zeros(1, 3, 1, 1, device=device)
        runs = {"vanilla": lambda: a4b.saliency_maps(ours, x2, c2),
                "smoothgrad": lambda: ex.smoothgrad(ours, x2, c2, chunk=args.batch_size),
                "integrated-gradients": lambda: ex.integrated_gradients(ours, x2, c2, base, chunk=args.batch_size),
                "gradcam": lambda: ex.gradcam(ours, x2, c2)}
        out = []
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            sync(device)
            out.append(f"{name} {(time.perf_counter() - t) / len(x2):.2f}")
        print(f"seconds per image, fp32, {len(x2)} images, chunks of {args.batch_size} (SmoothGrad {ex.SG_SAMPLES} "
              f"samples, Integrated Gradients {ex.IG_STEPS} steps): " + ", ".join(out))


if __name__ == "__main__":
    main()
