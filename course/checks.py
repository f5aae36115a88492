"""The checks of the functions the sheet asks students to write, against references on fixed inputs. One module for
both uses: the handout's public tests import it, and course/grade.py runs it on each submission in a subprocess:

    python -I course/checks.py SUBMISSION_FOLDER --time-limit 60     # prints {check: [passed, message]} as JSON

Each check imports the student's assignment_4a.py / assignment_4b.py from the folder and compares the function with
what PyTorch computes: the loss with torch.nn.functional.cross_entropy, a step of the written-out SGD with
torch.optim.SGD's, the accuracy with a count made here, the head surgery's layer shapes and what it leaves
trainable, the TensorBoard scalars written, and the saliency map with the gradient taken here by autograd, in
float64 so that the comparison holds on every CPU. A check that does not finish within the time limit fails."""
import importlib
import json
import os
import signal
import sys
import traceback

LIMIT_S = 60  # seconds a check may take, the import of the student's script included (PyTorch's is done before)


class Recorder:
    """Stands in for TensorBoard's SummaryWriter: remembers each scalar's tag, value and step."""

    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, float(value), int(step)))

    def __getattr__(self, name):  # add_hparams, add_figure ...: accepted, not checked
        return lambda *args, **kwargs: None


def student(module, root):
    """The student's module (assignment_4a or assignment_4b) from root, imported once."""
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module(module)


def check_loss(root):
    import torch
    a4a = student("assignment_4a", root)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 5, generator=g, dtype=torch.float64) * 3
    labels = torch.tensor([0, 4, 2, 2, 1, 3, 0])
    got = float(a4a.cross_entropy(logits, labels))
    want = float(torch.nn.functional.cross_entropy(logits, labels))
    assert abs(got - want) <= 1e-9 * abs(want), f"cross_entropy gives {got:.6f}, PyTorch's cross-entropy {want:.6f}"
    return f"cross_entropy equals torch.nn.functional.cross_entropy ({want:.6f})"


def check_accuracy(root):
    import torch
    a4a = student("assignment_4a", root)
    logits = torch.tensor([[5.0, 1, 0], [0, 3, 1], [0, 1, 4], [2, 1, 0], [0, 9, 1]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 2, 2])  # right: the first three, of five
    got = float(a4a.accuracy(logits, labels))
    assert abs(got - 0.6) < 1e-6, f"accuracy gives {got:.4f} where 3 of 5 rows have their highest score at the label"
    return "accuracy counts the rows whose highest score is the label (3 of 5)"


def check_sgd(root):
    import torch
    a4a = student("assignment_4a", root)
    g = torch.Generator().manual_seed(1)
    w0 = [torch.randn(4, 3, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64)]
    ours = [w.clone().requires_grad_(True) for w in w0]
    ref = [w.clone().requires_grad_(True) for w in w0]
    opts = (a4a.SGD(ours, lr=0.1, momentum=0.9, weight_decay=0.01),
            torch.optim.SGD(ref, lr=0.1, momentum=0.9, weight_decay=0.01, foreach=False))
    x = torch.randn(6, 4, generator=g, dtype=torch.float64)
    for step in range(4):
        for opt, (a, b) in zip(opts, (ours, ref)):
            opt.zero_grad()
            ((x @ a + b).tanh() ** 2).sum().backward()
            if step == 2:
                opt.param_groups[0]["lr"] = 0.05  # the schedule changes it between epochs
            opt.step()
        diff = max(float((a - b).abs().max()) for a, b in zip(ours, ref))
        assert diff <= 1e-9, f"after step {step + 1} the weights differ from torch.optim.SGD's by up to {diff:.3g}"
    return "4 steps of SGD (momentum 0.9, weight decay 0.01, lr changed after 2) equal torch.optim.SGD's"


def alexnet_on_meta():
    """torchvision's AlexNet, built without memory: the surgery needs only its modules."""
    import torch
    from torchvision.models import alexnet
    with torch.device("meta"):
        return alexnet(weights=None)


def check_surgery(root):
    from torch import nn
    a4a = student("assignment_4a", root)
    for n, shapes in ((1, [(9216, 4096), (4096, 4096), (4096, 10)]), (2, [(9216, 4096), (4096, 10)])):
        model = alexnet_on_meta()
        fc8 = model.classifier[-1]
        model = a4a.remove_last_fc_layers(model, n, 10)
        got = [(m.in_features, m.out_features) for m in model.classifier if isinstance(m, nn.Linear)]
        assert got == shapes, f"--remove {n}: the classifier's FC layers are {got}, not {shapes}"
        assert all(m is not fc8 for m in model.classifier), f"--remove {n}: fc8 is still in the classifier"
    for train in ("new", "fc", "all"):
        model = a4a.remove_last_fc_layers(alexnet_on_meta(), 1, 10)
        a4a.set_trainable(model, train)
        want = {"new": {id(p) for p in model.classifier[-1].parameters()},
                "fc": {id(p) for p in model.classifier.parameters()},
                "all": {id(p) for p in model.parameters()}}[train]
        got = {id(p) for p in model.parameters() if p.requires_grad}
        which = {"new": "the new layer only", "fc": "every FC layer", "all": "all"}[train]
        assert got == want, f"--train {train}: {len(got)} parameter tensors train, {len(want)} should ({which})"
    return "remove 1 and 2 give the right FC layers, fc8 gone; new, fc and all free exactly their layers"


def check_tensorboard(root):
    a4a = student("assignment_4a", root)
    writer = Recorder()
    a4a.log_step(writer, 17, 1.25)
    record = {"epoch": 3, "loss_train": 0.9, "loss_val": 1.1, "accuracy_train": 0.7, "accuracy_val": 0.6, "lr": 0.001,
              "seconds": 1.0}
    a4a.log_epoch(writer, None, record)
    got = {(tag, round(value, 6), step) for tag, value, step in writer.scalars}
    want = {("loss/train_step", 1.25, 17), ("loss/train", 0.9, 3), ("accuracy/train", 0.7, 3),
            ("accuracy/val", 0.6, 3)}
    assert want <= got, f"TensorBoard got {sorted(got)}; missing {sorted(want - got)}"
    return "training loss per step, training loss, train and validation accuracy per epoch, at their steps"


def small_vgg():
    """A VGG of two conv blocks and one FC layer, random weights, float64: the saliency needs a network's
    gradient, not ImageNet's."""
    import torch
    from torch import nn
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 8 * 8, 10)).double().eval()


def check_saliency(root):
    import torch
    a4b = student("assignment_4b", root)
    model = small_vgg()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    maps, classes = a4b.saliency_maps(model, x)[:2]
    leaf = x.clone().requires_grad_(True)
    scores = model(leaf)
    want_classes = scores.argmax(dim=1)
    scores.gather(1, want_classes[:, None]).sum().backward()
    want = leaf.grad.abs().amax(dim=1)  # max over colour channels of |dS_C/dI|
    assert torch.equal(torch.as_tensor(classes).cpu(), want_classes), "the classes explained are not the top scores"
    maps = torch.as_tensor(maps).detach().double().cpu()
    assert maps.shape == want.shape, f"the maps have shape {tuple(maps.shape)}, not (N, H, W) = {tuple(want.shape)}"
    err = float((maps - want).abs().max() / want.abs().max())
    assert err < 1e-6, f"the maps differ from max_c |dS_C/dI| by up to {err:.3g} of its maximum"
    return "maps equal max over colour channels of |dS_C/dI| for each image's top class"


CHECKS = {"loss": check_loss, "accuracy": check_accuracy, "sgd": check_sgd, "surgery": check_surgery,
          "tensorboard_scalars": check_tensorboard, "saliency": check_saliency}


class TimeLimit(Exception):
    pass


def run_all(root, limit=LIMIT_S):
    """-> {check: (passed, message)}. Each check runs under an alarm of `limit` seconds where the system has one."""
    def alarm(signum, frame):
        raise TimeLimit
    # the libraries first, outside any time limit: an alarm that cut torch's import in half would leave it unusable
    # for every later check (and on a loaded machine the import alone can take longer than a check may)
    import numpy  # noqa: F401
    import torch  # noqa: F401
    import torchvision  # noqa: F401
    timed = hasattr(signal, "setitimer")
    if timed:
        signal.signal(signal.SIGALRM, alarm)
    results = {}
    for name, check in CHECKS.items():
        try:
            if timed:
                signal.setitimer(signal.ITIMER_REAL, limit)
            results[name] = (True, check(root))
        except TimeLimit:
            results[name] = (False, f"did not finish within {limit:g} s (an endless loop?)")
        except NotImplementedError as e:
            results[name] = (False, f"not written: {e}")
        except AssertionError as e:
            results[name] = (False, str(e))
        except (Exception, SystemExit) as e:  # the student's code raised: its last frame is the feedback
            where = traceback.extract_tb(e.__traceback__)[-1]
            results[name] = (False, f"{e.__class__.__name__}: {e} ({os.path.basename(where.filename)}, line "
                                    f"{where.lineno})")
        finally:
            if timed:
                signal.setitimer(signal.ITIMER_REAL, 0)
    return results


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(description="Check a submission's functions against references; prints JSON.")
    p.add_argument("root", help="the folder holding the student's assignment_4a.py and assignment_4b.py")
    p.add_argument("--time-limit", type=float, default=LIMIT_S, help="seconds per check (default: %(default)s)")
    args = p.parse_args(argv)
    results = run_all(os.path.abspath(args.root), args.time_limit)
    sys.stdout.write("\nCHECKS " + json.dumps(results) + "\n")


if __name__ == "__main__":
    main()
