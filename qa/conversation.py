"""Follow-up questions: rewrite one that leans on the conversation into a question that
stands alone, before retrieval.

    history:   ["How many days of annual leave do employees get?"]
    question:  "and for part-time staff?"
    rewritten: "How many days of annual leave do employees get? and for part-time staff?"

A question is a follow-up when it opens like a continuation ("and", "what about", "also"),
leans on a pronoun ("it", "that", "they"), or has too few words of its own to search with.
A small model rewriting it would be slower and less predictable than this rule.
"""

from __future__ import annotations

import re

from qa.text import content_terms

_CONTINUATION = re.compile(r"^\s*(and|or|but|also|what about|how about|same for|and what about|what if|then)\b", re.IGNORECASE)
_PRONOUN = re.compile(r"\b(it|its|they|them|their|that|this|those|these|he|she|there)\b", re.IGNORECASE)


def is_followup(question: str) -> bool:
    terms = content_terms(question)
    if _CONTINUATION.search(question):
        return True
    if len(terms) <= 1:
        return True
    return bool(_PRONOUN.search(question)) and len(terms) <= 3


def rewrite_followup(question: str, history: list[str]) -> str:
    """The question to search with: unchanged, or joined to the previous standalone question."""
    question = question.strip()
    if not history or not is_followup(question):
        return question
    return f"{history[-1].strip()} {question}"
