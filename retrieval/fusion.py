"""Fusing ranked lists from lexical and dense search.

``relative`` (the default): each list's scores divided by its best score, so a passage
keeps its distance from that list's best; then ``alpha * dense + (1 - alpha) * lexical``.
``convex``: the same with min-max normalisation over the candidates. ``rrf``: reciprocal
rank fusion, sum of 1/(k + rank). A candidate missing from a list gets 0 from it.

Measured with all-MiniLM-L6-v2, alpha 0.5 (bench/retrieval.py; bench/README.md):
relative / convex / rrf: SciFact nDCG@10 0.737 / 0.731 / -, contoso-hr evidence page@5
0.773 / 0.727 / 0.712, covid-qa evidence document@5 (400 questions) 0.873 / 0.898 / 0.870.
"""

from __future__ import annotations


def rrf(lists: list[list[tuple[int, float]]], k: int = 60, weights: list[float] | None = None) -> list[tuple[int, float]]:
    weights = weights or [1.0] * len(lists)
    fused: dict[int, float] = {}
    for w, ranked in zip(weights, lists):
        for rank, (cid, _) in enumerate(ranked, start=1):
            fused[cid] = fused.get(cid, 0.0) + w / (k + rank)
    return sorted(fused.items(), key=lambda kv: -kv[1])


def _normalise(ranked: list[tuple[int, float]]) -> dict[int, float]:
    if not ranked:
        return {}
    scores = [s for _, s in ranked]
    hi, lo = max(scores), min(scores)
    if hi - lo < 1e-9:
        return {cid: 1.0 for cid, _ in ranked}
    return {cid: (s - lo) / (hi - lo) for cid, s in ranked}


def _relative(ranked: list[tuple[int, float]]) -> dict[int, float]:
    if not ranked:
        return {}
    hi = max(s for _, s in ranked)
    if hi <= 1e-9:
        return {cid: 0.0 for cid, _ in ranked}
    return {cid: max(0.0, s) / hi for cid, s in ranked}


def relative(dense: list[tuple[int, float]], lexical: list[tuple[int, float]], alpha: float = 0.5) -> list[tuple[int, float]]:
    d, l = _relative(dense), _relative(lexical)
    fused = {cid: alpha * d.get(cid, 0.0) + (1 - alpha) * l.get(cid, 0.0) for cid in set(d) | set(l)}
    return sorted(fused.items(), key=lambda kv: -kv[1])


def convex(dense: list[tuple[int, float]], lexical: list[tuple[int, float]], alpha: float = 0.5) -> list[tuple[int, float]]:
    d, l = _normalise(dense), _normalise(lexical)
    fused = {cid: alpha * d.get(cid, 0.0) + (1 - alpha) * l.get(cid, 0.0) for cid in set(d) | set(l)}
    return sorted(fused.items(), key=lambda kv: -kv[1])
