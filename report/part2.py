"""Part 2 of the report, from assignment_4b.py's outputs (predictions.csv, settings.json, the grids) against
My-Images/ as it is now, with the extras (saliency_extras.py), the ground-truth benchmark (saliency_ground_truth.py)
and the painting-style maps."""
import csv
import json
import os
import sys

import numpy as np

from assignment_4b import is_image_file
from report.part1 import map_agreement, pct, precision_words
from report.record import SALIENCY_CMD
from report.stats import ALPHA, fmt_p, images_needed, mcnemar_exact
from vgg16 import BOX_TOLERANCE, NUM_CLASSES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAPS_OUT_OF_DATE = "**The maps are not up to date with the images.**"  # begins Part 2 where they are not




def load_saliency(sal_dir, images_dir):
    path = os.path.join(sal_dir, "predictions.csv")
    if not os.path.isfile(path):
        return None
    expected = {}
    exp_path = os.path.join(images_dir, "expected.csv")
    if os.path.isfile(exp_path):
        expected = {r["file"]: [e for e in r["expected"].split("|") if e] for r in csv.DictReader(open(exp_path))}
    rows = []
    for r in csv.DictReader(open(path)):
        top5 = [r[f"top{k}_name"] for k in range(1, 6) if f"top{k}_name" in r]
        exp = expected.get(r["file"], [])
        r["plausible"] = ("yes (top-1)" if top5[0] in exp else "yes (top-5)" if set(top5) & set(exp) else "no") \
            if exp else "not judged"
        rows.append(r)
    return rows


METHOD_NAMES = {"vanilla": "the saliency map max over colour channels of |dS_C/dI| (Simonyan et al. 2014, section 3.1)",
                "smoothgrad": "SmoothGrad's map (the vanilla map averaged over noisy copies)",
                "integrated-gradients": "Integrated Gradients' map", "gradcam": "Grad-CAM's map"}


def out_of_date(rows, settings, images_dir):
    """The saliency outputs against the image folder as it is now. -> (the rows of images still there, the sentences
    that name what differs: images added since (or not reached), removed since, skipped as unreadable, a run cut
    short by Ctrl-C, with the command that brings them up to date; whether they are up to date)."""
    if not os.path.isdir(images_dir):
        return rows, [], True
    now = {f for f in os.listdir(images_dir) if is_image_file(images_dir, f)}  # the images 4b would map now
    mapped, skipped = {r["file"] for r in rows}, set(settings.get("skipped_files", []))
    removed, added = sorted(mapped - now), sorted(now - mapped - skipped)
    where = f"`{os.path.relpath(images_dir, ROOT)}`"
    notes = []
    if settings.get("interrupted"):
        planned = len(settings.get("listed", [])) - len(skipped)
        notes.append(f"The saliency run was stopped before it finished (Ctrl-C or a kill): {len(mapped)} of "
                     f"{planned if planned > 0 else '?'} images have maps.")
    if added:
        notes.append(f"{len(added)} image(s) in {where} have no map (added after the run, or not reached): "
                     f"{', '.join(added)}.")
    if removed:
        notes.append(f"{len(removed)} image(s) with maps are no longer in {where}: {', '.join(removed)}; they are "
                     "left out of the table and the totals below, but the grid still shows them.")
    if skipped & now:
        notes.append(f"{len(skipped & now)} file(s) could not be read as images and were skipped: "
                     f"{', '.join(sorted(skipped & now))}.")
    current = not (added or removed or settings.get("interrupted"))
    if not current:
        notes.append(f"`{SALIENCY_CMD}` brings the maps up to date with the folder.")
    return [r for r in rows if r["file"] in now], notes, current


GRID_MARKS = ("On the last panel, white +: the map's peak; green box: the object's box from My-Images/boxes.csv, "
              "mapped into the crop.")  # what assignment_4b.mark_peak_and_box draws


def part2_blocks(rows, sal_dir, out_dir, images_dir):
    """-> (Part 2's blocks, why the maps are not up to date with the photos, or None: report/record.py keeps it, and
    make_package.py refuses the archive on it)."""
    blocks = [("h2", "Part 2: image-specific class saliency maps (VGG-16)")]
    if rows is None:
        return blocks + [("p", f"No saliency outputs found in `{os.path.relpath(sal_dir, ROOT)}`. Produce them with "
                          f"`{SALIENCY_CMD}`; this section then shows them.")], None
    settings = load_settings(sal_dir)
    rows, notes, current = out_of_date(rows, settings, images_dir)
    if notes:
        blocks.append(("p", ("" if current else MAPS_OUT_OF_DATE + " ") + " ".join(notes)))
    stale = None if current else " ".join(notes[:-1])  # less the last note, the command: the archive names it
    if not rows:
        return blocks, stale
    methods = settings.get("methods") or [k[len("centre_share_"):] for k in rows[0] if k.startswith("centre_share_")]
    shown = methods[0]  # what the grid's first map column and the measures below are about
    model = settings.get("model", "VGG-16 (ImageNet)")
    blocks += [("p", f"For each image: forward pass through {model}, class scores before the softmax, a one-hot "
                     "derivative for the class C at the score layer, back-propagation to the pixels; shown and "
                     f"measured here: {METHOD_NAMES.get(shown, shown)}"
                     + (f" (`settings.json` of `{os.path.relpath(sal_dir, ROOT)}` says {', '.join(methods)} "
                        "were computed)" if len(methods) > 1 or shown != "vanilla" else "") + ". "
                     + precision_words(settings.get("precision"), "the maps")
                     + map_agreement(settings.get("precision")))]
    guess = guessing_sentence(rows, model)
    if guess:
        blocks.append(("p", guess))
    grid = os.path.join(sal_dir, "grid.png")
    if os.path.isfile(grid):
        blocks.append(("img", os.path.relpath(grid, out_dir), "Each image's input crop, then " +
                       ("its map and the map over the crop" if len(methods) == 1 else
                        "its map by " + ", ".join(methods)) + ". " + GRID_MARKS))
        page = 2
        while os.path.isfile(os.path.join(sal_dir, f"grid-{page}.png")):  # assignment_4b.py pages long grids
            blocks.append(("img", os.path.relpath(os.path.join(sal_dir, f"grid-{page}.png"), out_dir),
                           f"The saliency grid, continued (page {page})."))
            page += 1
    blocks += [("h3", "Are the images classified correctly? Is the classification based on the relevant parts?"),
               ("p", "A box drawn by hand around each image's object (`My-Images/boxes.csv`, in the original's "
                     "pixels) is mapped through the network's own resize and centre crop. Two measures per map: "
                     "whether its peak "
                     f"falls in the box (the pointing game of Zhang et al. 2016, with their {BOX_TOLERANCE}-pixel "
                     "tolerance), and the share of its mass inside the box, beside two baselines that see no model: a "
                     "uniform map (its share is the box's share of the crop) and a centre prior (a centred Gaussian)."),
               ("table", ["image", "prediction (p)", "correct?", "object", "peak in box", "mass in box", "box's area",
                          "centre prior's mass"], [image_row(r, shown) for r in rows]),
               ("list", [image_sentence(r, shown, images_dir) for r in rows]),
               ("p", overall_sentence(rows, shown))]
    if len(methods) > 1:
        blocks += methods_blocks(rows, methods, settings)
    return blocks, stale


def guessing_sentence(rows, model):
    """Part 2's chance check, as Part 1 has one: where no image's top-1 probability reaches twice a uniform guess's
    (1/1000 for ImageNet's classes), the classifier recognises nothing here, and the sentence says what follows."""
    if not model.startswith("VGG-16"):
        return None
    k = NUM_CLASSES
    top = max(float(r["top1_prob"]) for r in rows)
    if top >= 2 / k:
        return None
    return (f"**The classifier is guessing here:** no image's top-1 probability is above {top:.4f}, within twice "
            f"1/{k} = {1 / k:.4f}, a uniform guess over ImageNet's {k} classes. So the predicted classes below are not "
            "recognitions, the 'correct?' column can match only by chance, and the maps show what moves a score that "
            "holds no evidence of the object: they say nothing of what a trained VGG-16 sees in these photographs.")


def image_row(r, method):
    box = r.get("object") and r.get(f"box_mass_{method}")
    return [r["file"], f"{r['top1_name']} ({float(r['top1_prob']):.2f})", r["plausible"], r.get("object") or "no box",
            ("yes" if r[f"hit_{method}"] == "1" else "no") if box else "n/a",
            pct(float(r[f"box_mass_{method}"])) if box else "n/a",
            pct(float(r["box_share_of_crop"])) if box else "n/a",
            pct(float(r["box_mass_centre_prior"])) if box else "n/a"]


CANNOT_TELL = 0.9  # a box covering this share of the crop or more cannot separate a map that looks from one that
# does not: any peak lands in it (with the tolerance) and even a uniform map puts 90% of its mass there


def can_tell(r, method):
    """Whether an image's box can tell a map that looks at the object from one that does not."""
    return bool(r.get("object") and r.get(f"box_mass_{method}")) and float(r["box_share_of_crop"]) < CANNOT_TELL


def box_comparison(rows, method):
    """Map method against the baselines over the images that can tell, paired per image. -> dict: n; the pointing game's
    hits of the map and of the centre prior, with the exact McNemar p on the images where one hits and the other
    misses; per baseline (uniform, centre prior) how many images the map puts more / less of its mass in the box than
    the baseline does, with the exact sign test's p (ties dropped); the mean masses."""
    told = [r for r in rows if can_tell(r, method)]
    hit = [r[f"hit_{method}"] == "1" for r in told]
    prior_hit = [r["hit_centre_prior"] == "1" for r in told]
    mass = [float(r[f"box_mass_{method}"]) for r in told]
    out = {"n": len(told), "hits": sum(hit), "prior_hits": sum(prior_hit),
           "only_map": sum(a and not b for a, b in zip(hit, prior_hit)),
           "only_prior": sum(b and not a for a, b in zip(hit, prior_hit)), "mass": float(np.mean(mass)) if told else 0}
    out["p_point"] = mcnemar_exact(out["only_map"], out["only_prior"])
    for name, key in (("uniform", "box_share_of_crop"), ("prior", "box_mass_centre_prior")):
        base = [float(r[key]) for r in told]
        wins, losses = sum(a > b for a, b in zip(mass, base)), sum(a < b for a, b in zip(mass, base))
        out[name] = {"wins": wins, "losses": losses, "p": mcnemar_exact(wins, losses),
                     "mean": float(np.mean(base)) if told else 0}
    return out


def beats_both(c):
    """Whether a map's mass in the boxes beats both baselines significantly, in the right direction."""
    return all(c[b]["p"] < ALPHA and c[b]["wins"] > c[b]["losses"] for b in ("uniform", "prior"))


def image_sentence(r, method, images_dir):
    """The sheet's two questions for one image, answered with its numbers."""
    correct = {"yes (top-1)": "correct", "yes (top-5)": "correct within the top 5 only", "no": "wrong",
               "not judged": "not judged (no expected class in `expected.csv`)"}[r["plausible"]]
    first = f"{r['file']}: classified as {r['top1_name']} (p = {float(r['top1_prob']):.2f}), {correct}"
    if not r.get("object"):
        return (first + f"; no box for it in `{os.path.relpath(os.path.join(images_dir, 'boxes.csv'), ROOT)}`, so "
                "where the map points is not measured: add a row `file,x0,y0,x1,y1,object` (pixels of the original).")
    if r.get("box_in_crop") == "outside the crop":
        return first + (f"; the box of {r['object']} lies outside the centre crop the network sees, so it is not "
                        "measured.")
    mass, area, prior = (float(r[k]) for k in (f"box_mass_{method}", "box_share_of_crop", "box_mass_centre_prior"))
    if area >= CANNOT_TELL:
        return (first + f"; the box of {r['object']} covers {pct(area)} of the crop, so this image cannot tell where "
                "the map looks (any map's peak lands in it, and a uniform map puts as much of its mass there); it is "
                "left out of the totals.")
    than = lambda a, b: "more" if a > b else "less" if a < b else "as much"  # noqa: E731
    hit, prior_hit = r[f"hit_{method}"] == "1", r["hit_centre_prior"] == "1"
    peak = {(True, False): "its peak is on the object where the centre prior's peak misses it",
            (False, True): "its peak misses the object where the centre prior's peak is on it",
            (True, True): "its peak is on the object, as is the centre prior's",
            (False, False): "its peak misses the object, as does the centre prior's"}[hit, prior_hit]
    return (first + f"; the map puts {pct(mass)} of its mass in the box of {r['object']}: {than(mass, area)} than a "
            f"uniform map ({pct(area)}, the box's share of the crop) and {than(mass, prior)} than the centre prior "
            f"({pct(prior)}); {peak}.")


def overall_sentence(rows, method):
    """Both questions over all images, with a 95% interval on the pointing game and the baselines beside."""
    judged = [r for r in rows if r["plausible"] != "not judged"]
    text = (f"{sum(r['plausible'] == 'yes (top-1)' for r in judged)} of {len(judged)} judged images are classified "
            f"correctly at top 1 ({sum(r['plausible'] != 'no' for r in judged)} within the top 5). " if judged else "")
    boxed = [r for r in rows if r.get("object") and r.get(f"box_mass_{method}")]
    if not boxed:
        return text + "No image has a box, so whether the maps point at the objects is not measured."
    c = box_comparison(rows, method)
    left = len(boxed) - c["n"]
    text += (f"{left} of the {len(boxed)} images with a box cannot tell (the box covers {pct(CANNOT_TELL)} or more "
             f"of the crop) and {'is' if left == 1 else 'are'} left out. " if left else "")
    if not c["n"]:
        return text + "No image can tell whether the map looks at the object: add images whose object is small."
    u, p = c["uniform"], c["prior"]
    text += (f"Over the {c['n']} image(s) that can tell: the map's peak falls on the object in {c['hits']}, the centre "
             f"prior's in {c['prior_hits']} (exact McNemar test on the {c['only_map'] + c['only_prior']} image(s) "
             f"where only one of them hits: {fmt_p(c['p_point'])}); the map puts more of its mass in the box than a "
             f"uniform map in {u['wins']} and less in {u['losses']} (exact sign test {fmt_p(u['p'])}; means "
             f"{pct(c['mass'])} against {pct(u['mean'])}), more than the centre prior in {p['wins']} and less in "
             f"{p['losses']} ({fmt_p(p['p'])}; the prior's mean {pct(p['mean'])}). ")
    if beats_both(c):
        return text + ("The map beats both baselines significantly: on these images the classification is based on "
                       "the relevant parts, as far as the maps show it.")
    if c["n"] < images_needed():
        return text + (f"So the images cannot tell whether the classification is based on the relevant parts: with "
                       f"{c['n']} image(s) no paired test can reach p < {ALPHA} even if every image went the "
                       f"map's way; it takes at least {images_needed()} images that can tell, and more where some go "
                       "the other way.")
    return text + ("The map does not beat both baselines significantly, so these images do not show that the "
                   "classification is based on the relevant parts (nor that it is not).")


def ground_truth_blocks(folder, out_dir):
    """saliency_ground_truth.py's benchmark, if it was run: each method against planted evidence, with intervals."""
    path = os.path.join(folder, "ground_truth.csv")
    if not os.path.isfile(path):
        return []
    rows = list(csv.DictReader(open(path, encoding="utf-8")))

    def ci(r, k, fmt):
        return f"{fmt(float(r[k]))} ({fmt(float(r[k + '_lo']))}-{fmt(float(r[k + '_hi']))})"
    main = [r for r in rows if r["kind"] in ("method", "baseline")]
    last = {}
    for r in rows:
        if r["kind"] == "randomised":
            last[r["map"]] = r  # the rows end with every layer random
    baselines = [c[len("beats_"):].replace("_", " ") for c in rows[0] if c.startswith("beats_")]
    blocks = [("h3", "How far to trust these maps: a benchmark with known evidence"),
              ("p", "`python saliency_ground_truth.py` (after XAI-TRIS, Clark et al. 2023): generated images whose "
                    "class is decided only by a planted T or L pattern at a random place, on white or smooth noise, "
                    "with a distractor square elsewhere; a small CNN learns the task, and every method's map of every "
                    "test image is scored against the pattern's true box, beside baselines that see no model. In "
                    "brackets: 95% intervals over the test images; 'beats' means the paired interval of the per-image "
                    "differences lies "
                    "above 0 on all three scores. A small CNN on synthetic patterns is not VGG-16 on photographs: a "
                    "method that fails here is suspect everywhere, one that passes has passed one test."),
              ("table", ["map", "pointing game", "mass in box", "rank AUC", "deletion AUC", "insertion AUC", "beats"],
               [[r["map"], ci(r, "pointing", pct), ci(r, "mass_share", pct), ci(r, "rank_auc", lambda v: f"{v:.3f}"),
                 f"{float(r['deletion_auc']):.3f}", f"{float(r['insertion_auc']):.3f}",
                 ", ".join(b for b in baselines if r.get("beats_" + b.replace(" ", "_")) == "yes") or
                 ("none" if r["kind"] == "method" else "(baseline)")] for r in main])]
    if last:
        blocks.append(("p", "With every weight layer of the model re-initialised (cascading randomisation), the "
                            "pointing game falls to " + "; ".join(f"{pct(float(r['pointing']))} for {m.split(' (')[0]}"
                                                         for m, r in last.items())
                       + " (the best baseline: "
                         f"{pct(max(float(r['pointing']) for r in main if r['kind'] == 'baseline'))})"
                       + ": a map that stayed on the pattern would not be explaining the model."))
    if os.path.isfile(os.path.join(folder, "ground_truth.png")):
        blocks.append(("img", os.path.relpath(os.path.join(folder, "ground_truth.png"), out_dir),
                       "Test images with the true box of the pattern that decides their class, each method's map and "
                       "the baselines.", 170))
    return blocks


def extras_blocks(folder, out_dir):
    """saliency_extras.py's outputs, if it was run: the methods side by side, how far to trust them, localisation and
    the class model."""
    rows = load_saliency(folder, folder)
    found = [f for f in sorted(os.listdir(folder)) if f.startswith("class_model_") and f.endswith(".png")] \
        if os.path.isdir(folder) else []
    if rows is None and not found:
        return []
    blocks = [("h3", "Beyond the sheet (`saliency_extras.py`)")]
    if rows is not None:
        settings = load_settings(folder)
        methods = settings.get("methods") or ["vanilla"]
        if os.path.isfile(os.path.join(folder, "grid.png")):
            blocks.append(("img", os.path.relpath(os.path.join(folder, "grid.png"), out_dir),
                           "Each image's input crop, then its map by " + ", ".join(methods) + "."))
        blocks += methods_blocks(rows, methods, settings)
        boxes = os.path.join(folder, "localisation.png")
        if os.path.isfile(boxes):
            blocks.append(("img", os.path.relpath(boxes, out_dir),
                           "Weakly supervised localisation (Simonyan et al. 2014, section 3.2): GrabCut seeded with "
                           "the pixels above the 95% (foreground) and below the 30% (background) saliency quantiles; "
                           "the mask and the box of its largest connected component (`python saliency_extras.py "
                           "--localise`).", 150))
        blocks += trust_blocks(folder, out_dir)
    for f in found:
        blocks.append(("img", os.path.relpath(os.path.join(folder, f), out_dir),
                       "Class model visualisation (Simonyan et al. 2014, section 2): the image that maximises the "
                       "class score with an L2 penalty, found by gradient ascent from a zero image "
                       f"(`{f}`, from `python saliency_extras.py --class-model CLASS`).", 90))
    return blocks


def methods_blocks(rows, methods, settings):
    """The explanation methods side by side: what each computed (with the settings of the run) and their maps'
    share of mass in the central box."""
    described = {
        "vanilla": "the vanilla gradient map",
        "smoothgrad": "SmoothGrad (the vanilla map averaged over "
                      + (f"{settings['sg_samples']} copies with noise of std {settings['sg_noise']:g} x the "
                         "image's value range)" if "sg_samples" in settings else "noisy copies of the image)"),
        "integrated-gradients": "Integrated Gradients (gradients along a path "
                                + (f"of {settings['ig_steps']} steps from a {settings['ig_baseline']} image)"
                                   if "ig_steps" in settings else "from a baseline image)"),
        "gradcam": "Grad-CAM (the last convolutional block's activations weighted by their gradients)"}
    gaps = [float(r["ig_completeness_gap"]) for r in rows if r.get("ig_completeness_gap")]
    ig = (f" Integrated Gradients' completeness gap (how far the attributions' sum is from S_C(I) - "
          f"S_C(baseline)) ranges from {pct(min(gaps))} to {pct(max(gaps))}." if gaps else "")
    blocks = [("h3", "Explanation methods side by side"),
              ("p", "`saliency_extras.py` rendered, per image, " + ", ".join(described.get(k, k) for k in methods)
                    + f".{ig} The share of each map's mass inside the central box:"),
              ("table", ["image"] + methods,
               [[r["file"]] + [pct(float(r[f"centre_share_{method}"])) for method in methods] for r in rows]
               + [["mean"] + [pct(np.mean([float(r[f"centre_share_{method}"]) for r in rows])) for method in methods]])]
    cs = {method: box_comparison(rows, method) for method in methods}
    n = cs[methods[0]]["n"]
    if n:
        blocks += [("p", f"Against the objects' boxes, over the {n} image(s) that can tell (box under "
                         f"{pct(CANNOT_TELL)} of the crop), each map paired per image with the baselines, which see "
                         "no model (exact tests, two-sided):"),
                   ("table", ["map", "peak in box (centre prior's)", "mean mass in box", "mass > uniform / <, p",
                              "mass > centre prior / <, p", "beats both?"],
                    [[method, f"{c['hits']} of {n} ({c['prior_hits']}; {fmt_p(c['p_point'])})", pct(c["mass"]),
                      f"{c['uniform']['wins']} / {c['uniform']['losses']}, {fmt_p(c['uniform']['p'])}",
                      f"{c['prior']['wins']} / {c['prior']['losses']}, {fmt_p(c['prior']['p'])}",
                      "yes" if beats_both(c) else "no" + (f" (too few images: {images_needed()} needed)"
                                                          if n < images_needed() else "")]
                     for method, c in cs.items()])]
    return blocks


def load_settings(folder):
    """settings.json written by assignment_4b.py beside its outputs (absent for outputs of older versions)."""
    path = os.path.join(folder, "settings.json")
    try:
        return json.load(open(path)) if os.path.isfile(path) else {}
    except (OSError, json.JSONDecodeError) as e:
        print(f"warning: ignoring {path}: {e}", file=sys.stderr)
        return {}


def paintings_blocks(folder, out_dir):
    """Saliency of the fine-tuned painting-style model (saliency_extras.py --checkpoint), if it was run."""
    path = os.path.join(folder, "predictions.csv")
    if not os.path.isfile(path):
        return []
    rows = list(csv.DictReader(open(path)))
    blocks = [("h3", "What drives the painting-style model"),
              ("p", "`python saliency_extras.py --checkpoint runs/<run>/best.pt --images <paintings>` explains the "
                    "fine-tuned AlexNet instead of VGG-16: the maps show which regions of each painting drive its "
                    "style prediction.")]
    if os.path.isfile(os.path.join(folder, "grid.png")):
        blocks.append(("img", os.path.relpath(os.path.join(folder, "grid.png"), out_dir),
                       "Paintings, the style explained, and the maps of the fine-tuned model."))
    blocks.append(("table", ["painting", "predicted style", "probability", "style explained"],
                   [[r["file"], r["top1_name"], f"{float(r['top1_prob']):.3f}", r["class_used_name"]] for r in rows]))
    return blocks


def trust_blocks(sal_dir, out_dir):
    """How far to trust each map, from `saliency_extras.py --trust`'s sanity.csv and deletion_insertion.csv."""
    sanity_path, di_path = os.path.join(sal_dir, "sanity.csv"), os.path.join(sal_dir, "deletion_insertion.csv")
    if not (os.path.isfile(sanity_path) and os.path.isfile(di_path)):
        return []
    sanity, di = list(csv.DictReader(open(sanity_path))), list(csv.DictReader(open(di_path)))
    methods = list(dict.fromkeys(r["method"] for r in di))
    last = {r["method"]: r["mean_rank_correlation"] for r in sanity}  # the rows end with every layer random
    rows = [[method, f"{np.mean([float(r['deletion_auc']) for r in di if r['method'] == method]):.3f}",
             f"{np.mean([float(r['insertion_auc']) for r in di if r['method'] == method]):.3f}",
             last[method] if last[method] == "undefined" else f"{float(last[method]):.3f}"]
            for method in methods]
    blocks = [("h3", "How far to trust the maps"),
              ("p", "Model randomisation (Adebayo et al., NeurIPS 2018): the network's weight layers are "
                    "re-initialised "
                    "from the top down and the map recomputed; a map that explains the model must change, so its rank "
                    "correlation with the original map should fall. Deletion and insertion (Petsiuk et al., BMVC "
                    "2018): the class probability as the most salient pixels are removed from the image, or inserted "
                    "into a blurred copy; the area under the curve is low for deletion and high for insertion when the "
                    "map points at what the network uses. Means over the images:"),
              ("table", ["method", "deletion AUC (lower better)", "insertion AUC (higher better)",
                         "rank correlation, all layers random"], rows)]
    if os.path.isfile(os.path.join(sal_dir, "sanity.png")):
        blocks.append(("img", os.path.relpath(os.path.join(sal_dir, "sanity.png"), out_dir),
                       "Rank correlation with the original map as more layers are re-initialised, top down.", 150))
    return blocks
