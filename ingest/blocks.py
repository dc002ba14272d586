"""What a parser hands the chunker: a document as an ordered list of typed blocks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Block:
    """One structural piece of a document.

    kind: ``title`` (a heading; ``level`` 0 is the top), ``text``, ``list`` or ``table``.
    Tables are Markdown text with one row per line, so rows can be kept together.
    """

    kind: str
    text: str
    page: int | None = None
    level: int = 0


@dataclass
class ParsedDocument:
    """A parsed file: its blocks, page count where it has pages, and notes for the report."""

    blocks: list[Block] = field(default_factory=list)
    pages: int | None = None
    notes: list[str] = field(default_factory=list)
    title: str | None = None

    @property
    def is_empty(self) -> bool:
        return not any(b.text.strip() for b in self.blocks)


class ParseError(Exception):
    """A file could not be read. ``reason`` is short and meant for the report."""

    kind = "error"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class UnsupportedFormat(ParseError):
    kind = "unsupported"


class EncryptedDocument(ParseError):
    kind = "encrypted"


class CorruptDocument(ParseError):
    kind = "corrupt"


class ParseTimeout(ParseError):
    kind = "timeout"
