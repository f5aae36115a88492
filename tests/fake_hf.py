"""A local stand-in for the Hugging Face dataset viewer API and Hub, on 127.0.0.1, speaking their protocol:
/info, /rows (pages of <= 100 rows with signed, expiring image URLs), /assets/..., and
/datasets/<id>/resolve/main/data/<shard>.parquet (HEAD with X-Linked-Size / X-Linked-Etag, GET with Range).
Faults can be injected: 500 ResponseNotReady, 429, truncated bodies, expired URLs, non-image bodies."""
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


def jpeg(style, i, size=(64, 48)):
    rng = np.random.default_rng(1000 * style + i)
    colour = (np.array(COLOURS[style % len(COLOURS)]) + 37 * (style // len(COLOURS))) % 256  # distinct for 27 styles
    arr = np.clip(colour + rng.normal(0, 30, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=85)
    return buf.getvalue()


class FakeHF:
    def __init__(self, counts=None, names=NAMES, shards=None, delay=0.0, shuffle=True):
        """counts: rows per style index served by the viewer, e.g. {0: 30, 1: 30, 2: 8}; shuffle=False serves them in
        blocks, as the real export's artist-ordered rows come. shards: {shard index: [(style index, jpeg bytes),
        ...]} served as parquet files."""
        counts = counts or {0: 30, 1: 30, 2: 8, 3: 5}
        rows = [s for s, n in counts.items() for _ in range(n)]
        if shuffle:
            np.random.default_rng(0).shuffle(rows)
        self.names, self.delay = names, delay
        self.rows = [(s, jpeg(s, i)) for i, s in enumerate(rows)]
        self.parquet = {k: self._parquet(v) for k, v in (shards or {}).items()}
        self.requests = Counter()      # path (without query) -> count
        self.asset_requests = Counter()  # row_idx -> count
        self.not_ready = 0             # next N /info or /rows requests answer 500 ResponseNotReady
        self.rate_limited = 0          # next N asset requests answer 429
        self.truncate, self.expire, self.not_image = set(), set(), set()  # row indices (truncate/expire: first time)
        self.page_version = Counter()  # offset -> times the page was served (signed URLs carry it)
        self.lock = threading.Lock()

    @staticmethod
    def _parquet(items):
        import pyarrow as pa
        import pyarrow.parquet as pq
        table = pa.table({"image": [{"bytes": b, "path": None} for _, b in items],
                          "artist": [0] * len(items), "genre": [0] * len(items), "style": [s for s, _ in items]})
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue()

    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
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

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                with fake.lock:
                    fake.requests[url.path] += 1
                if url.path in ("/info", "/rows"):
                    with fake.lock:
                        if fake.not_ready > 0:
                            fake.not_ready -= 1
                            return self.send(500, b'{"error":"not ready"}', {"X-Error-Code": "ResponseNotReady"})
                    if url.path == "/info":
                        feats = {"image": {"_type": "Image"}, "artist": {"names": ["a"], "_type": "ClassLabel"},
                                 "genre": {"names": ["g"], "_type": "ClassLabel"},
                                 "style": {"names": fake.names, "_type": "ClassLabel"}}
                        body = {"dataset_info": {"features": feats, "splits": {"train": {"num_examples": 81444}}},
                                "partial": True}
                        return self.send(200, json.dumps(body).encode())
                    off, n = int(q["offset"]), min(int(q.get("length", 100)), 100)
                    with fake.lock:
                        fake.page_version[off] += 1
                        v = fake.page_version[off]
                    host = f"http://{self.headers['Host']}"
                    rows = [{"row_idx": i, "truncated_cells": [],
                             "row": {"image": {"src": f"{host}/assets/huggan/wikiart/--/main/--/default/train/{i}/"
                                                      f"image/image.jpg?Expires={int(time.time()) + 3600}&v={v}",
                                               "height": 48, "width": 64},
                                     "artist": 0, "genre": 0, "style": fake.rows[i][0]}}
                            for i in range(off, min(off + n, len(fake.rows)))]
                    body = {"features": [], "rows": rows, "num_rows_total": len(fake.rows),
                            "num_rows_per_page": 100, "partial": True}
                    return self.send(200, json.dumps(body).encode())
                if url.path.startswith("/assets/"):
                    i = int(url.path.split("/")[-3])
                    time.sleep(fake.delay)
                    with fake.lock:
                        if fake.rate_limited > 0:
                            fake.rate_limited -= 1
                            return self.send(429, b"slow down", {"Retry-After": "0"}, "text/plain")
                        fake.asset_requests[i] += 1  # requests that got past the rate limit
                        if i in fake.expire and q.get("v") == "1":
                            return self.send(403, b"<Error>Request has expired</Error>", ctype="application/xml")
                        data = fake.rows[i][1]
                        if i in fake.truncate:
                            fake.truncate.discard(i)
                            return self.send(200, data[: len(data) // 2], ctype="image/jpeg", length=len(data))
                    if i in fake.not_image:
                        return self.send(200, b"<html>placeholder</html>", ctype="text/html")
                    return self.send(200, data, ctype="image/jpeg")
                if "/resolve/main/data/" in url.path:
                    shard = int(url.path.rsplit("/", 1)[1].split("-")[1])
                    if shard not in fake.parquet:
                        return self.send(404, b"not found", ctype="text/plain")
                    data = fake.parquet[shard]
                    extra = {"X-Linked-Size": str(len(data)),
                             "X-Linked-Etag": '"' + hashlib.sha256(data).hexdigest() + '"'}
                    rng = self.headers.get("Range")
                    if rng:
                        start = int(rng.split("=")[1].split("-")[0])
                        return self.send(206, data[start:], extra, "application/octet-stream")
                    return self.send(200, data, extra, "application/octet-stream")
                self.send(404, b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
