"""What the report says about the runs on disk: every folder accounted for, the precision that ran, short times
and small parameter counts as a reader reads them."""
import importlib.util
import json
import os
import shutil

from conftest import ROOT

spec = importlib.util.spec_from_file_location("make_report", os.path.join(ROOT, "report", "make_report.py"))
make_report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_report)


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
    assert make_report.duration(20.4) == "20 s" and make_report.duration(150) == "2.5 min"
    assert make_report.parameters(40970) == "40,970" and make_report.parameters(57_044_810) == "57.0 M"


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
    assert "Cubism stands in for the course's Surrealism" in md and "Rococo stands in for the course's Neoclassicism" in md
