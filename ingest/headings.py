"""Heuristics that tell a heading line from body text, for formats without markup."""

from __future__ import annotations

import re

BULLET = re.compile(r"^\s*([•·\-–*▪●◦]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s+")
SENTENCE_END = re.compile(r"[.,;!?…]\s*$")
_WORD = re.compile(r"[A-Za-z][\w'’-]*")
_MINOR = {"a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with", "vs", "per"}


def looks_like_heading(line: str) -> bool:
    """A short line in title case or capitals, not a bullet and not ending a sentence."""
    s = line.strip()
    if not (3 <= len(s) <= 90) or SENTENCE_END.search(s) or BULLET.match(s):
        return False
    words = _WORD.findall(s)
    if not words or len(words) > 12:
        return False
    if not s[0].isupper() and not s[0].isdigit():
        return False
    major = [w for w in words if w.lower() not in _MINOR]
    capped = sum(1 for w in major if w[0].isupper())
    return bool(major) and capped / len(major) >= 0.75
