"""The names a question uses, and which of them the documents never use.

A question about a thing the documents never name ("How can the study of B-cells help ...?" put to
an HR handbook, "What does Kubernetes run on?" to documents that never say Kubernetes) can still
find passages close to its other words, and an answer drawn from them would be about something
else. A name here is a word the asker wrote as one: capitalised inside the question
("Shandong", "Northwind"), or letters and digits together ("H7N9", "COVID-19", "B-cells").
A period ("Q3", "FY2023") is not one: the ranking reads it to choose between sibling documents.
Ordinary words are not names: a question may say "partner" where the documents say "spouse",
and that must not cost it its answer.

A name counts as used by the documents when the passages found hold it (hyphens, case and a
plural "s" aside), when every part of it is a word the reader's documents hold or hold a close
spelling of ("Helth" -> "health", "SARS-related"), when the passages spell it out as an acronym
("CEO": "Chief Executive Officer", "EPS": "earnings per share"), or when the passages hold a name of
the same family ("DC-GENR" beside "DC-SIGNR": more likely a slip than another thing).
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

from qa.text import STOPWORDS
from retrieval.periods import period_terms

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’.\-]*[A-Za-z0-9]|[A-Za-z0-9]")
_ORDINAL = re.compile(r"^\d+(?:st|nd|rd|th)$", re.IGNORECASE)
_FILE = re.compile(r"\.(?:pdf|docx?|txt|md|html?|xlsx?|pptx?|csv|json|eml|msg|odt|rtf)$", re.IGNORECASE)
_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)
_PARTS = re.compile(r"[-.'’]")


#: currency codes: the unit an answer is asked in ("in USD millions"), which documents write as "$" or "dollars"
CURRENCY_CODES = frozenset("USD EUR GBP JPY CNY RMB CHF CAD AUD NZD NOK SEK DKK INR HKD SGD KRW BRL MXN ZAR".split())
#: where a sentence starts: the text's start, after "?", "!" or ":", or after a full stop that ends a word
#: rather than an abbreviation ("Dr. Feng Gao", "Ae. aegypti" go on)
_SENTENCE_START = re.compile(r"(?:^|[?!:]\s+|\n|(?<![A-Z])[a-z]{2,}\.\s+|\w{4,}\.\s+|\d\.\s+)$")


def named_terms(question: str, openers: bool = False) -> list[str]:
    """The words of ``question`` written as names, in order, each once: a word in capitals inside a
    sentence, not the first word of one ("What was revenue? Include the segments." names nothing),
    unless ``openers`` ("Northstar revenue Q1-23": where what is named only counts if a document is
    named so, the first word may be a name too)."""
    out: list[str] = []
    for m in _TOKEN.finditer(question):
        tok = _POSSESSIVE.sub("", m.group())
        if not tok or tok.lower() in STOPWORDS or _ORDINAL.match(tok) or _FILE.search(tok) or tok.isdigit():
            continue
        if period_terms(tok) or tok.upper() in CURRENCY_CODES:  # "Q3", "FY2023": the ranking's to tell; "USD": a unit
            continue
        mixed = any(c.isdigit() for c in tok) and any(c.isalpha() for c in tok)
        opens = bool(_SENTENCE_START.search(question[:m.start()]))
        capital = any(c.isupper() for c in tok[1:]) or ((openers or not opens) and tok[0].isupper())
        if (mixed or capital) and tok not in out:
            out.append(tok)
    return out


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _singular(key: str) -> str:
    return key[:-1] if key.endswith("s") and len(key) > 3 else key


_LINKS = frozenset({"of", "and", "the", "for", "in", "on", "to"})


#: an acronym as a question writes it: "CFO", "EPS", "CEOs", "YoY"
ACRONYM = re.compile(r"(?=(?:[^A-Z]*[A-Z]){2})[A-Za-z]{2,8}")


def spellings(name: str, text: str) -> list[str]:
    """Every run of words in which ``text`` spells out the acronym ``name`` ("CEO": "Chief Executive
    Officer", "EPS": "earnings per share", "YoY": "year-over-year"), in order, repeats kept: its letters
    begin consecutive words with no punctuation but '&' between them, little words ("of", "and", ...) skipped."""
    letters = re.sub(r"['’]?s$", "", name)
    if not (2 <= len(letters) <= 8 and letters.isalpha() and sum(c.isupper() for c in letters) >= 2):
        return []
    want = letters.lower()
    tokens = re.findall(r"[A-Za-z][A-Za-z0-9'’]*|[^\sA-Za-z&-]+", text)
    out, run = [], []  # run: positions in ``tokens`` of the words that count a letter
    for i, word in enumerate(tokens + ["."]):
        if not word[0].isalpha():  # a comma, a full stop, a number ends a run
            initials = "".join(tokens[j][0].lower() for j in run)
            at = initials.find(want)
            while at >= 0:
                out.append(" ".join(tokens[run[at]: run[at + len(want) - 1] + 1]))
                at = initials.find(want, at + 1)
            run = []
        elif word.lower() not in _LINKS:
            run.append(i)
    return out


def spelt_out(name: str, text: str, around: Iterable[str] = ()) -> str | None:
    """The words ``text`` spells the acronym ``name`` out in, or None: a spelling followed by the
    acronym in brackets ("Independent Review Organization (IRO)") first, then one in capitals like a
    title ("Chief Financial Officer"), then the one written most often beside a word of ``around`` (the
    question's: "diluted EPS" -> "Diluted earnings per share", not the tables' "except per share
    amounts"), then the most frequent."""
    around = {w.lower() for w in around}
    found = spellings(name, text)
    if not found:
        return None
    counts: dict[str, int] = {}
    for words in found:
        counts[words.lower()] = counts.get(words.lower(), 0) + 1

    def strength(words: str) -> tuple:
        defined = re.search(rf"{re.escape(words)}\s*\(\s*{re.escape(name)}\s*\)", text, re.IGNORECASE) is not None
        beside = sum(1 for m in re.finditer(rf"(\w+)?\W+{re.escape(words)}\W+(\w+)?", text, re.IGNORECASE)
                     if {(m.group(1) or "").lower(), (m.group(2) or "").lower()} & around)
        title = all(w[0].isupper() for w in words.split() if w.lower() not in _LINKS)
        return defined, title, beside, counts[words.lower()]

    return max(dict.fromkeys(found), key=strength)  # each spelling weighed once, the first of equals kept


def absent_names(question: str, passages_text: Iterable[str], known: Callable[[list[str]], set[str]]) -> list[str]:
    """The names of ``question`` the documents never use (see the module's docstring).
    ``passages_text``: the text of what was found (with titles and sections); ``known(words)``: which
    of ``words`` the reader's documents hold or hold a close spelling of."""
    names = named_terms(question)
    if not names:
        return []
    found = " ".join(passages_text)
    flat, lower = _key(found), found.lower()
    parts = {n: [p for p in _PARTS.split(n) if p] for n in names}
    words = sorted({p for ps in parts.values() for p in ps if len(p) > 1 and not p.isdigit()})
    holds = known(words) if words else set()
    absent = []
    for name in names:
        if _singular(_key(name)) in flat:
            continue
        if all(p.isdigit() or (len(p) > 1 and p in holds) for p in parts[name]):
            continue
        first = parts[name][0]
        if "-" in name and len(first) > 1 and re.search(rf"\b{re.escape(first.lower())}-\w", lower):
            continue
        if spellings(name, found):
            continue
        absent.append(name)
    return absent
