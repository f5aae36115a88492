"""Grade the hand-ins: one archive per student, as the sheet names it (cs587_<login>_assignment3.zip).

    python course/grade.py submissions/*.zip submissions/*.tar.gz --out grades/
    python course/grade.py hand-ins/ --out grades/ --time-limit 60 --jobs 2     # every archive in a folder
    python course/grade.py            # inside Gradescope's container: /autograder/submission -> /autograder/results

Each archive is unpacked safely into <out>/work/<login>/ (no path outside that folder, links and devices refused,
at most MAX_FILES files and MAX_MB megabytes, counted as they are written), then checked:
  the sheet's rules   archive_name (cs587_<login>_assignment<N>.zip/.tar.gz), report (a PDF or DOC(X) that shows a
                      name and an ID), no_datasets (no datasets/ folder), tensorboard (event files in runs/);
  the functions       loss, accuracy, sgd, surgery, tensorboard_scalars, saliency: course/checks.py against
                      PyTorch's own on fixed inputs, in a subprocess with a time limit per check.
Writes <out>/grades.csv (one row per archive: login, archive, one column per check, total), <out>/feedback/<login>.txt
(what failed and why), and, with --gradescope or inside Gradescope, results.json in Gradescope's format.
An archive in another format is named and skipped; a hostile one (a path out of its folder, a link) is refused and
gets 0. The student's code runs with the grader's rights: docs/course.md says what is and is not protected.
"""
import argparse
import csv
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from checks import CHECKS  # noqa: E402 (the function checks, shared with the handout's public tests)

ARCHIVE_NAME = re.compile(r"^cs587_([A-Za-z0-9_.-]+?)_assignment(\d+)\.(zip|tar\.gz|tgz|rar|gz)$")  # the sheet's
RULES = ["archive_name", "report", "no_datasets", "tensorboard"]
COLUMNS = RULES + list(CHECKS)
MAX_FILES, MAX_MB = 20_000, 500   # an archive beyond either is refused (a zip bomb, a dataset packed by mistake)
TIME_LIMIT = 60                   # seconds per function check
GRADESCOPE = "/autograder"


class Refused(Exception):
    """An archive that is not unpacked: the message says why."""


def login_of(path):
    """-> (login, whether the name is the sheet's)."""
    name = os.path.basename(path.rstrip("/"))
    m = ARCHIVE_NAME.match(name)
    if m:
        return m.group(1), True
    stem = re.sub(r"\.(zip|tar\.gz|tgz|rar|7z|gz|tar)$", "", name)
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem) or "unnamed", False


def safe_member(name):
    """The member's path inside the unpack folder, or Refused: absolute, drive-lettered or climbing paths are."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise Refused(f"the archive holds the path {name!r}, which leads out of its folder")
    return "/".join(p for p in parts if p not in ("", "."))


def unpack(path, dest, max_files=MAX_FILES, max_mb=MAX_MB):
    """Unpack a .zip or .tar.gz into dest, or raise Refused (dest removed again). Links, devices and paths out of
    dest are refused; the bytes are counted as they are written, so a header that lies about sizes is caught."""
    budget = {"bytes": max_mb * 2 ** 20, "files": max_files}

    def write(rel, source):
        target = os.path.join(dest, rel)
        if os.path.commonpath([os.path.realpath(os.path.dirname(target)), os.path.realpath(dest)]) != \
                os.path.realpath(dest):
            raise Refused(f"the archive's path {rel!r} leads out of its folder")
        budget["files"] -= 1
        if budget["files"] < 0:
            raise Refused(f"more than {max_files} files")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as out:
            while True:
                chunk = source.read(1 << 20)
                if not chunk:
                    break
                budget["bytes"] -= len(chunk)
                if budget["bytes"] < 0:
                    raise Refused(f"more than {max_mb} MB unpacked")
                out.write(chunk)

    os.makedirs(dest)
    try:
        if path.endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    rel = safe_member(info.filename)
                    if stat.S_ISLNK(info.external_attr >> 16):
                        raise Refused(f"the archive holds a link, {info.filename!r}")
                    if info.is_dir() or not rel:
                        continue
                    with z.open(info) as source:
                        write(rel, source)
        else:
            with tarfile.open(path, "r:gz") as t:
                for m in t:
                    rel = safe_member(m.name)
                    if m.issym() or m.islnk():
                        raise Refused(f"the archive holds a link, {m.name!r}")
                    if m.isdir() or not rel:
                        continue
                    if not m.isfile():
                        raise Refused(f"the archive holds {m.name!r}, which is not a file")
                    write(rel, t.extractfile(m))
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as e:
        shutil.rmtree(dest, ignore_errors=True)
        raise Refused(f"it cannot be read as an archive ({e.__class__.__name__}: {e})") from None
    except Refused:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def project_root(folder):
    """The folder inside the unpacked archive that holds assignment_4a.py (the sheet's archive has one top folder)."""
    for dirpath, dirnames, files in os.walk(folder):
        dirnames.sort()
        if "assignment_4a.py" in files or "assignment_4b.py" in files:
            return dirpath
    return folder


def report_text(path):
    """The text of a PDF, DOCX or DOC report, as far as it can be read."""
    if path.lower().endswith(".pdf"):
        from pypdf import PdfReader
        return " ".join(page.extract_text() or "" for page in PdfReader(path).pages[:3])
    if path.lower().endswith(".docx"):
        with zipfile.ZipFile(path) as z:
            return re.sub(r"<[^>]+>", " ", z.read("word/document.xml").decode("utf-8", "replace"))
    data = open(path, "rb").read()  # .doc: its runs of text, in 8-bit or UTF-16
    return " ".join([s.decode() for s in re.findall(rb"[\x20-\x7e]{3,}", data)]
                    + [s.decode("utf-16-le") for s in re.findall(rb"(?:[\x20-\x7e]\x00){3,}", data)])


def check_rules(folder, archive):
    """The sheet's rules. -> {rule: (passed, message)}"""
    files = [os.path.relpath(os.path.join(d, f), folder).replace(os.sep, "/")
             for d, _, fs in os.walk(folder) for f in fs]
    _, named = login_of(archive)
    out = {"archive_name": (named, "named as the sheet asks" if named else
                            f"{os.path.basename(archive)} is not named cs587_<login>_assignment3.zip")}
    reports = sorted(f for f in files if f.lower().endswith((".pdf", ".docx", ".doc")))
    shown = ""
    for f in reports:
        try:
            text = " ".join(report_text(os.path.join(folder, f)).split())
        except Exception as e:  # a damaged file, whatever pypdf raises for it: said, and the next report tried
            shown = f"{f} cannot be read ({e.__class__.__name__})"
            continue
        name = re.search(r"\bName\s*:\s*(?!Student\b)\w", text, re.I)
        student_id = re.search(r"\bID\s*:\s*\w", text, re.I)
        if name and student_id:
            out["report"] = (True, f"{f} shows a name and an ID")
            break
        shown = f"{f} shows no {'name' if not name else 'ID'} (the sheet asks for both)"
    else:
        out["report"] = (False, shown or "no report: a PDF or DOC file with your name and ID")
    data = sorted({f.split("datasets/")[0] + "datasets/" for f in files if re.search(r"(^|/)datasets/", f)})
    out["no_datasets"] = (not data, "no datasets/ folder" if not data else f"{data[0]} is packed: leave the data out")
    events = [f for f in files if re.search(r"(^|/)runs/.+/events\.out\.tfevents\.", f)]
    out["tensorboard"] = (bool(events), f"{len(events)} TensorBoard event file(s) in runs/" if events else
                          "no TensorBoard event files under runs/")
    return out


def check_functions(root, time_limit):
    """course/checks.py on the student's code, in a subprocess: isolated from the grader's environment variables
    and user site (-I), in the submission's folder, its HOME a temporary one, stopped at the time limit."""
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "CUDA_VISIBLE_DEVICES": "",
           "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.TemporaryDirectory() as home:
        env.update(HOME=home, TMPDIR=home, TORCH_HOME=home, MPLCONFIGDIR=home)
        cmd = [sys.executable, "-I", os.path.join(HERE, "checks.py"), root, "--time-limit", str(time_limit)]
        try:
            r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                               timeout=time_limit * (len(CHECKS) + 1) + 60)
        except subprocess.TimeoutExpired:
            return {c: (False, f"stopped after {time_limit * (len(CHECKS) + 1) + 60:g} s: the code did not finish")
                    for c in CHECKS}
    line = next((ln for ln in reversed(r.stdout.splitlines()) if ln.startswith("CHECKS ")), None)
    if line is None:
        why = (r.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return {c: (False, f"the checks could not run: {why}") for c in CHECKS}
    return {c: tuple(v) for c, v in json.loads(line[len("CHECKS "):]).items()}


def grade(archive, work, time_limit):
    """-> (login, {column: (passed, message)}, note) for one archive."""
    login, _ = login_of(archive)
    if os.path.isdir(archive):
        folder = archive
    elif not re.search(r"\.(zip|tar\.gz|tgz)$", archive):
        return login, {}, (f"not graded: {os.path.basename(archive)} is not a .zip or .tar.gz archive (Python's "
                           "standard library reads no other): ask for one, or grade it by hand")
    else:
        folder = os.path.join(work, login)
        k = 2
        while os.path.exists(folder):
            folder = os.path.join(work, f"{login}-{k}")
            k += 1
        try:
            unpack(archive, folder)
        except Refused as e:
            return login, {}, f"refused: {e}"
    results = check_rules(folder, archive)
    results.update(check_functions(project_root(folder), time_limit))
    return login, results, ""


def total(results):
    return sum(int(results.get(c, (False,))[0]) for c in COLUMNS)


def write_outputs(out, graded, gradescope):
    os.makedirs(os.path.join(out, "feedback"), exist_ok=True)
    with open(os.path.join(out, "grades.csv"), "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["login", "archive"] + COLUMNS + ["total", "note"])
        for archive, login, results, note in graded:
            w.writerow([login, os.path.basename(archive.rstrip("/"))]
                       + [int(results.get(c, (False,))[0]) for c in COLUMNS]
                       + [total(results), note])
    for archive, login, results, note in graded:
        with open(os.path.join(out, "feedback", f"{login}.txt"), "w", encoding="utf-8") as fh:
            fh.write(f"{os.path.basename(archive.rstrip('/'))}: {total(results)} of {len(COLUMNS)}\n"
                     + (f"{note}\n" if note else ""))
            for c in COLUMNS:
                if c in results:
                    fh.write(f"{'PASS' if results[c][0] else 'FAIL'}  {c}: {results[c][1]}\n")
    if gradescope:  # Gradescope's autograder contract: one results.json for the one submission
        archive, login, results, note = graded[0]
        tests = [{"name": c, "score": int(results.get(c, (False,))[0]), "max_score": 1,
                  "output": results.get(c, (False, note))[1], "visibility": "visible"} for c in COLUMNS]
        with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as fh:
            json.dump({"score": sum(t["score"] for t in tests), "tests": tests,
                       **({"output": note} if note else {})}, fh, indent=2)


def submissions_in(paths):
    """The archives to grade: files as given; a folder's archives (or the folder itself, if it holds code)."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            inside = sorted(os.path.join(p, f) for f in os.listdir(p) if not f.startswith("."))
            files = [f for f in inside if os.path.isfile(f)]
            out += [p] if any(os.path.basename(f) in ("assignment_4a.py", "assignment_4b.py") for f in files) else files
        else:
            out.append(p)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description="Grade hand-ins: the sheet's rules and the written functions.")
    p.add_argument("submissions", nargs="*", help="archives (.zip, .tar.gz) or folders of them (default inside "
                                                   f"Gradescope: {GRADESCOPE}/submission)")
    p.add_argument("--out", default=None, help="where grades.csv and feedback/ go (default: grades/, or "
                                               f"{GRADESCOPE}/results inside Gradescope)")
    p.add_argument("--time-limit", type=float, default=TIME_LIMIT,
                   help="seconds each function check may take (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="submissions graded at once (default: the number of cores)")
    p.add_argument("--gradescope", action="store_true",
                   help="also write results.json in Gradescope's format (on by itself inside Gradescope)")
    args = p.parse_args(argv)
    inside = not args.submissions and os.path.isdir(os.path.join(GRADESCOPE, "submission"))
    paths = args.submissions or ([os.path.join(GRADESCOPE, "submission")] if inside else [])
    if not paths:
        p.error("give the archives to grade (or run inside Gradescope's container)")
    out = args.out or (os.path.join(GRADESCOPE, "results") if inside else "grades")
    missing = [s for s in paths if not os.path.exists(s)]
    if missing:
        p.error(f"{missing[0]} does not exist")
    if args.time_limit <= 0 or args.jobs < 1:
        p.error("--time-limit and --jobs must be positive")
    archives = submissions_in(paths)
    work = os.path.join(out, "work")
    os.makedirs(work, exist_ok=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        graded = list(pool.map(lambda a: (a, *grade(a, work, args.time_limit)), archives))
    write_outputs(out, graded, args.gradescope or inside)
    for archive, login, results, note in graded:
        print(f"{login:20s} {total(results):2d} / {len(COLUMNS)}" + (f"  {note}" if note else ""))
    print(f"wrote {os.path.join(out, 'grades.csv')} and {len(graded)} feedback file(s) in "
          f"{os.path.join(out, 'feedback')}")


if __name__ == "__main__":
    main()
