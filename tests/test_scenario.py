"""The hand-in as a TA meets it after a semester of real use: runs compared, one stopped and resumed onto another
schedule, photos added, removed and damaged between the saliency run and the report. Every part is tested alone
elsewhere; here they happen in one project, in the order a student makes them happen."""
import inspect
import os

import pytest

import assignment_4a as a4a
import assignment_4b as a4b
from conftest import load_report_script, make_style_dataset, write_image

make_report = load_report_script("make_report")
make_package = load_report_script("make_package")
report_part2 = load_report_script("part2")


def test_a_semester_of_changes_is_named_in_the_report_and_stops_the_archive(alexnet_weights, vgg_weights, tmp_path,
                                                                            monkeypatch):
    """`--compare`; a run started for 6 epochs, stopped by Ctrl-C after 1, resumed with `--epochs 2`; saliency over
    My-Images with a damaged photo among them; then a photo added and one removed. Catches: the resumed run compared
    as the `--compare` run of its variant (its first epoch followed a 6-epoch schedule); a photo added, removed or
    skipped that the report does not name; an archive packed with the stale grid."""
    data = make_style_dataset(tmp_path / "datasets" / "wikiart", n_train=4, n_val=2)
    runs = tmp_path / "runs"
    common = ["--data", str(data), "--runs", str(runs), "--batch-size", "4", "--workers", "1"]
    a4a.main(common + ["--compare", "--epochs", "2"])
    compared = sorted(p.name for p in runs.iterdir())

    real = a4a.train_one_epoch

    def ctrl_c_in_epoch_2(*args, **kwargs):
        if inspect.signature(real).bind(*args, **kwargs).arguments["epoch"] == 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(a4a, "train_one_epoch", ctrl_c_in_epoch_2)
    with pytest.raises(SystemExit):
        a4a.main(common + ["--remove", "1", "--train", "new", "--epochs", "6", "--name", "cut"])
    monkeypatch.setattr(a4a, "train_one_epoch", real)
    a4a.main(["--resume", str(runs / "cut"), "--epochs", "2"])

    images = tmp_path / "My-Images"
    images.mkdir()
    write_image(images / "kept.jpg", seed=1)
    write_image(images / "removed.png", seed=2)
    (images / "damaged.jpg").write_bytes(b"\xff\xd8\xff\xe0 a JPEG cut off after its first bytes")
    saliency = tmp_path / "report" / "saliency"
    a4b.main(["--images", str(images), "--out", str(saliency)])
    write_image(images / "added.jpg", seed=3)
    (images / "removed.png").unlink()

    make_report.main(["--runs", str(runs), "--saliency", str(saliency), "--paintings", str(tmp_path / "none"),
                      "--data", str(data), "--images", str(images), "--out", str(tmp_path / "report"), "--no-pdf",
                      "--name", "Ada", "--student-id", "1"])
    md = (tmp_path / "report" / "report.md").read_text()

    results = md[md.index("| run | removed FC |"):md.index("Left out of the comparison")]
    assert [name for name in compared if f"| {name} |" in results] == compared and "| cut |" not in results
    left_out = md[md.index("Left out of the comparison"):]
    assert "| cut | 1 | new | different lr per epoch" in left_out

    assert report_part2.MAPS_OUT_OF_DATE in md
    assert "have no map (added after the run, or not reached): added.jpg." in md
    assert "with maps are no longer in" in md and ": removed.png;" in md
    assert "could not be read as images and were skipped: damaged.jpg." in md
    part2 = md[md.index("## Part 2"):]
    assert "| kept.jpg |" in part2 and "| removed.png |" not in part2

    for script in ("download_wikiart.py", "assignment_4a.py", "assignment_4b.py", "vgg16.py"):
        os.symlink(os.path.join(a4a.ROOT, script), tmp_path / script)
    with pytest.raises(SystemExit) as e:
        make_package.main(["--login", "ada", "--root", str(tmp_path), "--out", str(tmp_path / "out")])
    assert "the saliency maps it shows are not up to date with the photos (" in str(e.value)
    assert "run `python assignment_4b.py`, then `python report/make_report.py`" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_a_pdf_older_than_new_runs_is_refused_and_a_renamed_run_goes_by_its_folder(alexnet_weights, tmp_path, capsys):
    """`--compare` and a report; a second `--compare` and `make_report.py --no-pdf`; then a run folder renamed.
    Catches: the older report.pdf, which never mentions the new runs, packed without a word; a renamed run reported
    (and so looked for by a TA) under its old name."""
    import zipfile
    data = make_style_dataset(tmp_path / "datasets" / "wikiart", n_train=4, n_val=2)
    runs = tmp_path / "runs"
    common = ["--data", str(data), "--runs", str(runs), "--batch-size", "4", "--workers", "1", "--epochs", "1"]
    none = str(tmp_path / "none")
    report = ["--runs", str(runs), "--saliency", none, "--paintings", none, "--extras", none, "--ground-truth", none,
              "--data", str(data), "--images", none, "--out", str(tmp_path / "report"), "--name", "Ada",
              "--student-id", "1"]
    for script in ("download_wikiart.py", "assignment_4a.py", "assignment_4b.py", "vgg16.py"):
        os.symlink(os.path.join(a4a.ROOT, script), tmp_path / script)
    pack = ["--login", "ada", "--root", str(tmp_path), "--out", str(tmp_path / "out")]
    a4a.main(common + ["--compare"])
    make_report.main(report)
    a4a.main(common + ["--compare"])
    make_report.main(report + ["--no-pdf"])
    assert "report.pdf is left from an earlier run and no longer matches report.md" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        make_package.main(pack)
    assert "report/report.pdf is older than report.md (make_report.py ran with --no-pdf)" in str(e.value)

    old = max(runs.iterdir(), key=lambda p: p.stat().st_mtime).name
    os.rename(runs / old, runs / "my-renamed-run")
    make_report.main(report)
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| my-renamed-run |" in md and old not in md
    make_package.main(pack)
    names = zipfile.ZipFile(tmp_path / "out" / "cs587_ada_assignment3.zip").namelist()
    assert "cs587_ada_assignment3/runs/my-renamed-run/metrics.json" in names
