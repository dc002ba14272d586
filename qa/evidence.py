"""Evidence selection fitted to a small model's context.

From each of the best chunks, keep the sentence that matches the question best together
with its neighbours, so the model reads a few focused lines instead of whole chunks:

    question: "How many vacation days after five years?"
    chunk:    "...Every employee receives 25 days... Employees who have completed five years
               of service receive 28 days. New employees accrue leave..."
    passage:  "Every employee receives 25 days... Employees who have completed five years of
               service receive 28 days. New employees accrue leave..."  (best sentence + neighbours)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qa.answer import Passage
from qa.text import content_terms, sentences
from retrieval import Hit


@dataclass
class EvidenceOptions:
    max_passages: int = 3
    neighbours: int = 1  # sentences kept on each side of the best one
    max_words: int = 90  # per passage


def sentence_score(question_terms: set[str], sentence: str, idf: dict[str, float]) -> float:
    terms = set(content_terms(sentence))
    if not terms:
        return 0.0
    matched = question_terms & terms
    return sum(idf.get(t, 1.0) for t in matched) / math.sqrt(len(terms) + 4)


def select_evidence(question: str, hits: list[Hit], options: EvidenceOptions | None = None) -> list[Passage]:
    opt = options or EvidenceOptions()
    q_terms = set(content_terms(question))
    chosen = hits[: opt.max_passages]
    # inverse frequency of the question's terms among the candidate sentences: rare words count more
    all_sents = [sentences(h.chunk.text) for h in chosen]
    df: dict[str, int] = {}
    for sents in all_sents:
        for s in sents:
            for t in set(content_terms(s)) & q_terms:
                df[t] = df.get(t, 0) + 1
    total = sum(len(s) for s in all_sents) or 1
    idf = {t: math.log(1 + total / (1 + n)) for t, n in df.items()}
    passages: list[Passage] = []
    for n, (hit, sents) in enumerate(zip(chosen, all_sents), start=1):
        if not sents:
            continue
        scores = [sentence_score(q_terms, s, idf) for s in sents]
        best = max(range(len(sents)), key=lambda i: (scores[i], -i))
        lo, hi = max(0, best - opt.neighbours), min(len(sents), best + opt.neighbours + 1)
        picked = sents[lo:hi]
        text = " ".join(picked)
        w = text.split()
        if len(w) > opt.max_words:  # keep the best sentence whole, trim the neighbours
            text = " ".join(sents[best].split()[: opt.max_words])
        passages.append(Passage(n=n, chunk=hit.chunk, text=text, score=hit.score, best_sentence=sents[best]))
    return passages
