"""A local stand-in for the Hugging Face dataset viewer API and Hub on 127.0.0.1, speaking their protocol and
imitating how the real services behave (huggingface/dataset-viewer's source; the huggan/wikiart card and export).

One dataset of rows (style, artist, genre, image) in the real order, of which:
- the viewer serves the first `viewer_rows` (a partial export: `partial: true`, /info once, /rows pages of <= 100
  with signed image URLs that expire), or all of them (`partial: false`, where /filter?where="style"=N works);
- the Hub serves every row as parquet shards (data/train-000NN-of-00072.parquet) cut at `shard_sizes`, row groups
  with column statistics, behind a 302 to a CDN that answers ranged requests (206, 416) the way the real one does.
  The viewer's rows are the shards' first rows, so a painting has one global row index whichever route serves it.

JSON comes gzipped and chunked, as from the real viewer's proxy. Faults, as the real services show them: 500
ResponseNotReady while warming up, a page that fails for good (500
UnexpectedError), 429 with Retry-After in seconds or as an HTTP date, a body cut short, a signed URL expired (403) or
an evicted asset (404) until its page is read again, a placeholder that is not an image, a gzipped body, a body that
trickles, one that stalls after its headers, an oversized body, paintings stored twice under two rows. And replies
an audit found hostile: a 429 whose Retry-After never ends, pages that are not JSON pages (too deep, too large, a
list), rows with broken fields, shards without a style column or with a corrupt footer, a CDN whose 206 replies are
shorter than asked for or lack Content-Range."""
import email.utils
import gzip
import hashlib
import io
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np
from PIL import Image

NAMES = ["Baroque", "Cubism", "Rococo", "Realism", "Ukiyo_e"]
COLOURS = [(150, 90, 40), (90, 90, 160), (230, 180, 200), (100, 120, 90), (200, 60, 60)]
COMMIT = "4f1b2d8e6a9c0b3d5e7f1a2b3c4d5e6f7a8b9c0d"


# huggan/wikiart's 27 style names, in its ClassLabel order
WIKIART_27 = ["Abstract_Expressionism", "Action_painting", "Analytical_Cubism", "Art_Nouveau", "Baroque",
              "Color_Field_Painting", "Contemporary_Realism", "Cubism", "Early_Renaissance", "Expressionism", "Fauvism",
              "High_Renaissance", "Impressionism", "Mannerism_Late_Renaissance", "Minimalism", "Naive_Art_Primitivism",
              "New_Realism", "Northern_Renaissance", "Pointillism", "Pop_Art", "Post_Impressionism", "Realism",
              "Rococo", "Romanticism", "Symbolism", "Synthetic_Cubism", "Ukiyo_e"]


# The dataset viewer's partial export of huggan/wikiart (its first ~11,320 rows, which follow ArtGAN's artist-ordered
# list, unshuffled): rows per style, divided by 10. No Rococo at all, Cubism ~270: what the default must live with.
PARTIAL_EXPORT_TENTH = {"Impressionism": 334, "Realism": 214, "Post_Impressionism": 114, "Romanticism": 84,
                        "Symbolism": 83, "Art_Nouveau": 76, "Northern_Renaissance": 50, "Baroque": 46,
                        "Expressionism": 45, "Naive_Art_Primitivism": 43, "Cubism": 27, "Synthetic_Cubism": 4,
                        "Pointillism": 4, "Analytical_Cubism": 3, "Fauvism": 3, "Abstract_Expressionism": 3}
# ... and how few artists paint them there (the export's 23 artists): Baroque is all Rembrandt, Northern_Renaissance
# all Duerer, Symbolism mostly Roerich. Artists per style in the export (a style not listed has one).
PARTIAL_EXPORT_ARTISTS = {"Impressionism": 6, "Realism": 5, "Post_Impressionism": 3, "Romanticism": 3, "Symbolism": 2,
                          "Art_Nouveau": 2, "Expressionism": 2, "Naive_Art_Primitivism": 2}


def jpeg(style, i, size=(64, 48)):
    rng = np.random.default_rng(1000 * style + i)
    colour = (np.array(COLOURS[style % len(COLOURS)]) + 37 * (style // len(COLOURS))) % 256  # distinct for 27 styles
    arr = np.clip(colour + rng.normal(0, 30, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=85)
    return buf.getvalue()


class FakeHF:
    def __init__(self, counts=None, names=NAMES, extra=(), shard_sizes=None, delay=0.0, shuffle=True, artists=None,
                 duplicates=None, partial=True, row_group=4):
        """counts: viewer rows per style index, e.g. {0: 30, 1: 30}; shuffle=False serves them in blocks, as the real
        export's artist-ordered rows come. extra: (style index, jpeg bytes) rows after them that only the parquet
        shards hold (partial=True) or that the viewer serves too (partial=False). shard_sizes: rows per shard (default:
        one shard). artists: {style index: how many artists, or a list of names}, rows of a style assigned to them in
        equal blocks, in order (default 1; a name given twice in a row gets two blocks; a name in two styles' lists is
        one painter in both, as Van Gogh in Realism and Post_Impressionism). As in huggan/wikiart, the artist
        ClassLabel's first name is "Unknown Artist" (many painters, not one), which a list may name too.
        duplicates: {row: row it repeats}: the same image bytes under a second row."""
        counts = {0: 30, 1: 30, 2: 8, 3: 5} if counts is None else counts
        styles = [s for s, n in counts.items() for _ in range(n)]
        if shuffle:
            np.random.default_rng(0).shuffle(styles)
        self.names, self.delay, self.partial = names, delay, partial
        self.rows = [(s, jpeg(s, i)) for i, s in enumerate(styles)] + list(extra)
        for dup, orig in (duplicates or {}).items():
            self.rows[dup] = (self.rows[dup][0], self.rows[orig][1])
        self.viewer_rows = len(styles) if partial else len(self.rows)
        self.artist_names, self.artist = ["Unknown Artist"], []
        per_style, seen = Counter(s for s, _ in self.rows), Counter()
        for s, _ in self.rows:  # each style's rows in blocks, one block per artist (ArtGAN's list is artist-ordered)
            given = (artists or {}).get(s, 1)
            painters = given if isinstance(given, list) else \
                [f"{names[s].lower().replace('_', '-')}-painter-{k}" for k in range(given)]
            name = painters[min(len(painters) - 1, seen[s] * len(painters) // per_style[s])]
            if name not in self.artist_names:
                self.artist_names.append(name)
            self.artist.append(self.artist_names.index(name))
            seen[s] += 1
        self.genre_names = ["portrait", "landscape", "religious_painting"]
        sizes = shard_sizes or [len(self.rows)]
        assert sum(sizes) == len(self.rows), (sizes, len(self.rows))
        self.shards, start = {}, 0
        for k, n in enumerate(sizes):
            self.shards[f"train-{k:05d}-of-00072.parquet"] = self._parquet(range(start, start + n), row_group)
            start += n
        self.requests = Counter()      # path (without query) -> count
        self.log = []                  # (method, path, Range header) of every Hub and CDN request
        self.asset_requests = Counter()  # row_idx -> count
        self.info_requests = 0
        self.pages_in_flight = self.max_pages_in_flight = 0  # /rows requests being answered at once
        self.auth = set()              # Authorization headers the Hub and CDN saw
        self.not_ready = 0             # next N /info, /rows or /filter requests answer 500 ResponseNotReady
        self.rate_limited = 0          # next N asset requests answer 429 (Retry-After: 0)
        self.rate_limited_date = 0     # next N asset requests answer 429 with Retry-After as an HTTP date ...
        self.retry_after_date_s = 1    # ... this many seconds ahead
        self.broken_pages = set()      # offsets whose /rows page answers 500 UnexpectedError, always
        self.cold_pages = {}           # offset -> seconds the first read of that page takes
        self.cdn_unavailable = 0       # next N CDN requests answer 503
        self.cut_shard_once = set()    # shard names whose first full GET stops halfway
        # row indices: truncate (once), expire (403 until the page is re-read), evict (404 until then), not_image,
        # gzip (Content-Encoding: gzip), trickle (a byte every 20 ms), huge (a 2 MB body)
        self.truncate, self.expire, self.evict, self.not_image = set(), set(), set(), set()
        self.gzip, self.trickle, self.huge = set(), set(), set()
        self.slow = {}                 # row_idx -> seconds its image takes to start (a slow CDN edge)
        self.stall = set()             # row indices whose image sends its headers, then nothing (until stop())
        self.throttle = {}             # row_idx -> Retry-After seconds of a 429 it answers, always
        self.odd_pages = {}            # /rows offset -> the raw body served instead (bytes): not JSON, too deep, huge
        self.odd_info = None           # the raw body /info serves instead (bytes)
        self.short_tails = {}          # shard name -> a 206 to any suffix range holds only its last N bytes
        self.no_content_range = set()  # shard names whose 206 replies lack Content-Range
        self.stopping = threading.Event()
        self.odd_rows = {}             # row_idx -> f(row json) -> what the viewer serves instead (hostile, broken rows)
        self.page_version = Counter()  # offset -> times the page was served (signed URLs carry it)
        self.lock = threading.Lock()

    def _parquet(self, rows, row_group):
        import pyarrow as pa
        import pyarrow.parquet as pq
        rows = list(rows)
        table = pa.table({"image": [{"bytes": self.rows[i][1], "path": None} for i in rows],
                          "artist": pa.array([self.artist[i] for i in rows], pa.int64()),
                          "genre": pa.array([i % 3 for i in rows], pa.int64()),
                          "style": pa.array([self.rows[i][0] for i in rows], pa.int64())})
        buf = io.BytesIO()
        pq.write_table(table, buf, row_group_size=row_group)
        return buf.getvalue()

    def row_json(self, i, host, v):
        if i in self.odd_rows:
            return self.odd_rows[i](self.plain_row_json(i, host, v))
        return self.plain_row_json(i, host, v)

    def plain_row_json(self, i, host, v):
        return {"row_idx": i, "truncated_cells": [],
                "row": {"image": {"src": f"{host}/assets/huggan/wikiart/--/main/--/default/train/{i}/image/image.jpg"
                                         f"?Expires={int(time.time()) + 3600}&v={v}", "height": 48, "width": 64},
                        "artist": self.artist[i], "genre": i % 3, "style": self.rows[i][0]}}

    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send(self, code, body=b"", headers=None, ctype="application/json", length=None):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                if length is not None and length != len(body):
                    self.close_connection = True

            def send_json(self, body):
                """As the real viewer answers behind its proxy: gzipped when the client accepts it, and chunked
                (no Content-Length)."""
                data = json.dumps(body).encode()
                gz = "gzip" in self.headers.get("Accept-Encoding", "")
                if gz:
                    data = gzip.compress(data)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")  # starlette's JSONResponse, as libapi sends it
                self.send_header("Cache-Control", "max-age=300")     # libapi's get_json_response: max-age or no-store
                self.send_header("X-Revision", COMMIT)               # and the dataset's git revision
                if gz:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(0, len(data), 4096):
                    part = data[i:i + 4096]
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                with fake.lock:
                    fake.requests[url.path] += 1
                if url.path in ("/info", "/rows", "/filter"):
                    return self.viewer(url.path, q)
                if url.path.startswith("/assets/"):
                    return self.asset(int(url.path.split("/")[-3]), q)
                if "/resolve/main/data/" in url.path:
                    return self.resolve(url.path)
                if url.path.startswith("/cdn/"):
                    return self.cdn(url.path.rsplit("/", 1)[1])
                self.send(404, b'{"error":"Not found"}')

            def viewer(self, path, q):
                with fake.lock:
                    if fake.not_ready > 0:
                        fake.not_ready -= 1
                        return self.send(500, b'{"error":"not ready"}', {"X-Error-Code": "ResponseNotReady"})
                if path == "/info" and fake.odd_info is not None:
                    return self.send(200, fake.odd_info)
                if path == "/info":
                    fake.info_requests += 1
                    feats = {"image": {"_type": "Image"},
                             "artist": {"names": fake.artist_names, "_type": "ClassLabel"},
                             "genre": {"names": fake.genre_names, "_type": "ClassLabel"},
                             "style": {"names": fake.names, "_type": "ClassLabel"}}
                    body = {"dataset_info": {"features": feats, "splits": {"train": {"num_examples": len(fake.rows)}}},
                            "partial": fake.partial}
                    return self.send_json(body)
                off, n = int(q["offset"]), min(int(q.get("length", 100)), 100)
                if path == "/rows" and off in fake.odd_pages:
                    return self.send(200, fake.odd_pages[off])
                if path == "/filter":
                    if fake.partial:  # the real one filters the partial export; never needed then
                        return self.send(400, b'{"error":"not used on a partial export here"}')
                    style = int(q["where"].split("=")[1])
                    idx = [i for i in range(fake.viewer_rows) if fake.rows[i][0] == style]
                else:
                    if off in fake.broken_pages:
                        return self.send(500, b'{"error":"Unexpected error."}', {"X-Error-Code": "UnexpectedError"})
                    idx = list(range(fake.viewer_rows))
                with fake.lock:
                    fake.page_version[off] += 1
                    v = fake.page_version[off]
                    cold = fake.cold_pages.pop(off, 0)
                    fake.pages_in_flight += 1
                    fake.max_pages_in_flight = max(fake.max_pages_in_flight, fake.pages_in_flight)
                time.sleep(cold)
                with fake.lock:
                    fake.pages_in_flight -= 1
                host = f"http://{self.headers['Host']}"
                body = {"features": [], "rows": [fake.row_json(i, host, v) for i in idx[off:off + n]],
                        "num_rows_total": len(idx), "num_rows_per_page": 100, "partial": fake.partial}
                return self.send_json(body)

            def asset(self, i, q):
                time.sleep(fake.delay + fake.slow.get(i, 0))
                with fake.lock:
                    if fake.rate_limited > 0:
                        fake.rate_limited -= 1
                        return self.send(429, b"slow down", {"Retry-After": "0"}, "text/plain")
                    if fake.rate_limited_date > 0:
                        fake.rate_limited_date -= 1
                        when = email.utils.formatdate(time.time() + fake.retry_after_date_s, usegmt=True)
                        return self.send(429, b"slow down", {"Retry-After": when}, "text/plain")
                    if i in fake.throttle:
                        return self.send(429, b"slow down", {"Retry-After": str(fake.throttle[i])}, "text/plain")
                    fake.asset_requests[i] += 1  # requests that got past the rate limit
                    if i in fake.expire and q.get("v") == "1":
                        return self.send(403, b"<Error>Request has expired</Error>", ctype="application/xml")
                    if i in fake.evict and q.get("v") == "1":
                        return self.send(404, b'{"error":"Not found"}')
                    data = fake.rows[i][1]
                    if i in fake.truncate:
                        fake.truncate.discard(i)
                        return self.send(200, data[: len(data) // 2], ctype="image/jpeg", length=len(data))
                if i in fake.stall:  # the headers, then silence: the socket stays open
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.flush()
                    fake.stopping.wait(60)
                    self.close_connection = True
                    return
                if i in fake.not_image:
                    return self.send(200, b"<html>placeholder</html>", ctype="text/html")
                if i in fake.gzip:
                    return self.send(200, gzip.compress(data), {"Content-Encoding": "gzip"}, "image/jpeg")
                if i in fake.huge:
                    return self.send(200, data + b"\0" * (2 << 20), ctype="image/jpeg")
                if i in fake.trickle:
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    try:
                        for b in data:
                            self.wfile.write(bytes([b]))
                            self.wfile.flush()
                            time.sleep(0.02)
                    except OSError:  # the client gave up
                        pass
                    self.close_connection = True
                    return
                return self.send(200, data, ctype="image/jpeg")

            def resolve(self, path):
                """The Hub: an LFS file answers 302 to the CDN, with the file's size and sha256 in X-Linked-*."""
                name = path.rsplit("/", 1)[1]
                with fake.lock:
                    fake.log.append((self.command, path, self.headers.get("Range")))
                    fake.auth.add(self.headers.get("Authorization"))
                if name not in fake.shards:  # the real one names the commit in its 404s too
                    return self.send(404, b"Entry not found", {"X-Error-Code": "EntryNotFound",
                                                               "X-Repo-Commit": COMMIT}, "text/plain")
                data = fake.shards[name]
                sha = hashlib.sha256(data).hexdigest()
                self.send(302, b"", {"Location": f"{fake.cdn_url}/cdn/{name}",
                                     "X-Repo-Commit": COMMIT, "ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"',
                                     "X-Linked-Size": str(len(data))}, "text/plain")

            def cdn(self, name):
                with fake.lock:
                    fake.log.append((self.command, "/cdn/" + name, self.headers.get("Range")))
                    if fake.cdn_unavailable > 0:
                        fake.cdn_unavailable -= 1
                        return self.send(503, b"Service Unavailable", ctype="text/plain")
                data = fake.shards.get(name)
                if data is None:
                    return self.send(404, b"NoSuchKey", ctype="application/xml")
                size, rng = len(data), self.headers.get("Range")
                head = {"Accept-Ranges": "bytes", "ETag": f'"{hashlib.md5(data).hexdigest()}"'}
                if rng:
                    a, b = rng.split("=", 1)[1].split("-")
                    start, end = (size - int(b), size - 1) if a == "" else (int(a), int(b) if b else size - 1)
                    start = max(start, 0)
                    if start >= size:
                        return self.send(416, b"", dict(head, **{"Content-Range": f"bytes */{size}"}), "text/plain")
                    end = min(end, size - 1)
                    if a == "" and name in fake.short_tails:  # a tail shorter than asked for, whatever is asked
                        start = max(start, size - fake.short_tails[name])
                    head = dict(head, **{"Content-Range": f"bytes {start}-{end}/{size}"})
                    if name in fake.no_content_range:
                        del head["Content-Range"]
                    return self.send(206, data[start:end + 1], head, "application/octet-stream")
                if self.command == "GET" and name in fake.cut_shard_once:
                    fake.cut_shard_once.discard(name)
                    return self.send(200, data[: size // 2], head, "application/octet-stream", length=size)
                return self.send(200, data, head, "application/octet-stream")

        # the Hub and viewer on one origin, the CDN on another (huggingface_hub follows redirects on the Hub's origin
        # only: metadata comes from the 302 itself, as from the real Hub)
        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that gave up (a broken pipe): the real server does not print into the client's stderr

        self.servers = [Server(("127.0.0.1", 0), Handler) for _ in range(2)]
        # another host name for the CDN, as the real one has (cdn-lfs.hf.co, cas-bridge.xethub.hf.co): huggingface_hub
        # >= 1.0 follows a redirect to the same host name (whatever the port) and reads the file's metadata there
        self.url = f"http://127.0.0.1:{self.servers[0].server_address[1]}"
        self.cdn_url = f"http://localhost:{self.servers[1].server_address[1]}"
        for srv in self.servers:
            srv.daemon_threads = True
            threading.Thread(target=srv.serve_forever, kwargs=dict(poll_interval=0.02), daemon=True).start()
        return self

    def shard_reads(self):
        """Names of shards whose data was downloaded (GETs of the CDN without a suffix range)."""
        return {p.rsplit("/", 1)[1] for m, p, r in self.log if m == "GET" and p.startswith("/cdn/")
                and not (r or "").startswith("bytes=-")}

    def stop(self):
        self.stopping.set()
        for srv in self.servers:
            srv.shutdown()
            srv.server_close()
