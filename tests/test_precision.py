"""--precision says what ran: fp32 is IEEE fp32 (TF32 off for cuDNN and for matrix products, whatever was set
before), tf32 is asked for by name, and the outputs record the precision the device ran. These run anywhere: the
switches are PyTorch's, set and read without a GPU."""
import json

import pytest
import torch

import assignment_4a as a4a
import assignment_4b as a4b
import vgg16
from conftest import make_style_dataset, write_image


def tf32_switches():
    """(cuDNN convolutions may use TF32, CUDA matrix products may use TF32), read from the API this PyTorch has."""
    b = torch.backends
    if hasattr(b, "fp32_precision"):  # PyTorch >= 2.9
        return b.cudnn.conv.fp32_precision == "tf32", b.cuda.matmul.fp32_precision == "tf32"
    return b.cudnn.allow_tf32, torch.get_float32_matmul_precision() != "highest"


def switch_tf32_on():
    """What PyTorch's defaults and a notebook leave: TF32 allowed for convolutions and matrix products."""
    b = torch.backends
    if hasattr(b, "fp32_precision"):
        b.cudnn.conv.fp32_precision = b.cuda.matmul.fp32_precision = "tf32"
    else:
        b.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")


@pytest.fixture(autouse=True)
def restore_fp32():
    """Every other test runs in IEEE fp32, as the scripts set it."""
    yield
    vgg16.set_precision("fp32")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fp32_and_bf16_switch_tf32_off_whatever_was_set_before(precision):
    """Catches: --precision fp32 leaving PyTorch's default (TF32 convolutions on Ampere and newer) in place, so that
    "fp32" maps on a GPU are TF32 maps."""
    switch_tf32_on()
    assert tf32_switches() == (True, True)
    vgg16.set_precision(precision)
    assert tf32_switches() == (False, False)


def test_tf32_switches_tf32_on_for_both():
    """Catches: --precision tf32 accepted but only one of the two switches (or neither) set."""
    vgg16.set_precision("fp32")
    a4a.set_precision("tf32")
    assert tf32_switches() == (True, True)
    if hasattr(torch.backends, "fp32_precision"):  # TF32 is NVIDIA's: the CPU's matmul and conv stay IEEE
        assert torch.backends.mkldnn.matmul.fp32_precision == torch.backends.mkldnn.conv.fp32_precision == "ieee"


def test_both_graded_scripts_offer_tf32():
    """Catches: a script whose --precision refuses tf32."""
    assert a4a.parse_args(["--precision", "tf32"]).precision == "tf32"
    assert a4b.parse_args(["--precision", "tf32"]).precision == "tf32"


@pytest.mark.parametrize("precision,device,ran", [("tf32", "cpu", "fp32"), ("fp32", "cpu", "fp32"),
                                                   ("bf16", "cpu", "bf16")])
def test_the_precision_that_runs_is_fp32_where_there_is_no_tf32(precision, device, ran):
    """Catches: settings that say tf32 for a run on a device without TF32 units."""
    assert vgg16.precision_that_runs(precision, torch.device(device)) == ran


def test_saliency_settings_name_the_precision_that_ran(vgg_weights, tmp_path, capsys):
    """Catches: settings.json repeating the flag (tf32) for maps a CPU computed in fp32; TF32 left on after set-up."""
    write_image(tmp_path / "a.png", seed=3)
    switch_tf32_on()
    a4b.main(["--images", str(tmp_path), "--out", str(tmp_path / "out"), "--precision", "tf32", "--device", "cpu"])
    assert json.load(open(tmp_path / "out" / "settings.json"))["precision"] == "fp32"
    assert "has no TF32 units, so this runs in fp32" in capsys.readouterr().err
    a4b.main(["--images", str(tmp_path), "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert tf32_switches() == (False, False)


def test_training_records_the_precision_that_ran(alexnet_weights, tmp_path):
    """Catches: config.json, metrics.json and each epoch's record missing the precision, or naming the flag rather
    than what ran."""
    data = make_style_dataset(tmp_path / "wikiart", n_train=4, n_val=2)
    switch_tf32_on()
    a4a.main(["--data", str(data), "--runs", str(tmp_path / "runs"), "--epochs", "1", "--batch-size", "8",
              "--workers", "1", "--device", "cpu", "--precision", "tf32", "--name", "r"])
    run = tmp_path / "runs" / "r"
    assert json.load(open(run / "config.json"))["precision_ran"] == "fp32"
    metrics = json.load(open(run / "metrics.json"))
    assert metrics["precision"] == "fp32" and [e["precision"] for e in metrics["epochs"]] == ["fp32"]
    assert tf32_switches() == (False, False)  # tf32 on a CPU runs as fp32: the switches say so


@pytest.mark.parametrize("capability,ran", [((7, 5), "fp32"), ((8, 0), "tf32"), ((8, 6), "tf32"), ((9, 0), "tf32")])
def test_tf32_runs_from_ampere_on(monkeypatch, capability, ran):
    """Catches: an Ampere GPU (8.x) counted as having no TF32 units (> 8 for >= 8), or Turing (7.5) as having them:
    config.json would record a precision that did not run. The GPU's capability is faked, so this runs anywhere."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert a4a.precision_that_runs("tf32", torch.device("cuda")) == ran
    assert a4a.precision_that_runs("fp32", torch.device("cuda")) == "fp32"
