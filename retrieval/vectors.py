"""Dense vectors of one segment: normalised float32 rows, inner product, exact scores.

The vectors live in a ``.npy`` file that is memory-mapped, so a large index does not have
to fit in memory. A segment below the ANN threshold is searched exactly (one matrix
product over the rows the caller may see). A larger one also keeps an IVF index with 8-bit
codes (:func:`build_ann`): it proposes candidates from the ``nprobe`` nearest lists, and
their exact scores are computed again from the float vectors, so every score a caller sees
is the true cosine. The caller's mask applies inside the search (a FAISS id selector),
never after a top-k cut, and where the ANN cannot find enough visible candidates the
exact search over the visible rows answers instead.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: rows visible to a caller below which exact search over them is cheaper than the ANN
EXACT_BELOW = 20_000


@dataclass
class AnnInfo:
    nlist: int
    recall_at_10: float  # against exact search, on queries near the segment's own vectors
    queries: int


class DenseVectors:
    def __init__(self, vectors: np.ndarray, ann=None, ann_info: AnnInfo | None = None):
        self.vectors = vectors  # (n, dim) float32, often a memory map
        self.ann = ann
        self.ann_info = ann_info
        self._fd: int | None = None

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """The vectors at ``positions``. From a memory map they are read with pread, not through
        the map: the page cache maps whole large folios (2 MB) for one 1.5 kB row, and the
        resident set grew by 1.6 GB per 100 queries on a million chunks."""
        filename = getattr(self.vectors, "filename", None)
        if filename is None or not len(positions):
            return np.asarray(self.vectors[positions], dtype=np.float32)
        if self._fd is None:
            self._fd = os.open(filename, os.O_RDONLY)
        width = self.dim * 4
        out = np.empty((len(positions), self.dim), dtype=np.float32)
        for i, p in enumerate(np.asarray(positions, dtype=np.int64).tolist()):
            out[i] = np.frombuffer(os.pread(self._fd, width, self.vectors.offset + p * width), dtype=np.float32)
        return out

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0

    def search(self, query: np.ndarray, k: int, mask: np.ndarray, visible: int, nprobe: int = 32,
               bits: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(positions, scores) of the best ``k`` rows among ``mask`` (``visible`` of them),
        best first. ``bits``: ``mask`` packed for FAISS (little bit order), when the caller has it."""
        if k <= 0 or visible <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        if self.ann is not None and visible > EXACT_BELOW:
            got = self._ann_search(q, k, mask, visible, nprobe, bits)
            if got is not None:
                return got
        return self._exact(q, k, mask, visible)

    def _exact(self, q: np.ndarray, k: int, mask: np.ndarray, visible: int):
        if visible == len(mask):
            positions = None
            scores = self.vectors @ q
        else:
            positions = np.flatnonzero(mask)
            # a large segment's few visible rows are read one by one; a small one is resident anyway
            scores = (self.rows(positions) if self.ann is not None else self.vectors[positions]) @ q
        return _top(scores, k, positions)

    def _ann_search(self, q, k, mask, visible, nprobe, bits):
        import faiss

        want = min(k, visible)
        if bits is None:
            bits = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits)) if visible < len(mask) else None
        for probe in (nprobe, nprobe * 4):
            params = faiss.SearchParametersIVF(nprobe=min(probe, self.ann.nlist), sel=selector)
            _d, ids = self.ann.search(q.reshape(1, -1), want, params=params)
            positions = ids[0][ids[0] >= 0]
            if len(positions) >= want:
                positions = np.sort(positions)
                return _top(self.rows(positions) @ q, want, positions)
        return None  # too few visible rows in the lists probed: exact search answers

    # -- building and persistence --------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Written by Python's own I/O, synced and read back (faiss's writer only prints "close
        error" when the disk is full, leaving a truncated file behind)."""
        import io

        import faiss

        from retrieval.integrity import write_bytes_durably

        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(self.vectors, dtype=np.float32))
        write_bytes_durably(folder / "vectors.npy", buffer.getbuffer())
        if self.ann is not None:
            write_bytes_durably(folder / "ann.faiss", faiss.serialize_index(self.ann).tobytes())

    @classmethod
    def load(cls, folder: Path, ann_info: AnnInfo | None = None) -> "DenseVectors":
        from retrieval.integrity import load_array

        vectors = load_array(folder / "vectors.npy", "r")
        ann = None
        if (folder / "ann.faiss").exists():
            import faiss

            ann = faiss.read_index(str(folder / "ann.faiss"))
        return cls(vectors, ann, ann_info)


def _top(scores: np.ndarray, k: int, positions: np.ndarray | None):
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    top = top[np.argsort(-scores[top], kind="stable")]
    where = top if positions is None else positions[top]
    return where.astype(np.int64), scores[top].astype(np.float32)


def build_ann(vectors: np.ndarray, *, seed: int = 0, nprobe: int = 32, check_queries: int = 200):
    """An IVF index with 8-bit scalar codes over ``vectors`` (trained on a sample of them), and
    its recall@10 against exact search on queries near the vectors (each a row plus noise)."""
    import faiss

    n, dim = vectors.shape
    nlist = int(min(65536, n // 39, max(16, 2 * round(math.sqrt(n)))))  # faiss wants 39 points per list
    quantizer = faiss.IndexFlatIP(dim)
    ann = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                        faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, 64 * nlist), replace=False))
    ann.train(np.ascontiguousarray(vectors[sample], dtype=np.float32))
    for at in range(0, n, 100_000):
        ann.add(np.ascontiguousarray(vectors[at:at + 100_000], dtype=np.float32))
    ann.nprobe = nprobe
    dense = DenseVectors(vectors, ann)
    recall = measure_recall(dense, rng, check_queries, nprobe)
    return ann, AnnInfo(nlist, recall, check_queries)


def measure_recall(dense: DenseVectors, rng, queries: int, nprobe: int) -> float:
    """Mean share of the exact top 10 that the ANN path returns, over ``queries`` queries made
    of a random row plus noise of the same norm (not the row itself, which is trivially found)."""
    n, dim = dense.vectors.shape
    rows = rng.choice(n, size=min(queries, n), replace=False)
    noise = rng.standard_normal((len(rows), dim)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    qs = np.asarray(dense.vectors[np.sort(rows)], dtype=np.float32) + noise * 0.8
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    mask = np.ones(n, dtype=bool)
    found = []
    for q in qs:
        exact = set(dense._exact(q, 10, mask, n)[0].tolist())
        approx = dense._ann_search(q, 10, mask, n, nprobe, None)
        got = set(approx[0].tolist()) if approx is not None else exact
        found.append(len(exact & got) / max(len(exact), 1))
    return float(np.mean(found)) if found else 1.0


def legacy_vectors(path: Path, vids: np.ndarray) -> np.ndarray:
    """The rows ``vids`` of a FAISS file written before segments (``vectors-<gen>.faiss``, an
    IndexIDMap2 keyed by vector id)."""
    import faiss

    from retrieval.errors import IndexCorruptError

    if not path.exists():
        raise FileNotFoundError(path)
    try:
        index = faiss.read_index(str(path))
        out = np.zeros((len(vids), index.d), dtype=np.float32)
        for i, vid in enumerate(vids):
            out[i] = index.reconstruct(int(vid))
    except RuntimeError as exc:
        raise IndexCorruptError(f"the index file {path} is damaged ({str(exc).splitlines()[0][:120]})") from None
    return out
