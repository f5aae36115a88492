"""The student's own words: report/comments.md, its template with the sheet's questions, and its text placed after
each part's generated reading. Reads nothing else."""
import os
import re
import sys


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
