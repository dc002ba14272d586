"""The reporting periods a text names, in one spelling: what sets a company's filings and call
transcripts apart from each other.

    "What did they report for the third quarter of fiscal 2023?"  -> {"q3", "2023"}
    "ACME_2023Q3_10-Q.pdf"                                       -> {"q3", "2023"}
    "Q3'23 earnings call", "3Q23 results", "Q3 FY23"             -> {"q3", "2023"}
    "FY2022 annual report", "fiscal year 2022"                    -> {"2022"}
    "H1 2024 update", "first half of 2024"                        -> {"h1", "2024"}
    "For the quarterly period ended September 30, 2023"           -> {"q3", "2023"}
    "six months ended June 30, 2024"                              -> {"h1", "2024"}

Quarters and halves of a date are calendar ones (a fiscal year that starts in another month is
read as if it did not). The periods a document's opening states (:func:`stated_periods`) are
kept with its chunks at ingest: what tells a filing apart from its siblings when its file name
does not.

Two-digit years are read only where a period marker stands beside them (FY23, Q3'23, 3Q23): a
bare "23" is a count, not a year.
"""

from __future__ import annotations

import re
from typing import Iterator

_ORDINAL = {"first": "1", "1st": "1", "second": "2", "2nd": "2", "third": "3", "3rd": "3",
            "fourth": "4", "4th": "4"}
_OF_YEAR = r"(?:\s+(?:of\s+)?(?:fiscal\s+(?:year\s+)?)?((?:19|20)\d{2})\b)?"  # "... of fiscal 2023", "... 2023"
_QUARTER_WORDS = re.compile(r"\b(first|1st|second|2nd|third|3rd|fourth|4th)\s+(?:fiscal\s+)?quarter\b" + _OF_YEAR, re.I)
_HALF_WORDS = re.compile(r"\b(first|1st|second|2nd)\s+half\b" + _OF_YEAR, re.I)
# Q3, Q3 2023, Q3-2023, Q3 FY23, Q3FY2023, Q3'23 (the year is optional; two digits only beside a marker)
_Q_FIRST = re.compile(r"(?<![A-Za-z0-9])([QH])([1-4])(?:[\s\-_/]*(?:FY[\s'’]*)?((?:19|20)\d{2})"
                      r"|[\s\-_/]*FY[\s'’\-]*(\d{2})|['’\-_](\d{2}))?(?![A-Za-z0-9])", re.I)
# 3Q23, 3Q 2023, 1H24
_Q_AFTER = re.compile(r"(?<![A-Za-z0-9])([1-4])([QH])(?:[\s\-_]*((?:19|20)\d{2})|['’\-_]?(\d{2}))?(?![A-Za-z0-9])", re.I)
# 2023Q3, 2023-Q3, 2023_H1
_YEAR_FIRST = re.compile(r"(?<![A-Za-z0-9])((?:19|20)\d{2})\s*[-_ ]?\s*([QH])([1-4])(?![A-Za-z0-9])", re.I)
_FISCAL = re.compile(r"(?<![A-Za-z0-9])FY\s*[-_'’]?\s*(\d{4}|\d{2})(?![A-Za-z0-9])", re.I)
_MONTHS = {m: i for i, m in enumerate(
    "jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}
# "three months ended June 30, 2024", "quarterly period ended September 30, 2023", "fiscal year ended Dec. 31, 2023"
_ENDED = re.compile(r"\b(three\s+months|six\s+months|nine\s+months|twelve\s+months|(?:fiscal\s+)?quarter(?:ly\s+period)?"
                    r"|(?:fiscal\s+)?year|period)\s+ended\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
                    r"\s+\d{1,2},?\s+((?:19|20)\d{2})\b", re.I)
_YEAR = re.compile(r"(?<![A-Za-z0-9])((?:19|20)\d{2})(?![0-9])")


def _year(*groups: str | None) -> str | None:
    """The year of whichever group matched: four digits as they are, two after "20"."""
    digits = next((g for g in groups if g), None)
    if not digits:
        return None
    return digits if len(digits) == 4 else f"20{digits}"


def _half_or_quarter(letter: str, n: str) -> str | None:
    letter = letter.lower()
    if letter == "h" and n not in "12":
        return None
    return f"{letter}{n}"


def _ended(span: str, month: int) -> str | None:
    """The quarter or half a span of months ending in ``month`` is, if it is one."""
    span = span.lower()
    if span.startswith(("three", "quarter", "fiscal quarter")):
        return f"q{(month - 1) // 3 + 1}"
    if span.startswith("six") and month in (6, 12):
        return "h1" if month == 6 else "h2"
    return None


def _mentions(text: str) -> Iterator[tuple[int, str | None, str | None]]:
    """Each period ``text`` names, as (where, quarter or half or None, year or None)."""
    for m in _ENDED.finditer(text):
        yield m.start(), _ended(m.group(1), _MONTHS[m.group(2).lower()]), m.group(3)
    for m in _QUARTER_WORDS.finditer(text):
        yield m.start(), "q" + _ORDINAL[m.group(1).lower()], m.group(2)
    for m in _HALF_WORDS.finditer(text):
        yield m.start(), "h" + _ORDINAL[m.group(1).lower()], m.group(2)
    for m in _Q_FIRST.finditer(text):
        period = _half_or_quarter(m.group(1), m.group(2))
        if period:  # H3 is not a period
            yield m.start(), period, _year(m.group(3), m.group(4), m.group(5))
    for m in _Q_AFTER.finditer(text):
        period = _half_or_quarter(m.group(2), m.group(1))
        if period:
            yield m.start(), period, _year(m.group(3), m.group(4))
    for m in _YEAR_FIRST.finditer(text):
        period = _half_or_quarter(m.group(2), m.group(3))
        if period:
            yield m.start(), period, m.group(1)
    for m in _FISCAL.finditer(text):
        yield m.start(), None, _year(m.group(1))


def period_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` names a period (start, end), in order; overlapping mentions merged."""
    spans = sorted(m.span() for rx in (_ENDED, _QUARTER_WORDS, _HALF_WORDS, _Q_FIRST, _Q_AFTER, _YEAR_FIRST, _FISCAL)
                   for m in rx.finditer(text))
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def without_periods(text: str) -> str:
    """``text`` with every period it names blanked out ("revenue in the second quarter of 2023" ->
    "revenue in the "), so that the words spelling a period ("second", "quarter") are not read as
    words of their own beside :func:`period_terms`."""
    out, at = [], 0
    for start, end in period_spans(text):
        out.append(text[at:start])
        at = end
    out.append(text[at:])
    return " ".join(out)


def period_terms(text: str) -> set[str]:
    """The quarters ("q1".."q4"), halves ("h1", "h2") and years ("2023") ``text`` names."""
    out = {t for _, period, year in _mentions(text) for t in (period, year) if t}
    out.update(m.group(1) for m in _YEAR.finditer(text))
    return out


#: the words that name a kind of period, not what happened in one ("quarter", "fiscal year"): a filing's
#: cover says them ("QUARTERLY REPORT ... for the fiscal year ended"), whatever the question asks of it
#: ("period", "year" and "month" are left out: "incubation period", "days per year" are what is asked; a
#: cover's "for the fiscal year ended June 30, 2024" is a period, and read as one)
CALENDAR_WORDS = ("quarter", "quarterly", "annual", "annually", "fiscal")

#: how much of a document's opening is read for the periods it states
OPENING_CHARS = 2000


def stated_periods(opening: str) -> list[str]:
    """The period the opening of a document states first, with its year ("For the quarterly period
    ended September 30, 2023" -> q3, 2023; "Q3 2026 Results" -> q3, 2026), sorted: the document's
    own period, named before any comparison with another. A quarter without its year ("H1
    haplotypes", "the first quarter of the following year") or a year alone (a copyright line)
    states none."""
    dated = [(at, period, year) for at, period, year in _mentions(opening[:OPENING_CHARS]) if year]
    if not dated:
        return []
    _, period, year = min(dated, key=lambda d: d[0])
    return sorted(t for t in (period, year) if t)
