"""Turn any supported file into a :class:`ParsedDocument`.

PDFs go through :mod:`ingest.pdf`; every other format through unstructured, whose
elements become our blocks (titles with their depth, tables as Markdown, list items,
text). Failures become :class:`ParseError` subclasses with a reason fit for a report.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

from ingest._offline import prepare_offline
from ingest.blocks import Block, CorruptDocument, EncryptedDocument, ParsedDocument, ParseError, UnsupportedFormat
from ingest.limits import ParseLimits
from ingest.markdown import parse_markdown
from ingest.pdf import parse_pdf
from ingest.tables import html_to_markdown_table
from ingest.text import decode_bytes, parse_delimited, parse_plain, parse_text

log = logging.getLogger(__name__)

#: extensions handed to unstructured, by what they are
OFFICE = {".docx", ".pptx", ".xlsx", ".xlsm", ".doc", ".ppt", ".xls", ".odt", ".odp", ".ods", ".rtf", ".epub"}
WEB = {".html", ".htm", ".xhtml", ".xml"}
MARKDOWN = {".md", ".markdown"}  # read by ingest.markdown
MARKUP = MARKDOWN | {".rst", ".org"}
TEXT = {".txt", ".text", ".log"}
#: read as plain text, line by line: source code, configuration, JSON lines, logs
PLAIN = {
    ".py", ".pyi", ".js", ".mjs", ".ts", ".tsx", ".jsx", ".java", ".kt", ".scala", ".go", ".rs", ".c", ".h",
    ".cc", ".cpp", ".hpp", ".cs", ".rb", ".php", ".pl", ".swift", ".r", ".m", ".sql", ".sh", ".bash", ".ps1",
    ".lua", ".css", ".scss", ".tex", ".json", ".jsonl", ".ndjson", ".yaml", ".yml", ".toml", ".ini", ".cfg",
    ".conf", ".properties", ".env", ".out", ".err",
}
DATA = {".csv", ".tsv"}
MAIL = {".eml", ".msg"}
SUPPORTED = {".pdf"} | OFFICE | WEB | MARKUP | TEXT | PLAIN | DATA | MAIL

_OOXML = {".docx", ".pptx", ".xlsx", ".xlsm"}
#: the part that tells which Office package a zip is
_OOXML_PART = {"word/": ".docx", "ppt/": ".pptx", "xl/": ".xlsx"}
_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_LEGACY_ODF = {".odp": "presentation", ".ods": "spreadsheet"}


def needs_unstructured(path: Path) -> bool:
    """Whether this file is parsed through unstructured (office, web, markup, mail), whose first use
    in a process costs seconds (its imports, the spaCy model): see :func:`warm_up`."""
    ext = Path(path).suffix.lower()
    return ext in SUPPORTED and ext not in {".pdf"} | MARKDOWN | TEXT | PLAIN | DATA


def warm_up() -> None:
    """Import unstructured and load its spaCy model now (the parser process does it in a thread
    when a job holds such files, while it parses the others and the embedder loads)."""
    from ingest._offline import prepare_offline

    prepare_offline()
    from unstructured.nlp import tokenize
    from unstructured.partition.auto import partition  # noqa: F401

    tokenize._get_nlp()


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED


def _ooxml_kind(path: Path) -> str:
    """'.docx', '.pptx' or '.xlsx' for an Office zip package, else ''."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile:
        return ""
    if "[Content_Types].xml" not in names:
        return ""
    for prefix, kind in _OOXML_PART.items():
        if any(n.startswith(prefix) for n in names):
            return kind
    return ""


def _sniff(path: Path) -> str:
    """What the first bytes say the file is: pdf, zip, cfb, or ''."""
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(b"%PDF"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head == _CFB_MAGIC:
        return "cfb"
    return ""


def parse_file(path: Path, *, ocr: bool = True, limits: ParseLimits | None = None) -> ParsedDocument:
    """Parse one file. Raises ParseError (or a subclass) with a short reason."""
    path = Path(path)
    limits = limits or ParseLimits()
    ext = path.suffix.lower()
    if ext not in SUPPORTED:
        raise UnsupportedFormat(f"unsupported file type {ext or '(no extension)'!r}")
    if path.stat().st_size == 0:
        return ParsedDocument(notes=["empty file (0 bytes)"])
    magic = _sniff(path)
    if magic == "zip":
        limits.check_unzipped(path)  # before any library unpacks it
    if ext == ".pdf" or magic == "pdf":
        if magic == "zip" and _ooxml_kind(path):  # an Office file under a .pdf name
            return _parse_office(path, _ooxml_kind(path))
        return parse_pdf(path, ocr=ocr, limits=limits)
    if ext in _OOXML:
        if magic == "cfb":
            raise EncryptedDocument("password-protected Office file (encrypted container)")
        if magic != "zip":
            raise CorruptDocument(f"not a valid {ext[1:]} file (it is not a zip package)")
        try:
            zipfile.ZipFile(path).close()
        except zipfile.BadZipFile as exc:
            raise CorruptDocument(f"damaged {ext[1:]} file ({exc})") from exc
        kind = _ooxml_kind(path)
        if not kind:
            raise CorruptDocument(f"not a {ext[1:]} document: a zip archive without Office content")
        return _parse_office(path, kind)
    if ext in TEXT:
        return parse_text(path)
    if ext in MARKDOWN:
        return parse_markdown(path)
    if ext in PLAIN:
        return parse_plain(path)
    if ext in DATA:
        return parse_delimited(path)
    if ext in _LEGACY_ODF:
        return _parse_via_libreoffice(path, "pptx" if ext == ".odp" else "xlsx")
    doc = _parse_unstructured(path)
    if doc.is_empty and ext == ".eml":
        doc = parse_email_fallback(path)
    return doc


def _parse_office(path: Path, kind: str) -> ParsedDocument:
    """OOXML through unstructured, with two fallbacks: LibreOffice for files python-docx
    cannot open (ISO Strict), and the package's raw XML text when the parser sees nothing
    (text in drawings and text boxes)."""
    try:
        doc = _parse_unstructured(path, kind=kind)
    except ParseError as first:
        try:
            doc = _parse_via_libreoffice(path, kind[1:], source_kind=kind)
        except ParseError:
            raise first from None
    if doc.is_empty:
        raw = ooxml_raw_text(path)
        if raw.blocks:
            raw.notes.append("text read from the package XML (drawings or text boxes)")
            return raw
    return doc


def _parse_unstructured(path: Path, kind: str | None = None) -> ParsedDocument:
    prepare_offline()
    from unstructured.partition.auto import partition

    kwargs: dict = {"strategy": "fast"}
    if kind == ".xlsx" or path.suffix.lower() == ".xlsm":
        from unstructured.partition.xlsx import partition_xlsx as partition  # type: ignore[no-redef]

        kwargs = {}
    elif kind and kind != path.suffix.lower():
        from unstructured.file_utils.model import FileType

        kwargs["content_type"] = FileType.from_extension(kind).mime_type
    if path.suffix.lower() in MAIL:
        kwargs["process_attachments"] = False
    try:
        elements = partition(filename=str(path), **kwargs)
    except ParseError:
        raise
    except zipfile.BadZipFile as exc:
        raise CorruptDocument(f"damaged file ({exc})") from exc
    except (FileNotFoundError, OSError) as exc:
        raise ParseError(f"could not read the file ({exc})") from exc
    except Exception as exc:  # unstructured raises many kinds; report them all the same way
        text = f"{type(exc).__name__}: {exc}".strip()
        low = text.lower()
        if "password" in low or "encrypt" in low:
            raise EncryptedDocument("encrypted document") from exc
        if "soffice" in low or "libreoffice" in low:
            raise ParseError("needs LibreOffice (soffice) to read this legacy format; install it and retry") from exc
        if "pandoc" in low:
            raise ParseError("needs pandoc to read this format; install pypandoc-binary and retry") from exc
        raise CorruptDocument(f"could not be parsed ({text[:200]})") from exc
    return elements_to_document(elements)


def _parse_via_libreoffice(path: Path, target: str, *, source_kind: str | None = None) -> ParsedDocument:
    """ODF presentations and spreadsheets: unstructured has no partitioner; convert first."""
    import shutil
    import subprocess
    import tempfile

    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if not soffice:
        raise UnsupportedFormat(f"{path.suffix} needs LibreOffice (soffice) to convert; install it and retry")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / ("in" + (source_kind or path.suffix))
        shutil.copyfile(path, src)
        outdir = Path(tmp) / "out"
        res = subprocess.run(
            [soffice, "--headless", f"-env:UserInstallation=file://{tmp}/profile", "--convert-to", target,
             "--outdir", str(outdir), str(src)],
            capture_output=True, text=True, timeout=180,
        )
        out = outdir / ("in." + target)
        if res.returncode != 0 or not out.exists():
            raise CorruptDocument(f"LibreOffice could not convert it ({res.stderr.strip()[:200]})")
        return _parse_unstructured(out)


_SKIP = {"PageBreak", "Header", "Footer", "PageNumber", "Image", "Figure", "FigureCaption_"}


def elements_to_document(elements) -> ParsedDocument:
    doc = ParsedDocument()
    pages: set[int] = set()
    last_sheet = None
    for el in elements:
        cat = type(el).__name__
        md = el.metadata
        page = getattr(md, "page_number", None)
        if page:
            pages.add(page)
        sheet = getattr(md, "page_name", None)
        if sheet and sheet != last_sheet:
            doc.blocks.append(Block("title", str(sheet), page, 0))
            last_sheet = sheet
        if cat in _SKIP:
            continue
        text = (el.text or "").strip()
        if cat == "Table":
            html = getattr(md, "text_as_html", None)
            table = html_to_markdown_table(html) if html else ""
            text = table or text
            if text:
                doc.blocks.append(Block("table", text, page))
            continue
        if not text:
            continue
        subject = getattr(md, "subject", None)
        if subject and not doc.title:
            doc.title = subject
            doc.blocks.insert(0, Block("title", subject, page, 0))
        if cat == "Title":
            depth = getattr(md, "category_depth", None) or 0
            doc.blocks.append(Block("title", text, page, int(depth)))
        elif cat == "ListItem":
            doc.blocks.append(Block("list", "- " + text, page))
        else:
            doc.blocks.append(Block("text", text, page))
    doc.pages = max(pages) if pages else None
    return doc


def ooxml_raw_text(path: Path) -> ParsedDocument:
    """Every text run (w:t, a:t) in an Office package's XML parts, paragraph by paragraph."""
    import re
    from xml.etree import ElementTree

    doc = ParsedDocument()
    with zipfile.ZipFile(path) as zf:
        parts = sorted(n for n in zf.namelist() if n.endswith(".xml") and re.match(r"(word|ppt/slides|xl)/", n))
        for name in parts:
            try:
                root = ElementTree.fromstring(zf.read(name))
            except ElementTree.ParseError:
                continue
            for para in root.iter():
                if not para.tag.endswith("}p"):
                    continue
                text = "".join(t.text or "" for t in para.iter() if t.tag.endswith("}t")).strip()
                if text:
                    doc.blocks.append(Block("text", text))
    return doc


def parse_email_fallback(path: Path) -> ParsedDocument:
    """The standard library's reading of a message: every text part, nested ones too."""
    import email
    from email import policy

    msg = email.message_from_bytes(Path(path).read_bytes(), policy=policy.default)
    doc = ParsedDocument()
    subject = msg.get("subject")
    if subject:
        doc.title = str(subject)
    for part in msg.walk():
        if part.get_content_maintype() != "text" or part.get_filename():
            continue
        try:
            payload = part.get_payload(decode=True) or b""
        except Exception:  # malformed transfer encoding
            continue
        text = decode_bytes(payload)
        if part.get_content_subtype() == "html":
            import re

            text = re.sub(r"<[^>]+>", " ", text)
        for para in text.split("\n\n"):
            para = " ".join(para.split())
            if para:
                doc.blocks.append(Block("text", para))
    if doc.blocks and subject:
        doc.blocks.insert(0, Block("title", str(subject), None, 0))
    return doc
