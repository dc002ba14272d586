"""What a document's opening says it is: the period it states and the names it uses.

A filing's cover names the company and the quarter, a transcript's first line the company and
the call, an article's title its subject; the pages that answer a question rarely repeat them.
Kept with every chunk at ingest (``Chunk.meta``), they let the answer stage read a passage as
speaking of what its document is about (:func:`qa.evidence.identity_terms`):

    "FORM 10-Q ... For the quarterly period ended June 30, 2023 ... NORTHSTAR ROBOTICS, INC."
        periods: ["2023", "q2"]    names: ["FORM", "10-Q", "NORTHSTAR", "ROBOTICS", "INC", ...]

The period is read from the first ``OPENING_CHARS`` characters (a cover's boilerplate can come first),
the names from its front matter (:func:`front_matter`: the first page, or what comes before the first
section heading, tables left out): what comes after is what the document says, not what it is.
"""

from __future__ import annotations

import re

from ingest.blocks import Block
from retrieval.periods import OPENING_CHARS, stated_periods

#: the most names kept of an opening, in the order they first appear
MAX_NAMES = 40
#: how much of the opening is read for its names: a filing's cover names the company within its first
#: few hundred characters, a transcript or an article in its first line; past that come the contents
NAMES_CHARS = 1000

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9&'’\-]*[A-Za-z0-9]|[A-Za-z0-9]")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n)\s*$")


def opening_text(blocks: list[Block], chars: int = OPENING_CHARS) -> str:
    """The first ``chars`` characters of a document's text: its cover or first lines."""
    parts: list[str] = []
    size = 0
    for b in blocks:
        if size >= chars:
            break
        parts.append(b.text)
        size += len(b.text) + 1
    return "\n".join(parts)[:chars]


def front_matter(blocks: list[Block], chars: int = NAMES_CHARS) -> str:
    """The document's title and front matter: its first page where it has pages (a cover), else what
    comes before its first section heading; tables are contents, not what the document is; at most
    ``chars`` characters."""
    parts: list[str] = []
    size, seen_text = 0, False
    first_page = blocks[0].page if blocks else None
    for b in blocks:
        if size >= chars or (first_page is not None and b.page != first_page):
            break
        if first_page is None and b.kind == "title" and seen_text:
            break  # the first section of an unpaged document begins
        if b.kind == "table":
            continue
        seen_text = seen_text or b.kind != "title"
        parts.append(b.text)
        size += len(b.text) + 1
    return "\n".join(parts)[:chars]


def _is_name(word: str, starts_sentence: bool, next_word: str | None) -> bool:
    """A word written as a name: letters with digits ("10-Q", "H7N9"), an acronym or a word in capitals
    ("NSTR", "NORTHSTAR"), or a capitalised word that does not merely open a sentence of ordinary
    words ("Northwind Health Plus" is a name, "The plan covers" is not)."""
    if len(word) < 2:
        return False
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return False
    if any(c.isdigit() for c in word) or sum(c.isupper() for c in letters) >= 2:
        return True
    if not word[0].isupper():
        return False
    return not starts_sentence or bool(next_word and next_word[0].isupper())


def opening_names(opening: str) -> list[str]:
    """The names the opening uses (:func:`_is_name`), each once, at most ``MAX_NAMES``."""
    found = list(_WORD.finditer(opening))
    out: list[str] = []
    seen: set[str] = set()
    for i, m in enumerate(found):
        word = m.group(0)
        starts = bool(_SENTENCE_START.search(opening[: m.start()]))
        following = found[i + 1].group(0) if i + 1 < len(found) else None
        if _is_name(word, starts, following) and word.lower() not in seen:
            seen.add(word.lower())
            out.append(word)
            if len(out) >= MAX_NAMES:
                break
    return out


def opening_meta(blocks: list[Block]) -> dict:
    """What every chunk of the document keeps of its opening: ``periods`` and ``names``, where it has any."""
    meta: dict = {}
    periods = stated_periods(opening_text(blocks))
    if periods:
        meta["periods"] = periods  # what tells the document from its siblings
    names = opening_names(front_matter(blocks))
    if names:
        meta["names"] = names  # what the document says it is about
    return meta
