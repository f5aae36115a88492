"""Download a balanced WikiArt style subset for assignment_4a.py: 10 styles x 400 paintings, split 80/20.

    python download_wikiart.py                              # Hugging Face dataset viewer API (default)
    python download_wikiart.py --source viewer+parquet      # then fill styles that fell short from parquet shards
    python download_wikiart.py --source parquet             # only the parquet shards (~520 MB each)
    python download_wikiart.py --from-dir ~/wikiart         # a WikiArt copy you have: one folder per style
    python download_wikiart.py --csv wikiart_urls.csv       # the old assignment's list: image_url,label rows
    python download_wikiart.py --styles Baroque Cubism --per-style 100 --val-fraction 0.25
    python download_wikiart.py --source parquet --styles all --per-style all --out datasets/wikiart27
                        # the full 27-style WikiArt (81,444 paintings; Tan et al. 2016's setting): every shard

Writes datasets/wikiart/{train,val}/<Style>/<id>.jpg (the layout torchvision's ImageFolder reads) and
datasets/wikiart/manifest.csv (split, style, file, source id, bytes, sha256, width, height).
Run it again after Ctrl-C or a crash: it resumes and downloads nothing twice. Same seed and flags, same subset.

Source: the Hugging Face dataset huggan/wikiart (81,444 paintings, 27 styles). Its dataset viewer serves a
partial export (about 11,300 rows, 16 styles); the default 10 styles are ones it holds 400 of (see STYLES for the
two stand-ins). Styles that fall short of --per-style are named in the summary, and --source viewer+parquet fills
them from the full parquet shards.
"""
import argparse
import csv
import hashlib
import io
import json
import os
import random
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import requests

# ---- defaults ----
OUT_DIR = os.path.join("datasets", "wikiart")
DATASET = "huggan/wikiart"
VIEWER_URL = "https://datasets-server.huggingface.co"   # dataset viewer API: /info, /rows
HUB_URL = "https://huggingface.co"                      # parquet shards: /datasets/<id>/resolve/main/data/...
PARQUET_SHARDS = 72                                     # data/train-000NN-of-00072.parquet, ~520 MB each
PARQUET_SHARD_MB = 520
# The course's 10 styles. huggan/wikiart has no Neoclassicism and no Surrealism, and the dataset viewer serves only a
# partial export (its first ~11,320 rows, 16 styles, no Rococo, ~270 Cubism). Besides the course's eight, only two styles
# have 400 paintings there: Northern_Renaissance stands in for Neoclassicism (both linear, finely finished, drawing-led
# painting) and Naive_Art_Primitivism for Surrealism (20th-century dreamlike figuration: mostly Chagall). The
# course-faithful stand-ins Rococo and Cubism need the parquet shards: see STYLES_FROM_SHARDS.
STYLES = ["Art_Nouveau", "Baroque", "Expressionism", "Impressionism", "Northern_Renaissance", "Post_Impressionism",
          "Realism", "Romanticism", "Naive_Art_Primitivism", "Symbolism"]
STYLES_FROM_SHARDS = "--styles Art_Nouveau Baroque Expressionism Impressionism Rococo Post_Impressionism Realism " \
                     "Romanticism Cubism Symbolism --source viewer+parquet"  # Rococo needs ~25 shards, ~13 GB
PER_STYLE = 400
ALL = 10 ** 9           # --per-style all: no cap (more than any style has)
VAL_FRACTION = 0.2
SEED = 0
WORKERS = 8             # parallel downloads
RETRIES = 5             # per request, on timeouts, connection errors, 429 and 5xx
BACKOFF = 1.0           # seconds before the first retry, doubled each time (Retry-After is honoured)
TIMEOUT = 30            # seconds per request
PAGE = 100              # rows per /rows request (the API's maximum)
MIN_SIDE = 32           # an image smaller than this on a side is a placeholder, not a painting
SPLITS = ("train", "val")


class SourceError(RuntimeError):
    """A source cannot be used (unreachable, wrong protocol); the message says what to do."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" to a flag's help, unless the help already says it or there is nothing to say."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Download a balanced, labelled WikiArt style subset (train/val split).",
                                formatter_class=HelpFormatter)
    p.add_argument("--out", default=OUT_DIR, help="output folder (train/, val/, manifest.csv)")
    p.add_argument("--source", choices=["viewer", "parquet", "viewer+parquet"], default="viewer",
                   help="viewer: the dataset viewer API (partial export, quick); parquet: the full dataset's shards "
                        f"(up to {PARQUET_SHARDS} x ~{PARQUET_SHARD_MB} MB, read one at a time, stopping once every "
                        "style has its quota); viewer+parquet: viewer first, parquet for styles that fell short")
    p.add_argument("--from-dir", default=None, metavar="PATH",
                   help="build the subset from a local WikiArt folder (one sub-folder per style) instead")
    p.add_argument("--csv", default=None, metavar="FILE",
                   help="build the subset from a CSV of image_url,label rows (the 2015 assignment's list format)")
    p.add_argument("--styles", nargs="+", default=STYLES,
                   help="style names as the source spells them, or `all` (every style the source has: 27 in "
                        "huggan/wikiart). The course's Neoclassicism and Surrealism are not in huggan/wikiart, and the "
                        "viewer's partial export has 400 paintings of only two more styles: Northern_Renaissance and "
                        "Naive_Art_Primitivism stand in for them by default. The closer stand-ins Rococo and Cubism "
                        f"read ~25 parquet shards (~13 GB): {STYLES_FROM_SHARDS}")
    p.add_argument("--per-style", type=per_style, default=PER_STYLE,
                   help="images wanted per style, or `all`. The literature's benchmark (Tan et al. 2016: 27 styles, "
                        "all 81,444 paintings) is --source parquet --styles all --per-style all: every shard is read "
                        f"({PARQUET_SHARDS} x ~{PARQUET_SHARD_MB} MB, one at a time, resumable)")
    p.add_argument("--val-fraction", type=float, default=VAL_FRACTION, help="share of each style kept for validation")
    p.add_argument("--seed", type=int, default=SEED, help="which images are chosen and how they are split")
    p.add_argument("--workers", type=int, default=WORKERS, help="parallel downloads")
    p.add_argument("--retries", type=int, default=RETRIES, help="retries per request (timeouts, 429, 5xx)")
    p.add_argument("--backoff", type=float, default=BACKOFF, help="seconds before the first retry, doubled each time")
    p.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per request")
    p.add_argument("--dataset", default=DATASET, help="Hugging Face dataset id")
    p.add_argument("--viewer-url", default=VIEWER_URL, help="dataset viewer API base URL (a mirror, or a test server)")
    p.add_argument("--hub-url", default=HUB_URL, help="Hugging Face Hub base URL for the parquet shards")
    p.add_argument("--retry-failed", action="store_true", help="try again the images that failed in earlier runs")
    args = p.parse_args(argv)
    if not 0 <= args.val_fraction < 1:
        p.error("--val-fraction must be in [0, 1)")
    if args.workers < 1 or args.retries < 0:
        p.error("--workers must be at least 1 and --retries at least 0")
    if args.from_dir and args.csv:
        p.error("give --from-dir or --csv, not both")
    return args


def per_style(value):
    """--per-style: a positive count, or `all` (no cap)."""
    if value == "all":
        return ALL
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither a number nor `all`") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: must be at least 1")
    return n


def count(n):
    return "all" if n >= ALL else str(n)


def safe_name(text):
    """A file or folder name from untrusted text: letters, digits, '_', '-', '.' only; never '', '.' or '..'."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("._")[:100]
    return name or "unnamed"


def inside(root, *parts):
    """root/parts..., refusing any path that would land outside root."""
    path = os.path.realpath(os.path.join(root, *parts))
    if os.path.commonpath([path, os.path.realpath(root)]) != os.path.realpath(root):
        raise ValueError(f"refusing to write outside {root}: {parts}")
    return path


# ---- HTTP with retries ----

class Http:
    def __init__(self, args):
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "download_wikiart.py (course assignment)"
        self.retries, self.backoff, self.timeout = args.retries, args.backoff, args.timeout

    def get(self, url, ok_statuses=(200,), connect_retries=None, **kwargs):
        """GET with retries on connection errors, timeouts, 429 and 5xx (the viewer's 500 ResponseNotReady
        while it warms up included). Returns the response; raises requests.HTTPError for other statuses.
        connect_retries: fewer retries when the host cannot be reached at all (no network)."""
        retries = self.retries
        for attempt in range(retries + 1):
            wait = self.backoff * 2 ** attempt
            try:
                r = self.session.get(url, timeout=self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as e:
                if attempt == retries or (isinstance(e, requests.ConnectionError) and connect_retries is not None
                                          and attempt >= connect_retries):
                    raise
                err = e
            else:
                if r.status_code in ok_statuses:
                    return r
                if r.status_code != 429 and r.status_code < 500 or attempt == retries:
                    r.raise_for_status()
                    raise requests.HTTPError(f"{r.status_code} for {url}", response=r)
                wait = max(wait, float(r.headers.get("Retry-After", 0) or 0))
                err = f"HTTP {r.status_code} {r.headers.get('X-Error-Code', '')}".strip()
            time.sleep(wait)
        raise AssertionError(err)  # not reached


# ---- sources: each yields candidates (source id, style, fetch() -> bytes) ----

class Viewer:
    """The dataset viewer API: /info for the style names, /rows pages of 100 rows with signed image URLs."""

    def __init__(self, http, args):
        self.http, self.base, self.dataset = http, args.viewer_url.rstrip("/"), args.dataset
        self.pages, self.lock = {}, threading.Lock()

    def url(self, endpoint, **params):
        return f"{self.base}/{endpoint}?" + urlencode(dict(dataset=self.dataset, config="default", split="train", **params))

    def style_names(self):
        # the first request: a machine that cannot reach the host at all hears so after 2 retries, not 5
        info = self.http.get(self.url("info").replace("&split=train", ""), connect_retries=2).json()
        info = info["dataset_info"]
        return info["features"]["style"]["names"]

    def page(self, offset, fresh=False):
        with self.lock:
            if fresh or offset not in self.pages:
                self.pages[offset] = self.http.get(self.url("rows", offset=offset, length=PAGE)).json()
            return self.pages[offset]

    def candidates(self, styles, workers):
        from tqdm import tqdm
        names = self.style_names()
        first = self.page(0)
        total = first["num_rows_total"]
        with ThreadPoolExecutor(workers) as pool:
            pages = list(tqdm(pool.map(self.page, range(0, total, PAGE)), total=-(-total // PAGE),
                              desc="reading rows", unit="page", file=sys.stderr))
        out = []
        for offset, page in zip(range(0, total, PAGE), pages):
            for row in page["rows"]:
                style = names[row["row"]["style"]]
                if style in styles:
                    out.append((f"hf{row['row_idx']:06d}", style, self.fetcher(offset, row["row_idx"])))
        return out, total, bool(first.get("partial"))

    def fetcher(self, offset, row_idx):
        def fetch(http):
            for refresh in (False, True):
                row = next(r for r in self.page(offset, fresh=refresh)["rows"] if r["row_idx"] == row_idx)
                r = http.get(row["row"]["image"]["src"], ok_statuses=(200, 403, 410))
                if r.status_code == 200:
                    return r.content, r.headers.get("Content-Length")
                # 403/410: the signed URL has expired; read the page again for a fresh one
            raise requests.HTTPError(f"image URL of row {row_idx} still refused after reading its page again")
        return fetch


def dir_candidates(folder, styles):
    missing = [s for s in styles if not os.path.isdir(os.path.join(folder, s))]
    if missing:
        have = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
        raise SourceError(f"--from-dir {folder} has no folder for {', '.join(missing)} (it has: {', '.join(have)})")
    out = []
    for s in styles:
        for f in sorted(os.listdir(os.path.join(folder, s))):
            path = os.path.join(folder, s, f)
            if os.path.isfile(path) and not f.startswith("."):
                out.append((f"local-{safe_name(s)}-{safe_name(os.path.splitext(f)[0])}", s,
                            lambda http, p=path: (open(p, "rb").read(), None)))
    return out


def csv_candidates(path, styles):
    out = []
    with open(path, newline="") as fh:
        for i, row in enumerate(csv.reader(fh)):
            if len(row) < 2 or row[0].strip().lower() in ("image_url", "url"):
                continue
            url, label = row[0].strip(), row[1].strip()
            if label in styles:
                out.append((f"url-{hashlib.sha1(url.encode()).hexdigest()[:12]}", label,
                            lambda http, u=url: (lambda r: (r.content, r.headers.get("Content-Length")))(http.get(u))))
    return out


# ---- verify and store ----

def verify_image(data, expected_length=None):
    """-> (width, height, format) if data is a whole, decodable image that is not a placeholder; else ValueError."""
    from PIL import Image
    if expected_length is not None and str(expected_length).isdigit() and int(expected_length) != len(data):
        raise ValueError(f"truncated: {len(data)} of {expected_length} bytes")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # decodes every pixel: a truncated file fails here
            w, h, fmt = im.width, im.height, im.format
    except Exception as e:
        raise ValueError(f"not a decodable image ({e.__class__.__name__})") from None
    if min(w, h) < MIN_SIDE:
        raise ValueError(f"{w}x{h} pixels is a placeholder, not a painting")
    return w, h, fmt


def store(data, path):
    """Write data to path as a JPEG, via a temporary name renamed once complete."""
    from PIL import Image
    tmp = path + ".part"
    if data[:3] != b"\xff\xd8\xff":  # not a JPEG: convert, so that every file is what its name says
        buf = io.BytesIO()
        with Image.open(io.BytesIO(data)) as im:
            im.convert("RGB").save(buf, "JPEG", quality=95)
        data = buf.getvalue()
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
    return data


class Store:
    """The output folder: a pool of verified images, then the train/val layout and the manifest built from it.
    .state.json records each image's size, hash and dimensions, and the ids that failed."""

    def __init__(self, out):
        self.out = out
        self.pool = inside(out, ".pool")
        self.state_path = inside(out, ".state.json")
        self.state = json.load(open(self.state_path)) if os.path.exists(self.state_path) else {"images": {}, "failed": {}}
        self.lock = threading.Lock()
        os.makedirs(self.pool, exist_ok=True)

    def save_state(self):
        with self.lock:
            with open(self.state_path + ".tmp", "w") as fh:
                json.dump(self.state, fh)
            os.replace(self.state_path + ".tmp", self.state_path)

    def path_of(self, sid):
        """Where an image is now: in the pool or already in its split folder; None if not here."""
        rec = self.state["images"].get(sid)
        if rec is None:
            return None
        for place in [inside(self.pool, sid + ".jpg")] + [inside(self.out, s, safe_name(rec["style"]), sid + ".jpg")
                                                          for s in SPLITS]:
            if os.path.exists(place) and os.path.getsize(place) == rec["bytes"]:
                return place
        return None

    def add(self, sid, style, data, expected_length=None):
        """Verify (decode, size, not a placeholder) and store one image; ValueError if it is not usable."""
        w, h, _ = verify_image(data, expected_length)
        data = store(data, inside(self.pool, sid + ".jpg"))
        with self.lock:
            self.state["images"][sid] = {"style": style, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                         "width": w, "height": h}
            self.state["failed"].pop(sid, None)

    def fail(self, sid, style, reason):
        with self.lock:
            self.state["failed"][sid] = {"style": style, "reason": reason}


def download(store_, http, candidates, wanted, workers, seed, retry_failed, desc="downloading"):
    """Fill each style up to wanted[style] images, in a seeded order of its candidates, in waves: a failed
    image is replaced by the next candidate. -> per style: list of ids kept, in candidate order."""
    from tqdm import tqdm
    by_style = {}
    for sid, style, fetch in candidates:
        by_style.setdefault(style, []).append((sid, fetch))
    order = {s: sorted(c, key=lambda c: c[0]) for s, c in by_style.items()}
    for s in order:
        random.Random(f"{seed}-{s}").shuffle(order[s])  # same seed and candidates -> same choice
    kept = {s: [] for s in wanted}
    pos = {s: 0 for s in wanted}
    bar = tqdm(total=sum(wanted.values()) if max(wanted.values(), default=0) < ALL else None, desc=desc, unit="img",
               file=sys.stderr)

    def one(item):
        sid, style, fetch = item
        try:
            data, length = fetch(http)
            store_.add(sid, style, data, length)
            return sid, style, None
        except (requests.RequestException, ValueError, OSError) as e:
            store_.fail(sid, style, f"{e.__class__.__name__}: {e}"[:200])
            return sid, style, e

    with ThreadPoolExecutor(workers) as pool:
        while True:
            wave = []
            for s in wanted:
                cands, need = order.get(s, []), wanted[s] - len(kept[s])
                while need > 0 and pos[s] < len(cands):
                    sid, fetch = cands[pos[s]]
                    pos[s] += 1
                    if store_.path_of(sid):  # finished in an earlier run
                        kept[s].append(sid)
                        bar.update(1)
                        need -= 1
                    elif sid in store_.state["failed"] and not retry_failed:
                        continue
                    else:
                        wave.append((sid, s, fetch))
                        need -= 1
            if not wave:
                break
            done = 0
            for sid, style, err in pool.map(one, wave):
                if err is None:
                    kept[style].append(sid)
                    bar.update(1)
                else:
                    tqdm.write(f"warning: {sid} ({style}): {err}", file=sys.stderr)
                done += 1
                if done % 50 == 0:
                    store_.save_state()
            store_.save_state()
    bar.close()
    rank = {s: {sid: i for i, (sid, _) in enumerate(order.get(s, []))} for s in wanted}
    return {s: sorted(kept[s], key=rank[s].get) for s in wanted}


def layout(store_, kept, val_fraction, seed):
    """Move the kept images into train/<Style>/ and val/<Style>/ (stratified, seeded) and write manifest.csv."""
    rows, wanted_paths = [], set()
    for style, ids in kept.items():
        ids = list(ids)
        random.Random(f"{seed}-split-{style}").shuffle(ids)
        n_val = round(len(ids) * val_fraction)
        for i, sid in enumerate(ids):
            split = "val" if i < n_val else "train"
            dst = inside(store_.out, split, safe_name(style), sid + ".jpg")
            src = store_.path_of(sid)
            if src != dst:
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.replace(src, dst)
            wanted_paths.add(dst)
            rec = store_.state["images"][sid]
            rows.append([split, style, os.path.relpath(dst, store_.out), sid, rec["bytes"], rec["sha256"],
                         rec["width"], rec["height"]])
    for split in SPLITS:  # images of an earlier, different selection go back to the pool
        for root, _, files in os.walk(inside(store_.out, split)):
            for f in files:
                p = os.path.join(root, f)
                if p not in wanted_paths:
                    os.replace(p, inside(store_.pool, f)) if f.endswith(".jpg") else os.remove(p)
    rows.sort()
    with open(inside(store_.out, "manifest.csv.tmp"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["split", "style", "file", "source_id", "bytes", "sha256", "width", "height"])
        w.writerows(rows)
    os.replace(inside(store_.out, "manifest.csv.tmp"), inside(store_.out, "manifest.csv"))
    return rows


# ---- parquet shards ----

def parquet_fill(store_, http, args, kept, wanted, names):
    """Read the dataset's parquet shards one at a time, adding images for the styles still short of their quota."""
    import pyarrow.parquet as pq
    short = {s: wanted[s] - len(kept[s]) for s in wanted if len(kept[s]) < wanted[s]}
    if not short:
        return kept
    print(f"parquet: {count(sum(short.values()))} images wanted for {len(short)} style(s); this reads up to "
          f"{PARQUET_SHARDS} shards of ~{PARQUET_SHARD_MB} MB each (~{PARQUET_SHARDS * PARQUET_SHARD_MB / 1000:.0f} GB), "
          "one at a time, and stops as soon as every style has its quota", file=sys.stderr)
    done_shards = set(store_.state.setdefault("parquet_done", []))
    for shard in range(PARQUET_SHARDS):
        if not short:
            break
        name = f"train-{shard:05d}-of-{PARQUET_SHARDS:05d}.parquet"
        if name in done_shards:
            continue
        path = fetch_shard(http, args, name, inside(store_.out, ".parquet"))
        table = pq.ParquetFile(path)
        cands, row = [], 0
        for batch in table.iter_batches(columns=["image", "style"], batch_size=256):
            for img, style in zip(batch.column("image").to_pylist(), batch.column("style").to_pylist()):
                s = names[style] if isinstance(style, int) else style
                if s in short:
                    cands.append((f"pq{shard:02d}-{row:06d}", s, img["bytes"]))
                row += 1
        by_style = {}
        for sid, s, data in cands:
            by_style.setdefault(s, []).append((sid, data))
        for s in list(short):
            for sid, data in by_style.get(s, []):
                if short[s] == 0:
                    break
                if store_.path_of(sid):
                    if sid not in kept[s]:
                        kept[s].append(sid)
                        short[s] -= 1
                    continue
                try:
                    store_.add(sid, s, data)
                    kept[s].append(sid)
                    short[s] -= 1
                except ValueError as e:
                    store_.fail(sid, s, str(e))
            if short[s] == 0:
                del short[s]
        store_.state["parquet_done"].append(name)
        store_.save_state()
        os.remove(path)  # one shard on disk at a time
    return kept


def fetch_shard(http, args, name, folder):
    """Download one shard with HTTP Range resume; verify its size and (where the Hub says it) its sha256."""
    os.makedirs(folder, exist_ok=True)
    url = f"{args.hub_url.rstrip('/')}/datasets/{args.dataset}/resolve/main/data/{name}"
    path = inside(folder, name)
    if os.path.exists(path):  # completed and verified before an interruption
        return path
    head = http.session.head(url, allow_redirects=False, timeout=args.timeout)
    size = head.headers.get("X-Linked-Size") or head.headers.get("Content-Length")
    sha = (head.headers.get("X-Linked-Etag") or "").strip('"')
    have = os.path.getsize(path + ".part") if os.path.exists(path + ".part") else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    r = http.get(url, ok_statuses=(200, 206), headers=headers, stream=True)
    mode = "ab" if r.status_code == 206 else "wb"
    with open(path + ".part", mode) as fh:
        for chunk in r.iter_content(1 << 20):
            fh.write(chunk)
    got = os.path.getsize(path + ".part")
    if size and int(size) != got:
        if got > int(size):
            os.remove(path + ".part")
        raise SourceError(f"{name}: {got} of the {size} bytes announced arrived; run the same command again to resume")
    if len(sha) == 64:
        h = hashlib.sha256()
        with open(path + ".part", "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != sha:
            os.remove(path + ".part")
            raise SourceError(f"{name}: sha256 mismatch; run again to download it anew")
    os.replace(path + ".part", path)
    return path


# ---- main ----

def summary(kept, wanted, failed_counts):
    lines = [f"{'style':24s} {'wanted':>6s} {'got':>5s} {'failed':>6s}"]
    for s in wanted:
        short = wanted[s] - len(kept[s]) if wanted[s] < ALL else 0
        lines.append(f"{s:24s} {count(wanted[s]):>6s} {len(kept[s]):5d} {failed_counts.get(s, 0):6d}"
                     + (f"   short by {short}" if short else ""))
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    http = Http(args)
    os.makedirs(args.out, exist_ok=True)
    store_ = Store(args.out)
    if args.retry_failed:
        store_.state["failed"] = {}
    t0 = time.time()
    every = args.styles == ["all"]
    wanted = {} if every else {s: args.per_style for s in args.styles}
    try:
        if every and args.from_dir:
            args.styles = sorted(d for d in os.listdir(args.from_dir) if os.path.isdir(os.path.join(args.from_dir, d))
                                 and not d.startswith("."))
        elif every and args.csv:
            args.styles = sorted({row[1].strip() for row in csv.reader(open(args.csv, newline="")) if len(row) >= 2
                                  and row[0].strip().lower() not in ("image_url", "url")})
        if args.from_dir or args.csv:
            wanted = {s: args.per_style for s in args.styles}
            cands = dir_candidates(args.from_dir, args.styles) if args.from_dir else csv_candidates(args.csv, args.styles)
            kept = download(store_, http, cands, wanted, args.workers, args.seed, args.retry_failed)
        else:
            viewer = Viewer(http, args)
            try:
                names = viewer.style_names()
            except requests.ConnectionError as e:
                raise SourceError(f"cannot reach {args.viewer_url} ({e.__class__.__name__}): check the internet "
                                  "connection, or build the subset from files you have with --from-dir PATH") from None
            if every:
                args.styles = list(names)
                wanted = {s: args.per_style for s in args.styles}
            unknown = [s for s in args.styles if s not in names]
            if unknown:
                raise SourceError(f"--styles: {', '.join(unknown)} not in {args.dataset}; it has: {', '.join(names)}")
            kept = {s: [] for s in wanted}
            if args.source in ("viewer", "viewer+parquet"):
                cands, total, partial = viewer.candidates(set(args.styles), args.workers)
                print(f"viewer: {total} rows{' (a partial export of the dataset)' if partial else ''}, "
                      f"{len(cands)} in the wanted styles", file=sys.stderr)
                kept = download(store_, http, cands, wanted, args.workers, args.seed, args.retry_failed)
            if args.source in ("parquet", "viewer+parquet"):
                kept = parquet_fill(store_, http, args, kept, wanted, names)
    except (SourceError, ValueError) as e:
        sys.exit(f"error: {e}")
    except requests.RequestException as e:
        sys.exit(f"error: the source failed after {args.retries} retries ({e}); run the same command again to resume")
    except KeyboardInterrupt:
        store_.save_state()
        sys.exit("\ninterrupted: what finished is kept; run the same command again to resume")
    store_.save_state()
    rows = layout(store_, kept, args.val_fraction, args.seed)
    failed = {}
    for rec in store_.state["failed"].values():
        failed[rec["style"]] = failed.get(rec["style"], 0) + 1
    n = len(rows)
    dt = time.time() - t0
    print(summary(kept, wanted, failed))
    print(f"{n} images in {args.out} ({sum(r[0] == 'train' for r in rows)} train, {sum(r[0] == 'val' for r in rows)} "
          f"val), manifest.csv written; {dt:.0f}s")
    short = [s for s in wanted if len(kept[s]) < wanted[s] < ALL]
    if short and args.source == "viewer" and not (args.from_dir or args.csv):
        print(f"{len(short)} style(s) fell short of {args.per_style}: python download_wikiart.py --source viewer+parquet "
              "fills them from the full dataset (large download)")
    if n == 0:
        sys.exit("error: no image could be downloaded; see the warnings above")


if __name__ == "__main__":
    main()
