"""The photographs shipped in My-Images/: each documented (origin and licence, expected classes, a box), and the
set able to tell a map that looks at the object from one that looks at the middle. No model is needed: the boxes
go through the network's own resize and centre crop, and the centre prior is a baseline that sees no image."""
import csv
import os

import pytest
from PIL import Image

import assignment_4b as a4b
import vgg16

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = os.path.join(ROOT, "My-Images")
SHIPPED = sorted(f for f in os.listdir(IMAGES) if os.path.splitext(f)[1].lower() in vgg16.IMAGE_EXTENSIONS)


def rows(name):
    return {r["file"]: r for r in csv.DictReader(open(os.path.join(IMAGES, name), encoding="utf-8"))}


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_photograph_has_its_origin_licence_classes_and_box(name):
    """Catches: a photograph added without its licence (it could not be redistributed), its expected classes (the
    report could not judge it) or its box (the report could not measure it)."""
    sources = open(os.path.join(IMAGES, "SOURCES.md"), encoding="utf-8").read()
    line = next((ln for ln in sources.splitlines() if ln.startswith(f"| `{name}`")), "")
    assert line and any(w in line for w in ("CC0", "public domain", "unrestricted")), name
    assert name in rows("expected.csv") and name in rows("boxes.csv")


@pytest.mark.parametrize("name", SHIPPED)
def test_every_box_lies_inside_its_photograph(name):
    """Catches: a box drawn on the full-size original and left unscaled when the photograph was re-encoded smaller."""
    r = rows("boxes.csv")[name]
    x0, y0, x1, y1 = (int(r[k]) for k in ("x0", "y0", "x1", "y1"))
    w, h = Image.open(os.path.join(IMAGES, name)).size
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, (name, (x0, y0, x1, y1), (w, h))


def test_the_shipped_set_can_tell_a_map_that_looks_from_the_centre_prior():
    """Catches: a set of photographs whose objects fill the middle of the crop, where the centre prior wins whatever
    the model does: at least three boxes cover under a quarter of the crop and lie where the prior's peak misses."""
    preprocess = vgg16.WEIGHTS.transforms()
    prior = a4b.centre_prior(224, 224)
    small_and_missed = []
    for name, r in rows("boxes.csv").items():
        size = Image.open(os.path.join(IMAGES, name)).size
        box, shown = a4b.box_in_crop(tuple(int(r[k]) for k in ("x0", "y0", "x1", "y1")), size, preprocess)
        if not shown:
            continue
        share = (box[2] - box[0]) * (box[3] - box[1]) / 224 ** 2
        hit, _ = a4b.box_measures(prior, box)
        if share < 0.25 and not hit:
            small_and_missed.append(name)
    assert len(small_and_missed) >= 3, small_and_missed
