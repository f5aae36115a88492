"""The instructor's kit (course/): the markers change nothing in the solution, the handout holds no solution line and
stops at its first stub with the step's sentence, and the grader gives the solution full marks, takes from each
planted bug exactly its check, refuses hostile archives without writing outside its folder, and stops a hang."""
import csv
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile

import pytest

from conftest import load_report_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "course"))
import grade  # noqa: E402
import make_handout  # noqa: E402

CODE = ["assignment_4a.py", "assignment_4b.py", "vgg16.py", "download_wikiart.py", "requirements.txt", "README.md"]
# planted one-line bugs: login -> (file, the solution's line, the bug), and the one check each must lose
PLANTED = {
    "wrongsign": ("assignment_4a.py", "return -(logits.log_softmax(dim=1)", "return (logits.log_softmax(dim=1)",
                  "loss"),
    "wrongaxis": ("assignment_4a.py", "return (logits.argmax(dim=1) == labels)",
                  "return (logits.argmax(dim=0) == labels)", "accuracy"),
    "keepsfc8": ("assignment_4a.py", "cut = linear[-1] if n == 1 else linear[-2]",
                 "cut = len(layers) if n == 1 else linear[-2]", "surgery"),
    "noabs": ("assignment_4b.py", "return grad.abs().amax(dim=1), classes, scores",
              "return grad.amax(dim=1), classes, scores", "saliency"),
    "hangs": ("assignment_4a.py", "return (logits.argmax(dim=1) == labels)", "while True: pass  # ", "accuracy"),
}


def project(root, name_line="Name: Jane Doe  ·  Student ID: 42"):
    """A student's project folder as make_package.py packs it: the solution's code, a report PDF, TensorBoard runs."""
    from fpdf import FPDF
    for f in CODE:
        shutil.copy(os.path.join(ROOT, f), root / f)
    (root / "report").mkdir()
    (root / "report" / "report.md").write_text(f"# Assignment 4\n\n**{name_line.replace(': ', ':** ', 1)}\n")
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica")
    pdf.cell(text=name_line.replace("·", "-"))
    pdf.output(str(root / "report" / "report.pdf"))
    (root / "runs" / "remove1-new").mkdir(parents=True)
    (root / "runs" / "remove1-new" / "events.out.tfevents.1.host").write_bytes(b"\x00" * 64)
    return root


def package(root, login, out):
    load_report_script("make_package").main(["--login", login, "--root", str(root), "--out", str(out),
                                             "--allow-no-name"])
    return out / f"cs587_{login}_assignment3.zip"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every kind of hand-in graded in one run of course/grade.py. -> ({login: grades.csv row}, out folder, seconds)"""
    tmp = tmp_path_factory.mktemp("kit")
    subs = tmp / "subs"
    subs.mkdir()
    solution = package(project(tmp_path_factory.mktemp("jdoe")), "jdoe", subs)
    for login, (f, line, bug, _) in PLANTED.items():
        root = project(tmp_path_factory.mktemp(login))
        text = (root / f).read_text()
        assert line in text, line
        (root / f).write_text(text.replace(line, bug, 1))
        package(root, login, subs)
    package(project(tmp_path_factory.mktemp("noid"), name_line="Name: Jane Doe"), "noid", subs)
    with zipfile.ZipFile(solution) as z, zipfile.ZipFile(subs / "cs587_withdata_assignment3.zip", "w") as out:
        for info in z.infolist():
            out.writestr(info.filename.replace("cs587_jdoe_", "cs587_withdata_"), z.read(info))
        out.writestr("cs587_withdata_assignment3/datasets/wikiart/train/Baroque/a.jpg", b"jpeg")
    shutil.copy(solution, subs / "jdoe_homework.zip")  # the sheet's name not followed
    with zipfile.ZipFile(subs / "cs587_escape_assignment3.zip", "w") as z:
        z.writestr("cs587_escape_assignment3/assignment_4a.py", "print('hi')\n")
        z.writestr("../../escaped.txt", "outside")
    with tarfile.open(subs / "cs587_linked_assignment3.tar.gz", "w:gz") as t:
        info = tarfile.TarInfo("cs587_linked_assignment3/secret")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(info)
    with zipfile.ZipFile(subs / "cs587_ziplink_assignment3.zip", "w") as z:
        link = zipfile.ZipInfo("cs587_ziplink_assignment3/secret")
        link.external_attr = 0o120777 << 16  # a symbolic link, as zip -y stores it
        z.writestr(link, "/etc/passwd")
    (subs / "cs587_winrar_assignment3.rar").write_bytes(b"Rar!\x1a\x07\x00")
    out = tmp / "grades"
    t0 = time.time()
    grade.main([str(subs), "--out", str(out), "--time-limit", "8", "--jobs", "2"])
    rows = {r["login"]: r for r in csv.DictReader(open(out / "grades.csv", encoding="utf-8"))}
    return rows, out, time.time() - t0


def lost(row):
    return {c for c in grade.COLUMNS if row[c] != "1"}


def test_the_solution_packed_by_make_package_gets_full_marks(graded):
    """Catches: a check that fails the reference solution (a tolerance too tight, a rule misread)."""
    rows, out, _ = graded
    assert lost(rows["jdoe"]) == set() and rows["jdoe"]["total"] == str(len(grade.COLUMNS))


@pytest.mark.parametrize("login", list(PLANTED))
def test_each_planted_bug_loses_exactly_its_check(graded, login):
    """Catches: a check that misses its bug (a loss of the wrong sign, an accuracy over the wrong axis, a surgery
    keeping fc8, a map without the absolute value, a function that never returns), or a bug failing other checks."""
    assert lost(graded[0][login]) == {PLANTED[login][3]}


def test_the_rules_each_lose_their_check(graded):
    """Catches: a report without an ID, a packed dataset, or an archive not named as the sheet says passing."""
    rows = graded[0]
    assert lost(rows["noid"]) == {"report"}
    assert lost(rows["withdata"]) == {"no_datasets"}
    assert lost(rows["jdoe_homework"]) == {"archive_name"}


def test_the_feedback_says_what_failed_and_why(graded):
    rows, out, _ = graded
    text = (out / "feedback" / "hangs.txt").read_text()
    assert "FAIL  accuracy: did not finish within 8 s (an endless loop?)" in text
    assert "PASS  loss:" in text and "9 of 10" in text.splitlines()[0]
    assert "accuracy gives" in (out / "feedback" / "wrongaxis.txt").read_text() or \
        "Error" in (out / "feedback" / "wrongaxis.txt").read_text()


def test_hostile_archives_are_refused_without_writing_outside_their_folder(graded):
    """Catches: a ../ path written outside the grader's folder, a link followed to /etc/passwd."""
    rows, out, _ = graded
    for login in ("escape", "linked", "ziplink"):
        assert rows[login]["total"] == "0" and rows[login]["note"].startswith("refused: the archive holds"), login
    assert not [p for p in (out.parent).rglob("escaped.txt")] and not (out / "work" / "escape").exists()
    assert not (out / "work" / "linked" / "cs587_linked_assignment3" / "secret").exists()


def test_another_format_is_named_and_skipped(graded):
    rows = graded[0]
    assert rows["winrar"]["total"] == "0"
    assert rows["winrar"]["note"].startswith("not graded: cs587_winrar_assignment3.rar is not a .zip or .tar.gz "
                                             "archive")


def test_gradescope_gets_results_json_in_its_format(graded, tmp_path):
    """Catches: results.json without the per-test fields Gradescope reads (name, score, max_score, output)."""
    import json
    _, out, _ = graded
    folder = next((out / "work").glob("jdoe*")) / "cs587_jdoe_assignment3"
    grade.main([str(folder), "--out", str(tmp_path / "gs"), "--gradescope", "--time-limit", "20"])
    result = json.load(open(tmp_path / "gs" / "results.json"))
    assert result["score"] == len(grade.COLUMNS) - 1  # a folder has no archive name to follow
    assert {t["name"] for t in result["tests"]} == set(grade.COLUMNS)
    assert all({"name", "score", "max_score", "output", "visibility"} <= set(t) for t in result["tests"])


def test_the_markers_change_nothing_the_solution_runs():
    """Catches: a marker that is not a comment, or a block left open: the solution must run as if unmarked."""
    for f in make_handout.STUBBED:
        text = open(os.path.join(ROOT, f), encoding="utf-8").read()
        blocks = make_handout.solution_blocks(text, f)
        assert len(blocks) >= 2
        unmarked = "\n".join(ln for ln in text.splitlines() if not re.match(r"\s*# (BEGIN|END) SOLUTION|\s*#   ", ln))
        import ast
        assert ast.dump(ast.parse(unmarked)) == ast.dump(ast.parse(text))


@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    out = tmp_path_factory.mktemp("h") / "handout"
    make_handout.make_handout(str(out))
    return out


def test_the_handout_holds_no_solution_line(handout):
    """Catches: a marked block copied into the handout, or a file the student must not get (the report's answers,
    the extras, the kit)."""
    for f in make_handout.STUBBED:
        text = open(os.path.join(ROOT, f), encoding="utf-8").read()
        lines = text.splitlines()
        given = (handout / f).read_text()
        blocks = make_handout.solution_blocks(text, f)
        inside = {i for start, end, _, _ in blocks for i in range(start, end + 1)}
        elsewhere = "\n".join(ln for i, ln in enumerate(lines) if i not in inside)
        solution = [ln.split("#")[0].strip() for i, ln in enumerate(lines) if i in inside]
        solution = [code for code in solution if len(code) > 12 and code not in elsewhere]  # the block's own lines
        assert len(solution) >= 10
        assert not [code for code in solution if code in given]
        assert "SOLUTION" not in given
    names = {str(p.relative_to(handout)) for p in handout.rglob("*") if p.is_file()}
    assert not [n for n in names if n.startswith(("report/", "course/", "docs/")) or "extras" in n or "ground" in n]
    assert {"assignment_4a.py", "assignment_4b.py", "vgg16.py", "download_wikiart.py", "README.md",
            "tests/test_your_functions.py", "My-Images/boxes.csv"} <= names


def test_the_handout_stops_at_its_first_stub_with_the_steps_sentence(handout, vgg_weights):
    """Catches: a handout that shows a traceback (or runs on) where the student's part is missing."""
    r = subprocess.run([sys.executable, "assignment_4b.py", "--images", str(handout / "My-Images")], cwd=handout,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("not written yet: Part 2, steps 1-4: a forward pass")


def test_the_handouts_public_tests_fail_until_the_functions_are_written(handout):
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=handout,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and f"{len(grade.CHECKS)} failed" in r.stdout
    assert "NotImplementedError" in r.stdout


def test_a_time_limit_shorter_than_pytorchs_import_still_grades(tmp_path):
    """Catches: the first check's alarm cutting `import torch` in half (a loaded machine takes seconds to import it),
    which left torch unusable and failed every check of a correct submission."""
    import json
    r = subprocess.run([sys.executable, "-I", os.path.join(ROOT, "course", "checks.py"), ROOT, "--time-limit", "2"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("CHECKS "))
    results = json.loads(line[len("CHECKS "):])
    assert results["loss"][0] and results["accuracy"][0], results


@pytest.mark.parametrize("text,message", [
    ("def f():\n    # BEGIN SOLUTION: step\n    return 1\n", "t.py:2: # BEGIN SOLUTION without its # END SOLUTION"),
    ("def f():\n    return 1\n    # END SOLUTION\n", "t.py:3: # END SOLUTION without a # BEGIN SOLUTION before it"),
    ("def f():\n    # BEGIN SOLUTION: a\n    # BEGIN SOLUTION: b\n    # END SOLUTION\n",
     "t.py:3: a # BEGIN SOLUTION inside the block opened at line 2"),
])
def test_a_marker_left_open_or_nested_is_named_with_its_line(text, message):
    """Catches: a handout made from a file whose markers do not pair up (the stub would swallow the rest of the
    file, or leave solution lines in)."""
    with pytest.raises(make_handout.HandoutError, match=re.escape(message)):
        make_handout.solution_blocks(text, "t.py")
