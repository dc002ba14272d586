"""Answer and retrieval metrics, as the evaluation reports them.

- token F1: SQuAD's, best over the gold answers;
- containment: a normalised gold answer occurs in the answer, or, for gold answers over
  8 tokens, at least 60% of their content words do;
- content recall: share of a gold answer's content words found in the answer (best gold).
"""

from __future__ import annotations

from collections import Counter

from qa.text import STOPWORDS, normalize_answer

LONG_ANSWER_TOKENS = 8
CONTENT_SHARE = 0.6


def token_f1(prediction: str, golds: list[str]) -> float:
    pred = normalize_answer(prediction).split()
    best = 0.0
    for gold in golds:
        g = normalize_answer(gold).split()
        common = Counter(pred) & Counter(g)
        same = sum(common.values())
        if not pred or not g or same == 0:
            continue
        p, r = same / len(pred), same / len(g)
        best = max(best, 2 * p * r / (p + r))
    return best


def _content(tokens: list[str]) -> list[str]:
    return [t for t in tokens if t not in STOPWORDS]


def content_recall(prediction: str, golds: list[str]) -> float:
    pred = set(normalize_answer(prediction).split())
    best = 0.0
    for gold in golds:
        words = _content(normalize_answer(gold).split())
        if words:
            best = max(best, sum(1 for w in words if w in pred) / len(words))
    return best


def contained(prediction: str, golds: list[str]) -> bool:
    pred_norm = normalize_answer(prediction)
    pred = set(pred_norm.split())
    for gold in golds:
        g = normalize_answer(gold)
        if not g:
            continue
        if f" {g} " in f" {pred_norm} ":
            return True
        tokens = g.split()
        if len(tokens) > LONG_ANSWER_TOKENS:
            words = _content(tokens)
            if words and sum(1 for w in words if w in pred) / len(words) >= CONTENT_SHARE:
                return True
    return False
