"""BM25 over the chunks' indexed text (bm25s, English stop words, Snowball stemming).

Unfiltered searches use bm25s' precomputed scores. A filtered search (a reader who may
not read everything) scores only the chunks it may read, with term statistics (document
frequencies, average length) taken over those chunks alone: a restricted chunk can
neither appear nor shift the scores or order of what the reader sees.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np


def _bm25s():
    """bm25s, its logger following the application's level again: on import it sets itself to
    DEBUG, which printed "Building index from IDs objects" on every ingest."""
    import logging

    logger = logging.getLogger("bm25s")
    level = logger.level
    import bm25s

    if logger.level == logging.DEBUG and level != logging.DEBUG:
        logger.setLevel(level)
    return bm25s


def preload() -> None:
    """Import what building a lexical index needs (bm25s imports numba: 0.4-0.6 s here), so that a
    job can do it while its last batch embeds instead of at the commit."""
    _bm25s()
    _stemmer()


def _stemmer():
    import Stemmer  # PyStemmer

    return Stemmer.Stemmer("english")


K1, B = 1.2, 0.75


class LexicalIndex:
    def __init__(self, ids: np.ndarray, bm25, counts=None, vocab: dict | None = None) -> None:
        self.ids = ids  # position -> vector id
        self._bm25 = bm25
        self._stem = _stemmer()
        self._pos = {int(v): i for i, v in enumerate(ids)}
        self._counts = counts  # CSC (positions x terms) of term counts, for filtered scoring
        self._vocab = vocab or {}
        self._lengths = np.asarray(counts.sum(axis=1)).ravel().astype(np.float64) if counts is not None else None
        self._speller = None

    @classmethod
    def build(cls, ids: Sequence[int], texts: Sequence[str]) -> "LexicalIndex":
        bm25s = _bm25s()

        from scipy import sparse

        arr = np.asarray(list(ids), dtype=np.int64)
        bm25 = bm25s.BM25(method="lucene", k1=K1, b=B)
        if not len(texts):
            return cls(arr, None)
        tokens = bm25s.tokenize(list(texts), stopwords="en", stemmer=_stemmer(), return_ids=True, show_progress=False)
        bm25.index(tokens, show_progress=False)
        rows = np.repeat(np.arange(len(tokens.ids)), [len(t) for t in tokens.ids])
        cols = np.fromiter((t for doc in tokens.ids for t in doc), dtype=np.int64, count=len(rows))
        counts = sparse.csc_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                                   shape=(len(tokens.ids), max(len(tokens.vocab), 1)))
        counts.sum_duplicates()
        return cls(arr, bm25, counts, dict(tokens.vocab))

    def __len__(self) -> int:
        return len(self.ids)

    def tokens(self, query: str) -> list[str]:
        bm25s = _bm25s()

        return bm25s.tokenize([query], stopwords="en", stemmer=self._stem, return_ids=False, show_progress=False)[0]

    def scores(self, query: str) -> np.ndarray:
        if self._bm25 is None or not len(self.ids):
            return np.zeros(len(self.ids), dtype=np.float32)
        toks = self.tokens(query)
        if not toks:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(toks), dtype=np.float32)

    def scores_within(self, query: str, mask: np.ndarray) -> np.ndarray:
        """BM25 (Lucene form) of the chunks in ``mask``, with statistics of those chunks only."""
        s = np.zeros(len(self.ids), dtype=np.float64)
        n = int(mask.sum())
        if self._counts is None or n == 0:
            return s.astype(np.float32)
        avgdl = float(self._lengths[mask].mean()) or 1.0
        for tok in self.tokens(query):
            col = self._vocab.get(tok)
            if col is None:
                continue
            lo, hi = self._counts.indptr[col], self._counts.indptr[col + 1]
            rows = self._counts.indices[lo:hi]
            tf = self._counts.data[lo:hi].astype(np.float64)
            keep = mask[rows]
            rows, tf = rows[keep], tf[keep]
            df = len(rows)
            if not df:
                continue
            idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
            s[rows] += idf * tf / (tf + K1 * (1.0 - B + B * self._lengths[rows] / avgdl))
        return s.astype(np.float32)

    def _reader_speller(self, allowed: np.ndarray | None):
        """The vocabulary as the chunks in ``allowed`` (every chunk when None) hold it."""
        from retrieval.spelling import Speller

        if self._speller is None:
            self._speller = Speller(self._vocab, lambda t: 0, self._stem.stemWord)
        mask = None if allowed is None else np.isin(self.ids, allowed)
        indptr, indices = self._counts.indptr, self._counts.indices

        def frequency(term: str) -> int:
            col = self._vocab.get(term)
            if col is None:
                return 0
            rows = indices[indptr[col]:indptr[col + 1]]
            return len(rows) if mask is None else int(mask[rows].sum())

        return self._speller.with_frequency(frequency)

    def correct(self, query: str, allowed: np.ndarray | None = None) -> str:
        """``query`` with misspelt words followed by the closest term of the chunks in ``allowed``
        (every chunk when None): see :mod:`retrieval.spelling`."""
        if self._counts is None:
            return query
        return self._reader_speller(allowed).correct(query)

    def known(self, words: Sequence[str], allowed: np.ndarray | None = None) -> set[str]:
        """Those of ``words`` that a chunk in ``allowed`` holds, or holds a close spelling of
        (every word when the index keeps no term counts: nothing can be told apart)."""
        if self._counts is None:
            return set(words)
        speller = self._reader_speller(allowed)
        return {w for w in words if speller.known(w) or speller.suggest(w)}

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top ``k`` (vector id, score) with a positive score; ``allowed`` is a set of ids."""
        if allowed is not None:
            mask = np.isin(self.ids, allowed)
            if self._counts is not None:
                s = self.scores_within(query, mask)
            else:  # an index written before term counts were kept
                s = np.where(mask, self.scores(query), 0.0)
        else:
            s = self.scores(query)
        positive = int((s > 0).sum())
        k = min(k, positive)
        if k <= 0:
            return []
        top = np.argpartition(-s, k - 1)[:k]
        top = top[np.argsort(-s[top], kind="stable")]
        return [(int(self.ids[i]), float(s[i])) for i in top]

    # -- persistence -----------------------------------------------------------
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "ids.npy", self.ids)
        if self._bm25 is not None:
            self._bm25.save(str(folder / "bm25"))
        if self._counts is not None:
            from scipy import sparse

            sparse.save_npz(folder / "counts.npz", self._counts)
            (folder / "vocab.json").write_text(json.dumps(self._vocab))
        (folder / "ok.json").write_text(json.dumps({"n": int(len(self.ids))}))

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        """The lexical index saved in ``folder``; FileNotFoundError when the folder is gone (a
        newer commit tidied it away), IndexCorruptError naming the file when one is damaged."""
        from retrieval.errors import IndexCorruptError

        if not folder.is_dir():
            raise FileNotFoundError(folder)
        current = folder / "ok.json"
        try:
            n = int(json.loads(current.read_text())["n"])
            current = folder / "ids.npy"
            ids = np.load(current)
            current = folder / "bm25"
            bm25 = _bm25s().BM25.load(str(current)) if current.exists() else None
            counts, vocab = None, None
            if (folder / "counts.npz").exists():
                from scipy import sparse

                current = folder / "counts.npz"
                counts = sparse.load_npz(current).tocsc()
                current = folder / "vocab.json"
                vocab = json.loads(current.read_text())
            if len(ids) != n:
                raise ValueError(f"{len(ids)} ids where {n} were written")
        except FileNotFoundError:
            if not folder.is_dir():
                raise
            raise IndexCorruptError(f"the index file {current} is missing") from None
        except Exception as exc:  # numpy, scipy, zipfile, json and bm25s each raise their own kind
            raise IndexCorruptError(f"the index file {current} is damaged ({type(exc).__name__}: "
                                    f"{str(exc)[:120]})") from None
        return cls(ids, bm25, counts, vocab)
