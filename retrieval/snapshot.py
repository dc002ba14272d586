"""One committed generation as a reader sees it: its segments, each with the mask of its
live chunks, searched together.

A search first says which chunks the caller may see (:class:`Visible`: every live chunk, or
those of a set of vector ids the access filter allowed); the dense and BM25 searches run
inside that set, so nothing the caller may not read is ranked, cut or counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from retrieval.lexical import bm25_search, document_frequency, query_terms, stemmer
from retrieval.segments import Segment


@dataclass
class Visible:
    """The chunks a caller may see, per segment: a mask and its count."""

    masks: list[np.ndarray]
    counts: list[int]
    _bits: dict = field(default_factory=dict)
    _length: float | None = None

    @property
    def total(self) -> int:
        return int(sum(self.counts))

    def bits(self, i: int) -> np.ndarray:
        if i not in self._bits:
            self._bits[i] = np.packbits(self.masks[i], bitorder="little")
        return self._bits[i]


class Snapshot:
    def __init__(self, generation: int, parts: list[tuple[Segment, np.ndarray]], dim: int, nprobe: int = 32):
        self.generation = generation
        self.parts = parts
        self.dim = dim
        self.nprobe = nprobe
        self._all: Visible | None = None
        self._speller = None

    @property
    def segments(self) -> list[Segment]:
        return [s for s, _live in self.parts]

    def __len__(self) -> int:
        return self.everything().total

    def everything(self) -> Visible:
        if self._all is None:
            self._all = Visible([live for _s, live in self.parts], [int(live.sum()) for _s, live in self.parts])
        return self._all

    def visible(self, allowed: np.ndarray | None) -> Visible:
        """``allowed``: vector ids the caller may read (None: every live chunk)."""
        if allowed is None:
            return self.everything()
        allowed = np.asarray(allowed, dtype=np.int64)
        top = max([int(allowed.max()) if len(allowed) else 0] +
                  [int(s.vids[-1]) for s, _l in self.parts if len(s)])
        bitmap = np.zeros(top + 1, dtype=bool)
        bitmap[allowed] = True
        masks = [live & bitmap[np.asarray(s.vids)] for s, live in self.parts]
        return Visible(masks, [int(m.sum()) for m in masks])

    # -- searching ------------------------------------------------------------------------------
    def dense(self, query: np.ndarray, k: int, visible: Visible) -> list[tuple[int, float]]:
        found: list[tuple[float, int]] = []
        for i, (segment, _live) in enumerate(self.parts):
            count = visible.counts[i]
            if not count:
                continue
            bits = visible.bits(i) if segment.dense.ann is not None else None
            positions, scores = segment.dense.search(query, k, visible.masks[i], count, self.nprobe, bits)
            found.extend(zip(scores.tolist(), np.asarray(segment.vids)[positions].tolist()))
        found.sort(key=lambda x: (-x[0], x[1]))
        return [(int(v), float(s)) for s, v in found[:k]]

    def lexical(self, query: str, k: int, visible: Visible) -> list[tuple[int, float]]:
        terms = query_terms(query)
        if not terms:
            return []
        if visible._length is None:
            visible._length = float(sum(float(np.asarray(s.postings.lengths)[m].sum())
                                        for (s, _l), m in zip(self.parts, visible.masks)))
        parts = [(s.postings, m, np.asarray(s.vids)) for (s, _l), m in zip(self.parts, visible.masks)]
        return bm25_search(parts, terms, k, visible.total, visible._length)

    # -- the vocabulary, for spelling ----------------------------------------------------------
    def speller(self, visible: Visible):
        """A Speller over every segment's terms, counting only the chunks in ``visible``."""
        from retrieval.spelling import Speller

        if self._speller is None:
            terms = set()
            for s in self.segments:
                terms.update(s.postings.terms)
            self._speller = Speller(sorted(terms), lambda t: 0, stemmer().stemWord)
        parts = [(s.postings, m) for s, m in zip(self.segments, visible.masks)]
        return self._speller.with_frequency(lambda term: document_frequency(parts, term))

    # -- vectors -----------------------------------------------------------------------------
    def vectors_of(self, vids: np.ndarray) -> np.ndarray:
        """The stored vectors of live chunks ``vids`` (a KeyError names one that is not live here)."""
        vids = np.asarray(vids, dtype=np.int64)
        out = np.zeros((len(vids), self.dim), dtype=np.float32)
        done = np.zeros(len(vids), dtype=bool)
        for segment, live in self.parts:
            if not len(segment):
                continue
            at = np.searchsorted(segment.vids, vids)
            inside = at < len(segment)
            hit = np.zeros(len(vids), dtype=bool)
            hit[inside] = np.asarray(segment.vids)[at[inside]] == vids[inside]
            hit[hit] &= live[at[hit]]
            if hit.any():
                out[hit] = segment.dense.rows(at[hit])
                done |= hit
        if not done.all():
            raise KeyError(int(vids[~done][0]))
        return out

    def with_vectors(self, vids: np.ndarray, vectors: np.ndarray, dim: int) -> "Snapshot":
        """This generation searched with other vectors (by vector id), exactly."""
        vids = np.asarray(vids, dtype=np.int64)
        parts = []
        for segment, live in self.parts:
            own = np.zeros((len(segment), dim), dtype=np.float32)
            at = np.searchsorted(vids, np.asarray(segment.vids))
            inside = at < len(vids)
            hit = np.zeros(len(segment), dtype=bool)
            hit[inside] = vids[at[inside]] == np.asarray(segment.vids)[inside]
            own[hit] = vectors[at[hit]]
            parts.append((segment.with_vectors(own), live & hit))
        return Snapshot(self.generation, parts, dim, self.nprobe)
