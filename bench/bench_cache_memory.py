"""Peak memory of assignment_4a.py as the dataset grows: it should stay flat.

    python bench/bench_cache_memory.py                 # the decode cache: 2,000 and 20,000 generated images
    python bench/bench_cache_memory.py --sizes 500 5000 --keep /tmp/cache_bench
    python bench/bench_cache_memory.py --train-new --sizes 1000 5000   # a whole --train new run (random weights)

With --train-new each size runs `assignment_4a.py --remove 1 --train new --epochs 1` on N training and N/4
validation images, with random AlexNet weights where torchvision looks for them, and prints the peak heap memory
(RssAnon, sampled every 20 ms) above what the process had after importing torch (goal: < 200 MB growth from 1,000
to 5,000 training images, so that the 81,444-painting WikiArt fits a laptop with 8 GB).

Each size runs in a fresh process: it generates N small JPEGs in two style folders, builds the cache
(load_split_cached: decode, then write image by image to a raw uint8 file), reads it back memory-mapped and
touches every image once (as the frozen-layer pass does). Prints the process's peak RSS above what it had after
importing torch while the cache is built, the heap memory (RssAnon) the read pass adds, the RSS that includes
the cache file's pages (page cache: reclaimable, so it never exhausts the machine), and the growth between the
smallest and the largest N (goal: < 300 MB; the decoded images themselves are 196 KB each, 3.9 GB for 20,000).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def peak_rss_mb():
    try:
        import resource  # Unix only
    except ImportError:
        return float("nan")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def anon_rss_mb():
    """Resident memory the process owns (heap, tensors), without file pages mapped from the cache: those are the
    kernel's page cache, dropped under memory pressure, so they never exhaust the machine."""
    if not os.path.exists("/proc/self/status"):  # Linux only
        return float("nan")
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(n, folder):
    from PIL import Image
    sys.path.insert(0, ROOT)
    import assignment_4a as a4a  # noqa: E402  (imports torch)
    import torch  # noqa: E402
    base = peak_rss_mb()
    rng = np.random.default_rng(0)
    for style in ("A", "B"):
        os.makedirs(os.path.join(folder, "train", style), exist_ok=True)
    t = time.time()
    for i in range(n):
        arr = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(arr).save(os.path.join(folder, "train", "AB"[i % 2], f"{i:06d}.jpg"), quality=80)
    t_gen = time.time() - t
    files, labels, _ = a4a.list_split(folder, "train")
    t = time.time()
    split = a4a.load_split_cached(files, labels, os.path.join(folder, ".cache"), "train", os.cpu_count() or 1)
    images, labels, skipped = split.images, split.labels, split.skipped
    t_build = time.time() - t
    after_build = peak_rss_mb() - base
    anon_base, anon_peak = anon_rss_mb(), 0.0
    for i in range(0, len(images), 128):  # read every image whole, batch by batch, as run_prefix does
        batch = images[i:i + 128].float()
        anon_peak = max(anon_peak, anon_rss_mb() - anon_base)
        del batch
    assert len(images) == n and skipped == 0 and images.dtype == torch.uint8
    print(f"{n} {after_build:.0f} {t_gen:.1f} {t_build:.1f} {anon_peak:.0f} {peak_rss_mb() - base:.0f}")


def train_child(n, folder):
    """One --train new run on n generated training images; prints n and the peak RssAnon above the start in MB."""
    import threading
    sys.path.insert(0, ROOT)
    import assignment_4a as a4a  # noqa: E402  (imports torch)
    import torch  # noqa: E402
    import torchvision  # noqa: E402
    from PIL import Image
    os.environ["TORCH_HOME"] = os.path.join(folder, "torch_home")
    weights = torchvision.models.AlexNet_Weights.IMAGENET1K_V1
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(torchvision.models.alexnet().state_dict(), path)
    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("val", n // 4)):
        for i in range(count):
            d = os.path.join(folder, "data", split, "AB"[i % 2])
            os.makedirs(d, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(os.path.join(d, f"{i:06d}.jpg"))
    base, peak, done = anon_rss_mb(), [0.0], threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], anon_rss_mb())
    threading.Thread(target=sample, daemon=True).start()
    a4a.main(["--data", os.path.join(folder, "data"), "--runs", os.path.join(folder, "runs"), "--remove", "1",
              "--train", "new", "--epochs", "1"])
    done.set()
    print(f"RESULT {n} {peak[0] - base:.0f}")


def train_new(sizes, work):
    growth = {}
    print(f"{'training images':>16s} {'peak heap (RssAnon) above the start':>38s}")
    for n in sizes:
        folder = os.path.join(work, f"t{n}")
        shutil.rmtree(folder, ignore_errors=True)
        out = subprocess.run([sys.executable, __file__, "--train-child", str(n), folder], check=True,
                             capture_output=True, text=True).stdout
        growth[n] = float(out.split("RESULT ")[1].split()[1])
        print(f"{n:16d} {growth[n]:35.0f} MB", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
    lo, hi = min(growth), max(growth)
    print(f"growth from {lo} to {hi} training images: {growth[hi] - growth[lo]:.0f} MB (goal < 200 MB)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="dataset sizes, one process each (default: 2000 20000; 1000 5000 with --train-new)")
    p.add_argument("--train-new", action="store_true", help="measure a whole --train new run instead of the cache")
    p.add_argument("--train-child", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--keep", default=None, help="work folder to keep (default: a temporary one, removed)")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(int(args.child[0]), args.child[1])
    if args.train_child:
        return train_child(int(args.train_child[0]), args.train_child[1])
    work = args.keep or tempfile.mkdtemp(prefix="cache_bench_")
    if args.train_new:
        try:
            return train_new(args.sizes or [1000, 5000], work)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    args.sizes = args.sizes or [2000, 20000]
    growth = {}
    print(f"{'images':>8s} {'decoded':>10s} {'build: peak RSS':>16s} {'read: heap':>11s} "
          f"{'read: RSS incl. file pages':>27s}"
          f" {'build time':>18s}")
    try:
        for n in args.sizes:
            folder = os.path.join(work, f"n{n}")
            shutil.rmtree(folder, ignore_errors=True)
            out = subprocess.run([sys.executable, __file__, "--child", str(n), folder], check=True,
                                 capture_output=True, text=True).stdout.split()
            growth[n] = max(float(out[1]), float(out[4]))
            print(f"{n:8d} {n * 3 * 256 * 256 / 1e9:7.2f} GB {float(out[1]):13.0f} MB {float(out[4]):8.0f} MB "
                  f"{float(out[5]):24.0f} MB {float(out[3]):7.1f}s ({n / float(out[3]):.0f} img/s)", flush=True)
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    lo, hi = min(growth), max(growth)
    print(f"growth from {lo} to {hi} images: {growth[hi] - growth[lo]:.0f} MB of memory the process owns (goal < 300 "
          "MB); the last column also counts the cache file's pages the kernel keeps mapped, which it drops under "
          "pressure")


if __name__ == "__main__":
    main()
