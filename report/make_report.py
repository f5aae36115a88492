"""Build report/report.md and report/report.pdf from the runs and outputs on disk, never from invented numbers.

    python report/make_report.py --name "Jane Doe" --student-id 1234   # once: remembered in report/student.json
    python report/make_report.py                       # runs/, report/saliency/, datasets/wikiart/ -> report/
    python report/make_report.py --runs runs --saliency report/saliency --out report

The assembler: each part of the report is built by the module that reads its data (report/runs.py the runs,
report/part1.py Part 1 with the dataset's manifest, report/part2.py Part 2 with the maps and photos,
report/comments.py the student's comments.md), rendered by report/render.py, and recorded by report/record.py
(record.json: every input with its digest, and the digests of what was written, which make_package.py checks).
Where an input is missing, the report says which command produces it. `--help` imports no PyTorch.
"""
import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # the scripts whose constants and figures the report uses, and the report/ modules
from report import record  # noqa: E402 (standard library only)
from report.comments import COMMENTS_FILE, comment_blocks, read_comments  # noqa: E402 (standard library only)

# ---- defaults: where the scripts write, relative to the project (tests/test_report.py checks each against the
# script's own constant; they are not imported from the scripts so that --help needs no PyTorch) ----
FOLDERS = {  # flag: (its default, relative to the project; what the folder is)
    "runs": ("runs", "folder of assignment_4a.py runs"),
    "ground_truth": ("report/ground_truth", "output folder of saliency_ground_truth.py"),
    "extras": ("report/saliency_extras", "output folder of saliency_extras.py"),
    "saliency": ("report/saliency", "output folder of assignment_4b.py"),
    "paintings": ("report/saliency_paintings",
                  "output folder of saliency_extras.py --checkpoint (saliency of the painting-style model)"),
    "data": ("datasets/wikiart", "dataset folder written by download_wikiart.py"),
    "images": ("My-Images", "folder of the saliency images, with expected.csv and boxes.csv"),
    "out": ("report", "where report.md, report.pdf, record.json and figures/ go")}
DEFAULTS = {k: os.path.join(ROOT, *path.split("/")) for k, (path, _) in FOLDERS.items()}
STUDENT_FILE = "student.json"   # name and ID remembered between runs (not committed)
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
    for key, (_, what) in FOLDERS.items():
        p.add_argument(f"--{key.replace('_', '-')}", default=DEFAULTS[key], help=f"{what} (default: %(default)s)")
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
    """-> (the report's blocks, the runs read, why the maps are not up to date with the photos or None)."""
    from report import part1, part2
    from report.runs import load_runs
    runs, unusable = load_runs(args.runs)
    unknown = sorted(set(args.compare_runs or ()) - {m["run"] for m in runs})
    if unknown:
        sys.exit(f"error: --compare-runs: no run that can be reported is named {', '.join(unknown)} in {args.runs}; "
                 f"the runs there: {', '.join(m['run'] for m in runs) or 'none'}")
    counts, sizes = part1.dataset_counts(args.data)
    blocks = [("h1", "Assignment 4: transfer learning and saliency maps"), ("p", name_line(name, student_id)),
              ("p", f"Generated by `report/make_report.py` on {time.strftime('%Y-%m-%d %H:%M')} from the runs and "
                    "outputs on disk. Every number below comes from those files.")]
    blocks += [("h2", "Setup")] + part1.setup_blocks(counts, args.data)
    blocks += [("table", ["", ""], [[k, v] for k, v in environment().items()])]
    comments = read_comments(args.comments or os.path.join(args.out, COMMENTS_FILE))
    blocks += part1.part1_blocks(runs, counts, sizes, fig_dir, args.data, args.compare_runs, unusable)
    blocks += [written_by_the_program("The sentences of Part 1 were")] + comment_blocks(comments, "Part 1")
    blocks += [("h2", "Theoretical questions")]
    for q, a in QUESTIONS:
        blocks += [("p", f"**{q}** {a}")]
    blocks += [("p", "*These answers come with this solution (`report/make_report.py`); they are not the student's "
                     "own.*")] + comment_blocks(comments, "Theoretical questions")
    saliency, maps_out_of_date = part2.part2_blocks(part2.load_saliency(args.saliency, args.images), args.saliency,
                                                    args.out, args.images)
    blocks += saliency + part2.extras_blocks(args.extras, args.out)
    blocks += part2.ground_truth_blocks(args.ground_truth, args.out)
    blocks += part2.paintings_blocks(args.paintings, args.out)
    blocks += [written_by_the_program("The sentences of Part 2 were")] + comment_blocks(comments, "Part 2")
    blocks += [("h2", "References"), ("list", references_of(blocks))]
    return blocks, runs, maps_out_of_date


def sources(args):
    """What the report reads, as report/record.py lists it: {what: (kind, path)}."""
    return {"runs": ("runs", args.runs), "images": ("top", args.images), "saliency": ("folder", args.saliency),
            "extras": ("folder", args.extras), "paintings": ("folder", args.paintings),
            "ground_truth": ("folder", args.ground_truth),
            "manifest": ("file", os.path.join(args.data, "manifest.csv")),
            "comments": ("file", args.comments or os.path.join(args.out, COMMENTS_FILE))}


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
    from report.part1 import DOWNLOAD_CMD, TRAIN_CMD
    from report.render import to_markdown, to_pdf
    assignment_4b.check_requirements()  # fpdf2, fontTools ... as old as the bounds allow, or one sentence
    fig_dir = os.path.join(args.out, "figures")
    try:
        os.makedirs(fig_dir, exist_ok=True)
        tempfile.TemporaryFile(dir=fig_dir).close()
    except OSError as e:
        sys.exit(f"error: cannot write in --out {args.out} ({e.strerror}): give a folder you can write to")
    name, student_id = student(args)
    blocks, runs, maps_out_of_date = build_blocks(args, fig_dir, name, student_id)
    md_path = os.path.join(args.out, "report.md")
    with open(md_path, "w", encoding="utf-8") as fh:
        fh.write(to_markdown(blocks))
    written = [md_path]
    if not args.no_pdf:
        to_pdf(blocks, os.path.join(args.out, "report.pdf"), args.out)
        written.append(os.path.join(args.out, "report.pdf"))
    record.write(args.out, sources(args), written, name, student_id, maps_out_of_date, pdf_written=not args.no_pdf)
    missing = []
    if not runs:
        missing.append(f"no training runs: {DOWNLOAD_CMD} && {TRAIN_CMD}")
    if not os.path.isfile(os.path.join(args.saliency, "predictions.csv")):
        missing.append(f"no saliency outputs: {record.SALIENCY_CMD}")
    print("wrote " + ", ".join(written) + f", and {record.RECORD_FILE} (what they were built from)")
    if args.no_pdf and os.path.isfile(os.path.join(args.out, "report.pdf")):
        print(f"note: {os.path.join(args.out, 'report.pdf')} is left from an earlier run and no longer matches "
              "report.md: make_package.py refuses it until a run without --no-pdf")
    if not (name and student_id):
        print("warning: the report has no "
              f"{' and no '.join(w for w, v in (('name', name), ('student ID', student_id)) if not v)}"
              ": pass --name and --student-id (remembered after)", file=sys.stderr)
    for m in missing:
        print(f"missing, so the report says so: {m}")


if __name__ == "__main__":
    main()
