"""Shared fixtures: no test touches the network. Pretrained weights are replaced by seeded random weights,
saved where torchvision's loader looks for its cache ($TORCH_HOME/hub/checkpoints/<file name of the URL>)."""
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# the cores shared out among pytest-xdist's workers (`-n auto`), so that two workers on two cores do not fight
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // WORKERS)))


def load_report_script(name):
    """report/<name>.py as the module report.<name> (report/ is a folder of scripts, imported as a namespace
    package), named as mutmut names it, so that `make mutation` knows which tests run its functions; the same module
    make_report.py imports (report.stats, report.render), so that a test's monkeypatch reaches it."""
    import importlib
    return importlib.import_module(f"report.{name}")


def record_as_made(root, name="A", student_id="1", maps_out_of_date=None, pdf_written=True):
    """Write <root>/report/record.json as make_report.py does once it has written report.md (and report.pdf, where
    there is one and pdf_written): the same sources, read from make_report's own flags and defaults."""
    import pathlib
    make_report, record = load_report_script("make_report"), load_report_script("record")
    root = pathlib.Path(root)
    args = make_report.parse_args([f"--{flag.replace('_', '-')}={root / path}"
                                   for flag, (path, _) in make_report.FOLDERS.items()])
    written = [str(root / "report" / f) for f in ("report.md", "report.pdf")
               if (root / "report" / f).exists() and (pdf_written or f == "report.md")]
    record.write(str(root / "report"), make_report.sources(args), written, name, student_id, maps_out_of_date,
                 pdf_written)
    return root


# fixtures that cost seconds to build: random VGG-16 / AlexNet weights, `project` (a training run and saliency
# outputs, some 20 s on 2 cores), and test_ground_truth.py's trained benchmark and command run
HEAVY_FIXTURES = ("project", "vgg_weights", "alexnet_weights", "learned", "command_run")


def pytest_collection_modifyitems(config, items):
    """Tests marked gpu are skipped, with the reason, where CUDA is not available. Under mutmut (`make mutation`),
    which runs each mutant's tests with -x in a fresh process, the tests that need no heavy fixture run first, so
    that a mutant they kill is not charged for building the project."""
    if os.environ.get("MUTANT_UNDER_TEST"):
        items.sort(key=lambda item: sum(f in item.fixturenames for f in HEAVY_FIXTURES))
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (make gpu-check runs these on one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def torch_home(tmp_path_factory):
    """An empty TORCH_HOME for the whole session, so that no real cache (or download) is used."""
    home = tmp_path_factory.mktemp("torch_home")
    old = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("TORCH_HOME", None)
    else:
        os.environ["TORCH_HOME"] = old


@pytest.fixture(autouse=True)
def no_real_hugging_face(tmp_path_factory, monkeypatch):
    """huggingface_hub sees an empty cache and no token: no test reads the user's cache or sends their token."""
    import huggingface_hub.constants as hc
    home = tmp_path_factory.mktemp("hf_home")  # per test: one test's cached shards are not another's
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(hc, "HF_TOKEN_PATH", str(home / "token"))
    if hasattr(hc, "HF_STORED_TOKENS_PATH"):  # huggingface_hub >= 0.26
        monkeypatch.setattr(hc, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)


def cache_path(weights):
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))


@pytest.fixture(scope="session")
def vgg_weights(torch_home):
    """Random torchvision VGG-16 weights at the path torchvision's loader reads; returns the state dict."""
    import torchvision
    import vgg16

    torch.manual_seed(0)
    state = torchvision.models.vgg16(weights=None).state_dict()
    path = cache_path(vgg16.WEIGHTS)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(state, path)
    return state


@pytest.fixture(scope="session")
def vgg_model(vgg_weights):
    import vgg16

    return vgg16.load_vgg16()


def write_image(path, size=(64, 48), mode="RGB", seed=0, **save_kwargs):
    """A small random-colour image file; returns its path."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    im = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        im = im.convert(mode)
    im.save(path, **save_kwargs)
    return str(path)


@pytest.fixture(scope="session")
def alexnet_weights(torch_home):
    """Random torchvision AlexNet weights where AlexNet_Weights.IMAGENET1K_V1 is cached; returns the state dict."""
    import torchvision
    from torchvision.models import AlexNet_Weights

    torch.manual_seed(0)
    state = torchvision.models.alexnet(weights=None).state_dict()
    for k in ("classifier.1.weight", "classifier.4.weight"):  # random init (std 0.01) leaves fc7 activations ~0.005;
        state[k] *= 10                                         # x10 each gives the O(1) scale of the trained network
    path = cache_path(AlexNet_Weights.IMAGENET1K_V1)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(state, path)
    return state


def make_style_dataset(root, n_train=12, n_val=6, styles=("Blue_Period", "Green_Period", "Red_Period"), size=(40, 32)):
    """A tiny learnable 'WikiArt': each style is a colour family with noise. Returns root."""
    base = {"Blue_Period": (40, 60, 200), "Green_Period": (40, 190, 60), "Red_Period": (200, 50, 40),
            "Gray_Period": (128, 128, 128)}
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        for style in styles:
            d = root / split / style
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                arr = np.clip(np.array(base[style]) + rng.normal(0, 40, size=(size[1], size[0], 3)), 0, 255)
                Image.fromarray(arr.astype(np.uint8)).save(d / f"{style.lower()}_{i:03d}.jpg", quality=90)
    return root


class Hung(BaseException):
    """What `deadline` raises: not an OSError (urllib3 would take a TimeoutError for a socket's and retry) and not an
    Exception (which the code under test may catch)."""


@pytest.fixture
def deadline():
    """Fails a test that would hang (a FIFO opened as an image blocks forever, a download that retries for ever)
    after 120 s instead of stalling CI."""
    import signal

    def expire(*_):
        raise Hung("the test hung for 120 s")
    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def serve():
    """serve(**kw): a FakeHF (tests/fake_hf.py) started on 127.0.0.1, stopped after the test."""
    from fake_hf import FakeHF
    fakes = []

    def start(**kw):
        fakes.append(FakeHF(**kw).start())
        return fakes[-1]
    yield start
    for f in fakes:
        f.stop()


@pytest.fixture
def ctrl_c_at_store(monkeypatch):
    """ctrl_c_at_store(n): download_wikiart's n-th Store.add raises KeyboardInterrupt (Ctrl-C mid-download);
    ctrl_c_at_store(None) puts the real Store.add back."""
    import download_wikiart as dw
    real, calls = dw.Store.add, {"n": 0}

    def arm(n):
        if n is None:
            monkeypatch.setattr(dw.Store, "add", real)
            return
        calls["n"] = 0

        def add_then_interrupt(self, *a):
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt
            return real(self, *a)
        monkeypatch.setattr(dw.Store, "add", add_then_interrupt)
    return arm


def assert_maps_agree(a, b, within=0.05, share=0.98, rho=0.98):
    """Saliency maps of a ReLU network computed two legitimate ways (another batch, layout, CPU or precision) are not
    close in a norm: a pre-activation within rounding of 0 flips its ReLU gate in one computation and not the other,
    changing the gradient in a patch of the input (measured: 6% of a 32x32 map's pixels off by more than 1% of its
    maximum, none by 5%). What holds on every CPU: all but a small share of the pixels agree within `within` of the
    map's maximum, and the pixels rank alike. A real bug (another class, a sum over channels) fails both by far."""
    from saliency_extras import rank_correlation
    a, b = a.double(), b.double()
    assert a.shape == b.shape, (a.shape, b.shape)
    close = (a - b).abs() <= within * b.flatten(1).amax(1).view(-1, *[1] * (b.dim() - 1))
    assert close.double().mean().item() >= share, f"only {close.double().mean().item():.3f} of the pixels agree"
    assert rank_correlation(a, b).min().item() >= rho, f"rank correlation {rank_correlation(a, b).tolist()}"


@pytest.fixture(scope="session")
def project(tmp_path_factory, alexnet_weights, vgg_weights):
    """A repository-like folder with a dataset, two real training runs and real saliency outputs."""
    import csv

    import assignment_4a as a4a
    import assignment_4b as a4b
    import saliency_extras as ex
    root = tmp_path_factory.mktemp("project")
    data = make_style_dataset(root / "datasets" / "wikiart")
    with open(data / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["split", "style", "file", "source_id", "bytes", "sha256", "width", "height"])
        for p in sorted(data.rglob("*.jpg")):
            w.writerow([p.parts[-3], p.parts[-2], f"{p.parts[-3]}/{p.parts[-2]}/{p.name}", p.stem, p.stat().st_size,
                        "0" * 64, 40, 32])
    a4a.main(["--data", str(data), "--runs", str(root / "runs"), "--remove", "1", "2", "--train", "new",
              "--epochs", "2", "--batch-size", "8", "--workers", "2"])
    imgs = root / "My-Images"
    imgs.mkdir()
    write_image(imgs / "a.jpg", seed=1)
    write_image(imgs / "b.png", seed=2)
    (imgs / "expected.csv").write_text("file,expected\na.jpg,tabby\nb.png,\n")
    (imgs / "boxes.csv").write_text("file,x0,y0,x1,y1,object\na.jpg,8,8,40,40,the blob\n")
    a4b.main(["--images", str(imgs), "--out", str(root / "report" / "saliency")])
    ex.main(["--images", str(imgs), "--out", str(root / "report" / "saliency_extras"), "--method", "all",
             "--sg-samples", "2", "--ig-steps", "2"])
    # --trust's files in their format (the real computation is tested in test_saliency_extras.py)
    sal = root / "report" / "saliency_extras"
    (sal / "sanity.csv").write_text("method,layers_randomised,last_layer_randomised,mean_rank_correlation\n"
                                    "gradcam,0,none,1.0000\ngradcam,1,classifier.6,0.4127\n")
    (sal / "deletion_insertion.csv").write_text("file,method,deletion_auc,insertion_auc\n"
                                                "a.jpg,gradcam,0.1000,0.5000\nb.png,gradcam,0.3000,0.7000\n")
    # the painting-style model explained, into its default folder beside report/saliency
    runs = sorted((root / "runs").iterdir())
    ex.main(["--images", str(imgs), "--checkpoint", str(runs[0] / "best.pt"),
             "--out", str(root / "report" / "saliency_paintings")])
    return root


def png_chunk(kind, data):
    import struct
    import zlib
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width, height, chunks_between=b"", pixels=True):
    """A PNG file's bytes: an RGB image of width x height whose pixel data is split into two IDAT chunks, with
    chunks_between inserted between them (a damaged chunk there makes PIL raise SyntaxError while decoding); with
    pixels=False only the header (a 'decompression bomb' that claims more pixels than it holds)."""
    import struct
    import zlib
    head = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    if not pixels:
        return head + png_chunk(b"IEND", b"")
    z = zlib.compress(b"".join(b"\0" + bytes([10, 20, 30]) * width for _ in range(height)))
    return head + png_chunk(b"IDAT", z[:10]) + chunks_between + png_chunk(b"IDAT", z[10:]) + png_chunk(b"IEND", b"")


BROKEN_CHUNK = b"\x00\x00\x00\x04\x01\x02\x03\x04abcd\x00\x00\x00\x00"  # a chunk type of control bytes
