"""What a question asks for: the kind of answer it expects and its focus word.

    "How many weeks of leave does the other parent get?" -> kind "quantity", focus "week"
    "What revenue range did Harbor Foods guide to?" -> kind "quantity", focus "range"
    "When do unused days expire?"                        -> kind "date"
    "Who approves purchases over 10,000 euros?"          -> kind "name"
    "What caused the outage?"                            -> kind "reason"
    "What is prior authorization?"                       -> kind "definition", subject "prior authorization"
    "What does the dental plan cover?"                   -> kind "other"

Rules over the question's own words: no corpus, no thresholds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.names import named_terms
from qa.text import content_terms

_QUANTITY = re.compile(
    r"\bhow\s+(many|much|long|often|old|far|big|large|high|low|soon|frequently)\b"
    r"|\b(?:what|which)\s+(?:(?:is|was|are|were|will\s+be)\s+)?(?:the\s+)?(?:[\w-]+(?:'s|’s|'|’)?\s+){0,3}?"
    r"(percentage|percent|share|proportion|rate|number|amount|fraction|ratio|price|cost|costs|fee|fees|limit|"
    r"maximum|minimum|total|size|duration|level|value|sum|count|revenue|revenues|income|profit|loss|margin|"
    r"salary|pay|budget|spend|spending|growth|earnings|sales|balance|headcount|deductible|premium|allowance|range)\b",
    re.IGNORECASE,
)
#: the word that asks for a quantity ("how much", "how long"): the documents give the amount, not the word
_HOW = re.compile(r"\b(how)\s+(?:many|much|long|often|old|far|big|large|high|low|soon|frequently)\b", re.IGNORECASE)
_RANGE = re.compile(r"\branges?\b", re.IGNORECASE)
_DATE = re.compile(
    r"^\s*(?:by\s+|until\s+|since\s+)?when\b|\b(?:by|until|since)\s+when\b"
    r"|\b(?:what|which)\s+(year|date|day|month|quarter|time|week)\b|\bin\s+what\s+year\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"^\s*(?:who|whom|whose)\b|\b(?:who|whom)\s+(?:is|are|was|were|does|do|did|should|must|can)\b",
                   re.IGNORECASE)
_REASON = re.compile(r"^\s*why\b|\bwhat\s+(?:caused|causes|led\s+to|leads\s+to|triggered|drove|drives|is\s+driving|is\s+the\s+(?:cause|reason))\b"
                     r"|\bwhat\s+(?:was|were|are|is)\s+the\s+(?:cause|reason)s?\b|\breasons?\s+(?:for|why)\b|\bhow\s+come\b",
                     re.IGNORECASE)
_PLACE = re.compile(r"^\s*where\b|\bwhere\s+(?:is|are|was|were|do|does|can|should|must)\b", re.IGNORECASE)
_DEFINITION = re.compile(
    r"^\s*what\s+(?:is|are)\s+(?:an?\s+)?(?P<x>[^?]+?)\s*\?*\s*$"
    r"|^\s*what\s+(?:does|do)\s+(?:an?\s+|the\s+)?(?P<y>[^?]+?)\s+(?:stand\s+for|mean)\s*\?*\s*$"
    r"|^\s*what\s+is\s+meant\s+by\s+(?:an?\s+|the\s+)?(?P<z>[^?]+?)\s*\?*\s*$",
    re.IGNORECASE,
)
#: words that make "what is ..." ask about something other than a term's meaning
#: ("what is the size of", "what is discussed in", "what is it", "what are some examples")
_NOT_A_TERM = frozenset("""the this that these those it they there of for in on to by with from about at as into
    than used known called discussed reported described shown found done made some any other examples types kinds
    ways steps""".split())
_WORD = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class QuestionShape:
    kind: str  # quantity | date | name | place | reason | definition | other
    focus: str | None  # stemmed noun the answer is counted in ("week"), if the question names one
    terms: frozenset[str]  # the question's content terms (stemmed)
    subject: str | None = None  # the term a definition question asks about ("prior authorization")
    named: frozenset[str] = frozenset()  # the terms of what the question names ("Pinecrest Energy's" -> pinecrest, energy)


def asked_terms(question: str) -> set[str]:
    """The question's content terms without the word that asks for a quantity: "How much is the home
    office allowance?" asks about "home", "offic" and "allow"; no document answers it with "much"."""
    return set(content_terms(_HOW.sub(r"\1", question)))


def _defined_term(question: str) -> str | None:
    """The term of "What is X?", "What are Xs?", "What does X stand for?", if X is a short term."""
    m = _DEFINITION.match(question)
    if not m:
        return None
    term = " ".join((m.group("x") or m.group("y") or m.group("z")).split())
    term = re.sub(r"\s*\([^)]*\)$", "", term)  # "nuclear receptors (NRs)": the sentence may spell it either way
    toks = term.split()
    if not 1 <= len(toks) <= 5 or any(t.lower() in _NOT_A_TERM for t in toks):
        return None
    return term


def shape(question: str) -> QuestionShape:
    terms = frozenset(content_terms(question))
    if _REASON.search(question):
        return QuestionShape("reason", None, terms)
    m = _DATE.search(question)
    if m:
        return QuestionShape("date", None, terms)
    m = _QUANTITY.search(question)
    if m:
        focus = None
        if m.group(1) and m.group(1).lower() in ("many", "much"):
            after = _WORD.findall(question[m.end():])[:1]
            stems = content_terms(after[0]) if after else []
            # "how many weeks" counts in weeks; "how much is/does..." asks for an amount of money or a share
            focus = stems[0] if stems else ("amount" if m.group(1).lower() == "much" else None)
        elif m.group(1) and m.group(1).lower() in ("long", "soon", "often", "frequently"):
            focus = "time"
        if _RANGE.search(question):
            focus = "range"  # "what revenue range did it guide to": two amounts, "between A and B"
        return QuestionShape("quantity", focus, terms)
    term = _defined_term(question)
    if term:
        return QuestionShape("definition", None, terms, term)
    if _NAME.search(question):
        named = frozenset(t for n in named_terms(question) for t in content_terms(n))
        return QuestionShape("name", None, terms, named=named)
    if _PLACE.search(question):
        return QuestionShape("place", None, terms)
    return QuestionShape("other", None, terms)


#: a sentence that tells the reader how to answer, not what is asked: the part they play ("Assume that you
#: are an equity analyst", "You do not have access to ...") or the answer's form ("Answer in USD millions",
#: "Give a response to the question by relying on ...", "Round to two decimal places")
_ROLE = re.compile(r"\b(?:assume|imagine|pretend|suppose)\b|\bas if you\b"
                   r"|\byou\s+(?:are|have|do|don't|cannot|can't|can|may|must|should|will|need)\b", re.IGNORECASE)
_FORM = re.compile(r"\b(?:answer|answers|respond|reply|response|question|round|rounded|rounding|decimals?|format)\b",
                   re.IGNORECASE)
_ASKING = re.compile(r"^\s*(?:what|which|who|whom|whose|when|where|why|how|is|are|was|were|do|does|did|can|could|"
                     r"should|would|will|has|have|had|may|might|must|shall)\b", re.IGNORECASE)
_PIECE_END = re.compile(r"(?<=[.?!:])\s+")


def _asks(piece: str) -> bool:
    return piece.rstrip().endswith("?") or bool(_ASKING.match(piece))


def _instructs(piece: str) -> bool:
    return not _asks(piece) and bool(_ROLE.search(piece) or _FORM.search(piece))


def without_instructions(question: str) -> str:
    """The question without the sentences that tell the reader how to answer it: "Assume that you are an
    analyst. Answer the following question using the income statement: what was revenue in Q1 2023?
    Answer in USD millions." -> "what was revenue in Q1 2023?". What is searched, checked for names the
    documents never use and answered from is what is asked; the part the asker plays and the form they
    want would be words the documents do not hold. A text that is all instructions is kept whole."""
    pieces = [p for p in _PIECE_END.split(question.strip()) if p]
    kept = [p for p in pieces if not _instructs(p)]
    return " ".join(kept) if kept and len(kept) < len(pieces) else question
