"""The reporting periods a text names, in one spelling: what sets a company's filings and call
transcripts apart from each other.

    "What did they report for the third quarter of fiscal 2023?"  -> {"q3", "2023"}
    "ACME_2023Q3_10-Q.pdf"                                       -> {"q3", "2023"}
    "Q3'23 earnings call", "3Q23 results", "Q3 FY23"             -> {"q3", "2023"}
    "FY2022 annual report", "fiscal year 2022"                    -> {"2022"}
    "H1 2024 update", "first half of 2024"                        -> {"h1", "2024"}

Two-digit years are read only where a period marker stands beside them (FY23, Q3'23, 3Q23): a
bare "23" is a count, not a year.
"""

from __future__ import annotations

import re

_ORDINAL = {"first": "1", "1st": "1", "second": "2", "2nd": "2", "third": "3", "3rd": "3",
            "fourth": "4", "4th": "4"}
_QUARTER_WORDS = re.compile(r"\b(first|1st|second|2nd|third|3rd|fourth|4th)\s+(?:fiscal\s+)?quarter\b", re.I)
_HALF_WORDS = re.compile(r"\b(first|1st|second|2nd)\s+half\b", re.I)
# Q3, Q3 2023, Q3-2023, Q3 FY23, Q3FY2023, Q3'23 (the year is optional; two digits only beside a marker)
_Q_FIRST = re.compile(r"(?<![A-Za-z0-9])([QH])([1-4])(?:[\s\-_/]*(?:FY[\s'’]*)?((?:19|20)\d{2})"
                      r"|[\s\-_/]*FY[\s'’\-]*(\d{2})|['’\-_](\d{2}))?(?![A-Za-z0-9])", re.I)
# 3Q23, 3Q 2023, 1H24
_Q_AFTER = re.compile(r"(?<![A-Za-z0-9])([1-4])([QH])(?:[\s\-_]*((?:19|20)\d{2})|['’\-_]?(\d{2}))?(?![A-Za-z0-9])", re.I)
# 2023Q3, 2023-Q3, 2023_H1
_YEAR_FIRST = re.compile(r"(?<![A-Za-z0-9])((?:19|20)\d{2})\s*[-_ ]?\s*([QH])([1-4])(?![A-Za-z0-9])", re.I)
_FISCAL = re.compile(r"(?<![A-Za-z0-9])FY\s*[-_'’]?\s*(\d{4}|\d{2})(?![A-Za-z0-9])", re.I)
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


def _add(out: set[str], period: str | None, year: str | None) -> None:
    """A period and its year, when the marker read as a period (H3 does not)."""
    if period:
        out.add(period)
        if year:
            out.add(year)


def period_terms(text: str) -> set[str]:
    """The quarters ("q1".."q4"), halves ("h1", "h2") and years ("2023") ``text`` names."""
    out: set[str] = set()
    for m in _QUARTER_WORDS.finditer(text):
        out.add("q" + _ORDINAL[m.group(1).lower()])
    for m in _HALF_WORDS.finditer(text):
        out.add("h" + _ORDINAL[m.group(1).lower()])
    for m in _Q_FIRST.finditer(text):
        _add(out, _half_or_quarter(m.group(1), m.group(2)), _year(m.group(3), m.group(4), m.group(5)))
    for m in _Q_AFTER.finditer(text):
        _add(out, _half_or_quarter(m.group(2), m.group(1)), _year(m.group(3), m.group(4)))
    for m in _YEAR_FIRST.finditer(text):
        _add(out, _half_or_quarter(m.group(2), m.group(3)), m.group(1))
    for m in _FISCAL.finditer(text):
        out.add(_year(m.group(1)))
    out.update(m.group(1) for m in _YEAR.finditer(text))
    return out
