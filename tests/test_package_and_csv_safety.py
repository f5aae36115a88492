"""What is handed in and what a spreadsheet opens: formula cells neutralised, nothing packed that zip would block on,
and the size guard kept whatever is asked to be packed."""
import csv
import importlib.util
import os

import pytest

import download_wikiart as dw
from conftest import ROOT, load_report_script, record_as_made

spec = importlib.util.spec_from_file_location("make_package", os.path.join(ROOT, "report", "make_package.py"))
make_package = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_package)


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1+1", "\r=1+1"])
def test_every_cell_a_spreadsheet_would_run_is_neutralised_and_read_back(tmp_path, cell):
    """Catches: tab and carriage return missing from the neutralised starts (OWASP lists both: a spreadsheet strips
    them and runs the formula after)."""
    dw.write_csv(str(tmp_path / "m.csv"), ["artist"], [[cell]])
    header, (stored,) = list(csv.reader(open(tmp_path / "m.csv", newline="", encoding="utf-8")))
    assert header == ["artist"] and stored == "'" + cell and dw.unneutralised(stored) == cell


def project_to_pack(root):
    (root / "report").mkdir(parents=True)
    (root / "report" / "report.md").write_text("**Name:** A  ·  **Student ID:** 1\n")
    (root / "My-Images").mkdir()
    (root / "My-Images" / "cat.jpg").write_bytes(b"jpeg")
    return made(root)


def made(root, maps_out_of_date=None, pdf_written=True):
    return record_as_made(root, "A", "1", maps_out_of_date, pdf_written)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_never_packed(tmp_path, deadline):
    """Catches: a named pipe in My-Images/ packed: zip opens it and blocks for ever."""
    root = project_to_pack(tmp_path / "root")
    os.mkfifo(root / "My-Images" / "pipe.jpg")
    files, left = make_package.files_to_pack(str(root), False)
    assert "My-Images/pipe.jpg" not in files
    assert ("My-Images/pipe.jpg", "not a regular file (a link in a loop or to nothing, a pipe, a device)") in left


def test_checkpoints_asked_for_do_not_waive_the_size_guard(tmp_path, monkeypatch):
    """Catches: --with-checkpoints packing a 460 MB archive past the refusal that protects the upload."""
    root = project_to_pack(tmp_path / "root")
    run = root / "runs" / "r"
    run.mkdir(parents=True)
    (run / "best.pt").write_bytes(b"0" * 3000)
    monkeypatch.setattr(make_package, "REFUSE_MB", 0.002)  # 2,000 bytes
    monkeypatch.setattr(make_package, "check_name", lambda *a: None)
    with pytest.raises(SystemExit, match="more than course platforms take"):
        make_package.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z"), "--with-checkpoints"])
    assert not (tmp_path / "z").exists() or not os.listdir(tmp_path / "z")


def test_the_archive_packs_the_settings_its_tests_and_benchmarks_need():
    """Catches: tests/ and bench/ packed without pytest.ini (the TA's pytest warns of an unknown `gpu` mark and keeps
    every temporary folder), setup.cfg, the dev and bench requirements, or the linter's settings."""
    files, _ = make_package.files_to_pack(ROOT, False)
    assert {"pytest.ini", "setup.cfg", "requirements-dev.txt", "requirements-bench.txt", "ruff.toml", "Makefile",
            "tests/conftest.py", "bench/bench_finetune.py"} <= set(files)


def test_the_kits_tests_are_not_packed_without_the_kit(tmp_path):
    """Catches: tests/test_course_*.py packed while course/ is not: the TA's `pytest tests` in the unpacked archive
    then stops at collection (No module named 'grade')."""
    root = project_to_pack(tmp_path / "root")
    for f in ("course/grade.py", "tests/test_course_kit.py", "tests/test_vgg16.py"):
        os.makedirs(root / os.path.dirname(f), exist_ok=True)
        (root / f).write_text("")
    files, _ = make_package.files_to_pack(str(root), False)
    assert "tests/test_vgg16.py" in files
    assert not [f for f in files if f.startswith(("course/", "tests/test_course_"))]


def test_packing_before_any_report_says_to_make_it(tmp_path):
    """Catches: "report.md has no name and student ID" for a report that was never made."""
    root = project_to_pack(tmp_path / "root")
    os.remove(root / "report" / "report.md")
    os.remove(root / "report" / "record.json")
    with pytest.raises(SystemExit) as e:
        make_package.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z")])
    assert str(e.value) == ("error: no report yet (report/record.json, which make_report.py writes beside report.md, "
                            'is missing): run `python report/make_report.py --name "Your Name" --student-id ID` first')


def test_comments_still_the_template_are_a_warning_and_the_archive_is_written(tmp_path, capsys):
    """Catches: the template's questions handed in as the student's comments without a word."""
    template = load_report_script("comments").COMMENTS_TEMPLATE
    root = project_to_pack(tmp_path / "root")
    (root / "report" / "comments.md").write_text(template)
    made(root)  # the report made after its comments
    make_package.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z"), "--allow-no-name"])
    err = capsys.readouterr().err
    assert "warning: report/comments.md still holds only the template's questions" in err
    assert os.listdir(tmp_path / "z") == ["cs587_a_assignment3.zip"]
    (root / "report" / "comments.md").write_text(template + "\nMy runs stayed at chance: 4 of 40 right.\n")
    made(root)
    make_package.main(["--login", "b", "--root", str(root), "--out", str(tmp_path / "z"), "--allow-no-name"])
    assert "comments.md" not in capsys.readouterr().err


def test_each_map_is_packed_once_and_photos_without_a_map_are_named(tmp_path, capsys):
    """Catches: every <image>_saliency.png packed beside the grid that repeats it (~650 kB each), and a non-image or an
    unreadable photo packed from My-Images/ without a word."""
    import json
    import zipfile
    root = project_to_pack(tmp_path / "root")
    (root / "My-Images" / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "My-Images" / "notes.txt").write_text("to do")
    (root / "My-Images" / "boxes.csv").write_text("file,x0,y0,x1,y1,object\n")
    sal = root / "report" / "saliency"
    sal.mkdir()
    for f in ("grid.png", "cat_saliency.png", "predictions.csv"):
        (sal / f).write_bytes(b"x")
    (sal / "settings.json").write_text(json.dumps({"listed": ["broken.jpg", "cat.jpg"],
                                                   "skipped_files": ["broken.jpg"]}))
    made(root)
    make_package.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z"), "--allow-no-name"])
    out, err = capsys.readouterr()
    names = zipfile.ZipFile(tmp_path / "z" / "cs587_a_assignment3.zip").namelist()
    assert "cs587_a_assignment3/report/saliency/grid.png" in names
    assert "cs587_a_assignment3/report/saliency/cat_saliency.png" not in names
    assert "report/saliency/cat_saliency.png  (the same map as its row of grid.png: each map is packed once)" in out
    assert "note: packed from My-Images/ but not an image assignment_4b.py maps: notes.txt" in err
    assert "note: packed from My-Images/ but skipped by assignment_4b.py as unreadable: broken.jpg" in err


def test_the_unpacked_archive_collects_its_tests(tmp_path):
    """Catches: a packed test that cannot even be collected in the hand-in (it imports a folder that is not packed):
    a TA's `python -m pytest tests` in the unpacked archive would stop before running any."""
    import shutil
    import subprocess
    import sys
    files, _ = make_package.files_to_pack(ROOT, False)
    for f in files:
        os.makedirs(tmp_path / os.path.dirname(f), exist_ok=True)
        shutil.copy(os.path.join(ROOT, f), tmp_path / f)
    assert {".ci/lowest.py", "pytest.ini"} <= set(files)
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    last = r.stdout.strip().splitlines()[-1]
    assert r.returncode == 0 and " tests collected in " in last and "error" not in last, r.stdout[-2000:]


def test_every_link_in_the_packed_pages_leads_to_a_packed_file():
    """Catches: the packed README or docs linking a file the archive does not hold (course/, .ci/run), which a TA
    reading the hand-in finds broken."""
    import re
    files, _ = make_package.files_to_pack(ROOT, False)
    pages = [f for f in files if f.endswith(".md") and (f == "README.md" or f.startswith("docs/"))]
    assert "README.md" in pages and "docs/course.md" in pages
    for page in pages:
        text = open(os.path.join(ROOT, page), encoding="utf-8").read()
        for target in re.findall(r"\]\(([^)#\s]+)", text):
            if "://" in target:
                continue
            path = os.path.normpath(os.path.join(os.path.dirname(page), target)).replace(os.sep, "/")
            assert path in files or any(f.startswith(path.rstrip("/") + "/") for f in files), (page, target)


def test_maps_the_report_calls_out_of_date_are_not_packed_unless_asked(tmp_path):
    """Catches: an archive whose saliency grid still shows a photo since removed from My-Images/ (or misses one
    added), handed in although make_report.py found the maps out of date."""
    root = made(project_to_pack(tmp_path / "root"), maps_out_of_date="1 image(s) with maps are no longer in "
                                                                       "`My-Images`: b.png.")
    with pytest.raises(SystemExit) as e:
        make_package.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z")])
    assert str(e.value) == ("error: the report does not describe what would be packed: the saliency maps it shows "
                            "are not up to date with the photos (1 image(s) with maps are no longer in `My-Images`: "
                            "b.png.): run `python assignment_4b.py`, then `python report/make_report.py` and pack "
                            "again; or pass --allow-out-of-date to hand it in as it is")
    assert not (tmp_path / "z").exists()
    make_package.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z"), "--allow-out-of-date"])
    assert os.listdir(tmp_path / "z") == ["cs587_a_assignment3.zip"]


def test_a_file_the_report_reads_changed_after_it_is_named(tmp_path):
    """Catches: a run finished after report.md was written, packed with the old report (its numbers, not the
    archive's); and a file whose time alone moved (a copy, a checkout) taken for a change."""
    root = tmp_path / "root"
    run = root / "runs" / "r"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text("{}")
    project_to_pack(root)
    os.utime(run / "metrics.json", (1e9, 1e9))  # the same bytes, another time: not a change
    make_package.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "y")])
    (run / "metrics.json").write_text('{"epochs": []}')
    with pytest.raises(SystemExit) as e:
        make_package.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z")])
    assert str(e.value) == ("error: the report does not describe what would be packed: since make_report.py last ran, "
                            "runs/r/metrics.json changed: run `python report/make_report.py` and pack again; or pass "
                            "--allow-out-of-date to hand it in as it is")


def test_comments_edited_after_the_report_make_it_out_of_date(tmp_path):
    """Catches: comments.md left out of what the report reads (the student's words packed from an older report),
    even when edited within the 2 s that FAT and zip times cannot tell apart."""
    root = project_to_pack(tmp_path / "root")
    (root / "report" / "comments.md").write_text("mine")
    made(root)
    written = os.path.getmtime(root / "report" / "comments.md")
    (root / "report" / "comments.md").write_text("mine, and more")
    os.utime(root / "report" / "comments.md", (written, written))
    with pytest.raises(SystemExit) as e:
        make_package.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z")])
    assert ("since make_report.py last ran, report/comments.md changed: run `python report/make_report.py`"
            in str(e.value))


def test_a_photo_added_or_removed_since_the_report_names_it_and_4b_first(tmp_path):
    """Catches: the inputs compared as a fixed list (a photo added, or a run folder renamed, goes unseen), or the
    mending command that forgets the maps."""
    root = project_to_pack(tmp_path / "root")
    (root / "My-Images" / "dog.jpg").write_bytes(b"jpeg")
    os.remove(root / "My-Images" / "cat.jpg")
    with pytest.raises(SystemExit) as e:
        make_package.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z")])
    assert ("since make_report.py last ran, My-Images/dog.jpg appeared, My-Images/cat.jpg vanished: run `python "
            "assignment_4b.py`, then `python report/make_report.py` and pack again") in str(e.value)


def test_files_the_report_never_read_do_not_make_it_out_of_date(tmp_path):
    """Catches: a file in a subfolder of My-Images/ (which assignment_4b.py does not search) or beside the run files
    (a checkpoint) counted as an input, so that the archive is refused for a change the report never saw."""
    root = project_to_pack(tmp_path / "root")
    (root / "My-Images" / "old").mkdir()
    (root / "My-Images" / "old" / "dog.jpg").write_bytes(b"jpeg")
    (root / "runs" / "r").mkdir(parents=True)
    (root / "runs" / "r" / "last.pt").write_bytes(b"weights")
    make_package.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z")])
    assert os.listdir(tmp_path / "z") == ["cs587_a_assignment3.zip"]


def test_a_pdf_left_from_before_a_no_pdf_run_is_refused(tmp_path):
    """Catches: `make_report.py --no-pdf` after new runs, then the older report.pdf packed without a word (the
    grader reads the PDF, which never mentions the new runs)."""
    root = project_to_pack(tmp_path / "root")
    (root / "report" / "report.pdf").write_bytes(b"%PDF-1.4 older")
    made(root, pdf_written=False)
    with pytest.raises(SystemExit) as e:
        make_package.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z")])
    assert ("since make_report.py last ran, report/report.pdf is older than report.md (make_report.py ran with "
            "--no-pdf): run `python report/make_report.py` and pack again") in str(e.value)


def test_a_report_edited_by_hand_is_not_the_one_recorded(tmp_path):
    """Catches: report.md changed after make_report.py wrote it (numbers typed in by hand) packed as the program's."""
    root = project_to_pack(tmp_path / "root")
    with open(root / "report" / "report.md", "a") as fh:
        fh.write("Best accuracy: 99%\n")
    with pytest.raises(SystemExit) as e:
        make_package.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z")])
    assert "since make_report.py last ran, report/report.md changed" in str(e.value)


def test_a_file_dated_before_1980_is_packed(tmp_path):
    """Catches: zip's "does not support timestamps before 1980" crashing the packing of a photo some unpacker dated
    1970."""
    import zipfile
    root = project_to_pack(tmp_path / "root")
    os.utime(root / "My-Images" / "cat.jpg", (0, 0))
    make_package.main(["--login", "a", "--root", str(root), "--out", str(tmp_path / "z")])
    names = zipfile.ZipFile(tmp_path / "z" / "cs587_a_assignment3.zip").namelist()
    assert "cs587_a_assignment3/My-Images/cat.jpg" in names
