"""assignment_4a.py's settings are declared once (Config's field marks) and every other list is derived from them;
a user's mistake is a RunError and ends in one line, while any other exception is a bug and keeps its traceback."""
import dataclasses

import pytest
import torch

import assignment_4a as a4a
from conftest import make_style_dataset


def flags():
    """The destinations of assignment_4a.py's command-line flags."""
    return set(vars(a4a.parse_args([]))) - {"given"}


def test_every_flag_is_a_marked_setting_or_named_as_none():
    """Catches: a new flag that no list knows (neither fixed nor changeable on --resume, so a resume silently
    ignores it), or a field whose mark has a typo."""
    marks = {f.name: f.metadata["resume"] for f in dataclasses.fields(a4a.Config)}
    assert set(marks.values()) <= {"fixed", "changeable", None}
    for flag in flags():
        assert marks.get(flag) in ("fixed", "changeable") or flag in a4a.FLAGS_NOT_SETTINGS, flag
    assert {n for n, m in marks.items() if m is not None} <= flags()  # a field marked as a flag is one


def test_each_flags_default_is_its_fields_default():
    """Catches: a default typed twice, in the flag and in the Config field, and changed in one only (a resumed run
    that saved no value for a newer setting would get the field's, a new run the flag's)."""
    args = a4a.parse_args([])
    for f in dataclasses.fields(a4a.Config):
        if f.metadata["resume"] is None or f.default is dataclasses.MISSING:
            continue
        cfg = a4a.Config(data="d", runs="r", remove=1, train="new", augment=False)
        assert getattr(args, f.name) == a4a.as_flag(cfg, f.name), f.name


def test_a_per_run_setting_is_a_list_on_the_command_line_and_one_value_in_each_run():
    """Catches: a field marked per_run whose flag takes one value (plan_runs would give every run the whole list),
    or a setting that is not per-run taken from the command line as a list."""
    args = a4a.parse_args(["--remove", "1", "2", "--train", "new", "fc"])
    plan = a4a.plan_runs(args)
    for name in a4a.settings(per_run=True):
        assert all(not isinstance(getattr(cfg, name), list) for cfg in plan), name
    for name in set(a4a.settings(per_run=False)) - set(a4a.settings(resume=None)):
        assert all(getattr(cfg, name) == getattr(args, name) for cfg in plan), name
    assert [(c.remove, c.train) for c in plan] == [(r, t) for r in args.remove for t in args.train]


def test_resume_refuses_a_flag_marked_fixed(tmp_path, monkeypatch):
    """Catches: the refusal list not following the marks: a field newly marked fixed is refused on --resume."""
    field = a4a.Config.__dataclass_fields__["workers"]
    monkeypatch.setattr(field, "metadata", dict(field.metadata, resume="fixed"))
    run = tmp_path / "run"
    run.mkdir()
    cfg = a4a.Config(data="d", runs=str(tmp_path), remove=1, train="new", augment=False, epochs=2, batch_size=8,
                     lr=0.01, momentum=0.9, weight_decay=0.0, seed=0, workers=1)
    torch.save({"config": dataclasses.asdict(cfg), "epoch": 1}, run / "last.pt")
    with pytest.raises(SystemExit) as e:
        a4a.main(["--resume", str(run), "--workers", "3"])
    assert str(e.value).startswith("error: --workers cannot change on --resume")


def test_a_users_mistake_is_one_line(tmp_path):
    """Catches: a mistake raised as a plain exception after the change (a traceback where a sentence is due)."""
    with pytest.raises(SystemExit) as e:
        a4a.main(["--data", str(tmp_path / "nothing"), "--runs", str(tmp_path / "r")])
    assert str(e.value) == (f"error: no dataset at {tmp_path / 'nothing' / 'train'}: run `python download_wikiart.py` "
                            "first (or pass --data PATH to a folder with train/ and val/)")


PLANTED = {"assignment_4a": "train_one_epoch", "assignment_4b": "load_images", "saliency_extras": "load_model",
           "download_wikiart": "collect"}  # each command line's script, and a step its run reaches


@pytest.mark.parametrize("error", [ValueError, OSError])
@pytest.mark.parametrize("script", list(PLANTED))
def test_a_bug_planted_in_each_script_keeps_its_traceback(alexnet_weights, tmp_path, monkeypatch, script, error):
    """Catches: a main turning every ValueError or OSError into a one-line 'error:' (as 4b, saliency_extras.py and
    download_wikiart.py did), so that a bug reads like a user's mistake. Only a RunError is one line."""
    import importlib

    from conftest import write_image
    module = importlib.import_module(script)
    argv = {"assignment_4a": ["--data", str(make_style_dataset(tmp_path / "d", n_train=2, n_val=1)), "--runs",
                              str(tmp_path / "r"), "--epochs", "1", "--workers", "1"],
            "download_wikiart": ["--out", str(tmp_path / "out"), "--viewer-url", "http://127.0.0.1:9", "--hub-url",
                                 "http://127.0.0.1:9"]}.get(script, ["--images", str(tmp_path), "--out",
                                                                      str(tmp_path / "out")])
    write_image(tmp_path / "a.png")

    def buggy(*args, **kwargs):
        raise error("a planted bug")
    monkeypatch.setattr(module, PLANTED[script], buggy)
    with pytest.raises(error, match="a planted bug"):
        module.main(argv)


@pytest.mark.parametrize("script", ["assignment_4b", "saliency_extras"])
def test_an_out_folder_that_cannot_be_written_is_one_line(tmp_path, script):
    """Catches: the OSError of a read-only --out shown as a traceback once main stopped catching every OSError."""
    import importlib
    import os
    module = importlib.import_module(script)
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    if os.access(ro, os.W_OK):  # root writes anywhere: a file where a folder is needed fails for everyone
        blocked = tmp_path / "file"
        blocked.write_text("x")
        out = blocked / "out"
    else:
        out = ro / "out"
    with pytest.raises(SystemExit) as e:
        module.main(["--images", str(tmp_path), "--out", str(out)])
    assert str(e.value).startswith(f"error: cannot write in --out {out} (")
