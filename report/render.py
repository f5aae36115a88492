"""The report as a document: a list of blocks ("h1".."h3", "p", "list", "table", "img"), rendered to Markdown
(`to_markdown`) and to an A4 PDF (`to_pdf`) with fonts that can draw every character of it. Knows nothing of runs or
maps: make_report.py builds the blocks."""
import os
import re
import sys
import unicodedata

def to_markdown(blocks):
    out = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + md_text(b[1]))
        elif kind == "p":
            out.append(md_text(b[1]))
        elif kind == "list":
            out.append("\n".join(f"- {md_text(i)}" for i in b[1]))
        elif kind == "table":
            head, rows = [md_text(c, cell=True) for c in b[1]], [[md_text(c, cell=True) for c in r] for r in b[2]]
            out.append("\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                                 + ["| " + " | ".join(r) + " |" for r in rows]))
        elif kind == "img":
            out.append(f"![{md_text(b[2])}]({b[1]})\n\n*{md_text(b[2])}*")
    return "\n\n".join(out) + "\n"


FIGURE_WIDTH_MM = 160  # a figure's width on the page, unless its block gives another
PRINT_DPI = 150        # a figure's pixels per inch on the page: the PDF holds no more (report.pdf under 2 MB)
PHOTO_COLOURS = 4096   # a figure with more distinct colours (photographs, maps) goes in as JPEG; charts stay lossless
CELL_CHARS = 100  # a longer table cell (a 3,000-character style name) is cut: a row must fit on a page


def plain(text, cap=None):
    """Text with control characters (a newline, an escape) as spaces, and at most `cap` characters."""
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in str(text))
    return text if cap is None or len(text) <= cap else text[:cap - 1] + "\u2026"


def md_text(text, cell=False):
    """Text as Markdown will show it, whatever names (styles, artists, files, runs) it holds: outside `code` spans,
    the characters that make HTML, an image, a link or a table (\\ [ ] |, and < where a tag or an autolink could
    start) are escaped; in a table cell | is escaped inside code spans too (GFM's rule) and the cell is cut to
    CELL_CHARS. The report's own text uses only `code` and **bold**, so only what came from data changes."""
    parts = re.split(r"(`[^`]*`)", plain(text, CELL_CHARS if cell else None))
    return "".join(re.sub(r"([\\\[\]|]|<(?=[A-Za-z/!?]))", r"\\\1", p) if k % 2 == 0 else
                   p.replace("|", "\\|") if cell else p for k, p in enumerate(parts))


ITALIC = re.compile(r"(?<![*\w])\*(?![*\s])([^*\n]+?)(?<![*\s])\*(?![*\w])")  # Markdown's *italic*, not **bold**


def unmarked(text, cap=None):
    """Text where the PDF renders no Markdown (headings, table cells, captions): without its `code`, **bold** and
    *italic* marks, control characters as spaces, at most `cap` characters."""
    text = ITALIC.sub(r"\1", str(text).replace("`", "").replace("**", ""))
    return plain(text, cap)


def pdf_text(text):
    """Markdown-lite for fpdf: keep **bold**, *italic* as fpdf's __italic__ (a literal __ kept from meaning it, by a
    zero-width space), drop `code` marks, stop '--flag' from meaning underline and '[x](url)' from making a link (a
    soft hyphen, invisible, between ] and (), control characters as spaces."""
    text = plain(text).replace("`", "").replace("__", "_\u200b_").replace("--", "\u2011\u2011")
    return ITALIC.sub(r"__\1__", text).replace("](", "]\u00ad(")


def table_layout(pdf, head, rows, width, sizes=(9, 8.5, 8, 7.5, 7)):
    """-> (font size, column widths in mm) for a table `width` mm wide, so that a cell wraps only at spaces: every
    column at least as wide as its longest word (measured in the font, bold for the header), the space left shared
    out toward each column's longest cell (capped at 38 characters' worth); the largest size in `sizes` where the
    words fit (a table of more than 5 columns starts at 8 pt)."""
    pad = 2.2  # mm: fpdf2's cell padding on both sides, and a little air
    cols = list(zip(head, *rows))
    for size in [s for s in sizes if len(head) <= 5 or s <= 8]:
        least, most = [], []
        for k, col in enumerate(cols):
            word, cell = 0.0, 0.0
            for i, c in enumerate(col):
                text = unmarked(c, CELL_CHARS)
                pdf.set_font("DejaVu", "B" if i == 0 and any(head) else "", size)
                word = max([word] + [pdf.get_string_width(w) for w in text.split()])
                cell = max(cell, pdf.get_string_width(text[:38]))
            least.append(word + pad)
            most.append(max(cell, word) + pad)
        if sum(least) <= width or size == sizes[-1]:
            spare = max(width - sum(least), 0)
            want = [m - n for m, n in zip(most, least)]
            share = [spare * w / sum(want) if sum(want) else spare / len(want) for w in want]
            return size, tuple(n + s for n, s in zip(least, share))


# Fonts beyond DejaVu (Latin, Greek, Cyrillic) that the PDF falls back to where the system has them: CJK first
FALLBACK_FONTS = ["/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                  "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
                  "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
                  "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
                  "/System/Library/Fonts/PingFang.ttc", "/Library/Fonts/Arial Unicode.ttf",
                  "C:/Windows/Fonts/msyh.ttc", "C:/Windows/Fonts/malgun.ttf", "C:/Windows/Fonts/meiryo.ttc"]


def pdf_fonts():
    """-> DejaVu's three faces (matplotlib ships them) and the fallback fonts this machine has."""
    import matplotlib
    folder = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")
    faces = {style: os.path.join(folder, f"DejaVuSans{suffix}.ttf")
             for style, suffix in (("", ""), ("B", "-Bold"), ("I", "-Oblique"))}
    return faces, [f for f in FALLBACK_FONTS if os.path.isfile(f)]


def missing_glyph(blocks, fonts):
    """The first character of the document's text that none of the fonts can draw, and where it is; None if every
    one can. fpdf2 would leave a blank and only warn: a name written as "Name: ·" must not reach a grader."""
    from fontTools.ttLib import TTCollection, TTFont
    covered = set()
    for f in fonts:
        tables = TTCollection(f).fonts if f.lower().endswith(".ttc") else [TTFont(f, lazy=True)]
        for t in tables:
            covered.update(t.getBestCmap() or {})
    for b in blocks:
        texts = [b[1]] if isinstance(b[1], str) else [c for row in b[1:] if isinstance(row, list)
                                                     for r in row for c in (r if isinstance(r, list) else [r])]
        if b[0] == "img":
            texts = [b[2]]
        for text in texts:
            for ch in str(text):
                if ord(ch) >= 32 and ord(ch) not in covered and not 0xD800 <= ord(ch) <= 0xDFFF:
                    return ch, str(text)
    return None


def new_pdf(blocks):
    """An A4 FPDF with DejaVu and the system's fallback fonts, once every character of the blocks has a glyph in
    them; else one sentence and exit (report.md is written by then)."""
    from fpdf import FPDF
    faces, fallbacks = pdf_fonts()
    gap = missing_glyph(blocks, [faces[""]] + fallbacks)
    if gap:
        ch, text = gap
        sys.exit(f"error: no font on this machine can show {ch!r} (U+{ord(ch):04X}) in the report's text "
                 f"({text[:60]!r}...): install a font that has it (Linux: apt install fonts-noto-cjk; it is looked for "
                 "among " + ", ".join(dict.fromkeys(os.path.basename(f) for f in FALLBACK_FONTS)) + "), or write it in "
                 "Latin letters; report.md is written, the PDF is not")
    pdf = FPDF(format="A4")
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(True, 16)
    for style, face in faces.items():
        pdf.add_font("DejaVu", style, face)
    for k, f in enumerate(fallbacks):
        pdf.add_font(f"Fallback{k}", "", f)
    if fallbacks:
        pdf.set_fallback_fonts([f"Fallback{k}" for k in range(len(fallbacks))])
    return pdf


def to_pdf(blocks, path, base_dir):
    """The blocks as an A4 PDF. A figure that does not fit the room left on its page floats to the top of the next
    one, and the text after it (up to the next section, table or figure) fills the page first, as LaTeX floats do,
    instead of leaving the page's rest blank or shrinking the figure's text below print size."""
    pdf = new_pdf(blocks)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    pending = []  # figures waiting for the next page

    def room():
        return pdf.h - pdf.b_margin - pdf.get_y()

    def flush():
        if pending:
            pdf.add_page()
            while pending:
                draw_figure(pdf, *pending.pop(0), width)

    for b in blocks:
        kind = b[0]
        if pending and (kind in ("h1", "h2", "table", "img") or block_height(pdf, b, width) > room()):
            flush()
        if kind in ("h1", "h2", "h3") and block_height(pdf, b, width) + 25 > room():  # a heading keeps with its text
            if pending:
                flush()
            else:
                pdf.add_page()
        if kind in ("h1", "h2", "h3"):
            pdf.set_font("DejaVu", "B", {"h1": 17, "h2": 13.5, "h3": 11}[kind])
            pdf.ln(3)
            pdf.multi_cell(width, 7, unmarked(b[1]), align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        elif kind == "p":
            pdf.set_font("DejaVu", "", 9.5)
            pdf.multi_cell(width, 5, pdf_text(b[1]), markdown=True, align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        elif kind == "list":
            pdf.set_font("DejaVu", "", 9.5)
            for item in b[1]:
                pdf.multi_cell(width, 5, "•  " + pdf_text(item), markdown=True, align="L", new_x="LMARGIN",
                               new_y="NEXT")
            pdf.ln(2)
        elif kind == "table":
            draw_table(pdf, b[1], b[2], width)
        elif kind == "img":
            figure = figure_size(pdf, os.path.join(base_dir, b[1]), b, width)
            if figure[2] + 12 > room():  # with its caption it does not fit here: it floats to the next page
                pending.append(figure)
            else:
                draw_figure(pdf, *figure, width)
    flush()
    pdf.output(path)


def draw_table(pdf, head, rows, width):
    """A table `width` mm wide, laid out by table_layout so that its cells wrap only at spaces."""
    from fpdf.fonts import FontFace
    size, widths = table_layout(pdf, head, rows, width)
    pdf.set_font("DejaVu", "", size)
    with pdf.table(headings_style=FontFace(emphasis="BOLD"), line_height=size * 0.55, text_align="LEFT",
                   first_row_as_headings=bool(any(head)), width=width, col_widths=widths) as t:
        if any(head):
            t.row([unmarked(c, CELL_CHARS) for c in head])
        for r in rows:
            t.row([unmarked(c, CELL_CHARS) for c in r])
    pdf.ln(3)


def figure_size(pdf, img_path, block, width):
    """-> (path, w, h in mm, caption): the block's width (FIGURE_WIDTH_MM unless it gives one), scaled down only where
    the figure would be taller than a whole page."""
    from PIL import Image
    w_px, h_px = Image.open(img_path).size
    w = min(width, block[3] if len(block) > 3 else FIGURE_WIDTH_MM)
    h = w * h_px / w_px
    page = pdf.h - pdf.t_margin - pdf.b_margin - 14  # room for the caption
    if h > page:
        w, h = w * page / h, page
    return img_path, w, h, block[2]


def draw_figure(pdf, img_path, w, h, caption, width):
    pdf.image(print_image(img_path, w), x=pdf.l_margin + (width - w) / 2, w=w, h=h)
    pdf.set_font("DejaVu", "I", 8.5)
    pdf.multi_cell(width, 4.5, unmarked(caption), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)


def print_image(img_path, w_mm):
    """The figure as the PDF holds it: at most PRINT_DPI pixels per inch of its printed width, a photograph or map
    as JPEG (quality 88), a chart (few colours: lines, text) as it is, losslessly. -> a PIL image or JPEG bytes."""
    import io

    from PIL import Image
    with Image.open(img_path) as opened:
        im = opened.copy()
    target = round(w_mm / 25.4 * PRINT_DPI)
    if im.width > target:
        im = im.resize((target, max(1, round(im.height * target / im.width))), Image.LANCZOS)
    rgba = im.convert("RGBA")  # on white, as the page shows a transparent figure
    rgb = Image.new("RGB", rgba.size, "white")
    rgb.paste(rgba, mask=rgba.getchannel("A"))
    if rgb.getcolors(maxcolors=PHOTO_COLOURS) is not None:
        return rgb
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=88, optimize=True)
    out.seek(0)
    return out


def block_height(pdf, block, width):
    """How tall a heading, paragraph or list block will be, in mm (fpdf2's dry run)."""
    kind = block[0]
    if kind in ("h1", "h2", "h3"):
        pdf.set_font("DejaVu", "B", {"h1": 17, "h2": 13.5, "h3": 11}[kind])
        return 4 + pdf.multi_cell(width, 7, unmarked(block[1]), dry_run=True, output="HEIGHT")
    pdf.set_font("DejaVu", "", 9.5)
    texts = [block[1]] if kind == "p" else ["•  " + item for item in block[1]]
    return 2 + sum(pdf.multi_cell(width, 5, pdf_text(t), markdown=True, dry_run=True, output="HEIGHT")
                   for t in texts)
