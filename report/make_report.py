"""Build report/report.md and report/report.pdf from the runs and outputs on disk, never from invented numbers.

    python report/make_report.py --name "Jane Doe" --student-id 1234   # once: remembered in report/student.json
    python report/make_report.py                       # runs/, report/saliency/, datasets/wikiart/ -> report/
    python report/make_report.py --runs runs --saliency report/saliency --out report

Reads: runs/*/metrics.json and config.json (assignment_4a.py), report/saliency/predictions.csv and grid.png
(assignment_4b.py), datasets/wikiart/manifest.csv (download_wikiart.py), My-Images/expected.csv.
Writes: report/report.md, report/report.pdf, report/figures/*.png. Where an input is missing, the report
says which command produces it.
"""
import argparse
import csv
import hashlib
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections import Counter

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # the scripts whose constants and figures the report uses, and report.stats, report.render
import assignment_4a  # noqa: E402 (the run settings, the preprocessing sizes, the confusion figure)
import saliency_extras  # noqa: E402 (where the extras write)
import saliency_ground_truth  # noqa: E402 (where the benchmark writes)
from assignment_4a import CACHE_SIZE as RESIZE, CROP, DATA_DIR, RUNS_DIR  # noqa: E402
from assignment_4b import BOX_TOLERANCE, IMAGES_DIR, OUT_DIR as SALIENCY_DIR, is_image_file, pyplot  # noqa: E402
from download_wikiart import STAND_INS, known_artist  # noqa: E402 (our style -> the course's style huggan/wikiart
#   lacks; an artist's name, or '' for huggan/wikiart's "Unknown Artist", which is many painters)
from report.make_package import MAPS_OUT_OF_DATE  # noqa: E402 (the sentence the archive is refused on)
from report.render import FIGURE_WIDTH_MM, to_markdown, to_pdf  # noqa: E402
from report.stats import (ALPHA, above_chance_p, fmt_p, images_needed, mcnemar_exact,  # noqa: E402
                          wilson_interval)
from vgg16 import MAP_AGREEMENT, NUM_CLASSES  # noqa: E402 (how far tf32 and bf16 maps agree; ImageNet's 1000)

# ---- defaults ----
PAINTINGS_DIR = saliency_extras.PAINTINGS_OUT_DIR
EXTRAS_DIR = saliency_extras.OUT_DIR
GROUND_TRUTH_DIR = saliency_ground_truth.OUT_DIR
OUT_DIR = os.path.join(ROOT, "report")  # report.md, report.pdf, figures/
STUDENT_FILE = "student.json"   # name and ID remembered between runs (not committed)
COMMENTS_FILE = "comments.md"   # the student's own words, placed after each part's generated reading (not committed)
COMMENT_PARTS = {"part 1": "Part 1", "questions": "Theoretical questions", "part 2": "Part 2"}  # its headings
COMMENTS_TEMPLATE = """<!-- Your own comments on your results, in your own words. The sheet asks for them, and a report
written by a program or an AI is not yours: every other sentence of report.md was generated from the numbers by
report/make_report.py, and says so. Write under each heading below; what you write (outside these comment marks)
goes into report.md and report.pdf after that part's generated text, under "Your comments". A heading left empty
adds nothing. -->

## Part 1

<!-- Which head surgery (--remove 1 or 2) and which layers to train (--train new, fc, all) worked best on your
runs, by how much, and how sure can you be (the intervals and the paired test)? What do the curves in TensorBoard
show: over- or under-fitting, and from which epoch? Which styles are confused with which, and why might that be? -->

## Questions

<!-- Your answers to the sheet's theoretical questions (a small or a large dataset, similar to ImageNet or not: what
to fine-tune). The answers in report.md come with this solution and are not yours. -->

## Part 2

<!-- Are your images classified correctly? Is the classification based on the relevant parts of the image? Point to
the maps: where do they look, where do they not, and what do the box measures and their baselines say? -->
"""
IMAGENET_TRAIN_IMAGES = "1.2 million"  # ILSVRC-2012's training set, which the pretrained weights were fit to
TRAIN_CMD = "python assignment_4a.py --compare"
SALIENCY_CMD = "python assignment_4b.py"
DOWNLOAD_CMD = "python download_wikiart.py"
# every work the report can cite, by (first author, year) as its text cites it ("Tan et al., ICIP 2016"): the
# References list the works a report cites, in the order it first cites them (references_of)
LITERATURE = {
    ("Tan", "2016"): "W. R. Tan, C. S. Chan, H. E. Aguirre, K. Tanaka, \"Ceci n'est pas une pipe: A deep "
                     "convolutional network for fine-art paintings classification\", ICIP 2016.",
    ("Cetinic", "2018"): "E. Cetinic, T. Lipic, S. Grgic, \"Fine-tuning Convolutional Neural Networks for fine art "
                         "classification\", Expert Systems with Applications 114, 2018.",
    ("Simonyan", "2014"): "K. Simonyan, A. Vedaldi, A. Zisserman, \"Deep Inside Convolutional Networks: Visualising "
                          "Image Classification Models and Saliency Maps\", ICLR workshop 2014.",
    ("Zhang", "2016"): "J. Zhang, Z. Lin, J. Brandt, X. Shen, S. Sclaroff, \"Top-down Neural Attention by Excitation "
                       "Backprop\", ECCV 2016 (the pointing game).",
    ("Smilkov", "2017"): "D. Smilkov, N. Thorat, B. Kim, F. Viegas, M. Wattenberg, \"SmoothGrad: removing noise by "
                         "adding noise\", ICML workshop on visualization for deep learning, 2017.",
    ("Sundararajan", "2017"): "M. Sundararajan, A. Taly, Q. Yan, \"Axiomatic Attribution for Deep Networks\", ICML "
                              "2017 (Integrated Gradients).",
    ("Selvaraju", "2017"): "R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh, D. Batra, \"Grad-CAM: "
                           "Visual Explanations from Deep Networks via Gradient-based Localization\", ICCV 2017.",
    ("Adebayo", "2018"): "J. Adebayo, J. Gilmer, M. Muelly, I. Goodfellow, M. Hardt, B. Kim, \"Sanity Checks for "
                         "Saliency Maps\", NeurIPS 2018.",
    ("Petsiuk", "2018"): "V. Petsiuk, A. Das, K. Saenko, \"RISE: Randomized Input Sampling for Explanation of "
                         "Black-box Models\", BMVC 2018 (deletion and insertion).",
    ("Clark", "2023"): "B. Clark, R. Wilming, S. Haufe, \"XAI-TRIS: Non-linear image benchmarks to quantify false "
                       "positive post-hoc attribution of feature importance\", arXiv:2306.12816, 2023 (Machine "
                       "Learning, 2024).",
}
CITATION = re.compile(r"\b([A-Z][a-z]+) et al\.?,? (?:[A-Za-z]+ )?((?:19|20)\d\d)\b")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Build the assignment report (Markdown and PDF) from the runs on disk.")
    p.add_argument("--runs", default=RUNS_DIR, help="folder of assignment_4a.py runs (default: %(default)s)")
    p.add_argument("--ground-truth", default=GROUND_TRUTH_DIR,
                   help="output folder of saliency_ground_truth.py (default: %(default)s)")
    p.add_argument("--extras", default=EXTRAS_DIR, help="output folder of saliency_extras.py (default: %(default)s)")
    p.add_argument("--saliency", default=SALIENCY_DIR, help="output folder of assignment_4b.py (default: %(default)s)")
    p.add_argument("--paintings", default=PAINTINGS_DIR,
                   help="output folder of saliency_extras.py --checkpoint (saliency of the painting-style model) "
                        "(default: %(default)s)")
    p.add_argument("--data", default=DATA_DIR, help="dataset folder written by download_wikiart.py (default: "
                                                    "%(default)s)")
    p.add_argument("--images", default=IMAGES_DIR, help="folder with expected.csv for the saliency images (default: "
                                                        "%(default)s)")
    p.add_argument("--out", default=OUT_DIR, help="where report.md, report.pdf and figures/ go (default: %(default)s)")
    p.add_argument("--name", default=None,
                   help="your name, for the report's first page (the sheet asks for it); remembered in "
                        "<out>/student.json for later runs")
    p.add_argument("--student-id", default=None,
                   help="your student ID, for the report's first page; remembered like --name")
    p.add_argument("--no-pdf", action="store_true", help="write the Markdown only")
    p.add_argument("--comments", default=None,
                   help=f"your own comments, a Markdown file with the headings ## Part 1, ## Questions, ## Part 2: "
                        f"each part's text goes after that part's generated text (default: <out>/{COMMENTS_FILE}, "
                        "written as a template with the sheet's questions when it does not exist)")
    p.add_argument("--compare-runs", nargs="+", default=None, metavar="RUN",
                   help="the run folders (names under --runs) to compare (default: the newest set of finished runs "
                        "that differ only in --remove and --train; the others are listed with the reason)")
    return p.parse_args(argv)


def read_comments(path):
    """-> {"Part 1": text, "Theoretical questions": text, "Part 2": text} from the student's comments file: the text
    under each heading, without the template's <!-- --> guidance; a part with no text of the student's is left out.
    Writes the template where there is no file yet."""
    if not os.path.exists(path):
        try:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(COMMENTS_TEMPLATE)
            print(f"note: wrote {path}: put your own comments there (the sheet asks for them) and run this again")
        except OSError as e:
            print(f"warning: could not write the comments template {path} ({e.strerror})", file=sys.stderr)
        return {}
    try:
        text = open(path, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as e:
        sys.exit(f"error: cannot read your comments {path} ({e.__class__.__name__}): save it as UTF-8 text")
    text = re.sub(r"<!--.*?(-->|$)", "", text, flags=re.S)
    parts, current = {}, None
    for line in text.splitlines():
        heading = re.match(r"\s*#{1,6}\s*(.*?)\s*#*\s*$", line)
        if heading and heading.group(1).lower().rstrip(":") in COMMENT_PARTS:
            current = COMMENT_PARTS[heading.group(1).lower().rstrip(":")]
            continue
        parts.setdefault(current, []).append(line)
    out = {part: "\n".join(lines).strip() for part, lines in parts.items() if "\n".join(lines).strip()}
    if None in out:  # text above the first heading: kept, with Part 2's (the report's end)
        out["Part 2"] = (out.get("Part 2", "") + "\n\n" + out.pop(None)).strip()
    if not out:
        print(f"note: {path} has no comments of yours yet: the sheet asks for them")
    return out


def comment_blocks(comments, part):
    """The student's own text for one part, as blocks: paragraphs, and lists where lines start with - or *."""
    text = comments.get(part)
    if not text:
        return []
    blocks = [("h3", f"Your comments ({part})")]
    for para in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in para.strip().splitlines()]
        if all(re.match(r"[-*] ", ln) for ln in lines):
            blocks.append(("list", [ln[2:] for ln in lines]))
        else:
            blocks.append(("p", " ".join(lines)))
    return blocks


def written_by_the_program(what):
    """The line that says who wrote a part's sentences: the sheet counts a report a program wrote as not the
    student's."""
    return ("p", f"*{what} generated from the numbers above by `report/make_report.py`, not written by the student.*")


def student(args):
    """-> (name, student ID): the flags, else what an earlier run remembered, else asked for once at a terminal."""
    path = os.path.join(args.out, STUDENT_FILE)
    known = {}
    if os.path.isfile(path):
        try:
            known = json.load(open(path))
        except (OSError, json.JSONDecodeError):
            print(f"warning: ignoring {path}: not readable JSON", file=sys.stderr)
    name = args.name if args.name is not None else known.get("name")
    student_id = args.student_id if args.student_id is not None else known.get("student_id")
    if (not name or not student_id) and sys.stdin is not None and sys.stdin.isatty():
        name = name or input("Your name (for the report's first page): ").strip()
        student_id = student_id or input("Your student ID: ").strip()
    name, student_id = (name or "").strip(), (student_id or "").strip()
    if (name, student_id) != (known.get("name", ""), known.get("student_id", "")) and (name or student_id):
        os.makedirs(args.out, exist_ok=True)
        with open(path, "w") as fh:
            json.dump({"name": name, "student_id": student_id}, fh)
    return name, student_id


# ---- what is on disk ----

def load_runs(runs_dir):
    """-> (the runs that can be reported, [(folder, why it cannot)]): every folder of runs_dir is one or the other."""
    runs, unusable = [], []
    for name in sorted(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else []:
        if not os.path.isdir(os.path.join(runs_dir, name)) or name.startswith("."):
            continue
        path = os.path.join(runs_dir, name, "metrics.json")
        if not os.path.isfile(path):
            unusable.append((name, "no metrics.json: stopped before its first epoch finished, or not a run of "
                                   "assignment_4a.py"))
            continue
        try:
            m = json.load(open(path))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            print(f"warning: skipping {path}: {e}", file=sys.stderr)
            unusable.append((name, f"metrics.json cannot be read ({e.__class__.__name__})"))
            continue
        problem = metrics_problem(m)
        if problem:
            print(f"warning: skipping {path}: {problem}", file=sys.stderr)
            unusable.append((name, f"metrics.json: {problem}"))
            continue
        if not m["epochs"]:  # a run that diverged before its first epoch has nothing to show
            unusable.append((name, "no finished epoch" + (" (it diverged)" if m.get("diverged") else "")))
            continue
        m["dir"] = os.path.join(runs_dir, name)
        m["run"] = name  # the folder's name as it is now (a renamed run): the one a TA finds in the archive
        try:
            m["config"] = json.load(open(os.path.join(m["dir"], "config.json")))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            m["config"] = {}
        runs.append(m)
    return runs, unusable


SETTINGS = assignment_4a.settings(compared=True)  # what runs must agree on, declared once in assignment_4a.Config


def run_settings(m):
    """What a run was trained with, beyond what the sheet varies (--remove, --train): the data (a fingerprint of its
    per-style counts), the training settings of config.json, and augmentation where it is not --train's default."""
    cfg = m.get("config", {})
    out = {"data": hashlib.sha1(json.dumps(m.get("counts", {}), sort_keys=True).encode()).hexdigest()[:8]}
    out.update({k: cfg.get(k) for k in SETTINGS})
    out["precision"] = run_precision(m) or cfg.get("precision")  # what ran, where the run recorded it
    out["augment"] = "default" if cfg.get("augment", m["train"] == "all") == (m["train"] == "all") else cfg["augment"]
    # the rates the epochs ran at: a run stopped and resumed with another --epochs followed another schedule
    lrs = [h.get("lr") for h in m["epochs"]]
    out["lr per epoch"] = " ".join(f"{lr:.3g}" for lr in lrs) if None not in lrs else None
    return out


def why_not_compared(m, key):
    """Why a finished run is not in the compared set: the settings in which it differs, with both values."""
    mine = run_settings(m)
    differ = named_differences([k for k in key if mine[k] != key[k]])
    diffs = [f"{k} {mine[k]} vs {key[k]}" if k != "data" else "other data" for k in differ]
    return "different " + ", ".join(diffs) if diffs else "an older run of the same variant"


def named_differences(keys):
    """The settings worth naming among those that differ: the rates per epoch follow from --epochs and --lr when
    those differ, so they are named only alone (a run resumed onto another schedule)."""
    return [k for k in keys if k != "lr per epoch" or not {"epochs", "lr"} & set(keys)]


def select_runs(runs, chosen=None):
    """The runs the report compares: by default the newest set of finished runs that differ only in what the sheet
    varies (--remove, --train), the newest run of each variant; or the runs named in `chosen`. -> (compared, [(run,
    why it is left out)], what the chosen runs differ in besides --remove and --train)."""
    def finished(m):
        planned = m["config"].get("epochs", len(m["epochs"]))  # load_runs gives every run a config, {} if unreadable
        if m.get("diverged"):
            return "diverged"
        return None if len(m["epochs"]) >= planned else f"unfinished ({len(m['epochs'])} of {planned} epochs)"
    if chosen:
        compared = [m for m in runs if m["run"] in chosen]
        keys = [run_settings(m) for m in compared]
        differ = named_differences(sorted(k for k in keys[0] if len({json.dumps(x[k]) for x in keys}) > 1))
        return compared, [(m, "not named with --compare-runs") for m in runs if m["run"] not in chosen], differ
    left, groups = [], {}
    for m in runs:
        why = finished(m)
        if why:
            left.append((m, why))
        else:
            groups.setdefault(json.dumps(run_settings(m), sort_keys=True), []).append(m)
    if not groups:
        return [], left, []
    newest = lambda ms: max(os.path.getmtime(os.path.join(m["dir"], "metrics.json")) for m in ms)  # noqa: E731
    best_key = max(groups, key=lambda k: (len({(m["remove"], m["train"]) for m in groups[k]}) > 1, newest(groups[k])))
    compared = {}
    for m in sorted(groups[best_key], key=lambda m: os.path.getmtime(os.path.join(m["dir"], "metrics.json"))):
        old = compared.get((m["remove"], m["train"]))
        if old:
            left.append((old, f"an older run of the same variant than {m['run']}"))
        compared[(m["remove"], m["train"])] = m
    key = json.loads(best_key)
    for k, ms in groups.items():
        if k != best_key:
            left += [(m, why_not_compared(m, key)) for m in ms]
    return sorted(compared.values(), key=lambda m: (m["remove"], m["train"])), left, []


def metrics_problem(m):
    """Why a metrics.json cannot be reported (None if it can): the wrong shape, missing keys, or figures that
    disagree with each other."""
    if not isinstance(m, dict):
        return f"a JSON {type(m).__name__}, not the object assignment_4a.py writes"
    missing = [k for k in ("run", "remove", "train", "classes", "epochs", "best_val_accuracy") if k not in m]
    if missing:
        return f"no {', '.join(missing)}"
    if not isinstance(m["epochs"], list) or not isinstance(m["classes"], list):
        return "epochs and classes must be lists"
    keys = {"epoch", "loss_train", "loss_val", "accuracy_train", "accuracy_val"}
    if not all(isinstance(h, dict) and keys <= set(h) for h in m["epochs"]):
        return f"an epoch without {', '.join(sorted(keys))}"
    numbers = [h[k] for h in m["epochs"] for k in ("accuracy_train", "accuracy_val")] + [m["best_val_accuracy"]]
    if not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in numbers if v != -1.0):
        return "an accuracy outside [0, 1]"
    if m["epochs"] and abs(max(h["accuracy_val"] for h in m["epochs"]) - m["best_val_accuracy"]) > 1e-9:
        return (f"best_val_accuracy {m['best_val_accuracy']} is not the best of its epochs "
                f"({max(h['accuracy_val'] for h in m['epochs'])})")
    conf = m.get("best_confusion")
    if conf is not None and (not isinstance(conf, list) or len(conf) != len(m["classes"])
                             or any(not isinstance(r, list) or len(r) != len(m["classes"]) for r in conf)):
        return f"best_confusion is not {len(m['classes'])}x{len(m['classes'])}"
    return None


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


def environment():
    import torch
    import torchvision
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"Python": platform.python_version(), "PyTorch": torch.__version__, "torchvision": torchvision.__version__,
            "OS": platform.platform(), "CPU": f"{cpu} ({os.cpu_count()} logical cores)", "GPU": gpu}


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


def run_precision(m):
    """The precision a run's epochs ran in, as assignment_4a.py records it; None where it did not (older versions
    recorded only the --precision asked for)."""
    ran = {h.get("precision") for h in m["epochs"]}
    return ran.pop() if len(ran) == 1 and None not in ran else ("mixed" if None not in ran else None)


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
    path = mistakes_gallery(best, data_dir, os.path.join(fig_dir, "mistakes_best.png"))
    if path:
        blocks.append(("img", "figures/mistakes_best.png", f"The validation paintings the best run ({best['run']}) "
                                                           "gets most confidently wrong: true style, predicted style "
                                                           "and its probability.", 160))
    return blocks


def mistakes_gallery(m, data_dir, path, k=8):
    """Thumbnails of the run's most confident mistakes, from its val_predictions.csv and the dataset's files."""
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
    fig.savefig(path, dpi=110)
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


QUESTIONS = [
    ("The new dataset is small and similar to the original (ImageNet-like photographs).",
     "Do not fine-tune the whole network: with little data it overfits. The high-level features already describe "
     "such images, so keep the network frozen as a feature extractor and train only a new last layer (a linear "
     "classifier on fc7), as `--train new` does."),
    ("The new dataset is large and similar to the original.",
     "Fine-tune: with enough data there is little risk of overfitting, so start from the pretrained weights and "
     "train all layers (or all but the first few, which hold generic edges and colours) with a small learning rate, "
     "so that the good features are adjusted rather than destroyed."),
    ("The new dataset is different from the original (like paintings versus photographs).",
     "The top layers' features are specific to the original classes and transfer worst. With little data, train a "
     "classifier on features from earlier, more generic layers (remove more of the top, as `--remove 2` starts "
     "to do) and fine-tune cautiously; with a lot of data, fine-tune the whole network (or even train from "
     "scratch), still starting from the pretrained weights, which converges faster than a random start."),
]


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
    blocks = [("h2", "Part 2: image-specific class saliency maps (VGG-16)")]
    if rows is None:
        return blocks + [("p", f"No saliency outputs found in `{os.path.relpath(sal_dir, ROOT)}`. Produce them with "
                          f"`{SALIENCY_CMD}`; this section then shows them.")]
    settings = load_settings(sal_dir)
    rows, notes, current = out_of_date(rows, settings, images_dir)
    if notes:
        blocks.append(("p", ("" if current else MAPS_OUT_OF_DATE + " ") + " ".join(notes)))
    if not rows:
        return blocks
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
    return blocks


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


def name_line(name, student_id):
    """The report's first line: the name and the student ID, the sheet's "do not forget"; where either is missing,
    which one and the command that adds it (make_package.py refuses a report without both)."""
    if name and student_id:
        return f"**Name:** {name}  ·  **Student ID:** {student_id}"
    missing = " and ".join(w for w, v in (("name", name), ("student ID", student_id)) if not v)
    given = f"**Name:** {name}  ·  " if name else f"**Student ID:** {student_id}  ·  " if student_id else ""
    return (given + f"**{missing[0].upper() + missing[1:]}: not given.** The sheet asks for both: `python "
            "report/make_report.py --name \"Your Name\" --student-id 1234567`.")


def build_blocks(args, fig_dir, name="", student_id=""):
    runs, unusable = load_runs(args.runs)
    unknown = sorted(set(args.compare_runs or ()) - {m["run"] for m in runs})
    if unknown:
        sys.exit(f"error: --compare-runs: no run that can be reported is named {', '.join(unknown)} in {args.runs}; "
                 f"the runs there: {', '.join(m['run'] for m in runs) or 'none'}")
    counts, sizes = dataset_counts(args.data)
    env = environment()
    blocks = [("h1", "Assignment 4: transfer learning and saliency maps"), ("p", name_line(name, student_id)),
              ("p", f"Generated by `report/make_report.py` on {time.strftime('%Y-%m-%d %H:%M')} from the runs and "
                    "outputs on disk. Every number below comes from those files.")]
    blocks += [("h2", "Setup")]
    if counts:
        styles = sorted(counts)
        def artists(s):
            st = artist_stats(counts[s])
            return f"{st[0]} (top: {st[1]}, {pct(st[2])})" if st else "not recorded"
        blocks += [("table", ["style", "train", "val", "artists"],
                    [[s, str(counts[s]["train"]), str(counts[s]["val"]), artists(s)] for s in styles]
                    + [["total", str(sum(counts[s]["train"] for s in styles)),
                        str(sum(counts[s]["val"] for s in styles)), ""]])]
        stand = [f"{s} stands in for the course's {STAND_INS[s]}" for s in styles if s in STAND_INS]
        if stand:
            blocks += [("p", "; ".join(stand) + ": huggan/wikiart has neither Neoclassicism nor Surrealism, and the "
                        "dataset viewer's partial export, which the default download reads, has 400 paintings of no "
                        "closer style (no Rococo at all, ~270 Cubism). `download_wikiart.py --help` gives the command "
                        "for Rococo and Cubism from the parquet shards.")]
    else:
        blocks += [("p", f"No dataset found at `{os.path.relpath(args.data, ROOT)}`: `{DOWNLOAD_CMD}` downloads it.")]
    blocks += [("table", ["", ""], [[k, v] for k, v in env.items()])]
    comments = read_comments(args.comments or os.path.join(args.out, COMMENTS_FILE))
    blocks += part1_blocks(runs, counts, sizes, fig_dir, args.data, args.compare_runs, unusable)
    blocks += [written_by_the_program("The sentences of Part 1 were")] + comment_blocks(comments, "Part 1")
    blocks += [("h2", "Theoretical questions")]
    for q, a in QUESTIONS:
        blocks += [("p", f"**{q}** {a}")]
    blocks += [("p", "*These answers come with this solution (`report/make_report.py`); they are not the student's "
                     "own.*")] + comment_blocks(comments, "Theoretical questions")
    blocks += part2_blocks(load_saliency(args.saliency, args.images), args.saliency, args.out, args.images)
    blocks += extras_blocks(args.extras, args.out)
    blocks += ground_truth_blocks(args.ground_truth, args.out)
    blocks += paintings_blocks(args.paintings, args.out)
    blocks += [written_by_the_program("The sentences of Part 2 were")] + comment_blocks(comments, "Part 2")
    blocks += [("h2", "References"), ("list", references_of(blocks))]
    return blocks, runs


def references_of(blocks):
    """The LITERATURE entries of the works the blocks' text cites, in the order of first citation. A citation with
    no entry is this script's bug: it stops here rather than print a reference that is missing."""
    cited = []
    for block in blocks:
        for text in block_texts(block):
            cited += [c for c in CITATION.findall(text) if c not in cited]
    missing = [f"{a} et al. {y}" for a, y in cited if (a, y) not in LITERATURE]
    assert not missing, f"cited without an entry in LITERATURE: {', '.join(missing)}"
    return [LITERATURE[c] for c in cited]


def block_texts(block):
    """Every string a block prints: its text, a table's header and cells, a list's items, a figure's caption."""
    for part in block[1:]:
        if isinstance(part, str):
            yield part
        elif isinstance(part, (list, tuple)):
            for item in part:
                yield from block_texts((None, item)) if not isinstance(item, str) else [item]


def main(argv=None):
    args = parse_args(argv)
    import assignment_4b
    assignment_4b.check_requirements()  # fpdf2, fontTools ... as old as the bounds allow, or one sentence
    fig_dir = os.path.join(args.out, "figures")
    try:
        os.makedirs(fig_dir, exist_ok=True)
        tempfile.TemporaryFile(dir=fig_dir).close()
    except OSError as e:
        sys.exit(f"error: cannot write in --out {args.out} ({e.strerror}): give a folder you can write to")
    name, student_id = student(args)
    blocks, runs = build_blocks(args, fig_dir, name, student_id)
    md_path = os.path.join(args.out, "report.md")
    with open(md_path, "w") as fh:
        fh.write(to_markdown(blocks))
    written = [md_path]
    if not args.no_pdf:
        to_pdf(blocks, os.path.join(args.out, "report.pdf"), args.out)
        written.append(os.path.join(args.out, "report.pdf"))
    missing = []
    if not runs:
        missing.append(f"no training runs: {DOWNLOAD_CMD} && {TRAIN_CMD}")
    if not os.path.isfile(os.path.join(args.saliency, "predictions.csv")):
        missing.append(f"no saliency outputs: {SALIENCY_CMD}")
    print("wrote " + ", ".join(written))
    if not (name and student_id):
        print("warning: the report has no "
              f"{' and no '.join(w for w, v in (('name', name), ('student ID', student_id)) if not v)}"
              ": pass --name and --student-id (remembered after)", file=sys.stderr)
    for m in missing:
        print(f"missing, so the report says so: {m}")


if __name__ == "__main__":
    main()
