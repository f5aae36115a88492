"""saliency_ground_truth.py: a benchmark whose evidence is known. On a seeded small run, the methods that explain the
model must beat the baselines that see no model, fall to them when the model is randomised, and a planted bug in a
map must fall to them too. Each test names the bug it catches."""
import csv

import numpy as np
import pytest
import torch

import saliency_ground_truth as gt


@pytest.fixture(scope="module")
def learned():
    """A small seeded run: 600 training and 200 test images (enough for the pointing game's intervals to separate a
    method from a baseline), the trained model, and the test images' true boxes."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x_train, y_train, _ = gt.make_data(600, g)
    x, y, boxes = gt.make_data(200, g)
    model = gt.train(gt.SmallCNN(), x_train, y_train, 12, 0)
    return model, x, y, boxes


def pointing(maps, boxes):
    return gt.scores(maps, boxes)[0]


def best_baseline(x, boxes):
    return max((pointing(gt.baseline_maps(x, b, 0), boxes) for b in gt.BASELINES), key=lambda h: h.mean().item())


def test_the_model_learns_the_task(learned):
    """Catches: a benchmark on a model that learned nothing (its maps would explain noise)."""
    model, x, y, _ = learned
    assert gt.accuracy(model, x, y) >= gt.MIN_ACCURACY


def test_the_true_box_holds_the_pattern_that_decides_the_class():
    """Catches: boxes that do not frame the planted pattern (every score would be measured against the wrong place)."""
    g = torch.Generator().manual_seed(3)
    x, y, boxes = gt.make_data(4, g)
    clean = torch.zeros_like(x)
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 2, (4,), generator=g)
    assert torch.equal(labels, y)
    for i, (x0, y0, x1, y1) in enumerate(boxes.int().tolist()):
        gt.stamp(clean[i], gt.PATTERNS["TL"[y[i]]], y0, x0)
        assert clean[i].sum() == 4 * gt.CELL ** 2 * gt.AMPLITUDE * 3 and (x1 - x0, y1 - y0) == (3 * gt.CELL,) * 2


@pytest.mark.parametrize("method", ["vanilla", "gradcam"])
def test_vanilla_saliency_and_gradcam_beat_every_baseline_on_the_pointing_game(learned, method):
    """Catches: a method that points no better than a map that sees no model."""
    model, x, y, boxes = learned
    hits = pointing(gt.method_maps(model, x, y, method).detach(), boxes)
    for b in gt.BASELINES:
        assert gt.beats(hits, pointing(gt.baseline_maps(x, b, 0), boxes)), b


@pytest.mark.parametrize("method", ["vanilla", "gradcam"])
def test_randomising_the_model_brings_the_method_down_to_the_baselines(learned, method):
    """Catches: a map that stays on the pattern when the model knows nothing any more: it would not be explaining the
    model (Adebayo et al. 2018)."""
    model, x, y, boxes = learned
    rows = gt.randomisation_rows(model, x, y, boxes, 0)
    every_layer = [r for r in rows if r[0] == f"{method} (randomised)"][-1]
    assert not gt.beats(every_layer[3], best_baseline(x, boxes))


def test_a_map_that_ignores_the_gradient_falls_to_the_baselines(learned):
    """Catches: a map made of the input instead of its gradient (score_gradients returning x): it lights the distractor
    as much as the pattern, and the paper's map beats it by far."""
    import assignment_4b as a4b
    model, x, y, boxes = learned
    g = a4b.score_gradients(model, x, y)[2]
    bug = pointing((x.detach() * 1 + 0 * g).abs().amax(dim=1), boxes)
    assert not gt.beats(bug, best_baseline(x, boxes)) and gt.beats(pointing(g.abs().amax(dim=1), boxes), bug)


def test_a_max_over_the_wrong_axis_falls_to_the_baselines(learned):
    """Catches: max over the rows instead of the colour channels (a map that knows only the column)."""
    import assignment_4b as a4b
    model, x, y, boxes = learned
    g = a4b.score_gradients(model, x, y)[2]
    wrong = g.abs().amax(dim=(1, 2))[:, None, :].expand(-1, gt.SIDE, -1)
    hits = pointing(wrong, boxes)
    right = pointing(g.abs().amax(dim=1), boxes)
    assert gt.beats(right, hits) and not gt.beats(hits, best_baseline(x, boxes))


def test_rank_auc_is_the_mann_whitney_statistic():
    """Catches: an AUC of values instead of ranks, or ties counted as wins."""
    v = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.4])
    pos = torch.tensor([False, True, False, True, False])
    # positives 0.4 and 0.8 against negatives 0.1, 0.35, 0.4: pairs won 2 + 3, one tie (0.4, 0.4) counted as half
    assert gt.rank_auc(v, pos) == pytest.approx((2 + 0.5 + 3) / 6)


@pytest.fixture(scope="module")
def command_run(tmp_path_factory):
    """The command as a user runs it, small: its output folder and what it printed."""
    import contextlib
    import io
    out, printed = tmp_path_factory.mktemp("gt"), io.StringIO()
    with contextlib.redirect_stdout(printed):
        gt.main(["--out", str(out), "--train-images", "500", "--test-images", "20", "--epochs", "10"])
    return out, printed.getvalue()


def test_the_scores_read_the_box_exactly_as_drawn():
    """Catches (mutmut survivors): the benchmark's pointing game given the report's 15-px tolerance (or 1 px), so that
    a peak beside the true box counts as a hit; the AUC's box mask built from a swapped coordinate. The box is off
    the diagonal and not square, so that x and y, start and end, cannot stand in for each other."""
    box = [4, 10, 20, 14]                                           # x0, y0, x1, y1
    on_box = torch.zeros(gt.SIDE, gt.SIDE)
    on_box[10:14, 4:20] = 1.0
    beside = torch.zeros(gt.SIDE, gt.SIDE)
    beside[12, 20] = 1.0                                            # the pixel just right of the box
    hits, mass, auc = gt.scores(torch.stack([on_box, beside]), torch.tensor([box, box]))
    assert hits.tolist() == [1.0, 0.0] and mass.tolist() == [1.0, 0.0] and auc[0].item() == 1.0


def test_the_command_writes_the_table_and_the_figure(command_run):
    """Catches: ground_truth.csv without the randomisation rows or the intervals; no figure."""
    tmp_path, printed = command_run
    rows = list(csv.DictReader(open(tmp_path / "ground_truth.csv")))
    assert [r["map"] for r in rows if r["kind"] != "randomised"] == gt.METHODS + gt.BASELINES
    assert len([r for r in rows if r["kind"] == "randomised"]) == 2 * 4  # two methods x four weight layers
    assert all(r["beats_brightness"] in ("yes", "no") for r in rows if r["kind"] == "method")
    for r in rows:
        assert float(r["pointing_lo"]) <= float(r["pointing"]) <= float(r["pointing_hi"])
    assert (tmp_path / "ground_truth.png").stat().st_size > 10000
    assert "small CNN: test accuracy" in printed


def test_the_report_shows_the_benchmark_from_its_table(command_run, tmp_path):
    """Catches: the report's benchmark numbers not being the run's, or the section missing when the run exists."""
    from conftest import load_report_script
    make_report = load_report_script("make_report")
    none = str(tmp_path / "none")
    make_report.main(["--runs", none, "--saliency", none, "--paintings", none, "--extras", none, "--data", none,
                      "--images", none, "--ground-truth", str(command_run[0]), "--out", str(tmp_path / "rep"),
                      "--no-pdf"])
    md = (tmp_path / "rep" / "report.md").read_text()
    (vanilla,) = [r for r in csv.DictReader(open(command_run[0] / "ground_truth.csv")) if r["map"] == "vanilla"]
    p = lambda k: f"{100 * float(vanilla[k]):.1f}%"  # noqa: E731
    assert f"| vanilla | {p('pointing')} ({p('pointing_lo')}-{p('pointing_hi')}) |" in md
    assert "How far to trust these maps: a benchmark with known evidence" in md and "ground_truth.png" in md


def test_beating_a_baseline_needs_the_intervals_lower_bound_above_zero():
    """Catches: "beats" read from the mean difference: a method ahead on average but inside the noise (a paired
    interval that spans 0) would be said to beat the baseline."""
    noisy = torch.tensor([1.0, -0.9] * 20)      # mean +0.05, spread 0.95: the interval spans 0
    clear = torch.tensor([0.2, 0.1] * 20)       # mean +0.15, every image ahead
    zero = torch.zeros(40)
    assert not gt.beats(noisy, zero) and gt.beats(clear, zero)


def test_a_method_beats_a_baseline_only_when_every_score_does(tmp_path):
    """Catches: "beats" written as any of the three scores beating the baseline instead of all three."""
    n = 40
    ahead, even = torch.full((n,), 0.9) + torch.arange(n) * 1e-3, torch.full((n,), 0.5) + torch.arange(n) * 1e-3
    scored = {"vanilla": (ahead, ahead, even)}  # ahead on the pointing game and the mass, not on the rank AUC
    scored.update({b: (even, even, even) for b in gt.BASELINES})
    faithful = {name: (0.1, 0.9) for name in scored}
    gt.write_scores(str(tmp_path / "g.csv"), scored, faithful, [])
    row = next(r for r in csv.DictReader(open(tmp_path / "g.csv")) if r["map"] == "vanilla")
    assert all(row[f"beats_{b.replace(' ', '_')}"] == "no" for b in gt.BASELINES)


def test_the_uniform_baseline_is_a_random_map_not_a_constant():
    """Catches: a constant map, whose argmax is pixel (0, 0) on every image: a straw man that never hits a box."""
    x = torch.zeros(50, 3, gt.SIDE, gt.SIDE)
    maps = gt.baseline_maps(x, "uniform", 0)
    peaks = {int(m.argmax()) for m in maps}
    assert len(peaks) > 40 and abs(maps.mean().item() - 0.5) < 0.01


def test_the_uniform_baseline_is_drawn_from_the_seed():
    """Catches (mutmut survivors): the random map drawn from torch's global generator, so that the same --seed gives
    another baseline row on every run."""
    x = torch.zeros(4, 3, gt.SIDE, gt.SIDE)
    torch.manual_seed(1)
    first = gt.baseline_maps(x, "uniform", 7)
    torch.manual_seed(2)
    assert torch.equal(gt.baseline_maps(x, "uniform", 7), first)
    assert not torch.equal(gt.baseline_maps(x, "uniform", 8), first)


def test_the_centre_prior_baseline_is_4bs_centre_prior_on_every_image():
    """Catches (mutmut survivors): the centre prior's name not matched, so that its row holds the edge map instead."""
    import assignment_4b as a4b
    x = torch.rand(3, 3, gt.SIDE, gt.SIDE, generator=torch.Generator().manual_seed(0))
    maps = gt.baseline_maps(x, "centre prior", 0)
    assert maps.shape == (3, gt.SIDE, gt.SIDE)
    assert all(torch.equal(m, a4b.centre_prior(gt.SIDE, gt.SIDE)) for m in maps)


@pytest.mark.parametrize("name", ["edges", "brightness"])
def test_the_image_baselines_are_the_sobel_edge_strength_and_the_brightness(name):
    """Catches (mutmut survivors): a wrong coefficient in the Sobel kernel, or the two image baselines swapped.
    Against scipy.ndimage in float64: per channel the gradient magnitude of the zero-padded image, then the max over
    the colour channels (the saliency map's rule); the brightness map, the max of |x| over the channels."""
    from scipy import ndimage
    x = torch.randn(2, 3, gt.SIDE, gt.SIDE, generator=torch.Generator().manual_seed(0))
    a = x.double().numpy()
    if name == "edges":
        mag = [[(ndimage.sobel(ch, axis=1, mode="constant") ** 2 + ndimage.sobel(ch, axis=0, mode="constant") ** 2)
                ** 0.5 for ch in image] for image in a]  # image by image: on 4-d arrays sobel smooths across them
        expected = torch.from_numpy(np.array(mag)).amax(dim=1)
    else:
        expected = x.double().abs().amax(dim=1)
    torch.testing.assert_close(gt.baseline_maps(x, name, 0).double(), expected, rtol=1e-5, atol=1e-5)


def test_cascading_randomisation_goes_from_the_top_layer_down():
    """Catches: the layers re-initialised bottom-up (Adebayo et al. randomise from the output), so that the first
    row already destroys the features every later layer reads."""
    torch.manual_seed(0)
    model = gt.SmallCNN().eval()
    g = torch.Generator().manual_seed(1)
    x, y, boxes = gt.make_data(4, g)
    rows = gt.randomisation_rows(model, x, y, boxes, 0)
    order = [r[2] for r in rows if r[0].startswith("vanilla")]
    assert order == ["classifier", "features.6", "features.3", "features.0"]
    assert [r[1] for r in rows if r[0].startswith("vanilla")] == [1, 2, 3, 4]


def test_two_images_give_a_mean_with_an_interval():
    """Catches (a mutmut survivor): the interval of a mean given only from three images on (n > 2), where two already
    have a standard deviation: 0.2 and 0.4 give 0.3 +- 1.96 x 0.1414 / sqrt(2)."""
    mean, low, high = gt.mean_interval(torch.tensor([0.2, 0.4], dtype=torch.float64))
    half = gt.Z95 * (0.02 ** 0.5) / 2 ** 0.5
    assert (mean, low, high) == pytest.approx((0.3, 0.3 - half, 0.3 + half), abs=1e-9)


def test_the_pointing_games_interval_is_wilsons_over_the_hit_count():
    """Catches: the hit count recovered from the mean by truncation: 29 hits of 100 give a mean of 0.29, and
    0.29 * 100 is 28.999999999999996 in floating point, so int() would report the interval of 28 hits."""
    from report.stats import wilson_interval
    hits = torch.tensor([1.0] * 29 + [0.0] * 71)
    mean, low, high = gt.mean_interval(hits, proportion=True)
    assert mean == pytest.approx(0.29) and (low, high) == wilson_interval(29, 100)
