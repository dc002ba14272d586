"""Dense vectors in FAISS: exact inner product over normalised vectors, keyed by chunk id.

A flat index keeps search exact and supports removal; filters run inside the search
through an id selector, never after a top-k cut.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class VectorIndex:
    def __init__(self, dim: int, index=None):
        import faiss

        self.dim = dim
        self._faiss = faiss
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids) -> int:
        ids = np.asarray(list(ids), dtype=np.int64)
        if not len(ids):
            return 0
        return int(self.index.remove_ids(self._faiss.IDSelectorBatch(ids)))

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        if len(self) == 0 or k <= 0:
            return []
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        if allowed is not None:
            if not len(allowed):
                return []
            params = self._faiss.SearchParameters(sel=self._faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)))
            k = min(k, len(allowed))
            scores, ids = self.index.search(q, k, params=params)
        else:
            scores, ids = self.index.search(q, min(k, len(self)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def save(self, path: Path) -> list:
        """Written by Python's own I/O and read back (faiss's writer only prints "close error"
        when the disk is full, leaving a truncated file behind); returns [size, sha256]."""
        from retrieval.integrity import write_bytes_durably

        return write_bytes_durably(path, self._faiss.serialize_index(self.index).tobytes())

    @classmethod
    def load(cls, path: Path, dim: int) -> "VectorIndex":
        import faiss

        from retrieval.errors import IndexCorruptError

        if not path.exists():
            raise FileNotFoundError(path)
        try:
            return cls(dim, faiss.read_index(str(path)))
        except RuntimeError as exc:
            raise IndexCorruptError(f"the index file {path} is damaged ({str(exc).splitlines()[0][:120]})") from None

    def copy(self) -> "VectorIndex":
        return VectorIndex(self.dim, self._faiss.clone_index(self.index))
