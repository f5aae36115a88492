"""The grader on a class of hand-ins written as students (and attackers) would: one run of course/grade.py from a
relative --out, in the sandbox. Full marks for the solution only; each planted bug loses exactly its checks; forged
verdicts, patched references, watchers, daemons and readers of the grader's environment gain nothing and reach
nothing; nothing a student started is alive afterwards; a regrade keeps the other rows."""
import csv
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time

import pytest

from conftest import load_report_script, record_as_made

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "course"))
import grade  # noqa: E402
import sandbox  # noqa: E402

CODE = ["assignment_4a.py", "assignment_4b.py", "vgg16.py", "download_wikiart.py", "requirements.txt", "README.md"]
SECRET = "grader-secret-4f1d9c"      # in the grader's environment while it grades: no student may read it
MARKER = "student-daemon-77e1"       # in the command line of every process a hostile hand-in leaves behind
LOSS = "return -(logits.log_softmax(dim=1).gather(1, labels[:, None])).mean()"
ACCURACY = "return (logits.argmax(dim=1) == labels).float().mean().item()"
HANG = """import signal, time
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        try:
            time.sleep(1)
        except BaseException:
            pass"""
FORGE = """
import atexit, json, os
_forged = "CHECKS " + json.dumps({c: [True, "ok"] for c in ["loss", "accuracy", "sgd"]})
print(_forged)
atexit.register(print, _forged)
for _d in ("/grader/out", os.environ.get("TMPDIR", "/tmp"), os.getcwd()):
    try:
        torch.save({"outputs": [{"value": torch.tensor(0.0)}] * 4}, os.path.join(_d, "loss.pt"))
    except OSError:
        pass
"""
PATCH = """
import torch.nn.functional
torch.nn.functional.cross_entropy = lambda x, y, *a, **k: cross_entropy(x, y)
torch.optim.SGD = SGD
"""
# a process that outlives its check: twice a second, it appends to any grades.csv and any other student's
# assignment_4a.py it can find from where it runs and in /tmp (where the grader's folders are, in these tests). It
# touches only paths of pytest's temporary folders, so that a broken sandbox fails the test and harms nothing else.
WATCHER = """import os, time
print("watcher started", flush=True)
own, tops = os.getcwd(), [os.path.abspath(p) for p in ("../../..", "../..", "/tmp")]
os.chdir("/")  # alive even when its hand-in's folder is deleted
for _ in range(40):
    for top in tops:
        for d, dirs, files in os.walk(top):
            if d.count(os.sep) - top.count(os.sep) > 5 or d.startswith(("/proc", "/sys", "/usr", "/dev")):
                dirs[:] = []
            for f in files:
                if "pytest-of-" in d and (f == "grades.csv" or (f == "assignment_4a.py" and d != own)):
                    try:
                        open(os.path.join(d, f), "a").write("# MODIFIED BY " + "ANOTHER STUDENT")
                    except OSError:
                        pass
    time.sleep(0.5)
# MARKER""".replace("MARKER", MARKER)
WATCH = f"""
import subprocess, sys
subprocess.Popen([sys.executable, "-c", {WATCHER!r}], start_new_session=True)
"""
ENVIRON = """
import glob
for _p in glob.glob("/proc/*/environ"):
    try:
        _text = open(_p, "rb").read().decode("utf-8", "replace")
    except OSError:
        continue
    print("FOUND", _p, [v for v in _text.split("\\0") if "SECRET" in v.upper()])
"""
# login -> ([(file, the solution's text, what replaces it)], the checks it must lose)
PLANTED = {
    "wrongsign": ([("assignment_4a.py", LOSS, LOSS.replace("-(", "("))], {"loss", "loss_hidden"}),
    "wrongaxis": ([("assignment_4a.py", ACCURACY, ACCURACY.replace("dim=1", "dim=0"))],
                  {"accuracy", "accuracy_hidden"}),
    "keepsfc8": ([("assignment_4a.py", "cut = linear[-1] if n == 1 else linear[-2]",
                   "cut = len(layers) if n == 1 else linear[-2]")], {"surgery", "surgery_hidden"}),
    "noabs": ([("assignment_4b.py", "return grad.abs().amax(dim=1), classes, scores",
                "return grad.amax(dim=1), classes, scores")], {"saliency", "saliency_hidden"}),
    "fixedlr": ([("assignment_4a.py", 'lr, momentum, weight_decay = group["lr"]',
                  'lr, momentum, weight_decay = self.__dict__.setdefault("lr0", group["lr"])')], {"sgd", "sgd_hidden"}),
    "forged": ([("assignment_4a.py", LOSS, "return logits.sum() * 0"), ("assignment_4a.py", "\nclass SGD:",
                FORGE + "\n\nclass SGD:")], {"loss", "loss_hidden"}),
    "patched": ([("assignment_4a.py", LOSS, LOSS.replace(".mean()", ".sum()")),
                 ("assignment_4a.py", "if weight_decay:  #", "if False:  #"),
                 ("assignment_4a.py", "\n\ndef lr_at(", PATCH + "\n\ndef lr_at(")],
                {"loss", "loss_hidden", "sgd", "sgd_hidden", "written_out"}),
    "libloss": ([("assignment_4a.py", LOSS, "return torch.nn.functional.cross_entropy(logits, labels)")],
                {"written_out"}),
    "naive": ([("assignment_4a.py", LOSS, "return -(logits.softmax(dim=1).gather(1, labels[:, None])).log().mean()")],
              {"loss_hidden"}),
    "hangs": ([("assignment_4a.py", ACCURACY, HANG)], {"accuracy", "accuracy_hidden"}),
    "exits": ([("assignment_4a.py", LOSS, "import sys\n    sys.exit(0)")], {"loss", "loss_hidden"}),
    "watcher": ([("assignment_4a.py", "\n\ndef lr_at(", WATCH + "\n\ndef lr_at(")], set()),
    "environ": ([("assignment_4a.py", "\n\ndef lr_at(", ENVIRON + "\n\ndef lr_at(")], set()),
}


def project(root, name_line="Name: Jane Doe  -  Student ID: 42"):
    """A student's project folder as make_package.py packs it: the solution's code, a report PDF, TensorBoard runs."""
    from fpdf import FPDF
    for f in CODE:
        shutil.copy(os.path.join(ROOT, f), root / f)
    (root / "report").mkdir()
    (root / "report" / "report.md").write_text(f"# Assignment 4\n\n{name_line}\n")
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica")
    pdf.cell(text=name_line)
    pdf.output(str(root / "report" / "report.pdf"))
    (root / "runs" / "remove1-new").mkdir(parents=True)
    (root / "runs" / "remove1-new" / "events.out.tfevents.1.host").write_bytes(b"\x00" * 64)
    return record_as_made(root, "Jane Doe", "42")  # as make_report.py leaves it: the report describes these files


def package(root, login, out):
    load_report_script("make_package").main(["--login", login, "--root", str(root), "--out", str(out),
                                             "--allow-no-name"])
    return out / f"cs587_{login}_assignment3.zip"


def plain_tar(root, path):
    """`tar czf` of a trained project, as a student makes it by hand: best.pt is a hard link to last.pt."""
    run = root / "runs" / "remove1-new"
    (run / "last.pt").write_bytes(os.urandom(1 << 20))
    os.link(run / "last.pt", run / "best.pt")
    (run / "config.json").write_text("{}")
    os.link(run / "config.json", run / "config-copy.json")
    with tarfile.open(path, "w:gz") as t:
        t.add(root, arcname=path.name.split(".")[0])
    return path


def hand_ins(tmp_path_factory):
    subs = tmp_path_factory.mktemp("subs")
    package(project(tmp_path_factory.mktemp("jdoe")), "jdoe", subs)
    plain_tar(project(tmp_path_factory.mktemp("jdoe-tar")), subs / "cs587_jdoe_assignment3.tar.gz")
    for login, (edits, _) in PLANTED.items():
        root = project(tmp_path_factory.mktemp(login))
        for f, old, new in edits:
            text = (root / f).read_text()
            assert old in text, old
            (root / f).write_text(text.replace(old, new, 1))
        package(root, login, subs)
    return subs


def processes_with(marker):
    found = []
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and marker.encode() in open(f"/proc/{pid}/cmdline", "rb").read():
                found.append(pid)
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded by `python course/grade.py subs --out grades` from another folder (a relative --out), with a
    secret in the grader's environment. -> ({archive: grades.csv row}, the folder it ran in, the hand-ins)."""
    if not sys.platform.startswith("linux"):  # on Linux a sandbox that cannot start fails these tests, loudly
        pytest.skip("the grader's sandbox is bubblewrap, which runs on Linux only")
    assert sandbox.available() is None, f"these tests need the sandbox: {sandbox.available()}"
    subs = hand_ins(tmp_path_factory)
    cwd = tmp_path_factory.mktemp("ta")
    shutil.copytree(subs, cwd / "subs")
    before = {p: p.read_bytes() for p in (cwd / "subs").iterdir()}
    r = subprocess.run([sys.executable, os.path.join(ROOT, "course", "grade.py"), "subs", "--out", "grades",
                        "--time-limit", "6", "--jobs", "2"], cwd=cwd, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, GRADER_SECRET_TOKEN=SECRET))
    assert r.returncode == 0, r.stderr[-3000:]
    assert before == {p: p.read_bytes() for p in (cwd / "subs").iterdir()}
    rows = {row["archive"]: row for row in csv.DictReader(open(cwd / "grades" / "grades.csv", encoding="utf-8"))}
    return rows, cwd, r


def lost(row):
    return {c for c in grade.load_rubric(grade.os.path.join(ROOT, "course", "rubric.toml"))[1]
            if float(row[c]) == 0}


def test_the_solution_packed_by_make_package_gets_full_marks(graded):
    """Catches: a check that fails the reference solution (a tolerance too tight, a rule misread)."""
    rows, _, _ = graded
    assert lost(rows["cs587_jdoe_assignment3.zip"]) == set()
    assert rows["cs587_jdoe_assignment3.zip"]["total"] == "21"


@pytest.mark.parametrize("login", list(PLANTED))
def test_each_planted_bug_loses_exactly_its_checks(graded, login):
    """Catches: a check that misses its bug (a wrong sign, the wrong axis, fc8 kept, no absolute value, an lr read
    once, a forged verdict, references patched at import, a library loss, a naive loss, a hang that ignores signals,
    sys.exit), or a bug (or an attack) that costs checks other than its own."""
    assert lost(graded[0][f"cs587_{login}_assignment3.zip"]) == PLANTED[login][1]


def test_a_plain_tar_of_a_trained_run_is_graded_with_its_checkpoints_left_out(graded):
    """Catches: a hand-in refused for best.pt, a hard link to last.pt (tar makes one), or for its checkpoints' size."""
    rows, cwd, _ = graded
    row = rows["cs587_jdoe_assignment3.tar.gz"]
    assert lost(row) == set() and row["note"].startswith("2 checkpoint(s) not unpacked")
    copy = next((cwd / "grades" / "work" / "cs587_jdoe_assignment3.tar.gz").rglob("config-copy.json"))
    assert copy.read_text() == "{}" and not copy.is_symlink()


def test_two_archives_of_one_login_are_both_graded_and_flagged(graded):
    rows, cwd, _ = graded
    assert rows["cs587_jdoe_assignment3.zip"]["same_login"] == "cs587_jdoe_assignment3.tar.gz"
    assert rows["cs587_jdoe_assignment3.tar.gz"]["same_login"] == "cs587_jdoe_assignment3.zip"
    assert (cwd / "grades" / "feedback" / "cs587_jdoe_assignment3.zip.txt").exists()
    assert (cwd / "grades" / "feedback" / "cs587_jdoe_assignment3.tar.gz.txt").exists()


def test_no_student_reached_another_the_grades_or_the_graders_environment(graded):
    """Catches: a watcher that edits the work folders or grades.csv, a reader of /proc/*/environ: the sandbox shows
    each student its own copy only, in a PID namespace of its own, with none of the grader's variables."""
    rows, cwd, r = graded
    time.sleep(2)  # a process that outlived its sandbox would have written by now
    touched = [str(p) for p in cwd.rglob("*") if p.is_file() and b"MODIFIED BY ANOTHER STUDENT" in p.read_bytes()]
    assert touched == []
    assert "watcher started" in (cwd / "grades" / "feedback" / "cs587_watcher_assignment3.zip.txt").read_text()
    feedback = (cwd / "grades" / "feedback" / "cs587_environ_assignment3.zip.txt").read_text()
    assert "FOUND /proc/" in feedback  # it ran, and found processes: its own
    assert SECRET not in "".join(p.read_text(errors="replace") for p in cwd.rglob("*.txt")) + r.stdout + r.stderr


def test_nothing_a_student_started_is_alive_after_grading(graded):
    """Catches: a process that a check started (start_new_session, so outside its process group) left running."""
    assert processes_with(MARKER) == []


def test_a_forged_result_line_and_result_file_set_no_mark(graded):
    rows, cwd, _ = graded
    text = (cwd / "grades" / "feedback" / "cs587_forged_assignment3.zip.txt").read_text()
    assert "CHECKS {" in text  # what it printed is shown to the TA, and changed nothing
    assert "FAIL  loss (0/2)" in text


def test_the_feedback_says_what_failed_and_why(graded):
    _, cwd, _ = graded
    fb = cwd / "grades" / "feedback"
    hangs = (fb / "cs587_hangs_assignment3.zip.txt").read_text()
    assert "FAIL  accuracy (0/1): did not finish within 6 s" in hangs
    assert "PASS  loss (2/2)" in hangs and hangs.splitlines()[0].endswith("19 of 21 points")
    assert "logits of +-1000 in float32: cross_entropy gives" in (fb / "cs587_naive_assignment3.zip.txt").read_text()
    assert "line" in (fb / "cs587_libloss_assignment3.zip.txt").read_text().split("written_out")[1]
    assert "SystemExit" in (fb / "cs587_exits_assignment3.zip.txt").read_text()


def test_the_class_summary_counts_each_check_and_draws_the_totals(graded):
    rows, cwd, r = graded
    n = len(rows)
    assert f"{'written_out':28s} {n - 2:4d} of {n} passed" in r.stdout  # all but patched and libloss
    assert (cwd / "grades" / "summary.png").read_bytes()[:4] == b"\x89PNG"


def test_a_regrade_of_one_archive_keeps_every_other_row(graded, tmp_path):
    """Catches: grades.csv rewritten with only the archives of this run."""
    rows, cwd, _ = graded
    shutil.copytree(cwd / "grades", tmp_path / "grades")
    before = open(tmp_path / "grades" / "grades.csv", encoding="utf-8").read()
    grade.main([str(cwd / "subs" / "cs587_wrongsign_assignment3.zip"), "--out", str(tmp_path / "grades"),
                "--time-limit", "20"])
    after = open(tmp_path / "grades" / "grades.csv", encoding="utf-8").read()
    assert sorted(before.splitlines()) == sorted(after.splitlines())


def test_gradescope_run_autograder_grades_both_upload_layouts(tmp_path_factory, tmp_path):
    """Catches: results.json missing (an upload with a top folder crashed the grader), a flat upload failing
    archive_name, or fields Gradescope reads (score, execution_time, max_score, status, visibility) absent."""
    import json
    import zipfile
    import make_autograder  # the kit is built by course/make_autograder.py, as an instructor would
    zip_path = make_autograder.make_autograder(str(tmp_path / "autograder.zip"))
    source = project(tmp_path_factory.mktemp("gs-student"))
    for layout in ("flat", "top"):
        fake = tmp_path / layout
        with zipfile.ZipFile(zip_path) as z:
            z.extractall(fake / "source")
        shutil.copytree(source, fake / "submission" / ("" if layout == "flat" else "cs587_ada_assignment3"))
        (fake / "results").mkdir()
        r = subprocess.run(["bash", str(fake / "source" / "run_autograder")], capture_output=True, text=True,
                           timeout=300, env=dict(os.environ, GRADER_AUTOGRADER_ROOT=str(fake),
                                                 GRADER_PYTHON=sys.executable))
        assert r.returncode == 0, r.stderr[-2000:]
        result = json.load(open(fake / "results" / "results.json"))
        assert result["score"] == 21 and result["stdout_visibility"] == "hidden" and result["execution_time"] > 0
        hidden = {t["name"] for t in result["tests"] if t["visibility"] == "after_published"}
        assert hidden == {"loss_hidden", "accuracy_hidden", "sgd_hidden", "surgery_hidden",
                          "tensorboard_scalars_hidden", "saliency_hidden"}
        assert all(t["status"] == "passed" and t["score"] == t["max_score"] for t in result["tests"]), layout


def test_the_docs_commands_run_verbatim_from_a_copy_of_the_repository(tmp_path_factory):
    """Catches: a command of docs/course.md that fails as written (a relative --out or ../handout resolved against the
    wrong folder, a folder of hand-ins not found, similarity given the grader's work folder)."""
    import re
    text = open(os.path.join(ROOT, "docs", "course.md"), encoding="utf-8").read()
    commands = [ln.split("#")[0].strip() for ln in re.search(r"```bash\n(.*?)```", text, re.S).group(1).splitlines()]
    assert len(commands) == 4 and all(c.startswith("python course/") for c in commands)
    repo = tmp_path_factory.mktemp("copy") / "repo"
    (repo / "runs").mkdir(parents=True)
    for f in ["assignment_4a.py", "assignment_4b.py", "vgg16.py", "download_wikiart.py", "requirements.txt",
              "environment.yml", "course", "My-Images", "runs/README.md"]:
        (shutil.copytree if os.path.isdir(os.path.join(ROOT, f)) else shutil.copy)(os.path.join(ROOT, f), repo / f)
    (repo / "hand-ins").mkdir()
    for login in ("ann", "bob"):
        package(project(tmp_path_factory.mktemp(login)), login, repo / "hand-ins")
    for command in commands:
        r = subprocess.run([sys.executable] + command.split()[1:], cwd=repo, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, (command, r.stderr[-2000:])
    assert (repo.parent / "handout" / "tests" / "expected.pt").exists()
    assert len(list(csv.DictReader(open(repo / "grades" / "grades.csv")))) == 2
    assert (repo / "grades" / "similarity" / "pairs.csv").read_text().startswith("a,b,similarity")
    assert (repo / "autograder.zip").exists()


def test_refused_without_a_sandbox_unless_asked(tmp_path, monkeypatch, capsys):
    """Catches: student code run with the grader's rights without a word, where bubblewrap cannot run."""
    monkeypatch.setattr(sandbox, "_status", {"why": "bwrap could not make a sandbox here (no user namespaces)"})
    with pytest.raises(SystemExit) as e:
        grade.main([str(tmp_path), "--out", str(tmp_path / "g")])
    assert str(e.value) == ("error: the student's code would run without a sandbox: bwrap could not make a sandbox "
                            "here (no user namespaces). Grade on Linux with bubblewrap, or pass --no-sandbox to run "
                            "it with your rights (docs/course.md)")
    assert not (tmp_path / "g" / "grades.csv").exists()


def test_grade_help_explains_every_flag():
    out = io.StringIO()
    with pytest.raises(SystemExit), __import__("contextlib").redirect_stdout(out):
        grade.main(["--help"])
    for flag in ("--out", "--rubric", "--time-limit", "--memory-mb", "--jobs", "--no-sandbox", "--gradescope"):
        assert flag in out.getvalue()
