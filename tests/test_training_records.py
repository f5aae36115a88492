"""The training's bookkeeping, one behaviour each: per-epoch random streams, the per-painting record the report's
paired tests read, and the decode cache's clean-up."""
import csv
import os
import time
from types import SimpleNamespace

import pytest
import torch

import assignment_4a as a4a


def test_every_epoch_and_stream_draws_its_own_seed():
    """Catches: a seed without the epoch in it (every epoch the same shuffle, crops and dropout), or two streams
    sharing one seed."""
    seeds = {(e, s): a4a.epoch_seed(0, e, s) for e in range(5) for s in a4a.SEED_STREAMS}
    assert len(set(seeds.values())) == len(seeds)
    assert not torch.equal(a4a.batch_order(50, 0, 0), a4a.batch_order(50, 1, 0))
    assert torch.equal(a4a.batch_order(50, 3, 7), a4a.batch_order(50, 3, 7))  # and replayable on resume


def test_val_predictions_give_the_true_styles_probability_and_loss(tmp_path):
    """Catches: p_true (and the loss) taken from the predicted style instead of the true one: the report's McNemar
    tests and its gallery of mistakes would read confident mistakes as confident successes."""
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    run = SimpleNamespace(dir=str(tmp_path), classes=["A", "B", "C"],
                          data=SimpleNamespace(val=SimpleNamespace(labels=torch.tensor([1, 2]),
                                                                   files=["v/B/1", "v/C/2"])))
    a4a.write_val_predictions(run, probs)
    rows = list(csv.DictReader(open(tmp_path / "val_predictions.csv")))
    assert [(r["true_style"], r["predicted_style"]) for r in rows] == [("B", "A"), ("C", "C")]
    assert float(rows[0]["p_true"]) == pytest.approx(0.2) and float(rows[0]["p_predicted"]) == pytest.approx(0.7)
    assert float(rows[0]["loss"]) == pytest.approx(-torch.log(torch.tensor(0.2)).item(), rel=1e-6)


def test_the_cache_clean_up_removes_only_stale_files(tmp_path):
    """Catches: another run's temporary file removed while it is being written (two terminals on one dataset), or a
    killed run's day-old temporary file kept for ever."""
    names = ["train-new.u8", "train-new.json", "train-old.u8", "train-old.json", "train-new.u8.1-2.part",
             "train-old.u8.3-4.part", "val-old.u8"]
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    day_old = time.time() - 2 * 86400
    os.utime(tmp_path / "train-old.u8.3-4.part", (day_old, day_old))
    a4a.remove_stale_caches(str(tmp_path), "train", "new")
    assert sorted(os.listdir(tmp_path)) == ["train-new.json", "train-new.u8", "train-new.u8.1-2.part", "val-old.u8"]


class Recorder:
    """A SummaryWriter that remembers each figure's tag and step (and ignores the rest)."""

    def __init__(self, *args, **kwargs):
        self.figures = []

    def add_figure(self, tag, figure, step):
        self.figures.append((tag, step))

    def add_scalar(self, *args):
        pass

    def add_hparams(self, *args, **kwargs):
        pass

    def close(self):
        pass


def three_epochs(alexnet_weights, tmp_path, monkeypatch, val_accuracies):
    """A three-epoch run whose validation accuracies are given; every epoch's confusion matrix holds its epoch number
    on the diagonal. -> (the writer, metrics.json as written after the last epoch)."""
    import json

    import torch.utils.tensorboard
    from conftest import make_style_dataset
    data = make_style_dataset(tmp_path / "d", n_train=2, n_val=1)
    writer = Recorder()
    monkeypatch.setattr(torch.utils.tensorboard, "SummaryWriter", lambda *a, **k: writer)
    monkeypatch.setattr(a4a, "confusion_figure", lambda conf, classes: conf)
    monkeypatch.setattr(a4a, "mistakes_figure", lambda split, probs, classes: "mistakes")
    monkeypatch.setattr(a4a, "add_jpeg_figure", lambda writer, tag, fig, step: writer.add_figure(tag, fig, step))
    epochs = iter(enumerate(val_accuracies))

    def evaluate(trained_part, split, cfg, device, num_classes):
        epoch, acc = next(epochs)
        return 0.5, acc, torch.eye(num_classes, dtype=torch.long) * (epoch + 1), \
            torch.full((len(split.labels), num_classes), 1 / num_classes)
    monkeypatch.setattr(a4a, "evaluate", evaluate)
    a4a.main(["--data", str(data), "--runs", str(tmp_path / "r"), "--epochs", str(len(val_accuracies)), "--name",
              "t", "--workers", "1"])
    return writer, json.load(open(tmp_path / "r" / "t" / "metrics.json"))


def test_the_best_epochs_figures_are_logged_at_its_own_step(alexnet_weights, tmp_path, monkeypatch):
    """Catches: the confusion matrix and the mistakes of the best epoch logged one step below it (epoch, not
    epoch + 1), where TensorBoard's slider would show them beside the epoch before."""
    writer, _ = three_epochs(alexnet_weights, tmp_path, monkeypatch, [0.5, 0.9, 0.7])
    assert writer.figures == [("confusion_matrix/val", 1), ("most_confident_mistakes/val", 1),
                              ("confusion_matrix/val", 2), ("most_confident_mistakes/val", 2)]


def test_metrics_keep_the_best_epochs_confusion_matrix_after_a_worse_last_epoch(alexnet_weights, tmp_path,
                                                                                 monkeypatch):
    """Catches: best_confusion overwritten by the last epoch's matrix when the last epoch is not the best."""
    _, m = three_epochs(alexnet_weights, tmp_path, monkeypatch, [0.5, 0.9, 0.7])
    assert m["best_confusion"] == (2 * torch.eye(len(m["classes"]), dtype=torch.long)).tolist()
    assert m["best"]["epoch"] == 2


def test_the_comparison_table_says_its_time_is_the_runs_wall_time():
    """Catches: the console's 'time' column unlabelled beside the report's training time (the two differ by the
    weights' loading and the frozen layers' pass)."""
    m = {"run": "r", "remove": 1, "train": "new", "epochs": [{"epoch": 1, "accuracy_train": 0.5, "accuracy_val": 0.4}],
         "best_val_accuracy": 0.4, "seconds_total": 61.0}
    lines = a4a.comparison_table([m]).splitlines()
    assert lines[0].split()[-1] == "wall" and lines[2].endswith(" 61s")
    assert lines[-1].startswith("wall: the whole run, its weights, the frozen layers' one pass and every epoch")


def test_the_console_prints_each_epochs_time_as_metrics_json_records_it(alexnet_weights, tmp_path, capsys):
    """Catches: two definitions of an epoch's time (the console's included the checkpoints and figures written after
    it, metrics.json's did not): 7.4 s on screen, 3.89 s in the file and the report."""
    import json
    import re

    from conftest import make_style_dataset
    data = make_style_dataset(tmp_path / "d", n_train=2, n_val=1)
    a4a.main(["--data", str(data), "--runs", str(tmp_path / "r"), "--epochs", "2", "--name", "t", "--workers", "1"])
    line = re.compile(r"^epoch +\d+/2 .* ([\d.]+)s train\+eval(?:  \* best)?$", re.M)
    printed = [float(s) for s in line.findall(capsys.readouterr().out)]
    recorded = [round(h["seconds"], 1) for h in json.load(open(tmp_path / "r" / "t" / "metrics.json"))["epochs"]]
    assert len(printed) == 2 and printed == recorded
    assert [h["train_conditions"] for h in json.load(open(tmp_path / "r" / "t" / "metrics.json"))["epochs"]] == \
        ["as evaluated"] * 2
