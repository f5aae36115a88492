"""Which hand-ins share their written code: the functions the sheet asks for, compared pairwise with copydetect's
winnowing (the algorithm of MOSS: fingerprints of k-token runs, names and literals folded, so renamed variables still
match), the handout's own code taken as boilerplate (it scores nothing). A ranked list for a TA to read, not a verdict.

    python course/similarity.py grades/work --out grades/similarity     # after course/grade.py: its unpacked hand-ins

Writes <out>/pairs.csv (every pair, most similar first) and <out>/pairs.html (the top pairs, the shared code marked).
"""
import argparse
import ast
import csv
import html
import io
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPTS = ["assignment_4a.py", "assignment_4b.py"]
K, WINDOW = 25, 6      # copydetect's defaults: runs of 25 tokens, a fingerprint at least every 30 (25 + 6 - 1)
SHOWN = 20             # pairs drawn in the HTML


def marked_functions(root=ROOT):
    """The names of the functions the handout stubs (`Class.method` for a method), from the solution's markers."""
    sys.path.insert(0, HERE)
    import make_handout
    names = set()
    for f in make_handout.STUBBED:
        text = open(os.path.join(root, f), encoding="utf-8").read()
        lines = text.splitlines()
        names |= {make_handout.function_of(lines, start) for start, _, _, _ in make_handout.solution_blocks(text, f)}
    return sorted(names)


def written_code(folder, functions):
    """The source of the marked functions in a hand-in's scripts, one after another ("" where none is found)."""
    parts = []
    for f in SCRIPTS:
        try:
            text = open(os.path.join(folder, f), encoding="utf-8", errors="replace").read()
            tree = ast.parse(text)
        except (OSError, SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            children = [(node.name + "." + n.name, n) for n in node.body if isinstance(n, ast.FunctionDef)] \
                if isinstance(node, ast.ClassDef) else []
            if isinstance(node, ast.FunctionDef):
                children.append((node.name, node))
            parts += [ast.get_source_segment(text, n) or "" for name, n in children if name in functions]
    return "\n\n".join(parts)


def fingerprint(code, boilerplate=None):
    from copydetect import CodeFingerprint
    return CodeFingerprint("code.py", K, WINDOW, boilerplate=boilerplate, language="python", fp=io.StringIO(code))


def project_of(folder):
    """The folder of a hand-in that holds its scripts (the grader's rule), or None where there is none."""
    sys.path.insert(0, HERE)
    from grade import project_root
    root = project_root(folder)
    return root if any(os.path.isfile(os.path.join(root, f)) for f in SCRIPTS) else None


def handout_code(functions, root=ROOT):
    """The marked functions as the handout gives them (stubbed): the boilerplate."""
    sys.path.insert(0, HERE)
    import make_handout
    parts = []
    for f in make_handout.STUBBED:
        stub = make_handout.stubbed(open(os.path.join(root, f), encoding="utf-8").read(), f)
        parts.append(stub)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        for f, text in zip(make_handout.STUBBED, parts):
            with open(os.path.join(tmp, f), "w", encoding="utf-8") as fh:
                fh.write(text)
        return written_code(tmp, functions)


def compare_all(folders, functions, boilerplate_code):
    """-> [(name a, name b, similarity, tokens shared, slices a, slices b, code a, code b)], most similar first;
    similarity: the larger of the two shares of each side's written tokens found in the other."""
    from copydetect import compare_files
    import numpy as np
    boilerplate = np.array(sorted(fingerprint(boilerplate_code).hashes)) if boilerplate_code.strip() else None
    codes = {name: written_code(path, functions) for name, path in folders.items()}
    prints = {name: fingerprint(code, boilerplate) for name, code in codes.items() if code.strip()}
    names = sorted(prints)
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared, (sa, sb), (slices_a, slices_b) = compare_files(prints[a], prints[b])
            pairs.append((a, b, float(max(sa, sb)), int(shared), slices_a, slices_b, codes[a], codes[b]))
    return sorted(pairs, key=lambda p: (-p[2], p[0], p[1]))


def marked(code, slices):
    """HTML of code with the shared slices (character offsets) marked."""
    out, last = [], 0
    for start, end in sorted(zip(*slices)) if len(slices) and len(slices[0]) else []:
        start, end = max(int(start), last), int(end)
        out += [html.escape(code[last:start]), f"<mark>{html.escape(code[start:end])}</mark>"]
        last = max(last, end)
    return "".join(out + [html.escape(code[last:])])


def write(out, pairs):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "pairs.csv"), "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["a", "b", "similarity", "tokens_shared"])
        w.writerows([a, b, f"{s:.3f}", n] for a, b, s, n, *_ in pairs)
    rows = "".join(f"<h2>{html.escape(a)} ~ {html.escape(b)}: {s:.0%} ({n} tokens)</h2><table><tr><td><pre>"
                   f"{marked(ca, sla)}</pre></td><td><pre>{marked(cb, slb)}</pre></td></tr></table>"
                   for a, b, s, n, sla, slb, ca, cb in pairs[:SHOWN])
    with open(os.path.join(out, "pairs.html"), "w", encoding="utf-8") as fh:
        fh.write("<!doctype html><meta charset=utf-8><title>Similar hand-ins</title><style>td{vertical-align:top;"
                 "width:50%}pre{font-size:11px;white-space:pre-wrap}mark{background:#fd6}</style><h1>Hand-ins whose "
                 "written functions share code, most first</h1><p>Shared with the handout is left out. A lead to "
                 "read, not a verdict.</p>" + rows)


def main(argv=None):
    p = argparse.ArgumentParser(description="Rank pairs of hand-ins by the code their written functions share "
                                            "(copydetect's winnowing; the handout's code left out).")
    p.add_argument("folders", nargs="+", help="unpacked hand-ins, or folders of them (course/grade.py's <out>/work)")
    p.add_argument("--out", default="similarity", help="where pairs.csv and pairs.html go (default: %(default)s)")
    args = p.parse_args(argv)
    found = {}
    for given in args.folders:
        if not os.path.isdir(given):
            p.error(f"{given} is not a folder")
        children = [os.path.join(given, c) for c in sorted(os.listdir(given))] if project_of(given) != given else []
        for c in [c for c in children if os.path.isdir(c)] or [given]:
            root = project_of(c)
            if root:
                found[os.path.basename(c.rstrip("/"))] = root
    if len(found) < 2:
        p.error(f"found {len(found)} hand-in(s) with {' or '.join(SCRIPTS)}: nothing to compare")
    functions = marked_functions()
    pairs = compare_all(found, functions, handout_code(functions))
    write(args.out, pairs)
    for a, b, s, n, *_ in pairs[:10]:
        print(f"{s:6.0%}  {n:5d} tokens  {a} ~ {b}")
    print(f"wrote {os.path.join(args.out, 'pairs.csv')} ({len(pairs)} pairs) and pairs.html (the top {SHOWN})")


if __name__ == "__main__":
    main()
