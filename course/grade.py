"""Grade the hand-ins: one archive per student, as the sheet names it (cs587_<login>_assignment3.zip).

    python course/grade.py hand-ins/ --out grades                  # every archive in a folder
    python course/grade.py a.zip b.tar.gz --out grades             # a regrade: the other rows of grades.csv stay
    python course/grade.py            # inside Gradescope's container: /autograder/submission -> /autograder/results

Each archive is unpacked safely into <out>/work/<archive>/ (no path outside that folder; symbolic links, devices and
FIFOs refused; a hard link to an earlier member unpacked as a copy; checkpoints *.pt skipped and named; at most
MAX_FILES files and MAX_MB megabytes, counted as they are written), then checked:
  the sheet's rules   archive_name, report (a name and an ID that are not blank), no_datasets, tensorboard;
  written_out         no library loss or optimizer where the sheet asks for the code written out (read, not run);
  the functions       loss, accuracy, sgd, surgery, tensorboard_scalars, saliency, each public and hidden: the
                      student's functions run in a sandbox (course/sandbox.py) on the grader's inputs and save only
                      their outputs; the grader computes every reference itself (course/checks.py) and compares.
Points per check come from course/rubric.toml. Writes <out>/grades.csv (one row per archive), <out>/feedback/
<archive>.txt, <out>/summary.png (the class's totals), and results.json in Gradescope's format (--gradescope, or
inside Gradescope). docs/course.md says what the sandbox guarantees on each system.
"""
import argparse
import csv
import json
import os
import re
import secrets
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import checks  # noqa: E402  (the grader's references and verdicts)
import sandbox  # noqa: E402

RULES = ["archive_name", "report", "no_datasets", "tensorboard"]
MAX_FILES, MAX_MB = 20_000, 500   # an archive beyond either is refused (a zip bomb, a dataset packed by mistake)
TIME_LIMIT = 10                   # seconds per function (public and hidden cases), the import of the script included
MEMORY_MB = 4096                  # address space of the student's process
GRADESCOPE = os.environ.get("GRADER_AUTOGRADER_ROOT", "/autograder")  # a test points this at a folder of its own
FORMATS = r"\.(zip|tar\.gz|tgz|gz|tar|rar)$"
PLACEHOLDERS = {"name", "student", "your name", "yourname", "firstname lastname", "first last", "id", "student id",
                "your id", "tbd", "todo", "n/a", "na", "none", "xxx", "xxxx"}


class Refused(Exception):
    """An archive that is not unpacked: the message says why."""


class GradeError(Exception):
    """A mistake in how the grader was called or configured: printed as one line."""


# ---- the rubric ----

def load_rubric(path):
    """-> (sheet number, {check: {"points": p, "hidden": bool}}) in the grader's column order."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise GradeError(f"the rubric {path} cannot be read: {e}") from None
    known = RULES + list(checks.PASSED) + ["written_out"]
    given = data.get("checks", {})
    unknown, missing = sorted(set(given) - set(known)), [c for c in known if c not in given]
    if unknown or missing:
        raise GradeError(f"the rubric {path} " + (f"names checks the grader does not have: {', '.join(unknown)}"
                                                  if unknown else f"lacks the checks {', '.join(missing)}"))
    for c, v in given.items():
        if not isinstance(v.get("points"), (int, float)) or v["points"] < 0:
            raise GradeError(f"the rubric {path}: checks.{c}.points must be a number >= 0")
    return int(data.get("sheet_number", 3)), {c: {"points": given[c]["points"], "hidden": bool(given[c].get("hidden"))}
                                              for c in known}


# ---- unpacking, safely ----

def login_of(path, sheet_number):
    """-> (login, how the name follows the sheet: "yes", "case" (letters' case differs) or "")."""
    name = os.path.basename(path.rstrip("/"))
    m = re.match(rf"^cs587_([A-Za-z0-9_.-]+?)_assignment{sheet_number}{FORMATS}", name, re.I)
    if m:
        return m.group(1), "yes" if re.match(rf"^cs587_.+_assignment{sheet_number}{FORMATS}", name) else "case"
    stem = re.sub(FORMATS, "", name, flags=re.I)
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem) or "unnamed", ""


def safe_member(name):
    """The member's path inside the unpack folder, or Refused: absolute, drive-lettered or climbing paths are."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise Refused(f"the archive holds the path {name!r}, which leads out of its folder")
    return "/".join(p for p in parts if p not in ("", "."))


class Unpacker:
    """Writes members into dest with the caps counted as bytes are written; remembers what it skipped."""

    def __init__(self, dest, max_files, max_mb):
        self.dest, self.files, self.bytes, self.max_files, self.max_mb = dest, max_files, max_mb * 2 ** 20, \
            max_files, max_mb
        self.skipped, self.written = [], {}

    def write(self, name, source):
        rel = safe_member(name)
        if not rel:
            return
        if rel.lower().endswith(".pt"):  # a checkpoint: not graded, and 0.1-460 MB each
            self.skipped.append(rel)
            return
        target = os.path.join(self.dest, rel)
        real = os.path.realpath(self.dest)
        if os.path.commonpath([os.path.realpath(os.path.dirname(target)), real]) != real:
            raise Refused(f"the archive's path {rel!r} leads out of its folder")
        self.files -= 1
        if self.files < 0:
            raise Refused(f"more than {self.max_files} files")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as out:
            while True:
                chunk = source.read(1 << 20)
                if not chunk:
                    break
                self.bytes -= len(chunk)
                if self.bytes < 0:
                    raise Refused(f"more than {self.max_mb} MB unpacked (checkpoints left out)")
                out.write(chunk)
        self.written[rel] = target


def unpack(path, dest, max_files=MAX_FILES, max_mb=MAX_MB):
    """Unpack a .zip, .tar(.gz), .tgz, .gz or .rar into dest, or raise Refused (dest removed again).
    -> the checkpoints left out."""
    u = Unpacker(dest, max_files, max_mb)
    os.makedirs(dest)
    try:
        lower = path.lower()
        if lower.endswith(".zip"):
            unpack_zip(path, u)
        elif lower.endswith(".rar"):
            unpack_rar(path, u)
        else:
            unpack_tar(path, u)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as e:
        shutil.rmtree(dest, ignore_errors=True)
        raise Refused(f"it cannot be read as an archive ({e.__class__.__name__}: {e})") from None
    except Refused:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return u.skipped


def unpack_zip(path, u):
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise Refused(f"the archive holds a link, {info.filename!r}")
            if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise Refused(f"the archive holds {info.filename!r}, which is not a file")
            if not info.is_dir():
                with z.open(info) as source:
                    u.write(info.filename, source)


def unpack_tar(path, u):
    with tarfile.open(path, "r:*") as t:
        for m in t:
            if m.issym():
                raise Refused(f"the archive holds a link, {m.name!r}")
            if m.islnk():  # a hard link: a copy of the member it names, if that one came before and was written
                rel = safe_member(m.linkname)
                if rel.lower().endswith(".pt") and m.name.lower().endswith(".pt"):
                    u.skipped.append(safe_member(m.name))
                    continue
                if rel not in u.written:
                    raise Refused(f"the archive holds a hard link, {m.name!r}, to {m.linkname!r}, which it does not "
                                  "hold before it")
                with open(u.written[rel], "rb") as source:
                    u.write(m.name, source)
            elif m.isfile():
                u.write(m.name, t.extractfile(m))
            elif not m.isdir():
                raise Refused(f"the archive holds {m.name!r}, which is not a file (a device or a FIFO)")


def unpack_rar(path, u):
    try:
        import rarfile
    except ImportError:
        raise Refused("a .rar archive needs the rarfile package: pip install -r course/requirements.txt") from None
    try:
        with rarfile.RarFile(path) as r:
            for info in r.infolist():
                if info.is_symlink():
                    raise Refused(f"the archive holds a link, {info.filename!r}")
                if not info.is_dir():
                    with r.open(info) as source:
                        u.write(info.filename, source)
    except rarfile.RarCannotExec:
        raise Refused("this .rar is compressed and needs a program to unpack it: install unrar, unar, 7-Zip or "
                      "bsdtar (libarchive-tools on Debian and Ubuntu), or ask for a .zip") from None
    except rarfile.Error as e:
        raise Refused(f"it cannot be read as a .rar archive ({e.__class__.__name__}: {e})") from None


def project_root(folder):
    """The folder inside the unpacked archive that holds assignment_4a.py (the sheet's archive has one top folder)."""
    for dirpath, dirnames, files in os.walk(folder):
        dirnames.sort()
        if "assignment_4a.py" in files or "assignment_4b.py" in files:
            return dirpath
    return folder


# ---- the sheet's rules ----

def report_pages(path):
    """The text of a PDF, DOCX or DOC report, as far as it can be read, with its line breaks."""
    if path.lower().endswith(".pdf"):
        from pypdf import PdfReader
        return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages[:3])
    if path.lower().endswith(".docx"):
        with zipfile.ZipFile(path) as z:
            xml = z.read("word/document.xml").decode("utf-8", "replace")
        return re.sub(r"<[^>]+>", "", re.sub(r"</w:p>", "\n", xml))
    data = open(path, "rb").read()  # .doc: its runs of text, in 8-bit or UTF-16
    return "\n".join([s.decode() for s in re.findall(rb"[\x20-\x7e]{3,}", data)]
                     + [s.decode("utf-16-le") for s in re.findall(rb"(?:[\x20-\x7e]\x00){3,}", data)])


def name_and_id(text):
    """-> (name, ID) as the report states them, each None where blank or a template's placeholder."""
    def real(value):
        value = (value or "").strip(" \t:-_.*|·,;")
        letters = re.sub(r"[\W_]", "", value)
        return value if letters and value.lower() not in PLACEHOLDERS and not re.fullmatch(r"[xX_.\-*?<>]+", value) \
            and not value.startswith("<") else None
    name = re.search(r"\bName\s*:[ \t]*(.*?)[ \t]*(?=(?:Student[ \t]+)?ID\s*:|[·|\n]|$)", text, re.I)
    student_id = re.search(r"\bID\s*:[ \t]*([^\s·|]*)", text, re.I)
    return real(name and name.group(1)), real(student_id and student_id.group(1))


def check_rules(folder, archive, sheet_number, uploaded=False):
    """The sheet's rules. uploaded: a folder Gradescope unpacked (the archive's own name is gone).
    -> {rule: (passed, message)}"""
    files = [os.path.relpath(os.path.join(d, f), folder).replace(os.sep, "/")
             for d, _, fs in os.walk(folder) for f in fs]
    want = f"cs587_<login>_assignment{sheet_number}.zip"
    tops = [e for e in os.listdir(folder) if not e.startswith(".")] if os.path.isdir(archive) else []
    if uploaded and len(tops) == 1 and os.path.isdir(os.path.join(folder, tops[0])):
        _, named = login_of(tops[0] + ".zip", sheet_number)
        out = {"archive_name": (bool(named), f"the upload's folder {tops[0]} " + (
            "is named as the sheet asks" if named else f"is not named as the sheet asks ({want})"))}
    elif uploaded:
        out = {"archive_name": (True, "Gradescope received the files themselves: there is no archive name to check")}
    else:
        _, named = login_of(archive, sheet_number)
        out = {"archive_name": (bool(named), {
            "yes": "named as the sheet asks", "case": f"named as the sheet asks, but in other letter case than {want}",
            "": f"{os.path.basename(archive.rstrip('/'))} is not named {want}"}[named])}
    reports = sorted(f for f in files if f.lower().endswith((".pdf", ".docx", ".doc")))
    shown = ""
    for f in reports:
        try:
            name, student_id = name_and_id(report_pages(os.path.join(folder, f)))
        except Exception as e:  # a damaged file, whatever pypdf raises for it: said, and the next report tried
            shown = f"{f} cannot be read ({e.__class__.__name__})"
            continue
        if name and student_id:
            out["report"] = (True, f"{f} shows a name and an ID")
            break
        shown = f"{f} shows no {'name' if not name else 'ID'} (the sheet asks for both, not blank)"
    else:
        out["report"] = (False, shown or "no report: a PDF or DOC file with your name and ID")
    data = sorted({f.split("datasets/")[0] + "datasets/" for f in files if re.search(r"(^|/)datasets/", f)})
    out["no_datasets"] = (not data, "no datasets/ folder" if not data else f"{data[0]} is packed: leave the data out")
    events = [f for f in files if re.search(r"(^|/)runs/.+/events\.out\.tfevents\.", f)]
    out["tensorboard"] = (bool(events), f"{len(events)} TensorBoard event file(s) in runs/" if events else
                          "no TensorBoard event files under runs/")
    return out


# ---- the functions: run in the sandbox, judged here ----

def check_functions(root, opts):
    """-> ({check: (passed, message)}, what the student's code printed). The student's functions run on a private copy
    of root; each function's cases in a process of their own; a harness that dies is started again for the rest."""
    import torch
    results, printed = {}, []
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        copy, out, inputs = os.path.join(tmp, "submission"), os.path.join(tmp, "out"), os.path.join(tmp, "inputs.pt")
        shutil.copytree(root, copy, symlinks=True)
        os.makedirs(out)
        shutil.copyfile(opts.inputs, inputs)  # its own: without a sandbox, a student could rewrite a shared one
        pending = list(checks.FUNCTIONS)
        while pending:
            text, timed_out = sandbox.run_harness(copy, inputs, out, pending, opts.time_limit, opts.memory_mb,
                                                  opts.sandbox)
            printed.append(text)
            for f in pending:
                path = os.path.join(out, f"{f}.pt")
                if os.path.isfile(path) and f not in results:
                    results[f] = load_result(path, torch)
            missing = [f for f in pending if f not in results]
            if missing:  # the harness itself ended: the check it was in is charged, the rest run again
                results[missing[0]] = {"error": "the whole grading process stopped during this check (" + (
                    "past its time limit" if timed_out else "killed, or a crash") + ")"}
            pending = missing[1:]
    return checks.verdicts(opts.cases, results), "".join(printed).strip()


def load_result(path, torch):
    """What the student's process saved: read as data only, and only if it is of a sane size."""
    if os.path.getsize(path) > 32 * 2 ** 20:
        return {"error": "the saved outputs are larger than 32 MB"}
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # whatever a damaged or forged file makes the unpickler raise: that check fails
        return {"error": f"the saved outputs cannot be read ({e.__class__.__name__})"}


def grade(archive, opts):
    """-> {"archive", "login", "results": {check: (passed, message)}, "note", "printed"} for one archive."""
    login, _ = login_of(archive, opts.sheet_number)
    row = {"archive": os.path.basename(archive.rstrip("/")), "login": login, "results": {}, "note": "",
           "printed": ""}
    if os.path.isdir(archive):
        folder = archive
    elif not re.search(FORMATS, archive, re.I):
        row["note"] = (f"not graded: {row['archive']} is not an archive the grader reads (.zip, .tar.gz, .tgz, .gz, "
                       ".tar, .rar): ask for one, or grade it by hand")
        return row
    else:
        folder = os.path.join(opts.work, row["archive"])
        shutil.rmtree(folder, ignore_errors=True)  # a regrade unpacks afresh
        try:
            skipped = unpack(archive, folder)
        except Refused as e:
            row["note"] = f"refused: {e}"
            return row
        if skipped:
            row["note"] = f"{len(skipped)} checkpoint(s) not unpacked ({', '.join(skipped[:3])}" + (
                ", ...)" if len(skipped) > 3 else ")")
    root = project_root(folder)
    results = check_rules(folder, archive, opts.sheet_number, uploaded=opts.inside and os.path.isdir(archive))
    results["written_out"] = checks.written_out(root)
    functions, row["printed"] = check_functions(root, opts)
    results.update(functions)
    row["results"] = results
    return row


# ---- what is written ----

def points(row, rubric):
    return sum(rubric[c]["points"] for c, (passed, _) in row["results"].items() if passed)


def fmt(x):
    return f"{x:g}"


def write_outputs(out, rows, rubric, gradescope, started):
    """grades.csv (rows of archives graded before and not now kept), feedback, results.json."""
    columns = list(rubric)
    header = ["login", "archive", "same_login"] + columns + ["total", "note"]
    path = os.path.join(out, "grades.csv")
    kept = []
    if os.path.exists(path):
        with open(path, newline="", encoding="utf-8") as fh:
            kept = [r for r in csv.DictReader(fh) if r.get("archive") not in {row["archive"] for row in rows}]
    new = [dict(zip(header, [row["login"], row["archive"], ""]
                    + [fmt(rubric[c]["points"] * row["results"][c][0]) if c in row["results"] else "0"
                       for c in columns] + [fmt(points(row, rubric)), row["note"]])) for row in rows]
    every = sorted(kept + new, key=lambda r: (r["login"], r["archive"]))
    logins = {}
    for r in every:
        logins.setdefault(r["login"], []).append(r["archive"])
    for r in every:
        others = [a for a in logins[r["login"]] if a != r["archive"]]
        r["same_login"] = " ".join(others)
    tmp = path + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, header, extrasaction="ignore", restval="")
        w.writeheader()
        w.writerows(every)
    os.replace(tmp, path)
    os.makedirs(os.path.join(out, "feedback"), exist_ok=True)
    most = fmt(sum(v["points"] for v in rubric.values()))
    for row in rows:
        with open(os.path.join(out, "feedback", row["archive"] + ".txt"), "w", encoding="utf-8") as fh:
            fh.write(f"{row['archive']}: {fmt(points(row, rubric))} of {most} points\n"
                     + (f"{row['note']}\n" if row["note"] else ""))
            for c in columns:
                if c in row["results"]:
                    passed, message = row["results"][c]
                    fh.write(f"{'PASS' if passed else 'FAIL'}  {c} ({fmt(rubric[c]['points'] * passed)}/"
                             f"{fmt(rubric[c]['points'])}): {message}\n")
            if row["printed"]:
                fh.write(f"\nWhat your code printed while it was checked (its first and last KB):\n{row['printed']}\n")
    if gradescope:
        write_gradescope(out, rows, rubric, time.time() - started)
    return every


def write_gradescope(out, rows, rubric, seconds):
    """Gradescope's results.json for the one submission: per test its score, max_score, status, output, visibility
    (hidden checks 'after_published'); the student's own prints are never shown."""
    row = rows[0]
    tests = []
    for c, v in rubric.items():
        passed, message = row["results"].get(c, (False, row["note"] or "not graded"))
        tests.append({"name": c, "score": v["points"] * passed, "max_score": v["points"], "output": message,
                      "status": "passed" if passed else "failed",
                      "visibility": "after_published" if v["hidden"] else "visible"})
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as fh:
        json.dump({"score": sum(t["score"] for t in tests), "execution_time": round(seconds, 1),
                   "stdout_visibility": "hidden", "tests": tests, **({"output": row["note"]} if row["note"] else {})},
                  fh, indent=2)


def summary(out, every, rubric):
    """Per check, how many passed; a histogram of the totals (summary.png). -> the lines printed."""
    n = len(every)
    lines = [f"{c:28s} {sum(float(r.get(c) or 0) > 0 for r in every):4d} of {n} passed"
             for c in rubric if rubric[c]["points"] > 0]
    totals = [float(r["total"] or 0) for r in every]
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        most = sum(v["points"] for v in rubric.values())
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.hist(totals, bins=[b - 0.5 for b in range(int(most) + 2)], color="#4c72b0", edgecolor="white")
        ax.set(xlabel=f"total points (of {fmt(most)})", ylabel="hand-ins", title=f"{n} hand-ins")
        fig.tight_layout()
        fig.savefig(os.path.join(out, "summary.png"), dpi=120)
        plt.close(fig)
        lines.append(f"the totals' histogram: {os.path.join(out, 'summary.png')}")
    except ImportError:
        lines.append("(no histogram: matplotlib is not installed)")
    return lines


def submissions_in(paths):
    """The archives to grade: files as given; a folder's archives (or the folder itself, if it holds code)."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            inside = sorted(os.path.join(p, f) for f in os.listdir(p) if not f.startswith("."))
            files = [f for f in inside if os.path.isfile(f)]
            code = any(os.path.basename(f) in ("assignment_4a.py", "assignment_4b.py") for f in files)
            dirs = [d for d in inside if os.path.isdir(d)]
            out += [p] if code else files + ([d for d in dirs if os.path.exists(os.path.join(d, "assignment_4a.py"))])
        else:
            out.append(p)
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Grade hand-ins: the sheet's rules and the written functions, each "
                                            "student's code in a sandbox. docs/course.md explains every check.")
    p.add_argument("submissions", nargs="*", help="archives (.zip, .tar.gz, .tgz, .gz, .tar, .rar), folders of them, "
                                                  f"or unpacked folders (default inside Gradescope: {GRADESCOPE}/"
                                                  "submission)")
    p.add_argument("--out", default=None, help="where grades.csv, feedback/ and summary.png go; an existing grades.csv"
                                               " keeps the rows of archives not graded now (default: grades, or "
                                               f"{GRADESCOPE}/results inside Gradescope)")
    p.add_argument("--rubric", default=os.path.join(HERE, "rubric.toml"),
                   help="points per check and which are hidden (default: course/rubric.toml)")
    p.add_argument("--time-limit", type=float, default=TIME_LIMIT,
                   help="seconds each function's checks may take, its script's import included (default: "
                        "%(default)s)")
    p.add_argument("--memory-mb", type=int, default=MEMORY_MB,
                   help="address space of the student's process, in MB (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1) // 2),
                   help="hand-ins graded at once (default: half the cores: each check uses one)")
    p.add_argument("--seed", type=int, default=None,
                   help="draws the hidden checks' inputs (default: a new one each run, printed at the end, so that no "
                        "hand-in can carry their answers; give it to repeat a run exactly)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run the student's code without bubblewrap where none can be had (macOS, Windows, a kernel "
                        "without user namespaces): it then runs with your rights; see docs/course.md")
    p.add_argument("--gradescope", action="store_true",
                   help="also write results.json in Gradescope's format (on by itself inside Gradescope)")
    return p, p.parse_args(argv)


def main(argv=None):
    p, args = parse_args(argv)
    inside = not args.submissions and os.path.isdir(os.path.join(GRADESCOPE, "submission"))
    paths = args.submissions or ([os.path.join(GRADESCOPE, "submission")] if inside else [])
    if not paths:
        p.error("give the archives to grade (or run inside Gradescope's container)")
    missing = [s for s in paths if not os.path.exists(s)]
    if missing:
        p.error(f"{missing[0]} does not exist")
    if args.time_limit <= 0 or args.jobs < 1 or args.memory_mb < 512:
        p.error("--time-limit and --jobs must be positive, --memory-mb at least 512")
    try:
        run(args, inside, paths)
    except GradeError as e:
        sys.exit(f"error: {e}")


def run(args, inside, paths):
    started = time.time()
    args.sheet_number, rubric = load_rubric(args.rubric)
    args.sandbox = not args.no_sandbox
    why = sandbox.available() if args.sandbox else "--no-sandbox"
    if why and inside:
        print(f"no sandbox ({why}): inside Gradescope's container, the container is the boundary")
        args.sandbox = False
    elif why and args.sandbox:
        raise GradeError(f"the student's code would run without a sandbox: {why}. Grade on Linux with bubblewrap, or "
                         "pass --no-sandbox to run it with your rights (docs/course.md)")
    out = os.path.abspath(args.out or (os.path.join(GRADESCOPE, "results") if inside else "grades"))
    paths = [os.path.abspath(s) for s in paths]
    archives = submissions_in(paths)
    if inside:  # Gradescope unpacks a zip upload into the submission folder (flat, or one top folder); else an archive
        entries = [e for e in os.listdir(paths[0]) if not e.startswith(".")]
        archives = [os.path.join(paths[0], entries[0]) if len(entries) == 1 and re.search(FORMATS, entries[0], re.I)
                    and os.path.isfile(os.path.join(paths[0], entries[0])) else paths[0]]
    args.inside = inside
    args.work = os.path.join(out, "work")
    os.makedirs(args.work, exist_ok=True)
    args.seed = secrets.randbelow(2 ** 31) if args.seed is None else args.seed
    args.cases = checks.cases(args.seed)
    with tempfile.TemporaryDirectory(prefix="grade-inputs-") as tmp:
        import torch
        args.inputs = os.path.join(tmp, "inputs.pt")
        torch.save(checks.inputs_of(args.cases), args.inputs)
        os.chmod(tmp, 0o755)
        os.chmod(args.inputs, 0o644)
        with ThreadPoolExecutor(args.jobs) as pool:
            rows = list(pool.map(lambda a: grade(a, args), archives))
    every = write_outputs(out, rows, rubric, args.gradescope or inside, started)
    most = fmt(sum(v["points"] for v in rubric.values()))
    for row in rows:
        print(f"{row['login']:20s} {fmt(points(row, rubric)):>5s} / {most}" + (f"  {row['note']}" if row["note"]
                                                                               else ""))
    print("\n".join(summary(out, every, rubric)))
    print(f"wrote {os.path.join(out, 'grades.csv')} ({len(every)} rows, {len(rows)} graded now) and the feedback in "
          f"{os.path.join(out, 'feedback')}; {'sandboxed' if args.sandbox else 'NOT sandboxed'}; hidden inputs "
          f"of --seed {args.seed}; {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
