"""Checks on what came out of the model, and on whether the question can be answered at all."""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.answer import ABSTAIN_TEXT
from qa.evidence import identity_terms
from qa.question import asked_terms
from qa.text import content_terms, numbers
from retrieval import Hit
from retrieval.indexed_text import doc_title

_CITE = re.compile(r"\[(\d{1,2})\]")
_ABSTAIN_PATTERNS = re.compile(
    r"could not find|cannot find|can't find|couldn't find|not (?:mentioned|stated|provided|specified|contain|include)"
    r"|no (?:information|mention)|do(?:es)? not (?:say|answer|mention|contain|provide)|unable to (?:find|answer)",
    re.IGNORECASE,
)


@dataclass
class Support:
    score: float  # share of the answer's content words found in the evidence
    missing_numbers: set[str]

    @property
    def ok(self) -> bool:
        return not self.missing_numbers


def cited_numbers(text: str) -> list[int]:
    return [int(n) for n in _CITE.findall(text)]


def strip_citations(text: str) -> str:
    return " ".join(_CITE.sub(" ", text).split())


def without_citations(text: str) -> str:
    """The text as a reader sees it without its markers: "25 days [1]." -> "25 days."."""
    return " ".join(re.sub(r"\s*\[\d{1,2}\]", "", text).split())


def is_abstention(text: str) -> bool:
    return ABSTAIN_TEXT.lower() in text.lower() or bool(_ABSTAIN_PATTERNS.search(text))


def support(answer: str, evidence: str, question: str = "") -> Support:
    """How much of ``answer`` the evidence backs: content words and every number."""
    body = strip_citations(answer)
    terms = [t for t in content_terms(body)]
    ev_terms = set(content_terms(evidence)) | set(content_terms(question))
    score = sum(1 for t in terms if t in ev_terms) / len(terms) if terms else 0.0
    missing = numbers(body) - numbers(evidence) - numbers(question)
    return Support(score, missing)


def question_coverage(question: str, hits: list[Hit], top: int = 3) -> float:
    """Share of the question's content words (:func:`qa.question.asked_terms`: "much" in "how much" is
    no word a document holds) found in the best chunks (text, section, title), or in
    what their document is about (:func:`qa.evidence.identity_terms`: its name, the names and period
    of its opening). "How much is the home office allowance in Bergen?" is covered by the handbook of
    the company headquartered in Bergen, though its allowance paragraph does not say "Bergen"."""
    q = asked_terms(question)
    if not q:
        return 0.0
    seen: set[str] = set()
    for h in hits[:top]:
        c = h.chunk
        seen |= set(content_terms(f"{c.text} {c.section or ''} {doc_title(c.doc)}")) | identity_terms(c)
    return len(q & seen) / len(q)
