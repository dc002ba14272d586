"""Immutable segments: what a commit writes, so that it costs what changed.

A commit writes the chunks it adds as one new segment (``segments/seg-<gen>-<k>/``: vector
ids, float vectors, BM25 postings, an IVF index when the segment is large) and marks the
chunks it removes or replaces as dead in the segments that hold them (``dead-<gen>.npy``,
the positions dead as of that generation). Nothing already written is rewritten: the cost
of a commit grows with the documents it changes, not with the index.

Segments are merged in tiers: when ``merge_factor`` segments of about the same size exist,
they become one (their dead chunks dropped). Small merges happen within a commit (up to
``merge_inline_max`` chunks in all); larger ones, and segments more than half dead, wait
for :meth:`retrieval.index.IndexWriter.optimize` (``archivist optimize``, run after each
ingest or reindex job), which commits them as a generation of their own.

Layout of one segment folder::

    vids.npy            vector id of each position (ascending)
    vectors.npy         float32 (n, dim), memory-mapped when read
    ann.faiss           IVF index with 8-bit codes, when n >= ann_threshold
    lexical/            postings (retrieval.lexical.Postings)
    ok.json             written last: n, dim, the ANN's measured recall
    dead-<gen>.npy      positions dead as of generation <gen>
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from retrieval import integrity
from retrieval.errors import IndexCorruptError, IndexWriteError
from retrieval.lexical import Postings
from retrieval.vectors import AnnInfo, DenseVectors, build_ann

FOLDER = "segments"


@dataclass
class SegmentOptions:
    """How the index lays out and searches its segments: the settings' [storage] section."""

    ann_threshold: int = 100_000  # a segment of at least this many chunks also gets an IVF index
    nprobe: int = 32  # IVF lists searched per query (more: better recall, slower)
    merge_factor: int = 8  # this many segments of about one size are merged into one
    merge_inline_max: int = 50_000  # merges up to this many chunks run within a commit; larger ones in optimize

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.ann_threshold < 1000:
            raise ValueError(f"ann_threshold = {self.ann_threshold}; use at least 1000 chunks (e.g. 100000)")
        if self.nprobe < 1:
            raise ValueError(f"nprobe = {self.nprobe}; use a count of lists, e.g. 32")
        if self.merge_factor < 2:
            raise ValueError(f"merge_factor = {self.merge_factor}; use 2 or more, e.g. 8")
        if self.merge_inline_max < 0:
            raise ValueError(f"merge_inline_max = {self.merge_inline_max}; use a count of chunks (0: never merge "
                             "within a commit)")


class Segment:
    """One segment as read from its folder; the postings and the ANN load on first use."""

    def __init__(self, sid: str, folder: Path | None, vids: np.ndarray, dense: DenseVectors | None = None,
                 postings: Postings | None = None, info: dict | None = None):
        self.sid = sid
        self.folder = folder
        self.vids = vids
        self._dense = dense
        self._postings = postings
        self.info = info or {}

    def __len__(self) -> int:
        return len(self.vids)

    @property
    def dense(self) -> DenseVectors:
        if self._dense is None:
            ann = self.info.get("ann")
            self._dense = _reading(self.folder, "vectors.npy",
                                   lambda: DenseVectors.load(self.folder, AnnInfo(**ann) if ann else None))
            if len(self._dense) != len(self):
                raise IndexCorruptError(f"the index file {self.folder / 'vectors.npy'} is damaged "
                                        f"({len(self._dense)} vectors for {len(self)} chunks)")
        return self._dense

    @property
    def postings(self) -> Postings:
        if self._postings is None:
            self._postings = _reading(self.folder / "lexical", "terms.json",
                                      lambda: Postings.load(self.folder / "lexical"))
            if len(self._postings) != len(self):
                raise IndexCorruptError(f"the index file {self.folder / 'lexical' / 'lengths.npy'} is damaged")
        return self._postings

    def positions(self, vids: np.ndarray) -> np.ndarray:
        """The positions in this segment of those ``vids`` it holds."""
        if not len(vids) or not len(self.vids):
            return np.zeros(0, dtype=np.int64)
        at = np.searchsorted(self.vids, vids)
        inside = at < len(self.vids)
        at, vids = at[inside], vids[inside]
        return at[np.asarray(self.vids)[at] == vids].astype(np.int64)

    def live_mask(self, dead: np.ndarray | None) -> np.ndarray:
        live = np.ones(len(self), dtype=bool)
        if dead is not None and len(dead):
            live[dead] = False
        return live

    def dead_positions(self, gen: int | None) -> np.ndarray | None:
        if gen is None:
            return None
        return _reading(self.folder, f"dead-{gen}.npy", lambda: integrity.load_array(self.folder / f"dead-{gen}.npy"))

    def with_vectors(self, vectors: np.ndarray) -> "Segment":
        """This segment searched with other vectors (another embedder's), exactly."""
        return Segment(self.sid, self.folder, self.vids, DenseVectors(vectors), self._postings, self.info)


def _reading(folder: Path, first: str, load):
    try:
        return _parsed(load)
    except FileNotFoundError as exc:
        if not folder.exists():
            raise  # a newer commit tidied the segment away: the reader reads the generation again
        name = Path(exc.filename).name if exc.filename else first
        raise IndexCorruptError(f"the index file {folder / name} is missing") from None
    except IndexCorruptError:
        raise
    except Exception as exc:  # numpy, json and faiss each raise their own kind
        if not folder.exists():  # tidied away while it was read: not damage, the reader reads again
            raise FileNotFoundError(str(folder)) from exc
        raise IndexCorruptError(f"an index file in {folder} is damaged ({type(exc).__name__}: "
                                f"{str(exc)[:120]})") from None


def _parsed(load, tries: int = 3):
    """``load()``, again when CPython's AST builder failed under it: code of another thread (not
    an array of ours: those wait for :data:`retrieval.integrity.NUMPY_HEADERS`) parsed at the
    same time, which is no damage of the file (python/cpython#106905)."""
    for attempt in range(tries):
        try:
            return load()
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc) or attempt == tries - 1:
                raise


def read_segment(root: Path, sid: str) -> Segment:
    folder = root / FOLDER / sid
    if not folder.is_dir():
        raise FileNotFoundError(folder)
    ok = folder / "ok.json"
    info = _reading(folder, "ok.json", lambda: json.loads(ok.read_text()))
    vids = _reading(folder, "vids.npy", lambda: integrity.load_array(folder / "vids.npy", "r"))
    if len(vids) != int(info.get("n", -1)):
        raise IndexCorruptError(f"the index file {folder / 'vids.npy'} is damaged ({len(vids)} ids where "
                                f"{info.get('n')} were written)")
    return Segment(sid, folder, vids, info=info)


def write_segment(root: Path, sid: str, vids: np.ndarray, vectors: np.ndarray, postings: Postings,
                  options: SegmentOptions) -> tuple[Segment, dict]:
    """Write a segment (vids ascending) and read it back; returns it and its files' records."""
    folder = root / FOLDER / sid
    order = np.argsort(vids, kind="stable")
    if not np.array_equal(order, np.arange(len(vids))):
        raise ValueError("a segment's vector ids must be ascending")
    if folder.exists():
        shutil.rmtree(folder)  # left by a commit that crashed before it was published
    try:
        folder.mkdir(parents=True)
        np.save(folder / "vids.npy", np.asarray(vids, dtype=np.int64))
        ann, ann_info = None, None
        if len(vids) >= options.ann_threshold:
            ann, ann_info = build_ann(np.asarray(vectors, dtype=np.float32), nprobe=options.nprobe)
        DenseVectors(np.asarray(vectors, dtype=np.float32), ann).save(folder)
        postings.save(folder / "lexical")
        info = {"n": int(len(vids)), "dim": int(vectors.shape[1]) if len(vids) else 0,
                "ann": ann_info.__dict__ if ann_info else None}
        (folder / "ok.json").write_text(json.dumps(info))
        files = integrity.record([folder], root)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise IndexWriteError(f"could not write the segment {folder} ({exc.strerror or exc}): is the disk full? "
                              "The previous generation of the index stays in use.") from None
    segment = read_segment(root, sid)
    try:
        segment.dense, segment.postings  # read back: a file the disk cut short fails here, not in a reader
    except IndexCorruptError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise IndexWriteError(f"{exc}: is the disk full? The previous generation of the index stays in use.") from None
    return segment, files


def write_dead(root: Path, segment: Segment, gen: int, dead: np.ndarray) -> dict:
    path = root / FOLDER / segment.sid / f"dead-{gen}.npy"
    np.save(path, np.unique(np.asarray(dead, dtype=np.int64)))
    return integrity.record([path], root)


def merged(root: Path, sid: str, parts: Sequence[tuple[Segment, np.ndarray]], options: SegmentOptions,
           vectors_of=None) -> tuple[Segment, dict]:
    """The live rows of ``parts`` (segment, live mask) written as one segment. ``vectors_of``
    (vids -> vectors) replaces the segments' own vectors (re-embedding into another space)."""
    vids = np.concatenate([np.asarray(s.vids)[live] for s, live in parts]) if parts else np.zeros(0, np.int64)
    order = np.argsort(vids, kind="stable")
    positions = [np.flatnonzero(live) for _s, live in parts]
    postings = Postings.merge([(s.postings, p) for (s, _l), p in zip(parts, positions)])
    postings = Postings.merge([(postings, order)]) if len(order) else postings
    if vectors_of is not None:
        vectors = vectors_of(vids[order])
    else:
        stacked = [np.asarray(s.dense.vectors[p], dtype=np.float32) for (s, _l), p in zip(parts, positions)]
        vectors = np.concatenate(stacked)[order] if stacked else np.zeros((0, 0), np.float32)
    return write_segment(root, sid, vids[order], vectors, postings, options)


def tier(size: int, factor: int) -> int:
    return int(math.log(max(size, 1), factor))


def plan_merges(sizes: Sequence[tuple[int, int]], options: SegmentOptions, limit: int | None) -> list[list[int]]:
    """Groups of segment indices to merge, given each segment's (chunks written, chunks live).

    ``merge_factor`` live segments of one size tier merge into one (the smallest first); a
    segment more than half dead is rewritten alone. ``limit``: the most chunks one merge may
    read (None: no limit)."""
    live = {i: n_live for i, (_n, n_live) in enumerate(sizes)}
    groups: list[list[int]] = []
    for i, (n, n_live) in enumerate(sizes):
        if n and n_live * 2 < n and (limit is None or n <= limit):
            groups.append([i])
            live.pop(i)
    members = {i: [i] for i in live}
    blocked: set[int] = set()
    while True:
        by_tier: dict[int, list[int]] = {}
        for i, n_live in live.items():
            by_tier.setdefault(tier(n_live, options.merge_factor), []).append(i)
        due = [(t, sorted(g, key=lambda i: live[i])) for t, g in sorted(by_tier.items())
               if len(g) >= options.merge_factor and t not in blocked]
        if not due:
            break
        t, group = due[0]
        group = group[: options.merge_factor]
        reads = sum(sizes[j][0] for i in group for j in members[i])
        if limit is not None and reads > limit:
            blocked.add(t)
            continue
        head = group[0]
        for i in group[1:]:
            members[head].extend(members.pop(i))
            live[head] += live.pop(i)
    groups.extend(sorted(m) for m in members.values() if len(m) > 1)
    return groups
