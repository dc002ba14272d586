"""Fusing ranked lists from lexical and dense search.

``rrf``: reciprocal rank fusion, sum of 1/(k + rank). ``convex``: each list's scores
min-max normalised over its candidates, then ``alpha * dense + (1 - alpha) * lexical``;
a candidate missing from a list gets 0 from it. bench/retrieval.py measures both.
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


def convex(dense: list[tuple[int, float]], lexical: list[tuple[int, float]], alpha: float = 0.5) -> list[tuple[int, float]]:
    d, l = _normalise(dense), _normalise(lexical)
    fused = {cid: alpha * d.get(cid, 0.0) + (1 - alpha) * l.get(cid, 0.0) for cid in set(d) | set(l)}
    return sorted(fused.items(), key=lambda kv: -kv[1])
