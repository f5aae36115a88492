"""How balanced download_wikiart.py's split is, with and without --split-by-artist, on the test suite's stand-in
for the dataset viewer's partial export of huggan/wikiart (tests/fake_hf.py: each style's size and number of
artists there, each artist an equal block of rows; the real export is more lopsided, Symbolism mostly Roerich).

    python bench/split_balance.py                    # the default 10 styles, 40 paintings a style
    python bench/split_balance.py --per-style 30 --seeds 5

Prints, per style, the share of paintings in val for each seed, and the artists found in both splits.
"""
import argparse
import contextlib
import csv
import io
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [HERE, os.path.join(HERE, "tests")]
import download_wikiart as dw  # noqa: E402
from fake_hf import PARTIAL_EXPORT_ARTISTS, PARTIAL_EXPORT_TENTH, WIKIART_27, FakeHF  # noqa: E402


def split(fake, per_style, seed, by_artist):
    """-> manifest rows of one download into a fresh folder."""
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        dw.main(["--out", out, "--viewer-url", fake.url, "--hub-url", fake.url, "--backoff", "0.01", "--per-style",
                 str(per_style), "--seed", str(seed)] + (["--split-by-artist"] if by_artist else []))
        return list(csv.DictReader(open(os.path.join(out, "manifest.csv"))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-style", type=int, default=40, help="paintings a style (default: %(default)s; the stand-in "
                                                               "has 40 to 334 a style)")
    p.add_argument("--seeds", type=int, default=3, help="seeds tried (default: %(default)s)")
    args = p.parse_args(argv)
    fake = FakeHF(counts={WIKIART_27.index(s): n for s, n in PARTIAL_EXPORT_TENTH.items()}, names=WIKIART_27,
                  shuffle=False, artists={WIKIART_27.index(s): n for s, n in PARTIAL_EXPORT_ARTISTS.items()}).start()
    try:
        for by_artist in (False, True):
            shares, both = {}, []
            for seed in range(args.seeds):
                rows = split(fake, args.per_style, seed, by_artist)
                for r in rows:
                    shares.setdefault(r["style"], [[0, 0] for _ in range(args.seeds)])[seed][r["split"] == "val"] += 1
                sides = {}
                for r in rows:
                    sides.setdefault(r["artist"], set()).add(r["split"])
                both.append(sum(len(v) == 2 for a, v in sides.items() if a))
            print(f"\n{'--split-by-artist' if by_artist else 'default split'}: share of each style in val, seeds "
                  f"0-{args.seeds - 1}")
            for style, counts in sorted(shares.items()):
                print(f"  {style:24s} " + "  ".join(f"{v / (t + v):4.0%}" for t, v in counts))
            print(f"  artists in both train and val: {', '.join(map(str, both))}")
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
