"""PDF text with pypdfium2 (fast, permissive licence); scanned pages through tesseract.

unstructured's PDF path (pdfminer) is an order of magnitude slower on text PDFs and its
layout models need a download, so text PDFs are read here. A page with no text layer is
sent to tesseract when it is installed; otherwise the document notes "no text layer".
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ingest.blocks import Block, CorruptDocument, EncryptedDocument, ParsedDocument
from ingest.limits import ParseLimits, TooLarge
from ingest.headings import BULLET as _BULLET, SENTENCE_END as _SENTENCE_END, looks_like_heading

OCR_MIN_CHARS = 16
_PAGE_NUMBER = re.compile(r"^(page\s*)?\d{1,4}(\s*(of|/)\s*\d{1,4})?$", re.IGNORECASE)


def tesseract_available() -> bool:
    return shutil.which("tesseract") is not None


#: a table cell a PDF's text layer gives as a word: 1,745.9  (12.5)  $0.94  18%  -  n/a
_CURRENCY = frozenset("$€£¥")
_CELL = re.compile(r"[(\-–—]?[$€£¥]?\d[\d,]*(?:\.\d+)?%?\)?|[-–—]|n/?a", re.IGNORECASE)


def _table_line(line: str) -> bool:
    """Whether a line of a page reads as a table row: cells between pipes ("| Revenue | 1,745.9 |"), or a
    label followed by two or more figures ("Diluted earnings per share 0.94 1.18"); a sentence that ends
    on a number ("... rose in 2022 and 2023.") is not one."""
    if line.startswith("|") and line.endswith("|") and line.count("|") >= 3:
        return True
    words = line.split()
    while words and words[-1] in _CURRENCY:
        words.pop()  # a sign after the last figure
    return len(_cells(" ".join(words))[1]) >= 2 and not line.rstrip().endswith(".")


def _cells(line: str) -> tuple[str, list[str]]:
    """A table line as its label and its figures, a currency sign set apart joined to its figure:
    "Revenue $ 1,745.9 1,477.9" -> ("Revenue", ["$1,745.9", "1,477.9"]) ("$ 81,797": the sign set apart
    from its figure)."""
    words = line.split()
    cells: list[str] = []
    while words:
        word = words[-1]
        if word in _CURRENCY and cells:
            cells[0] = word + cells[0]
        elif _CELL.fullmatch(word):
            cells.insert(0, word)
        else:
            break
        words.pop()
    return " ".join(words), cells


_YEAR = re.compile(r"(?<![\d.,])(?:19|20)\d{2}(?![\d.,%])")
_DAY = re.compile(r"\d{1,2},?")


def _other_figures(text: str) -> bool:
    """Whether ``text`` holds a figure other than a year or a day of the month."""
    return any(any(ch.isdigit() for ch in w) and not _YEAR.fullmatch(w.strip(",.")) and not _DAY.fullmatch(w)
               for w in text.replace("|", " ").split())


def _column_labels(line: str) -> list[str]:
    """The column heads a header line names, one per year, each ending with its year: "Three Months
    Ended March 31, 2024 Three Months Ended March 31, 2023" -> both spans; "2023 2022 2021" -> the three
    years. None (``[]``) when the line holds a figure other than a year or a day of the month: then it
    is a row of data."""
    years = list(_YEAR.finditer(line))
    if len(years) < 2 or _other_figures(line):
        return []
    labels, at = [], 0
    for m in years:
        labels.append(line[at:m.end()].strip(" ,|"))
        at = m.end()
    return labels


def _figures_table(header: str, rows: list[str]) -> str | None:
    """Figure lines under a header of years, as a Markdown table: what a PDF's text layer gives of a
    statement without rules ("Year Ended December 31, 2023 Year Ended December 31, 2022" then
    "Revenue 1,745.9 1,477.9"), read back with its columns so that a row says which year each figure
    is. A line naming a part of the statement ("Operating expenses:") is a row of its own, without
    figures. None where the header or any row does not fit the columns: the lines stay lines."""
    labels = _column_labels(header)
    if not labels:
        return None
    body = []
    for row in rows:
        label, cells = _cells(row)
        if not cells and label.endswith(":"):
            body.append((label, [""] * len(labels)))
            continue
        if len(cells) < len(labels) or not label:
            return None
        body.append((" ".join([label] + cells[:-len(labels)]), cells[-len(labels):]))
    lines = ["| | " + " | ".join(labels) + " |", "|" + " --- |" * (len(labels) + 1)]
    lines += [" ".join(("| " + " | ".join([label] + cells) + " |").split()) for label, cells in body]
    return "\n".join(lines)


def _rows_block(header: list[str], rows: list[str], page: int) -> Block:
    """Consecutive table lines as one block, a line each, so that every row is read as a unit of its own:
    rows between pipes as a Markdown table (the first is its header); figures under a header of years
    (``header``, the lines above them, or their first line) as one too (:func:`_figures_table`); other
    figures as lines of text."""
    if not header and all(r.startswith("|") for r in rows):
        width = rows[0].count("|") - 1
        return Block("table", "\n".join([rows[0], "|" + " --- |" * width] + rows[1:]), page)
    table = (_figures_table(" ".join(header), rows) if header
             else _figures_table(rows[0], rows[1:]) if len(rows) > 1 else None)
    return Block("table", table, page) if table else Block("text", "\n".join(header + rows), page)


#: how many lines above a table its header of years may take ("Years ended" / "September 30," / "2023" / ...)
HEADER_LINES = 8


def _header_above(lines: list[str], start: int, width: int) -> int | None:
    """Where the header of the table starting at line ``start`` begins, when the lines just above it
    name its ``width`` columns' years and nothing else ("September 30," / "2023" / "September 24," /
    "2022", as a text layer gives a header whose cells wrap), with the short lines above them that
    name no year ("Years ended"); None when they do not."""
    found = None
    for top in range(start - 1, max(-1, start - 1 - HEADER_LINES), -1):
        line = lines[top]
        if not line or _table_line(line) or line.endswith(".") or len(line) > 80:
            break
        above = " ".join(lines[top:start])
        if _other_figures(above):
            break
        labels = _column_labels(above)
        if found is None:
            if len(labels) > width:
                break
            found = top if len(labels) == width else None
            continue
        short = len(line.split()) <= 5 and not line.isupper() and not line.startswith("(")
        if _YEAR.search(line) or not short or len(labels) != width:
            break
        found = top
    return found


def _part_line(line: str) -> bool:
    """A line naming a part of a statement, above its rows: "Operating expenses:", "Current assets:"."""
    return line.endswith(":") and len(line.split()) <= 8 and not _other_figures(line)


def _table_runs(lines: list[str]) -> dict[int, tuple[int, int, int]]:
    """The tables of a page's lines: per first line, (where its rows start, where they end, how many
    are figure lines). Rows are two or more table lines (:func:`_table_line`), with the lines naming a
    part of the statement between them ("Operating expenses:"); a header of years above them
    (:func:`_header_above`) starts the table."""
    runs: dict[int, tuple[int, int, int]] = {}
    i = 0
    while i < len(lines):
        if not (lines[i] and _table_line(lines[i])):
            i += 1
            continue
        j, figures = i, 0
        while j < len(lines):
            if lines[j] and _table_line(lines[j]):
                figures += 1
            elif not (_part_line(lines[j]) and j + 1 < len(lines) and lines[j + 1] and _table_line(lines[j + 1])):
                break
            j += 1
        width = len(_cells(lines[i])[1])
        first = i  # a line naming a part of the statement may open it, under the header ("Net sales:")
        while first > 0 and _part_line(lines[first - 1]):
            first -= 1
        top = _header_above(lines, first, width) if not _column_labels(lines[i]) else None
        runs[i if top is None else top] = (i if top is None else first, j, figures)
        i = j
    return runs


def _page_blocks(text: str, page: int) -> list[Block]:
    """Split a page's text into heading, paragraph and table blocks (two or more table lines in a row:
    :func:`_table_runs`)."""
    blocks: list[Block] = []
    para: list[str] = []

    def flush():
        if para:
            blocks.append(Block("text", " ".join(para), page))
            para.clear()

    lines = [ln.strip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    runs = _table_runs(lines)
    i = 0
    while i < len(lines):
        line = lines[i]
        if i in runs and runs[i][2] >= 2:
            rows_at, end, _ = runs[i]
            flush()
            blocks.append(_rows_block(lines[i:rows_at], lines[rows_at:end], page))
            i = end
            continue
        i += 1
        if line and _table_line(line):
            para.append(line)  # one line of figures is part of its paragraph
            continue
        if not line or (_PAGE_NUMBER.match(line) and not _YEAR.fullmatch(line)):  # a bare year is text ("2023")
            flush()
            continue
        nxt = lines[i] if i < len(lines) else ""
        if looks_like_heading(line) and (not para or _SENTENCE_END.search(para[-1]) or para[-1].endswith(":")) and nxt:
            flush()
            blocks.append(Block("title", line, page))
        elif _BULLET.match(line):
            flush()
            para.append(line)
        else:
            if para and para[-1].endswith("-") and not para[-1].endswith(" -"):
                para[-1] = para[-1][:-1] + line  # re-join a hyphenated word
            else:
                para.append(line)
            if _SENTENCE_END.search(line) and len(line) < 60:
                flush()  # a short line that ends a sentence ends its paragraph
    flush()
    return blocks


def _ocr_page(page, lang: str = "eng", limits: ParseLimits | None = None) -> str:
    width, height = page.get_size()
    image = page.render(scale=(limits or ParseLimits()).ocr_scale(width, height)).to_pil()
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "page.png"
        image.save(png)
        res = subprocess.run(
            ["tesseract", str(png), "stdout", "-l", lang, "--psm", "1"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    return res.stdout if res.returncode == 0 else ""


def parse_pdf(path: Path, *, ocr: bool = True, password: str | None = None,
              limits: ParseLimits | None = None) -> ParsedDocument:
    import pypdfium2 as pdfium

    if path.stat().st_size == 0:
        return ParsedDocument(notes=["empty file (0 bytes)"])
    try:
        pdf = pdfium.PdfDocument(str(path), password=password)
    except pdfium.PdfiumError as exc:
        msg = str(exc).lower()
        if "password" in msg:
            raise EncryptedDocument("encrypted PDF: it needs a password to open") from exc
        raise CorruptDocument(f"not a readable PDF ({exc})") from exc
    limits = limits or ParseLimits()
    try:
        limits.check_pages(len(pdf))
    except TooLarge:
        pdf.close()
        raise
    doc = ParsedDocument(pages=len(pdf))
    scanned: list[int] = []
    use_ocr = ocr and tesseract_available()
    try:
        for i in range(len(pdf)):
            page = pdf[i]
            text = page.get_textpage().get_text_range()
            if len(text.strip()) < OCR_MIN_CHARS:
                if use_ocr:
                    text = _ocr_page(page, limits=limits)
                scanned.append(i + 1)
            doc.blocks.extend(_page_blocks(text, i + 1))
    finally:
        pdf.close()
    if scanned:
        pages = ", ".join(map(str, scanned[:10])) + ("…" if len(scanned) > 10 else "")
        doc.notes.append(
            f"page(s) {pages} read by OCR" if use_ocr else f"no text layer on page(s) {pages} (install tesseract for OCR)"
        )
    return doc
