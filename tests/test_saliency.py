"""assignment_4b.py: the paper's section 3.1 map, the script around it, and what users feed it.
Each test names the bug it catches."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import assignment_4b as a4b
import vgg16
from conftest import ROOT, assert_maps_agree, write_image


def small_batch(n=3, size=48, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# ---- the method ----

def test_map_is_max_over_channels_of_the_abs_gradient_of_the_top_score(vgg_model):
    """Catches: the softmax's gradient instead of the score's, a signed or summed gradient, the wrong class."""
    import copy
    x = small_batch()
    maps, classes, scores = a4b.saliency_maps(vgg_model, x)
    f64 = copy.deepcopy(vgg_model).double()
    for i in range(len(x)):  # the recipe written out image by image, in float64
        xi = x[i:i + 1].double().requires_grad_(True)
        s = f64(xi)[0]
        c = int(s.argmax())
        (g,) = torch.autograd.grad(s[c], xi)
        assert classes[i] == c
        torch.testing.assert_close(scores[i].double(), s.detach(), rtol=1e-4, atol=1e-5)
        assert_maps_agree(maps[i:i + 1], g[0].abs().amax(dim=0)[None])
    assert maps.shape == (3, 48, 48) and scores.shape == (3, 1000) and classes.dtype == torch.long


def test_class_given_as_an_int_is_used_for_every_image(vgg_model):
    """Catches: --class ignored (the top class explained anyway)."""
    x = small_batch(2)
    _, top, _ = a4b.saliency_maps(vgg_model, x)
    other = int((top[0] + 1) % 1000)
    forced, cls, _ = a4b.saliency_maps(vgg_model, x, classes=other)
    assert cls.tolist() == [other, other]
    xi = x[:1].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(vgg_model(xi)[0, other], xi)
    assert_maps_agree(forced[:1], g[0].abs().amax(0)[None])


def test_classes_given_per_image_are_used_per_image(vgg_model):
    """Catches: a per-image class tensor broadcast wrongly (every image explained for the first class)."""
    x = small_batch(2)
    maps, cls, _ = a4b.saliency_maps(vgg_model, x, classes=torch.tensor([5, 7]))
    alone, _, _ = a4b.saliency_maps(vgg_model, x[1:], classes=7)
    assert cls.tolist() == [5, 7]
    assert_maps_agree(maps[1:], alone)


def test_each_map_is_independent_of_the_rest_of_the_batch(vgg_model):
    """Catches: the sum of the batch's scores back-propagated as one (each image would get the others' classes)."""
    x = small_batch(4)
    together, _, _ = a4b.saliency_maps(vgg_model, x)
    alone, _, _ = a4b.saliency_maps(vgg_model, x[2:3])
    assert_maps_agree(together[2:3], alone)


def test_model_parameters_get_no_gradient(vgg_model):
    """Catches: loss.backward() instead of a gradient to the input only (138 M weight gradients computed and kept)."""
    for p in vgg_model.parameters():
        p.grad = None
    a4b.saliency_maps(vgg_model, small_batch(1))
    assert all(p.grad is None for p in vgg_model.parameters())


def test_bf16_map_agrees_with_fp32():
    """Catches: a bf16 map returned in bf16, or computed for another class, or garbage from autocast misuse. On a
    shallow network: through VGG-16's 16 random layers bf16's rounding alone takes the maps apart (Pearson 0.43 with
    torch 2.0 on an AVX2 CPU, Spearman 0.37-0.50 on an H200), so agreement there says nothing about a bug."""
    from torch import nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(256, 10)).eval()
    x = small_batch(2)
    m32, c32, _ = a4b.saliency_maps(model, x)
    m16, c16, _ = a4b.saliency_maps(model, x, classes=c32, precision="bf16")
    assert m16.dtype == torch.float32 and torch.equal(c16, c32)
    assert np.corrcoef(m32.flatten().numpy(), m16.flatten().numpy())[0, 1] > 0.9


def test_channels_last_maps_agree_with_the_default_layout(vgg_model):
    """Catches: channels_last giving other maps. Not bit-identical, and not close in a norm on every CPU: a
    pre-activation within rounding of 0 flips its ReLU gate in one layout and not the other, changing the gradient
    in a patch of the input (measured on this input: 1.5% relative L2, 6% of the pixels off by more than 1% of the
    map's maximum, none by 5%). So compare as a reader does: the same pixels rank high, and all but a small share
    of the pixels agree within 5% of the map's maximum. A layout bug (channels mixed up) fails both by far."""
    import copy
    x = small_batch(2, size=32, seed=21)
    ref, cls, _ = a4b.saliency_maps(vgg_model, x)
    cl = copy.deepcopy(vgg_model).to(memory_format=torch.channels_last)
    assert vgg16.memory_format_of(cl) == torch.channels_last
    assert vgg16.memory_format_of(vgg_model) == torch.contiguous_format
    maps, _, _ = a4b.saliency_maps(cl, x, cls)
    assert_maps_agree(maps, ref)


def test_main_holds_the_model_in_channels_last(vgg_weights, tmp_path, monkeypatch):
    """Catches: main() leaving the model in the slower default layout."""
    seen = {}
    real = a4b.saliency_maps

    def spy(model, images, *a, **k):
        seen["format"] = vgg16.memory_format_of(model)
        return real(model, images, *a, **k)
    monkeypatch.setattr(a4b, "saliency_maps", spy)
    write_image(tmp_path / "a.png", seed=3)
    a4b.main(["--images", str(tmp_path), "--out", str(tmp_path / "o")])
    assert seen["format"] == torch.channels_last


def test_centre_share_is_the_mass_in_the_middle_half_of_each_side():
    """Catches: a centre box of the wrong size, or a share not normalised by the map's total."""
    flat = torch.ones(1, 8, 8)
    centred = torch.zeros(1, 8, 8)
    centred[0, 3:5, 3:5] = 1
    corner = torch.zeros(1, 8, 8)
    corner[0, 0, 0] = 1
    torch.testing.assert_close(a4b.centre_share(torch.cat([flat, centred, corner])), torch.tensor([0.25, 1.0, 0.0]))


def test_centre_share_does_not_depend_on_the_maps_scale():
    """Catches (a mutmut survivor): the guard against an all-zero map clamping the total at 1, not at a tiny value:
    gradient maps sum to far less than 1 (|dS/dx| ~ 1e-3 per pixel), and their shares would shrink with them."""
    flat = torch.full((1, 8, 8), 1e-5)
    torch.testing.assert_close(a4b.centre_share(flat), torch.tensor([0.25]))


def test_a_peak_whose_centre_lies_on_the_boxs_edge_is_a_hit():
    """Catches (a mutmut survivor): an edge of the box left out of the pointing game. Boxes scaled into the crop
    have fractional edges, so a pixel centre (x + 0.5) can lie exactly on one: the box is closed on all four sides."""
    smap = torch.zeros(8, 8)
    smap[3, 2] = 1.0                                                 # pixel centre (2.5, 3.5)
    for box in [(2.5, 3.5, 6, 7), (0, 0, 2.5, 3.5)]:                 # on the left and top, on the right and bottom
        assert a4b.box_measures(smap, box, tolerance=0)[0], box


def test_the_mass_in_a_box_counts_the_pixels_whose_centres_it_holds_on_a_map_of_any_shape():
    """Catches (mutmut survivors): the rows' centres taken from the map's width, and a pixel whose centre lies on the
    box's top or left edge left out (the box holds [x0, x1) x [y0, y1) of pixel centres). A 6 x 8 map of ones and
    fractional edges: rows 1-2 and columns 2-3 are in, 4 of 48 pixels."""
    share = a4b.box_measures(torch.ones(6, 8), (2.5, 1.5, 4.5, 3.5), tolerance=0)[1]
    assert share == pytest.approx(4 / 48, abs=1e-7)


def test_the_mass_in_a_box_does_not_depend_on_the_maps_scale():
    """Catches (a mutmut survivor): the total clamped at 1 rather than at a tiny value, so that a gradient map
    (summing to far less than 1) had a share that shrank with its scale."""
    share = a4b.box_measures(torch.full((8, 8), 1e-5), (0, 0, 4, 8), tolerance=0)[1]
    assert share == pytest.approx(0.5, abs=1e-6)


# ---- --class ----

@pytest.mark.parametrize("value,expected", [("281", 281), ("tabby", 281), ("Tabby", 281),
                                            ("tiger cat", 282), ("espresso", 967)])
def test_class_is_found_by_index_name_case_or_unique_part(value, expected):
    """Catches: a name lookup that is case-sensitive, or takes the first partial match over an exact name."""
    assert vgg16.resolve_class(value, vgg16.WEIGHTS.meta["categories"]) == expected


@pytest.mark.parametrize("value,message", [("1000", "out of range"), ("zzzq", "matches no class name of the model"),
                                           ("cat", r"matches \d+ classes")])
def test_a_class_that_names_none_or_several_is_refused(value, message):
    """Catches: an ambiguous name silently taking the first match; an index past the last class."""
    with pytest.raises(vgg16.RunError, match=message):
        vgg16.resolve_class(value, vgg16.WEIGHTS.meta["categories"])


def test_expected_classes_of_my_images_are_imagenet_names():
    """Catches: a typo in My-Images/expected.csv that would make the report call a right prediction wrong."""
    cats = set(vgg16.WEIGHTS.meta["categories"])
    rows = list(csv.DictReader(open(os.path.join(ROOT, "My-Images", "expected.csv"))))
    assert {r["file"] for r in rows} <= set(os.listdir(os.path.join(ROOT, "My-Images")))
    for r in rows:
        assert all(name in cats for name in r["expected"].split("|") if name), r


# ---- images of every awkward kind ----

def make_bad_and_odd_images(folder):
    """Returns {file name: usable?} after writing one file of each kind into folder."""
    folder.mkdir(exist_ok=True)
    write_image(folder / "ok.jpg", size=(300, 200), seed=1)
    write_image(folder / "gray.png", mode="L", seed=2)
    write_image(folder / "rgba.png", mode="RGBA", seed=3)
    write_image(folder / "palette.gif", mode="P", seed=4)
    write_image(folder / "cmyk.jpg", mode="CMYK", seed=5)
    Image.fromarray(np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20).save(folder / "sixteen.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees on display
    write_image(folder / "rotated.jpg", size=(80, 40), seed=6, exif=exif.tobytes())
    write_image(folder / "large.jpg", size=(3000, 2000), seed=7, quality=50)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.png").write_text("this is text, not an image")
    full = (folder / "ok.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(full[: len(full) // 2])
    Image.new("1", (20000, 10000)).save(folder / "bomb.png")  # 200 megapixels, a few KB on disk
    return {"ok.jpg": True, "gray.png": True, "rgba.png": True, "palette.gif": True, "cmyk.jpg": True,
            "sixteen.png": True, "rotated.jpg": True, "large.jpg": True, "empty.jpg": False,
            "notes.png": False, "truncated.jpg": False, "bomb.png": False}


def test_every_kind_of_image_opens_as_rgb_and_every_broken_one_is_a_value_error(tmp_path):
    """Catches: a CMYK, palette or 16-bit file crashing the run; a damaged file raising something other than the
    ValueError that load_images turns into a warning."""
    expected = make_bad_and_odd_images(tmp_path / "imgs")
    for name, usable in expected.items():
        path = str(tmp_path / "imgs" / name)
        if usable:
            assert a4b.open_rgb(path).mode == "RGB", name
        else:
            with pytest.raises(ValueError):
                a4b.open_rgb(path)


def test_exif_rotation_is_applied(tmp_path):
    """Catches: a phone photo explained lying on its side."""
    exif = Image.Exif()
    exif[0x0112] = 6
    write_image(tmp_path / "rotated.jpg", size=(80, 40), exif=exif.tobytes())
    assert a4b.open_rgb(str(tmp_path / "rotated.jpg")).size == (40, 80)


def test_big_jpegs_are_decoded_at_reduced_size(tmp_path):
    """Catches: a 24-megapixel photo decoded whole to be shrunk to 256 pixels."""
    write_image(tmp_path / "large.jpg", size=(3000, 2000), quality=50)
    assert max(a4b.open_rgb(str(tmp_path / "large.jpg")).size) < 3000


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path):
    """Catches: a 16-bit PNG converted to 8 bits by clipping (all white)."""
    Image.fromarray(np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20).save(tmp_path / "sixteen.png")
    assert 0 < np.asarray(a4b.open_rgb(str(tmp_path / "sixteen.png"))).max() < 255


def test_transparent_pixels_become_white(tmp_path):
    """Catches: the colour hidden under alpha 0 shown to the network."""
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    assert np.asarray(a4b.open_rgb(str(tmp_path / "clear.png"))).min() == 255


# ---- the script as a user runs it ----

@pytest.fixture(scope="module")
def cli_run(vgg_weights, tmp_path_factory):
    """One run of the script over good and broken files, batch size 3: (expected usability, out folder, output)."""
    tmp = tmp_path_factory.mktemp("cli")
    imgs = tmp / "imgs"
    imgs.mkdir()
    for i, name in enumerate(["ok.jpg", "gray.png", "b.jpg", "b.png"]):
        write_image(imgs / name, seed=i, mode="L" if name == "gray.png" else "RGB")
    (imgs / "empty.jpg").write_bytes(b"")
    (imgs / "notes.png").write_text("text")
    out = tmp / "out"
    import contextlib
    import io
    printed, errors = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors):
        a4b.main(["--images", str(imgs), "--out", str(out), "--batch-size", "3"])
    return imgs, out, printed.getvalue(), errors.getvalue()


def test_a_broken_file_among_good_ones_is_skipped_with_a_warning_and_counted(cli_run):
    """Catches: one bad image ending the run, or vanishing without a word."""
    imgs, out, printed, errors = cli_run
    for n in ("empty.jpg", "notes.png"):
        assert f"warning: skipping {imgs / n}:" in errors
    assert "skipped 2 unusable file(s)" in printed
    assert sorted(r["file"] for r in csv.DictReader(open(out / "predictions.csv"))) == [
        "b.jpg", "b.png", "gray.png", "ok.jpg"]


def test_predictions_csv_holds_the_top5_in_order_with_their_names(cli_run):
    """Catches: top-k columns out of order, names off by one from the indices, probabilities not from a softmax."""
    cats = vgg16.WEIGHTS.meta["categories"]
    for r in csv.DictReader(open(cli_run[1] / "predictions.csv")):
        probs = [float(r[f"top{k}_prob"]) for k in range(1, 6)]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
        assert all(r[f"top{k}_name"] == cats[int(r[f"top{k}"])] for k in range(1, 6))
        assert r["class_used"] == r["top1"] and float(r["class_used_prob"]) == float(r["top1_prob"])


def test_predictions_csv_centre_share_is_the_written_maps(cli_run, vgg_model):
    """Catches: a centre share computed from another map than the one rendered (or a constant)."""
    imgs, out, _, _ = cli_run
    batch = a4b.load_images([str(imgs / "ok.jpg")], vgg16.WEIGHTS.transforms()).inputs
    maps, _, _ = a4b.saliency_maps(vgg_model, batch)
    (row,) = [r for r in csv.DictReader(open(out / "predictions.csv")) if r["file"] == "ok.jpg"]
    assert float(row["centre_share_vanilla"]) == pytest.approx(float(a4b.centre_share(maps)[0]), abs=2e-3)


def test_every_image_gets_a_figure_and_a_line_and_same_stems_do_not_overwrite(cli_run):
    """Catches: b.png's figure overwriting b.jpg's while the summary counts both."""
    _, out, printed, _ = cli_run
    assert sorted(f for f in os.listdir(out) if f.endswith("_saliency.png")) == [
        "b_jpg_saliency.png", "b_png_saliency.png", "gray_saliency.png", "ok_saliency.png"]
    assert printed.count(": predicted '") == 4


def test_the_grid_has_one_row_per_image(cli_run):
    """Catches: a grid of the first batch only, or images side by side in one row."""
    w, h = Image.open(cli_run[1] / "grid.png").size
    assert h > 1.2 * w  # 4 rows of 3 panels (crop, map, overlay)


def test_settings_json_says_what_was_computed(cli_run):
    """Catches: the report describing a map that was not computed."""
    s = json.load(open(cli_run[1] / "settings.json"))
    assert s["methods"] == ["vanilla"] and s["model"] == "VGG-16 (ImageNet)" and s["images"] == 4
    assert s["skipped"] == 2 and s["class"] is None and s["precision"] == "fp32"


def test_class_by_name_on_the_command_line(vgg_weights, tmp_path, capsys):
    """Catches: --class parsed but not passed to saliency_maps."""
    write_image(tmp_path / "a.png", seed=3)
    a4b.main(["--images", str(tmp_path), "--out", str(tmp_path / "o"), "--class", "espresso"])
    assert "saliency for class 967 'espresso'" in capsys.readouterr().out
    assert list(csv.DictReader(open(tmp_path / "o" / "predictions.csv")))[0]["class_used"] == "967"


@pytest.mark.parametrize("args,message", [
    (["--images", "{tmp}/missing"], "image folder {tmp}/missing does not exist"),
    (["--images", "{tmp}/emptydir"], "no image files in {tmp}/emptydir"),
    (["--images", "{tmp}/junkonly"], "none of the files in {tmp}/junkonly could be read"),
    (["--class", "notaclassname"], "--class 'notaclassname' matches no class name of the model"),
    (["--weights", "{tmp}/none.pth"], "weights file {tmp}/none.pth does not exist"),
])
def test_mistakes_are_one_sentence_and_exit_nonzero(vgg_weights, tmp_path, args, message):
    """Catches: a traceback for a user's mistake."""
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "junkonly").mkdir()
    (tmp_path / "junkonly" / "x.jpg").write_bytes(b"\x00" * 10)
    args = [a.format(tmp=tmp_path) for a in args]
    with pytest.raises(SystemExit) as e:
        a4b.main(args + ["--out", str(tmp_path / "o")])
    assert str(e.value).startswith("error: " + message.format(tmp=tmp_path))
    assert "\n" not in str(e.value)


def test_batch_size_below_one_is_refused(capsys):
    """Catches: --batch-size 0 looping forever over empty batches."""
    with pytest.raises(SystemExit) as e:
        a4b.parse_args(["--batch-size", "0"])
    assert e.value.code == 2 and "--batch-size must be at least 1, got 0" in capsys.readouterr().err


def test_script_runs_from_another_folder_and_fails_clearly_offline(tmp_path):
    """Catches: defaults resolved against the current folder ("My-Images does not exist" when run from elsewhere),
    and a traceback when the weights cannot be downloaded."""
    env = dict(os.environ, TORCH_HOME=str(tmp_path / "th"), no_proxy="", https_proxy="http://127.0.0.1:9",
               HTTPS_PROXY="http://127.0.0.1:9")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "assignment_4b.py"), "--out", str(tmp_path / "o")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: could not download the VGG-16 weights"), r.stderr
    assert str(tmp_path / "th" / "hub" / "checkpoints" / "vgg16-397923af.pth") in last


def test_defaults_are_the_projects_folders_whatever_the_current_folder(tmp_path, monkeypatch):
    """Catches: `python ../project/assignment_4b.py` looking for My-Images/ in the folder the user is in."""
    monkeypatch.chdir(tmp_path)
    args = a4b.parse_args([])
    assert args.images == os.path.join(ROOT, "My-Images") and args.out == os.path.join(ROOT, "report", "saliency")
    assert a4b.parse_args(["--out", "mine"]).out == "mine"  # what the user types stays relative to where they are


def test_out_that_is_a_file_fails_before_any_work(vgg_weights, tmp_path, monkeypatch):
    """Catches: a traceback after every map was computed."""
    write_image(tmp_path / "a.png", seed=1)
    (tmp_path / "taken").write_text("x")
    monkeypatch.setattr(a4b, "saliency_maps", lambda *a, **k: pytest.fail("computed maps first"))
    with pytest.raises(SystemExit) as e:
        a4b.main(["--images", str(tmp_path), "--out", str(tmp_path / "taken")])
    assert str(e.value) == f"error: --out {tmp_path / 'taken'} is a file, not a folder: give a folder for the figures"


def test_pipes_folders_and_other_files_are_ignored_and_counted(vgg_weights, tmp_path, capsys, deadline):
    """Catches: a FIFO named x.jpg hanging the run, a folder named x.jpg called damaged, silent omissions."""
    imgs = tmp_path / "i"
    imgs.mkdir()
    write_image(imgs / "a.png", seed=1)
    os.mkfifo(imgs / "pipe.jpg")
    (imgs / "folder.jpg").mkdir()
    (imgs / "nested").mkdir()
    (imgs / "notes.txt").write_text("hi")
    a4b.main(["--images", str(imgs), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert (f"note: ignored 4 entries of {imgs} that are not image files (folder.jpg/, nested/, notes.txt, pipe.jpg)"
            in err)
    assert "damaged" not in err
    assert len(list(csv.DictReader(open(tmp_path / "o" / "predictions.csv")))) == 1


def test_many_images_make_grid_pages_not_one_giant_picture(vgg_weights, tmp_path, monkeypatch, capsys):
    """Catches: one grid.png of every image (240 images: 810x66960 px, 97 MB), and stale pages of a longer run."""
    monkeypatch.setattr(a4b, "GRID_ROWS", 2)
    for i in range(5):
        write_image(tmp_path / f"p{i}.png", size=(40, 40), seed=i)
    out = tmp_path / "o"
    out.mkdir()
    (out / "grid-9.png").write_bytes(b"old page")
    a4b.main(["--images", str(tmp_path), "--out", str(out)])
    assert sorted(f for f in os.listdir(out) if f.startswith("grid")) == ["grid-2.png", "grid-3.png", "grid.png"]
    h = [Image.open(out / f).size[1] for f in ("grid.png", "grid-2.png", "grid-3.png")]
    assert h[0] == h[1] and h[2] < 0.7 * h[0]  # two rows, two rows, one row
    assert "(and grid-2.png ... grid-3.png, 2 images a page)" in capsys.readouterr().out


# ---- the sheet's second question: is the classification based on the relevant part of the image? ----

@pytest.mark.parametrize("size,box", [((400, 200), (100, 50, 300, 150)), ((300, 451), (0, 0, 300, 395)),
                                      ((512, 512), (20, 15, 365, 512)), ((640, 427), (303, 125, 342, 405))])
def test_a_box_maps_through_the_same_resize_and_centre_crop_as_the_image(size, box):
    """Catches: a box scaled by the wrong side, the crop offset forgotten, rounding other than torchvision's."""
    pre = vgg16.WEIGHTS.transforms()
    mask = Image.new("L", size, 0)
    mask.paste(255, tuple(int(v) for v in box))
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF
    seen = np.asarray(TF.center_crop(TF.resize(mask, pre.resize_size, interpolation=InterpolationMode.NEAREST),
                                     pre.crop_size)) > 127
    ys, xs = np.nonzero(seen)
    (x0, y0, x1, y1), share = a4b.box_in_crop(box, size, pre)
    assert share > 0
    assert abs(x0 - xs.min()) <= 1 and abs(y0 - ys.min()) <= 1 and abs(x1 - xs.max() - 1) <= 1 \
        and abs(y1 - ys.max() - 1) <= 1


def test_a_box_the_crop_does_not_show_is_reported_not_clipped_to_nothing():
    """Catches: a box outside the centre crop silently measured as an empty box."""
    pre = vgg16.WEIGHTS.transforms()
    assert a4b.box_in_crop((0, 0, 40, 200), (600, 200), pre)[1] == 0   # the left edge of a wide image
    part = a4b.box_in_crop((0, 0, 300, 200), (600, 200), pre)  # resized to 768x256, cropped from x = 272
    assert part[1] == pytest.approx(112 * 224 / (384 * 256)) and part[0][0] == 0 and part[0][2] == pytest.approx(112)


def test_the_share_of_a_box_the_crop_cuts_on_the_right_counts_its_width_from_its_left_edge():
    """Catches (mutmut's survivors): the clipped width taken as x1 + x0 or as x1 - y0, which a box starting at the
    crop's corner cannot show. 600x200 -> 768x256, crop x 272-496, y 16-240: the box (250, 100, 600, 150) becomes
    x 48-224 (cut from 448 px wide), y 112-176, so 176 / 448 of it is seen."""
    (x0, y0, x1, y1), share = a4b.box_in_crop((250, 100, 600, 150), (600, 200), vgg16.WEIGHTS.transforms())
    assert (x0, y0, x1, y1) == pytest.approx((48, 112, 224, 176)) and share == pytest.approx(176 / 448)


@pytest.mark.parametrize("peak,expected", [((30, 30), False), ((36, 36), True), ((70, 70), True)])
def test_the_pointing_game_counts_a_peak_in_the_box_or_within_15_pixels(peak, expected):
    """Catches: the tolerance left out (Zhang et al. count 15 px), rows and columns swapped."""
    smap = torch.zeros(224, 224)
    smap[peak[1], peak[0] + 100] = 1.0   # x = peak[0] + 100, y = peak[1]
    hit, _ = a4b.box_measures(smap, (150, 50, 200, 100))
    assert hit == expected


def test_mass_share_of_a_uniform_map_is_the_boxs_area_share():
    """Catches: a mass share not normalised by the whole map, or a box read as (x, y, w, h)."""
    _, mass = a4b.box_measures(torch.ones(224, 224), (56, 0, 168, 112))
    assert mass == pytest.approx(112 * 112 / 224 ** 2)


def test_the_centre_prior_is_centred():
    """Catches: a prior off the centre, which would make the baseline a straw man."""
    prior = a4b.centre_prior(224, 224)
    assert divmod(int(prior.argmax()), 224) in [(111, 111), (111, 112), (112, 111), (112, 112)]
    assert a4b.box_measures(prior, (56, 56, 168, 168))[1] > 0.25


@pytest.mark.parametrize("x,y,expected", [(136, 75, True), (134, 75, False), (214, 75, True), (216, 75, False),
                                          (175, 36, True), (175, 34, False), (175, 114, True), (175, 116, False)])
def test_the_pointing_games_15_pixels_hold_on_all_four_sides(x, y, expected):
    """Catches: the tolerance added on the left and top only, or to one axis (box x 150-200, y 50-100; a peak pixel's
    centre is x + 0.5)."""
    smap = torch.zeros(224, 224)
    smap[y, x] = 1.0
    assert a4b.box_measures(smap, (150, 50, 200, 100))[0] == expected


def test_the_mass_in_a_box_far_from_square_reads_x_as_columns():
    """Catches: rows and columns swapped in the mass share, which a square box cannot show: all the mass in the
    left 56 columns lies in a tall box over them, none in the wide box along the top."""
    smap = torch.zeros(224, 224)
    smap[:, :56] = 1.0
    assert a4b.box_measures(smap, (0, 0, 56, 224))[1] == pytest.approx(1.0)
    assert a4b.box_measures(smap, (56, 0, 224, 56))[1] == 0.0


@pytest.mark.parametrize("size", [(300, 451), (451, 300), (333, 500)])
def test_a_box_scales_by_the_side_torchvision_resizes_to_truncated_not_rounded(size):
    """Catches: the long side rounded (451 x 256 / 300 = 384.85: torchvision makes 384), which moves a box edge by
    most of a pixel; the comparison is exact, not within the 1 px the mask test allows."""
    from torchvision.transforms import functional as TF
    pre = vgg16.WEIGHTS.transforms()
    rw, rh = TF.resize(Image.new("L", size), pre.resize_size).size
    w, h = size
    top, left = int(round((rh - 224) / 2.0)), int(round((rw - 224) / 2.0))
    box = (0.4 * w, 0.4 * h, 0.6 * w, 0.6 * h)
    (x0, y0, x1, y1), _ = a4b.box_in_crop(box, size, pre)
    assert (x0, y0, x1, y1) == pytest.approx((box[0] * rw / w - left, box[1] * rh / h - top, box[2] * rw / w - left,
                                              box[3] * rh / h - top), abs=1e-6)


def test_predictions_csv_answers_the_box_questions_for_every_image_with_a_box(vgg_weights, tmp_path):
    """Catches: box columns of one image written on another's row, an image without a box given numbers."""
    imgs = tmp_path / "i"
    imgs.mkdir()
    write_image(imgs / "a.png", size=(64, 48), seed=1)
    write_image(imgs / "b.png", size=(64, 48), seed=2)
    (imgs / "boxes.csv").write_text("file,x0,y0,x1,y1,object\na.png,0,0,64,48,everything\n")
    a4b.main(["--images", str(imgs), "--out", str(tmp_path / "o")])
    rows = {r["file"]: r for r in csv.DictReader(open(tmp_path / "o" / "predictions.csv"))}
    a, b = rows["a.png"], rows["b.png"]
    assert a["object"] == "everything" and a["box_in_crop"] == "0 0 224 224" and float(a["box_share_of_crop"]) == 1
    assert a["hit_vanilla"] == "1" and float(a["box_mass_vanilla"]) == pytest.approx(1.0)
    assert a["hit_centre_prior"] == "1" and float(a["box_mass_centre_prior"]) == pytest.approx(1.0)
    assert all(b[k] == "" for k in ("object", "box_in_crop", "hit_vanilla", "box_mass_vanilla"))


def test_every_image_in_my_images_has_a_box_inside_it():
    """Catches: a shipped image without a box (its question left unanswered), or a box beyond the picture."""
    boxes = a4b.read_boxes(os.path.join(ROOT, "My-Images"))
    images = a4b.list_images(os.path.join(ROOT, "My-Images"))
    assert {os.path.basename(f) for f in images} == set(boxes)
    for f in images:
        (x0, y0, x1, y1), what = boxes[os.path.basename(f)]
        w, h = a4b.open_rgb(f).size
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and what


def test_the_centre_priors_width_is_a_fraction_of_each_side():
    """Catches: CENTRE_PRIOR_SIGMA read in pixels, or one side's width used for both: one std from the centre along
    each side (0.25 of that side) the prior is exp(-1/2) of its peak."""
    h, w = 100, 300
    prior = a4b.centre_prior(h, w)
    peak = float(prior[h // 2, w // 2])
    # pixel centres at +/- 0.5 from the middle: the value one std away, relative to the value at the middle pixel
    assert float(prior[h // 2, w // 2 + 75]) / peak == pytest.approx(
        np.exp(-0.5 * ((75.5 / 75) ** 2 - (0.5 / 75) ** 2)), rel=1e-4)
    assert float(prior[h // 2 + 25, w // 2]) / peak == pytest.approx(
        np.exp(-0.5 * ((25.5 / 25) ** 2 - (0.5 / 25) ** 2)), rel=1e-4)


def test_ctrl_c_while_the_weights_load_is_one_line(tmp_path, monkeypatch):
    """Catches: Ctrl-C during the weights' loading printing torch's 35-line traceback instead of what happened."""
    write_image(tmp_path / "a.png")

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(a4b, "pretrained_vgg16", interrupted)
    with pytest.raises(SystemExit) as e:
        a4b.main(["--images", str(tmp_path), "--out", str(tmp_path / "o")])
    assert str(e.value).strip() == ("interrupted while loading the images and the weights: no map was computed and "
                                    "nothing was written; run the same command again")


def test_each_grid_row_names_its_file_and_marks_the_peak_and_the_box(monkeypatch, tmp_path):
    """Catches: grid rows without the file's name, or maps without the peak and the box drawn, so that the report's
    'peak in box' column cannot be checked by eye."""
    import matplotlib.patches
    plt = a4b.pyplot()
    kept = []
    monkeypatch.setattr(plt, "close", kept.append)  # keep the figures to look at them
    smap = np.zeros((20, 20), dtype=np.float32)
    smap[3, 15] = 1.0  # the peak: row 3, column 15
    crop = np.zeros((20, 20, 3))
    a4b.save_figures(str(tmp_path), ["/x/photo_a.jpg", "/x/photo_b.jpg"], [crop, crop], [smap, smap],
                     ["cup (p=0.90)", "mug (p=0.50)"], boxes=[(10, 2, 18, 6), None])
    grid = kept[-1]
    rows = np.array(grid.axes).reshape(2, 3)
    assert rows[0][0].get_title() == "photo_a.jpg\ncup (p=0.90)" and rows[1][0].get_title().startswith("photo_b.jpg")
    for row, box in zip(rows, [(10, 2, 18, 6), None]):
        (peak,) = [ln for ln in row[2].lines if ln.get_marker() == "+"]
        assert (peak.get_xdata()[0], peak.get_ydata()[0]) == (15, 3)
        rects = [p for p in row[2].patches if isinstance(p, matplotlib.patches.Rectangle)]
        assert [(r.get_x(), r.get_y(), r.get_width(), r.get_height()) for r in rects] == \
            ([(9.5, 1.5, 8, 4)] if box else [])


def test_a_long_file_name_wraps_within_its_panel_of_the_grid(monkeypatch, tmp_path):
    """Catches: a 90-character file name printed on one line across the grid, cut at the figure's edge and running
    over the map's title beside it."""
    plt = a4b.pyplot()
    kept = []
    monkeypatch.setattr(plt, "close", kept.append)  # keep the figures to look at them
    name = "Lovis_Corinth_-_Portrait_of_the_painter_Walter_Leistikow_in_his_studio_in_Berlin_1893.jpg"
    crop, smap = np.zeros((20, 20, 3)), np.random.default_rng(0).random((20, 20)).astype(np.float32)
    a4b.save_figures(str(tmp_path), [f"/x/{name}", "/x/b.jpg"], [crop, crop], [smap, smap],
                     ["German short-haired pointer (p=0.01)", "cup (p=0.50)"])
    grid = kept[-1]
    renderer = grid.canvas.get_renderer()
    titles = [ax.title for ax in grid.axes if ax.get_title()]
    boxes = [t.get_window_extent(renderer) for t in titles]
    lines = titles[0].get_text().split("\n")[:-1]
    assert "".join(lines) == name and lines[0].endswith("_")  # every character, broken after an underscore
    assert all(b.x0 >= grid.bbox.x0 and b.x1 <= grid.bbox.x1 and b.y1 <= grid.bbox.y1 for b in boxes)
    assert not [(i, j) for i, a in enumerate(boxes) for j, b in enumerate(boxes) if i < j and a.overlaps(b)]
