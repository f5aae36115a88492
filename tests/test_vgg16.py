import os
import urllib.error

import pytest
import torch
import torchvision

import vgg16


def test_architecture_matches_torchvision_names_and_shapes():
    ours = vgg16.VGG16().state_dict()
    ref = torchvision.models.vgg16(weights=None).state_dict()
    assert list(ours) == list(ref)
    assert all(ours[k].shape == ref[k].shape for k in ref)
    assert sum(v.numel() for v in ours.values()) == 138_357_544  # VGG-16's published parameter count


def test_same_logits_as_torchvision_with_same_weights(vgg_weights):
    ref = torchvision.models.vgg16(weights=None)
    ref.load_state_dict(vgg_weights)
    ours = vgg16.VGG16()
    ours.load_state_dict(vgg_weights, strict=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(ours.eval()(x), ref.eval()(x))


def test_default_loader_reads_torchvision_cache_offline(vgg_weights, monkeypatch):
    # any attempt to download would fail: the file must come from $TORCH_HOME/hub/checkpoints
    def no_network(*a, **k):
        raise AssertionError("tried to download")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    assert vgg16.default_checkpoint_path() == os.path.join(
        os.environ["TORCH_HOME"], "hub", "checkpoints", "vgg16-397923af.pth")
    model = vgg16.load_vgg16()
    assert not model.training
    assert torch.equal(model.classifier[6].weight, vgg_weights["classifier.6.weight"])


def test_local_weights_path(vgg_weights, tmp_path):
    path = tmp_path / "mine.pth"
    torch.save({"model": vgg_weights}, path)  # a checkpoint dict with the state dict under "model" also loads
    model = vgg16.load_vgg16(str(path))
    assert torch.equal(model.features[0].bias, vgg_weights["features.0.bias"])


def test_missing_weights_offline_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))

    def offline(url, dst, *a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(vgg16.WeightsUnavailable) as e:
        vgg16.load_vgg16(progress=False)
    msg = str(e.value)
    assert vgg16.WEIGHTS.url in msg and str(tmp_path / "empty" / "hub" / "checkpoints" / "vgg16-397923af.pth") in msg


def test_bad_local_weights_files(tmp_path):
    with pytest.raises(vgg16.RunError, match="nope.pth does not exist"):
        vgg16.load_vgg16(str(tmp_path / "nope.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(vgg16.WeightsUnavailable, match="junk.pth could not be read"):
        vgg16.load_vgg16(str(junk))
    wrong = tmp_path / "wrong.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), wrong)
    with pytest.raises(vgg16.WeightsUnavailable, match="not a VGG-16 ImageNet state dict"):
        vgg16.load_vgg16(str(wrong))


def test_saliency_input_is_the_papers_preprocessing(tmp_path):
    """Catches: our loading drifting from VGG's recipe (shorter side 256, centre 224, ImageNet mean/std), e.g. a
    crop before the resize, no normalisation, or BGR order; a test of torchvision's metadata alone would not."""
    import numpy as np
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF
    import assignment_4b as a4b
    rng = np.random.default_rng(0)
    path = tmp_path / "wide.png"
    Image.fromarray(rng.integers(0, 255, (300, 500, 3), dtype=np.uint8)).save(path)
    images = a4b.load_images([str(path)], vgg16.WEIGHTS.transforms())
    batch, skipped = images.inputs, images.skipped
    im = TF.resize(Image.open(path), 256, interpolation=InterpolationMode.BILINEAR, antialias=True)  # 426x256
    left, top = (im.width - 224) // 2, (im.height - 224) // 2
    x = torch.from_numpy(np.asarray(im, dtype=np.float32)[top:top + 224, left:left + 224] / 255).permute(2, 0, 1)
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    assert batch.shape == (1, 3, 224, 224) and skipped == 0
    torch.testing.assert_close(batch[0], x, rtol=0, atol=1e-5)
    assert vgg16.VGG16().classifier[-1].out_features == len(vgg16.WEIGHTS.meta["categories"]) == vgg16.NUM_CLASSES


def old_torchvision_loader(url, model_dir=None, map_location=None, progress=True, check_hash=False, file_name=None):
    """torch.hub.load_state_dict_from_url as torch 2.0 / torchvision 0.15 have it: no weights_only."""
    raise AssertionError("called without weights_only: it would unpickle whatever the file holds")


def test_weights_are_read_safely_where_torchvision_cannot_pass_weights_only(vgg_weights, monkeypatch):
    """Catches: on torchvision 0.15 the loader raising TypeError (weights_only unknown), reported to the student as
    a damaged file to delete, or falling back to an unsafe load."""
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", old_torchvision_loader)
    seen = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: seen.append(k.get("weights_only")) or real_load(*a, **k))
    model = vgg16.load_vgg16()
    assert seen == [True] and torch.equal(model.features[0].weight, vgg_weights["features.0.weight"])


def test_where_torchvision_is_old_a_missing_file_is_downloaded_with_its_hash_checked(tmp_path, monkeypatch):
    """Catches: the old-torchvision path skipping the download's hash check, or saving it elsewhere than
    torchvision's cache (the next run would download again)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", old_torchvision_loader)
    calls = []

    def download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, dst, hash_prefix))
        torch.save(torchvision.models.vgg16(weights=None).state_dict(), dst)
    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    vgg16.load_vgg16()
    assert calls == [(vgg16.WEIGHTS.url, vgg16.default_checkpoint_path(), "397923af")]


@pytest.mark.parametrize("change", ["missing", "renamed"])
def test_a_state_dict_with_a_key_missing_or_renamed_is_refused(vgg_weights, tmp_path, change):
    """Catches: a non-strict load, which keeps random weights where a key is missing or named otherwise and explains
    a network that was never trained."""
    state = dict(vgg_weights)
    w = state.pop("classifier.6.weight")
    if change == "renamed":
        state["classifier.7.weight"] = w
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(vgg16.WeightsUnavailable, match="is not a VGG-16 ImageNet state dict"):
        vgg16.load_vgg16(str(tmp_path / "w.pth"))
