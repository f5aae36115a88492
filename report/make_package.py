"""Pack the submission: the code, My-Images/, the report and the TensorBoard event files, in one zip.

    python report/make_package.py --login jdoe           # -> cs587_jdoe_assignment4.zip
    python report/make_package.py --login jdoe --with-checkpoints --out ~/submit

Packs: the scripts, vgg16.py, requirements, README, Makefile, tests/, bench/, My-Images/, report/ (report.md,
report.pdf, figures/, saliency/, these scripts), and from runs/ each run's events.out.tfevents.*, config.json
and metrics.json. Never the datasets, caches, virtual environments or (unless asked) checkpoints.
It lists what it packed and the archive's size.
"""
import argparse
import os
import re
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHIVE = "cs587_{login}_assignment4.zip"
TOP_FILES = ["download_wikiart.py", "assignment_4a.py", "assignment_4b.py", "vgg16.py", "requirements.txt",
             "requirements-dev.txt", "README.md", "Makefile"]
TREES = ["tests", "bench", "My-Images", "report"]        # packed whole, less what SKIP matches
RUN_FILES = re.compile(r"^(events\.out\.tfevents\..*|config\.json|metrics\.json)$")
CHECKPOINTS = re.compile(r"^(best|last)\.pt$")
SKIP = re.compile(r"(^|/)(__pycache__|\.pytest_cache|\.cache|\.ipynb_checkpoints)(/|$)|\.(pyc|zip|part|tmp)$")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" to a flag's help, unless the help already says it or there is nothing to say."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Write the course's submission archive (no datasets, no caches).",
                                formatter_class=HelpFormatter)
    p.add_argument("--login", required=True, help="your course login: the archive is cs587_<login>_assignment4.zip")
    p.add_argument("--out", default=".", help="folder the archive is written to")
    p.add_argument("--root", default=ROOT, help="the repository to pack")
    p.add_argument("--with-checkpoints", action="store_true",
                   help="also pack each run's best.pt and last.pt (large: ~230 MB each for AlexNet)")
    args = p.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", args.login):
        p.error(f"--login {args.login!r}: use letters, digits, '.', '_' or '-' only")
    return args


def files_to_pack(root, with_checkpoints):
    """-> sorted relative paths."""
    out = [f for f in TOP_FILES if os.path.isfile(os.path.join(root, f))]
    for tree in TREES:
        for dirpath, dirnames, files in os.walk(os.path.join(root, tree)):
            dirnames[:] = sorted(d for d in dirnames if not SKIP.search(d + "/"))
            for f in files:
                rel = os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/")
                if not SKIP.search(rel):
                    out.append(rel)
    runs = os.path.join(root, "runs")
    for dirpath, _, files in os.walk(runs):
        for f in files:
            if RUN_FILES.match(f) or (with_checkpoints and CHECKPOINTS.match(f)):
                out.append(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/"))
    return sorted(set(out))


def main(argv=None):
    args = parse_args(argv)
    files = files_to_pack(args.root, args.with_checkpoints)
    for need, cmd in (("report/report.pdf", "python report/make_report.py"),
                      ("report/saliency/grid.png", "python assignment_4b.py")):
        if need not in files:
            print(f"warning: {need} is missing: run `{cmd}` first", file=sys.stderr)
    if not any(f.startswith("runs/") for f in files):
        print("warning: no TensorBoard runs in runs/: run `python assignment_4a.py` first", file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, ARCHIVE.format(login=args.login))
    prefix = f"cs587_{args.login}_assignment4/"
    with zipfile.ZipFile(path + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            # checkpoints, images and PDFs do not compress: store them, which is also much faster
            stored = f.lower().endswith((".pt", ".png", ".jpg", ".jpeg", ".pdf", ".gif", ".webp"))
            z.write(os.path.join(args.root, f), prefix + f, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
            print(f"  {os.path.getsize(os.path.join(args.root, f)) / 1e3:10.1f} kB  {f}")
    os.replace(path + ".tmp", path)
    print(f"wrote {path}: {len(files)} files, {os.path.getsize(path) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
