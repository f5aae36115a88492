"""How a function's outputs are judged against the expected ones: the grader's verdicts and the handout's public tests
use these same comparisons. What is expected comes from elsewhere (the grader computes it with PyTorch; the handout
reads it from tests/expected.pt, computed when the handout was made); nothing here computes a reference.

Each judge takes (want, got) for one case and returns None, or raises AssertionError with the sentence for the
feedback. `got` is whatever the student's process saved: its form is checked before its values.
"""
import math


def tensor(x, what):
    import torch
    assert isinstance(x, torch.Tensor), f"{what} is not a tensor"
    return x


def number(x, what):
    x = tensor(x, what)
    assert x.numel() == 1, f"{what} is not one number"
    return float(x)


def close(got, want, rtol, atol=0.0):
    return math.isfinite(got) and abs(got - want) <= atol + rtol * abs(want)


def judge_loss(want, got):
    value = number(got["value"], "the loss")
    assert close(value, want["value"], want["rtol"], want["rtol"]), \
        f"{want['label']}: cross_entropy gives {value:.6g}, the cross-entropy is {want['value']:.6g}"
    if want.get("grad") is not None:
        assert got.get("grad") is not None, (f"{want['label']}: the loss cannot be back-propagated to the logits "
                                             "(a Python number, or a tensor cut from the graph?)")
        grad = tensor(got["grad"], "the loss's gradient").double()
        assert grad.shape == want["grad"].shape, f"{want['label']}: the gradient has shape {tuple(grad.shape)}"
        err = float((grad - want["grad"]).abs().max())
        assert err <= want["rtol"] * float(want["grad"].abs().max()) + 1e-12, \
            f"{want['label']}: d loss / d logits differs from the cross-entropy's by up to {err:.3g}"


def judge_accuracy(want, got):
    value = number(got["value"], "the accuracy")
    assert abs(value - want["value"]) < 1e-6, f"{want['label']}: accuracy gives {value:.4f}, not {want['value']:.4f}"


def judge_sgd(want, got):
    steps = got["weights"]
    assert isinstance(steps, list) and len(steps) == len(want["weights"]), "not one set of weights per step"
    for k, (ours, ref) in enumerate(zip(steps, want["weights"])):
        assert isinstance(ours, list) and len(ours) == len(ref), f"step {k + 1}: not one tensor per weight"
        for w, r in zip(ours, ref):
            w = tensor(w, "a weight").double()
            assert w.shape == r.shape, f"step {k + 1}: a weight changed shape to {tuple(w.shape)}"
            diff = float((w - r).abs().max())
            assert diff <= 1e-9, (f"{want['label']}: after step {k + 1} the weights differ from torch.optim.SGD's by "
                                  f"up to {diff:.3g}")


def judge_surgery(want, got):
    label = want["label"]
    linear = [list(map(int, shape)) for shape in got["linear"]]
    assert linear == want["linear"], f"{label}: the classifier's FC layers are {linear}, not {want['linear']}"
    assert got["fc8_kept"] is False, f"{label}: the original fc8 is still in the model"
    names = {str(n) for n in got["names"]}
    should = {"new": {n for n in names if n.startswith(str(got["new_layer"]))},
              "fc": {n for n in names if n.startswith("classifier.")}, "all": names}
    which = {"new": "the new layer only", "fc": "every FC layer", "all": "everything"}
    for train, want_names in should.items():
        trains = {str(n) for n in got["trainable"][train]}
        assert trains == want_names and want_names, (f"{label}, --train {train}: {len(trains)} parameter tensors "
                                                     f"train, {len(want_names)} should ({which[train]})")


def judge_tensorboard(want, got):
    scalars = {(str(tag), round(float(value), 6), int(step)) for tag, value, step in got["scalars"]}
    missing = sorted(set(map(tuple, want["scalars"])) - scalars)
    assert not missing, f"{want['label']}: TensorBoard did not get {missing} (it got {sorted(scalars)})"


def judge_saliency(want, got):
    maps, classes = tensor(got["maps"], "the maps").double(), tensor(got["classes"], "the classes")
    assert maps.shape == want["maps"].shape, (f"{want['label']}: the maps have shape {tuple(maps.shape)}, not "
                                              f"(N, H, W) = {tuple(want['maps'].shape)}")
    assert classes.tolist() == want["classes"].tolist(), \
        f"{want['label']}: the classes explained are not the right ones"
    err = float((maps - want["maps"]).abs().max() / want["maps"].abs().max())
    assert err < 1e-6, f"{want['label']}: the maps differ from max over colour channels of |dS_C/dI| by {err:.3g}"


JUDGES = {"loss": judge_loss, "accuracy": judge_accuracy, "sgd": judge_sgd, "surgery": judge_surgery,
          "tensorboard_scalars": judge_tensorboard, "saliency": judge_saliency}


def judge(function, want, got):
    """-> None, or the sentence saying what is wrong, for one case."""
    if isinstance(got, dict) and "error" in got:
        return f"{want['label']}: {got['error']}"
    try:
        JUDGES[function](want, got)
    except AssertionError as e:
        return str(e)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        return f"{want['label']}: the outputs are not of the expected form ({e.__class__.__name__}: {e})"
    return None
