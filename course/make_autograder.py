"""Gradescope's autograder zip, as otter-grader builds one: setup.sh installs what the grader needs, run_autograder
grades /autograder/submission into /autograder/results/results.json, and the grader with its hidden checks travels
in course/ (no line of the solution: the references are PyTorch's own, computed in course/checks.py).

    python course/make_autograder.py --out autograder.zip     # upload it as the assignment's autograder

Gradescope unpacks a student's zip upload into /autograder/submission, with the project's files at the top or in one
folder: both are graded. Inside its container no user namespaces can be had, so the container is the boundary:
docs/course.md says what that means.
"""
import argparse
import os
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KIT = ["course/grade.py", "course/checks.py", "course/compare.py", "course/harness.py", "course/sandbox.py",
       "course/rubric.toml", "course/requirements.txt", "requirements.txt"]
SETUP = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder's image (Ubuntu, as root).
set -euo pipefail
apt-get update && apt-get install -y --no-install-recommends python3 python3-pip python3-venv
python3 -m venv /opt/grader
# the small CPU build of PyTorch first: the grader needs no GPU
/opt/grader/bin/pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu
/opt/grader/bin/pip install -r /autograder/source/course/requirements.txt
"""
RUN = """#!/usr/bin/env bash
# Gradescope runs this for every submission: /autograder/submission -> /autograder/results/results.json
set -euo pipefail
root="${GRADER_AUTOGRADER_ROOT:-/autograder}"
python="${GRADER_PYTHON:-/opt/grader/bin/python}"
exec "$python" "$root/source/course/grade.py"
"""


def make_autograder(out, root=ROOT):
    """Write the zip. -> its path."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for rel in KIT:
            z.write(os.path.join(root, rel), rel)
        for name, text in (("setup.sh", SETUP), ("run_autograder", RUN)):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o100755 << 16
            z.writestr(info, text)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description="Build Gradescope's autograder zip (setup.sh, run_autograder, the grader).")
    p.add_argument("--out", default="autograder.zip", help="the zip to write (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        path = make_autograder(os.path.abspath(args.out))
    except OSError as e:
        sys.exit(f"error: {e}")
    print(f"wrote {path}: upload it in Gradescope (Configure Autograder, zip file upload)")


if __name__ == "__main__":
    main()
