"""Download throughput of download_wikiart.py against a local imitation of the Hugging Face viewer API.

    python bench/bench_download.py                 # 800 paintings of ~220 KB, 8 workers, median of 5 runs
    python bench/bench_download.py --images 400 --workers 16 --side 1024

The real source's speed depends on the network; this measures what the script itself costs per file
(request, verify by decoding, hash, write, rename) and prints files/s and MB/s.
"""
import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [HERE, os.path.join(HERE, "tests")]
import download_wikiart as dw  # noqa: E402
from fake_hf import FakeHF, jpeg  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=800, help="paintings to download (default: %(default)s)")
    p.add_argument("--workers", type=int, default=dw.WORKERS, help="parallel downloads (default: %(default)s)")
    p.add_argument("--side", type=int, default=768, help="longer side of each image in pixels (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=5, help="whole downloads timed; the median is printed")
    args = p.parse_args(argv)
    fake = FakeHF(counts={0: args.images})
    fake.rows = [(0, jpeg(0, i, size=(args.side, args.side * 3 // 4))) for i in range(args.images)]
    fake.start()
    mb = sum(len(b) for _, b in fake.rows) / 1e6
    rates = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            t = time.perf_counter()
            dw.main(["--out", out, "--viewer-url", fake.url, "--styles", "Baroque", "--per-style", str(args.images),
                     "--workers", str(args.workers)])
            rates.append(args.images / (time.perf_counter() - t))
    fake.stop()
    rate = statistics.median(rates)
    print(f"{args.images} files, {mb:.0f} MB ({mb / args.images * 1000:.0f} KB each): {rate:.0f} files/s, "
          f"{rate * mb / args.images:.1f} MB/s (median of {args.repeats}; {min(rates):.0f}-{max(rates):.0f}), "
          f"{args.workers} workers, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
