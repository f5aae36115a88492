import json
import math
import os
import types

import pytest
import torch
from torch import nn

import assignment_4a as a4a
from conftest import make_style_dataset

FAST = ["--epochs", "3", "--batch-size", "8", "--lr", "0.01", "--workers", "2"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_style_dataset(tmp_path_factory.mktemp("wikiart"))


def run(dataset, tmp_path, *extra):
    a4a.main(["--data", str(dataset), "--runs", str(tmp_path / "runs"), *FAST, *extra])
    runs = sorted((tmp_path / "runs").iterdir())
    return runs[-1]


def kinds(seq):
    return [(type(m).__name__, getattr(m, "in_features", None), getattr(m, "out_features", None)) for m in seq]


def test_head_surgery_layer_lists(alexnet_weights):
    m1 = a4a.remove_last_fc_layers(a4a.load_alexnet()[0], 1, 10)
    assert kinds(m1.classifier) == [("Dropout", None, None), ("Linear", 9216, 4096), ("ReLU", None, None),
                                    ("Dropout", None, None), ("Linear", 4096, 4096), ("ReLU", None, None),
                                    ("Linear", 4096, 10)]
    m2 = a4a.remove_last_fc_layers(a4a.load_alexnet()[0], 2, 10)
    assert kinds(m2.classifier) == [("Dropout", None, None), ("Linear", 9216, 4096), ("ReLU", None, None),
                                    ("Dropout", None, None), ("Linear", 4096, 10)]
    # the kept layers are the pretrained ones, the new layer is not
    assert torch.equal(m2.classifier[1].weight, alexnet_weights["classifier.1.weight"])
    assert len(list(m1.features)) == 13


@pytest.mark.parametrize("train,expected", [
    ("new", ["classifier.6.weight", "classifier.6.bias"]),
    ("fc", ["classifier.1.weight", "classifier.1.bias", "classifier.4.weight", "classifier.4.bias",
            "classifier.6.weight", "classifier.6.bias"]),
    ("all", None)])
def test_which_parameters_train(alexnet_weights, train, expected):
    model = a4a.remove_last_fc_layers(a4a.load_alexnet()[0], 1, 3)
    trained = a4a.set_trainable(model, train)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names == (expected or [n for n, _ in model.named_parameters()])
    assert len(trained) == len(names)


def test_frozen_prefix_split(alexnet_weights):
    model = a4a.remove_last_fc_layers(a4a.load_alexnet()[0], 2, 3)
    a4a.set_trainable(model, "new")
    prefix, head = a4a.frozen_prefix(model)
    assert kinds(head) == [("Dropout", None, None), ("Linear", 4096, 3)]  # dropout stays live in the head
    a4a.set_trainable(model, "fc")
    prefix, head = a4a.frozen_prefix(model)
    assert isinstance(prefix[-1], nn.Flatten) and kinds(head)[1] == ("Linear", 9216, 4096)
    a4a.set_trainable(model, "all")
    assert len(a4a.frozen_prefix(model)[0]) == 0


def test_loss_and_accuracy_written_out_match_torch():
    logits, y = torch.randn(7, 5, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 3, 4, 0, 1])
    torch.testing.assert_close(a4a.cross_entropy(logits, y), nn.functional.cross_entropy(logits, y))
    assert a4a.accuracy(logits, y) == (logits.argmax(1) == y).float().mean().item()


@pytest.fixture(scope="module")
def six_epochs(alexnet_weights, dataset, tmp_path_factory):
    """One --remove 1 --train new run of 6 epochs: (run folder, metrics.json, TensorBoard's reading of the events)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run_dir = run(dataset, tmp_path_factory.mktemp("six"), "--remove", "1", "--train", "new", "--epochs", "6")
    ea = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    return run_dir, json.load(open(run_dir / "metrics.json")), ea


def test_the_new_layer_learns_the_styles(six_epochs):
    """Catches: a head that does not train (frozen new layer, lr unused, gradients zeroed after the step)."""
    _, m, _ = six_epochs
    assert m["epochs"][-1]["loss_train"] < 0.7 * m["epochs"][0]["loss_train"]
    assert m["best_val_accuracy"] >= 0.8  # chance is 1/3


def test_metrics_json_counts_the_data_and_the_confusion_matrix(six_epochs):
    """Catches: counts of the wrong split, a confusion matrix of another size or of part of the validation set."""
    _, m, _ = six_epochs
    assert len(m["epochs"]) == 6 and m["classes"] == ["Blue_Period", "Green_Period", "Red_Period"]
    assert m["counts"]["train"] == {"Blue_Period": 12, "Green_Period": 12, "Red_Period": 12}
    assert len(m["best_confusion"]) == 3 and sum(map(sum, m["best_confusion"])) == 18


@pytest.mark.parametrize("tag", ["loss/train", "loss/val", "accuracy/train", "accuracy/val", "lr"])
def test_tensorboard_has_each_epoch_scalar_at_epochs_1_to_n(six_epochs, tag):
    """Catches: a scalar the sheet asks for missing, or logged at step 0..n-1 or at global steps."""
    _, m, ea = six_epochs
    assert [e.step for e in ea.Scalars(tag)] == [1, 2, 3, 4, 5, 6]
    key = tag.replace("/", "_") if tag != "lr" else "lr"
    assert [round(e.value, 5) for e in ea.Scalars(tag)] == [round(h[key], 5) for h in m["epochs"]]


def test_tensorboard_step_losses_are_one_per_sgd_step(six_epochs):
    """Catches: step losses logged at the epoch's index (overwriting each other), or a step counter that restarts."""
    _, _, ea = six_epochs
    assert [e.step for e in ea.Scalars("loss/train_step")] == list(range(6 * 5))  # 36 images / batch 8 = 5 steps


def test_tensorboard_shows_the_confusion_matrix(six_epochs):
    """Catches: the confusion figure never reaching TensorBoard."""
    assert "confusion_matrix/val" in six_epochs[2].Tags()["images"]


def test_best_pt_is_the_first_epoch_with_the_best_validation_accuracy(six_epochs):
    """Catches: best.pt saved every epoch (the last, not the best), or on ties (a later equal epoch)."""
    run_dir, m, _ = six_epochs
    accs = [e["accuracy_val"] for e in m["epochs"]]
    best_epoch = accs.index(max(accs)) + 1
    assert torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)["epoch"] == best_epoch
    assert torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)["epoch"] == 6
    assert os.path.samefile(run_dir / "best.pt", run_dir / "last.pt") == (best_epoch == 6)


def test_checkpoints_hold_what_a_resume_needs(six_epochs):
    """Catches: a checkpoint without the optimizer, the configuration or the style names."""
    ck = torch.load(six_epochs[0] / "last.pt", map_location="cpu", weights_only=True)
    assert {"model", "optimizer", "epoch", "best_val_accuracy", "config", "classes", "history"} <= set(ck)
    assert ck["config"]["train"] == "new" and ck["classes"] == six_epochs[1]["classes"]


def test_val_predictions_are_the_best_epochs_per_painting_record(six_epochs):
    """Catches: predictions of the last epoch instead of the best, rows out of step with the files, a loss that is
    not -log p(true style). The report's paired tests rest on this file."""
    import csv
    run_dir, m, _ = six_epochs
    assert m["val_predictions"] == "val_predictions.csv"
    rows = list(csv.DictReader(open(run_dir / m["val_predictions"])))
    assert len(rows) == 18 and all(r["file"].startswith("val/" + r["true_style"] + "/") for r in rows)
    conf = m["best_confusion"]
    assert sum(r["true_style"] == r["predicted_style"] for r in rows) == sum(conf[i][i] for i in range(3))
    for r in rows:
        assert float(r["loss"]) == pytest.approx(-math.log(float(r["p_true"])), rel=1e-5, abs=1e-7)
        assert float(r["p_predicted"]) >= float(r["p_true"]) - 1e-6


def test_most_confident_mistakes_are_the_wrong_ones_by_descending_confidence():
    """Catches: right answers in the gallery, or the least confident mistakes shown first."""
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.05, 0.95], [0.7, 0.3]])
    labels = torch.tensor([0, 0, 0, 0, 1])
    assert a4a.most_confident_mistakes(labels, probs) == [3, 1, 4, 2]
    assert a4a.most_confident_mistakes(labels, probs, k=2) == [3, 1]


def test_tensorboard_shows_the_most_confident_mistakes(alexnet_weights, dataset, tmp_path):
    """Catches: the gallery of mistakes never reaching TensorBoard, or reaching it as a PNG of paintings (0.6 MB at
    each new best epoch, carried by the hand-in's event files) or as a JPEG whose stated size is not its own."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run_dir = run(dataset, tmp_path, "--remove", "1", "--train", "new", "--epochs", "1", "--lr", "1e-6")
    ea = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    ea.Reload()
    assert "most_confident_mistakes/val" in ea.Tags()["images"]
    (image,) = ea.Images("most_confident_mistakes/val")
    from PIL import Image
    decoded = Image.open(__import__("io").BytesIO(image.encoded_image_string))
    assert decoded.format == "JPEG" and decoded.size == (image.width, image.height)  # what TensorBoard shows


def test_the_epoch_line_says_what_was_active(alexnet_weights, dataset, tmp_path, capsys):
    """Catches: "running under dropout/augmentation" printed for a linear probe, where neither is on."""
    run(dataset, tmp_path, "--remove", "1", "--train", "new", "--epochs", "1")
    run(dataset, tmp_path, "--remove", "2", "--train", "new", "--epochs", "1")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert "(train, as evaluated / val)" in lines[0] and "(train, under dropout / val)" in lines[1]


def test_frozen_weights_stay_bit_identical(alexnet_weights, dataset, tmp_path, monkeypatch):
    """Catches: an update (weight decay, momentum) reaching a frozen layer, which the checkpoint, holding only the
    trained layers and the digest of the weights as loaded, would not keep: a resume would silently differ."""
    real, at_save = a4a.save_checkpoint, {}

    def spy(run_, name, epoch):
        at_save.update({k: v.detach().to("cpu", copy=True) for k, v in run_.model.state_dict().items()})
        return real(run_, name, epoch)
    monkeypatch.setattr(a4a, "save_checkpoint", spy)
    run_dir = run(dataset, tmp_path, "--remove", "2", "--train", "fc", "--epochs", "1")
    ck = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)
    assert os.path.samefile(run_dir / "best.pt", run_dir / "last.pt")  # one epoch, the best: one file on disk
    names = ck["frozen"]["names"]
    assert names == [k for k in alexnet_weights if k.startswith("features.")]
    assert all(torch.equal(at_save[k], alexnet_weights[k]) for k in names)  # after training, as loaded
    assert ck["frozen"]["sha256"] == a4a.tensors_digest(alexnet_weights, names)
    assert not torch.equal(ck["model"]["classifier.1.weight"], alexnet_weights["classifier.1.weight"])  # fc6 trained


def test_a_new_layer_run_stores_only_the_new_layer(alexnet_weights, dataset, tmp_path):
    """Catches: every checkpoint of a --train new run holding AlexNet's 230 MB of frozen ImageNet weights again."""
    run_dir = run(dataset, tmp_path, "--remove", "1", "--train", "new", "--epochs", "1")
    ck = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)
    assert sorted(ck["model"]) == ["classifier.6.bias", "classifier.6.weight"]
    assert ck["model"]["classifier.6.weight"].shape == (3, 4096)
    assert os.path.getsize(run_dir / "last.pt") < 200_000


def test_full_finetune_with_augmentation_trains_conv_layers(alexnet_weights, dataset, tmp_path, monkeypatch):
    real, seen = a4a.train_one_epoch, {}

    def spy(head, split, *rest):  # catches: the model or its inputs left out of channels_last, the fast path
        seen["weights"] = head[0].weight.is_contiguous(memory_format=torch.channels_last)
        seen["input"] = split.batch(torch.arange(2), torch.device("cpu"), "fp32").is_contiguous(
            memory_format=torch.channels_last)
        return real(head, split, *rest)
    monkeypatch.setattr(a4a, "train_one_epoch", spy)
    run_dir = run(dataset, tmp_path, "--train", "all", "--epochs", "1")
    assert seen == {"weights": True, "input": True}
    state = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)["model"]
    assert not torch.equal(state["features.0.weight"], alexnet_weights["features.0.weight"])
    assert json.load(open(run_dir / "config.json"))["augment"] is True


def test_cached_features_equal_a_tutorial_style_loop(alexnet_weights, dataset, tmp_path):
    """Frozen layers once per image + epochs on cached features == every image through the whole net every epoch."""
    from torchvision.datasets import ImageFolder
    run_dir = run(dataset, tmp_path, "--remove", "1", "--train", "new", "--epochs", "2")
    ours = json.load(open(run_dir / "metrics.json"))["epochs"]
    new_layer = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)["model"]["classifier.6.weight"]

    # the textbook loop: ImageFolder + the weights' transforms, the whole model forward each step
    a4a.seed_everything(0)
    model, weights = a4a.load_alexnet()
    model = a4a.remove_last_fc_layers(model, 1, 3)
    trained = a4a.set_trainable(model, "new")
    ds = ImageFolder(str(dataset / "train"), transform=weights.transforms())
    opt = torch.optim.SGD(trained, lr=0.01, momentum=0.9, weight_decay=5e-4)
    model.eval()  # frozen layers are a fixed feature extractor; the new layer has no dropout or batch-norm
    for epoch in range(2):
        for g in opt.param_groups:
            g["lr"] = 0.01 * 0.5 * (1 + __import__("math").cos(__import__("math").pi * epoch / 2))
        order, total = a4a.batch_order(len(ds), epoch, 0), 0.0
        for i in range(0, len(ds), 8):
            batch = [ds[j] for j in order[i:i + 8].tolist()]
            x, y = torch.stack([b[0] for b in batch]), torch.tensor([b[1] for b in batch])
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
        assert total / len(ds) == pytest.approx(ours[epoch]["loss_train"], rel=1e-4)
    torch.testing.assert_close(model.classifier[6].weight, new_layer, rtol=1e-4, atol=1e-6)


def test_compare_prints_a_table_and_runs_the_conv_layers_once(alexnet_weights, dataset, tmp_path, capsys,
                                                              monkeypatch):
    real, calls = a4a.to_input, {"n": 0}

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)
    monkeypatch.setattr(a4a, "to_input", counting)
    a4a.main(["--data", str(dataset), "--runs", str(tmp_path / "runs"), "--remove", "1", "2", "--train", "new",
              "--epochs", "1", "--batch-size", "16", "--workers", "2"])
    out = capsys.readouterr().out
    table = out[out.index("best val"):]
    assert table.count("remove1-new") == 1 and table.count("remove2-new") == 1
    assert len(list((tmp_path / "runs").iterdir())) == 2
    assert calls["n"] == 2  # one conv pass per split (36 train, 18 val images: one batch each), shared by both runs


def test_corrupt_images_are_skipped_and_counted(alexnet_weights, tmp_path, capsys):
    data = make_style_dataset(tmp_path / "d", n_train=4, n_val=2)
    (data / "train" / "Red_Period" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (data / "val" / "Blue_Period" / "empty.jpg").write_bytes(b"")
    run_dir = run(data, tmp_path, "--epochs", "1")
    err = capsys.readouterr()
    assert "warning: skipping" in err.err and "broken.jpg" in err.err and "empty.jpg" in err.err
    assert "skipped 2 unusable image(s)" in err.out
    assert json.load(open(run_dir / "metrics.json"))["skipped_images"] == {"train": 1, "val": 1}


def test_decode_cache_is_reused_and_rebuilt_when_files_change(tmp_path):
    data = make_style_dataset(tmp_path / "d", n_train=2, n_val=1)
    files, labels, _ = a4a.list_split(str(data), "train")
    cache = str(data / ".cache")
    first = a4a.load_split_cached(files, labels, cache, "train", 1)
    names = sorted(os.listdir(cache))
    assert [os.path.splitext(n)[1] for n in names] == [".json", ".u8"]
    mtime = os.stat(os.path.join(cache, names[1])).st_mtime_ns
    assert torch.equal(a4a.load_split_cached(files, labels, cache, "train", 1)[0], first[0])
    assert os.stat(os.path.join(cache, names[1])).st_mtime_ns == mtime  # read, not rebuilt
    assert os.path.getsize(os.path.join(cache, names[1])) == 6 * 3 * 256 * 256  # raw uint8, one image after another
    os.remove(files[0])
    files2, labels2, _ = a4a.list_split(str(data), "train")
    again = a4a.load_split_cached(files2, labels2, cache, "train", 1)
    assert len(again[0]) == len(first[0]) - 1 and sorted(os.listdir(cache)) != names and len(os.listdir(cache)) == 2
    assert torch.equal(again[0], first[0][1:]) and again[1].tolist() == first[1][1:].tolist()
    assert first[0].dtype == torch.uint8 and first[0].shape[1:] == (3, 256, 256)


def test_decode_matches_the_weights_transforms(tmp_path):
    from PIL import Image
    from torchvision.models import AlexNet_Weights
    data = make_style_dataset(tmp_path / "d", n_train=1, n_val=1)
    f = sorted((data / "train" / "Red_Period").iterdir())[0]
    tf = AlexNet_Weights.IMAGENET1K_V1.transforms()
    expected = tf(Image.open(f).convert("RGB"))
    mean, std = torch.tensor(tf.mean).view(1, 3, 1, 1), torch.tensor(tf.std).view(1, 3, 1, 1)
    torch.testing.assert_close(a4a.to_input(a4a.decode(str(f))[None], mean, std)[0], expected)


@pytest.mark.parametrize("argv,message", [
    (["--data", "{tmp}/nothing"], "no dataset at {tmp}/nothing/train: run `python download_wikiart.py` first"),
    (["--resume", "{tmp}/norun"], "--resume {tmp}/norun: no last.pt there"),
    (["--weights", "{tmp}/none.pth", "--data", "{data}"], "--weights {tmp}/none.pth does not exist"),
])
def test_clear_errors(alexnet_weights, dataset, tmp_path, argv, message):
    with pytest.raises(SystemExit) as e:
        a4a.main([a.format(tmp=tmp_path, data=dataset) for a in argv] + ["--runs", str(tmp_path / "r")])
    assert str(e.value).startswith("error: " + message.format(tmp=tmp_path))


def test_damaged_checkpoint_on_resume(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"half a checkpoint")
    with pytest.raises(SystemExit) as e:
        a4a.main(["--resume", str(tmp_path / "run")])
    assert str(e.value).startswith(f"error: --resume {tmp_path / 'run'}: last.pt could not be read (")
    assert str(e.value).endswith("); if best.pt there is intact, copy it over last.pt to resume from the best epoch, "
                                 "or start a new run")


def test_missing_weights_offline(dataset, tmp_path, monkeypatch):
    import urllib.error
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))

    def offline(*a, **k):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(SystemExit) as e:
        a4a.main(["--data", str(dataset), "--runs", str(tmp_path / "r"), "--epochs", "1"])
    assert "could not download the AlexNet weights" in str(e.value)
    assert str(tmp_path / "empty" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth") in str(e.value)


def test_nan_loss_stops_with_a_message_and_keeps_checkpoints(alexnet_weights, dataset, tmp_path, monkeypatch):
    real = a4a.cross_entropy
    calls = {"n": 0}

    def nan_in_epoch_two(logits, labels):
        calls["n"] += 1
        loss = real(logits, labels)
        return loss * float("nan") if calls["n"] > 6 else loss  # 36 images / batch 8 = 5 steps an epoch
    monkeypatch.setattr(a4a, "cross_entropy", nan_in_epoch_two)
    with pytest.raises(SystemExit) as e:
        run(dataset, tmp_path, "--name", "nan")
    assert "the training loss became nan in epoch 2" in str(e.value)
    assert torch.load(tmp_path / "runs" / "nan" / "last.pt", map_location="cpu", weights_only=True)["epoch"] == 1


# ---- the assignment sheet's "GD algorithm", written out, and what the bugs an audit planted would break ----

def test_written_out_sgd_equals_torch_sgd_step_for_step():
    """Catches: a wrong momentum or weight-decay term, the velocity reset each step, lr applied twice."""
    g = torch.Generator().manual_seed(0)
    w0 = [torch.randn(5, 4, generator=g), torch.randn(4, generator=g)]
    ours_w = [w.clone().requires_grad_(True) for w in w0]
    ref_w = [w.clone().requires_grad_(True) for w in w0]
    ours = a4a.SGD(ours_w, lr=0.1, momentum=0.9, weight_decay=5e-4)
    ref = torch.optim.SGD(ref_w, lr=0.1, momentum=0.9, weight_decay=5e-4, foreach=False)
    x = torch.randn(8, 5, generator=g)
    for step in range(6):
        for opt, (a, b) in ((ours, ours_w), (ref, ref_w)):
            opt.zero_grad()
            ((x @ a + b).tanh() ** 2).sum().backward()
            if step == 3:  # the schedule changes lr between epochs through param_groups, as in train_run
                opt.param_groups[0]["lr"] = 0.02
            opt.step()
        for a, b in zip(ours_w, ref_w):
            assert torch.equal(a, b), step
    # the velocities travel in torch.optim.SGD's checkpoint layout, both ways
    sd = ours.state_dict()
    assert all(torch.equal(sd["state"][i]["momentum_buffer"], ref.state_dict()["state"][i]["momentum_buffer"])
               for i in range(2))
    again = a4a.SGD([w.detach().clone().requires_grad_(True) for w in ours_w], lr=1.0)
    again.load_state_dict(ref.state_dict())
    assert again.param_groups[0]["momentum"] == 0.9
    assert torch.equal(again.velocity[0], sd["state"][0]["momentum_buffer"])


def test_checkpoints_hold_the_velocities_and_parameter_counts(alexnet_weights, dataset, tmp_path):
    """Catches: the optimizer state left out of last.pt (a resume would restart momentum from 0), and report
    sentences about model size made up instead of counted."""
    run_dir = run(dataset, tmp_path, "--remove", "2", "--train", "new", "--epochs", "1")
    opt = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)["optimizer"]
    model = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)["model"]
    assert [v["momentum_buffer"].shape for v in opt["state"].values()] == [model["classifier.4.weight"].shape,
                                                                            model["classifier.4.bias"].shape]
    assert opt["param_groups"][0]["momentum"] == 0.9
    p = json.load(open(run_dir / "metrics.json"))["parameters"]
    assert p == {"imagenet_alexnet": 61_100_840, "after_surgery": 61_100_840 - 4096 * 4097 - 4097 * 1000 + 4097 * 3,
                 "trained": 4097 * 3}


def test_learning_rate_follows_the_documented_cosine_and_never_reaches_zero(alexnet_weights, dataset, tmp_path,
                                                                             capsys):
    run_dir = run(dataset, tmp_path, "--epochs", "4")
    lrs = [h["lr"] for h in json.load(open(run_dir / "metrics.json"))["epochs"]]
    assert lrs == pytest.approx([0.01 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)])
    assert lrs[-1] > 0
    with pytest.raises(SystemExit):
        a4a.parse_args(["--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    assert "annealed to 0" not in helptext and "small but not 0" in helptext
    assert "eval mode" in helptext and "linear probe" in helptext


def test_evaluate_is_in_eval_mode_and_the_confusion_matrix_is_true_by_predicted():
    """Catches: evaluate() leaving dropout on, and a transposed confusion matrix."""
    logits = torch.tensor([[0.0, 5.0, 0.0], [0.0, 4.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 2])  # predictions 1, 1, 1, 0
    head = nn.Sequential(nn.Dropout(0.9)).train()  # left in train mode by the epoch before
    cfg = types.SimpleNamespace(precision="fp32")  # all that evaluate() reads of a4a.Config
    loss, acc, conf, probs = a4a.evaluate(head, a4a.FeatureSplit(logits, labels), cfg, torch.device("cpu"), 3)
    torch.testing.assert_close(probs, logits.softmax(1))
    assert conf.tolist() == [[0, 2, 0], [0, 1, 0], [1, 0, 0]]
    assert acc == 0.25 and loss == pytest.approx(nn.functional.cross_entropy(logits, labels).item())


def test_hparams_reach_tensorboard(alexnet_weights, dataset, tmp_path):
    """Catches: add_hparams never called (an event file exists either way)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2
    run_dir = run(dataset, tmp_path, "--remove", "2", "--epochs", "2")
    best = json.load(open(run_dir / "metrics.json"))["best_val_accuracy"]
    ea = EventAccumulator(str(run_dir))
    ea.Reload()
    content = ea.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["remove"].number_value == 2 and start.hparams["train"].string_value == "new"
    assert start.hparams["lr"].number_value == pytest.approx(0.01)
    assert ea.Scalars("hparam/best_accuracy_val")[0].value == pytest.approx(best)


def test_cache_is_rebuilt_after_a_same_size_edit(tmp_path):
    """Catches: a cache key of names and sizes only (an edited painting of the same size kept its old pixels)."""
    from PIL import Image
    folder = tmp_path / "d" / "train" / "A"
    folder.mkdir(parents=True)
    (tmp_path / "d" / "train" / "B").mkdir()
    f = folder / "x.bmp"  # uncompressed: every 40x32 picture has the same file size
    Image.new("RGB", (40, 32), (200, 0, 0)).save(f)
    Image.new("RGB", (40, 32), (0, 0, 200)).save(tmp_path / "d" / "train" / "B" / "y.bmp")
    files, labels, _ = a4a.list_split(str(tmp_path / "d"), "train")
    cache = str(tmp_path / "d" / ".cache")
    red = a4a.load_split_cached(files, labels, cache, "train", 1)[0][0]
    size = f.stat().st_size
    Image.new("RGB", (40, 32), (0, 200, 0)).save(f)
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    assert f.stat().st_size == size
    green = a4a.load_split_cached(files, labels, cache, "train", 1)[0][0]
    assert red[0].float().mean() > 150 and green[1].float().mean() > 150 and green[0].float().mean() < 50


def test_the_flags_typed_are_known_even_when_they_repeat_a_default():
    """Catches: "given" read as "differs from the default", so that --lr 0.001 on --resume (the default, typed) is not
    checked against the run's own rate; and the defaults left suppressed after the second parse."""
    args = a4a.parse_args(["--resume", "runs/x", "--lr", str(a4a.LR), "--device", "cpu"])
    assert args.given == {"resume", "lr", "device"}
    again = a4a.parse_args([])
    assert again.given == set() and again.lr == a4a.LR and again.remove == [1]
