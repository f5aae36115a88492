"""What students really do, round two: read-only data, two terminals, odd file names and files. Each test names the
bug it catches."""
import csv
import os
import threading

import numpy as np
import pytest
import torch
from PIL import Image

import assignment_4a as a4a
import assignment_4b as a4b
from conftest import load_report_script, make_style_dataset, record_as_made, write_image

FAST = ["--batch-size", "4", "--lr", "0.01", "--workers", "1", "--epochs", "1"]


def read_only(monkeypatch, folder):
    """Writes under `folder` fail as on a read-only drive (the suite runs as root, where chmod would not stop them)."""
    real_tmp, real_makedirs = a4a.tempfile.TemporaryFile, os.makedirs

    def refuse(path):
        if os.path.abspath(str(path)).startswith(os.path.abspath(str(folder))):
            raise PermissionError(13, "Permission denied", str(path))

    def tmp(*a, dir=None, **k):
        refuse(dir or "")
        return real_tmp(*a, dir=dir, **k)

    def makedirs(path, *a, **k):
        refuse(path)
        return real_makedirs(path, *a, **k)
    monkeypatch.setattr(a4a.tempfile, "TemporaryFile", tmp)
    monkeypatch.setattr(a4a.os, "makedirs", makedirs)


def test_a_read_only_dataset_is_cached_in_the_users_cache_folder(alexnet_weights, tmp_path, monkeypatch, capsys):
    """Catches: a PermissionError traceback when the dataset lives on a course's shared, read-only drive."""
    data = make_style_dataset(tmp_path / "shared", n_train=3, n_val=1)
    read_only(monkeypatch, data)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home_cache"))
    a4a.main(["--data", str(data), "--runs", str(tmp_path / "runs"), *FAST])
    out = capsys.readouterr().out
    cache = tmp_path / "home_cache" / "assignment4"
    assert f"note: {data} is read-only: the decoded images are cached in {cache}" in out
    assert not (data / ".cache").exists() and any((tmp_path / "home_cache" / "assignment4").rglob("*.u8"))


def test_an_unwritable_runs_folder_is_one_sentence(alexnet_weights, tmp_path, monkeypatch):
    """Catches: a traceback for --runs on a drive the student cannot write to."""
    data = make_style_dataset(tmp_path / "d", n_train=3, n_val=1)
    read_only(monkeypatch, tmp_path / "locked")
    with pytest.raises(SystemExit) as e:
        a4a.main(["--data", str(data), "--runs", str(tmp_path / "locked" / "runs"), *FAST])
    assert str(e.value).startswith(f"error: cannot write {tmp_path / 'locked' / 'runs'} (Permission denied): give "
                                   "--runs a folder you can write to")


def test_two_runs_decoding_one_fresh_dataset_at_once_both_get_the_same_cache(tmp_path):
    """Catches: two runs sharing one temporary name and each removing the other's ("No such file or directory:
    .../train-....u8.part", "393216 bytes where 78643200 were written")."""
    data = make_style_dataset(tmp_path / "d", n_train=20, n_val=1, size=(200, 150))
    files, labels, _ = a4a.list_split(str(data), "train")
    cache, results, errors = str(data / ".cache"), [None, None], []
    start = threading.Barrier(2)

    def load(k):
        try:
            start.wait()
            results[k] = a4a.load_split_cached(files, labels, cache, "train", 1)
        except Exception as e:  # noqa: BLE001 - the test reports whatever went wrong in either run
            errors.append(e)
    threads = [threading.Thread(target=load, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and torch.equal(results[0].images, results[1].images) and len(results[0].images) == 60
    assert sorted(os.path.splitext(f)[1] for f in os.listdir(cache)) == [".json", ".u8"]


def load_counting_decodes(files, labels, cache):
    """load_split_cached once more, as a second run would. -> (the split, the files it decoded itself)"""
    decoded = []
    real = a4a.decode
    a4a.decode = lambda path: decoded.append(path) or real(path)
    try:
        return a4a.load_split_cached(files, labels, cache, "train", 1), decoded
    finally:
        a4a.decode = real


def test_a_run_that_finds_another_decoding_waits_and_reuses_its_cache(tmp_path, capsys):
    """Catches: the second of two runs deleting the first's work in progress, or decoding everything again."""
    data = make_style_dataset(tmp_path / "d", n_train=2, n_val=1)
    files, labels, _ = a4a.list_split(str(data), "train")
    cache = str(data / ".cache")
    first = a4a.load_split_cached(files, labels, cache, "train", 1)  # what the other run will have written
    (u8,) = [f for f in os.listdir(cache) if f.endswith(".u8")]
    os.rename(os.path.join(cache, u8), os.path.join(cache, u8 + ".4242-1.part"))  # ... still writing it
    meta = os.path.join(cache, u8[:-3] + ".json")
    os.rename(meta, meta + ".done")

    def other_run_finishes():
        os.replace(os.path.join(cache, u8 + ".4242-1.part"), os.path.join(cache, u8))
        os.replace(meta + ".done", meta)
    threading.Timer(1.0, other_run_finishes).start()
    again, decoded = load_counting_decodes(files, labels, cache)
    assert torch.equal(again.images, first.images) and not decoded
    assert "note: another run is decoding the train images" in capsys.readouterr().err


def test_a_style_whose_training_images_are_all_unusable_is_refused(alexnet_weights, tmp_path):
    """Catches: a style trained with 0 images (metrics.json showed 0 for it) although README says it is refused."""
    data = make_style_dataset(tmp_path / "d", n_train=3, n_val=1)
    for f in (data / "train" / "Red_Period").iterdir():
        f.write_bytes(b"not an image")
    with pytest.raises(SystemExit) as e:
        a4a.main(["--data", str(data), "--runs", str(tmp_path / "runs"), *FAST])
    assert str(e.value).startswith(f"error: {data / 'train' / 'Red_Period'} has no usable image")


def test_a_long_thin_image_is_skipped_not_resized_into_gigabytes(tmp_path):
    """Catches: a 1x20000 PNG (164 bytes) resized to 256 x 5,120,000 pixels: 6 GB in both scripts."""
    Image.new("RGB", (1, 20000)).save(tmp_path / "strip.png")
    with pytest.raises(ValueError, match=r"1x20000 pixels: a strip, not a picture \(sides more than 20:1\)"):
        a4b.open_rgb(str(tmp_path / "strip.png"))
    assert a4a.decode(str(tmp_path / "strip.png")) is None  # training skips it with a warning


def test_a_file_name_that_is_not_utf8_is_written_not_a_crash(vgg_weights, tmp_path, capsys):
    """Catches: UnicodeEncodeError in write_predictions after every map was computed (caf\\xe9.jpg from an old zip)."""
    folder = tmp_path / "i"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.jpg")
    write_image(folder / name, seed=1)
    a4b.main(["--images", str(folder), "--out", str(tmp_path / "o")])
    rows = list(csv.DictReader(open(tmp_path / "o" / "predictions.csv", encoding="utf-8")))
    assert [r["file"] for r in rows] == ["caf\\xe9.jpg"] and "caf\\xe9.jpg: predicted" in capsys.readouterr().out


def test_a_style_too_small_for_validation_still_gets_its_val_folder(tmp_path, capsys):
    """Catches: a dataset the downloader makes and assignment_4a.py refuses ("val has styles ... but train/ has")."""
    import download_wikiart as dw
    src = tmp_path / "src"
    for style, n in (("Baroque", 5), ("Cubism", 1)):
        (src / style).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((40, 50, 3), 40 * i, np.uint8)).save(src / style / f"{i}.jpg")
    dw.main(["--out", str(tmp_path / "d"), "--from-dir", str(src), "--styles", "Baroque", "Cubism"])
    assert (tmp_path / "d" / "val" / "Cubism").is_dir() and not list((tmp_path / "d" / "val" / "Cubism").iterdir())
    files, labels, classes = a4a.list_split(str(tmp_path / "d"), "val", ["Baroque", "Cubism"])
    assert classes == ["Baroque", "Cubism"] and "warning: " in capsys.readouterr().err


def test_a_weights_file_holding_code_is_refused_without_advising_to_trust_it(tmp_path):
    """Catches: the error quoting PyTorch's advice to re-run with weights_only=False, the one thing a student must not
    do with a file from the internet."""
    import vgg16

    class Evil:
        def __reduce__(self):
            return (print, ("this ran",))
    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(vgg16.WeightsUnavailable) as e:
        vgg16.load_vgg16(str(tmp_path / "evil.pth"))
    assert "weights_only" not in str(e.value) and "holding code, which is never loaded" in str(e.value)


def test_a_run_folder_given_as_checkpoint_names_the_file_to_give(tmp_path):
    """Catches: "--checkpoint runs/r2 does not exist" for a folder that exists."""
    import saliency_extras as ex
    (tmp_path / "r2").mkdir()
    with pytest.raises(ex.vgg16.RunError, match=r"is a run folder: give .*r2/best\.pt"):
        ex.load_style_model(str(tmp_path / "r2"))


def test_ctrl_c_in_the_saliency_script_writes_the_finished_images(vgg_weights, tmp_path, monkeypatch):
    """Catches: a 15-frame traceback and an empty --out after minutes of finished batches."""
    for i in range(3):
        write_image(tmp_path / f"p{i}.png", seed=i)
    real, calls = a4b.saliency_maps, {"n": 0}

    def interrupted_in_batch_two(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(a4b, "saliency_maps", interrupted_in_batch_two)
    with pytest.raises(SystemExit) as e:
        a4b.main(["--images", str(tmp_path), "--out", str(tmp_path / "o"), "--batch-size", "1"])
    assert str(e.value) == (f"interrupted: the 1 images of the finished batches are written to {tmp_path / 'o'}; run "
                            "the same command again for all of them")
    assert [r["file"] for r in csv.DictReader(open(tmp_path / "o" / "predictions.csv"))] == ["p0.png"]
    assert (tmp_path / "o" / "p0_saliency.png").exists() and (tmp_path / "o" / "grid.png").exists()


def test_a_kill_during_training_keeps_what_ctrl_c_keeps(alexnet_weights, tmp_path, monkeypatch, capsys):
    """Catches: SIGTERM (a closed terminal, a cluster's limit) ending training with exit 143, no word, no
    interrupted.pt."""
    import signal
    data = make_style_dataset(tmp_path / "d", n_train=3, n_val=1)
    real, old = a4a.train_one_epoch, signal.getsignal(signal.SIGTERM)

    def killed_in_epoch_two(head, split, optimizer, cfg, epoch, *rest):
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(head, split, optimizer, cfg, epoch, *rest)
    monkeypatch.setattr(a4a, "train_one_epoch", killed_in_epoch_two)
    try:
        with pytest.raises(SystemExit):
            a4a.main(["--data", str(data), "--runs", str(tmp_path / "runs"), "--name", "r", "--batch-size", "4",
                      "--workers", "1", "--epochs", "2"])
    finally:
        signal.signal(signal.SIGTERM, old)
    assert (tmp_path / "runs" / "r" / "interrupted.pt").exists()
    assert "interrupted in epoch 2" in capsys.readouterr().out


def package(tmp_path, root, *extra):
    import importlib.util
    from conftest import ROOT
    spec = importlib.util.spec_from_file_location("make_package", os.path.join(ROOT, "report", "make_package.py"))
    mp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mp)
    mp.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z"), "--allow-no-name", *extra])
    import zipfile
    return mp, [n.split("/", 1)[1] for n in zipfile.ZipFile(tmp_path / "z" / "cs587_a_assignment3.zip").namelist()]


def small_project(tmp_path):
    root = tmp_path / "root"
    (root / "report").mkdir(parents=True)
    (root / "report" / "report.md").write_text("# report\n")
    return record_as_made(root)


def test_links_in_a_loop_to_nothing_or_to_a_hidden_file_are_left_out(tmp_path, capsys):
    """Catches: a symlink loop ending in a traceback and a half-written .zip.tmp; report/notes.txt -> ../.env packing
    the secret the promise says is never packed."""
    root = small_project(tmp_path)
    (root / ".env").write_text("TOKEN=secret")
    os.symlink("loop", root / "report" / "loop")
    os.symlink("../.env", root / "report" / "notes.txt")
    os.symlink("nowhere", root / "report" / "gone.txt")
    _, names = package(tmp_path, root)
    assert names == ["report/record.json", "report/report.md"]
    out = capsys.readouterr().out
    assert "report/notes.txt  (link to the hidden file .env" in out and "report/loop  (not a regular file" in out
    assert not list((tmp_path / "z").glob("*.tmp"))


def test_a_file_name_with_a_newline_is_left_out(tmp_path, capsys):
    """Catches: a name with a newline packed as is (it breaks the listing and some unzip tools)."""
    root = small_project(tmp_path)
    (root / "report" / "a\nb.txt").write_text("x")
    _, names = package(tmp_path, root)
    assert names == ["report/record.json", "report/report.md"]
    assert "report/a\\nb.txt  (a control character" in capsys.readouterr().out


def test_a_large_archive_is_warned_about_and_a_huge_one_refused(tmp_path, monkeypatch, capsys):
    """Catches: a 2 GB file packed without a word, which the course platform then rejects."""
    root = small_project(tmp_path)
    (root / "report" / "big.bin").write_bytes(b"\0" * 3_000_000)
    mp, names = package(tmp_path, root)
    assert "report/big.bin" in names and "warning: the archive will hold 3 MB" not in capsys.readouterr().err
    import builtins  # noqa: F401 - the limits below are the module's own, made small for the test
    with pytest.raises(SystemExit) as e:
        mp.WARN_MB, mp.REFUSE_MB = 1, 2
        mp.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z2"), "--allow-no-name"])
    assert str(e.value).startswith("error: the archive would hold 3 MB, more than course platforms take (2 MB here)")
    mp.WARN_MB, mp.REFUSE_MB = 1, 100
    mp.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z3"), "--allow-no-name"])
    err = capsys.readouterr().err
    assert "warning: the archive will hold 3 MB; course platforms often refuse more than 1 MB" in err


def make_report_module():
    return load_report_script("make_report")


def build_report(tmp_path, *extra):
    mr = make_report_module()
    none = str(tmp_path / "none")
    mr.main(["--runs", none, "--saliency", none, "--paintings", none, "--extras", none, "--ground-truth", none,
             "--data", none, "--images", none, "--out", str(tmp_path / "report"), *extra])
    return mr


def test_a_name_no_font_can_show_is_refused_not_left_blank(tmp_path, monkeypatch):
    """Catches: --name "王小明" giving "Name: · Student ID: 1234" in the PDF with exit 0 (fpdf2 only warns)."""
    mr = make_report_module()
    render = load_report_script("render")
    dejavu_alone = render.pdf_fonts()[0], []  # no fallback font on this machine, as on most fresh Linux installs
    monkeypatch.setattr(render, "pdf_fonts", lambda: dejavu_alone)
    none = str(tmp_path / "none")
    with pytest.raises(SystemExit) as e:
        mr.main(["--runs", none, "--saliency", none, "--paintings", none, "--extras", none, "--ground-truth", none,
                 "--data", none, "--images", none, "--out", str(tmp_path / "report"), "--name", "王小明",
                 "--student-id", "1234"])
    assert str(e.value).startswith("error: no font on this machine can show '王' (U+738B) in the report's text")
    assert str(e.value).count("NotoSansCJK-Regular.ttc") == 1  # each font named once, not once per folder
    assert (tmp_path / "report" / "report.md").exists() and not (tmp_path / "report" / "report.pdf").exists()


def test_a_greek_name_is_in_the_pdf(tmp_path):
    """Catches: a font check that refuses what DejaVu draws (Greek, Cyrillic, accents)."""
    from pypdf import PdfReader
    build_report(tmp_path, "--name", "Ελένη Παπαδοπούλου", "--student-id", "42")
    assert "Ελένη Παπαδοπούλου" in PdfReader(tmp_path / "report" / "report.pdf").pages[0].extract_text()


def test_the_package_reads_the_name_in_the_pdf_not_only_the_markdown(tmp_path):
    """Catches: an archive accepted because report.md has the name while the PDF the grader reads shows a blank."""
    build_report(tmp_path, "--name", "Jane Doe", "--student-id", "42")
    root = tmp_path
    import json
    made = json.loads((root / "report" / "record.json").read_text())  # as if the PDF's font had drawn no "t"
    (root / "report" / "record.json").write_text(json.dumps(made | {"name": "Janet Doe"}))
    import importlib.util
    from conftest import ROOT
    spec = importlib.util.spec_from_file_location("make_package", os.path.join(ROOT, "report", "make_package.py"))
    mp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mp)
    with pytest.raises(SystemExit) as e:
        mp.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z")])
    assert "does not show your name 'Janet Doe' on its first page" in str(e.value)


def test_greek_style_folders_from_a_local_dataset_keep_their_names(tmp_path):
    """Catches: two Greek style folders both turned into 'unnamed' and refused as colliding; Réalisme as R_alisme."""
    import download_wikiart as dw
    src = tmp_path / "src"
    for style in ("Ρεαλισμός", "Ρομαντισμός", "Réalisme"):
        (src / style).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((40, 50, 3), 30 * i + len(style), np.uint8)).save(src / style / f"{i}.jpg")
    dw.main(["--out", str(tmp_path / "d"), "--from-dir", str(src), "--styles", "Ρεαλισμός", "Ρομαντισμός", "Réalisme"])
    assert sorted(os.listdir(tmp_path / "d" / "train")) == sorted(["Ρεαλισμός", "Ρομαντισμός", "Réalisme"])


def test_a_run_that_finds_another_between_its_two_renames_waits_for_its_metadata(tmp_path):
    """Catches: a run that finds the other's images renamed into place but no metadata yet (the moment between its
    two renames) and decodes everything again instead of waiting the instant it takes."""
    data = make_style_dataset(tmp_path / "d", n_train=2, n_val=1)
    files, labels, _ = a4a.list_split(str(data), "train")
    cache = str(data / ".cache")
    first = a4a.load_split_cached(files, labels, cache, "train", 1)
    (meta,) = [f for f in os.listdir(cache) if f.endswith(".json")]
    os.rename(os.path.join(cache, meta), os.path.join(cache, meta + ".later"))  # images in place, metadata not yet
    threading.Timer(0.5, os.replace, (os.path.join(cache, meta + ".later"), os.path.join(cache, meta))).start()
    again, decoded = load_counting_decodes(files, labels, cache)
    assert torch.equal(again.images, first.images) and not decoded


def test_a_png_with_a_broken_chunk_is_skipped_with_a_warning(tmp_path, capsys):
    """Catches: SyntaxError (PIL's 'broken PNG file') left out of the damaged-image errors: one such painting would
    stop the decoding of the whole dataset with a traceback instead of being skipped and counted."""
    from conftest import BROKEN_CHUNK, png_bytes
    path = tmp_path / "broken.png"
    path.write_bytes(png_bytes(8, 8, BROKEN_CHUNK))
    assert a4a.decode(str(path)) is None
    assert f"warning: skipping {path}: not a usable image (damaged image data (SyntaxError: broken PNG file" in \
        capsys.readouterr().err


WIDE = (["image", "prediction (p)", "correct?", "object", "peak in box", "mass in box", "box's area",
         "centre prior's mass"],
        [["washington_monument_cherry_blossoms.jpg", "aircraft carrier (0.00)", "not judged",
          "the Washington Monument", "yes", "100.0%", "100.0%", "100.0%"],
         ["astronaut_eileen_collins.jpg", "Great Dane (0.00)", "no", "the camera on its tripod", "no", "6.2%",
          "4.5%", "11.5%"]])
LONG_WORDS = ([f"heading_number_{k:03d}" for k in range(7)], [[f"a_long_cell_word_{k}" for k in range(7)]])


@pytest.mark.parametrize("table,smaller", [(WIDE, False), (LONG_WORDS, True)])
def test_a_pdf_table_wraps_its_cells_only_at_spaces(table, smaller):
    """Catches: fpdf2 breaking headers and names inside a word ("correc / t?", "astronaut_eileen_colli / ns.jpg")
    where columns were sized by characters and then scaled to the page. fpdf2 itself says how it would break each
    cell at the width the layout gives it (text extraction differs between pypdf versions)."""
    render = load_report_script("render")
    head, rows = table
    pdf = render.new_pdf([("table", head, rows)])
    pdf.add_page()
    size, widths = render.table_layout(pdf, head, rows, pdf.w - pdf.l_margin - pdf.r_margin)
    assert 7 <= size and (size < 8) == smaller  # a smaller font only where the words would not fit, never under 7 pt
    for k, col in enumerate(zip(head, *rows)):
        for i, text in enumerate(col):
            pdf.set_font("DejaVu", "B" if i == 0 else "", size)
            lines = pdf.multi_cell(widths[k], 5, text, dry_run=True, output="LINES")  # less its own margins
            assert " ".join(lines).split() == text.split(), (text, lines)


def test_a_figure_that_does_not_fit_floats_and_the_text_after_it_fills_the_page(tmp_path):
    """Catches: a tall figure (the saliency grid) pushed to a new page and leaving most of the page before it blank,
    or shrunk to the room left until its text cannot be read."""
    from pypdf import PdfReader
    render = load_report_script("render")
    Image.new("RGB", (900, 1150), "white").save(tmp_path / "grid.png")
    blocks = [("h2", "Part 2"), ("p", "An opening paragraph. " * 120), ("img", "grid.png", "The grid."),
              ("h3", "Are the images classified correctly?"), ("p", "The words after the figure."),
              ("h2", "References")]
    render.to_pdf(blocks, str(tmp_path / "r.pdf"), str(tmp_path))
    pages = [" ".join(p.extract_text().split()) for p in PdfReader(tmp_path / "r.pdf").pages]
    assert "The words after the figure." in pages[0]  # the page the figure did not fit on is filled with text
    assert len(pages) == 2 and pages[1].startswith("The grid.")  # the figure whole, at the top of the next page,
    assert pages[1].index("The grid.") < pages[1].index("References")  # before the next section begins


def test_figures_go_into_the_pdf_at_print_resolution(tmp_path):
    """Catches: figures embedded at their full resolution and as PNG (a 5.9 MB report.pdf for 11 pages): a photograph
    or map becomes a JPEG of at most 150 pixels per printed inch; a chart stays lossless; transparency prints white."""
    import numpy as np
    from PIL import Image
    render = load_report_script("render")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (1500, 3000, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    chart = np.full((1000, 2000, 4), 255, np.uint8)
    chart[::50, :, :3] = 0
    chart[:100, :100, 3] = 0  # a transparent corner
    chart[:100, :100, :3] = 0
    Image.fromarray(chart).save(tmp_path / "chart.png")
    photo = render.print_image(str(tmp_path / "photo.png"), 160)
    assert Image.open(photo).format == "JPEG" and Image.open(photo).size == (945, 472)  # 160 mm at 150 dpi
    lossless = render.print_image(str(tmp_path / "chart.png"), 160)
    assert isinstance(lossless, Image.Image) and lossless.size == (945, 472)
    assert lossless.getpixel((5, 5)) == (255, 255, 255)
    small = render.print_image(str(tmp_path / "chart.png"), 20)  # never enlarged beyond its pixels, nor past 150 dpi
    assert small.size == (118, 59)
