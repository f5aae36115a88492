"""The instructor's kit, piece by piece: the handout (markers, stubs, public tests on stored outputs, --force), the
unpacking of hostile and ordinary archives, the report rule, the rubric, the written-out scan, the sandbox's limits
and the similarity ranking."""
import ast
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "course"))
import checks  # noqa: E402
import grade  # noqa: E402
import make_handout  # noqa: E402
import sandbox  # noqa: E402
import similarity  # noqa: E402


def test_the_markers_change_nothing_the_solution_runs():
    """Catches: a marker that is not a comment, or a block left open: the solution must run as if unmarked."""
    for f in make_handout.STUBBED:
        text = open(os.path.join(ROOT, f), encoding="utf-8").read()
        assert len(make_handout.solution_blocks(text, f)) >= 2
        unmarked = "\n".join(ln for ln in text.splitlines() if not re.match(r"\s*# (BEGIN|END) SOLUTION|\s*#   ", ln))
        assert ast.dump(ast.parse(unmarked)) == ast.dump(ast.parse(text))


@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    out = tmp_path_factory.mktemp("h") / "handout"
    make_handout.make_handout(str(out))
    return out


def test_no_handout_file_holds_a_solution_line_or_a_reference(handout):
    """Catches: a marked block copied into the handout, the grader's references (F.cross_entropy, torch.optim.SGD,
    the saliency by autograd) in its tests, or a file the student must not get."""
    inside, elsewhere = [], ""
    for f in make_handout.STUBBED:
        text = open(os.path.join(ROOT, f), encoding="utf-8").read()
        lines = text.splitlines()
        marked = {i for start, end, _, _ in make_handout.solution_blocks(text, f) for i in range(start + 1, end)}
        inside += [lines[i].split("#")[0].strip() for i in marked]
        elsewhere += "\n".join(ln for i, ln in enumerate(lines) if i not in marked)
    solution = [code for code in inside if len(code) > 12 and code not in elsewhere]  # the blocks' own lines
    assert len(solution) >= 20
    for p in handout.rglob("*.py"):
        given = p.read_text()
        assert not [code for code in solution if code in given], p
        assert "SOLUTION" not in given, p
        if p.parent.name == "tests":  # the public tests run the functions and compare; they compute no reference
            assert not re.search(r"functional\.cross_entropy\(|CrossEntropyLoss\(|optim\.SGD\(|log_softmax\(|"
                                 r"\.abs\(\)\.amax\(", given), p
    names = {str(p.relative_to(handout)) for p in handout.rglob("*") if p.is_file()}
    assert not [n for n in names if n.startswith(("report/", "course/", "docs/")) or "extras" in n or "ground" in n
                or n == "tests/checks.py"]
    assert {"assignment_4a.py", "tests/test_your_functions.py", "tests/harness.py", "tests/compare.py",
            "tests/expected.pt", "My-Images/boxes.csv"} <= names


def test_the_readme_names_each_tasks_own_function(handout):
    """Catches: a task table that names every task after the file's first function (a search from the top)."""
    rows = re.findall(r"^\| `(assignment_4[ab]\.py)` \| `([\w.]+)` \|", (handout / "README.md").read_text(), re.M)
    assert rows == [("assignment_4a.py", f) for f in ("remove_last_fc_layers", "set_trainable", "cross_entropy",
                                                      "accuracy", "SGD.step", "log_step", "log_epoch")] + \
        [("assignment_4b.py", "score_gradients"), ("assignment_4b.py", "saliency_maps")]


def test_the_readmes_set_up_installs_what_its_test_command_needs(handout):
    """Catches: `python -m pytest tests` in the handout's README after a set-up that installs no pytest (the handout's
    requirements.txt is the scripts' own)."""
    readme = (handout / "README.md").read_text()
    setup = next(ln for ln in readme.splitlines() if "pip install" in ln)
    assert "python -m pytest tests" in readme
    assert "pytest" in setup.split("#")[0] or "pytest" in (handout / "requirements.txt").read_text()


def test_the_handout_stops_at_its_first_stub_with_the_steps_sentence(handout, vgg_weights):
    """Catches: a handout that shows a traceback (or runs on) where the student's part is missing."""
    r = subprocess.run([sys.executable, "assignment_4b.py", "--images", str(handout / "My-Images")], cwd=handout,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("not written yet: Part 2, steps 1-4: a forward pass")


def test_the_public_tests_fail_on_the_stubs_and_pass_on_the_solution(handout, tmp_path):
    """Catches: public tests that pass on stubs, or that fail a right answer (stored outputs that drifted from what
    the solution computes)."""
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=handout,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and f"{len(checks.FUNCTIONS)} failed" in r.stdout and "NotImplementedError" in r.stdout
    solved = tmp_path / "solved"
    shutil.copytree(handout, solved)
    for f in make_handout.STUBBED:
        shutil.copy(os.path.join(ROOT, f), solved / f)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=solved,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and f"{len(checks.FUNCTIONS)} passed" in r.stdout, r.stdout[-2000:]


def test_force_replaces_only_a_handout_it_made(handout, tmp_path):
    """Catches: --force deleting a folder of other files, or one that holds the repository (the folder above a clone),
    and --out inside the repository accepted."""
    notes = tmp_path / "mine"
    notes.mkdir()
    (notes / "notes.txt").write_text("keep")
    with pytest.raises(make_handout.HandoutError, match="was not made by make_handout.py"):
        make_handout.make_handout(str(notes), force=True)
    assert (notes / "notes.txt").read_text() == "keep"
    with pytest.raises(make_handout.HandoutError, match="holds the solution's repository"):
        make_handout.make_handout(os.path.dirname(ROOT), force=True)
    with pytest.raises(make_handout.HandoutError, match="is inside the solution's repository"):
        make_handout.make_handout(os.path.join(ROOT, "new-handout-folder"), force=True)
    assert not os.path.exists(os.path.join(ROOT, "new-handout-folder")) and os.path.exists(os.path.join(ROOT, ".git"))
    again = tmp_path / "again"
    shutil.copytree(handout, again)
    (again / "stale.txt").write_text("old")
    make_handout.make_handout(str(again), force=True)
    assert not (again / "stale.txt").exists() and (again / "README.md").exists()


@pytest.mark.parametrize("text,message", [
    ("def f():\n    # BEGIN SOLUTION: step\n    return 1\n", "t.py:2: # BEGIN SOLUTION without its # END SOLUTION"),
    ("def f():\n    return 1\n    # END SOLUTION\n", "t.py:3: # END SOLUTION without a # BEGIN SOLUTION before it"),
    ("def f():\n    # BEGIN SOLUTION: a\n    # BEGIN SOLUTION: b\n    # END SOLUTION\n",
     "t.py:3: a # BEGIN SOLUTION inside the block opened at line 2"),
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n",
     "t.py:2: a bare # BEGIN SOLUTION needs its function's docstring"),
])
def test_a_marker_left_open_nested_or_bare_without_a_docstring_is_named_with_its_line(text, message):
    with pytest.raises(make_handout.HandoutError, match=re.escape(message)):
        make_handout.solution_blocks(text, "t.py")


def test_nbgraders_bare_marker_takes_its_sentence_from_the_docstring():
    """Catches: a bare `# BEGIN SOLUTION` read as an END without a BEGIN (the stub lost its block)."""
    text = 'def f(x):\n    """Double x."""\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION\n'
    assert make_handout.solution_blocks(text, "t.py") == [(2, 4, "    ", "f: Double x.")]


# ---- unpacking ----

def tar_with(path, members):
    with tarfile.open(path, "w:gz") as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return str(path)


def member(name, kind=tarfile.REGTYPE, data=b"x", linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize("kind", [tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE])
def test_a_tar_holding_a_fifo_or_a_device_is_refused(tmp_path, kind):
    path = tar_with(tmp_path / "a.tar.gz", [member("p/a.py"), member("p/dev", kind)])
    with pytest.raises(grade.Refused, match="'p/dev', which is not a file"):
        grade.unpack(path, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_hard_link_to_an_earlier_member_is_a_copy_and_one_to_nothing_is_refused(tmp_path):
    path = tar_with(tmp_path / "a.tgz", [member("p/a.txt", data=b"abc"), member("p/b.txt", tarfile.LNKTYPE,
                                                                                  linkname="p/a.txt")])
    grade.unpack(path, str(tmp_path / "out"))
    assert (tmp_path / "out" / "p" / "b.txt").read_bytes() == b"abc"
    bad = tar_with(tmp_path / "b.tar.gz", [member("p/b.txt", tarfile.LNKTYPE, linkname="/etc/passwd")])
    with pytest.raises(grade.Refused, match="leads out of its folder"):
        grade.unpack(bad, str(tmp_path / "out2"))


def test_checkpoints_are_skipped_and_not_counted_toward_the_cap(tmp_path):
    path = tar_with(tmp_path / "cs587_a_assignment3.gz", [member("p/run/last.pt", data=b"0" * 3 * 2 ** 20),
                                                          member("p/a.py", data=b"print(1)\n")])
    assert grade.unpack(path, str(tmp_path / "out"), max_mb=1) == ["p/run/last.pt"]
    assert os.listdir(tmp_path / "out" / "p") == ["a.py"]


def stored_rar(path, name, data):
    """A RAR 4 archive of one stored (uncompressed) file, written by hand as the format's spec lays it out."""
    import struct
    import zlib

    def block(kind, flags, body, add=b""):
        head = struct.pack("<BHH", kind, flags, 7 + len(body)) + body
        return struct.pack("<H", zlib.crc32(head) & 0xFFFF) + head + add
    marker = b"Rar!\x1a\x07\x00"
    main = block(0x73, 0, b"\x00" * 6)
    fname = name.encode()
    body = struct.pack("<IIBIIBBHI", len(data), len(data), 3, zlib.crc32(data), 0x5A000000, 20, 0x30, len(fname),
                       0o100644) + fname
    path.write_bytes(marker + main + block(0x74, 0x8000, body, data) + block(0x7B, 0x4000, b""))
    return str(path)


def test_a_rar_is_unpacked_and_named_as_the_sheet_allows(tmp_path):
    path = stored_rar(tmp_path / "cs587_ada_assignment3.rar", "p/assignment_4a.py", b"print('hi')\n")
    grade.unpack(path, str(tmp_path / "out"))
    assert (tmp_path / "out" / "p" / "assignment_4a.py").read_bytes() == b"print('hi')\n"
    assert grade.login_of(path, 3) == ("ada", "yes")


def test_a_compressed_rar_without_a_program_to_unpack_it_names_what_to_install(tmp_path, monkeypatch):
    """Catches: rarfile's RarCannotExec shown as a traceback (or a bare "cannot be read") on a machine without unrar."""
    import rarfile

    def cannot(*args, **kwargs):
        raise rarfile.RarCannotExec("Cannot find working tool")
    monkeypatch.setattr(rarfile, "RarFile", cannot)
    path = stored_rar(tmp_path / "cs587_ada_assignment3.rar", "p/a.py", b"x")
    with pytest.raises(grade.Refused, match="install unrar, unar, 7-Zip or bsdtar"):
        grade.unpack(path, str(tmp_path / "out"))


def test_the_archive_name_must_carry_the_sheets_number(tmp_path):
    """Catches: any assignment number accepted; another letter case refused outright."""
    assert grade.login_of("cs587_ada_assignment4.zip", 3) == ("cs587_ada_assignment4", "")
    assert grade.login_of("CS587_ada_Assignment3.ZIP", 3) == ("ada", "case")
    assert grade.login_of("cs587_ada_assignment3.tgz", 3) == ("ada", "yes")


@pytest.mark.parametrize("text,ok", [
    ("Name: Jane Doe  -  Student ID: 42", True), ("Name: Jane Doe\nStudent ID: 1234", True),
    ("Name: ____  ID: ____", False), ("Name:   Student ID: 42", False), ("Name: Jane Doe", False),
    ("Name: <your name>  ID: 42", False), ("Name: Your Name  ID: 42", False), ("Name: Jane Doe ID: xxxx", False),
])
def test_the_report_rule_needs_a_name_and_an_id_that_are_not_blank(text, ok):
    """Catches: a blank template (Name: ____ ID: ____), or `Name: Student ID: 42` (no name), passing."""
    name, student_id = grade.name_and_id(text)
    assert bool(name and student_id) == ok, (name, student_id)


def test_a_rubric_that_misses_or_invents_a_check_stops_the_grader(tmp_path):
    text = open(os.path.join(ROOT, "course", "rubric.toml"), encoding="utf-8").read()
    (tmp_path / "r.toml").write_text(text.replace("[checks.saliency_hidden]", "[checks.bonus]"))
    with pytest.raises(grade.GradeError, match="names checks the grader does not have: bonus"):
        grade.load_rubric(str(tmp_path / "r.toml"))


@pytest.mark.parametrize("code,found", [
    ("import torch.nn.functional as F\ndef cross_entropy(l, y):\n    return F.cross_entropy(l, y)\n", ".cross_entropy"),
    ("from torch.nn.functional import cross_entropy as ce\n", "import cross_entropy"),
    ("import torch\nloss = torch.nn.CrossEntropyLoss()\n", ".CrossEntropyLoss"),
    ("import torch\ndef f(F, l, y):\n    return getattr(F, 'nll_loss')(l, y)\n", "getattr(..., 'nll_loss')"),
    ("import torch\nclass SGD:\n    def step(self):\n        self.inner.step()\n", ".step()"),
    ("import torch\nopt = torch.optim.SGD([], lr=1)\n", ".optim"),
])
def test_the_written_out_scan_names_each_library_stand_in(tmp_path, code, found):
    (tmp_path / "assignment_4a.py").write_text(code)
    assert any(found in what for _, what in checks.library_calls(str(tmp_path / "assignment_4a.py")))
    assert not checks.written_out(str(tmp_path))[0]


def test_the_solution_writes_everything_out():
    assert checks.written_out(ROOT) == (True, "no library loss or optimizer where the sheet asks for the code "
                                              "written out")


# ---- the sandbox's limits ----

def run_in_sandbox(tmp_path, code, memory_mb=4096, limit=20):
    """The harness with assignment_4a.py = code, its first check (loss) only, in the sandbox. -> (saved result,
    printed)."""
    import torch
    if not sys.platform.startswith("linux"):  # on Linux a sandbox that cannot start fails these tests, loudly
        pytest.skip("the grader's sandbox is bubblewrap, which runs on Linux only")
    assert sandbox.available() is None, f"these tests need the sandbox: {sandbox.available()}"
    sub, out = tmp_path / "sub", tmp_path / "out"
    sub.mkdir()
    out.mkdir()
    (sub / "assignment_4a.py").write_text(code)
    torch.save({"loss": [{"logits": torch.zeros(2, 3), "labels": torch.tensor([0, 1])}]}, tmp_path / "in.pt")
    printed, _ = sandbox.run_harness(str(sub), str(tmp_path / "in.pt"), str(out), ["loss"], limit, memory_mb, True)
    return torch.load(out / "loss.pt", weights_only=True), printed


def test_memory_beyond_the_limit_fails_the_check(tmp_path):
    """Catches: no memory limit (a 4 GB allocation passed)."""
    result, _ = run_in_sandbox(tmp_path, "import torch\ndef cross_entropy(l, y):\n"
                                         "    x = torch.ones(6 * 2 ** 30, dtype=torch.uint8)\n    return x.sum()\n")
    assert "error" in result["outputs"][0] and "memory" in result["outputs"][0]["error"].lower()


def test_output_is_kept_to_its_first_and_last_kb(tmp_path):
    """Catches: a student's output held whole in the grader's memory (or lost)."""
    _, printed = run_in_sandbox(tmp_path, "import sys\nsys.stdout.write('FIRST' + 'x' * 5_000_000 + 'LAST')\n"
                                          "def cross_entropy(l, y):\n    return l.sum()\n")
    assert printed.startswith("FIRST") and printed.endswith("LAST") and len(printed) < 3 * sandbox.KEEP
    assert "bytes left out" in printed


def test_the_sandbox_has_no_network_and_no_grader_folders(tmp_path):
    result, printed = run_in_sandbox(tmp_path, f"""import os, socket
print("SEES", sorted(os.listdir("/")), os.path.exists({os.path.join(ROOT, "course")!r}),
      os.path.exists({str(tmp_path / "in.pt")!r}))
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    print("NET yes")
except OSError as e:
    print("NET no")
def cross_entropy(l, y):
    return l.sum()
""")
    assert "NET no" in printed and "False False" in printed


# ---- similarity ----

RENAMED_SGD = '''
    @torch.no_grad()
    def step(self):
        grp = self.param_groups[0]
        rate, mom, decay = grp["lr"], grp["momentum"], grp["weight_decay"]
        for k, param in enumerate(self.params):
            g = param.grad
            if g is None:
                continue
            if decay:  # in place: the gradient is not read again (zero_grad drops it), and a new 230 MB
                g.add_(param, alpha=decay)  # tensor per step for AlexNet's 57 M weights cost 3x this whole step
            if mom:
                if self.velocity[k] is None:
                    self.velocity[k] = g.clone()
                else:
                    self.velocity[k].mul_(mom).add_(g)
                g = self.velocity[k]
            param.add_(g, alpha=-rate)
'''
OTHER_SGD = '''
    @torch.no_grad()
    def step(self):
        settings = self.param_groups[0]
        updates = []
        for position in range(len(self.params)):
            tensor = self.params[position]
            if tensor.grad is not None:
                total = tensor.grad + settings["weight_decay"] * tensor
                old = self.velocity[position]
                buf = total if old is None else old * settings["momentum"] + total
                self.velocity[position] = buf.clone()
                updates.append((tensor, buf))
        for tensor, buf in updates:
            tensor.sub_(settings["lr"] * buf)
'''
OTHER_LOSS = ("    probabilities = torch.exp(logits - logits.logsumexp(1, keepdim=True))\n"
              "    picked = probabilities[torch.arange(len(labels)), labels]\n    return -torch.log(picked).mean()\n")


def test_similarity_ranks_renamed_copies_first_and_the_handout_at_nothing(handout, tmp_path):
    """Catches: renamed variables hiding a copy, or the handout's own code counted as shared."""
    sgd_start = "    @torch.no_grad()\n    def step(self):"
    solution = open(os.path.join(ROOT, "assignment_4a.py"), encoding="utf-8").read()
    body = solution[solution.index(sgd_start):solution.index("    def state_dict(self):")]
    loss_body = solution[solution.index("    # BEGIN SOLUTION: Part 1, step 3, the loss"):
                         solution.index("def accuracy(")]
    for name, sgd, loss in (("copier", RENAMED_SGD, None), ("author", body, OTHER_LOSS),
                            ("other", OTHER_SGD, OTHER_LOSS)):
        folder = tmp_path / name
        shutil.copytree(handout, folder)
        text = solution.replace(body, sgd + "\n") if sgd is not body else solution
        if loss:
            text = text.replace(loss_body, loss + "\n\n")
        (folder / "assignment_4a.py").write_text(text.replace(loss_body, loss + "\n\n") if loss else text)
    shutil.copytree(handout, tmp_path / "stubs1")
    shutil.copytree(handout, tmp_path / "stubs2")
    functions = similarity.marked_functions()
    folders = {n: str(tmp_path / n) for n in ("copier", "author", "other", "stubs1", "stubs2")}
    pairs = similarity.compare_all(folders, functions, similarity.handout_code(functions))
    assert {pairs[0][0], pairs[0][1]} == {"author", "copier"} and pairs[0][2] > 0.3
    assert [p[2] for p in pairs if {p[0], p[1]} == {"stubs1", "stubs2"}] == [0.0]
    similarity.write(str(tmp_path / "sim"), pairs)
    assert (tmp_path / "sim" / "pairs.csv").read_text().splitlines()[1].startswith("author,copier,")
    assert "<mark>" in (tmp_path / "sim" / "pairs.html").read_text()


def test_the_autograder_zip_holds_the_grader_and_no_solution(tmp_path):
    import make_autograder
    path = make_autograder.make_autograder(str(tmp_path / "a.zip"))
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        assert {"setup.sh", "run_autograder", "course/grade.py", "course/harness.py", "course/rubric.toml"} <= names
        assert not [n for n in names if n.startswith(("assignment_", "vgg16"))]
        assert z.getinfo("run_autograder").external_attr >> 16 & 0o111
