"""Plain text and delimited files, read directly: fast on large files, tolerant of
odd encodings and ragged rows (unstructured's text path classifies every paragraph with
spaCy, over a minute for a 3 MB novel)."""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

from ingest.blocks import Block, ParsedDocument
from ingest.headings import SENTENCE_END, looks_like_heading
from ingest.tables import rows_to_markdown

_BOMS = [
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]


def decode_bytes(data: bytes) -> str:
    """Decode with a BOM when present, else UTF-8, else the best guess, else cp1252."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return data.decode(enc, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        from charset_normalizer import from_bytes

        results = from_bytes(data[:200_000])
        # short Western text is ambiguous between the single-byte code pages; prefer the common one
        if any(r.encoding in ("cp1252", "latin_1", "iso8859_15") for r in results):
            return data.decode("cp1252", errors="replace")
        best = results.best()
        if best is not None:
            return data.decode(best.encoding, errors="replace")
    except ImportError:  # pragma: no cover
        pass
    return data.decode("cp1252", errors="replace")


def parse_text(path: Path) -> ParsedDocument:
    text = decode_bytes(Path(path).read_bytes()).replace("\r\n", "\n").replace("\r", "\n")
    doc = ParsedDocument()
    paras = [p.strip() for p in text.split("\n\n")]
    for para in paras:
        if not para:
            continue
        lines = [ln.strip() for ln in para.split("\n") if ln.strip()]
        # Setext-style underline ("Title\n=====") or a lone short heading line
        if len(lines) == 2 and set(lines[1]) <= set("=-~") and len(lines[1]) >= 3:
            doc.blocks.append(Block("title", lines[0], None, 0 if "=" in lines[1] else 1))
            continue
        if len(lines) == 1 and looks_like_heading(lines[0]) and not SENTENCE_END.search(lines[0]):
            doc.blocks.append(Block("title", lines[0], None, 0))
            continue
        doc.blocks.append(Block("text", " ".join(lines), None))
    return doc


def parse_plain(path: Path) -> ParsedDocument:
    """Source code, configuration, JSON lines: the text as it is, a block per paragraph with
    its line breaks kept (they carry the meaning); a file with NUL bytes is not text."""
    data = Path(path).read_bytes()
    if b"\x00" in data[:65536]:
        from ingest.blocks import CorruptDocument

        raise CorruptDocument(f"not a text file although named {Path(path).suffix.lower()} (it holds binary data)")
    text = decode_bytes(data).replace("\r\n", "\n").replace("\r", "\n")
    doc = ParsedDocument()
    for para in text.split("\n\n"):
        lines = [ln.rstrip() for ln in para.split("\n") if ln.strip()]
        if lines:
            doc.blocks.append(Block("text", "\n".join(lines), None))
    return doc


def parse_delimited(path: Path) -> ParsedDocument:
    text = decode_bytes(Path(path).read_bytes())
    sample = text[:20_000]
    delimiter = "\t" if Path(path).suffix.lower() == ".tsv" else ","
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        pass
    rows = [[c.strip() for c in row] for row in csv.reader(io.StringIO(text), delimiter=delimiter)]
    rows = [r for r in rows if any(r)]
    doc = ParsedDocument()
    if rows:
        doc.blocks.append(Block("table", rows_to_markdown(rows)))
    return doc
