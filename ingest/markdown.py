"""Markdown read directly (CommonMark with tables, by markdown-it-py): headings, paragraphs, list
items, tables and code as blocks, in milliseconds. Through unstructured the same file cost seconds
(Markdown to HTML, then spaCy loaded to classify each paragraph), taken from the embedding."""

from __future__ import annotations

import html
import re
from pathlib import Path

from ingest.blocks import Block, ParsedDocument
from ingest.tables import rows_to_markdown
from ingest.text import decode_bytes

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?:.*\n){0,60}?---[ \t]*\n", re.M)
_TAG = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"[ \t]+")


def _parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table")


def _plain(inline) -> str:
    """An inline token's text without its markup: emphasis and link syntax dropped, code kept,
    an image by its alt text, line breaks inside a paragraph as spaces."""
    out: list[str] = []
    for t in inline.children or []:
        if t.type in ("text", "code_inline"):
            out.append(t.content)
        elif t.type == "softbreak":
            out.append(" ")
        elif t.type == "hardbreak":
            out.append("\n")
        elif t.type == "image":
            out.append(t.content or "")
    return _SPACES.sub(" ", "".join(out)).strip()


def _table(tokens, i: int) -> tuple[str, int]:
    """The table starting at ``tokens[i]`` as Markdown rows (header first), and the index after it."""
    rows: list[list[str]] = []
    row: list[str] | None = None
    while tokens[i].type != "table_close":
        t = tokens[i]
        if t.type == "tr_open":
            row = []
        elif t.type == "inline" and row is not None:
            row.append(_plain(t))
        elif t.type == "tr_close" and row is not None:
            rows.append(row)
            row = None
        i += 1
    return rows_to_markdown(rows), i + 1


def parse_markdown_text(text: str) -> ParsedDocument:
    text = _FRONT_MATTER.sub("", text.replace("\r\n", "\n").replace("\r", "\n"), count=1)
    tokens = _parser().parse(text)
    doc = ParsedDocument()
    lists = 0  # how deep in lists the walk is
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.type == "heading_open":
            title = _plain(tokens[i + 1])
            if title:
                doc.blocks.append(Block("title", title, None, int(t.tag[1:]) - 1))
            i += 3
            continue
        if t.type == "table_open":
            table, i = _table(tokens, i)
            if table:
                doc.blocks.append(Block("table", table))
            continue
        if t.type in ("bullet_list_open", "ordered_list_open"):
            lists += 1
        elif t.type in ("bullet_list_close", "ordered_list_close"):
            lists -= 1
        elif t.type == "inline":
            content = _plain(t)
            if content:
                if lists:
                    doc.blocks.append(Block("list", "  " * (lists - 1) + "- " + content))
                else:
                    doc.blocks.append(Block("text", content))
        elif t.type in ("fence", "code_block") and t.content.strip():
            doc.blocks.append(Block("text", t.content.rstrip()))
        elif t.type == "html_block":
            content = " ".join(html.unescape(_TAG.sub(" ", t.content)).split())
            if content:
                doc.blocks.append(Block("text", content))
        i += 1
    return doc


def parse_markdown(path: Path) -> ParsedDocument:
    return parse_markdown_text(decode_bytes(Path(path).read_bytes()))
