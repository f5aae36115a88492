"""assignment_4a.py as a hostile or unlucky user meets it: interrupts, resumes, reused names, full disks, bad files."""
import errno
import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import assignment_4a as a4a
from conftest import cache_path, make_style_dataset, write_image

FAST = ["--batch-size", "4", "--lr", "0.01", "--workers", "1"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return make_style_dataset(tmp_path_factory.mktemp("small"), n_train=4, n_val=2)


def train(data, runs, *extra):
    a4a.main(["--data", str(data), "--runs", str(runs), *FAST, *extra])


def history(run_dir):
    return json.load(open(run_dir / "metrics.json"))["epochs"]


def interrupt_at(monkeypatch, epoch_index):
    import inspect
    real = a4a.train_one_epoch

    def cut(*args, **kwargs):
        if inspect.signature(real).bind(*args, **kwargs).arguments["epoch"] == epoch_index:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(a4a, "train_one_epoch", cut)
    return real


# ("1", "fc") runs the same path as ("2", "new"): cached conv features and dropout in the trained part
@pytest.mark.parametrize("surgery", [("1", "new"), ("1", "all"), ("2", "new")])
def test_resume_reproduces_the_uninterrupted_run_bit_for_bit(alexnet_weights, small, tmp_path, monkeypatch, surgery):
    """Catches: dropout's random state not replayed on resume (every --train value with dropout in the trained part)."""
    flags = ["--remove", surgery[0], "--train", surgery[1], "--epochs", "2"]
    train(small, tmp_path / "runs", *flags, "--name", "straight")
    real = interrupt_at(monkeypatch, 1)
    with pytest.raises(SystemExit):
        train(small, tmp_path / "runs", *flags, "--name", "cut")
    monkeypatch.setattr(a4a, "train_one_epoch", real)
    a4a.main(["--resume", str(tmp_path / "runs" / "cut")])
    a, b = history(tmp_path / "runs" / "straight"), history(tmp_path / "runs" / "cut")
    assert [h["epoch"] for h in b] == [1, 2]
    for x, y in zip(a, b):
        assert (x["loss_train"], x["accuracy_train"], x["loss_val"]) == (y["loss_train"], y["accuracy_train"],
                                                                       y["loss_val"])
    wa = torch.load(tmp_path / "runs" / "straight" / "last.pt", map_location="cpu", weights_only=True)
    wb = torch.load(tmp_path / "runs" / "cut" / "last.pt", map_location="cpu", weights_only=True)
    assert sorted(wa["model"]) == sorted(wb["model"]) and wa["frozen"] == wb["frozen"]
    for k in wa["model"]:
        assert torch.equal(wa["model"][k], wb["model"][k]), k
    for i in wa["optimizer"]["state"]:
        va, vb = wa["optimizer"]["state"][i]["momentum_buffer"], wb["optimizer"]["state"][i]["momentum_buffer"]
        assert torch.equal(va, vb)


def test_extending_a_finished_run_continues_the_schedule_without_a_jump(alexnet_weights, small, tmp_path):
    """Catches: the cosine restarting from mid-height when --epochs grows, and config.json rewritten by a refused
    resume."""
    train(small, tmp_path / "runs", "--epochs", "2", "--name", "r")
    run = tmp_path / "runs" / "r"
    with pytest.raises(SystemExit) as e:
        a4a.main(["--resume", str(run)])
    assert "finished its 2 epochs; pass --epochs N (more than 2)" in str(e.value)
    with pytest.raises(SystemExit) as e:
        a4a.main(["--resume", str(run), "--epochs", "1"])
    assert "already has 2 finished epoch(s)" in str(e.value)
    assert json.load(open(run / "config.json"))["epochs"] == 2
    a4a.main(["--resume", str(run), "--epochs", "4"])
    lrs = [h["lr"] for h in history(run)]
    assert lrs[:2] == pytest.approx([0.01, 0.005])  # epoch 2 of 2: 0.01 * (1 + cos(pi / 2)) / 2
    assert lrs[2:] == pytest.approx([0.005, 0.0025])  # the extension: from the last rate, a new half cosine
    assert json.load(open(run / "config.json"))["epochs"] == 4


def test_resume_honours_data_and_device_and_refuses_what_defines_the_run(alexnet_weights, small, tmp_path,
                                                                         monkeypatch, capsys):
    """Catches: --data and --device ignored on resume (a moved dataset, a CUDA run resumed on a CPU), and surgery or
    lr flags silently dropped."""
    data = shutil.copytree(small, tmp_path / "data")
    real = interrupt_at(monkeypatch, 1)
    with pytest.raises(SystemExit):
        train(data, tmp_path / "runs", "--epochs", "2", "--name", "r", "--train", "fc")
    monkeypatch.setattr(a4a, "train_one_epoch", real)
    run = tmp_path / "runs" / "r"
    for flags, name in ((["--lr", "0.5"], "--lr"), (["--remove", "2"], "--remove"), (["--train", "all"], "--train"),
                        (["--compare"], "--compare")):
        with pytest.raises(SystemExit) as e:
            a4a.main(["--resume", str(run), *flags])
        assert str(e.value).startswith(f"error: {name} cannot change on --resume"), flags
    moved = tmp_path / "moved"
    data.rename(moved)
    ck = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    ck["config"]["device"] = "cuda:7"  # as if trained on a GPU this machine does not have
    torch.save(ck, run / "last.pt")
    a4a.main(["--resume", str(run), "--data", str(moved), "--workers", "2"])
    assert "ran on cuda:7, which this machine lacks: continuing on --device auto" in capsys.readouterr().out
    cfg = json.load(open(run / "config.json"))
    assert cfg["data"] == str(moved) and cfg["workers"] == 2 and len(history(run)) == 2


def test_a_configuration_saved_by_an_older_version_resumes_with_the_defaults_of_what_it_lacks():
    """Catches: Config.from_checkpoint failing on a checkpoint from before --precision, --workers or the schedule
    segments existed, or on a key this version no longer has."""
    old = {"data": "d", "runs": "r", "remove": 2, "train": "fc", "augment": False, "epochs": 4, "batch_size": 8,
           "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "seed": 3, "weights": None, "name": "x",
           "overwrite": False, "retired_flag": 1}
    cfg = a4a.Config.from_checkpoint(old)
    assert (cfg.precision, cfg.device, cfg.remove, cfg.seed) == ("fp32", "auto", 2, 3)
    assert a4a.lr_schedule(cfg) == [[0, 4, 0.01]]
    assert not hasattr(cfg, "retired_flag")


def test_resume_refuses_imagenet_weights_other_than_the_runs(alexnet_weights, small, tmp_path):
    """Catches: a checkpoint that stores only the new layer resumed on top of other weights than it was trained on
    (a --weights file replaced since), silently: the frozen layers' digest must match."""
    weights = tmp_path / "alexnet.pth"
    torch.save(alexnet_weights, weights)
    train(small, tmp_path / "runs", "--remove", "1", "--train", "new", "--epochs", "2", "--weights", str(weights),
          "--name", "r")
    other = dict(alexnet_weights, **{"features.0.bias": alexnet_weights["features.0.bias"] + 1e-6})
    torch.save(other, weights)
    with pytest.raises(SystemExit) as e:
        a4a.main(["--resume", str(tmp_path / "runs" / "r"), "--epochs", "3"])
    assert str(e.value).startswith(f"error: {tmp_path / 'runs' / 'r' / 'last.pt'} was trained on top of other "
                                   f"ImageNet weights than the ones loaded now ({weights}, ")
    assert "\n" not in str(e.value) and len(history(tmp_path / "runs" / "r")) == 2


def test_a_checkpoint_that_holds_the_whole_model_still_resumes(alexnet_weights, small, tmp_path, monkeypatch):
    """Runs started before checkpoints left out the frozen layers hold the whole model and no "frozen". Catches: such
    a run refused, or resumed from other weights than its own (it must end where a run never stopped ends)."""
    flags = ["--remove", "1", "--train", "new", "--epochs", "2"]
    train(small, tmp_path / "runs", *flags, "--name", "straight")
    real = interrupt_at(monkeypatch, 1)
    with pytest.raises(SystemExit):
        train(small, tmp_path / "runs", *flags, "--name", "old")
    monkeypatch.setattr(a4a, "train_one_epoch", real)
    path = tmp_path / "runs" / "old" / "last.pt"
    ck = torch.load(path, map_location="cpu", weights_only=True)
    del ck["frozen"]
    ck["model"] = dict(alexnet_weights, **ck["model"])  # the whole model, as checkpoints held it before
    del ck["model"]["classifier.6.weight"], ck["model"]["classifier.6.bias"]  # ImageNet's fc8, replaced by ...
    ck["model"].update(torch.load(path, map_location="cpu", weights_only=True)["model"])  # ... the trained layer
    torch.save(ck, path)
    a4a.main(["--resume", str(tmp_path / "runs" / "old")])
    a = torch.load(tmp_path / "runs" / "straight" / "last.pt", map_location="cpu", weights_only=True)
    b = torch.load(path, map_location="cpu", weights_only=True)
    assert len(history(tmp_path / "runs" / "old")) == 2 and b["frozen"] == a["frozen"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_resume_refuses_a_dataset_with_other_styles(alexnet_weights, small, tmp_path):
    """Catches: renamed style folders resuming with permuted labels; an added style crashing with a size mismatch."""
    data = shutil.copytree(small, tmp_path / "data")
    train(data, tmp_path / "runs", "--epochs", "1", "--name", "r")
    for split in ("train", "val"):
        (data / split / "Red_Period").rename(data / split / "Rose_Period")
    with pytest.raises(SystemExit) as e:
        a4a.main(["--resume", str(tmp_path / "runs" / "r"), "--epochs", "2"])
    assert "the dataset's styles are not the run's (missing: Red_Period; new: Rose_Period)" in str(e.value)
    assert "\n" not in str(e.value) and len(history(tmp_path / "runs" / "r")) == 1


def test_run_folders_are_never_shared_or_overwritten(alexnet_weights, small, tmp_path, monkeypatch, capsys):
    """Catches: two runs in the same second sharing a folder, --name silently replacing a run, --name ../x."""
    monkeypatch.setattr(a4a.time, "strftime", lambda fmt: "20260101-000000")
    train(small, tmp_path / "runs", "--epochs", "1")
    train(small, tmp_path / "runs", "--epochs", "1")
    assert sorted(os.listdir(tmp_path / "runs")) == ["remove1-new-20260101-000000", "remove1-new-20260101-000000-2"]
    train(small, tmp_path / "runs", "--epochs", "1", "--name", "mine")
    before = (tmp_path / "runs" / "mine" / "last.pt").stat().st_mtime_ns
    with pytest.raises(SystemExit) as e:
        train(small, tmp_path / "runs", "--epochs", "1", "--name", "mine")
    assert "mine already exists; choose another --name, continue it with --resume" in str(e.value)
    assert (tmp_path / "runs" / "mine" / "last.pt").stat().st_mtime_ns == before
    train(small, tmp_path / "runs", "--epochs", "1", "--name", "mine", "--overwrite")
    assert (tmp_path / "runs" / "mine" / "last.pt").stat().st_mtime_ns != before
    with pytest.raises(SystemExit) as e:
        train(small, tmp_path / "runs", "--name", "../x")
    assert e.value.code == 2 and "--name '../x': a folder name under --runs" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_full_disk_is_one_sentence_and_loses_no_finished_work(alexnet_weights, small, tmp_path, monkeypatch):
    """Catches: a traceback from torch.save, a .tmp left behind, metrics.json of the finished epoch never written."""
    real, calls = torch.save, {"last": 0}

    def full_disk(obj, path, *a, **k):
        if str(path).endswith("last.pt.tmp"):
            calls["last"] += 1
            if calls["last"] == 2:
                open(path, "wb").write(b"x" * 1000)
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, path, *a, **k)
    monkeypatch.setattr(a4a.torch, "save", full_disk)
    with pytest.raises(SystemExit) as e:
        train(small, tmp_path / "runs", "--epochs", "3", "--name", "r")
    run = tmp_path / "runs" / "r"
    msg = str(e.value)
    assert msg.startswith(f"error: no space left on the disk of {run} to write last.pt (about ") and "MB needed" in msg
    assert not [f for f in os.listdir(run) if f.endswith(".tmp")]
    assert len(history(run)) == 2  # both finished epochs are in metrics.json
    # the previous good checkpoint
    assert torch.load(run / "last.pt", map_location="cpu", weights_only=True)["epoch"] == 1


def test_best_pt_is_last_pt_on_disk_until_last_pt_moves_on(tmp_path, monkeypatch):
    """Catches: best.pt written as a second 230 MB copy (the suite once filled a CI disk), a symbolic link that
    would follow last.pt to later epochs, a .tmp left behind, no fallback where hard links are refused."""
    last, best = str(tmp_path / "last.pt"), str(tmp_path / "best.pt")
    a4a.atomic_save({"epoch": 1, "w": torch.arange(4.)}, last)
    a4a.link_checkpoint(last, best)
    assert os.path.samefile(last, best) and os.stat(best).st_nlink == 2
    a4a.atomic_save({"epoch": 2, "w": torch.zeros(4)}, last)
    assert torch.load(best, map_location="cpu", weights_only=True)["epoch"] == 1  # best.pt keeps the best epoch's bytes
    assert torch.equal(torch.load(best, map_location="cpu", weights_only=True)["w"], torch.arange(4.))
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 2 and os.stat(best).st_nlink == 1
    a4a.link_checkpoint(last, best)  # a later best replaces the old one
    assert os.path.samefile(last, best) and sorted(os.listdir(tmp_path)) == ["best.pt", "last.pt"]

    def no_links(*a):
        raise OSError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(a4a.os, "link", no_links)
    a4a.atomic_save({"epoch": 3}, last)
    a4a.link_checkpoint(last, best)
    assert not os.path.samefile(last, best) and torch.load(best, map_location="cpu", weights_only=True)["epoch"] == 3


@pytest.mark.parametrize("flag,value", [("--lr", "nan"), ("--lr", "inf"), ("--lr", "0"), ("--weight-decay", "nan"),
                                        ("--momentum", "-1")])
def test_bad_numbers_are_refused(flag, value, capsys):
    """Catches: --lr nan accepted (NaN weights in best.pt)."""
    with pytest.raises(SystemExit) as e:
        a4a.parse_args([flag, value])
    assert e.value.code == 2 and f"{flag} {float(value)}: must be a finite number" in capsys.readouterr().err


def test_a_diverging_run_does_not_stop_the_others(alexnet_weights, small, tmp_path, monkeypatch, capsys):
    """Catches: one diverging run ending a --compare, or the table hiding which one diverged."""
    real = a4a.train_one_epoch

    def diverge_remove2(head, split, optimizer, cfg, epoch, *rest):
        if cfg.remove == 2 and epoch == 1:
            raise FloatingPointError("the training loss became nan in epoch 2 (step 1): lower --lr and run again")
        return real(head, split, optimizer, cfg, epoch, *rest)
    monkeypatch.setattr(a4a, "train_one_epoch", diverge_remove2)
    with pytest.raises(SystemExit) as e:
        train(small, tmp_path / "runs", "--remove", "2", "1", "--epochs", "2")
    assert "diverged: the training loss became nan in epoch 2" in str(e.value)
    out = capsys.readouterr().out
    table = out[out.index("best val"):]
    assert "DIVERGED in epoch 2" in [line for line in table.splitlines() if "remove2-new" in line][0]
    assert "DIVERGED" not in [line for line in table.splitlines() if "remove1-new" in line][0]
    (r1,) = [d for d in (tmp_path / "runs").iterdir() if d.name.startswith("remove1")]
    assert len(history(r1)) == 2


def test_a_style_without_training_images_is_refused_in_one_sentence(alexnet_weights, tmp_path):
    """Catches: an empty style folder trained silently (a class the model can never predict)."""
    data = make_style_dataset(tmp_path / "d", n_train=3, n_val=2)
    empty = data / "train" / "Red_Period"
    shutil.rmtree(empty)
    empty.mkdir()
    with pytest.raises(SystemExit) as e:
        train(data, tmp_path / "runs", "--epochs", "1")
    assert str(e.value) == (f"error: {empty} has no images: every style needs training images; fill it (python "
                            "download_wikiart.py) or remove the folder from train/ and val/")


def test_a_style_without_validation_images_is_a_warning(alexnet_weights, tmp_path, capsys):
    """Catches: an empty val/<Style> stopping the run, or passing without a word."""
    data = make_style_dataset(tmp_path / "d", n_train=3, n_val=2)
    for f in (data / "val" / "Green_Period").iterdir():
        f.unlink()
    train(data, tmp_path / "runs", "--epochs", "1", "--name", "a")
    assert f"warning: {data / 'val' / 'Green_Period'} has no images" in capsys.readouterr().err


def test_broken_links_and_pipes_are_skipped_not_opened(alexnet_weights, tmp_path, capsys, deadline):
    """Catches: a broken link aborting the run, a pipe named .jpg hanging it."""
    data = make_style_dataset(tmp_path / "d", n_train=3, n_val=2)
    os.symlink(tmp_path / "nowhere.jpg", data / "train" / "Blue_Period" / "gone.jpg")
    os.mkfifo(data / "train" / "Blue_Period" / "pipe.jpg")
    train(data, tmp_path / "runs", "--epochs", "1", "--name", "a")
    err = capsys.readouterr().err
    assert "gone.jpg: not a usable image (not a regular file" in err and "pipe.jpg" in err
    assert json.load(open(tmp_path / "runs" / "a" / "metrics.json"))["skipped_images"] == {"train": 2, "val": 0}


def test_a_damaged_cache_is_decoded_again(alexnet_weights, tmp_path, capsys):
    """Catches: a traceback from a cache cut short by a kill or a full disk; training on its garbage."""
    data = make_style_dataset(tmp_path / "d", n_train=3, n_val=2)
    train(data, tmp_path / "runs", "--epochs", "1", "--name", "a")
    for f in (data / ".cache").iterdir():
        f.write_bytes(f.read_bytes()[:100])
    train(data, tmp_path / "runs", "--epochs", "1", "--name", "b")
    assert "is damaged (" in capsys.readouterr().err
    assert history(tmp_path / "runs" / "b")[0]["loss_train"] == history(tmp_path / "runs" / "a")[0]["loss_train"]


@pytest.mark.parametrize("kind,expected", [("gray16", 128), ("rgba", 255)])
def test_training_decodes_images_as_the_saliency_script_does(tmp_path, kind, expected):
    """Catches: 16-bit and transparent PNGs decoded one way for training and another for saliency."""
    import assignment_4b as a4b
    path = tmp_path / f"{kind}.png"
    if kind == "gray16":
        Image.fromarray(np.full((300, 300), 32896, dtype=np.uint16)).save(path)  # 32896 / 65535 * 255 = 128
    else:
        arr = np.zeros((300, 300, 4), dtype=np.uint8)
        arr[..., 0] = 255  # red hidden under alpha 0
        Image.fromarray(arr, "RGBA").save(path)
    x = a4a.decode(str(path))
    assert x.shape == (3, 256, 256) and (x == expected).all(), x.float().mean()
    assert np.array_equal(np.asarray(a4a.open_rgb(str(path))), np.asarray(a4b.open_rgb(str(path))))


def test_a_bad_weights_file_is_one_sentence(tmp_path, monkeypatch, small):
    """Catches: an UnpicklingError traceback for an HTML page saved as the weights, or a best.pt given as --weights."""
    from torchvision.models import AlexNet_Weights
    import assignment_4b as a4b
    import vgg16
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    for weights in (AlexNet_Weights.IMAGENET1K_V1, vgg16.WEIGHTS):
        os.makedirs(os.path.dirname(cache_path(weights)), exist_ok=True)
        open(cache_path(weights), "w").write("<!DOCTYPE html><html>Access denied</html>")
    with pytest.raises(SystemExit) as e:
        train(small, tmp_path / "runs", "--epochs", "1")
    where = cache_path(AlexNet_Weights.IMAGENET1K_V1)
    assert str(e.value).startswith(f"error: {where} is not a readable state dict (UnpicklingError): delete it and "
                                   "download https://download.pytorch.org/models/alexnet-owt-7be5be79.pth again")
    with pytest.raises(SystemExit) as e:
        a4b.main(["--images", str(small / "val" / "Red_Period"), "--out", str(tmp_path / "o")])
    assert str(e.value).startswith(f"error: {vgg16.default_checkpoint_path()} could not be read as a state dict")
    assert "\n" not in str(e.value)
    ck = tmp_path / "best.pt"
    torch.save({"model": {}, "config": {}, "classes": []}, ck)
    with pytest.raises(SystemExit) as e:
        train(small, tmp_path / "runs", "--epochs", "1", "--weights", str(ck))
    assert "is a checkpoint of assignment_4a.py, not ImageNet weights" in str(e.value)
    with pytest.raises(SystemExit) as e:
        a4b.main(["--images", str(small / "val" / "Red_Period"), "--out", str(tmp_path / "o"), "--weights", str(ck)])
    assert "is a checkpoint of assignment_4a.py, not ImageNet weights" in str(e.value)


def test_ctrl_c_before_the_first_epoch_leaves_no_folder_and_the_same_command_starts_again(alexnet_weights, small,
                                                                                          tmp_path, monkeypatch,
                                                                                          capsys):
    """Catches: exit 130 during the frozen-layer pass leaving runs/r/ with only config.json, which the rerun refuses
    ("already exists ... --resume") and --resume refuses too ("nothing to resume")."""
    real = a4a.run_prefix

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(a4a, "run_prefix", interrupted)
    with pytest.raises(SystemExit) as e:
        train(small, tmp_path / "runs", "--epochs", "1", "--name", "r")
    assert e.value.code == 130
    assert (f"interrupted before epoch 1, while the frozen layers ran once over the images: nothing was trained, so "
            f"{tmp_path / 'runs' / 'r'} is removed: the same command starts the run again") in capsys.readouterr().out
    assert not (tmp_path / "runs" / "r").exists()
    monkeypatch.setattr(a4a, "run_prefix", real)
    train(small, tmp_path / "runs", "--epochs", "1", "--name", "r")
    assert len(history(tmp_path / "runs" / "r")) == 1


def test_a_name_whose_folder_cannot_be_resumed_is_not_told_to_resume(tmp_path):
    """Catches: "continue it with --resume" for a folder with no last.pt, which --resume then refuses."""
    (tmp_path / "runs" / "r").mkdir(parents=True)
    (tmp_path / "runs" / "r" / "config.json").write_text("{}")
    cfg = a4a.Config(data="d", runs=str(tmp_path / "runs"), remove=1, train="new", augment=False, name="r")
    with pytest.raises(a4a.RunError) as e:
        a4a.make_run_dir(cfg)
    assert str(e.value) == (f"--name r: {tmp_path / 'runs' / 'r'} already exists; choose another --name, or replace it "
                            "with --overwrite")


def test_resuming_a_run_that_never_finished_an_epoch_says_so(tmp_path):
    """Catches: "no last.pt there" for a run folder that exists but was stopped in its first epoch."""
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text("{}")
    with pytest.raises(SystemExit) as e:
        a4a.main(["--resume", str(tmp_path / "r")])
    assert str(e.value) == (f"error: --resume {tmp_path / 'r'}: that run never finished an epoch (no last.pt), so "
                            "there is nothing to resume: start it again (--name r --overwrite reuses its folder)")


def test_ctrl_c_in_a_later_epoch_names_the_resume_command(alexnet_weights, small, tmp_path, monkeypatch, capsys):
    """Catches: a Ctrl-C message without the command that continues the run."""
    interrupt_at(monkeypatch, 1)
    with pytest.raises(SystemExit):
        train(small, tmp_path / "runs", "--epochs", "2", "--name", "r")
    assert (f"interrupted in epoch 2: interrupted.pt holds the weights at the moment of Ctrl-C; last.pt holds the 1 "
            f"finished epoch(s); continue with: python assignment_4a.py --resume {tmp_path / 'runs' / 'r'}"
            in capsys.readouterr().out)


def test_a_resume_that_finishes_removes_the_stale_interrupted_pt(alexnet_weights, small, tmp_path, monkeypatch, capsys):
    """Catches: a 446 MB interrupted.pt left behind by every Ctrl-C, after the run it was cut from has finished."""
    real = interrupt_at(monkeypatch, 1)
    with pytest.raises(SystemExit):
        train(small, tmp_path / "runs", "--epochs", "2", "--name", "r")
    assert (tmp_path / "runs" / "r" / "interrupted.pt").exists()
    monkeypatch.setattr(a4a, "train_one_epoch", real)
    a4a.main(["--resume", str(tmp_path / "runs" / "r")])
    assert not (tmp_path / "runs" / "r" / "interrupted.pt").exists()
    assert f"removed {tmp_path / 'runs' / 'r' / 'interrupted.pt'}" in capsys.readouterr().out


def test_defaults_are_the_projects_folders_whatever_the_current_folder(tmp_path, monkeypatch):
    """Catches: `python ../project/assignment_4a.py` looking for datasets/ and writing runs/ where the user stands,
    and download_wikiart.py creating a second datasets/ there."""
    import download_wikiart as dw
    from conftest import ROOT
    monkeypatch.chdir(tmp_path)
    args = a4a.parse_args([])
    assert (args.data, args.runs) == (os.path.join(ROOT, "datasets", "wikiart"), os.path.join(ROOT, "runs"))
    assert dw.parse_args([]).out == os.path.join(ROOT, "datasets", "wikiart")
    assert a4a.parse_args(["--data", "d"]).data == "d"  # what the user types stays relative to where they are


def test_a_bug_in_decoding_surfaces_as_itself(tmp_path, monkeypatch):
    """Catches: decode catching every exception, so that a programming error there skips every image and surfaces
    as "none of the images could be decoded" instead of its own traceback."""
    from torchvision.transforms import functional as TF
    f = write_image(tmp_path / "a.jpg")

    def planted(*a, **k):
        raise TypeError("planted bug")
    monkeypatch.setattr(TF, "resize", planted)
    with pytest.raises(TypeError, match="planted bug"):
        a4a.decode(f)


def test_a_damaged_png_is_still_skipped_with_its_reason(tmp_path, capsys):
    """Catches: the narrowed catch letting PIL's own errors for damaged data (a broken stream) stop the run."""
    f = write_image(tmp_path / "a.png")
    data = bytearray(open(f, "rb").read())
    data[data.index(b"IDAT") + 10] ^= 0xFF
    open(f, "wb").write(data)
    assert a4a.decode(f) is None
    assert "not a usable image (damaged image data (OSError: broken data stream" in capsys.readouterr().err


def test_a_resumed_run_continues_tensorboards_curves_and_reports_the_best_epoch(alexnet_weights, tmp_path,
                                                                               monkeypatch):
    """Catches: a resume whose step counter restarts at 0 (the first epochs' curve overwritten), and
    hparam/best_accuracy_val taken from the last epoch rather than the best."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    data = make_style_dataset(tmp_path / "wikiart", n_train=4, n_val=2)
    accuracies = iter([0.9, 0.5, 0.4])
    real = a4a.evaluate

    def evaluate(*a, **k):  # the real evaluation, with the validation accuracy of this epoch planted
        loss, _, confusion, probs = real(*a, **k)
        return loss, next(accuracies), confusion, probs
    monkeypatch.setattr(a4a, "evaluate", evaluate)
    common = ["--data", str(data), "--runs", str(tmp_path / "runs"), "--batch-size", "4", "--workers", "1"]
    a4a.main(common + ["--epochs", "2", "--name", "r"])
    a4a.main(["--resume", str(tmp_path / "runs" / "r"), "--epochs", "3"])
    ea = EventAccumulator(str(tmp_path / "runs" / "r"), size_guidance={"scalars": 0})
    ea.Reload()
    assert [s.step for s in ea.Scalars("accuracy/val")] == [1, 2, 3]
    assert [round(s.value, 3) for s in ea.Scalars("accuracy/val")] == [0.9, 0.5, 0.4]
    steps = [s.step for s in ea.Scalars("loss/train_step")]
    assert steps == list(range(3 * 3))  # 12 training images, batches of 4: 3 steps an epoch, none written twice
    assert [round(s.value, 3) for s in ea.Scalars("hparam/best_accuracy_val")][-1] == 0.9
