"""BM25 over the chunks' indexed text (bm25s' tokenizer: English stop words, Snowball stemming).

Each segment of the index keeps its own postings (:class:`Postings`: for every term, the
positions of the chunks that hold it and how often), written once as plain ``.npy`` files
and memory-mapped when read. :func:`bm25_search` scores a query over several segments at
once with statistics (document frequencies, average length) taken over the chunks the
caller may see in all of them: a deleted or restricted chunk can neither appear nor shift
the scores or order of what the reader sees. The formula is Lucene's BM25, as bm25s'
"lucene" method computes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from retrieval.integrity import NUMPY_HEADERS, load_array

K1, B = 1.2, 0.75


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


def _stemmer():
    import Stemmer  # PyStemmer

    return Stemmer.Stemmer("english")


_STEMMER = None


def stemmer():
    global _STEMMER
    if _STEMMER is None:
        _STEMMER = _stemmer()
    return _STEMMER


def preload() -> None:
    """Import what building postings needs (bm25s imports numba: 0.4-0.6 s here), so that a
    job can do it while its last batch embeds instead of at the commit."""
    _bm25s()
    stemmer()


def query_terms(query: str) -> list[str]:
    """The terms of ``query`` as the postings hold them (stop words dropped, stemmed)."""
    return _bm25s().tokenize([query], stopwords="en", stemmer=stemmer(), return_ids=False, show_progress=False)[0]


@dataclass
class Postings:
    """One segment's term -> (chunk positions, counts), column-compressed: the chunks of
    ``terms[t]`` are ``rows[indptr[t]:indptr[t + 1]]``."""

    terms: list[str]
    indptr: np.ndarray  # int64, len(terms) + 1
    rows: np.ndarray  # int32 positions in the segment
    tf: np.ndarray  # float32 counts
    lengths: np.ndarray  # float32 tokens per chunk

    def __post_init__(self) -> None:
        self._vocab: dict[str, int] | None = None

    @property
    def vocab(self) -> dict[str, int]:
        if self._vocab is None:
            self._vocab = {t: i for i, t in enumerate(self.terms)}
        return self._vocab

    def __len__(self) -> int:
        return len(self.lengths)

    def of(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        col = self.vocab.get(term)
        if col is None:
            return None
        lo, hi = int(self.indptr[col]), int(self.indptr[col + 1])
        return self.rows[lo:hi], self.tf[lo:hi]

    # -- building --------------------------------------------------------------------------
    @classmethod
    def build(cls, texts: Sequence[str]) -> "Postings":
        if not len(texts):
            return cls.empty()
        tokens = _bm25s().tokenize(list(texts), stopwords="en", stemmer=stemmer(), return_ids=True,
                                   show_progress=False)
        rows = np.repeat(np.arange(len(tokens.ids)), [len(t) for t in tokens.ids])
        cols = np.fromiter((t for doc in tokens.ids for t in doc), dtype=np.int64, count=len(rows))
        terms = [""] * len(tokens.vocab)
        for term, i in tokens.vocab.items():
            terms[i] = term
        return cls.from_matrix(_matrix(rows, cols, len(tokens.ids), len(terms)), terms)

    @classmethod
    def empty(cls) -> "Postings":
        return cls([], np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32),
                   np.zeros(0, dtype=np.float32))

    @classmethod
    def from_matrix(cls, counts, terms: list[str]) -> "Postings":
        """From a scipy matrix (chunks x terms) of counts."""
        csc = counts.tocsc()
        csc.sum_duplicates()
        lengths = np.asarray(csc.sum(axis=1)).ravel().astype(np.float32)
        return cls(list(terms), csc.indptr.astype(np.int64), csc.indices.astype(np.int32),
                   csc.data.astype(np.float32), lengths)

    def matrix(self):
        from scipy import sparse

        return sparse.csc_matrix((self.tf, self.rows, self.indptr), shape=(len(self), max(len(self.terms), 1)))

    @staticmethod
    def merge(parts: Sequence[tuple["Postings", np.ndarray]]) -> "Postings":
        """The rows ``positions`` of each postings, in that order, as one postings (no text is
        tokenized again)."""
        from scipy import sparse

        vocab: dict[str, int] = {}
        blocks = []
        for postings, positions in parts:
            remap = np.asarray([vocab.setdefault(t, len(vocab)) for t in postings.terms], dtype=np.int64)
            coo = postings.matrix().tocsr()[positions].tocoo()
            blocks.append((coo.row, remap[coo.col] if len(remap) else coo.col, coo.data, len(positions)))
        offset, rows, cols, data = 0, [], [], []
        for r, c, d, n in blocks:
            rows.append(r + offset)
            cols.append(c)
            data.append(d)
            offset += n
        terms = [""] * len(vocab)
        for term, i in vocab.items():
            terms[i] = term
        if not offset:
            return Postings.empty()
        counts = sparse.csc_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
                                   shape=(offset, max(len(terms), 1)))
        return Postings.from_matrix(counts, terms)

    # -- persistence -------------------------------------------------------------------------
    FILES = ("terms.json", "indptr.npy", "rows.npy", "tf.npy", "lengths.npy")

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "terms.json").write_text(json.dumps(self.terms))
        for name in ("indptr", "rows", "tf", "lengths"):
            np.save(folder / f"{name}.npy", getattr(self, name))

    @classmethod
    def load(cls, folder: Path) -> "Postings":
        """Memory-mapped; raises what numpy or json raise on a damaged file (the segment names it)."""
        arrays = {name: load_array(folder / f"{name}.npy", "r") for name in ("indptr", "rows", "tf", "lengths")}
        terms = json.loads((folder / "terms.json").read_text())
        if len(arrays["indptr"]) != len(terms) + 1 or len(arrays["rows"]) != len(arrays["tf"]):
            raise ValueError("the postings' arrays disagree in length")
        return cls(terms, **arrays)


def _matrix(rows, cols, n_rows: int, n_cols: int):
    from scipy import sparse

    return sparse.csc_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_rows, max(n_cols, 1)))


def bm25_search(parts: Sequence[tuple[Postings, np.ndarray, np.ndarray]], terms: Sequence[str], k: int,
                visible: int, total_length: float) -> list[tuple[int, float]]:
    """Top ``k`` (vector id, score), score > 0, over ``parts`` = (postings, mask of the chunks
    the caller sees, vector id of each position); ``visible`` and ``total_length`` count those
    chunks (their number and their tokens) over every part."""
    if visible <= 0 or k <= 0 or not terms:
        return []
    avgdl = (total_length / visible) or 1.0
    found: list[list[tuple[np.ndarray, np.ndarray]]] = []
    df: dict[str, int] = {}
    for postings, mask, _vids in parts:
        per_term = []
        for term in terms:
            hit = postings.of(term)
            if hit is None:
                per_term.append(None)
                continue
            rows, tf = hit
            keep = mask[rows]
            rows, tf = rows[keep], tf[keep]
            per_term.append((rows, tf))
            df[term] = df.get(term, 0) + len(rows)
        found.append(per_term)
    best: list[tuple[float, int]] = []
    for (postings, _mask, vids), per_term in zip(parts, found):
        if all(x is None or not len(x[0]) for x in per_term):
            continue
        scores = np.zeros(len(postings), dtype=np.float64)
        for term, hit in zip(terms, per_term):
            if hit is None or not len(hit[0]):
                continue
            rows, tf = hit
            tf = tf.astype(np.float64)
            n_t = df[term]
            idf = np.log(1.0 + (visible - n_t + 0.5) / (n_t + 0.5))
            scores[rows] += idf * tf / (tf + K1 * (1.0 - B + B * postings.lengths[rows] / avgdl))
        cand = np.flatnonzero(scores > 0)
        if len(cand) > k:
            cand = cand[np.argpartition(-scores[cand], k - 1)[:k]]
        best.extend((float(scores[i]), int(vids[i])) for i in cand)
    best.sort(key=lambda x: (-x[0], x[1]))
    return [(vid, score) for score, vid in best[:k]]


def document_frequency(parts: Sequence[tuple[Postings, np.ndarray]], term: str) -> int:
    """How many of the chunks in the masks hold ``term``."""
    n = 0
    for postings, mask in parts:
        hit = postings.of(term)
        if hit is not None:
            n += int(mask[hit[0]].sum())
    return n


def legacy_postings(folder: Path) -> tuple[np.ndarray, Postings | None]:
    """The ids and postings of a lexical folder written before segments (``lexical-<gen>/``:
    ids.npy, counts.npz, vocab.json); None for postings when it kept no term counts."""
    from scipy import sparse

    ids = load_array(folder / "ids.npy")
    if not (folder / "counts.npz").exists():
        return ids, None
    with NUMPY_HEADERS:
        counts = sparse.load_npz(folder / "counts.npz").tocsc()
    vocab = json.loads((folder / "vocab.json").read_text())
    terms = [""] * counts.shape[1]
    for term, i in vocab.items():
        terms[i] = term
    return ids, Postings.from_matrix(counts, terms)
