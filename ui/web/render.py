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
