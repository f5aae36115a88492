"""What the report says about the runs on disk: every folder accounted for, the precision that ran, short times
and small parameter counts as a reader reads them."""
import importlib.util
import json
import os
import shutil

import pytest

from conftest import ROOT, load_report_script

make_report = load_report_script("make_report")
part1 = load_report_script("part1")
report_runs = load_report_script("runs")


def report_of(runs, tmp_path):
    none = str(tmp_path / "none")
    make_report.main(["--runs", str(runs), "--saliency", none, "--paintings", none, "--extras", none, "--data", none,
                      "--images", none, "--out", str(tmp_path / "r"), "--no-pdf"])
    return (tmp_path / "r" / "report.md").read_text()


def test_a_run_folder_without_metrics_is_listed_with_why(project, tmp_path):
    """Catches: a run stopped before its first epoch (config.json, no metrics.json) left out of the report in
    silence, so that the reader cannot tell it was ever started."""
    runs = tmp_path / "runs"
    shutil.copytree(project / "runs", runs)
    (runs / "remove2-all-20261204-101500").mkdir()
    (runs / "remove2-all-20261204-101500" / "config.json").write_text("{}")
    md = report_of(runs, tmp_path)
    assert "| remove2-all-20261204-101500 | no metrics.json: stopped before its first epoch finished" in md


def test_a_renamed_run_is_reported_by_its_folders_name(project, tmp_path):
    """Catches: the table naming a run by the name metrics.json recorded, which the archive (runs/<folder>/) no longer
    holds after the student renamed the folder."""
    runs = tmp_path / "runs"
    shutil.copytree(project / "runs", runs)
    old = sorted(p.name for p in runs.iterdir() if (p / "metrics.json").exists())[0]
    (runs / old).rename(runs / "my-renamed-run")
    md = report_of(runs, tmp_path)
    assert "| my-renamed-run |" in md and old not in md


def test_only_unusable_folders_are_still_listed(tmp_path):
    """Catches: the list of unusable folders dropped where no run at all can be reported."""
    (tmp_path / "runs" / "started").mkdir(parents=True)
    md = report_of(tmp_path / "runs", tmp_path)
    assert "No training runs found that can be reported" in md and "| started | no metrics.json" in md


def test_the_precision_that_ran_is_named(project, tmp_path):
    """Catches: the report silent on the precision, or naming the flag where the run recorded what ran."""
    md = report_of(project / "runs", tmp_path)
    assert "Precision of the compared runs' training: fp32 (IEEE single precision: TF32 off)." in md
    runs = tmp_path / "runs"
    shutil.copytree(project / "runs", runs)
    for p in runs.glob("*/metrics.json"):  # written by an older version: no precision per epoch
        m = json.load(open(p))
        json.dump(dict(m, epochs=[{k: v for k, v in e.items() if k != "precision"} for e in m["epochs"]]), open(p, "w"))
    assert "The precision of the compared runs' training was not recorded" in report_of(runs, tmp_path)


def test_short_times_read_in_seconds_and_small_counts_as_counts():
    """Catches: "0.0 min" for a 20-second run and "0.0 M parameters" for a 40,970-parameter layer."""
    assert part1.duration(20.4) == "20 s" and part1.duration(150) == "2.5 min"
    assert part1.parameters(40970) == "40,970" and part1.parameters(57_044_810) == "57.0 M"


def test_a_minute_and_a_million_switch_units_where_the_rounding_would_show_60_s_or_1000_thousand():
    """Catches (mutmut's survivors): "60 s" for 59.5 or 60 seconds, a million shown as 1,000,000, and millions
    divided by anything but a million (2,950,000 is 3.0 M; divided by 1,000,001 it would read 2.9 M), minutes by
    anything but 60."""
    assert [part1.duration(s) for s in (59.4, 59.5, 60, 3600)] == ["59 s", "1.0 min", "1.0 min", "60.0 min"]
    assert [part1.parameters(n) for n in (999_999, 1_000_000, 2_950_000)] == ["999,999", "1.0 M", "3.0 M"]


def test_every_stand_in_the_downloader_knows_is_named_in_the_report(tmp_path):
    """Catches: the report's own shorter copy of the stand-ins, so that Rococo and Cubism (the README's closer
    stand-ins, from the parquet shards) are never said to stand in for Neoclassicism and Surrealism."""
    from conftest import make_style_dataset
    data = make_style_dataset(tmp_path / "wikiart", n_train=1, n_val=1, styles=("Blue_Period", "Red_Period"))
    for split in ("train", "val"):
        (data / split / "Blue_Period").rename(data / split / "Rococo")
        (data / split / "Red_Period").rename(data / split / "Cubism")
    none = str(tmp_path / "none")
    make_report.main(["--runs", none, "--saliency", none, "--paintings", none, "--extras", none, "--data", str(data),
                      "--images", none, "--out", str(tmp_path / "r"), "--no-pdf"])
    md = (tmp_path / "r" / "report.md").read_text()
    assert "Cubism stands in for the course's Surrealism" in md
    assert "Rococo stands in for the course's Neoclassicism" in md


def test_the_name_line_needs_both_and_says_which_is_missing(tmp_path):
    """Catches: a report with only a name (or only an ID) passing as complete, or a line that does not say which of
    the two the sheet's "do not forget" still lacks; make_package.py must refuse both (from the report's record)."""
    spec_p = importlib.util.spec_from_file_location("make_package", os.path.join(ROOT, "report", "make_package.py"))
    make_package = importlib.util.module_from_spec(spec_p)
    spec_p.loader.exec_module(make_package)
    assert make_report.name_line("Ada Lovelace", "1815") == "**Name:** Ada Lovelace  ·  **Student ID:** 1815"
    assert "**Student ID: not given.**" in make_report.name_line("Ada Lovelace", "")
    only_id = make_report.name_line("", "1815")
    assert "**Name: not given.**" in only_id and "1815" in only_id
    assert "**Name and student ID: not given.**" in make_report.name_line("", "")
    make_package.check_name({"name": "Ada Lovelace", "student_id": "1815", "outputs": {}}, str(tmp_path))
    for name, sid, missing in (("Ada Lovelace", " ", "student ID"), ("", "1815", "name")):
        with pytest.raises(SystemExit) as e:
            make_package.check_name({"name": name, "student_id": sid, "outputs": {}}, str(tmp_path))
        assert str(e.value).startswith(f"error: the report has no {missing} (the sheet asks for both)")


def test_the_per_style_table_holds_recall_and_precision_under_their_headers(tmp_path):
    """Catches: precision and recall swapped (rows and columns of the true x predicted matrix read the wrong way)."""
    conf = [[8, 2, 0],   # true A: 8 right, 2 called B     -> recall A 80%
            [0, 5, 5],   # true B: 5 right, 5 called C     -> recall B 50%, precision B 5 / 7
            [0, 0, 10]]  # true C: all right               -> precision C 10 / 15
    best = {"run": "r", "classes": ["A", "B", "C"], "best": {"epoch": 1}}
    blocks = part1.best_run_blocks(best, part1.np.array(conf), str(tmp_path), str(tmp_path / "none"))
    header, rows = next(b[1:3] for b in blocks if b[0] == "table")
    assert header[2:4] == ["recall (style accuracy)", "precision"]
    table = {r[0]: r for r in rows}
    assert table["A"][2:4] == ["80.0%", "100.0%"]
    assert table["B"][2:4] == ["50.0%", "71.4%"] and table["C"][2:4] == ["100.0%", "66.7%"]


def test_runs_at_chance_get_no_cause_even_where_they_differ_significantly(tmp_path):
    """Catches: a cause ("keeping fc7 helped") written for two runs that both guess, because their paired test
    happens to be significant: a difference between two guessers says nothing about the layers."""
    classes = [f"S{i}" for i in range(10)]
    runs = []
    for remove, right in ((1, 14), (2, 2)):  # of 100 paintings, chance 10%: 14 right is not above chance (p ~ 0.12)
        d = tmp_path / f"r{remove}"
        d.mkdir()
        with open(d / "val_predictions.csv", "w", newline="") as fh:
            w = part1.csv.writer(fh)
            w.writerow(["file", "true_style", "predicted_style", "p_true", "p_predicted", "loss"])
            for i in range(100):
                w.writerow([f"val/S0/{i}.jpg", "S0", "S0" if i < right else "S1", 0.1, 0.1, 2.3])
        runs.append({"run": f"r{remove}", "remove": remove, "train": "new", "classes": classes, "dir": str(d),
                     "val_predictions": "val_predictions.csv", "best_val_accuracy": right / 100,
                     "counts": {"val": {c: 10 for c in classes}}, "epochs": [{"accuracy_train": 0.2, "accuracy_val":
                                                                              right / 100}]})
    assert part1.paired_test(runs[0], runs[1])[3] < 0.05 and all(part1.at_chance(m) for m in runs)
    text = " ".join(part1.compare_text(runs))
    assert "cannot tell the two apart" in text and "helped" not in text


def test_the_default_comparison_is_a_set_that_varies_what_the_sheet_varies(tmp_path):
    """Catches: the newest group of runs chosen even when it holds one variant (a lone rerun with another lr), so that
    the report compares nothing the sheet asks about while an older complete set sits on disk."""
    def fake_run(name, remove, train, lr, mtime):
        d = tmp_path / name
        d.mkdir()
        (d / "metrics.json").write_text("{}")
        os.utime(d / "metrics.json", (mtime, mtime))
        return {"run": name, "remove": remove, "train": train, "dir": str(d), "counts": {},
                "epochs": [{"epoch": 1}], "config": {"epochs": 1, "lr": lr}}
    runs = [fake_run("a", 1, "new", 0.001, 100), fake_run("b", 2, "new", 0.001, 200),
            fake_run("c", 1, "fc", 0.001, 300), fake_run("late", 1, "new", 0.1, 900)]
    compared, left, _ = report_runs.select_runs(runs)
    assert sorted(m["run"] for m in compared) == ["a", "b", "c"]
    assert [(m["run"], "lr" in why) for m, why in left] == [("late", True)]


def test_maps_made_in_bf16_are_said_to_agree_poorly_with_fp32(project, tmp_path):
    """Catches: bf16 maps described like fp32 ones, though their ranks agree with fp32's at rho 0.37-0.50."""
    sal = tmp_path / "saliency"
    shutil.copytree(project / "report" / "saliency", sal)
    settings = json.load(open(sal / "settings.json"))
    json.dump(dict(settings, precision="bf16"), open(sal / "settings.json", "w"))
    none = str(tmp_path / "none")
    make_report.main(["--runs", none, "--saliency", str(sal), "--paintings", none, "--extras", none, "--data", none,
                      "--images", str(project / "My-Images"), "--out", str(tmp_path / "r"), "--no-pdf"])
    md = (tmp_path / "r" / "report.md").read_text()
    assert "Precision of the maps: bf16 autocast. bf16 maps are not fp32 maps" in md and "0.37-0.50" in md


def predictions_run(folder, name, rows, classes=("S0", "S1")):
    """A run whose val_predictions.csv holds rows (file, right?); None rows: no val_predictions.csv at all."""
    d = folder / name
    d.mkdir()
    if rows is not None:
        with open(d / "val_predictions.csv", "w", newline="") as fh:
            w = part1.csv.writer(fh)
            w.writerow(["file", "true_style", "predicted_style", "p_true", "p_predicted", "loss"])
            for f, right in rows:
                w.writerow([f, "S0", "S0" if right else "S1", 0.5, 0.5, 0.7])
    return {"run": name, "dir": str(d), "val_predictions": "val_predictions.csv", "classes": list(classes)}


def test_a_run_without_per_painting_predictions_gets_no_paired_test(tmp_path):
    """Catches (a mutmut survivor): the paired test run when only one of the two runs has val_predictions.csv."""
    with_csv = predictions_run(tmp_path, "a", [(f"{i}.jpg", True) for i in range(5)])
    without = predictions_run(tmp_path, "b", None)
    assert part1.paired_test(with_csv, without) is None and part1.paired_test(without, with_csv) is None


def test_the_paired_test_counts_only_the_paintings_both_runs_predicted(tmp_path):
    """Catches (a mutmut survivor): the union of the two runs' paintings instead of the ones both predicted, as when
    one run was validated on a dataset with two more paintings."""
    a = predictions_run(tmp_path, "a", [(f"{i}.jpg", i < 4) for i in range(6)])
    b = predictions_run(tmp_path, "b", [(f"{i}.jpg", i < 1) for i in range(4)])
    assert part1.paired_test(a, b)[:3] == (4, 3, 0)


def test_chance_is_one_over_the_number_of_styles():
    """Catches (a mutmut survivor): chance taken as anything but 1/styles: 130 of 1,000 paintings right among 10
    styles is above chance (p = 0.0013), which against a chance of 2/10 it would not be."""
    classes = [f"S{i}" for i in range(10)]
    run = {"classes": classes, "best_val_accuracy": 0.13, "counts": {"val": {c: 100 for c in classes}}}
    assert part1.at_chance(run) is False
    assert part1.at_chance(dict(run, best_val_accuracy=0.11)) is True


def test_a_run_of_cached_features_takes_tenths_of_a_second_not_zero():
    """Catches: "0 s" in the report for a --train new run, whose epochs take a fraction of a second."""
    assert [part1.duration(s) for s in (0.04, 0.26, 9.94, 12.4)] == ["< 0.1 s", "0.3 s", "9.9 s", "12 s"]
