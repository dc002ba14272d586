"""Small text tools shared by evidence selection, grounding and metrics."""

from __future__ import annotations

import re
import string
import unicodedata
from functools import lru_cache

_SENT = re.compile(r"(?<=[.!?;])\s+(?=[\"'(\[]?[A-Z0-9])|\n+|\s+(?=[•▪●◦‣]\s)")  # a bullet starts an item
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[.,'’][A-Za-z0-9]+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")

# "other" is not among them: "the other parent" and "the birth parent" are different answers
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here hers
    herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
    once only or our ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves shall may might must also per via etc
    tell explain describe say says does mean means please""".split()
)


_TABLE_SEP = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+$")


def sentences(text: str) -> list[str]:
    """Split text into sentences; a Markdown table's rows become units of their own, each
    carrying the header row, so a row keeps the names of its columns:

        "| Parent | Weeks |\n| --- | --- |\n| Other | 12 |" -> ["| Parent | Weeks | | Other | 12 |"]
    """
    out: list[str] = []
    header: str | None = None
    rows = 0
    for line in text.split("\n") + [""]:
        line = " ".join(line.split())
        if line.startswith("|") and line.endswith("|"):
            if _TABLE_SEP.match(line.replace(" ", "")):
                continue
            if header is None:
                header, rows = line, 0
            else:
                out.append(f"{header} {line}")
                rows += 1
            continue
        if header is not None and rows == 0:
            out.append(header)  # a table that is only a header
        header = None
        out += [p for p in (" ".join(x.split()) for x in _SENT.split(line)) if p]
    return out


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    return [w.lower() for w in _TOKEN.findall(text)]


@lru_cache(maxsize=50_000)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


def content_terms(text: str) -> list[str]:
    """Stemmed words that carry meaning: no stop words, no single letters."""
    return [_stem(w) for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch if ch not in string.punctuation else " " for ch in text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())
