"""BM25 over the chunks' indexed text (bm25s, English stop words, Snowball stemming).

Scores are computed for every document and masked before the top-k cut, so a filter
never hides an allowed document behind a forbidden one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np


def _stemmer():
    import Stemmer  # PyStemmer

    return Stemmer.Stemmer("english")


class LexicalIndex:
    def __init__(self, ids: np.ndarray, bm25) -> None:
        self.ids = ids  # position -> vector id
        self._bm25 = bm25
        self._stem = _stemmer()
        self._pos = {int(v): i for i, v in enumerate(ids)}

    @classmethod
    def build(cls, ids: Sequence[int], texts: Sequence[str]) -> "LexicalIndex":
        import bm25s

        arr = np.asarray(list(ids), dtype=np.int64)
        bm25 = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
        if len(texts):
            tokens = bm25s.tokenize(list(texts), stopwords="en", stemmer=_stemmer(), return_ids=True, show_progress=False)
            bm25.index(tokens, show_progress=False)
        return cls(arr, bm25 if len(texts) else None)

    def __len__(self) -> int:
        return len(self.ids)

    def tokens(self, query: str) -> list[str]:
        import bm25s

        return bm25s.tokenize([query], stopwords="en", stemmer=self._stem, return_ids=False, show_progress=False)[0]

    def scores(self, query: str) -> np.ndarray:
        if self._bm25 is None or not len(self.ids):
            return np.zeros(len(self.ids), dtype=np.float32)
        toks = self.tokens(query)
        if not toks:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(toks), dtype=np.float32)

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top ``k`` (vector id, score) with a positive score; ``allowed`` is a set of ids."""
        s = self.scores(query)
        if allowed is not None:
            mask = np.isin(self.ids, allowed)
            s = np.where(mask, s, 0.0)
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
        (folder / "ok.json").write_text(json.dumps({"n": int(len(self.ids))}))

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        import bm25s

        if not (folder / "ok.json").exists():
            raise FileNotFoundError(folder)
        ids = np.load(folder / "ids.npy")
        bm25 = bm25s.BM25.load(str(folder / "bm25")) if (folder / "bm25").exists() else None
        return cls(ids, bm25)
