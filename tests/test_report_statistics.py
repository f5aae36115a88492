"""The report's conclusions follow from the numbers: which runs are compared, intervals, paired tests, chance, and
the words each result earns. Each test names the bug it catches."""
import csv
import json
import os
import time
from collections import Counter

import pytest
from scipy.stats import binomtest

from conftest import load_report_script


def load(name):
    return load_report_script(name)


make_report = load("make_report")
part1 = load("part1")
report_runs = load("runs")
stats = load("stats")
CLASSES = ["A", "B", "C"]


# ---- the statistics, against scipy ----

@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (400, 800), (45, 800), (1, 1)])
def test_wilson_interval_is_scipys(k, n):
    """Catches: a Wald interval (p +- z sqrt(p(1-p)/n)), a 1.96 rounded to 2, the continuity term dropped."""
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert stats.wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_wilson_interval_stays_in_0_1_where_rounding_would_leave_it_and_knows_nothing_of_no_paintings():
    """Catches (mutmut's survivors): the clamp to 1 loosened (16 of 16 right: the formula's upper end is 1 + 2e-16
    in floating point) and an empty set given anything but the whole of [0, 1]."""
    assert stats.wilson_interval(16, 16)[1] == 1.0 and stats.wilson_interval(0, 21)[0] == 0.0
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("b,c", [(5, 1), (12, 30), (100, 100), (1, 9), (0, 7), (250, 180)])
def test_mcnemar_exact_is_scipys_binomial_test_of_the_discordant_pairs(b, c):
    """Catches: a one-sided p-value, the concordant paintings counted, the chi-squared approximation."""
    assert stats.mcnemar_exact(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-9)


def test_mcnemar_with_no_discordant_painting_is_one():
    """Catches: a division by zero when two runs agree on every painting."""
    assert stats.mcnemar_exact(0, 0) == 1.0


@pytest.mark.parametrize("k,n,p", [(7, 18, 1 / 3), (12, 18, 1 / 3), (90, 800, 0.1), (300, 800, 0.1)])
def test_above_chance_is_scipys_one_sided_binomial_test(k, n, p):
    """Catches: a two-sided test (half as strict), or P(X > k) instead of P(X >= k)."""
    assert stats.above_chance_p(k, n, p) == pytest.approx(binomtest(k, n, p, alternative="greater").pvalue,
                                                                rel=1e-9)


def test_a_style_never_or_always_right_has_a_certain_count():
    """Catches (mutmut's survivors): the p = 0 and p = 1 cases (no logarithm of 0 there) swapped, inverted or sent
    down the logarithm: with p = 0, 0 of 5 right is certain; with p = 1, 5 of 5."""
    pmf = stats.binomial_pmf
    assert [pmf(k, 5, 0.0) for k in (0, 1, 5)] == [1.0, 0.0, 0.0]
    assert [pmf(k, 5, 1.0) for k in (0, 4, 5)] == [0.0, 0.0, 1.0]


def test_a_tail_that_holds_every_outcome_is_exactly_one():
    """Catches (a mutmut survivor): the cap at 1 loosened. "At least 0 of 3 right" is certain, but the eight
    probabilities of 1/2 x 1/2 x 1/2 add up to 1 + 2e-16 in floating point."""
    assert stats.above_chance_p(0, 3, 0.5) == 1.0


def test_precision_recall_f1_from_the_confusion_matrix():
    """Catches: precision and recall swapped (rows are true styles, columns predicted), a micro instead of a macro
    mean."""
    scores, macro = part1.f1_table([[5, 1], [2, 2]])
    (p0, r0, f0), (p1, r1, f1) = scores
    assert (p0, r0, p1, r1) == pytest.approx((5 / 7, 5 / 6, 2 / 3, 2 / 4))
    assert f0 == pytest.approx(2 * p0 * r0 / (p0 + r0)) and macro == pytest.approx((f0 + f1) / 2)


def test_a_style_predicted_once_or_with_precision_plus_recall_at_most_one_gets_its_own_scores():
    """Catches (mutmut survivors): the guard against a never-predicted style raised from 1 to 2 (a style predicted or
    present once gets precision or recall 1/2 for 1), and F1 zeroed unless precision + recall exceeds 1."""
    scores, macro = part1.f1_table([[1, 0, 0], [0, 2, 2], [0, 2, 0]])
    assert scores == [(1.0, 1.0, 1.0), (0.5, 0.5, 0.5), (0.0, 0.0, 0.0)] and macro == 0.5


# ---- synthetic runs: what assignment_4a.py writes, with chosen per-painting results ----

def make_run(runs, name, remove, train, right, epochs=2, planned=None, lr=0.001, mtime=None, n_val=None):
    """A run folder: metrics.json, config.json and val_predictions.csv where painting i is right iff right[i]."""
    d = runs / name
    d.mkdir(parents=True)
    n = len(right)
    acc = sum(right) / n
    per = Counter(i % 3 for i in range(n))
    hist = [{"epoch": e + 1, "loss_train": 1.0, "loss_val": 1.0, "accuracy_train": acc, "accuracy_val": acc,
             "lr": lr, "seconds": 1.0} for e in range(epochs)]
    conf = [[0] * 3 for _ in range(3)]
    with open(d / "val_predictions.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "true_style", "predicted_style", "p_true", "p_predicted", "loss"])
        for i, ok in enumerate(right):
            t = i % 3
            p = t if ok else (t + 1) % 3
            conf[t][p] += 1
            w.writerow([f"val/{CLASSES[t]}/{i:04d}.jpg", CLASSES[t], CLASSES[p], 0.5, 0.6, 0.69])
    m = {"run": name, "remove": remove, "train": train, "classes": CLASSES,
         "counts": {"train": {c: 40 for c in CLASSES}, "val": {CLASSES[k]: per[k] for k in range(3)}},
         "epochs": hist, "best": hist[0], "best_val_accuracy": acc, "best_confusion": conf,
         "parameters": {"imagenet_alexnet": 61100840, "after_surgery": 57000000, "trained": 12291},
         "val_predictions": "val_predictions.csv", "diverged": None}
    json.dump(m, open(d / "metrics.json", "w"))
    json.dump({"epochs": planned or epochs, "lr": lr, "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 64,
               "seed": 0, "precision": "fp32", "weights": None, "augment": train == "all"},
              open(d / "config.json", "w"))
    if mtime:
        os.utime(d / "metrics.json", (mtime, mtime))
    return d


def report(tmp_path, runs, *extra):
    make_report.main(["--runs", str(runs), "--saliency", str(tmp_path / "none"), "--paintings", str(tmp_path / "none"),
                      "--extras", str(tmp_path / "none"), "--data", str(tmp_path / "none"), "--images",
                      str(tmp_path / "none"), "--out", str(tmp_path / "rep"), "--no-pdf", *extra])
    return (tmp_path / "rep" / "report.md").read_text()


def pattern(n, right_share, offset=0):
    return [((i + offset) % 100) < right_share * 100 for i in range(n)]


# ---- which runs are compared ----

def test_only_the_newest_set_that_differs_in_what_the_sheet_varies_is_compared(tmp_path):
    """Catches: a 1-epoch stray run compared with 2-epoch runs without a word; an unfinished run compared."""
    runs, now = tmp_path / "runs", time.time()
    make_run(runs, "r1-new", 1, "new", pattern(300, 0.7), mtime=now - 10)
    make_run(runs, "r2-new", 2, "new", pattern(300, 0.6), mtime=now - 9)
    make_run(runs, "stray", 2, "new", pattern(300, 0.5), epochs=1, mtime=now - 100)
    make_run(runs, "cut", 1, "fc", pattern(300, 0.5), epochs=1, planned=3, mtime=now)
    md = report(tmp_path, runs)
    results = md[md.index("| run | removed FC"):md.index("Left out of the comparison")]
    assert "| r1-new |" in results and "| r2-new |" in results and "stray" not in results and "cut" not in results
    assert "| stray | 2 | new | different epochs 1 vs 2 |" in md
    assert "| cut | 1 | fc | unfinished (1 of 3 epochs) |" in md
    assert "4 run(s) read from `runs/`; 2 compared" in md


def test_a_run_on_other_data_is_said_to_be_so_and_not_by_its_fingerprint(tmp_path):
    """Catches (mutmut survivors): a run on a different download listed as "different data 3f2a… vs 9bc1…", the
    fingerprint's hex, where the report says "other data"."""
    runs, now = tmp_path / "runs", time.time()
    make_run(runs, "r1-new", 1, "new", pattern(30, 0.7), mtime=now - 10)
    make_run(runs, "r2-new", 2, "new", pattern(30, 0.6), mtime=now - 9)
    d = make_run(runs, "before", 2, "new", pattern(30, 0.5), mtime=now - 100)
    m = json.load(open(d / "metrics.json"))
    m["counts"]["train"][CLASSES[0]] = 39  # one painting fewer in the download it trained on
    json.dump(m, open(d / "metrics.json", "w"))
    os.utime(d / "metrics.json", (now - 100, now - 100))
    assert "| before | 2 | new | different other data |" in report(tmp_path, runs)


def test_a_left_out_run_names_every_setting_it_differs_in(tmp_path):
    """Catches (a mutmut survivor): the settings a run differs in run together without their separator."""
    runs, now = tmp_path / "runs", time.time()
    make_run(runs, "r1-new", 1, "new", pattern(30, 0.7), mtime=now - 10)
    make_run(runs, "r2-new", 2, "new", pattern(30, 0.6), mtime=now - 9)
    make_run(runs, "quick", 2, "new", pattern(30, 0.5), epochs=1, lr=0.01, mtime=now - 100)
    assert "| quick | 2 | new | different epochs 1 vs 2, lr 0.01 vs 0.001 |" in report(tmp_path, runs)


def test_a_run_that_diverged_is_left_out_as_diverged(tmp_path):
    """Catches: a run that stopped on a non-finite loss listed as merely unfinished, or compared."""
    runs, now = tmp_path / "runs", time.time()
    make_run(runs, "r1-new", 1, "new", pattern(30, 0.7), mtime=now - 10)
    make_run(runs, "r2-new", 2, "new", pattern(30, 0.6), mtime=now - 9)
    d = make_run(runs, "blown", 1, "fc", pattern(30, 0.1), epochs=1, planned=2, mtime=now - 5)
    m = json.load(open(d / "metrics.json"))
    json.dump(dict(m, diverged="loss_train is nan"), open(d / "metrics.json", "w"))
    assert "| blown | 1 | fc | diverged |" in report(tmp_path, runs)


def test_a_run_without_its_configuration_is_left_out_with_the_settings_it_cannot_show(tmp_path):
    """Catches (mutmut survivors): a run whose config.json is gone making the report fail (the planned epochs read as
    None), instead of the run judged by its epochs and left out for the settings it cannot show."""
    runs, now = tmp_path / "runs", time.time()
    make_run(runs, "r1-new", 1, "new", pattern(30, 0.7), mtime=now - 10)
    make_run(runs, "r2-new", 2, "new", pattern(30, 0.6), mtime=now - 9)
    d = make_run(runs, "bare", 1, "fc", pattern(30, 0.5), mtime=now - 5)
    (d / "config.json").unlink()
    assert "| bare | 1 | fc | different batch_size None vs 64, epochs None vs 2," in report(tmp_path, runs)


def test_of_two_complete_sets_the_one_whose_metrics_are_newest_is_compared(tmp_path):
    """Catches (mutmut survivors): the newest set chosen by its folders' times (which change when any file is added)
    rather than by when its metrics were written, or by no time at all (then the first by name). The older set's
    folders are made last, and its names sort first."""
    runs, now = tmp_path / "runs", time.time()
    make_run(runs, "later-1", 1, "new", pattern(30, 0.7), mtime=now)
    make_run(runs, "later-2", 2, "new", pattern(30, 0.6), mtime=now)
    make_run(runs, "earlier-1", 1, "new", pattern(30, 0.7), lr=0.01, mtime=now - 1000)
    make_run(runs, "earlier-2", 2, "new", pattern(30, 0.6), lr=0.01, mtime=now - 1000)
    md = report(tmp_path, runs)
    assert "| earlier-1 | 1 | new | different lr 0.01 vs 0.001 |" in md and "| later-1 | 1 | new | 2 | " in md


def test_of_two_runs_of_one_variant_the_one_whose_metrics_are_newest_is_compared(tmp_path):
    """Catches (a mutmut survivor): the newer run of a variant chosen by its folder's time; the older run's folder
    is made last."""
    runs, now = tmp_path / "runs", time.time()
    make_run(runs, "r1", 1, "new", pattern(30, 0.7), mtime=now)
    make_run(runs, "r2", 2, "new", pattern(30, 0.6), mtime=now)
    make_run(runs, "r1-before", 1, "new", pattern(30, 0.5), mtime=now - 500)
    assert "| r1-before | 1 | new | an older run of the same variant than r1 |" in report(tmp_path, runs)


def test_runs_named_on_the_command_line_are_compared_with_what_differs_said(tmp_path):
    """Catches: --compare-runs ignored, or two runs with other learning rates compared without saying so."""
    runs = tmp_path / "runs"
    make_run(runs, "a", 1, "new", pattern(300, 0.7))
    make_run(runs, "b", 2, "new", pattern(300, 0.6), lr=0.01)
    md = report(tmp_path, runs, "--compare-runs", "a", "b")
    assert "the runs named with --compare-runs, which differ in lr besides what the sheet varies" in md


def test_the_runs_not_named_with_compare_runs_are_listed_as_such_and_one_run_may_be_named_alone(tmp_path):
    """Catches (mutmut survivors): the runs left out by --compare-runs given another reason, or the named ones listed
    instead; the settings compared from the second named run, which fails when one run is named."""
    runs = tmp_path / "runs"
    make_run(runs, "a", 1, "new", pattern(300, 0.7))
    make_run(runs, "b", 2, "new", pattern(300, 0.6))
    md = report(tmp_path, runs, "--compare-runs", "a")
    assert "| b | 2 | new | not named with --compare-runs |" in md and "| a | 1 | new | not named" not in md
    assert "1 compared: the runs named with --compare-runs." in md


def test_a_run_named_with_compare_runs_that_is_not_there_is_an_error_naming_it(tmp_path):
    """Catches: a mistyped --compare-runs reported as "none finished", with every run listed as not named."""
    runs = tmp_path / "runs"
    make_run(runs, "a", 1, "new", pattern(30, 0.7))
    with pytest.raises(SystemExit) as e:
        report(tmp_path, runs, "--compare-runs", "a", "typo")
    assert str(e.value).startswith("error: --compare-runs: no run that can be reported is named typo in ")
    assert str(e.value).endswith("the runs there: a")


# ---- the words follow the tests ----

def test_a_difference_inside_the_noise_is_called_noise(tmp_path):
    """Catches: "here they served the styles better" for 10.6% vs 10.5%."""
    runs = tmp_path / "runs"
    right = pattern(300, 0.7)
    make_run(runs, "r1", 1, "new", right)
    make_run(runs, "r2", 2, "new", [r if i != 5 else not r for i, r in enumerate(right)])
    md = report(tmp_path, runs)
    assert "These 300 paintings cannot tell the two apart." in md and "helped" not in md
    assert "(exact McNemar test, p = 1.00)" in md


def test_a_significant_difference_is_explained(tmp_path):
    """Catches: a real difference reported as noise, or explained the wrong way round."""
    runs = tmp_path / "runs"
    a = pattern(300, 0.8)
    b = [r and i % 4 != 0 for i, r in enumerate(a)]  # fc7 kept right on every painting the other gets right, and more
    make_run(runs, "r1", 1, "new", a)
    make_run(runs, "r2", 2, "new", b)
    md = report(tmp_path, runs)
    only = sum(x and not y for x, y in zip(a, b))
    assert f"{only} were right only with fc7 kept and 0 only without it (exact McNemar test, p < 0.001)" in md
    assert "Keeping fc7 helped" in md and "cannot tell" not in md


def test_runs_at_chance_are_said_to_be_at_chance_and_not_interpreted(tmp_path):
    """Catches: four runs at 10% interpreted as if their order meant something."""
    runs = tmp_path / "runs"
    make_run(runs, "r1", 1, "new", [i % 3 == 0 for i in range(18)])  # 6 of 18: one in three, as guessing gets
    make_run(runs, "r2", 2, "new", [i % 3 == 1 for i in range(18)])
    md = report(tmp_path, runs)
    assert "**Every compared run is at chance level**" in md and "cannot rank the variants" in md
    assert "helped" not in md and "cannot tell the two apart" in md
    limits = md.split("### What limits the accuracy on this dataset")[1].split("**Literature")[0]
    assert "these runs cannot tell what limits the accuracy" in limits
    assert "Style versus objects" not in limits and "Size:" not in limits  # no cause asserted of runs at chance


def test_one_painting_right_in_one_run_only_is_singular(tmp_path):
    """Catches: "1 were right only with fc7 kept"."""
    runs = tmp_path / "runs"
    a = pattern(300, 0.8)
    b = list(a)
    b[next(i for i, r in enumerate(a) if r)] = False
    make_run(runs, "r1", 1, "new", a)
    make_run(runs, "r2", 2, "new", b)
    assert "Of the 300 validation paintings, 1 was right only with fc7 kept and 0 only without it" in \
        report(tmp_path, runs)


def test_the_overfitting_sentence_appears_only_when_the_runs_show_it(tmp_path):
    """Catches: "the more parameters train, the more the model can fit ..." printed whatever the data show."""
    runs = tmp_path / "runs"
    make_run(runs, "r1", 1, "new", pattern(300, 0.7))
    make_run(runs, "r2", 2, "new", pattern(300, 0.6))
    md = report(tmp_path, runs)
    assert "The largest gap between final (running) train and validation accuracy" in md
    assert "the more parameters train" not in md


# ---- what the report says about the data ----

def test_small_paintings_are_said_to_be_enlarged_and_the_unseen_share_follows_the_pipeline():
    """Catches: "shrunk to 224x224" for 111x112 paintings; the crop's loss counted from the aspect ratio alone."""
    text = part1.size_sentence([(111, 112)] * 3 + [(150, 100)])
    assert "leaves them all enlarged" in text
    r = [112 / 111] * 3 + [1.5]
    unseen = sum(1 - 224 ** 2 / (256 ** 2 * x) for x in r) / 4
    assert f"never shows, on average, {100 * unseen:.1f}% of a painting" in text
    assert "2 of 3 enlarged" in part1.size_sentence([(100, 100), (200, 300), (1000, 800)])


def test_a_tie_for_the_top_artist_is_named_alike_by_the_download_and_the_report():
    """Catches: the download summary and the report naming different artists for one style."""
    import download_wikiart as dw
    artists = Counter({"zurbaran": 2, "goya": 2, "velazquez": 1})
    c = {"train": 5, "val": 0, "artists": {"train": artists, "val": Counter()}}
    assert part1.artist_stats(c)[1] == "goya" and "top goya 40%" in dw.artists_line(artists)


def test_the_caption_describes_the_method_the_folder_holds(tmp_path, project):
    """Catches: a Grad-CAM grid shown under the caption of the paper's map max_c |dS_C/dI|."""
    import shutil
    sal = tmp_path / "sal"
    shutil.copytree(project / "report" / "saliency", sal)
    s = json.load(open(sal / "settings.json"))
    json.dump(dict(s, methods=["gradcam"]), open(sal / "settings.json", "w"))
    rows = [dict(r, centre_share_gradcam=r["centre_share_vanilla"], hit_gradcam=r["hit_vanilla"],
                 box_mass_gradcam=r["box_mass_vanilla"]) for r in csv.DictReader(open(sal / "predictions.csv"))]
    with open(sal / "predictions.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    make_report.main(["--runs", str(tmp_path / "none"), "--saliency", str(sal), "--paintings", str(tmp_path / "none"),
                      "--extras", str(tmp_path / "none"), "--data", str(tmp_path / "none"), "--images",
                      str(project / "My-Images"), "--out", str(tmp_path / "rep"), "--no-pdf"])
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "shown and measured here: Grad-CAM's map" in md and "max over colour channels" not in md


def test_hidden_folders_in_runs_are_not_listed_as_runs(tmp_path):
    """Catches: Jupyter's .ipynb_checkpoints (or .DS_Store's folder kin) listed in the report's table of folders
    that are not runs, as if the student had a broken run."""
    runs = tmp_path / "runs"
    make_run(runs, "a", 1, "new", pattern(30, 0.6))
    (runs / ".ipynb_checkpoints").mkdir()
    found, unusable = report_runs.load_runs(str(runs))
    assert [m["run"] for m in found] == ["a"] and unusable == []


@pytest.mark.parametrize("ran,expected", [(["fp32", "fp32"], "fp32"), (["fp32", "bf16"], "mixed"),
                                          ([None, None], None), (["bf16", None], None)])
def test_the_precision_a_run_ran_in_is_one_mixed_or_unrecorded(ran, expected):
    """Catches: a run resumed with another --precision reported in the precision of one of its epochs (its first,
    or whichever a set pops), or an older run that recorded none reported as one that did."""
    m = {"epochs": [{"epoch": i + 1} if p is None else {"epoch": i + 1, "precision": p} for i, p in enumerate(ran)]}
    assert report_runs.run_precision(m) == expected


def test_maps_of_a_version_that_recorded_no_precision_are_said_to_be_unrecorded():
    """Catches: settings.json of an older assignment_4b.py (no "precision") crashing the report with a KeyError, or
    reported as fp32."""
    assert part1.precision_words(None, "the maps") == ("The precision of the maps was not recorded (outputs "
                                                             "of an older version).")
    assert part1.map_agreement(None) == ""


def test_a_run_resumed_onto_another_schedule_is_not_compared_as_like(tmp_path):
    """Catches: a run started for 6 epochs, stopped after 1 and resumed with --epochs 2 (its first epoch on the
    6-epoch cosine, its second on a new one) compared with fresh 2-epoch runs as if trained alike: the settings
    check must read the learning rates the epochs ran at, not only config.json."""
    runs = tmp_path / "runs"
    now = time.time()
    make_run(runs, "a", 1, "new", pattern(30, 0.6), mtime=now - 30)
    make_run(runs, "b", 2, "new", pattern(30, 0.5), mtime=now - 20)
    d = make_run(runs, "cut", 1, "fc", pattern(30, 0.7), mtime=now - 10)
    m = json.load(open(d / "metrics.json"))
    m["epochs"][1]["lr"] = 0.000933  # the resumed epoch's rate: another schedule
    json.dump(m, open(d / "metrics.json", "w"))
    os.utime(d / "metrics.json", (now - 10, now - 10))
    md = report(tmp_path, runs)
    assert "| cut | 1 | fc | different lr per epoch 0.001 0.000933 vs 0.001 0.001 |" in md


def test_the_report_says_what_its_time_column_measures(tmp_path):
    """Catches: a bare 'time' beside the console's and the epoch lines' other times, with no word of which is which."""
    runs = tmp_path / "runs"
    make_run(runs, "a", 1, "new", pattern(30, 0.6))
    md = report(tmp_path, runs)
    assert "| training time |" in md and "Training time adds up the epochs (training and evaluation)" in md


def printed_sizes(fig):
    """The point sizes a figure's texts print at once it is scaled to the report's page width."""
    fig.canvas.draw()  # tick labels exist once drawn
    scale = min(1.0, load("render").FIGURE_WIDTH_MM / 25.4 / fig.get_size_inches()[0])
    shown = list(fig.texts) + [t for legend in fig.legends for t in legend.get_texts()]
    for ax in fig.axes:
        shown.append(ax.title)
        if ax.axison:  # a hidden axis draws no tick labels or axis labels
            shown += ax.get_xticklabels() + ax.get_yticklabels() + [ax.xaxis.label, ax.yaxis.label]
    return [t.get_fontsize() * scale for t in shown if t.get_text().strip()]


def test_the_curves_print_legibly_with_their_legend_off_the_curves(tmp_path):
    """Catches: the legend drawn over the accuracy curves, and labels of 4-6 pt once the 10-inch figure is shrunk to
    the page."""
    runs = tmp_path / "runs"
    for name, r, t in (("a", 1, "new"), ("b", 2, "new"), ("c", 1, "fc"), ("d", 2, "fc")):
        make_run(runs, name, r, t, pattern(30, 0.6), epochs=3)
    found, _ = report_runs.load_runs(str(runs))
    fig = part1.curves_plot(found)
    assert min(printed_sizes(fig)) >= 7
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends[0].get_texts()) == 4


def test_the_confusion_matrix_prints_its_shares_at_7_pt_or_more():
    """Catches: the cells' shares at 6 pt in a 7-inch figure printed 120 mm wide: about 4 pt on the page."""
    import numpy as np
    classes = [f"Style_{k}" for k in range(10)]
    fig = part1.confusion_plot(np.eye(10, dtype=int) * 8 + 1, classes)
    sizes = printed_sizes(fig) + [t.get_fontsize() * min(1.0, 160 / 25.4 / fig.get_size_inches()[0])
                                  for t in fig.axes[0].texts]
    assert len(fig.axes[0].texts) == 100 and min(sizes) >= 7


def test_the_mistakes_captions_print_at_7_pt_or_more():
    """Catches: eight thumbnails in one row, their captions shrunk to about 3 pt on the page."""
    import numpy as np
    fig = part1.gallery_plot([np.zeros((8, 8, 3))] * 8, ["true Baroque\npredicted Rococo\np = 0.91"] * 8)
    assert min(printed_sizes(fig)) >= 7


def test_the_mistakes_titles_neither_overlap_nor_leave_the_figure():
    """Catches: "predicted Northern_Renaissance" wider than its column: titles running into each other and clipped
    at the figure's edge ("redicted Northern_Renaissance")."""
    import numpy as np
    captions = ["true Naive_Art_Primitivism\npredicted Northern_Renaissance\np = 0.91"] * 8
    import io
    fig = part1.gallery_plot([np.zeros((8, 8, 3))] * 8, captions)
    fig.savefig(io.BytesIO(), format="png")  # laid out as the file is (the layout settles as it is drawn)
    renderer = fig.canvas.get_renderer()
    boxes = [ax.title.get_window_extent(renderer) for ax in fig.axes if ax.get_title()]
    whole = fig.bbox
    assert len(boxes) == 8 and all(b.x0 >= whole.x0 and b.x1 <= whole.x1 and b.y1 <= whole.y1 for b in boxes)
    assert not [(i, j) for i, a in enumerate(boxes) for j, b in enumerate(boxes) if i < j and a.overlaps(b)]
    assert "Northern_Renaissance" not in fig.axes[0].get_title() and "Renaissance" in fig.axes[0].get_title()
