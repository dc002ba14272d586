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
    cells = 0
    for word in reversed(line.split()):
        if word in _CURRENCY:
            continue  # "$ 81,797": the sign set apart from its figure
        if not _CELL.fullmatch(word):
            break
        cells += 1
    return cells >= 2 and not line.rstrip().endswith(".")


def _cells(line: str) -> tuple[str, list[str]]:
    """A table line as its label and its figures, a currency sign set apart joined to its figure:
    "Revenue $ 1,745.9 1,477.9" -> ("Revenue", ["$1,745.9", "1,477.9"])."""
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


def _column_labels(line: str) -> list[str]:
    """The column heads a header line names, one per year, each ending with its year: "Three Months
    Ended March 31, 2024 Three Months Ended March 31, 2023" -> both spans; "2023 2022 2021" -> the three
    years. None (``[]``) when the line holds a figure other than a year or a day of the month: then it
    is a row of data."""
    years = list(_YEAR.finditer(line))
    others = [w for w in line.replace("|", " ").split()
              if any(ch.isdigit() for ch in w) and not _YEAR.fullmatch(w.strip(",.")) and not _DAY.fullmatch(w)]
    if len(years) < 2 or others:
        return []
    labels, at = [], 0
    for m in years:
        labels.append(line[at:m.end()].strip(" ,|"))
        at = m.end()
    return labels


def _figures_table(rows: list[str]) -> str | None:
    """Figure lines under a header line of years, as a Markdown table: what a PDF's text layer gives
    of a statement without rules ("Year Ended December 31, 2023 Year Ended December 31, 2022" then
    "Revenue 1,745.9 1,477.9"), read back with its columns so that a row says which year each figure
    is. None where the header or any row does not fit the columns: the lines stay lines."""
    labels = _column_labels(rows[0])
    if not labels:
        return None
    body = []
    for row in rows[1:]:
        label, cells = _cells(row)
        if len(cells) < len(labels) or not label:
            return None
        body.append((" ".join([label] + cells[:-len(labels)]), cells[-len(labels):]))
    lines = ["| | " + " | ".join(labels) + " |", "|" + " --- |" * (len(labels) + 1)]
    lines += ["| " + " | ".join([label] + cells) + " |" for label, cells in body]
    return "\n".join(lines)


def _rows_block(rows: list[str], page: int) -> Block:
    """Consecutive table lines as one block, a line each, so that every row is read as a unit of its own:
    rows between pipes as a Markdown table (the first is its header); figures under a header line of
    years as one too (:func:`_figures_table`); other figures as lines of text."""
    if all(r.startswith("|") for r in rows):
        width = rows[0].count("|") - 1
        return Block("table", "\n".join([rows[0], "|" + " --- |" * width] + rows[1:]), page)
    table = _figures_table(rows)
    return Block("table", table, page) if table else Block("text", "\n".join(rows), page)


def _page_blocks(text: str, page: int) -> list[Block]:
    """Split a page's text into heading, paragraph and table blocks (two or more table lines in a row:
    :func:`_table_line`)."""
    blocks: list[Block] = []
    para: list[str] = []
    rows: list[str] = []

    def flush():
        if para:
            blocks.append(Block("text", " ".join(para), page))
            para.clear()

    def flush_rows():
        if len(rows) >= 2:
            flush()
            blocks.append(_rows_block(rows, page))
        else:
            para.extend(rows)  # one line of figures is part of its paragraph
        rows.clear()

    lines = [ln.strip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    for i, line in enumerate(lines):
        if line and _table_line(line):
            rows.append(line)
            continue
        flush_rows()
        if not line or _PAGE_NUMBER.match(line):
            flush()
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
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
    flush_rows()
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
