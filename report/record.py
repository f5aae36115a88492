"""report/record.json: what make_report.py built the report from, and what it wrote.

make_report.py writes it beside report.md: the student's name and ID, every input it read (each file of the run
folders, the photos, the maps, comments.md, the dataset's manifest) with its size, mtime and SHA-256, whether the maps
were up to date with the photos, and the digests of the report.md and report.pdf it wrote. make_package.py decides
from it alone: it lists the inputs again by the same rules, recomputes the digests, and names every file that
changed, appeared or vanished since. It reads no report text. Standard library only (make_package needs no PyTorch).
"""
import hashlib
import json
import os
import re

RECORD_FILE = "record.json"
VERSION = 1
# the files of a run folder the report reads (and make_package packs): its records and TensorBoard's events
RUN_FILES = re.compile(r"^(events\.out\.tfevents\..*|config\.json|metrics\.json|val_predictions\.csv)$")
REPORT_CMD = "python report/make_report.py"
SALIENCY_CMD = "python assignment_4b.py"


def digest(path):
    """-> {"size", "mtime", "sha256"} of a file."""
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
    st = os.stat(path)
    return {"size": st.st_size, "mtime": round(st.st_mtime, 3), "sha256": sha.hexdigest()}


def rel(path, root):
    """A path as the record names it: relative to the project with / (absolute where it lies outside)."""
    path = os.path.abspath(path)
    inside = os.path.commonpath([path, os.path.abspath(root)]) == os.path.abspath(root)
    return os.path.relpath(path, root).replace(os.sep, "/") if inside else path.replace(os.sep, "/")


def files_of(kind, path):
    """The files a source holds, by its kind: "runs" (each run folder's RUN_FILES), "folder" (every file, in
    subfolders too), "top" (the files of the folder itself: assignment_4b.py searches no subfolder), "file" (the file
    itself). Hidden files and folders are not inputs."""
    if kind == "file":
        return [path] if os.path.isfile(path) else []
    out = []
    for dirpath, dirnames, files in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__pycache__")))
        depth = os.path.relpath(dirpath, path).count(os.sep) + (dirpath != path)
        for f in sorted(files):
            if f.startswith(".") or not os.path.isfile(os.path.join(dirpath, f)):
                continue
            if (kind == "runs" and (depth != 1 or not RUN_FILES.match(f))) or (kind == "top" and depth != 0):
                continue
            out.append(os.path.join(dirpath, f))
    return out


def inputs(sources, root):
    """-> {path as recorded: digest} of every file the sources hold now."""
    return {rel(f, root): digest(f) for kind, path in sources.values() for f in files_of(kind, path)}


def write(out_dir, sources, outputs, name, student_id, maps_out_of_date=None, pdf_written=True):
    """Write <out_dir>/record.json. sources: {what: (kind, path)}; outputs: the files written (report.md, and
    report.pdf unless --no-pdf); maps_out_of_date: why the maps do not match the photos, or None."""
    root = os.path.dirname(os.path.abspath(out_dir))
    record = {"version": VERSION, "written_by": "report/make_report.py", "name": name, "student_id": student_id,
              "sources": {k: [kind, rel(path, root)] for k, (kind, path) in sources.items()},
              "inputs": inputs(sources, root), "outputs": {rel(f, root): digest(f) for f in outputs},
              "pdf_written": pdf_written, "maps_out_of_date": maps_out_of_date}
    path = os.path.join(out_dir, RECORD_FILE)
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)
    return path


def read(root):
    """-> the record of <root>/report/, or None where make_report.py has not written one."""
    try:
        with open(os.path.join(root, "report", RECORD_FILE), encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("version") == VERSION else None


def differences(record, root):
    """-> [(path, what happened)]: each input that changed, appeared or vanished since the record, each output not
    the one it names, and a report.pdf left from before a --no-pdf run."""
    def at(p):
        return p if os.path.isabs(p) else os.path.join(root, p)
    sources = {k: (kind, at(p)) for k, (kind, p) in record["sources"].items()}
    now, then = inputs(sources, root), record["inputs"]
    found = [(p, "changed") for p in sorted(set(now) & set(then)) if now[p]["sha256"] != then[p]["sha256"]]
    found += [(p, "appeared") for p in sorted(set(now) - set(then))]
    found += [(p, "vanished") for p in sorted(set(then) - set(now))]
    for p, d in record["outputs"].items():
        if not os.path.isfile(at(p)):
            found.append((p, "vanished"))
        elif digest(at(p))["sha256"] != d["sha256"]:
            found.append((p, "changed"))
    md = next((p for p in record["outputs"] if p.endswith("report.md")), "report/report.md")
    pdf = md[:-len(".md")] + ".pdf"
    if not record["pdf_written"] and os.path.isfile(at(pdf)):
        found.append((pdf, "is older than report.md (make_report.py ran with --no-pdf)"))
    return found


def mend(found, record):
    """The commands that make the report describe the files again: 4b first where a photo or a map moved."""
    maps = record.get("sources", {}).get("saliency", [None, "report/saliency"])[1]
    photos = record.get("sources", {}).get("images", [None, "My-Images"])[1]
    if record.get("maps_out_of_date") or any(p.startswith((photos + "/", maps + "/")) for p, _ in found):
        return f"`{SALIENCY_CMD}`, then `{REPORT_CMD}`"
    return f"`{REPORT_CMD}`"


def problem(root):
    """-> why the report does not describe what would be packed, naming each file and the command that mends it;
    or None."""
    record = read(root)
    if record is None:
        return None
    found = differences(record, root)
    words = [f"{p} {what}" for p, what in found[:6]] + ([f"and {len(found) - 6} more"] if len(found) > 6 else [])
    why = []
    if found:
        why.append(f"since make_report.py last ran, {', '.join(words)}")
    if record.get("maps_out_of_date"):
        why.append(f"the saliency maps it shows are not up to date with the photos ({record['maps_out_of_date']})")
    if not why:
        return None
    return "; ".join(why) + f": run {mend(found, record)} and pack again"
