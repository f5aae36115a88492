"""The runs of assignment_4a.py on disk: find them (every folder of runs/), read and validate each metrics.json and
config.json, and select the set the report compares. A run is named by its folder as it is now."""
import hashlib
import json
import os
import sys

import assignment_4a


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


def run_precision(m):
    """The precision a run's epochs ran in, as assignment_4a.py records it; None where it did not (older versions
    recorded only the --precision asked for)."""
    ran = {h.get("precision") for h in m["epochs"]}
    return ran.pop() if len(ran) == 1 and None not in ran else ("mixed" if None not in ran else None)
