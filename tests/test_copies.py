"""One idea, one copy. The graded scripts are standalone (the sheet's layout): assignment_4a.py and
download_wikiart.py carry their own copy of each helper that vgg16.py holds for assignment_4b.py, copied whole. These
tests find every name defined in more than one of them by reading the files, so a copy is checked from the day it is
written; the files that are not graded scripts (the report, the extras, the benchmark) import instead of copying."""
import ast
import functools
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STANDALONE = ["assignment_4a.py", "assignment_4b.py", "vgg16.py", "download_wikiart.py"]
IMPORTERS = ["saliency_extras.py", "saliency_ground_truth.py", "report/make_report.py", "report/make_package.py",
             "report/render.py", "report/stats.py", "report/runs.py", "report/part1.py", "report/part2.py",
             "report/comments.py", "report/record.py"]
# names each file has for itself, on purpose: the same word, another thing
OWN = {"main": "each script's own recipe", "parse_args": "each script's own flags",
       "check_args": "each script's own checks of its flags",
       "ROOT": "where each file finds the project (report/ sits one folder down)",
       "OUT_DIR": "where each script writes by default",
       "BATCH_SIZE": "images per SGD step (4a), images per saliency pass (4b)"}
# the benchmark trains its own small model on planted evidence: its training settings are not Part 1's
OWN_IN = {"saliency_ground_truth.py": {"EPOCHS", "LR", "SEED", "accuracy"}}


@functools.lru_cache(maxsize=None)
def top_level(path):
    """-> {name: its definition as code (comments and layout aside: ast.unparse)} for the functions, classes and
    assigned names at the top of a file."""
    src = open(os.path.join(ROOT, path), encoding="utf-8").read()
    out = {}
    for node in ast.parse(src).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, ast.Assign):
            names = [n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        else:
            continue
        for name in names:
            out[name] = ast.unparse(node)
    return out


def shared_names():
    defs = {f: top_level(f) for f in STANDALONE}
    return sorted({n for f in STANDALONE for n in defs[f] if sum(n in d for d in defs.values()) > 1} - set(OWN))


def test_the_copies_are_found_by_reading_the_files():
    """Catches: a discovery that finds nothing (and so checks nothing), or misses assignments and classes."""
    assert {"open_rgb", "check_requirements", "DAMAGED_IMAGE", "IMAGE_EXTENSIONS", "is_training_checkpoint",
            "RunError", "PRECISIONS", "pyplot"} <= set(shared_names())


@pytest.mark.parametrize("name", shared_names())
def test_every_name_the_graded_scripts_share_is_one_copy(name):
    """Catches: a copy that drifted (decoding that differs between training and saliency, a damaged image skipped by
    one script and fatal in another, a device chosen differently, a checkpoint told apart differently)."""
    copies = {f: d[name] for f in STANDALONE for d in [top_level(f)] if name in d}
    assert len(set(copies.values())) == 1, f"{name} differs between {', '.join(copies)}"


@pytest.mark.parametrize("path", IMPORTERS)
def test_files_that_are_not_graded_scripts_import_rather_than_hold_a_one_copy(path):
    """Catches: the report retyping 4a's crop size, a folder, or a figure helper (a fourth pyplot) instead of
    importing it, so that a change to the script leaves the report behind."""
    owned = {n for f in STANDALONE for n in top_level(f)}
    again = sorted(set(top_level(path)) & owned - set(OWN) - OWN_IN.get(path, set()))
    assert not again, f"{path} defines {again}, which a graded script defines: import them"
