"""saliency_extras.py: SmoothGrad, Integrated Gradients, Grad-CAM, the class model, localisation, the sanity checks
and a fine-tuned painting model. Each test names the bug it catches."""
import copy
import csv
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import assignment_4b as a4b
import saliency_extras as ex
import vgg16
from conftest import ROOT, assert_maps_agree, write_image


def small_batch(n=3, size=48, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


class CountingModel(torch.nn.Module):
    """Wraps a model and counts forward passes (to check that methods batch their copies)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, x):
        self.calls += 1
        return self.model(x)


# ---- SmoothGrad ----

def test_smoothgrad_without_noise_is_the_vanilla_map(vgg_model):
    """Catches: SmoothGrad computing something other than the paper's map on each copy."""
    x = small_batch(2, size=32)
    vanilla, cls, _ = a4b.saliency_maps(vgg_model, x)
    sg = ex.smoothgrad(vgg_model, x, cls, samples=6, noise=0.0, chunk=4)
    assert_maps_agree(sg, vanilla)


def test_smoothgrad_batches_its_copies(vgg_model):
    """Catches: one forward pass per noisy copy (25x slower than batching them)."""
    x = small_batch(2, size=32)
    counted = CountingModel(vgg_model)
    ex.smoothgrad(counted, x, torch.tensor([1, 2]), samples=6, noise=0.1, chunk=4)
    assert counted.calls == 3  # 2 images x 6 copies in chunks of 4: three passes, not twelve


def test_smoothgrad_is_the_mean_of_the_vanilla_maps_of_the_noisy_copies(vgg_model):
    """Catches: SmoothGrad drifting to another definition (max_c of the mean |g|, or signed gradients), noise not
    scaled by each image's range. The copies go through the network in one batch both ways, so the two computations
    run the same kernels and must agree exactly."""
    x = small_batch(2, size=32, seed=11)
    _, cls, _ = a4b.saliency_maps(vgg_model, x)
    sg = ex.smoothgrad(vgg_model, x, cls, samples=3, noise=0.2, seed=5, chunk=6)
    eps = torch.randn((2, 3, 3, 32, 32), generator=torch.Generator().manual_seed(5))
    spread = (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(2, 1, 1, 1, 1)
    noisy = (x[:, None] + 0.2 * spread * eps).flatten(0, 1)              # image 0's 3 copies, then image 1's
    grads = a4b.score_gradients(vgg_model, noisy, cls.repeat_interleave(3))[2].view(2, 3, 3, 32, 32)
    torch.testing.assert_close(sg, grads.abs().amax(dim=2).mean(dim=1), rtol=1e-5, atol=1e-5 * float(sg.max()))
    captum_style = grads.abs().mean(dim=1).amax(dim=1)  # NoiseTunnel: max_c of the mean |g|
    assert not torch.allclose(sg, captum_style, rtol=1e-3)


# ---- Integrated Gradients ----

def test_integrated_gradients_is_a_right_riemann_sum(vgg_model):
    """Catches: a left Riemann sum (alpha from 0), a path that does not end at the image, a missing (I - I0)."""
    x = small_batch(2, size=32, seed=12)
    _, cls, _ = a4b.saliency_maps(vgg_model, x)
    base = torch.full((1, 3, 1, 1), -0.5)
    grad = lambda img: a4b.score_gradients(vgg_model, img, cls)[2]  # noqa: E731
    one = ex.integrated_gradients(vgg_model, x, cls, base, steps=1)
    torch.testing.assert_close(one, (x - base) * grad(x), rtol=1e-4, atol=1e-4 * float(one.abs().max()))
    two = ex.integrated_gradients(vgg_model, x, cls, base, steps=2, chunk=4)   # the path in one batch ...
    mid = base + 0.5 * (x - base)
    path = torch.stack([mid, x], dim=1).flatten(0, 1)                          # ... as here: same kernels
    g = a4b.score_gradients(vgg_model, path, cls.repeat_interleave(2))[2].view(2, 2, 3, 32, 32)
    torch.testing.assert_close(two, (x - base) * (g[:, 0] + g[:, 1]) / 2, rtol=1e-4, atol=1e-4 * float(two.abs().max()))


def smooth_model():
    """A small smooth, curved model: 2 Riemann steps leave a clear completeness gap (a bias-free ReLU net would not)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh(), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 6 * 6, 5), torch.nn.Tanh())


def test_completeness_gap_is_the_relative_error_of_the_attributions_sum():
    """Catches: a wrong gap formula (absolute instead of relative, or against S(I) instead of S(I) - S(I0))."""
    model, x, base = smooth_model(), small_batch(2, size=8, seed=13) * 3, torch.zeros(1, 3, 1, 1)
    _, cls, _ = a4b.saliency_maps(model, x)
    attr = ex.integrated_gradients(model, x, cls, base, steps=2)
    with torch.no_grad():
        s, s0 = model(x), model(base.expand_as(x))
    delta = s.gather(1, cls[:, None])[:, 0] - s0.gather(1, cls[:, None])[:, 0]
    gap = ex.ig_completeness_gap(model, x, cls, base, attr)
    torch.testing.assert_close(gap, (attr.sum(dim=(1, 2, 3)) - delta).abs() / delta.abs())
    assert (gap > 0.01).all()


def test_completeness_gap_shrinks_with_more_steps():
    """Catches: a path or a mean that does not converge to the integral."""
    model, x, base = smooth_model(), small_batch(2, size=8, seed=13) * 3, torch.zeros(1, 3, 1, 1)
    _, cls, _ = a4b.saliency_maps(model, x)
    coarse = ex.ig_completeness_gap(model, x, cls, base, ex.integrated_gradients(model, x, cls, base, steps=2))
    fine = ex.ig_completeness_gap(model, x, cls, base, ex.integrated_gradients(model, x, cls, base, steps=64,
                                                                               chunk=128))
    assert (fine < coarse / 10).all()


def test_the_suggested_steps_are_a_power_of_two_that_brings_the_gap_under_the_limit():
    """Catches: a suggestion that does not help (fewer steps, or not enough for a 1/steps error)."""
    assert ex.ig_steps_for(0.13, 32) == 128 and ex.ig_steps_for(0.01, 32) == 64


def test_a_large_completeness_gap_is_printed_written_and_warned_about(vgg_weights, tmp_path, capsys, monkeypatch):
    """Catches: Integrated Gradients' error at few steps going unreported."""
    write_image(tmp_path / "a.png", seed=14)
    monkeypatch.setattr(ex, "IG_GAP_WARN", 0.0)  # any gap is past it: the warning must come
    out = tmp_path / "o"
    ex.main(["--images", str(tmp_path), "--out", str(out), "--method", "integrated-gradients", "--ig-steps", "2",
             "--ig-baseline", "mean"])
    printed = capsys.readouterr()
    (row,) = csv.DictReader(open(out / "predictions.csv"))
    assert f"Integrated Gradients completeness gap {float(row['ig_completeness_gap']):.1%}" in printed.out
    assert "warning: Integrated Gradients: 1 image(s)" in printed.err and "--ig-steps 4" in printed.err
    settings = json.load(open(out / "settings.json"))
    assert settings["ig_baseline"] == "mean" and settings["ig_steps"] == 2
    assert settings["methods"] == ["integrated-gradients"] and settings["model"] == "VGG-16 (ImageNet)"


# ---- Grad-CAM ----

def test_gradcam_equals_a_hook_based_computation(vgg_model):
    """Catches: the wrong layer (not conv5_3's ReLU), weights not averaged spatially, no ReLU on the map."""
    x = small_batch(2, size=64, seed=4)
    _, cls, _ = a4b.saliency_maps(vgg_model, x)
    cam = ex.gradcam(vgg_model, x, cls)
    store = {}
    handle = vgg_model.features[29].register_forward_hook(lambda m, i, o: store.update(a=o))  # conv5_3's ReLU
    s = vgg_model(x.clone().requires_grad_(True))
    handle.remove()
    (g,) = torch.autograd.grad(s.gather(1, cls[:, None]).sum(), store["a"])
    ref = torch.relu((g.mean(dim=(2, 3), keepdim=True) * store["a"]).sum(1, keepdim=True))
    ref = torch.nn.functional.interpolate(ref, size=(64, 64), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(cam, ref.detach(), rtol=1e-4, atol=1e-4 * float(ref.detach().max()))


# ---- the table of methods and the command line ----

def test_every_method_in_the_table_gives_one_map_per_image(vgg_model):
    """Catches: a method in the table wired to another method's function or settings."""
    args = ex.parse_args(["--sg-samples", "2", "--ig-steps", "2"])
    table = ex.make_explainers(args, torch.zeros(1, 3, 1, 1))
    x = small_batch(2, size=32, seed=3)
    _, cls, _ = a4b.saliency_maps(vgg_model, x)
    direct = {"vanilla": a4b.saliency_maps(vgg_model, x, cls)[0],
              "smoothgrad": ex.smoothgrad(vgg_model, x, cls, samples=2),
              "integrated-gradients": ex.integrated_gradients(vgg_model, x, cls, torch.zeros(1, 3, 1, 1),
                                                              steps=2).abs().amax(1),
              "gradcam": ex.gradcam(vgg_model, x, cls)}
    assert list(table) == ex.METHODS
    for name, explain in table.items():
        maps, columns = explain(vgg_model, x, cls)
        torch.testing.assert_close(maps, direct[name], rtol=1e-4, atol=1e-4 * float(direct[name].max()))
        assert list(columns) == (["ig_completeness_gap"] if name == "integrated-gradients" else [])


@pytest.fixture(scope="module")
def all_methods(vgg_weights, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("all")
    write_image(tmp / "a.png", seed=5)
    write_image(tmp / "b.jpg", seed=6)
    ex.main(["--images", str(tmp), "--out", str(tmp / "o"), "--method", "all", "--sg-samples", "2", "--ig-steps", "2"])
    return tmp / "o"


def test_method_all_draws_the_four_maps_side_by_side(all_methods):
    """Catches: --method all drawing only the first method."""
    row = Image.open(all_methods / "a_saliency.png")
    assert row.size[0] > 3.5 * row.size[1]  # crop + four maps


def test_method_all_writes_a_centre_share_per_method(all_methods):
    """Catches: one method's share copied into every column."""
    rows = list(csv.DictReader(open(all_methods / "predictions.csv")))
    shares = [[float(r[f"centre_share_{m}"]) for m in ex.METHODS] for r in rows]
    assert all(0 <= s <= 1 for row in shares for s in row) and len({tuple(r) for r in zip(*shares)}) > 1


def test_settings_json_records_every_method_and_its_settings(all_methods):
    """Catches: the report describing other settings than the run's."""
    s = json.load(open(all_methods / "settings.json"))
    assert s["methods"] == ex.METHODS and s["sg_samples"] == 2 and s["ig_steps"] == 2 and s["ig_baseline"] == "black"


@pytest.mark.parametrize("flag", ["--sg-samples", "--ig-steps", "--cm-steps", "--batch-size"])
def test_counts_below_one_are_refused(flag, capsys):
    """Catches: --sg-samples 0 dividing by zero into NaN maps; --batch-size 0 left to assignment_4b.py's parser,
    whose checks the extras' parser does not run (argparse's parents copy the flags, not the checks): range()
    with step 0 fails with a traceback."""
    with pytest.raises(SystemExit) as e:
        ex.parse_args([flag, "0"])
    assert e.value.code == 2 and f"{flag} must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--sg-noise", "--cm-lr", "--cm-l2"])
def test_non_finite_numbers_are_refused(flag, capsys):
    """Catches: --sg-noise nan accepted, giving NaN maps with exit 0."""
    for value in ("nan", "inf"):
        with pytest.raises(SystemExit) as e:
            ex.parse_args([flag, value])
        assert e.value.code == 2 and f"{flag} must be a finite number >= 0, got {value}" in capsys.readouterr().err


def test_painting_model_outputs_go_beside_the_imagenet_ones_by_default(tmp_path, monkeypatch):
    """Catches: a painting model's maps overwriting the ImageNet ones in report/saliency/."""
    monkeypatch.chdir(tmp_path)
    assert ex.parse_args([]).out == os.path.join(ROOT, "report", "saliency_extras")
    assert ex.parse_args(["--checkpoint", "runs/r/best.pt"]).out == os.path.join(ROOT, "report", "saliency_paintings")
    assert ex.parse_args(["--checkpoint", "x.pt", "--out", "mine"]).out == "mine"


# ---- a painting-style model of assignment_4a.py ----

@pytest.fixture(scope="module")
def style_run(alexnet_weights, tmp_path_factory):
    import assignment_4a as a4a
    from conftest import make_style_dataset
    tmp = tmp_path_factory.mktemp("style")
    data = make_style_dataset(tmp / "d", n_train=4, n_val=2)
    a4a.main(["--data", str(data), "--runs", str(tmp / "runs"), "--remove", "2", "--epochs", "1", "--name", "r",
              "--workers", "1"])
    paintings = tmp / "paintings"
    paintings.mkdir()
    for f in sorted((data / "val").rglob("*.jpg"))[:2]:
        (paintings / f.name).write_bytes(f.read_bytes())
    return tmp / "runs" / "r" / "best.pt", paintings


def test_a_fine_tuned_painting_model_is_explained_with_its_style_names(style_run, tmp_path, capsys):
    """Catches: a painting model explained with ImageNet's names, or its head rebuilt differently from training."""
    ckpt, paintings = style_run
    out = tmp_path / "o"
    ex.main(["--images", str(paintings), "--out", str(out), "--checkpoint", str(ckpt), "--class", "Red_Period"])
    assert capsys.readouterr().out.count("saliency for class 2 'Red_Period'") == 2
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert {r["top1_name"] for r in rows} <= {"Blue_Period", "Green_Period", "Red_Period"} and "top4" not in rows[0]
    assert json.load(open(out / "settings.json"))["model"] == f"--checkpoint {ckpt}"


def test_a_checkpoint_of_the_trained_layer_alone_rebuilds_the_model_that_was_trained(style_run, alexnet_weights):
    """Catches: a checkpoint that stores only the new layer explained with a random new layer, or with frozen layers
    that are not the ImageNet weights it was trained on."""
    ckpt, _ = style_run
    ck = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert sorted(ck["model"]) == ["classifier.4.bias", "classifier.4.weight"]  # --remove 2 --train new
    state = ex.load_style_model(str(ckpt))[0].state_dict()
    assert all(torch.equal(state[k], v) for k, v in ck["model"].items())
    assert all(torch.equal(state[k], alexnet_weights[k]) for k in ck["frozen"]["names"])


def test_a_checkpoint_holding_a_tensor_the_model_lacks_is_refused(style_run, tmp_path):
    """Catches: a tensor the rebuilt model has no place for dropped without a word (strict=False loads the rest)."""
    ckpt, _ = style_run
    ck = torch.load(ckpt, map_location="cpu", weights_only=True)
    ck["model"]["classifier.9.weight"] = torch.zeros(3, 4096)
    torch.save(ck, tmp_path / "best.pt")
    with pytest.raises(ex.vgg16.RunError, match="does not fit this model: it stores classifier.4.bias, "
                                                "classifier.4.weight, classifier.9.weight"):
        ex.load_style_model(str(tmp_path / "best.pt"))


def test_a_run_trained_on_its_own_weights_file_is_rebuilt_from_that_file(alexnet_weights, tmp_path):
    """Catches: --checkpoint rebuilding from torchvision's cached weights (the run's --weights read from the wrong
    key), which fails the frozen layers' digest of a run trained on other weights."""
    import assignment_4a as a4a
    from conftest import make_style_dataset
    own = {k: v.clone() for k, v in alexnet_weights.items()}
    own["features.0.bias"] += 1.0
    torch.save(own, tmp_path / "own.pth")
    data = make_style_dataset(tmp_path / "d", n_train=4, n_val=2)
    a4a.main(["--data", str(data), "--runs", str(tmp_path / "runs"), "--remove", "2", "--epochs", "1", "--name", "r",
              "--workers", "1", "--weights", str(tmp_path / "own.pth")])
    state = ex.load_style_model(str(tmp_path / "runs" / "r" / "best.pt"))[0].state_dict()
    assert torch.equal(state["features.0.bias"], own["features.0.bias"])


def test_a_missing_checkpoint_is_one_sentence(vgg_weights, tmp_path):
    """Catches: a traceback for a mistyped --checkpoint."""
    with pytest.raises(SystemExit) as e:
        ex.main(["--images", str(tmp_path), "--checkpoint", str(tmp_path / "nope.pt")])
    assert str(e.value).startswith(f"error: --checkpoint {tmp_path / 'nope.pt'} does not exist")


def test_a_checkpoint_whose_head_disagrees_with_its_styles_is_one_sentence(alexnet_weights, tmp_path):
    """Catches: raw multi-line PyTorch text for a checkpoint edited or mixed up by hand."""
    import torchvision
    model = torchvision.models.alexnet(weights=None)
    model.classifier = torch.nn.Sequential(*list(model.classifier)[:6], torch.nn.Linear(4096, 4))
    path = tmp_path / "best.pt"
    torch.save({"model": model.state_dict(), "classes": ["A", "B", "C"], "config": {"remove": 1}}, path)
    write_image(tmp_path / "a.png")
    with pytest.raises(SystemExit) as e:
        ex.main(["--images", str(tmp_path), "--checkpoint", str(path), "--out", str(tmp_path / "o")])
    assert str(e.value) == (f"error: --checkpoint {path} does not fit a remove-1 AlexNet: its new layer has 4 outputs "
                            "but it lists 3 style names; use a best.pt that assignment_4a.py wrote unchanged")


# ---- the class model (the paper's section 2) ----

def biased(vgg_model):
    model = copy.deepcopy(vgg_model)
    for m in model.modules():  # random init has zero biases: from the zero image every ReLU would be shut
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.constant_(m.bias, 0.01)
    return model


def test_class_model_ascends_its_objective_from_the_zero_image(vgg_model):
    """Catches: gradient descent instead of ascent, or a start other than the (normalised) mean image."""
    model = biased(vgg_model)
    image, history = ex.class_model(model, 281, size=32, steps=8, lr=0.5, l2=1e-3)
    assert image.shape == (3, 32, 32) and len(history) == 8
    assert history[-1] > history[0] and history == sorted(history)  # plain gradient ascent, small steps
    with torch.no_grad():  # the first objective is the zero image's score, the penalty being zero there
        assert history[0] == pytest.approx(model(torch.zeros(1, 3, 32, 32))[0, 281].item(), rel=1e-5)


def test_class_model_penalty_is_l2_of_the_image(vgg_model):
    """Catches: the L2 penalty left out of the objective or its gradient (lambda with no effect)."""
    model = biased(vgg_model)
    free, _ = ex.class_model(model, 281, size=32, steps=3, lr=0.5, l2=0.0)
    tied, history = ex.class_model(model, 281, size=32, steps=3, lr=0.5, l2=0.5)
    assert tied.norm() < free.norm()
    with torch.no_grad():  # the objective printed is the score minus lambda ||I||^2 of the image of that step
        assert history[0] == pytest.approx(model(torch.zeros(1, 3, 32, 32))[0, 281].item(), rel=1e-5)


def test_class_model_is_shown_with_the_mean_image_added_back(vgg_weights, tmp_path, monkeypatch):
    """Catches: a per-channel stretch to [0, 1], which throws away the mean and the colour balance."""
    pre = vgg16.WEIGHTS.transforms()
    image = torch.zeros(3, 4, 4)
    image[0, 0, 0] = 1.0
    image[2, 1, 1] = -100.0
    monkeypatch.setattr(ex, "class_model", lambda *a, **k: (image, [0.0, 1.0]))
    shown = {}
    plt = a4b.pyplot()
    monkeypatch.setattr(plt.Axes, "imshow", lambda self, px, **k: shown.setdefault("px", px))
    ex.main(["--class-model", "tabby", "--out", str(tmp_path)])
    px = shown["px"]
    assert px[3, 3].tolist() == pytest.approx(list(pre.mean))          # zero = the mean colour, as the paper shows
    assert px[0, 0, 0] == pytest.approx(pre.mean[0] + pre.std[0])
    assert px[1, 1, 2] == 0.0                                        # clipped, not stretched


def test_class_model_on_the_command_line_needs_no_images(vgg_weights, tmp_path, capsys):
    """Catches: --class-model failing for want of an image folder; its file not written where it says."""
    ex.main(["--class-model", "tabby", "--cm-steps", "2", "--out", str(tmp_path), "--images", str(tmp_path / "none")])
    line = capsys.readouterr().out
    assert "class 281 'tabby': objective S_c - lambda ||I||^2 from" in line
    path = tmp_path / "class_model_281_tabby.png"
    assert f"wrote {path}" in line and Image.open(path).size[0] > 300


# ---- localisation (the paper's section 3.2) ----

def test_localise_grows_the_box_from_the_seeds_towards_the_object():
    """Catches: the box of the foreground seeds alone (no graph cut), or seeds from the wrong quantiles."""
    rng = np.random.default_rng(0)
    img = (rng.normal(110, 12, (64, 64, 3))).clip(0, 255).astype(np.uint8)  # grey-blue background
    img[20:44, 24:52] = (rng.normal([210, 40, 30], 12, (24, 28, 3))).clip(0, 255).astype(np.uint8)  # a red object
    smap = rng.random((64, 64)) * 0.2
    smap[22:42, 27:49] += rng.random((20, 22))  # saliency on the object, though not all of it, and noisy
    mask, box = ex.localise(img, smap)

    def iou(b):  # against the object's true box (24, 20, 52, 44)
        inter = max(0, min(b[2], 52) - max(b[0], 24)) * max(0, min(b[3], 44) - max(b[1], 20))
        return inter / ((b[2] - b[0]) * (b[3] - b[1]) + 28 * 24 - inter)
    seeds = np.argwhere(smap >= np.quantile(smap, 0.95))
    seed_box = (seeds[:, 1].min(), seeds[:, 0].min(), seeds[:, 1].max() + 1, seeds[:, 0].max() + 1)
    assert iou(box) > 0.7 and iou(box) > iou(seed_box) + 0.05, (box, seed_box)
    assert mask[32, 38] and not mask[5, 5]


def test_localise_on_the_command_line_writes_each_images_box(vgg_weights, tmp_path, monkeypatch):
    """Catches: boxes.csv rows out of step with the images, or the box not the one localise() found."""
    write_image(tmp_path / "a.png", seed=10)
    write_image(tmp_path / "b.png", seed=11)
    boxes = iter([(np.ones((224, 224), bool), (1, 2, 30, 40)), (np.zeros((224, 224), bool), None)])
    monkeypatch.setattr(ex, "localise", lambda img, smap: next(boxes))
    out = tmp_path / "o"
    ex.main(["--images", str(tmp_path), "--out", str(out), "--localise"])
    rows = list(csv.DictReader(open(out / "boxes.csv")))
    assert [(r["file"], r["x0"], r["y0"], r["x1"], r["y1"], r["mask_share"]) for r in rows] == [
        ("a.png", "1", "2", "30", "40", "1.0000"), ("b.png", "", "", "", "", "0.0000")]
    assert Image.open(out / "localisation.png").size[0] > 300


# ---- how far to trust a map ----

def test_rank_correlation_of_a_ranking_with_itself_and_its_reverse():
    """Catches: a correlation of values instead of ranks, or a sign error."""
    a = torch.arange(16.0).view(1, 4, 4)
    torch.testing.assert_close(ex.rank_correlation(torch.cat([a, a]), torch.cat([a ** 3, -a])),
                               torch.tensor([1.0, -1.0], dtype=torch.float64))


def test_rank_correlation_is_spearmans_rho_with_ties():
    """Catches: ties ranked by index (Grad-CAM's zero plateau)."""
    from scipy.stats import spearmanr
    g = torch.Generator().manual_seed(0)
    a = torch.relu(torch.randn(3, 12, 12, generator=g))      # about half of each map is a tied 0 plateau
    b = torch.relu(torch.randn(3, 12, 12, generator=g) + a)
    ours = ex.rank_correlation(a, b)
    for i in range(3):
        assert ours[i].item() == pytest.approx(spearmanr(a[i].flatten(), b[i].flatten()).statistic, abs=1e-12)


def test_rank_correlation_of_a_constant_map_is_undefined_not_a_number():
    """Catches: a number printed where rho does not exist."""
    zero = torch.zeros(2, 5, 5)
    assert torch.isnan(ex.rank_correlation(zero, zero)).all() and ex.fmt_rho(float("nan")) == "undefined"


def test_randomisation_reinitialises_from_the_top_down_and_leaves_the_model_alone(vgg_model):
    """Catches: layers re-initialised bottom-up, one at a time instead of cumulatively, or in the caller's model."""
    x = small_batch(2, size=32, seed=7)
    maps, cls, _ = a4b.saliency_maps(vgg_model, x)
    before = vgg_model.classifier[6].weight.clone()
    explain = ex.without_columns(ex.vanilla)
    curve = ex.randomisation_test(vgg_model, x, cls, explain, maps)
    assert [n for n, _ in curve][:3] == ["none", "classifier.6", "classifier.3"] and len(curve) == 17
    # the "trained" model is random here too, so two random networks' maps still share the edges of the input
    # (Adebayo et al.'s point about edge detectors): the floor measured is ~0.33, not 0
    assert curve[0][1] == 1.0 and all(abs(r) < 0.5 for _, r in curve[1:])
    assert torch.equal(vgg_model.classifier[6].weight, before)


def test_randomisation_compares_with_the_map_it_is_given(vgg_model):
    """Catches: the original map recomputed (25-32 extra passes per image for SmoothGrad and IG) instead of reused."""
    x = small_batch(1, size=32, seed=7)
    maps, cls, _ = a4b.saliency_maps(vgg_model, x)
    calls = []

    def explain(model, images, classes):
        calls.append(model is vgg_model)
        return ex.vanilla(model, images, classes), {}
    ex.randomisation_test(vgg_model, x, cls, explain, maps)
    assert len(calls) == 16 and not any(calls)


def test_deletion_and_insertion_match_a_direct_computation(vgg_model):
    """Catches: deletion towards the wrong colour, insertion from the wrong start, a wrong trapezoid."""
    from torchvision.transforms.functional import gaussian_blur
    x = small_batch(2, size=32, seed=8)
    maps, cls, _ = a4b.saliency_maps(vgg_model, x)
    dele, ins = ex.deletion_insertion(vgg_model, x, cls, maps, steps=1)  # curves of two points: start and end
    with torch.no_grad():
        p = lambda img: vgg_model(img).softmax(1).gather(1, cls[:, None])[:, 0]  # noqa: E731
        blurred = gaussian_blur(x, kernel_size=[51, 51], sigma=[10.0, 10.0])
        torch.testing.assert_close(dele, (p(x) + p(torch.zeros_like(x))) / 2)
        torch.testing.assert_close(ins, (p(blurred) + p(x)) / 2)


def test_deletion_removes_the_most_salient_pixels_first():
    """Catches: pixels removed in ascending order of saliency (the least salient first)."""
    class Watch(torch.nn.Module):  # the "probability" of class 0 is the share of pixel (0, 0)'s value kept
        def forward(self, x):
            return torch.stack([x[:, 0, 0, 0] * 50, torch.full((len(x),), 25.0)], 1)
    x = torch.ones(1, 3, 32, 32)
    smap = torch.zeros(1, 32, 32)
    smap[0, 0, 0] = 1.0  # pixel (0, 0) is the most salient
    dele, _ = ex.deletion_insertion(Watch(), x, torch.tensor([0]), smap, steps=16)
    assert dele.item() < 0.1  # removed at the first step: the class probability falls at once


def test_trust_on_the_command_line_writes_its_tables(vgg_weights, tmp_path, capsys):
    """Catches: --trust computing for another method than the one asked, or its files not written."""
    write_image(tmp_path / "a.png", seed=9)
    out = tmp_path / "o"
    ex.main(["--images", str(tmp_path), "--out", str(out), "--method", "gradcam", "--trust"])
    assert "gradcam                deletion AUC" in capsys.readouterr().out
    sanity = list(csv.DictReader(open(out / "sanity.csv")))
    assert {r["method"] for r in sanity} == {"gradcam"} and len(sanity) == 17
    assert sanity[0]["mean_rank_correlation"] == "1.0000"
    rows = list(csv.DictReader(open(out / "deletion_insertion.csv")))
    assert [(r["file"], r["method"]) for r in rows] == [("a.png", "gradcam")]
    assert Image.open(out / "sanity.png").size[0] > 500


def test_gradcam_keeps_only_positive_evidence():
    """Catches: Grad-CAM without its final ReLU (Selvaraju et al.: only features with a positive influence on the
    class), which would show evidence against the class as if it were evidence for it."""
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
            self.avgpool = nn.AdaptiveAvgPool2d(2)
            self.classifier = nn.Sequential(nn.Linear(16, 2))
    torch.manual_seed(0)
    model = Tiny().eval()
    with torch.no_grad():
        model.classifier[0].weight.copy_(torch.stack([-torch.ones(16), torch.ones(16)]))  # class 0: all against
        model.classifier[0].bias.zero_()
    x = torch.rand(2, 3, 16, 16)
    against = ex.gradcam(model, x, torch.tensor([0, 0]))
    towards = ex.gradcam(model, x, torch.tensor([1, 1]))
    assert against.shape == (2, 16, 16) and torch.equal(against, torch.zeros_like(against))
    assert towards.min() >= 0 and towards.max() > 0


class Axis:
    """A matplotlib axis that records what is drawn on it."""

    def __init__(self):
        self.drawn = []

    def imshow(self, image, cmap=None, alpha=None):
        self.drawn.append((image, cmap, alpha))

    def set_title(self, *args, **kwargs):
        pass

    def axis(self, *args):
        pass


def test_one_methods_overlay_panel_is_its_map_over_the_crop():
    """Catches: the overlay panel of a single method drawn without the crop under it (a coloured map alone, which
    says nothing about where in the photograph the evidence is), or the map drawn opaque over the crop."""
    import numpy as np
    crop, smap = np.zeros((4, 4, 3)), np.arange(16.0).reshape(4, 4)
    axes = [Axis(), Axis(), Axis()]
    ex.draw_methods(axes, crop, {"vanilla": smap}, "t")
    (under, _, _), (over, cmap, alpha) = axes[2].drawn
    assert under is crop and cmap == "jet" and alpha == 0.5 and np.allclose(over, smap / 15)
    assert [d[1] for d in axes[1].drawn] == ["gray"]  # the map itself, alone, in grey
