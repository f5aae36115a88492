"""Whose words the report holds: every generated part says a program wrote it, and the student's own comments
(report/comments.md, written by hand) stand after the part they are about, in report.md and in the PDF."""
import re

from conftest import load_report_script

COMMENTS = """<!-- the template's guidance, which is not the student's text -->
## Part 1
My runs overfit after epoch 4.

## Questions
Freeze the features when the data are few.

## Part 2
The maps look at the bear.

- the shuttle's map is on the smoke
- the football is cut off by the crop
"""


def build(tmp_path, comments=None, pdf=False):
    """A report with no runs or maps; comments: the text of report/comments.md, or None for no file."""
    out = tmp_path / "report"
    out.mkdir(parents=True)
    if comments is not None:
        (out / "comments.md").write_text(comments, encoding="utf-8")
    none = str(tmp_path / "none")
    load_report_script("make_report").main(
        ["--runs", none, "--saliency", none, "--paintings", none, "--extras", none, "--ground-truth", none, "--data",
         none, "--images", none, "--out", str(out), "--name", "Jane Doe", "--student-id", "1"]
        + ([] if pdf else ["--no-pdf"]))
    return (out / "report.md").read_text(encoding="utf-8")


def test_every_generated_part_says_a_program_wrote_it(tmp_path):
    """Catches: a report whose generated reading a TA takes for the student's own (the sheet counts a report written
    by a program as misconduct)."""
    md = build(tmp_path)
    for part in ("Part 1", "Part 2"):
        assert (f"*The sentences of {part} were generated from the numbers above by `report/make_report.py`, not "
                "written by the student.*") in md
    assert "*These answers come with this solution (`report/make_report.py`); they are not the student's own.*" in md


def test_the_students_comments_follow_the_part_they_are_about(tmp_path):
    """Catches: comments left out, put in the wrong part, or the template's <!-- --> guidance printed as if the
    student had written it."""
    md = build(tmp_path, COMMENTS)
    part1, questions, part2 = (md.index(h) for h in ("## Part 1", "## Theoretical questions", "## Part 2"))
    assert part1 < md.index("My runs overfit after epoch 4.") < questions
    assert questions < md.index("Freeze the features when the data are few.") < part2
    assert part2 < md.index("The maps look at the bear.") < md.index("## References")
    assert "- the shuttle's map is on the smoke\n- the football is cut off by the crop" in md
    assert "guidance" not in md and md.count("### Your comments") == 3


def test_the_students_comments_are_in_the_pdf(tmp_path):
    """Catches: comments that reach report.md but not the PDF the sheet asks for."""
    from pypdf import PdfReader
    build(tmp_path, COMMENTS, pdf=True)
    text = " ".join(p.extract_text() for p in PdfReader(tmp_path / "report" / "report.pdf").pages)
    assert "My runs overfit after epoch 4." in re.sub(r"\s+", " ", text)


def test_without_a_comments_file_a_template_is_written_and_nothing_is_added(tmp_path, capsys):
    """Catches: the template's questions printed in the report as the student's comments, or no template to fill."""
    md = build(tmp_path)
    template = (tmp_path / "report" / "comments.md").read_text(encoding="utf-8")
    assert "## Part 1" in template and "## Questions" in template and "## Part 2" in template
    assert "### Your comments" not in md
    assert "put your own comments there" in capsys.readouterr().out
    assert "### Your comments" not in build(tmp_path / "again", template)  # the untouched template adds nothing
