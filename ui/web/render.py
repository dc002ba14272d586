"""Small rendering helpers: document text shown as text (escaped), never as HTML."""

from __future__ import annotations

import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<$])")


def escape_md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def highlight(passage: str, sentence: str) -> str:
    """The passage as Markdown-safe text with the supporting sentence in bold."""
    text = " ".join(passage.split())
    sentence = " ".join(sentence.split())
    if sentence and sentence in text:
        before, _, after = text.partition(sentence)
        return f"{escape_md(before)}**{escape_md(sentence)}**{escape_md(after)}"
    return escape_md(text)


def where(chunk) -> str:
    return chunk.doc + (f", page {chunk.page}" if chunk.page else "") + (f" — {chunk.section}" if chunk.section else "")


def quote_md(quote: str) -> str:
    """A quote as Markdown: a table quote (rows under a header) as a table, each cell escaped;
    prose as a block quote."""
    lines = quote.splitlines()
    if len(lines) >= 2 and all(line.startswith("|") and line.endswith("|") for line in lines):
        rows = []
        for i, line in enumerate(lines):
            cells = [c.strip() for c in line[1:-1].split("|")]
            rows.append("| " + " | ".join("---" if i == 1 else escape_md(c) for c in cells) + " |")
        return "\n".join(rows)
    return "> " + escape_md(" ".join(quote.split()))


def answer_md(answer: str) -> str:
    """The short answer in bold (escaped: a document's Markdown is shown as text)."""
    return f"**{escape_md(answer)}**" if answer else ""
