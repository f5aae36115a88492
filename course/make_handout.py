"""The student's folder, generated from this solution: the graded scripts with every `# BEGIN SOLUTION` ...
`# END SOLUTION` block replaced by a stub that names the sheet's step and raises NotImplementedError, the files the
sheet hands out as they are, the public tests of the functions to write, and a README with the tasks.

    python course/make_handout.py --out ../handout          # a folder to zip and hand out
    python course/make_handout.py --out ../handout --force  # replace an earlier handout there

What goes in is the list HANDOUT below (edit it); never the report's generated answers (report/), the extras, the
benchmarks, the instructor's kit (course/) or this repository's own tests. The handout's scripts run up to their
first stub and stop there with the step's sentence: `python assignment_4a.py` prints, for example,
"not written yet: Part 1, step 4, the head surgery: ...".
"""
import argparse
import ast
import os
import re
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HANDOUT = [  # paths relative to the repository, folders ending in /: what the student gets
    "download_wikiart.py", "assignment_4a.py", "assignment_4b.py", "vgg16.py", "My-Images/", "runs/README.md",
    "requirements.txt", "environment.yml",
]
STUBBED = ["assignment_4a.py", "assignment_4b.py"]  # the files whose marked blocks the student writes
# the public tests: the code that runs the student's functions and judges their outputs, never a reference; the
# expected outputs go in tests/expected.pt, computed here by the grader's references (course/checks.py)
PUBLIC_TESTS = {"course/harness.py": "tests/harness.py", "course/compare.py": "tests/compare.py",
                "course/public_tests.py": "tests/test_your_functions.py"}
MARKER = ".made-by-make_handout"  # in every handout: --force replaces only a folder that holds it
BEGIN = re.compile(r"^(\s*)# BEGIN SOLUTION(?::\s*(.*))?\s*$")  # the sentence may follow; nbgrader's bare marker too
END = re.compile(r"^(\s*)# END SOLUTION\s*$")
MAIN = 'if __name__ == "__main__":\n    main()\n'
MAIN_STOPS_AT_A_STUB = '''if __name__ == "__main__":
    try:
        main()
    except NotImplementedError as e:  # a step of the sheet that is yours to write: see the README
        sys.exit(f"not written yet: {e}")
'''


class HandoutError(Exception):
    """A marked block the handout cannot be made from: the message names the file and line."""


def solution_blocks(text, path):
    """-> [(first line, last line, indent, the step's sentence)] of the file's marked blocks, markers included
    (0-based line numbers)."""
    lines, blocks, i = text.splitlines(), [], 0
    while i < len(lines):
        begin = BEGIN.match(lines[i])
        if END.match(lines[i]):
            raise HandoutError(f"{path}:{i + 1}: # END SOLUTION without a # BEGIN SOLUTION before it")
        if not begin:
            i += 1
            continue
        indent, sentence, start = begin.group(1), [(begin.group(2) or "").strip()], i
        i += 1
        while i < len(lines) and lines[i].startswith(indent + "#   "):  # the sentence goes on
            sentence.append(lines[i][len(indent) + 4:].strip())
            i += 1
        while i < len(lines) and not END.match(lines[i]):
            if BEGIN.match(lines[i]):
                raise HandoutError(f"{path}:{i + 1}: a # BEGIN SOLUTION inside the block opened at line {start + 1}")
            i += 1
        if i == len(lines):
            raise HandoutError(f"{path}:{start + 1}: # BEGIN SOLUTION without its # END SOLUTION")
        if END.match(lines[i]).group(1) != indent:
            raise HandoutError(f"{path}:{i + 1}: # END SOLUTION indented unlike its # BEGIN SOLUTION (line "
                               f"{start + 1})")
        blocks.append((start, i, indent, " ".join(sentence).strip() or docstring_above(lines, start, path)))
        i += 1
    return blocks


def docstring_above(lines, start, path):
    """The sentence of a bare `# BEGIN SOLUTION` (nbgrader's form): the first line of its function's docstring."""
    function = function_of(lines, start)
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        tree = None
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno <= start + 1 <= node.end_lineno \
                and function.split(".")[-1] == node.name and ast.get_docstring(node):
            return f"{function}: " + ast.get_docstring(node).strip().splitlines()[0]
    raise HandoutError(f"{path}:{start + 1}: a bare # BEGIN SOLUTION needs its function's docstring (or the step's "
                       "sentence after '# BEGIN SOLUTION: ') to tell the student what to write")


def stubbed(text, path):
    """The file with each marked block replaced by `raise NotImplementedError(<its sentence>)`, and its main made to
    stop at a stub with that sentence instead of a traceback."""
    lines = text.splitlines()
    blocks = solution_blocks(text, path)
    if not blocks:
        raise HandoutError(f"{path}: no # BEGIN SOLUTION block: nothing for the student to write")
    for start, end, indent, sentence in reversed(blocks):
        lines[start:end + 1] = [f"{indent}raise NotImplementedError({sentence!r})  # yours to write: see the README"]
    out = "\n".join(lines) + "\n"
    if MAIN not in out:
        raise HandoutError(f"{path}: no `{MAIN.splitlines()[0]}` block ending the file with main()")
    return out.replace(MAIN, MAIN_STOPS_AT_A_STUB)


def readme(tasks):
    """The student's README: the tasks as the sheet gives them, each with its file and function, and the commands."""
    rows = "\n".join(f"| `{path}` | `{function}` | {sentence} |" for path, function, sentence in tasks)
    return f"""# Assignment 4: transfer learning and saliency maps

**Part 1.** Fine-tune an ImageNet-pretrained AlexNet on 10 WikiArt painting styles: remove its last FC layer (or
the last two) and add a new FC layer (step 4); write the loss, the gradient-descent optimisation and the accuracy
(step 3); watch the training loss, the train accuracy and the validation accuracy in TensorBoard (step 5).
**Part 2.** Image-specific class saliency maps (Simonyan, Vedaldi, Zisserman 2014, section 3.1) from a pretrained
VGG-16 for every image in `My-Images/`: the forward pass, the class scores, a one-hot derivative for the class C at
the score layer, and the back-propagation to the pixels (steps 1-4); the map is the maximum over the colour channels
of the absolute gradient.

## What you write

Each of these raises `NotImplementedError` until you replace that line with your code; the function's docstring
and the comments around it say what it receives and returns.

| file | function | the task |
|---|---|---|
{rows}

## How to run it

```bash
python -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt pytest   # once
python -m pytest tests          # the public tests of the functions above: each passes once its function is right
python download_wikiart.py      # the WikiArt subset -> datasets/wikiart/
python assignment_4a.py --remove 1 --train new     # Part 1; --help lists every flag
tensorboard --logdir runs       # the training loss, train and validation accuracy: http://localhost:6006
python assignment_4b.py         # Part 2: maps of My-Images/ -> report/saliency/
```

A script stops at the first function you have not written yet and names it. The public tests run your functions on
small fixed inputs and compare what they return with the outputs of the reference solution (`tests/expected.pt`).
The grader runs these cases and hidden ones of its own (other sizes, logits of +-1000, a learning rate that changes
at every step), and reads your scripts for library calls where the sheet asks for the code written out
(`F.cross_entropy`, `nn.CrossEntropyLoss`, `torch.optim`). Hand in, as the sheet says, one archive
`cs587_<login>_assignment3.zip` with your code, your report (PDF or DOC) with your name and ID, and your TensorBoard
summaries (`runs/`), without the dataset.
"""


def function_of(lines, start):
    """The name of the function a marked block at line `start` is in: the nearest def above it, with its class
    (`SGD.step`) where it is a method."""
    for k in range(start - 1, -1, -1):
        m = re.match(r"(\s*)def (\w+)", lines[k])
        if m:
            indent = len(m.group(1))
            for line in reversed(lines[:k]):
                c = re.match(r"(\s*)class (\w+)", line)
                if c and len(c.group(1)) < indent:
                    return f"{c.group(2)}.{m.group(2)}"
                if line.strip() and len(line) - len(line.lstrip()) < indent and not line.lstrip().startswith(
                        ("#", "@", '"', "'")) and not c:
                    break
            return m.group(2)
    return "?"


def make_handout(out, root=ROOT, force=False):
    """Write the handout into `out`. -> the files written, relative to out."""
    out, root = os.path.realpath(out), os.path.realpath(root)
    if os.path.commonpath([out, root]) in (out, root):
        raise HandoutError(f"--out {out} " + ("is inside the solution's repository" if out.startswith(root) else
                                              "holds the solution's repository") + ": give a folder outside it")
    if os.path.exists(out):
        if not force:
            raise HandoutError(f"--out {out} exists: give a new folder, or --force to replace it")
        if not os.path.isfile(os.path.join(out, MARKER)):
            raise HandoutError(f"--out {out} exists and was not made by make_handout.py (no {MARKER} in it): "
                               "--force replaces only a handout; remove it yourself or give a new folder")
        shutil.rmtree(out)
    written, tasks = [], []
    for rel in HANDOUT:
        src = os.path.join(root, rel)
        if rel.endswith("/"):
            for dirpath, dirnames, files in os.walk(src):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
                for f in sorted(files):
                    if f.startswith("."):
                        continue
                    written.append(copy(os.path.join(dirpath, f), out, os.path.relpath(os.path.join(dirpath, f), root)))
            continue
        if rel in STUBBED:
            text = open(src, encoding="utf-8").read()
            lines = text.splitlines()
            tasks += [(rel, function_of(lines, start), sentence)
                      for start, _, _, sentence in solution_blocks(text, rel)]
            os.makedirs(os.path.dirname(os.path.join(out, rel)) or out, exist_ok=True)
            with open(os.path.join(out, rel), "w", encoding="utf-8") as fh:
                fh.write(stubbed(text, rel))
            written.append(rel)
        else:
            written.append(copy(src, out, rel))
    for src, dst in PUBLIC_TESTS.items():
        written.append(copy(os.path.join(root, src), out, dst))
    written.append(write_expected(out))
    with open(os.path.join(out, MARKER), "w", encoding="utf-8") as fh:
        fh.write("This folder was written by course/make_handout.py; --force may replace it.\n")
    with open(os.path.join(out, "README.md"), "w", encoding="utf-8") as fh:
        fh.write(readme(tasks))
    written.append("README.md")
    return written


def write_expected(out):
    """tests/expected.pt: the public cases and their expected outputs, computed now by the grader's references."""
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import checks
    public = {f: [(case, want) for group, case, want in rows if not group.endswith("_hidden")]
              for f, rows in checks.cases().items()}
    torch.save(public, os.path.join(out, "tests", "expected.pt"))
    return "tests/expected.pt"


def copy(src, out, rel):
    dst = os.path.join(out, rel)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(src, dst)
    return rel


def main(argv=None):
    p = argparse.ArgumentParser(description="Generate the student's handout from this solution.")
    p.add_argument("--out", required=True, help="the folder to write the handout into (must not exist, or --force)")
    p.add_argument("--force", action="store_true", help="replace --out if it is an earlier handout (a folder this "
                                                        "script made; any other folder is refused)")
    args = p.parse_args(argv)
    try:
        written = make_handout(os.path.abspath(args.out), ROOT, args.force)
    except (HandoutError, OSError) as e:
        sys.exit(f"error: {e}")
    tops = sorted({w.split("/")[0] for w in written})
    print(f"wrote the handout, {len(written)} files, to {args.out}: {', '.join(tops)}")


if __name__ == "__main__":
    main()
