import csv
import json
import os
import re
import shutil
import zipfile

import pytest

from conftest import ROOT, load_report_script, record_as_made


def load(name):
    return load_report_script(name)


make_report, make_package = load("make_report"), load("make_package")
part1, part2 = load("part1"), load("part2")


def pdf_pages(path):
    data = open(path, "rb").read()
    assert data.startswith(b"%PDF-")
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", data))


def build(project, out):
    make_report.main(["--runs", str(project / "runs"), "--saliency", str(project / "report" / "saliency"),
                      "--paintings", str(project / "report" / "saliency_paintings"),
                      "--extras", str(project / "report" / "saliency_extras"),
                      "--data", str(project / "datasets" / "wikiart"), "--images", str(project / "My-Images"),
                      "--out", str(out)])
    return (out / "report.md").read_text()


@pytest.fixture(scope="module")
def report_md(project, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep")
    return build(project, out), out


def table_row(md, first):
    row = next(line for line in md.splitlines() if line.startswith(f"| {first} |"))
    return [c.strip() for c in row.strip("|").split("|")]


def test_results_table_holds_each_runs_numbers_with_an_interval(project, report_md):
    """Catches: a number in the table that is not the run's, an interval that is not Wilson's on the val count."""
    md, _ = report_md
    for p in sorted((project / "runs").glob("*/metrics.json")):
        m = json.load(open(p))
        final = m["epochs"][-1]
        cells = table_row(md, m["run"])
        lo, hi = part1.wilson_interval(round(m["best_val_accuracy"] * 18), 18)
        assert cells[1:4] == [str(m["remove"]), m["train"], "2"]
        assert cells[4] == f"{100 * m['best_val_accuracy']:.1f}% (95% CI {100 * lo:.1f}-{100 * hi:.1f}%)"
        assert cells[6] == f"{100 * final['accuracy_train']:.1f}%" and cells[7] == f"{100 * final['accuracy_val']:.1f}%"


def test_dataset_table_holds_the_manifests_counts(report_md):
    """Catches: counts of another split, or a total that is not the sum."""
    md, _ = report_md
    assert "| Blue_Period | 12 | 6 |" in md and "| total | 36 | 18 |" in md


def test_part2_answers_both_questions_for_every_image(project, report_md):
    """Catches: predictions and box measures of one image written on another's line, or an image left unanswered."""
    md, _ = report_md
    for r in csv.DictReader(open(project / "report" / "saliency" / "predictions.csv")):
        line = next(line for line in md.splitlines() if line.startswith(f"- {r['file']}: classified as"))
        assert f"classified as {r['top1_name']} (p = {float(r['top1_prob']):.2f})" in line
        if r["object"]:
            assert f"the map puts {100 * float(r['box_mass_vanilla']):.1f}% of its mass in the box of the blob" in line
            assert f"uniform map ({100 * float(r['box_share_of_crop']):.1f}%, the box's share of the crop)" in line
        else:
            assert "no box for it" in line and "add a row `file,x0,y0,x1,y1,object`" in line
    assert "Over the 1 image(s) that can tell: the map's peak falls on the object in " in md
    assert "So the images cannot tell whether the classification is based on the relevant parts" in md


def test_extras_and_trust_and_paintings_are_shown_from_their_own_folders(project, report_md):
    """Catches: saliency_extras.py's comparison missing from the report, or read from the sheet's folder."""
    md, _ = report_md
    assert "| image | vanilla | smoothgrad | integrated-gradients | gradcam |" in md
    assert "| gradcam | 0.200 | 0.600 | 0.413 |" in md and "How far to trust the maps" in md
    for r in csv.DictReader(open(project / "report" / "saliency_paintings" / "predictions.csv")):
        assert f"| {r['file']} | {r['top1_name']} | {float(r['top1_prob']):.3f} | {r['class_used_name']} |" in md


def test_the_pdf_has_the_figures(report_md):
    """Catches: a figure written nowhere or a PDF that stops after the first page."""
    _, out = report_md
    for fig in ("training_curves.png", "confusion_best.png"):
        assert (out / "figures" / fig).stat().st_size > 5000
    assert pdf_pages(out / "report.pdf") >= 3


def test_with_nothing_on_disk_it_says_what_to_run(tmp_path, capsys):
    out = tmp_path / "rep"
    make_report.main(["--runs", str(tmp_path / "none"), "--saliency", str(tmp_path / "none"),
                      "--paintings", str(tmp_path / "none"),
                      "--data", str(tmp_path / "none"), "--images", str(tmp_path / "none"), "--out", str(out)])
    md = (out / "report.md").read_text()
    assert "No training runs found. Produce them with `python download_wikiart.py` then " \
           "`python assignment_4a.py --compare`" in md
    assert "`python assignment_4b.py`" in md and "downloads it" in md
    assert not re.search(r"\d+\.\d%", md)  # no accuracy of any kind when nothing ran
    printed = capsys.readouterr().out
    assert "missing, so the report says so: no training runs" in printed
    assert pdf_pages(out / "report.pdf") >= 1


def test_package_contains_what_it_should_and_nothing_else(project, tmp_path, capsys):
    for f in ("assignment_4a.py", "assignment_4b.py", "vgg16.py", "download_wikiart.py", "README.md"):
        (project / f).write_text("# code\n")
    from fpdf import FPDF
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica")
    pdf.cell(text="Name: Jane Doe - Student ID: 42")
    pdf.output(str(project / "report" / "report.pdf"))
    (project / "report" / "report.md").write_text("# Assignment 4\n\n**Name:** Jane Doe  ·  **Student ID:** 42\n")
    (project / "report" / "comments.md").write_text("## Part 1\nMy own words.\n")
    (project / "datasets" / "wikiart" / ".cache").mkdir(exist_ok=True)
    (project / "runs" / "stray.zip").write_bytes(b"x")
    record_as_made(project, "Jane Doe", "42")
    make_package.main(["--login", "jdoe", "--root", str(project), "--out", str(tmp_path)])
    z = zipfile.ZipFile(tmp_path / "cs587_jdoe_assignment3.zip")  # the sheet's name, to the letter
    names = [n.split("/", 1)[1] for n in z.namelist()]
    assert all(n.startswith("cs587_jdoe_assignment3/") for n in z.namelist())
    assert {"assignment_4a.py", "assignment_4b.py", "vgg16.py", "download_wikiart.py", "README.md",
            "report/report.pdf", "report/saliency/grid.png", "report/comments.md", "My-Images/a.jpg"} <= set(names)
    events = [n for n in names if "events.out.tfevents" in n]
    assert len({n.split("/")[1] for n in events}) == 2  # both runs' TensorBoard files
    assert sum(n.endswith("metrics.json") for n in names) == 2
    assert sum(n.endswith("val_predictions.csv") for n in names) == 2  # what the paired tests rest on
    assert not [n for n in names if n.startswith("datasets/") or n.endswith((".pt", ".zip")) or "/.cache" in n]
    out = capsys.readouterr().out
    assert "report/report.pdf" in out and re.search(r"wrote .*cs587_jdoe_assignment3\.zip: \d+ files, [\d.]+ MB", out)
    make_package.main(["--login", "jdoe", "--root", str(project), "--out", str(tmp_path / "ck"), "--with-checkpoints",
                       "--allow-large"])
    ck = zipfile.ZipFile(tmp_path / "ck" / "cs587_jdoe_assignment3.zip").namelist()
    assert sum(n.endswith(("best.pt", "last.pt")) for n in ck) == 4


def test_package_rejects_a_bad_login(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        make_package.main(["--login", "../x", "--out", str(tmp_path)])
    assert e.value.code == 2 and "--login '../x'" in capsys.readouterr().err


def test_name_and_id_on_the_first_page_remembered_and_required_by_the_package(project, tmp_path, capsys):
    """Catches: a report without the student's name and ID (the sheet's "do not forget"), flags forgotten between
    runs, and an archive built from an anonymous report."""
    out = tmp_path / "rep"
    md = build_with(project, out, "--name", "Ada Lovelace", "--student-id", "csd1815")
    assert md.splitlines()[2] == "**Name:** Ada Lovelace  ·  **Student ID:** csd1815"
    assert "**Student ID:** csd1815" in build_with(project, out)  # remembered in <out>/student.json
    anonymous = tmp_path / "anon"
    assert "Name and student ID: not given" in build_with(project, anonymous)
    assert "warning: the report has no name and no student ID" in capsys.readouterr().err

    root = tmp_path / "root"
    (root / "report").mkdir(parents=True)
    (root / "report" / "report.md").write_text((anonymous / "report.md").read_text())
    record_as_made(root, "", "")
    with pytest.raises(SystemExit) as e:
        make_package.main(["--login", "ada", "--root", str(root), "--out", str(tmp_path / "z")])
    assert str(e.value).startswith("error: the report has no name and no student ID") and "--allow-no-name" in str(
        e.value)
    assert not (tmp_path / "z").exists()
    make_package.main(["--login", "ada", "--root", str(root), "--out", str(tmp_path / "z"), "--allow-no-name"])
    assert (tmp_path / "z" / "cs587_ada_assignment3.zip").is_file()
    (root / "report" / "report.md").write_text((out / "report.md").read_text())
    record_as_made(root, "Ada Lovelace", "csd1815")
    make_package.main(["--login", "ada", "--root", str(root), "--out", str(tmp_path / "z"), "--assignment", "4",
                       "--format", "tar.gz"])
    import tarfile
    names = tarfile.open(tmp_path / "z" / "cs587_ada_assignment4.tar.gz").getnames()
    assert "cs587_ada_assignment4/report/report.md" in names


def build_with(project, out, *extra):
    make_report.main(["--runs", str(project / "runs"), "--saliency", str(project / "report" / "saliency"),
                      "--paintings", str(project / "report" / "saliency_paintings"),
                      "--extras", str(project / "report" / "saliency_extras"),
                      "--data", str(project / "datasets" / "wikiart"), "--images", str(project / "My-Images"),
                      "--out", str(out), "--no-pdf", *extra])
    return (out / "report.md").read_text()


def test_every_sentence_with_a_number_comes_from_the_files(project, tmp_path):
    """Catches: fixed text that contradicts the data (style and painting counts, AlexNet's size, the IG baseline,
    "balanced" styles that are not)."""
    md = build_with(project, tmp_path / "rep")
    assert "our subset has 3 styles and 12 training paintings each" in md
    assert "a few hundred" not in md and "57 million" not in md
    assert "the pretrained AlexNet's 61.1 million parameters" in md
    assert "36 training paintings in 3 styles" in md
    assert "Chance level with 3 equally sized styles is 33.3%" in md
    assert "path of 2 steps from a black image" in md and "2 copies with noise of std 0.15" in md
    assert "final train acc (running)" in md
    settings = project / "report" / "saliency_extras" / "settings.json"
    s = json.load(open(settings))
    try:
        json.dump(dict(s, ig_baseline="mean", ig_steps=64), open(settings, "w"))
        md = build_with(project, tmp_path / "rep2")
        assert "path of 64 steps from a mean image" in md and "black image" not in md
    finally:
        json.dump(s, open(settings, "w"))
    # an unbalanced dataset is not called balanced, and the majority baseline is given
    data = tmp_path / "data"
    (data).mkdir()
    runs = tmp_path / "runs"
    (runs / "r").mkdir(parents=True)
    m = json.load(open(sorted((project / "runs").glob("*/metrics.json"))[0]))
    m["counts"]["train"] = {"Blue_Period": 30, "Green_Period": 6, "Red_Period": 4}
    json.dump(m, open(runs / "r" / "metrics.json", "w"))
    make_report.main(["--runs", str(runs), "--saliency", str(tmp_path / "none"), "--paintings", str(tmp_path / "none"),
                      "--data", str(data), "--images", str(tmp_path / "none"), "--out", str(tmp_path / "rep3"),
                      "--no-pdf"])
    md = (tmp_path / "rep3" / "report.md").read_text()
    assert "equally sized" not in md and "always predicting the largest style would score 75.0%" in md
    assert "without manifest.csv this report cannot measure them" in md


def test_the_best_run_is_the_one_with_the_best_validation_accuracy(project, tmp_path):
    """Catches: choosing the best run by its final epoch instead of its best one."""
    runs = tmp_path / "runs"
    base = json.load(open(sorted((project / "runs").glob("*/metrics.json"))[0]))
    for name, accs, remove in (("peaked", [0.9, 0.5], 1), ("steady", [0.6, 0.7], 2)):
        (runs / name).mkdir(parents=True)
        epochs = [dict(base["epochs"][0], epoch=i + 1, accuracy_val=a) for i, a in enumerate(accs)]
        best = max(epochs, key=lambda h: h["accuracy_val"])
        json.dump(dict(base, run=name, remove=remove, epochs=epochs, best=best, best_val_accuracy=best["accuracy_val"]),
                  open(runs / name / "metrics.json", "w"))
    make_report.main(["--runs", str(runs), "--saliency", str(tmp_path / "none"), "--paintings", str(tmp_path / "none"),
                      "--data", str(project / "datasets" / "wikiart"), "--images", str(tmp_path / "none"),
                      "--out", str(tmp_path / "rep"), "--no-pdf"])
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "best run (peaked, epoch 1)" in md


def test_broken_metrics_files_are_skipped_with_a_warning(project, tmp_path, capsys):
    """Catches: a metrics.json that is a list, lacks keys or contradicts itself crashing the report."""
    runs = tmp_path / "runs"
    good = json.load(open(sorted((project / "runs").glob("*/metrics.json"))[0]))
    cases = {"list": [1, 2], "nokeys": {"run": "x"}, "liar": dict(good, best_val_accuracy=0.999),
             "badconf": dict(good, best_confusion=[[1]]), "good": good}
    for name, m in cases.items():
        (runs / name).mkdir(parents=True)
        json.dump(m, open(runs / name / "metrics.json", "w"))
    make_report.main(["--runs", str(runs), "--saliency", str(tmp_path / "none"), "--paintings", str(tmp_path / "none"),
                      "--data", str(tmp_path / "none"), "--images", str(tmp_path / "none"),
                      "--out", str(tmp_path / "r"),
                      "--no-pdf"])
    err = capsys.readouterr().err
    assert "runs/list/metrics.json: a JSON list, not the object" in err
    assert "runs/nokeys/metrics.json: no remove, train, classes, epochs, best_val_accuracy" in err
    assert "runs/liar/metrics.json: best_val_accuracy 0.999 is not the best of its epochs" in err
    assert "runs/badconf/metrics.json: best_confusion is not 3x3" in err
    assert "1 run(s) read from `runs/`" in (tmp_path / "r" / "report.md").read_text()


def test_package_leaves_out_secrets_outside_links_and_stray_weights(project, tmp_path, capsys):
    """Catches: .env and tokens packed, a link to ~/.ssh packed, stray .pt/.pth/.parquet files packed."""
    root = tmp_path / "root"
    shutil.copytree(project / "runs", root / "runs")
    (root / "report").mkdir()
    (root / "report" / "report.md").write_text("**Name:** A  ·  **Student ID:** 1\n")
    (root / "My-Images").mkdir()
    (root / "My-Images" / "cat.jpg").write_bytes(b"jpeg")
    (root / "My-Images" / ".env").write_text("TOKEN=secret")
    (root / "tests" / ".secrets").mkdir(parents=True)
    (root / "tests" / ".secrets" / "token").write_text("x")
    (tmp_path / "outside.txt").write_text("private")
    os.symlink(tmp_path / "outside.txt", root / "My-Images" / "notes.txt")
    os.symlink(root / "My-Images" / "cat.jpg", root / "My-Images" / "same_cat.jpg")  # inside: fine
    (root / "report" / "vgg16-397923af.pth").write_bytes(b"w")
    (root / "bench").mkdir()
    (root / "bench" / "train-00000-of-00072.parquet").write_bytes(b"p")
    record_as_made(root)
    make_package.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z")])
    names = [n.split("/", 1)[1] for n in zipfile.ZipFile(tmp_path / "z" / "cs587_a_assignment3.zip").namelist()]
    assert "My-Images/cat.jpg" in names and "My-Images/same_cat.jpg" in names
    assert not [n for n in names
                if ".env" in n or ".secrets" in n or "notes.txt" in n or n.endswith((".pth", ".parquet"))]
    out = capsys.readouterr().out
    for line in ("My-Images/.env  (hidden file", "My-Images/notes.txt  (link to a file outside the project)",
                 "report/vgg16-397923af.pth  (weights or data file", "bench/train-00000-of-00072.parquet  (weights"):
        assert line in out, line


@pytest.mark.parametrize("script", ["download_wikiart.py", "assignment_4a.py", "assignment_4b.py", "saliency_extras.py",
                                    "saliency_ground_truth.py", "report/make_report.py", "report/make_package.py"]
                         + sorted(f"bench/{f}" for f in os.listdir(os.path.join(ROOT, "bench")) if f.endswith(".py")))
def test_every_script_explains_its_flags(script, monkeypatch):
    """Catches: a help text argparse cannot format (a bare '%' crashed assignment_4b.py --help), and a flag with no
    help at all. Run as `python SCRIPT --help` runs it, in this process (a new one would spend seconds importing
    torch)."""
    import contextlib
    import io
    import runpy
    import sys
    out = io.StringIO()
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    monkeypatch.setenv("COLUMNS", "80")
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as e:
        runpy.run_path(os.path.join(ROOT, script), run_name="__main__")
    assert e.value.code in (0, None)
    text = out.getvalue()
    flags = re.findall(r"^  (-[-\w]+(?:, --[-\w]+)?)(?:\s.*)?$", text, re.M)
    assert flags and "--help" in " ".join(flags)
    lines = text.splitlines()
    for i, line in enumerate(lines):  # every option line has words after it, on the same line or the next
        m = re.match(r"^  (--[-\w]+)( [A-Z_/.{},\[\]a-z0-9]+)?$", line)
        if m and m.group(1) != "--help":
            assert i + 1 < len(lines) and lines[i + 1].startswith(" " * 10), f"{script} {m.group(1)} has no help"


def test_artists_per_style_are_shown_and_explain_the_accuracy(project, tmp_path):
    """Catches: artists in the manifest ignored by the report; validation that shares artists with training not
    named as a reason for the accuracy; a split by artist described as sharing them."""
    data = tmp_path / "data"
    data.mkdir()
    rows = list(csv.DictReader(open(project / "datasets" / "wikiart" / "manifest.csv")))
    styles = sorted({r["style"] for r in rows})

    def write(artist_of):
        with open(data / "manifest.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, list(rows[0]) + ["artist", "genre"])
            w.writeheader()
            for i, r in enumerate(rows):
                w.writerow(dict(r, artist=artist_of(i, r), genre="portrait"))

    def report(name):
        make_report.main(["--runs", str(project / "runs"), "--saliency", str(tmp_path / "none"), "--paintings",
                          str(tmp_path / "none"), "--data", str(data), "--images", str(tmp_path / "none"), "--out",
                          str(tmp_path / name), "--no-pdf"])
        return (tmp_path / name / "report.md").read_text()

    # style 0: one artist; the others: two artists, each in both splits
    write(lambda i, r: "rembrandt" if r["style"] == styles[0] else f"{r['style'].lower()}-{i % 2}")
    md = report("a")
    assert f"| {styles[0]} | 12 | 6 | 1 (top: rembrandt, 100.0%) |" in md
    assert "Artists: the 3 styles have 1 to 2 artists each" in md and f"{styles[0]} is one artist's work" in md
    assert "In 3 of them validation paintings share their artists with training" in md
    assert "stands in for" not in md
    write(lambda i, r: f"{r['style'].lower()}-{r['split']}")  # split by artist: none shared
    md = report("b")
    assert "No artist appears in both training and validation, so the accuracy does not come from recognising an " \
           "artist seen in training." in md
    assert "the 3 styles have 2 artists each" in md  # not "2 to 2"
    # apart within each style, but one artist trains under one style and is validated under another
    write(lambda i, r: "wanderer" if (r["style"], r["split"]) in ((styles[0], "train"), (styles[1], "val"))
          else f"{r['style'].lower()}-{r['split']}")
    md = report("b2")
    assert "No artist appears in both" not in md
    assert ("Within each style no artist is in both training and validation, but 1 artist(s) have paintings in both "
            "splits under different styles") in md
    renamed = [dict(r, style="Northern_Renaissance") if r["style"] == styles[0] else r for r in rows]
    rows[:] = renamed
    write(lambda i, r: "duerer")
    md = report("c")
    assert "Northern_Renaissance stands in for the course's Neoclassicism: huggan/wikiart has neither" in md


def test_unknown_artist_in_a_manifest_is_no_artist_shared_by_the_splits(tmp_path):
    """A manifest written before downloads left huggan/wikiart's "Unknown Artist" blank. Catches: the paintings of
    many unnamed painters counted as one artist in both splits, so that a split by artist is said to share one."""
    with open(tmp_path / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["split", "style", "file", "source_id", "bytes", "sha256", "width", "height", "artist", "genre"])
        for i, (split, style, artist) in enumerate([("train", "A", "Unknown Artist"), ("val", "A", "Unknown Artist"),
                                                    ("train", "A", "x"), ("val", "B", "y"), ("train", "B", "z")]):
            w.writerow([split, style, f"{split}/{style}/{i}.jpg", i, 1, "0" * 64, 40, 32, artist, ""])
    counts, _ = part1.dataset_counts(str(tmp_path))
    assert counts["A"]["artists"] == {"train": {"x": 1}, "val": {}}
    assert "No artist appears in both training and validation" in part1.artist_sentence(counts)


def test_a_split_by_artist_is_not_advised_where_only_one_artist_styles_share():
    """--split-by-artist was used; Rococo, one artist's work, is split at random (no split can keep it apart).
    Catches: the report advising the flag the student already used, as if it could mend that."""
    from collections import Counter
    counts = {"Rococo": {"artists": {"train": Counter(boucher=8), "val": Counter(boucher=2)}},
              "Realism": {"artists": {"train": Counter(repin=8), "val": Counter(shishkin=2)}}}
    text = part1.artist_sentence(counts)
    assert "Rococo is one artist's work. Validation paintings share their artist with training only in Rococo, " \
           "which no split can keep apart (one artist)" in text
    assert "--split-by-artist" not in text
    counts["Realism"]["artists"]["val"] = Counter(repin=2)  # two artists, one on both sides: a split could mend it
    counts["Realism"]["artists"]["train"] = Counter(repin=6, shishkin=2)
    assert "(`download_wikiart.py --split-by-artist` keeps" in part1.artist_sentence(counts)


def test_styles_of_one_artist_each_are_counted_in_the_singular():
    """Catches: "the 2 styles have 1 artists each"."""
    from collections import Counter
    counts = {s: {"artists": {"train": Counter({f"{s}-painter": 4}), "val": Counter()}} for s in ("A", "B")}
    assert part1.artist_sentence(counts).startswith("Artists: the 2 styles have 1 artist each (")


def test_names_from_the_data_are_shown_as_text_never_as_markdown_or_html(project, tmp_path):
    """Catches: style and artist names of the manifest (a server's text) put into report.md raw: a <script> tag and a
    remote image that survive, a | or newline that breaks the dataset table, and a 3,000-character name that makes the
    PDF fail ("row ... too high")."""
    data = tmp_path / "data"
    data.mkdir()
    rows = list(csv.DictReader(open(project / "datasets" / "wikiart" / "manifest.csv")))
    styles = sorted({r["style"] for r in rows})
    hostile = {styles[0]: "<script>alert(1)</script>", styles[1]: "a|b\n| c", styles[2]: "S" * 3000}
    with open(data / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]) + ["artist"])
        w.writeheader()
        for r in rows:
            w.writerow(dict(r, style=hostile[r["style"]], artist="![t](http://evil.example/t.png)"))
    out = tmp_path / "rep"
    make_report.main(["--runs", str(project / "runs"), "--saliency", str(tmp_path / "none"), "--paintings",
                      str(tmp_path / "none"), "--data", str(data), "--images", str(tmp_path / "none"), "--out",
                      str(out)])
    md = (out / "report.md").read_text()
    assert not re.search(r"(?<!\\)<script", md) and not re.search(r"(?<!\\)\]\(http://evil", md)  # unescaped
    assert "\\<script>alert(1)\\</script>" in md and "!\\[t\\](http://evil.example/t.png)" in md
    table = md[md.index("| style | train | val | artists |"):].split("\n\n")[0].splitlines()
    assert [len(re.findall(r"(?<!\\)\|", line)) for line in table] == [5] * len(table)  # no cell split or added
    assert "| a\\|b \\| c |" in md and "| " + "S" * 99 + "\u2026 |" in md
    assert pdf_pages(out / "report.pdf") >= 1


def test_every_work_the_report_cites_is_in_its_references(report_md):
    """Catches: a work cited in the text (Zhang et al. 2016's pointing game was) that References does not list, or
    one listed that the report never cites."""
    md, _ = report_md
    body, refs = md.split("## References")
    cited = list(dict.fromkeys(make_report.CITATION.findall(body)))
    assert ("Simonyan", "2014") in cited and ("Zhang", "2016") in cited
    listed = [ln for ln in refs.splitlines() if ln.startswith("- ")]
    assert len(listed) == len(cited)
    for (author, year), line in zip(cited, listed):
        assert author in line and year in line, (author, year, line)


def test_every_citation_the_scripts_can_print_has_an_entry():
    """Catches: a citation in a branch the report fixture does not reach (the extras, the sanity checks, the
    benchmark with known evidence) missing from LITERATURE: the report would stop there."""
    import os
    from conftest import ROOT
    for f in ("report/part1.py", "report/part2.py", "saliency_extras.py", "saliency_ground_truth.py"):
        text = open(os.path.join(ROOT, f), encoding="utf-8").read()
        missing = {c for c in make_report.CITATION.findall(text) if c not in make_report.LITERATURE}
        assert not missing, (f, missing)


def test_a_citation_without_an_entry_stops_the_report():
    with pytest.raises(AssertionError, match="cited without an entry in LITERATURE: Nobody et al. 2031"):
        make_report.references_of([("p", "As Nobody et al. 2031 showed.")])


def test_the_train_accuracy_is_described_as_each_run_measured_it(project, report_md):
    """Catches: "measured with dropout active" said of every run, though a run that trains only the new layer on
    cached features trains as evaluated (the console says so)."""
    md, _ = report_md
    recorded = {json.load(open(p))["epochs"][-1]["train_conditions"] for p in (project / "runs").glob("*/metrics.json")}
    assert "as evaluated" in recorded
    assert "as evaluated (no dropout, no augmentation)" in md


def test_the_train_accuracy_sentence_names_the_runs_of_each_condition():
    runs = [{"run": "a", "epochs": [{"train_conditions": "as evaluated"}]},
            {"run": "b", "epochs": [{"train_conditions": "under dropout"}]}, {"run": "c", "epochs": [{}]}]
    assert part1.train_accuracy_sentence(runs) == (
        "The final train accuracy is the running figure of the last epoch, measured while the weights changed, as "
        "evaluated (no dropout, no augmentation) for a; under dropout for b; conditions not recorded (a run of an "
        "older assignment_4a.py) for c.")


def test_part2_of_random_weights_says_the_classifier_is_guessing(report_md):
    """Catches: the guessing check written but not called where the report's Part 2 is built."""
    md, _ = report_md
    part2 = md.split("## Part 2")[1]
    assert "**The classifier is guessing here:**" in part2


def test_the_report_pdf_holds_its_photographs_as_jpeg_and_stays_small(report_md):
    """Catches: the saliency grid embedded as a full-resolution PNG (the report was 3.4 MB for this fixture's three
    photographs, 5.9 MB for twelve)."""
    from pypdf import PdfReader
    _, out = report_md
    pdf = out / "report.pdf"
    assert pdf.stat().st_size < 2e6
    filters = [str(img.image.format) for page in PdfReader(pdf).pages for img in page.images]
    assert "JPEG" in filters


def test_the_pdf_prints_no_markdown_markup(report_md):
    """Catches: Markdown's *italic* printed as literal asterisks in the PDF (fpdf2's markdown knows only **bold** and
    __italic__), or a `code` mark or ** left in a table."""
    import re

    from pypdf import PdfReader
    _, out = report_md
    text = "\n".join(page.extract_text() for page in PdfReader(out / "report.pdf").pages)
    assert "These answers come with this solution" in text
    assert not re.findall(r"\*[^*\n]{1,200}\*", text) and "`" not in text and "**" not in text


def test_the_grids_caption_says_what_the_box_and_the_cross_are(report_md):
    """Catches: the green box and the white + drawn on the maps with no legend or caption saying what they are."""
    md, _ = report_md
    assert "white +: the map's peak; green box: the object's box from My-Images/boxes.csv" in md


def test_the_marks_the_caption_names_are_the_ones_assignment_4b_draws():
    """Catches: the caption and the figure drifting apart (a red box, a black peak)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import to_rgba

    import assignment_4b as a4b
    fig, ax = plt.subplots()
    smap = np.zeros((10, 10))
    smap[3, 4] = 1
    a4b.mark_peak_and_box(ax, smap, (1, 1, 6, 6))
    (line,) = ax.lines
    (box,) = ax.patches
    assert line.get_marker() == "+" and to_rgba(line.get_color()) == to_rgba("white")
    assert box.get_edgecolor() == to_rgba("lime") and line.get_xdata()[0] == 4 and line.get_ydata()[0] == 3
    assert "white +: the map's peak; green box" in part2.GRID_MARKS
    plt.close(fig)


def test_help_answers_without_importing_pytorch():
    """Catches: make_report.py importing the scripts (and with them PyTorch, seconds on a laptop) before it parses
    its flags: `--help` must answer at once."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-X", "importtime", os.path.join(ROOT, "report", "make_report.py"), "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--compare-runs" in r.stdout
    imported = {line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines() if "|" in line}
    assert "json" in imported and not {m for m in imported if m.split(".")[0] in ("torch", "numpy", "matplotlib")}


def test_the_default_folders_are_where_the_scripts_write():
    """Catches: a default folder of make_report.py (typed here so that --help needs no PyTorch) drifting from the
    script that writes it."""
    import assignment_4a
    import assignment_4b
    import saliency_extras
    import saliency_ground_truth
    d = make_report.DEFAULTS
    assert (d["runs"], d["data"]) == (assignment_4a.RUNS_DIR, assignment_4a.DATA_DIR)
    assert (d["images"], d["saliency"]) == (assignment_4b.IMAGES_DIR, assignment_4b.OUT_DIR)
    assert (d["extras"], d["paintings"]) == (saliency_extras.OUT_DIR, saliency_extras.PAINTINGS_OUT_DIR)
    assert d["ground_truth"] == saliency_ground_truth.OUT_DIR and d["out"] == os.path.join(ROOT, "report")


def lowest_content(page):
    """The lowest point (PDF points from the page's foot) of any text or image a page draws."""
    ys = []

    def image(op, args, cm, tm):
        if op == b"Do":  # an image: the unit square under the current matrix
            ys.extend([cm[5], cm[5] + cm[3]])

    def text(t, cm, tm, font, size):
        if t.strip():
            ys.append(tm[5] * cm[3] + cm[5])
    page.extract_text(visitor_operand_before=image, visitor_text=text)
    return min(ys) if ys else float(page.mediabox.height)


def test_no_page_of_the_report_is_more_than_half_blank(report_md):
    """Catches: a layout rule that leaves pages mostly blank (pages 2, 5 and 11 of a 12-photo report were): a heading
    that keeps too much room with it, a figure pushed to the next page with the text after it. With figures that
    float (tests/test_shared_folders_odd_files_and_the_pdf.py tests the float itself), no page of this report is
    more than half blank, the last aside."""
    from pypdf import PdfReader
    _, out = report_md
    pages = PdfReader(out / "report.pdf").pages
    margin = 20 * 72 / 25.4  # render.py's top and bottom margins, 20 mm
    for k, page in enumerate(pages[:-1]):
        area = float(page.mediabox.height) - 2 * margin
        used = (float(page.mediabox.height) - margin - lowest_content(page)) / area
        assert used >= 0.5, (k + 1, round(used, 2))


def test_every_text_of_the_pdf_prints_at_7_pt_or_more(report_md):
    """Catches: a table set in 6.5 pt to make its words fit (the figures' own texts are tested where each is drawn,
    tests/test_report_statistics.py)."""
    from pypdf import PdfReader
    _, out = report_md
    sizes = []

    def text(t, cm, tm, font, size):
        if t.strip():
            sizes.append(size * abs(tm[3]) * abs(cm[3]))  # the font size through the text and the page matrices
    for page in PdfReader(out / "report.pdf").pages:
        page.extract_text(visitor_text=text)
    assert sizes and min(sizes) >= 7 - 1e-6, min(sizes)
