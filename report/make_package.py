"""Pack the submission: the code, My-Images/, the report and the TensorBoard event files, in one archive.

    python report/make_package.py --login jdoe           # -> cs587_jdoe_assignment3.zip (the sheet's name)
    python report/make_package.py --login jdoe --assignment 4 --format tar.gz   # -> cs587_jdoe_assignment4.tar.gz
    python report/make_package.py --login jdoe --with-checkpoints --out ~/submit

The sheet asks for `cs587_mylogin_assignment3.xxx` (zip, rar or gz) although this is assignment 4: the
default follows the sheet to the letter; --assignment 4 names it by its number. The report must carry the
student's name and ID (the sheet's "do not forget"): without them no archive is written, unless
--allow-no-name. What the report shows is judged by report/record.json alone, which make_report.py writes: the digests
of every file it read and of the report.md and report.pdf it wrote.

Packs: the scripts, vgg16.py, requirements, environment.yml, README, Makefile, tests/, bench/, docs/, My-Images/,
report/ (report.md, report.pdf, figures/, the saliency folders, these scripts), and from runs/ each run's
events.out.tfevents.*, config.json, metrics.json and val_predictions.csv. Never the datasets, caches, virtual
environments or (unless asked) checkpoints, nor hidden
files (.env, tokens), links to files outside the project, or stray weights and data files (.pt, .pth, .parquet
...). It lists what it packed, what it left out and why, and the archive's size. A report that does not describe
what would be packed (a run, map, photo or comments.md that changed, appeared or vanished since it was made, a
report.md or report.pdf that is not the one make_report.py wrote, or maps it found out of date) is refused, naming
each file and the commands that mend it, unless --allow-out-of-date.
"""
import argparse
import json
import os
import re
import sys
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from report import record  # noqa: E402 (report/record.py: what the report was built from)

ARCHIVE = "cs587_{login}_assignment{number}"   # + .zip or .tar.gz
SHEET_NUMBER = 3   # the sheet's archive name says assignment3 (a leftover from the previous year's sheet)
TOP_FILES = ["download_wikiart.py", "assignment_4a.py", "assignment_4b.py", "saliency_extras.py",
             "saliency_ground_truth.py", "vgg16.py",
             "requirements.txt", "requirements-dev.txt", "requirements-bench.txt", "environment.yml", "README.md",
             "Makefile", "pytest.ini", "setup.cfg", "ruff.toml",  # the tests' and benchmarks' settings too
             ".ci/run", ".ci/lowest.py", ".ci/constraints.txt"]  # the CI the README names, which some tests read
TREES = ["tests", "bench", "docs", "My-Images", "report"]        # packed whole, less what SKIP matches
CHECKPOINTS = re.compile(r"^(best|last)\.pt$")
BULKY = re.compile(r"\.(pt|pth|ckpt|parquet|safetensors|npz|h5)$", re.I)   # left out, and listed
WARN_MB, REFUSE_MB = 50, 250  # archive sizes: a warning above the first, refused above the second unless asked
SKIP = re.compile(r"(^|/)(__pycache__|\.pytest_cache|\.cache|\.ipynb_checkpoints)(/|$)|\.(pyc|zip|part|tmp)$"
                  r"|^tests/test_course_")  # the instructor's kit's tests: they need course/, which is not handed in
PER_IMAGE_FIGURE = re.compile(r"^report/saliency[^/]*/[^/]+_saliency\.png$")  # assignment_4b.py's, one per image
MY_IMAGES_OWN = {"boxes.csv", "expected.csv", "SOURCES.md", "README.md"}  # My-Images/ files that are not photos




def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Write the course's submission archive (no datasets, no caches).")
    p.add_argument("--login", required=True, help="your course login: the archive is "
                                                  "cs587_<login>_assignment<N>.<format>")
    p.add_argument("--assignment", type=int, default=SHEET_NUMBER,
                   help="N in the archive's name: the sheet says cs587_mylogin_assignment3 although this is "
                        "assignment 4, so 3 follows the sheet to the letter; 4 names it by its number (default: "
                        "%(default)s)")
    p.add_argument("--format", choices=["zip", "tar.gz"], default="zip", help="archive format (the sheet allows zip, "
                                                                              "rar or gz) (default: %(default)s)")
    p.add_argument("--allow-no-name", action="store_true",
                   help="write the archive even if the report lacks your name or student ID")
    p.add_argument("--out", default=".", help="folder the archive is written to (default: %(default)s)")
    p.add_argument("--root", default=ROOT, help="the repository to pack (default: %(default)s)")
    p.add_argument("--allow-large", action="store_true",
                   help=f"write the archive even above {REFUSE_MB} MB (course platforms usually refuse it)")
    p.add_argument("--allow-out-of-date", action="store_true",
                   help="write the archive even where the report does not describe what is packed: a file it read (a "
                        "run, a map, a photo, comments.md) changed, appeared or vanished since, report.md or "
                        "report.pdf is not the one make_report.py wrote, or its maps were out of date with My-Images/")
    p.add_argument("--with-checkpoints", action="store_true",
                   help="also pack each run's best.pt and last.pt (0.1 MB each for --train new; 302-456 MB for "
                        "--train fc or all)")
    args = p.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", args.login):
        p.error(f"--login {args.login!r}: use letters, digits, '.', '_' or '-' only")
    return args


def files_to_pack(root, with_checkpoints):
    """-> (sorted relative paths to pack, [(relative path, why it was left out)]). Packed: only what the assignment
    needs; never dotfiles (.env, tokens), links that lead outside the project, or stray weights and data files."""
    out, left = [f for f in TOP_FILES if os.path.isfile(os.path.join(root, f))], []
    real_root = os.path.realpath(root)

    def consider(rel, checkpoint_ok=False):
        path = os.path.join(root, rel)
        real = os.path.realpath(path)  # a link is judged by what it leads to
        target = os.path.relpath(real, real_root).replace(os.sep, "/")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in rel):
            left.append((rel.encode("unicode_escape").decode(), "a control character (a newline?) in its name"))
        elif any(part.startswith(".") for part in rel.split("/")):
            left.append((rel, "hidden file (may hold secrets)"))
        elif os.path.islink(path) and os.path.commonpath([real, real_root]) != real_root:
            left.append((rel, "link to a file outside the project"))
        elif not os.path.isfile(real):
            left.append((rel, "not a regular file (a link in a loop or to nothing, a pipe, a device)"))
        elif any(part.startswith(".") for part in target.split("/")):
            left.append((rel, f"link to the hidden file {target} (may hold secrets)"))
        elif BULKY.search(rel) and not (checkpoint_ok and CHECKPOINTS.match(os.path.basename(rel))):
            left.append((rel, "weights or data file (not needed to grade)"))
        elif PER_IMAGE_FIGURE.match(rel) and os.path.isfile(os.path.join(root, os.path.dirname(rel), "grid.png")):
            left.append((rel, "the same map as its row of grid.png: each map is packed once"))
        elif not SKIP.search(rel):
            out.append(rel)

    for tree in TREES:
        for dirpath, dirnames, files in os.walk(os.path.join(root, tree)):
            dirnames[:] = sorted(d for d in dirnames if not SKIP.search(d + "/"))
            for f in files:
                consider(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/"))
    for dirpath, _, files in os.walk(os.path.join(root, "runs")):
        for f in files:
            if record.RUN_FILES.match(f) or (with_checkpoints and CHECKPOINTS.match(f)):
                consider(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/"), with_checkpoints)
    return sorted(set(out)), sorted(left)


def main(argv=None):
    args = parse_args(argv)
    files, left = files_to_pack(args.root, args.with_checkpoints)
    for need, cmd in (("report/report.pdf", "python report/make_report.py"),
                      ("report/saliency/grid.png", "python assignment_4b.py")):
        if need not in files:
            print(f"warning: {need} is missing: run `{cmd}` first", file=sys.stderr)
    if not any(f.startswith("runs/") for f in files):
        print("warning: no TensorBoard runs in runs/: run `python assignment_4a.py` first", file=sys.stderr)
    made = record.read(args.root)
    if made is None and not args.allow_out_of_date:
        sys.exit("error: no report yet (report/record.json, which make_report.py writes beside report.md, is missing): "
                 "run `python report/make_report.py --name \"Your Name\" --student-id ID` first")
    if not own_comments(os.path.join(args.root, "report", "comments.md")):
        print("warning: report/comments.md still holds only the template's questions: the sheet asks for your own "
              "comments; write them under its headings, then run `python report/make_report.py` again",
              file=sys.stderr)
    if made is not None and not args.allow_no_name:
        check_name(made, args.root)
    for line in unmapped_photos(args.root, files):
        print(line, file=sys.stderr)
    stale = record.problem(args.root)
    if stale and not args.allow_out_of_date:
        sys.exit(f"error: the report does not describe what would be packed: {stale}; or pass --allow-out-of-date to "
                 "hand it in as it is")
    if made is None or stale:
        print(f"warning: packed with a report that may not describe it ({stale or 'no report/record.json'})",
              file=sys.stderr)
    total = sum(os.path.getsize(os.path.join(args.root, f)) for f in files)
    if total > REFUSE_MB * 1e6 and not args.allow_large:
        sys.exit(f"error: the archive would hold {total / 1e6:.0f} MB, more than course platforms take ({REFUSE_MB} MB "
                 "here): leave out checkpoints and large files, or pass --allow-large")
    if total > WARN_MB * 1e6:
        print(f"warning: the archive will hold {total / 1e6:.0f} MB; course platforms often refuse more than "
              f"{WARN_MB} MB", file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)
    base = ARCHIVE.format(login=args.login, number=args.assignment)
    path = os.path.join(args.out, f"{base}.{args.format}")
    prefix = base + "/"
    try:
        write_archive(path, args, files, prefix)
    except OSError as e:  # a file that vanished or could not be read, a full disk: no half archive left behind
        if os.path.exists(path + ".tmp"):
            os.remove(path + ".tmp")
        sys.exit(f"error: could not write {path} ({e.strerror or e}: {e.filename}); nothing was written")
    os.replace(path + ".tmp", path)
    print(f"wrote {path}: {len(files)} files, {os.path.getsize(path) / 1e6:.1f} MB")
    if left:
        print(f"left out {len(left)} file(s):")
        for rel, why in left:
            print(f"  {rel}  ({why})")


def unmapped_photos(root, files):
    """-> notes naming what is packed from My-Images/ but has no map: files assignment_4b.py did not list as images
    (notes.txt), and images it skipped as unreadable (from report/saliency/settings.json, as it last ran)."""
    try:
        with open(os.path.join(root, "report", "saliency", "settings.json"), encoding="utf-8") as fh:
            settings = json.load(fh)
    except (OSError, ValueError):
        return []
    if not isinstance(settings, dict) or "listed" not in settings:  # written before 4b recorded what it listed
        return []
    names = [f.split("/", 1)[1] for f in files if f.startswith("My-Images/") and f.count("/") == 1]
    listed, skipped = set(settings.get("listed") or []), set(settings.get("skipped_files") or [])
    other = [n for n in names if n not in listed and n not in MY_IMAGES_OWN]
    broken = [n for n in names if n in skipped]
    return ([f"note: packed from My-Images/ but not an image assignment_4b.py maps: {', '.join(other)}"] if other
            else []) + ([f"note: packed from My-Images/ but skipped by assignment_4b.py as unreadable: "
                         f"{', '.join(broken)}"] if broken else [])


def own_comments(path):
    """Whether comments.md holds words of the student's: text outside its <!-- --> guidance and headings (True
    where there is no such file: nothing to warn of before the report writes the template)."""
    try:
        text = open(path, encoding="utf-8").read()
    except OSError:
        return True
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    return any(ln.strip() and not ln.lstrip().startswith("#") for ln in text.splitlines())


def check_name(made, root):
    """The sheet's "do not forget": the name and ID the report was made with, and the PDF the grader reads shows the
    name on its first page (a font without the name's letters leaves a blank there)."""
    missing = [w for w, k in (("name", "name"), ("student ID", "student_id")) if not str(made.get(k) or "").strip()]
    if missing:
        sys.exit(f"error: the report has no {' and no '.join(missing)} (the sheet asks for both): run `python "
                 "report/make_report.py --name \"Your Name\" --student-id ID`, or pass --allow-no-name")
    pdf = os.path.join(root, "report", "report.pdf")
    if "report/report.pdf" not in made.get("outputs", {}) or not os.path.isfile(pdf):
        return
    from pypdf import PdfReader
    try:
        text = " ".join(PdfReader(pdf).pages[0].extract_text().split())
    except Exception as e:  # noqa: BLE001 - an unreadable PDF is refused like one without the name
        sys.exit(f"error: {pdf} cannot be read ({e.__class__.__name__}): run `python report/make_report.py` again")
    if " ".join(made["name"].split()) not in text:
        sys.exit(f"error: {pdf} does not show your name {made['name']!r} on its first page (its font lacks some of "
                 "the letters?): run `python report/make_report.py` again and read its message")


def write_archive(path, args, files, prefix):
    """The archive under path + '.tmp', each file listed as it is packed."""
    if args.format == "zip":
        # strict_timestamps=False: a file dated before 1980 (some unpackers date files 1970) is stored as 1980
        with zipfile.ZipFile(path + ".tmp", "w", zipfile.ZIP_DEFLATED, strict_timestamps=False) as z:
            for f in files:
                # checkpoints, images and PDFs do not compress: store them, which is also much faster
                stored = f.lower().endswith((".pt", ".png", ".jpg", ".jpeg", ".pdf", ".gif", ".webp"))
                z.write(os.path.join(args.root, f), prefix + f, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
                print(f"  {os.path.getsize(os.path.join(args.root, f)) / 1e3:10.1f} kB  {f}")
    else:
        with tarfile.open(path + ".tmp", "w:gz") as t:
            for f in files:
                t.add(os.path.realpath(os.path.join(args.root, f)), prefix + f, recursive=False)
                print(f"  {os.path.getsize(os.path.join(args.root, f)) / 1e3:10.1f} kB  {f}")


if __name__ == "__main__":
    main()
