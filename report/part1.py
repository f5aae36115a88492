"""Part 1 of the report, from the compared runs (report.runs) and the dataset's manifest.csv: the tables, the
curves, the best run's confusion matrix and mistakes, and the sentences that read them, each only as far as the
numbers go."""
import csv
import os
import sys
from collections import Counter

import numpy as np

import assignment_4a
from assignment_4a import CACHE_SIZE as RESIZE, CROP
from assignment_4b import pyplot
from download_wikiart import STAND_INS, known_artist  # our style -> the sheet's; "" for "Unknown Artist" (many hands)
from report.render import FIGURE_WIDTH_MM
from report.runs import run_precision, select_runs
from report.stats import ALPHA, above_chance_p, fmt_p, mcnemar_exact, wilson_interval
from vgg16 import MAP_AGREEMENT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


IMAGENET_TRAIN_IMAGES = "1.2 million"  # ILSVRC-2012's training set, which the pretrained weights were fit to
TRAIN_CMD = "python assignment_4a.py --compare"
DOWNLOAD_CMD = "python download_wikiart.py"


def setup_blocks(counts, data_dir):
    """The dataset's table (paintings per style and split, artists), and which styles stand in for the sheet's."""
    if not counts:
        return [("p", f"No dataset found at `{os.path.relpath(data_dir, ROOT)}`: `{DOWNLOAD_CMD}` downloads it.")]
    styles = sorted(counts)

    def artists(s):
        st = artist_stats(counts[s])
        return f"{st[0]} (top: {st[1]}, {pct(st[2])})" if st else "not recorded"
    blocks = [("table", ["style", "train", "val", "artists"],
               [[s, str(counts[s]["train"]), str(counts[s]["val"]), artists(s)] for s in styles]
               + [["total", str(sum(counts[s]["train"] for s in styles)), str(sum(counts[s]["val"] for s in styles)),
                   ""]])]
    stand = [f"{s} stands in for the course's {STAND_INS[s]}" for s in styles if s in STAND_INS]
    if stand:
        blocks += [("p", "; ".join(stand) + ": huggan/wikiart has neither Neoclassicism nor Surrealism, and the "
                    "dataset viewer's partial export, which the default download reads, has 400 paintings of no "
                    "closer style (no Rococo at all, ~270 Cubism). `download_wikiart.py --help` gives the command "
                    "for Rococo and Cubism from the parquet shards.")]
    return blocks


def dataset_counts(data_dir):
    """-> {style: {"train": n, "val": n, "artists": {split: Counter}}}, and image sizes, from manifest.csv (or the
    folders; artists only where the manifest records them)."""
    counts, sizes = {}, []
    manifest = os.path.join(data_dir, "manifest.csv")
    if os.path.isfile(manifest):
        for r in csv.DictReader(open(manifest)):
            c = counts.setdefault(r["style"], {"train": 0, "val": 0, "artists": {"train": Counter(), "val": Counter()}})
            c[r["split"]] += 1
            if known_artist(r.get("artist") or ""):  # a manifest written before "Unknown Artist" was left blank
                c["artists"][r["split"]][r["artist"]] += 1
            sizes.append((int(r["width"]), int(r["height"])))
    else:
        for split in ("train", "val"):
            folder = os.path.join(data_dir, split)
            for style in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
                if os.path.isdir(os.path.join(folder, style)):
                    n = len(os.listdir(os.path.join(folder, style)))
                    counts.setdefault(style, {"train": 0, "val": 0})[split] = n
    return counts, sizes


# ---- figures ----

PRINTED_PT = 7.5  # the smallest text of a figure as printed on the report's page (figures are 160 mm wide)


def font_for(fig_width_in, printed=PRINTED_PT):
    """The font size that prints at `printed` points once a figure `fig_width_in` wide is scaled to the page."""
    return printed * fig_width_in / (FIGURE_WIDTH_MM / 25.4)


def curves_plot(runs):
    """Loss and accuracy per epoch of every compared run; one legend entry per run, below the plots, where it
    hides no curve."""
    plt = pyplot()
    width = 10
    with plt.rc_context({"font.size": font_for(width)}):
        fig, (a, b) = plt.subplots(1, 2, figsize=(width, 4.6))
        for i, m in enumerate(runs):
            e = [h["epoch"] for h in m["epochs"]]
            c = f"C{i}"
            label = f"remove {m['remove']}, train {m['train']}"
            a.plot(e, [h["loss_train"] for h in m["epochs"]], c + "-", label=label)
            a.plot(e, [h["loss_val"] for h in m["epochs"]], c + "--")
            b.plot(e, [h["accuracy_train"] for h in m["epochs"]], c + "-")
            b.plot(e, [h["accuracy_val"] for h in m["epochs"]], c + "--")
        a.set(xlabel="epoch", ylabel="cross-entropy", title="loss (solid: train, dashed: val)")
        b.set(xlabel="epoch", ylabel="top-1 accuracy", title="accuracy (solid: train, dashed: val)", ylim=(0, 1))
        from matplotlib.ticker import MaxNLocator
        for ax in (a, b):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
        fig.legend(loc="lower center", ncol=min(len(runs), 4), frameon=False)
        fig.tight_layout(rect=(0, 0.08 * (1 + (len(runs) - 1) // 4), 1, 1))
    return fig


def curves_figure(runs, path):
    fig = curves_plot(runs)
    fig.savefig(path, dpi=120)
    pyplot().close(fig)


def confusion_plot(conf, classes):
    """TensorBoard's confusion matrix (assignment_4a.confusion_figure), its texts, the cells' shares included, sized
    to print at PRINTED_PT or more on the report's page."""
    import torch
    fig = assignment_4a.confusion_figure(torch.as_tensor(conf), classes)
    size = font_for(fig.get_size_inches()[0])
    fig.canvas.draw()
    for ax in fig.axes:
        for t in ax.texts + ax.get_xticklabels() + ax.get_yticklabels() + [ax.xaxis.label, ax.yaxis.label]:
            t.set_fontsize(max(t.get_fontsize(), size))
    fig.tight_layout()
    return fig


def save_confusion_figure(conf, classes, path):
    fig = confusion_plot(conf, classes)
    fig.savefig(path, dpi=120)
    pyplot().close(fig)


def pct(x):
    return f"{100 * x:.1f}%"


def accuracy_with_interval(m):
    """'61.3% (95% CI 57.9-64.6%)' for a run's best validation accuracy, over its validation paintings."""
    n = val_count(m)
    if not n:
        return pct(m["best_val_accuracy"])
    lo, hi = wilson_interval(round(m["best_val_accuracy"] * n), n)
    return f"{pct(m['best_val_accuracy'])} (95% CI {100 * lo:.1f}-{100 * hi:.1f}%)"


def val_count(m):
    return sum(m.get("counts", {}).get("val", {}).values()) or (sum(map(sum, m["best_confusion"]))
                                                                 if m.get("best_confusion") else 0)


def per_painting(m):
    """A run's val_predictions.csv -> {file: right?}, or None where the run has none (older versions)."""
    name = m.get("val_predictions")
    path = os.path.join(m["dir"], name) if name else None
    if not path or not os.path.isfile(path):
        return None
    try:
        rows = csv.DictReader(open(path, encoding="utf-8"))
        return {r["file"]: r["true_style"] == r["predicted_style"] for r in rows}
    except (OSError, KeyError, csv.Error, UnicodeDecodeError) as e:
        print(f"warning: ignoring {path}: {e}", file=sys.stderr)
        return None


def paired_test(a, b):
    """McNemar on the paintings both runs predicted. -> (paintings, only a right, only b right, p) or None."""
    pa, pb = per_painting(a), per_painting(b)
    if pa is None or pb is None:
        return None
    common = sorted(set(pa) & set(pb))
    if not common:
        return None
    only_a = sum(pa[f] and not pb[f] for f in common)
    only_b = sum(pb[f] and not pa[f] for f in common)
    return len(common), only_a, only_b, mcnemar_exact(only_a, only_b)


def at_chance(m):
    """Whether a run's best validation accuracy is within what guessing gives (one-sided binomial test)."""
    n = val_count(m)
    return not n or above_chance_p(round(m["best_val_accuracy"] * n), n, 1 / len(m["classes"])) >= ALPHA


def f1_table(conf):
    """-> per style (precision, recall, F1) from a confusion matrix (true x predicted), and the macro-F1."""
    conf = np.asarray(conf, dtype=float)
    tp = conf.diagonal()
    ppv = tp / np.maximum(conf.sum(0), 1)        # precision: of the paintings predicted as a style, the share right
    recall = tp / np.maximum(conf.sum(1), 1)     # recall: of a style's paintings, the share found
    f1 = np.where(ppv + recall > 0, 2 * ppv * recall / np.maximum(ppv + recall, 1e-12), 0.0)
    return list(zip(ppv, recall, f1)), float(f1.mean())


def part1_blocks(runs, counts, sizes, fig_dir, data_dir, chosen=None, unusable=()):
    blocks = [("h2", "Part 1: transfer learning with AlexNet on WikiArt")]
    not_runs = [("table", ["folder in runs/", "why it is not reported"], [list(u) for u in unusable])] if unusable \
        else []
    if not runs:
        return blocks + [("p", f"No training runs found{' that can be reported' if unusable else ''}. Produce them "
                          f"with `{DOWNLOAD_CMD}` then `{TRAIN_CMD}`; this section then shows their "
                          "results.")] + not_runs
    compared, left, differ = select_runs(runs, chosen)
    if not compared:
        return blocks + [("p", f"{len(runs)} run(s) found, none finished: " + "; ".join(f"{m['run']}: {why}" for m, why
                                                                              in left) + f". `{TRAIN_CMD}` trains "
                                                                                         "them.")]
    blocks += [("p", f"{len(runs)} run(s) read from `runs/`; {len(compared)} compared: "
                     + ("the runs named with --compare-runs" + (f", which differ in {', '.join(differ)} besides what "
                                                               "the sheet varies" if differ else "") if chosen else
                        "the newest set that differs only in what the sheet varies (which FC layers are removed, what "
                        "trains): same data, epochs, training settings and learning rate in each epoch") + ". "
                     + chance_sentence(compared)
                     + " " + train_accuracy_sentence(compared) + " Validation accuracy is measured "
                       "after the epoch in eval mode. Intervals are 95% Wilson intervals over the validation "
                       "paintings. Training time adds up the epochs (training and evaluation); the console's "
                       "comparison table gives each run's wall time, with its weights and the frozen layers' one "
                       "pass."),
               ("table", ["run", "removed FC", "trained", "epochs", "best val acc (95% CI)", "macro-F1",
                          "final train acc (running)", "final val acc", "training time"],
                [result_row(m) for m in compared])]
    ran = {run_precision(m) for m in compared}
    blocks += [("p", precision_words(next(iter(ran)), "the compared runs' training") if len(ran) == 1 else
                "The compared runs trained in different precisions: " + "; ".join(
                    f"{m['run']}: {PRECISION_NAMES.get(run_precision(m), run_precision(m) or 'not recorded')}"
                    for m in compared) + ".")]
    if left:
        blocks += [("p", "Left out of the comparison:"),
                   ("table", ["run", "removed FC", "trained", "why"], [[m["run"], str(m["remove"]), m["train"], why]
                                                                       for m, why in left])]
    if unusable:
        blocks += [("p", "Folders of `runs/` that hold no reportable run:")] + not_runs
    curves_figure(compared, os.path.join(fig_dir, "training_curves.png"))
    blocks += [("img", "figures/training_curves.png", "Training loss and accuracy per epoch, every compared run.")]
    best = max(compared, key=lambda m: m["best_val_accuracy"])
    conf = np.array(best["best_confusion"]) if best.get("best_confusion") else None
    if conf is not None:
        blocks += best_run_blocks(best, conf, fig_dir, data_dir)
    blocks += [("h3", "What removing one or two FC layers does")] + [("p", t) for t in compare_text(compared)]
    blocks += [("h3", "What limits the accuracy on this dataset")]
    if all(at_chance(m) for m in compared):  # nothing learnt: no reason for an accuracy can be read off these runs
        blocks += [("p", "Every compared run is at chance level, so these runs cannot tell what limits the accuracy; "
                         "the reasons this section gives for runs above chance (the data's size, style versus "
                         "objects, image sizes, artists, confusions) are left out until a run learns.")]
    else:
        blocks += [("list", limits(compared, counts, sizes, best, conf))]
    lo, hi = (min(c["train"] for c in counts.values()), max(c["train"] for c in counts.values())) if counts else (0, 0)
    ours = (f"our subset has {len(counts)} styles and {lo if lo == hi else f'{lo}-{hi}'} training paintings each"
            if counts else
            f"this report found no dataset manifest to count our subset (`{DOWNLOAD_CMD}` writes one)")
    blocks += [("p", "**Literature (for comparison, not our runs):** fine-tuned AlexNet-type networks on 25-27 WikiArt "
                     "styles reach about 54-56% top-1 accuracy (Tan et al., ICIP 2016; Cetinic et al., 2018), with "
                     f"tens of thousands of training paintings; {ours}.")]
    return blocks


def train_accuracy_sentence(runs):
    """How the final train accuracy was measured, as each run's last epoch recorded it (`train_conditions`: "under
    dropout", "as evaluated" ...): a run that trains only the new layer on cached features has no dropout left."""
    groups = {}
    for m in runs:
        groups.setdefault(m["epochs"][-1].get("train_conditions"), []).append(m["run"])
    words = {None: "conditions not recorded (a run of an older assignment_4a.py)",
             "as evaluated": "as evaluated (no dropout, no augmentation)"}
    parts = [f"{words.get(c, c)}" + ("" if len(groups) == 1 else f" for {', '.join(names)}")
             for c, names in groups.items()]
    return ("The final train accuracy is the running figure of the last epoch, measured while the weights changed, "
            + "; ".join(parts) + ".")


def result_row(m):
    f = m["epochs"][-1]
    macro = f"{f1_table(m['best_confusion'])[1]:.3f}" if m.get("best_confusion") else "n/a"
    return [m["run"], str(m["remove"]), m["train"], str(f["epoch"]), accuracy_with_interval(m), macro,
            pct(f["accuracy_train"]), pct(f["accuracy_val"]), duration(sum(h.get("seconds", 0) for h in m["epochs"]))]


def parameters(n):
    """A parameter count as a count: 40,970 below a million, 57.0 M above (never "0.0 M")."""
    return f"{n:,}" if n < 1_000_000 else f"{n / 1e6:.1f} M"


def duration(seconds):
    """0.3 s under ten seconds, 42 s under a minute, else 3.5 min: a short run is not "0 s" or "0.0 min"."""
    if seconds < 0.05:
        return "< 0.1 s"
    return f"{seconds:.1f} s" if seconds < 9.95 else f"{seconds:.0f} s" if seconds < 59.5 else \
        f"{seconds / 60:.1f} min"


PRECISION_NAMES = {"fp32": "fp32 (IEEE single precision: TF32 off)",
                   "tf32": "TF32 (fp32 with a 10-bit mantissa in convolutions and matrix products, on the GPU)",
                   "bf16": "bf16 autocast"}


def map_agreement(precision):
    """Beside maps made in tf32 or bf16: how far such maps agree with fp32 ones, as measured (vgg16's figures)."""
    if precision not in MAP_AGREEMENT:
        return ""
    name = {"tf32": "TF32", "bf16": "bf16"}[precision]
    return (f" {name} maps are not fp32 maps: measured against fp32 ones on random VGG-16 weights, "
            f"{MAP_AGREEMENT[precision]} (docs/speed.md); for maps to report, run `python assignment_4b.py "
            "--precision fp32`.")


def precision_words(ran, what):
    """One sentence naming the precision that ran, or saying it was not recorded."""
    if ran in PRECISION_NAMES:
        return f"Precision of {what}: {PRECISION_NAMES[ran]}."
    if ran == "mixed":
        return f"Precision of {what}: more than one (a run resumed with another --precision)."
    return f"The precision of {what} was not recorded (outputs of an older version)."


def chance_sentence(runs):
    """Chance and the majority-class rate, and whether each run is above chance (one-sided binomial test)."""
    k = len(runs[0]["classes"])
    train = list(runs[0].get("counts", {}).get("train", {}).values())
    val = list(runs[0].get("counts", {}).get("val", {}).values())
    balanced = bool(train) and max(train) == min(train)
    text = (f"Chance level with {k} equally sized styles is {pct(1 / k)}." if balanced else
            f"Chance level with {k} styles is {pct(1 / k)} for a uniform guess" +
            (f"; always predicting the largest style would score {pct(max(train) / sum(train))} on data split like "
             "the training set." if train else "."))
    if val and max(val) != min(val):
        text += f" On these validation paintings the majority style alone would score {pct(max(val) / sum(val))}."
    chance = [m["run"] for m in runs if at_chance(m)]
    if len(chance) == len(runs):
        return text + (" **Every compared run is at chance level** (no best validation accuracy is above guessing at "
                       f"{ALPHA:g}, one-sided binomial test), so these numbers cannot rank the variants. Likely "
                       "causes: too few epochs, a learning rate too small or too large, weights that are not the "
                       "pretrained ImageNet ones (`--weights`), or too few or mislabelled paintings.")
    return text + (f" {', '.join(chance)} {'is' if len(chance) == 1 else 'are'} not above chance (one-sided binomial "
                   f"test at {ALPHA:g}); the others are." if chance else
                   f" Every compared run is above chance (one-sided binomial test, {ALPHA:g}).")


def best_run_blocks(best, conf, fig_dir, data_dir):
    """The best run's confusion matrix, per-style precision, recall and F1, and its most confident mistakes."""
    classes = best["classes"]
    save_confusion_figure(conf, classes, os.path.join(fig_dir, "confusion_best.png"))
    scores, macro = f1_table(conf)
    blocks = [("img", "figures/confusion_best.png", f"Validation confusion matrix of the best run ({best['run']}, "
                                                    f"epoch {best['best']['epoch']}), rows normalised."),
              ("table", ["style", "val images", "recall (style accuracy)", "precision", "F1"],
               [[c, str(int(conf[i].sum())), pct(r), pct(p), f"{f:.3f}"]
                for i, (c, (p, r, f)) in enumerate(zip(classes, scores))]
               + [["macro mean", str(int(conf.sum())), pct(np.mean([r for _, r, _ in scores])),
                   pct(np.mean([p for p, _, _ in scores])), f"{macro:.3f}"]])]
    path = mistakes_gallery(best, data_dir, os.path.join(fig_dir, "mistakes_best.jpg"))
    if path:
        blocks.append(("img", "figures/mistakes_best.jpg", f"The validation paintings the best run ({best['run']}) "
                                                           "gets most confidently wrong: true style, predicted style "
                                                           "and its probability.", 160))
    return blocks


def mistakes_gallery(m, data_dir, path, k=8):
    """Thumbnails of the run's most confident mistakes, from its val_predictions.csv and the dataset's files, saved
    at `path` (a .jpg: photographs)."""
    name = m.get("val_predictions")
    csv_path = os.path.join(m["dir"], name) if name else None
    if not csv_path or not os.path.isfile(csv_path):
        return None
    from PIL import Image
    rows = [r for r in csv.DictReader(open(csv_path, encoding="utf-8")) if r["true_style"] != r["predicted_style"]]
    rows = sorted(rows, key=lambda r: -float(r["p_predicted"]))[:k]
    rows = [r for r in rows if os.path.isfile(os.path.join(data_dir, r["file"]))]
    if not rows:
        return None
    thumbs = []
    for r in rows:
        with Image.open(os.path.join(data_dir, r["file"])) as im:
            im.thumbnail((256, 256))
            thumbs.append(im.convert("RGB"))
    captions = [f"true {r['true_style']}\npredicted {r['predicted_style']}\np = {float(r['p_predicted']):.2f}"
                for r in rows]
    fig = gallery_plot(thumbs, captions)
    fig.savefig(path, dpi=110, pil_kwargs={"quality": 85})  # paintings: a JPEG, a tenth of the PNG's bytes
    pyplot().close(fig)
    return path


def gallery_plot(images, captions, per_row=4):
    """Thumbnails in rows of `per_row`, each captioned, the captions printing at PRINTED_PT or more."""
    plt = pyplot()
    rows = -(-len(images) // per_row)
    width = 2.3 * per_row
    fig, axes = plt.subplots(rows, per_row, figsize=(width, 3.1 * rows), squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    size = font_for(width)
    chars = int(2.3 * 72 / (size * 0.55))  # what a column holds at this size (a mean advance of ~0.55 em)
    for ax, im, caption in zip(axes.flat, images, captions):
        ax.imshow(im)
        ax.set_title(wrap_caption(caption, chars), fontsize=size)
    fig.canvas.draw()  # the constrained layout settles over two draws: this one and the file's
    return fig


def wrap_caption(caption, chars):
    """Each line of a caption wrapped at `chars`, a style's underscores read as spaces (Northern_Renaissance), so that
    no title runs into its neighbour's or off the figure."""
    import textwrap
    return "\n".join(part for line in caption.split("\n")
                     for part in textwrap.wrap(line.replace("_", " "), chars, break_long_words=True) or [""])


def compare_text(runs):
    """Each comparison the sheet asks about, with its paired test; a cause only where the test says there is an
    effect, and "cannot tell" where the difference is inside the noise."""
    by = {(m["remove"], m["train"]): m for m in runs}
    out = []
    noise = all(at_chance(m) for m in runs)
    for train in ("new", "fc", "all"):
        a, b = by.get((1, train)), by.get((2, train))
        if a and b:
            out.append(f"Training `{train}`: removing fc8 only reached {accuracy_with_interval(a)} best validation "
                       f"accuracy, removing fc7 and fc8 {accuracy_with_interval(b)}. " + difference_text(a, b, noise))
        elif a or b:
            missing = 2 if a else 1
            out.append(f"Training `{train}`: only `--remove {1 if a else 2}` was compared; "
                       f"`python assignment_4a.py --remove {missing} --train {train}` gives the other variant.")
    trained = {t: [m for m in runs if m["train"] == t] for t in ("new", "fc", "all")}
    have = {t: max(ms, key=lambda m: m["best_val_accuracy"]) for t, ms in trained.items() if ms}
    if len(have) > 1:
        out.append("Best validation accuracy by what was trained: " +
                   ", ".join(f"`{t}` {accuracy_with_interval(m)}" for t, m in have.items()) + ".")
    gaps = [(m, m["epochs"][-1]["accuracy_train"] - m["epochs"][-1]["accuracy_val"]) for m in runs]
    worst = max(gaps, key=lambda g: g[1])
    trained_n = (f", {parameters(worst[0]['parameters']['trained'])} parameters trained"
                 if worst[0].get("parameters") else "")
    text = (f"The largest gap between final (running) train and validation accuracy is {100 * worst[1]:.1f} points "
            f"({worst[0]['run']}{trained_n}).")
    counted = [(m["parameters"]["trained"], g) for m, g in gaps if m.get("parameters")]
    if len({n for n, _ in counted}) >= 3 and [g for _, g in sorted(counted)] == sorted(g for _, g in counted) \
            and not noise:
        text += " Here the gap grows with the number of trained parameters: the more parameters train, the more " \
                "the model can fit the training paintings rather than the styles."
    out.append(text)
    return out


def difference_text(a, b, noise):
    """The paired test of two runs on the same validation paintings, in words that follow it."""
    test = paired_test(a, b)
    if test is None:
        return ("No per-painting predictions for both runs (val_predictions.csv, written by assignment_4a.py since "
                "this version), so no paired test: compare the intervals above, and retrain for a test.")
    n, only_a, only_b, p = test
    counts = (f"Of the {n} validation paintings, {only_a} {'was' if only_a == 1 else 'were'} right only with fc7 kept "
              f"and {only_b} only without it (exact McNemar test, {fmt_p(p)}).")
    if p >= ALPHA or noise:
        return counts + f" These {n} paintings cannot tell the two apart."
    if only_a > only_b:
        return counts + (" Keeping fc7 helped: the new layer on top of fc7 sees features that have been through one "
                         "more ImageNet-trained layer, and here they served the styles better.")
    return counts + (" Removing fc7 helped: fc6's features, one layer less specialised to ImageNet objects, served "
                     "the styles better here.")


def artist_stats(c):
    """-> (artists, top artist, top's share, artists in both splits) of one style's counts, or None if unknown."""
    both = c.get("artists", {}).get("train", Counter()) + c.get("artists", {}).get("val", Counter())
    if not both:
        return None
    top, n = min(both.items(), key=lambda kv: (-kv[1], kv[0]))  # a tie goes to the first name, as in the download
    shared = set(c["artists"]["train"]) & set(c["artists"]["val"])
    return len(both), top, n / sum(both.values()), len(shared)


def artist_sentence(counts):
    """What the artists of the data do to the accuracy: few artists per style, and whether validation shares them
    with training, within a style and across the whole split (an artist can paint in two styles)."""
    stats = {s: artist_stats(c) for s, c in counts.items()}
    stats = {s: v for s, v in stats.items() if v}
    if not stats:
        return None
    mono = sorted(s for s, v in stats.items() if v[0] == 1)
    shared = sum(v[3] > 0 for v in stats.values())
    across = set().union(*(c["artists"]["train"] for c in counts.values() if c.get("artists"))) & \
        set().union(*(c["artists"]["val"] for c in counts.values() if c.get("artists")))
    low, high = min(v[0] for v in stats.values()), max(v[0] for v in stats.values())
    text = (f"Artists: the {len(stats)} styles have {low if low == high else f'{low} to {high}'} "
            f"artist{'s' * (high != 1)} each "
            f"(median top-artist share {pct(float(np.median([v[2] for v in stats.values()])))})")
    text += f"; {', '.join(mono)} {'is' if len(mono) == 1 else 'are'} one artist's work" if mono else ""
    if shared and all(v[0] == 1 for v in stats.values() if v[3]):  # only where no split could keep them apart
        where = sorted(s for s, v in stats.items() if v[3])
        return text + (f". Validation paintings share their artist with training only in {', '.join(where)}, which "
                       "no split can keep apart (one artist); there part of the accuracy may be recognising the "
                       "artist, not the style.")
    if shared:
        return text + (f". In {shared} of them validation paintings share their artists with training, so part of "
                       "the accuracy may be recognising an artist, not a style (`download_wikiart.py "
                       "--split-by-artist` keeps each artist on one side across styles, at a cost to the styles' "
                       "balance that it states).")
    if across:
        return text + (f". Within each style no artist is in both training and validation, but {len(across)} "
                       f"artist(s) have paintings in both splits under different styles (from `manifest.csv`): "
                       "the model may still learn an artist's hand in training and meet it again in validation, "
                       "under another style.")
    return text + (". No artist appears in both training and validation, so the accuracy does not come from "
                   "recognising an artist seen in training.")


def size_sentence(sizes):
    """The paintings' sizes as the network meets them: enlarged or shrunk to a shorter side of 256 (counted), and the
    share of each painting the 224x224 centre crop never shows (through that pipeline)."""
    shorter = np.array([min(w, h) for w, h in sizes])
    ratios = np.array([max(w, h) / min(w, h) for w, h in sizes])
    unseen = np.mean(1 - CROP ** 2 / (RESIZE ** 2 * ratios))      # outside the centre 224x224 of the resized painting
    unseen_aug = np.mean(1 - 1 / ratios)                            # outside the centre 256x256 the random crops roam
    enlarged = int((shorter < RESIZE).sum())
    how = ("all enlarged" if enlarged == len(sizes) else "all shrunk" if enlarged == 0 else
           f"{enlarged} of {len(sizes)} enlarged, the others shrunk")
    return (f"Image sizes and shapes: the paintings' median size is {int(np.median([w for w, _ in sizes]))}x"
            f"{int(np.median([h for _, h in sizes]))} pixels (shorter side: median {int(np.median(shorter))}); "
            f"resizing the shorter side to {RESIZE} pixels leaves them {how}. Their median aspect ratio is "
            f"{np.median(ratios):.2f}, and the {CROP}x{CROP} centre crop the network sees never shows, on average, "
            f"{pct(unseen)} of a painting (with `--augment`'s random crops during training: {pct(unseen_aug)}, the "
            "part outside the central square).")


def limits(runs, counts, sizes, best, conf):
    """The reasons the best accuracy is what it is, each sentence with the figures of these runs and this data."""
    p = next((m["parameters"] for m in runs if m.get("parameters")), None)
    model = (f"the pretrained AlexNet's {p['imagenet_alexnet'] / 1e6:.1f} million parameters" if p
             else "the pretrained AlexNet's parameters")
    size = (f"{sum(c['train'] for c in counts.values())} training paintings in {len(counts)} styles" if counts
            else "a number of training paintings this report could not count (no manifest.csv)")
    items = [f"Size: {size}, while {model} were fit to ImageNet's {IMAGENET_TRAIN_IMAGES} photographs."]
    items.append("Style versus objects: ImageNet taught the network to recognise objects; a style is brushwork, "
                 "palette and composition shared across subjects, so the top layers' object features transfer "
                 "only partly.")
    if sizes:
        items.append(size_sentence(sizes))
    else:
        items.append("Image sizes and shapes: without manifest.csv this report cannot measure them; every painting "
                     "is shrunk to 256 pixels on its shorter side and centre-cropped to 224x224.")
    artists = artist_sentence(counts)
    if artists:
        items.append(artists)
    if conf is not None:
        c = conf / np.maximum(conf.sum(1, keepdims=True), 1)
        np.fill_diagonal(c, 0)
        pairs = sorted(((c[i, j], i, j) for i in range(len(c)) for j in range(len(c)) if i != j), reverse=True)[:3]
        names = best["classes"]
        pairs = [(v, i, j) for v, i, j in pairs if v > 0]
        items.append("The most frequent confusions in the best run: " + "; ".join(
            f"{pct(v)} of {names[i]} was taken for {names[j]}" for v, i, j in pairs) + "." if pairs else
            "In the best run no validation painting was confused with another style.")
    return items
