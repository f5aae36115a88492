"""Runs a student's functions on given inputs and saves what they return, nothing more: the child side of the grader
(course/grade.py runs it inside the sandbox, course/sandbox.py) and of the handout's public tests. It computes no
reference and decides no verdict: the grader compares what this saves with what it computes itself.

    python -I harness.py --root SUBMISSION --inputs inputs.pt --out OUT --checks loss,sgd --limit 10 [--sandboxed]

It imports PyTorch and torchvision first, then runs each check in a process of its own (a fork, where the system has
fork): that process imports the student's script, runs the check's cases and saves OUT/<check>.pt; the parent ends
it at --limit seconds, whatever it catches, and writes the reason instead. With --sandboxed (a PID namespace of its
own, nothing else in it) every other process is killed when each check ends. Files hold tensors, numbers, strings,
lists and dicts only, saved with torch.save and read by the grader with torch.load(weights_only=True).
"""
import argparse
import importlib
import os
import signal
import sys
import time
import traceback
import warnings

ENTRIES = {}  # check -> function(root, cases) -> one output per case: the check's name as the grader's rubric has it


def entry(name):
    def register(f):
        ENTRIES[name] = f
        return f
    return register


def student(module, root):
    """The student's module (assignment_4a or assignment_4b) from root."""
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module(module)


def each_case(cases, run):
    """run(case) for every case; an exception becomes that case's {"error": ...}, so one bad case costs only itself."""
    out = []
    for case in cases:
        try:
            out.append(run(case))
        except Exception as e:  # the student's code raised: its class, message and last frame are the feedback
            out.append({"error": describe(e)})
    return out


def describe(e):
    where = traceback.extract_tb(e.__traceback__)
    frame = f" ({os.path.basename(where[-1].filename)}, line {where[-1].lineno})" if where else ""
    return f"{e.__class__.__name__}: {str(e)[:300]}{frame}"


def as_float64(value):
    """A returned number (tensor, numpy or Python) -> a 0-d float64 tensor (raises for anything else)."""
    import torch
    t = torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else value)
    if t.numel() != 1:
        raise ValueError(f"returned a tensor of shape {tuple(t.shape)} where one number was expected")
    return t.reshape(()).to(device="cpu", dtype=torch.float64)


@entry("loss")
def run_loss(root, cases):
    import torch
    a4a = student("assignment_4a", root)

    def run(case):
        logits = case["logits"].clone().requires_grad_(True)
        loss = a4a.cross_entropy(logits, case["labels"].clone())
        grad = None
        if isinstance(loss, torch.Tensor) and loss.requires_grad and loss.numel() == 1:
            (grad,) = torch.autograd.grad(loss.reshape(()), logits, allow_unused=True)
        return {"value": as_float64(loss), "grad": None if grad is None else grad.detach().cpu()}
    return each_case(cases, run)


@entry("accuracy")
def run_accuracy(root, cases):
    a4a = student("assignment_4a", root)
    return each_case(cases, lambda c: {"value": as_float64(a4a.accuracy(c["logits"].clone(), c["labels"].clone()))})


def sgd_objective(weights, x):
    """The function the SGD check descends: sum of tanh(x @ w0 + w1)^2 (further weights are left without a
    gradient). The grader's reference descends the same function with torch.optim.SGD."""
    return ((x @ weights[0] + weights[1]).tanh() ** 2).sum()


@entry("sgd")
def run_sgd(root, cases):
    a4a = student("assignment_4a", root)

    def run(case):
        weights = [w.clone().requires_grad_(True) for w in case["weights"]]
        opt = a4a.SGD(weights, lr=case["lrs"][0], momentum=case["momentum"], weight_decay=case["weight_decay"])
        after = []
        for lr in case["lrs"]:
            opt.zero_grad()
            sgd_objective(weights, case["x"]).backward()
            opt.param_groups[0]["lr"] = lr  # the schedule sets each epoch's rate this way (lr_at in assignment_4a.py)
            opt.step()
            after.append([w.detach().clone().cpu() for w in weights])
        return {"weights": after}
    return each_case(cases, run)


@entry("surgery")
def run_surgery(root, cases):
    from torch import nn
    a4a = student("assignment_4a", root)

    def run(case):
        model = alexnet_on_meta()
        fc8 = model.classifier[-1]
        model = a4a.remove_last_fc_layers(model, case["n"], case["num_classes"])
        linear = [[m.in_features, m.out_features] for m in model.classifier if isinstance(m, nn.Linear)]
        trainable = {}
        for train in ("new", "fc", "all"):
            model = a4a.remove_last_fc_layers(alexnet_on_meta(), case["n"], case["num_classes"])
            a4a.set_trainable(model, train)
            trainable[train] = sorted(name for name, p in model.named_parameters() if p.requires_grad)
        last = [i for i, m in enumerate(model.classifier) if isinstance(m, nn.Linear)]
        return {"linear": linear, "fc8_kept": any(m is fc8 for m in model.modules()),
                "names": sorted(name for name, _ in model.named_parameters()),
                "new_layer": f"classifier.{last[-1]}." if last else "", "trainable": trainable}
    return each_case(cases, run)


def alexnet_on_meta():
    """torchvision's AlexNet, built without memory: the surgery needs only its modules."""
    import torch
    from torchvision.models import alexnet
    with torch.device("meta"):
        return alexnet(weights=None)


class Recorder:
    """Stands in for TensorBoard's SummaryWriter: remembers each scalar's tag, value and step."""

    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, value, step, *args, **kwargs):
        self.scalars.append([str(tag), float(value), int(step)])

    def __getattr__(self, name):  # add_hparams, add_figure, flush ...: accepted, not checked
        return lambda *args, **kwargs: None


@entry("tensorboard_scalars")
def run_tensorboard(root, cases):
    a4a = student("assignment_4a", root)

    def run(case):
        writer = Recorder()
        a4a.log_step(writer, case["step"], case["loss"])
        a4a.log_epoch(writer, None, dict(case["record"]))
        return {"scalars": writer.scalars}
    return each_case(cases, run)


def small_vgg(size=32, classes=10, state=None):
    """A VGG of two conv blocks and one FC layer in float64, for images of size x size: the saliency needs a network's
    gradient, not ImageNet's. state: its weights (the grader's inputs), else PyTorch's initialisation."""
    from torch import nn
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * (size // 4) ** 2, classes)).double()
    if state is not None:
        model.load_state_dict(state)
    return model.eval()


@entry("saliency")
def run_saliency(root, cases):
    import torch
    a4b = student("assignment_4b", root)

    def run(case):
        model = small_vgg(case["images"].shape[-1], case["classes_out"], case["state"])
        classes = case.get("classes")
        got = a4b.saliency_maps(model, case["images"].clone(), *(() if classes is None else (classes,)))
        maps, used = got[0], got[1]
        return {"maps": torch.as_tensor(maps).detach().to("cpu", torch.float64),
                "classes": torch.as_tensor(used).detach().cpu().long()}
    return each_case(cases, run)


# ---- the process side: one process per check, ended at its limit ----

def save(path, obj):
    import torch
    tmp = f"{path}.tmp{os.getpid()}"
    with warnings.catch_warnings():  # torch 2.0 warns of TypedStorage here: the output is the student's, not ours
        warnings.simplefilter("ignore")
        torch.save(obj, tmp)
    os.replace(tmp, path)


def run_check(name, root, cases, out):
    """In the check's own process: run it and save OUT/<name>.pt; nothing the check raises gets past."""
    try:
        result = {"outputs": ENTRIES[name](root, cases)}
    except BaseException as e:  # an import that fails, sys.exit, KeyboardInterrupt ...: all the check's own
        result = {"error": "not written: " + str(e)[:300] if isinstance(e, NotImplementedError) else describe(e)}
    save(os.path.join(out, f"{name}.pt"), result)


def kill_others():
    """Inside the sandbox's PID namespace (this process and its own children only): end every process but this one
    and the namespace's init, so nothing a check started outlives it. Nowhere else: outside such a namespace this
    would reach every process the user may signal, so it first checks that process 1 is bubblewrap's."""
    try:
        with open("/proc/1/comm") as fh:
            if fh.read().strip() != "bwrap":
                return
    except OSError:
        return
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) not in (1, os.getpid()):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def run_forked(name, root, cases, out, limit, sandboxed):
    pid = os.fork()
    if pid == 0:  # the check's process, in a process group of its own so that it ends with everything it started
        code = 0
        try:
            os.setpgid(0, 0)
            run_check(name, root, cases, out)
        except BaseException:
            code = 1
        finally:
            for stream in (sys.stdout, sys.stderr):  # what the check printed reaches the grader (os._exit skips this)
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os._exit(code)
    deadline, status = time.monotonic() + limit, None
    while status is None and time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        status = status if done else None
        time.sleep(0.005 if status is None else 0)
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass
    if status is None:
        os.waitpid(pid, 0)
    if sandboxed:
        kill_others()
    path = os.path.join(out, f"{name}.pt")
    if status is None:
        save(path, {"error": f"did not finish within {limit:g} s (an endless loop, or waiting for something?)"})
    elif not os.path.exists(path):
        how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit code {os.WEXITSTATUS(status)}")
        save(path, {"error": f"the check's process ended ({how}) before it returned: os._exit, or a crash?"})


def main(argv=None):
    p = argparse.ArgumentParser(description="Run a student's functions on the grader's inputs; save their outputs.")
    p.add_argument("--root", required=True, help="the folder holding assignment_4a.py and assignment_4b.py")
    p.add_argument("--inputs", required=True, help="the cases, {check: [case, ...]}, saved with torch.save")
    p.add_argument("--out", required=True, help="where <check>.pt goes, one per check")
    p.add_argument("--checks", required=True, help="comma-separated, in the order to run them")
    p.add_argument("--limit", type=float, required=True, help="seconds each check may take")
    p.add_argument("--sandboxed", action="store_true", help="alone in a PID namespace: end every other process "
                                                            "after each check")
    args = p.parse_args(argv)
    import numpy  # noqa: F401  (the libraries before any check: their import is not the student's time)
    import torch
    import torchvision  # noqa: F401
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inputs = torch.load(args.inputs, weights_only=True)
    for name in args.checks.split(","):
        if hasattr(os, "fork"):
            run_forked(name, args.root, inputs[name], args.out, args.limit, args.sandboxed)
        else:  # Windows: in this process; the grader ends it at the limit and starts another for what is left
            run_check(name, args.root, inputs[name], args.out)


if __name__ == "__main__":
    main()
