"""Download throughput of download_wikiart.py against a local imitation of the Hugging Face viewer API.

    python bench/bench_download.py                 # 800 paintings of ~220 KB, 8 workers, median of 5 runs
    python bench/bench_download.py --images 400 --workers 16 --side 1024

The real source's speed depends on the network; this measures what the script itself costs per file
(request, verify by decoding, hash, write, rename) and prints files/s and MB/s, against the floor: the same work
written plainly (one requests.Session, a thread pool of the same size, read the pages, GET, decode to verify,
write), interleaved with ours in every repeat. Medians of the repeats.
"""
import argparse
import concurrent.futures
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


def plain_download(url, n, out, workers):
    """The floor: the pages, then every image fetched, decoded to verify it, and written; nothing else."""
    import requests
    from PIL import Image
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=2 * workers)
    session.mount("http://", adapter)
    rows = []
    for offset in range(0, n, 100):
        rows += session.get(f"{url}/rows", params=dict(dataset="huggan/wikiart", config="default", split="train",
                                                      offset=offset, length=100)).json()["rows"]

    def one(row):
        data = session.get(row["row"]["image"]["src"]).content
        with Image.open(io.BytesIO(data)) as im:
            im.load()
        with open(os.path.join(out, f"{row['row_idx']}.jpg"), "wb") as fh:
            fh.write(data)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, rows))


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
    rates = {"ours": [], "floor": []}
    for _ in range(args.repeats):  # interleaved: ours, then the floor, in every repeat
        for name in rates:
            with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                t = time.perf_counter()
                if name == "ours":
                    dw.main(["--out", out, "--viewer-url", fake.url, "--styles", "Baroque", "--per-style",
                             str(args.images), "--workers", str(args.workers)])
                else:
                    plain_download(fake.url, args.images, out, args.workers)
                rates[name].append(args.images / (time.perf_counter() - t))
    fake.stop()
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"{args.images} files, {mb:.0f} MB ({mb / args.images * 1000:.0f} KB each), {args.workers} workers, "
          f"{os.cpu_count()} cores, median of {args.repeats}:")
    for name, label in (("ours", "download_wikiart.py"), ("floor", "plain requests + decode + write")):
        print(f"  {label:32s} {med[name]:6.0f} files/s  {med[name] * mb / args.images:5.1f} MB/s  "
              f"({min(rates[name]):.0f}-{max(rates[name]):.0f})")
    print(f"  ours / floor: {med['ours'] / med['floor']:.2f}")


if __name__ == "__main__":
    main()
