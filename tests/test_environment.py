"""The set-up files: what a fresh machine installs must be what the scripts import, on every platform."""
import ast
import glob
import os
import re
import sys

import pytest

from conftest import ROOT

# import name -> the distribution that provides it, where they differ
DISTRIBUTION = {"PIL": "pillow", "cv2": "opencv-python-headless", "fpdf": "fpdf2", "yaml": "pyyaml",
                "fontTools": "fonttools"}
UNIX_ONLY = {"resource", "fcntl", "termios", "pwd", "grp", "posix", "crypt", "tty", "pty"}
SCRIPTS = (glob.glob(os.path.join(ROOT, "*.py")) + glob.glob(os.path.join(ROOT, "report", "*.py"))
           + glob.glob(os.path.join(ROOT, "bench", "*.py")))


def requirements(name):
    """requirements.txt -> {distribution (lower case): version spec}."""
    out = {}
    for line in open(os.path.join(ROOT, name)):
        line = line.split("#")[0].strip()
        if line and not line.startswith("-r"):
            dist, spec = re.match(r"([A-Za-z0-9_.-]+)(.*)", line).groups()
            out[dist.lower()] = spec.strip()
    return out


def imports(path, top_level_only=False):
    tree = ast.parse(open(path, encoding="utf-8").read())
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split(".")[0]


def stdlib_of_this_python():
    """The standard library's top-level modules, found where this Python keeps them (Python 3.9)."""
    import pkgutil
    import sysconfig
    std = sysconfig.get_paths()["stdlib"]
    windows = {"msvcrt", "winreg", "winsound", "_winapi"}  # not on this disk when it is not Windows
    return set(sys.builtin_module_names) | windows | {m.name for m in pkgutil.iter_modules([std, os.path.join(std,
                                                                                                     "lib-dynload")])}


def test_environment_yml_installs_exactly_what_requirements_txt_names():
    """Catches: a package added to requirements.txt and forgotten in the Anaconda route the sheet names."""
    import yaml
    env = yaml.safe_load(open(os.path.join(ROOT, "environment.yml")))
    assert env["channels"] == ["conda-forge", "nodefaults"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "pip" in env["dependencies"] and any(str(d).startswith("python") for d in env["dependencies"])
    named = {re.match(r"([A-Za-z0-9_.-]+)(.*)", p).group(1).lower(): re.match(r"([A-Za-z0-9_.-]+)(.*)", p).group(2)
             for p in pip}
    assert named == requirements("requirements.txt")


def test_every_third_party_import_of_the_scripts_is_a_requirement():
    """Catches: a script that imports a package no set-up file installs (fine here, broken on a fresh laptop)."""
    ours = {os.path.splitext(os.path.basename(p))[0] for p in SCRIPTS} | {"conftest", "report"}  # report.stats ...
    stdlib = set(getattr(sys, "stdlib_module_names", ())) or stdlib_of_this_python()  # the attribute: Python >= 3.10
    needed = {p: {DISTRIBUTION.get(m, m).lower() for m in imports(p)} - stdlib - ours
              for p in SCRIPTS if "bench" not in p}
    runtime = set(requirements("requirements.txt"))
    for path, dists in needed.items():
        assert dists <= runtime, f"{os.path.relpath(path, ROOT)} imports {sorted(dists - runtime)}"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: os.path.relpath(p, ROOT))
def test_no_script_imports_a_unix_only_module_at_the_top(path):
    """Catches: `import resource` at the top of a script, which stops it on Windows before it does anything."""
    assert not set(imports(path, top_level_only=True)) & UNIX_ONLY


@pytest.mark.parametrize("script", ["assignment_4a", "assignment_4b", "download_wikiart"])
def test_a_package_older_than_its_bound_is_named_in_one_sentence(script, monkeypatch):
    """Catches: an Anaconda environment's urllib3 2.0 reaching the downloader and failing there as AttributeError
    ('HTTPResponse' object has no attribute 'read1'), or torchvision 0.15 failing as a TypeError that the student
    reads as a damaged weights file."""
    import importlib
    from importlib import metadata
    module = importlib.import_module(script)
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "2.0.0" if name == "urllib3" else real(name))
    with pytest.raises(SystemExit) as e:
        module.check_requirements()
    assert str(e.value).startswith('error: urllib3 2.0.0 is older than this project needs (urllib3>=2.2): '
                                   'pip install -U "urllib3>=2.2"')


def test_packages_at_their_bounds_pass(monkeypatch):
    """Catches: a bound compared as text ('2.10' < '2.9') or a local version label (+cu121) read as too old."""
    from importlib import metadata
    import assignment_4b
    bounds = {name.lower(): spec[2:] for name, spec in requirements("requirements.txt").items()}
    monkeypatch.setattr(metadata, "version", lambda name: bounds.get(name.lower(), "99") + "+cu121")
    assignment_4b.check_requirements()
    later = {"fpdf2": "2.10.0", "urllib3": "2.10.0"}  # newer than 2.7.6 and 2.2, older as text
    monkeypatch.setattr(metadata, "version", lambda name: later.get(name.lower(), "99"))
    assignment_4b.check_requirements()


def test_every_package_older_than_its_bound_is_named_past_one_not_installed(monkeypatch):
    """Catches: the check stopping at the first package that is not installed (torch, first in requirements.txt, in
    an environment still being set up), or at the first too-old one, so that the student upgrades one package, runs
    again, and learns of the next."""
    from importlib import metadata
    import assignment_4a

    def version(name):
        if name == "torch":
            raise metadata.PackageNotFoundError(name)
        return {"urllib3": "2.0.0", "tqdm": "4.0"}.get(name, "99")
    monkeypatch.setattr(metadata, "version", version)
    with pytest.raises(SystemExit) as e:
        assignment_4a.check_requirements()
    assert str(e.value).startswith('error: urllib3 2.0.0 and tqdm 4.0 are older than this project needs '
                                   '(urllib3>=2.2, tqdm>=4.66): pip install -U "urllib3>=2.2" "tqdm>=4.66" (or pip')


def test_the_lowest_leg_installs_the_bound_itself_when_it_is_a_release(monkeypatch):
    """Catches: .ci/lowest.py choosing the first release above the bound (> for >=): CI would never test the version
    requirements.txt promises. Pre-releases at the bound and releases below it are not chosen."""
    import importlib.util
    import subprocess
    import types
    spec = importlib.util.spec_from_file_location("ci_lowest", os.path.join(ROOT, ".ci", "lowest.py"))
    lowest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lowest)
    listed = "Available versions: 2.3.0, 2.2.1, 2.2, 2.2rc1, 2.1.0\n"
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: types.SimpleNamespace(returncode=0, stdout=listed,
                                                                                 stderr=""))
    assert lowest.lowest("urllib3", "2.2") == "2.2"
    assert lowest.lowest("urllib3", "2.2.0") == "2.2"
    assert lowest.lowest("urllib3", "2.2.1") == "2.2.1"


def test_no_markdown_table_of_the_docs_is_cut_in_two_by_a_blank_line():
    """Catches: a blank line inside a table (docs/robustness.md had one): Markdown then renders the rows after it as
    one paragraph of pipes."""
    for path in glob.glob(os.path.join(ROOT, "docs", "*.md")) + [os.path.join(ROOT, "README.md")]:
        lines = open(path, encoding="utf-8").read().split("\n")
        for i in range(1, len(lines) - 1):
            new_table = i + 2 < len(lines) and lines[i + 2].startswith("|-")  # a header row and its rule
            cut = not lines[i].strip() and lines[i - 1].startswith("|") and lines[i + 1].startswith("|") \
                and not new_table
            assert not cut, f"{os.path.relpath(path, ROOT)}:{i + 1}: a blank line inside a table"
