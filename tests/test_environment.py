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
    ours = {os.path.splitext(os.path.basename(p))[0] for p in SCRIPTS} | {"conftest"}
    stdlib = set(sys.stdlib_module_names)
    needed = {p: {DISTRIBUTION.get(m, m).lower() for m in imports(p)} - stdlib - ours
              for p in SCRIPTS if "bench" not in p}
    runtime = set(requirements("requirements.txt"))
    for path, dists in needed.items():
        assert dists <= runtime, f"{os.path.relpath(path, ROOT)} imports {sorted(dists - runtime)}"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: os.path.relpath(p, ROOT))
def test_no_script_imports_a_unix_only_module_at_the_top(path):
    """Catches: `import resource` at the top of a script, which stops it on Windows before it does anything."""
    assert not set(imports(path, top_level_only=True)) & UNIX_ONLY
