"""The grader's side of the function checks: the inputs, the references PyTorch computes for them, the verdicts, and
the scan for library calls where the sheet asks for code written out. Runs in the grader's process only: the student's
process is handed the inputs (course/harness.py runs its functions on them) and never imports this file.

Each function the sheet asks for has public cases (the handout's tests/expected.pt holds them and their expected
outputs) and hidden ones (here only): the rubric's check `loss` is the public cases of cross_entropy, `loss_hidden`
the hidden ones, and so on. Every case runs in float64 where it can, so that the verdict is the same on every CPU.
"""
import ast
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from compare import judge  # noqa: E402
from harness import sgd_objective, small_vgg  # noqa: E402  (the same function and network in both processes)

FUNCTIONS = ["loss", "accuracy", "sgd", "surgery", "tensorboard_scalars", "saliency"]  # as harness.ENTRIES names them
PASSED = {  # what a passed check says, public and hidden
    "loss": "cross_entropy equals PyTorch's cross-entropy on float64 logits",
    "loss_hidden": "cross_entropy holds for logits of +-1000 in float32 and one image of 1000 classes, and "
                   "back-propagates",
    "accuracy": "accuracy counts the rows whose highest score is the label (3 of 5)",
    "accuracy_hidden": "accuracy holds for one image and for 64 images of 10 classes",
    "sgd": "4 steps of SGD (momentum 0.9, weight decay 0.01, lr changed after 2) equal torch.optim.SGD's",
    "sgd_hidden": "SGD equals torch.optim.SGD with a new lr at every step, without momentum, and with a weight that "
                  "gets no gradient",
    "surgery": "remove 1 and 2 give the right FC layers, fc8 gone; new, fc and all free exactly their layers",
    "surgery_hidden": "the surgery holds for 7 classes",
    "tensorboard_scalars": "loss/train_step per step; loss/train, loss/val, accuracy/train, accuracy/val, lr per epoch",
    "tensorboard_scalars_hidden": "the scalars land at other steps and epochs",
    "saliency": "maps equal max over colour channels of |dS_C/dI| for each image's top class",
    "saliency_hidden": "maps hold for given classes, other image sizes and class counts, and a batch of one",
}
# library calls that stand in for code the sheet asks to be written out: attribute or imported name -> the sentence
LIBRARY = {"cross_entropy": "the loss", "nll_loss": "the loss", "CrossEntropyLoss": "the loss", "NLLLoss": "the loss",
           "SGD": "gradient descent", "optim": "gradient descent"}
WRITTEN_OUT = ["assignment_4a.py", "assignment_4b.py"]


def cases(seed=0):
    """-> {function: [(group, case, want)]}: group is the rubric's check (`loss` or `loss_hidden`), case goes to the
    student's process, want stays here. The public cases are always the same (the handout holds them); the hidden
    ones are drawn from `seed`, so that no hand-in can carry their answers."""
    import torch
    public, hidden = torch.Generator().manual_seed(0), torch.Generator().manual_seed(seed)
    return {"loss": loss_cases(public, hidden), "accuracy": accuracy_cases(hidden), "sgd": sgd_cases(public, hidden),
            "surgery": surgery_cases(), "tensorboard_scalars": tensorboard_cases(),
            "saliency": saliency_cases(public, hidden)}


def loss_case(group, label, logits, labels, rtol, grad=False):
    import torch
    leaf = logits.double().requires_grad_(True)
    value = torch.nn.functional.cross_entropy(leaf, labels)  # the reference, in float64
    want = {"label": label, "value": value.item(), "rtol": rtol}
    if grad:
        want["grad"] = torch.autograd.grad(value, leaf)[0].detach()
    return group, {"logits": logits, "labels": labels}, want


def loss_cases(g, h):
    import torch
    extreme = torch.randn(6, 4, generator=h) * 1000  # each label at its row's lowest score: exp underflows to 0
    return [
        loss_case("loss", "7 images, 5 classes", torch.randn(7, 5, generator=g, dtype=torch.float64) * 3,
                  torch.tensor([0, 4, 2, 2, 1, 3, 0]), 1e-9),
        loss_case("loss_hidden", "logits of +-1000 in float32", extreme, extreme.argmin(dim=1), 1e-5, grad=True),
        loss_case("loss_hidden", "one image of 1000 classes", torch.randn(1, 1000, generator=h, dtype=torch.float64),
                  torch.randint(0, 1000, (1,), generator=h), 1e-9, grad=True),
        loss_case("loss_hidden", "the gradient of 9 images, 3 classes",
                  torch.randn(9, 3, generator=h, dtype=torch.float64), torch.randint(0, 3, (9,), generator=h), 1e-9,
                  grad=True),
    ]


def accuracy_cases(h):
    import torch

    def case(group, label, logits, labels):
        return group, {"logits": logits, "labels": labels}, {
            "label": label, "value": (logits.argmax(dim=1) == labels).double().mean().item()}
    many = torch.randn(64, 10, generator=h, dtype=torch.float64)
    return [
        case("accuracy", "5 images, 3 classes", torch.tensor(
            [[5.0, 1, 0], [0, 3, 1], [0, 1, 4], [2, 1, 0], [0, 9, 1]], dtype=torch.float64),
            torch.tensor([0, 1, 2, 2, 2])),
        case("accuracy_hidden", "one image", torch.tensor([[0.5, 2.0]]), torch.tensor([1])),
        case("accuracy_hidden", "64 images, 10 classes", many,
             torch.randint(0, 10, (64,), generator=h).where(torch.arange(64) % 3 > 0, many.argmax(1))),
    ]


def sgd_case(group, gen, label, lrs, momentum, weight_decay, extra_weight=False):
    """The reference: torch.optim.SGD (one tensor at a time) descending sgd_objective, with lr set before each step."""
    import torch
    weights = [torch.randn(shape, generator=gen, dtype=torch.float64)
               for shape in [(4, 3), (3,)] + ([(2,)] if extra_weight else [])]
    x = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    ref = [w.clone().requires_grad_(True) for w in weights]
    opt = torch.optim.SGD(ref, lr=lrs[0], momentum=momentum, weight_decay=weight_decay, foreach=False)
    after = []
    for lr in lrs:
        opt.zero_grad()
        sgd_objective(ref, x).backward()
        opt.param_groups[0]["lr"] = lr
        opt.step()
        after.append([w.detach().clone() for w in ref])
    return group, {"weights": weights, "x": x, "lrs": lrs, "momentum": momentum, "weight_decay": weight_decay}, {
        "label": label, "weights": after}


def sgd_cases(g, h):
    return [
        sgd_case("sgd", g, "momentum 0.9, weight decay 0.01", [0.1, 0.1, 0.05, 0.05], 0.9, 0.01),
        sgd_case("sgd_hidden", h, "a new lr at every step", [0.1, 0.02, 0.3, 0.07, 0.01], 0.5, 0.001),
        sgd_case("sgd_hidden", h, "no momentum, no weight decay", [0.2, 0.2, 0.2], 0.0, 0.0),
        sgd_case("sgd_hidden", h, "a weight without a gradient", [0.1, 0.05], 0.9, 0.01, extra_weight=True),
    ]


def surgery_cases():
    def case(group, n, classes):
        shapes = [[9216, 4096], [4096, 4096], [4096, classes]] if n == 1 else [[9216, 4096], [4096, classes]]
        return group, {"n": n, "num_classes": classes}, {"label": f"--remove {n}, {classes} classes", "linear": shapes}
    return [case("surgery", 1, 10), case("surgery", 2, 10), case("surgery_hidden", 1, 7), case("surgery_hidden", 2, 7)]


def tensorboard_cases():
    def case(group, step, loss, epoch):
        record = {"epoch": epoch, "loss_train": 0.9, "loss_val": 1.1, "accuracy_train": 0.7, "accuracy_val": 0.6,
                  "lr": 0.001, "seconds": 1.0}
        want = [("loss/train_step", loss, step)] + [(tag, record[key], epoch) for tag, key in (
            ("loss/train", "loss_train"), ("loss/val", "loss_val"), ("accuracy/train", "accuracy_train"),
            ("accuracy/val", "accuracy_val"), ("lr", "lr"))]
        return group, {"step": step, "loss": loss, "record": record}, {
            "label": f"step {step}, epoch {epoch}", "scalars": [(t, round(v, 6), s) for t, v, s in want]}
    return [case("tensorboard_scalars", 17, 1.25, 3), case("tensorboard_scalars_hidden", 1234, 0.5, 0)]


def saliency_case(group, gen, label, n, size, classes_out, classes=None):
    """The reference: autograd's gradient of each chosen score to the pixels, max over colour channels of |.|."""
    import torch
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(0, 2 ** 31, (1,), generator=gen)))
        state = {k: v.clone() for k, v in small_vgg(size, classes_out).state_dict().items()}
    images = torch.randn(n, 3, size, size, generator=gen, dtype=torch.float64)
    model, leaf = small_vgg(size, classes_out, state), images.clone().requires_grad_(True)
    scores = model(leaf)
    chosen = scores.argmax(dim=1) if classes is None else torch.as_tensor(classes).expand(n)
    scores.gather(1, chosen[:, None]).sum().backward()
    case = {"images": images, "state": state, "classes_out": classes_out}
    if classes is not None:
        case["classes"] = classes
    return group, case, {"label": label, "maps": leaf.grad.abs().amax(dim=1), "classes": chosen}


def saliency_cases(g, h):
    import torch
    return [
        saliency_case("saliency", g, "3 images of 32 x 32, top classes", 3, 32, 10),
        saliency_case("saliency_hidden", h, "given classes", 3, 32, 10, torch.randint(0, 10, (3,), generator=h)),
        saliency_case("saliency_hidden", h, "24 x 24, 5 classes", 2, 24, 5),
        saliency_case("saliency_hidden", h, "one image, its class as an int", 1, 16, 10,
                      int(torch.randint(0, 10, (1,), generator=h))),
    ]


def inputs_of(all_cases, public_only=False):
    """-> {function: [case]} for the student's process (or the handout: the public cases only)."""
    return {f: [case for group, case, _ in rows if not (public_only and group.endswith("_hidden"))]
            for f, rows in all_cases.items()}


def verdicts(all_cases, results):
    """results: {function: what the student's process saved, or {"error": ...}} -> {check: (passed, message)}."""
    out = {}
    for f, rows in all_cases.items():
        got = results.get(f, {"error": "no result"})
        outputs = got.get("outputs") if isinstance(got, dict) else None
        for group in dict.fromkeys(g for g, _, _ in rows):
            if outputs is None or not isinstance(outputs, list) or len(outputs) != len(rows):
                why = got.get("error") if isinstance(got, dict) and "error" in got else "the outputs are incomplete"
                out[group] = (False, str(why))
                continue
            failures = [judge(f, want, outputs[i]) for i, (g, _, want) in enumerate(rows) if g == group]
            failures = [m for m in failures if m]
            out[group] = (not failures, failures[0] if failures else PASSED[group])
    return out


def library_calls(path):
    """-> [(line, what)] where the file uses a library call that stands in for written-out code (LIBRARY): an
    attribute (F.cross_entropy, torch.optim.SGD), a name imported from torch, getattr with such a name, or a .step()
    inside the class SGD (a torch optimizer stepping in its place)."""
    try:
        tree = ast.parse(open(path, encoding="utf-8", errors="replace").read())
    except (OSError, SyntaxError, ValueError):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in LIBRARY:
            found.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torch"):
            found += [(node.lineno, f"from {node.module} import {a.name}") for a in node.names
                      if a.name in LIBRARY or (node.module or "").startswith("torch.optim")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if a.name.startswith("torch.optim")]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" and len(node.args) > 1 \
                and isinstance(node.args[1], ast.Constant) and node.args[1].value in LIBRARY:
            found.append((node.lineno, f"getattr(..., {node.args[1].value!r})"))
        elif isinstance(node, ast.ClassDef) and node.name == "SGD":
            found += [(n.lineno, ".step()") for n in ast.walk(node) if isinstance(n, ast.Call)
                      and isinstance(n.func, ast.Attribute) and n.func.attr == "step"]
    return sorted(set(found))


def written_out(root):
    """The check `written_out`: -> (passed, message) naming every library call found in the student's scripts."""
    found = [f"{f} line {line}: {what}" for f in WRITTEN_OUT for line, what in library_calls(os.path.join(root, f))]
    if not found:
        return True, "no library loss or optimizer where the sheet asks for the code written out"
    return False, ("the sheet asks for the loss and gradient descent written out; found " + "; ".join(found[:6])
                   + (f" and {len(found) - 6} more" if len(found) > 6 else ""))
