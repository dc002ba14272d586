"""The index: SQLite chunks + immutable segments of vectors and BM25 postings, committed
atomically by generation.

Layout of an index folder::

    archivist.sqlite        chunks, documents, meta (generation, embedder, each generation's
                            vector space: retrieval.spaces, its segments, next id)
    segments/seg-<gen>-<k>/ vectors, postings and dead chunks of one segment (retrieval.segments)
    write.lock              held by the one process that writes

A commit writes the new segment and the dead-chunk lists of the segments it touches, then
flips ``meta.generation`` (and ``meta.segments-<gen>``, the list of the generation's
segments) in one SQLite transaction: it costs what changed, not the size of the index. A
reader (or a crash at any moment) sees G or G+1, never a mix; readers notice a new
generation on their next search and reload only the segments they have not read yet.

An index written before segments (``vectors-<gen>.faiss``, ``lexical-<gen>/``) is read as
one segment, and written as one by its next commit.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from retrieval import integrity, store
from retrieval.chunk import Chunk, Hit
from retrieval.embedder import Embedder
from retrieval.errors import EmptyIndexError, IndexCorruptError, IndexLockedError, IndexWriteError
from retrieval.filters import SearchFilter
from retrieval.fusion import convex, relative, rrf
from retrieval.indexed_text import doc_title, indexed_text
from retrieval.lexical import Postings, legacy_postings
from retrieval.segments import FOLDER as SEGMENTS
from retrieval.segments import Segment, SegmentOptions, merged, plan_merges, read_segment, write_dead, write_segment
from retrieval.snapshot import Snapshot, Visible
from retrieval.spaces import Space, Spaces, space_of
from retrieval.vectors import legacy_vectors

log = logging.getLogger(__name__)

DB_NAME = "archivist.sqlite"
MODES = ("hybrid", "dense", "lexical")


def chunk_index_text(chunk: Chunk) -> str:
    return indexed_text(doc_title(chunk.doc), chunk.section, chunk.text)


@dataclass
class SearchOptions:
    """How the index searches; the settings' [search] section is this, plus what the faces use."""

    mode: str = "hybrid"  # hybrid | dense | lexical
    fusion: str = "relative"  # relative | convex | rrf (see retrieval/fusion.py)
    alpha: float = 0.5  # weight of the dense scores in relative/convex fusion
    candidates: int = 100  # per list, before fusion

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """ValueError naming the option and what to use instead."""
        if self.mode not in MODES:
            raise ValueError(f"mode = {self.mode!r}; use hybrid, dense or lexical")
        if self.fusion not in ("relative", "convex", "rrf"):
            raise ValueError(f"fusion = {self.fusion!r}; use relative, convex or rrf")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha = {self.alpha}; it must lie between 0 and 1")
        if self.candidates < 1:
            raise ValueError(f"candidates = {self.candidates}; use a count, e.g. 100")


@dataclass
class DocumentInfo:
    doc: str
    format: str | None = None
    pages: int | None = None
    size: int | None = None
    mtime: float | None = None
    hash: str | None = None
    chunks: int = 0
    source: str | None = None
    groups: tuple[str, ...] = ()
    indexed_at: str | None = None


_OWN = object()  # search(): the index's own reranker


class Index:
    """Open (or create) the index in ``path`` for ``embedder``.

    The embedder's ``name`` must match the one the index was built with, unless the index was
    re-embedded with a fine-tuned embedder (:meth:`IndexWriter.reembed`): then the generation's
    own space serves (:mod:`retrieval.spaces`). An embedder is only loaded when something needs
    embedding.
    """

    def __init__(self, path: str | os.PathLike, embedder: Embedder, options: SearchOptions | None = None,
                 reranker=None, space_loader=None, layout: SegmentOptions | None = None):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._spaces = Spaces(embedder, self.path, space_loader)
        self.options = options or SearchOptions()
        self.layout = layout or SegmentOptions()
        self.reranker = reranker  # a retrieval.reranker.CrossEncoderReranker, or None
        self._local = threading.local()  # one SQLite connection per thread: the web app serves many
        self._connections: list = []
        store.init_schema(self._con)
        self._lock = threading.RLock()
        self._gen_loaded = -1
        self._gen_broken = -1  # a generation whose files were found damaged
        self._snapshot: Snapshot | None = None
        self._segments: dict[str, Segment] = {}  # read once, shared by the generations that hold them
        self._visible: OrderedDict = OrderedDict()  # (generation, filter) -> Visible, the last few
        self._embedder_loaded: Embedder | None = None  # the space of the loaded generation
        self._pinned = False
        current = self._space(self.generation)
        if current is not None and current.name != embedder.name and not current.path:
            self._spaces.embedder(current)  # IndexMismatchError, saying what to do

    @property
    def _con(self):
        """This thread's connection. When the index folder is a link that was pointed at another
        copy (a replica's sync, docs/deploy.md), the thread connects to the new copy."""
        con = getattr(self._local, "con", None)
        target = os.path.realpath(self.path)
        if con is None or self._local.target != target:
            con = store.connect(Path(target) / DB_NAME)
            self._local.con, self._local.target = con, target
            self._connections.append(con)
        return con

    # -- facts -----------------------------------------------------------------
    @property
    def generation(self) -> int:
        return int(store.get_meta(self._con, "generation", "0") or 0)

    @property
    def built_with(self) -> str | None:
        return store.get_meta(self._con, "embedder")

    @property
    def embedder(self) -> Embedder:
        """The embedder of the committed generation's vector space (the settings' one, or a
        promoted fine-tuned one)."""
        if self._pinned:
            return self._embedder_loaded
        return self._spaces.embedder(self._space(self.generation))

    @property
    def base_embedder(self) -> Embedder:
        """The embedder the settings name: the starting point of fine-tuning and of a roll back."""
        return self._spaces.base

    def _space(self, gen: int) -> Space | None:
        recorded = Space.from_json(store.get_meta(self._con, f"space-{gen}"))
        if recorded is not None:
            return recorded
        name = store.get_meta(self._con, "embedder")  # an index from before spaces were recorded
        return Space(name) if name else None

    def space(self) -> Space | None:
        """The vector space of the committed generation (None: nothing committed yet)."""
        return self._space(self.generation)

    def embed_live(self, embedder: Embedder, *, known: dict[str, np.ndarray] | None = None,
                   on_progress=None, batch: int = 256) -> "LiveVectors":
        """Every live chunk of the committed generation embedded with ``embedder`` (those in
        ``known``, by chunk id, taken from there); ``on_progress(done, total)`` after each batch."""
        known = known or {}
        gen = self.generation
        rows = list(store.live_rows(self._con, gen, "vid, id, doc, section, text"))
        vectors = np.zeros((len(rows), embedder.dim), dtype=np.float32)
        missing = [i for i, r in enumerate(rows) if r["id"] not in known]
        for i, r in enumerate(rows):
            if r["id"] in known:
                vectors[i] = known[r["id"]]
        for at in range(0, len(missing), batch):
            part = missing[at : at + batch]
            texts = [indexed_text(doc_title(rows[i]["doc"]), rows[i]["section"], rows[i]["text"]) for i in part]
            vectors[part] = embedder.embed(texts)
            if on_progress:
                on_progress(min(at + batch, len(missing)), len(missing))
        return LiveVectors(gen, np.asarray([r["vid"] for r in rows], dtype=np.int64), [r["id"] for r in rows],
                           vectors, len(missing))

    def in_space(self, embedder: Embedder, vectors: "LiveVectors") -> "Index":
        """A read-only view of this index searched with other vectors (a fine-tuned embedder's,
        before it is promoted): the chunks and the lexical side of ``vectors.generation``."""
        import copy

        gen = self.refresh()
        if gen != vectors.generation:
            raise RuntimeError(f"the vectors are of generation {vectors.generation}, the index is at {gen}: "
                               "embed it again")
        view = copy.copy(self)
        view._lock = threading.RLock()
        view._visible = OrderedDict()
        view._snapshot = self._snapshot.with_vectors(vectors.vids, vectors.vectors, embedder.dim)
        view._embedder_loaded, view._pinned = embedder, True
        return view

    def __len__(self) -> int:
        gen = self.generation
        return self._con.execute(f"SELECT COUNT(*) FROM chunks WHERE {store.LIVE}", {"gen": gen}).fetchone()[0]

    def close(self) -> None:
        for con in self._connections:
            try:
                con.close()
            except Exception:  # a connection of a thread that is gone
                pass
        self._connections.clear()
        self._local = threading.local()

    # -- loading a generation ----------------------------------------------------
    def _files(self, gen: int) -> tuple[Path, Path]:
        return self.path / f"vectors-{gen}.faiss", self.path / f"lexical-{gen}"

    def refresh(self) -> int:
        """Load the latest committed generation if it is not loaded yet. When its files are
        damaged, the generation before it (kept until the next commit) serves, with a warning."""
        if self._pinned:  # a view in another space (in_space) stays on its generation
            return self._gen_loaded
        with self._lock:
            for _ in range(5):
                gen = self.generation
                if gen in (self._gen_loaded, self._gen_broken):
                    return self._gen_loaded
                if gen == 0:
                    self._snapshot, self._gen_loaded = None, 0
                    return 0
                try:
                    self._load(gen)
                    return gen
                except FileNotFoundError:
                    time.sleep(0.05)  # a newer commit removed these files: read the generation again
                except IndexCorruptError as exc:
                    if self.generation != gen:  # a newer commit tidied files away while they were read
                        time.sleep(0.05)
                        continue
                    return self._fall_back(gen, exc)
            raise IndexCorruptError(f"could not load a consistent generation of the index in {self.path}: "
                                    "its files keep changing or are missing")

    def _load(self, gen: int) -> None:
        recorded = store.get_meta(self._con, f"files-{gen}")
        if recorded:
            integrity.check_sizes(json.loads(recorded), self.path)
        embedder = self._spaces.embedder(self._space(gen))
        snapshot = self._read_snapshot(self._con, gen)
        self._segments = {s.sid: s for s in snapshot.segments if s.folder is not None}  # the others are gone
        self._visible.clear()
        self._snapshot, self._embedder_loaded, self._gen_loaded = snapshot, embedder, gen

    def _read_snapshot(self, con, gen: int) -> Snapshot:
        """Generation ``gen``'s segments with their live masks (FileNotFoundError when a newer
        commit tidied them away, IndexCorruptError naming a damaged file)."""
        dim = int(store.get_meta(con, "dim", "0") or 0)
        records = store.get_meta(con, f"segments-{gen}")
        if records is None:
            legacy = self._legacy_segment(gen)
            return Snapshot(gen, [(legacy, np.ones(len(legacy), dtype=bool))], dim, self.layout.nprobe)
        parts = []
        for record in json.loads(records):
            segment = self._segments.get(record["id"])
            if segment is None:
                segment = read_segment(self.path, record["id"])
                segment.dense, segment.postings  # opened now: a later commit may tidy the folder away
                self._segments[segment.sid] = segment  # a writer's next commit reads it from here
            parts.append((segment, segment.live_mask(segment.dead_positions(record.get("dead")))))
        return Snapshot(gen, parts, dim, self.layout.nprobe)

    def _remember(self, segments: list[Segment]) -> None:
        """After a commit: keep ``segments`` (the new generation's) and the loaded generation's
        read, forget the rest (merged away)."""
        loaded = self._snapshot.segments if self._snapshot is not None else []
        self._segments = {s.sid: s for s in list(segments) + loaded if s.folder is not None}

    def _legacy_segment(self, gen: int) -> Segment:
        """Generation ``gen`` of an index written before segments, read as one segment in memory."""
        vpath, lpath = self._files(gen)
        if not lpath.is_dir() or not vpath.exists():
            raise FileNotFoundError(vpath if lpath.is_dir() else lpath)
        try:
            ids, postings = legacy_postings(lpath)
        except FileNotFoundError:
            raise IndexCorruptError(f"the index file {lpath / 'ids.npy'} is missing") from None
        except Exception as exc:  # numpy, scipy and json each raise their own kind
            raise IndexCorruptError(f"the index file in {lpath} is damaged ({type(exc).__name__}: "
                                    f"{str(exc)[:120]})") from None
        if postings is None:  # written before term counts were kept: tokenized again, once
            texts = {r["vid"]: indexed_text(doc_title(r["doc"]), r["section"], r["text"])
                     for r in store.live_rows(self._con, gen, "vid, doc, section, text")}
            postings = Postings.build([texts[int(v)] for v in ids])
        from retrieval.vectors import DenseVectors

        return Segment(f"legacy-{gen}", None, np.asarray(ids, dtype=np.int64),
                       DenseVectors(legacy_vectors(vpath, ids)), postings)

    def _fall_back(self, gen: int, damage: IndexCorruptError) -> int:
        if gen > 1:
            try:
                if self._gen_loaded != gen - 1:
                    self._load(gen - 1)
            except (FileNotFoundError, IndexCorruptError):
                pass
            else:
                self._gen_broken = gen
                log.warning("%s; serving the generation before it (%d). Run the ingest or reindex again to "
                            "write a new one.", damage, gen - 1)
                return gen - 1
        raise IndexCorruptError(f"{damage}. No earlier generation is left to serve: rebuild the index "
                                "('archivist ingest --force PATH' or 'archivist reindex --force') or restore it "
                                "from a backup") from None

    # -- reading -----------------------------------------------------------------
    def _allowed(self, gen: int, flt: SearchFilter | None) -> np.ndarray | None:
        if flt is None or flt.is_open:
            return None
        where, params = flt.sql()
        params["gen"] = gen
        rows = self._con.execute(f"SELECT vid FROM chunks WHERE {store.LIVE} AND {where}", params).fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def chunks_by_vid(self, vids: Sequence[int]) -> dict[int, Chunk]:
        out: dict[int, Chunk] = {}
        vids = list(vids)
        for i in range(0, len(vids), 500):
            part = vids[i : i + 500]
            marks = ",".join("?" * len(part))
            for row in self._con.execute(f"SELECT * FROM chunks WHERE vid IN ({marks})", part):
                out[row["vid"]] = store.row_to_chunk(row)
        return out

    def get_chunk(self, chunk_id: str) -> Chunk | None:
        gen = self.generation
        row = self._con.execute(f"SELECT * FROM chunks WHERE id=:id AND {store.LIVE}", {"id": chunk_id, "gen": gen}).fetchone()
        return store.row_to_chunk(row) if row else None

    def stored_vectors(self, doc: str) -> tuple[list[Chunk], np.ndarray]:
        """A document's chunks and their vectors as committed, to reuse them (a moved file)."""
        with self._lock:
            gen = self.refresh()
            snapshot = self._snapshot
        rows = self._con.execute(
            f"SELECT * FROM chunks WHERE doc=:doc AND {store.LIVE} ORDER BY ordinal", {"doc": doc, "gen": gen}
        ).fetchall()
        if not rows or snapshot is None:
            return [], np.zeros((0, 0), dtype=np.float32)
        vecs = snapshot.vectors_of(np.asarray([r["vid"] for r in rows], dtype=np.int64))
        return [store.row_to_chunk(r) for r in rows], vecs

    def files(self) -> dict[str, dict]:
        """The manifest: every source file seen, by document name."""
        return {r["doc"]: dict(r) for r in self._con.execute("SELECT * FROM files")}

    def document_chunks(self, doc: str) -> list[Chunk]:
        gen = self.generation
        rows = self._con.execute(
            f"SELECT * FROM chunks WHERE doc=:doc AND {store.LIVE} ORDER BY ordinal", {"doc": doc, "gen": gen}
        )
        return [store.row_to_chunk(r) for r in rows]

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: str | None = None,
        filter: SearchFilter | None = None,
        query_vector: np.ndarray | None = None,
        query_space: str | None = None,
        rerank: bool | None = None,
        reranker=_OWN,
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query``; the filter applies before any cut.

        ``query_vector`` saves embedding the query again; with ``query_space`` (the name of the
        embedder that computed it) it is used only when the generation searched is in that space,
        so a query embedded just before a re-embedding commit is embedded again, not compared
        with vectors of another space.

        With a reranker (the index's own, or ``reranker`` for this search), the best
        ``reranker.candidates`` are reordered by it before the cut (``rerank=False`` skips it
        for one search)."""
        mode = mode or self.options.mode
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        query = (query or "").strip()
        if not query:
            raise ValueError("the query is empty; type a question or some keywords")
        with self._lock:
            gen = self.refresh()
            if gen == 0 or self._snapshot is None:
                raise EmptyIndexError(f"the index in {self.path} is empty; run 'archivist ingest PATH' first")
            snapshot, embedder = self._snapshot, self._embedder_loaded or self.embedder
        visible = self._visible_of(snapshot, filter)
        n = max(self.options.candidates, k)
        dense: list[tuple[int, float]] = []
        lex: list[tuple[int, float]] = []
        if mode in ("dense", "hybrid"):
            same_space = query_vector is not None and query_space in (None, embedder.name)
            qv = query_vector if same_space else embedder.embed_query(query)
            dense = snapshot.dense(qv, n, visible)
        if mode in ("lexical", "hybrid"):
            lex = snapshot.lexical(query, n, visible)
        if mode == "dense":
            ranked = dense
        elif mode == "lexical":
            ranked = lex
        elif self.options.fusion == "rrf":
            ranked = rrf([dense, lex])
        elif self.options.fusion == "convex":
            ranked = convex(dense, lex, self.options.alpha)
        else:
            ranked = relative(dense, lex, self.options.alpha)
        if reranker is _OWN:
            reranker = self.reranker
        if rerank is False:
            reranker = None
        top = ranked[: max(k, reranker.candidates) if reranker is not None else k]
        chunks = self.chunks_by_vid([v for v, _ in top])
        dense_of, lex_of = dict(dense), dict(lex)
        found = [(v, s) for v, s in top if v in chunks]  # a row purged by a newer commit drops out
        hits = [
            Hit(chunks[v], float(s), i + 1, dense=dense_of.get(v), lexical=lex_of.get(v))
            for i, (v, s) in enumerate(found)
        ]
        if reranker is not None and hits:  # the candidates already passed the filter
            hits = reranker.rerank(query, hits, [chunk_index_text(h.chunk) for h in hits])
        return hits[:k]

    def _visible_of(self, snapshot: Snapshot, filter: SearchFilter | None) -> Visible:
        """The chunks of ``snapshot`` the filter lets through; the last few filters' answers are
        kept per generation (a reader's groups are asked of SQLite once, not per search)."""
        if filter is None or filter.is_open:
            return snapshot.everything()
        where, params = filter.sql()
        access = store.get_meta(self._con, "access", "0")  # who may read what changes without a new generation
        key = (snapshot.generation, access, where, tuple(sorted(params.items())))
        with self._lock:
            if key in self._visible:
                self._visible.move_to_end(key)
                return self._visible[key]
        visible = snapshot.visible(self._allowed(snapshot.generation, filter))
        with self._lock:
            self._visible[key] = visible
            while len(self._visible) > 32:
                self._visible.popitem(last=False)
        return visible

    def _readers_speller(self, filter: SearchFilter | None):
        """The vocabulary of the current commit as the reader's chunks hold it; None when there is
        nothing committed to ask."""
        with self._lock:
            gen = self.refresh()
            snapshot = self._snapshot
        if gen == 0 or snapshot is None:
            return None
        return snapshot.speller(self._visible_of(snapshot, filter))

    def correct(self, query: str, *, filter: SearchFilter | None = None) -> str:
        """``query`` with each word the reader's chunks never use followed by the closest word they
        do use ("gendr" -> "gendr gender"); unchanged when every word is known."""
        speller = self._readers_speller(filter)
        return query if speller is None else speller.correct(query)

    def known_words(self, words: list[str], *, filter: SearchFilter | None = None) -> set[str]:
        """Those of ``words`` that the reader's chunks use (or use a close spelling of); every word
        where the index has nothing committed to tell by."""
        speller = self._readers_speller(filter)
        if speller is None:
            return set(words)
        return {w for w in words if speller.known(w) or speller.suggest(w)}

    def note(self, key: str) -> str | None:
        """A value the index keeps beside its chunks (e.g. its answer calibration), or None."""
        return store.get_meta(self._con, f"note:{key}")

    def set_note(self, key: str, value: str) -> None:
        store.set_meta(self._con, f"note:{key}", value)
        self._con.commit()

    # -- documents and statistics ------------------------------------------------
    def documents(self, filter: SearchFilter | None = None) -> list[DocumentInfo]:
        where, params = (filter or SearchFilter()).sql()
        if filter is not None and filter.groups is not None:
            # a document is listed when at least one of its chunks is visible
            gen = self.generation
            params["gen"] = gen
            visible = {r[0] for r in self._con.execute(f"SELECT DISTINCT doc FROM chunks WHERE {store.LIVE} AND {where}", params)}
        else:
            visible = None
        out = []
        for r in self._con.execute("SELECT * FROM documents ORDER BY doc"):
            if visible is not None and r["doc"] not in visible:
                continue
            if filter and filter.doc_prefix and not r["doc"].startswith(filter.doc_prefix):
                continue
            out.append(
                DocumentInfo(
                    doc=r["doc"], format=r["format"], pages=r["pages"], size=r["size"], mtime=r["mtime"],
                    hash=r["hash"], chunks=r["chunks"], source=r["source"], groups=store.decode_groups(r["groups"]),
                    indexed_at=r["indexed_at"],
                )
            )
        return out

    def document(self, doc: str, filter: SearchFilter | None = None) -> DocumentInfo | None:
        """One document's record, or None when it is unknown or the filter hides it."""
        groups = filter.groups if filter is not None else None
        for d in self.documents(SearchFilter(doc_prefix=doc, groups=groups)):
            if d.doc == doc:
                return d
        return None

    def stats(self, filter: SearchFilter | None = None) -> dict:
        docs = self.documents(filter)
        formats: dict[str, int] = {}
        for d in docs:
            formats[d.format or "?"] = formats.get(d.format or "?", 0) + 1
        # the folder's size counts every document: only for an unfiltered (operator's) view
        restricted = filter is not None and filter.groups is not None
        size = None if restricted else sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        return {
            "index": str(self.path),
            "embedder": self.built_with or self.embedder.name,
            "generation": self.generation,
            "documents": len(docs),
            "chunks": sum(d.chunks for d in docs),
            "pages": sum(d.pages or 0 for d in docs),
            "formats": dict(sorted(formats.items())),
            "size_bytes": size,
            **({} if restricted else self.layout_stats()),
        }

    def layout_stats(self) -> dict:
        """How the committed generation is stored: its segments, and the share of the chunks that an
        approximate (IVF) search serves, with its recall@10 against exact search as measured
        when those segments were written."""
        with self._lock:
            gen = self.refresh()
            snapshot = self._snapshot
        if gen == 0 or snapshot is None:
            return {"segments": 0}
        ann = [(int(live.sum()), s.info["ann"]) for s, live in snapshot.parts if s.info.get("ann")]
        covered = sum(n for n, _a in ann)
        out = {"segments": len(snapshot.parts), "dead_chunks": int(sum(len(s) - live.sum() for s, live in snapshot.parts)),
               "ann_chunks": covered, "ann_threshold": self.layout.ann_threshold, "nprobe": self.layout.nprobe}
        if covered:
            out["ann_recall_at_10"] = round(sum(n * a["recall_at_10"] for n, a in ann) / covered, 4)
        return out

    # -- writing -------------------------------------------------------------------
    def with_reranker(self, reranker) -> "RerankedIndex":
        """This index searched with ``reranker`` (None: plain retrieval), for one caller."""
        return RerankedIndex(self, reranker)

    def writer(self) -> "IndexWriter":
        return IndexWriter(self)


@dataclass
class LiveVectors:
    """The live chunks of one generation and their vectors in some space (Index.embed_live)."""

    generation: int
    vids: np.ndarray
    ids: list[str]
    vectors: np.ndarray
    computed: int = 0  # how many were embedded (the rest were known)

    def by_id(self) -> dict[str, np.ndarray]:
        return dict(zip(self.ids, self.vectors))

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, ids=np.asarray(self.ids), vectors=self.vectors)
        os.replace(tmp, path)

    @staticmethod
    def load_known(path: Path) -> dict[str, np.ndarray]:
        """Vectors saved by :meth:`save`, by chunk id ({} when the file is missing)."""
        if not Path(path).exists():
            return {}
        with integrity.NUMPY_HEADERS, np.load(path) as data:
            return dict(zip([str(i) for i in data["ids"]], data["vectors"]))


class RerankedIndex:
    """An index seen through another reranker (or none): searches pass it per call, and
    everything else is the shared index's. The shared index is never switched, so sessions
    that search it at the same time are not affected."""

    def __init__(self, base: Index, reranker):
        self._base = base
        self.reranker = reranker

    def __getattr__(self, name: str):
        return getattr(self._base, name)

    def search(self, query: str, k: int = 10, **kwargs) -> list[Hit]:
        kwargs.setdefault("reranker", self.reranker)
        return self._base.search(query, k, **kwargs)


class IndexWriter:
    """Stage changes, then :meth:`commit` them as one new generation.

    Holds ``write.lock`` from creation to commit/abort, so two jobs never write at once.
    Use as a context manager: leaving the block without commit discards the changes.
    """

    def __init__(self, index: Index):
        self.index = index
        self._lockfile = open(index.path / "write.lock", "a+")
        try:
            fcntl.flock(self._lockfile.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lockfile.seek(0)
            holder = self._lockfile.read().strip() or "another process"
            self._lockfile.close()
            raise IndexLockedError(
                f"another job is writing the index in {index.path} ({holder}); wait for it to finish and try again"
            ) from None
        self._lockfile.seek(0)
        self._lockfile.truncate()
        self._lockfile.write(f"pid {os.getpid()}")
        self._lockfile.flush()
        self._adds: dict[str, tuple[list[Chunk], np.ndarray, DocumentInfo]] = {}
        self._removes: set[str] = set()
        self._regroups: dict[str, tuple[str, ...]] = {}
        self._files: dict[str, tuple] = {}
        self._closed = False

    def __enter__(self) -> "IndexWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            fcntl.flock(self._lockfile.fileno(), fcntl.LOCK_UN)
            self._lockfile.close()

    @property
    def pending(self) -> int:
        return len(self._adds) + len(self._removes) + len(self._files) + len(self._regroups)

    def record_file(self, doc: str, *, source: str | None, size: int | None, mtime: float | None, hash: str | None,
                    status: str, error: str | None = None, job_id: int | None = None) -> None:
        """Note in the manifest what happened to a source file (written with the next commit)."""
        self._files[doc] = (doc, source, size, mtime, hash, status, error, job_id)

    def add_document(self, info: DocumentInfo, chunks: list[Chunk], vectors: np.ndarray | None = None) -> None:
        """Replace ``info.doc`` with these chunks (embedded here unless ``vectors`` is given)."""
        if vectors is None:
            vectors = self.index.embedder.embed([chunk_index_text(c) for c in chunks])
        if len(vectors) != len(chunks):
            raise ValueError("one vector per chunk is needed")
        info.chunks = len(chunks)
        self._removes.discard(info.doc)
        self._adds[info.doc] = (chunks, np.asarray(vectors, dtype=np.float32), info)

    def set_groups(self, doc: str, groups) -> None:
        """Change who may read an indexed document, without re-embedding it (a policy change).

        Takes effect for every reader at the next commit."""
        self._regroups[doc] = tuple(sorted(set(groups)))

    def remove_document(self, doc: str) -> None:
        self._regroups.pop(doc, None)
        self._adds.pop(doc, None)
        self._files.pop(doc, None)
        self._removes.add(doc)

    def commit(self) -> int:
        """Write the new generation and release the lock; returns the generation's number."""
        gen = self.checkpoint()
        self.close()
        return gen

    def checkpoint(self) -> int:
        """Write the new generation and keep writing: a long job commits as it goes."""
        idx = self.index
        con = idx._con
        if self._closed:
            raise RuntimeError("this writer is closed")
        for doc in self._adds:
            self._regroups.pop(doc, None)  # the new chunks carry their groups already
        if not self._adds and not self._removes:
            if self._files or self._regroups:
                con.execute("BEGIN IMMEDIATE")
                try:
                    self._write_groups(con, idx.generation)
                    self._write_files(con)
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
            return idx.generation
        gen = idx.generation
        new = gen + 1
        dim = idx.embedder.dim if self._adds else int(store.get_meta(con, "dim", "0") or 0)
        replaced = set(self._adds) | self._removes
        stale_vids = self._live_vids_of(con, replaced, gen)
        next_vid = int(store.get_meta(con, "next_vid", "1") or 1)
        new_rows = [(next_vid + i, c) for i, c in enumerate(c for chunks, _v, _i in self._adds.values() for c in chunks)]
        next_vid += len(new_rows)
        new_vecs = [v for _c, vecs, _i in self._adds.values() for v in vecs]

        layout = _Layout.of(idx, con, gen, new)
        layout.kill(np.asarray(stale_vids, dtype=np.int64))
        if new_rows:
            layout.add(np.asarray([v for v, _ in new_rows], dtype=np.int64), np.stack(new_vecs),
                       Postings.build([chunk_index_text(c) for _v, c in new_rows]))
        layout.merge(idx.layout.merge_inline_max)
        try:
            self._flip(con, gen, new, stale_vids, new_rows, replaced, next_vid, dim, layout)
        except sqlite3.OperationalError as exc:  # "database or disk is full"
            raise IndexWriteError(f"could not commit to {idx.path / DB_NAME} ({exc}): is the disk full? The "
                                  "previous generation of the index stays in use.") from None

        idx._remember([seg for seg, _l in layout.parts])
        self._tidy(con, new)
        self._adds.clear()
        self._removes.clear()
        return new

    @staticmethod
    def _live_vids_of(con, docs: set[str], gen: int) -> list[int]:
        marks = ",".join("?" * len(docs))
        return [r[0] for r in con.execute(
            f"SELECT vid FROM chunks WHERE doc IN ({marks}) AND added_gen <= ? AND (removed_gen IS NULL OR removed_gen > ?)",
            list(docs) + [gen, gen])]

    def _tidy(self, con, new: int) -> None:
        """Remove the rows and files no reader of generation >= new-1 can need (best effort: the
        commit already stands)."""
        idx = self.index
        try:
            con.execute("DELETE FROM chunk_groups WHERE vid IN (SELECT vid FROM chunks WHERE removed_gen IS NOT NULL AND removed_gen < ?)", (new,))
            con.execute("DELETE FROM chunks WHERE removed_gen IS NOT NULL AND removed_gen < ?", (new,))
            con.execute("DELETE FROM meta WHERE key LIKE 'files-%' AND CAST(substr(key, 7) AS INTEGER) < ?", (new - 1,))
            con.execute("DELETE FROM meta WHERE key LIKE 'space-%' AND CAST(substr(key, 7) AS INTEGER) < ?", (new - 1,))
            con.execute("DELETE FROM meta WHERE key LIKE 'segments-%' AND CAST(substr(key, 10) AS INTEGER) < ?",
                        (new - 1,))
            for p in idx.path.iterdir():
                g = _generation_of(p.name)
                if g is not None and g < new - 1:
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
            self._tidy_segments(con, new)
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # a read-only copy of the folder then reads it all
        except (OSError, sqlite3.Error) as exc:
            log.warning("could not remove old index files: %s", exc)

    def _tidy_segments(self, con, new: int) -> None:
        """Remove the segments and dead-chunk files that neither generation ``new`` nor the one
        before it uses (a reader still on an older one keeps what it has open)."""
        keep: dict[str, set] = {}
        for g in (new - 1, new):
            for r in json.loads(store.get_meta(con, f"segments-{g}") or "[]"):
                keep.setdefault(r["id"], set()).add(f"dead-{r.get('dead')}.npy")
        root = self.index.path / SEGMENTS
        if not root.is_dir():
            return
        for folder in root.iterdir():
            if folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)
                continue
            for f in folder.glob("dead-*.npy"):
                if f.name not in keep[folder.name]:
                    f.unlink()

    def reembed(self, embedder: Embedder, *, known: dict[str, np.ndarray] | None = None,
                on_progress=None, batch: int = 256) -> int:
        """Write every live chunk's vector again with ``embedder``, as one new generation in its
        space (promoting or rolling back a fine-tuned embedder); returns the generation.

        ``known`` holds vectors already computed in that space, by chunk id (fine-tuning embeds
        the whole index to test the model): only the chunks added since are embedded here. The
        chunks and their ids stay as they are, their postings are carried into the one segment
        written. Readers search the old space until the flip, then the new one; a crash before
        the flip leaves the old generation."""
        idx = self.index
        con = idx._con
        if self._closed:
            raise RuntimeError("this writer is closed")
        if self._adds or self._removes:
            raise RuntimeError("commit the staged documents before re-embedding the index")
        gen = idx.generation
        if gen == 0:
            raise EmptyIndexError(f"the index in {idx.path} is empty; there is nothing to re-embed")
        embedded = idx.embed_live(embedder, known=known, on_progress=on_progress, batch=batch)
        new = gen + 1
        layout = _Layout.of(idx, con, gen, new)
        layout.rewrite_all(lambda vids: embedded.vectors[np.searchsorted(embedded.vids, vids)])
        space = space_of(embedder, idx.path)
        self._publish(con, new, layout, dim=embedder.dim, space=space)
        self._tidy(con, new)
        log.info("re-embedded %d chunks (%d computed) in the space %s: generation %d", len(embedded.ids),
                 embedded.computed, space.name, new)
        return new

    def optimize(self, *, full: bool = False) -> int:
        """Merge the segments that are due (every size tier with ``merge_factor`` segments, and
        segments more than half dead), or all of them into one (``full``), as one new
        generation of their own; returns the generation (unchanged when nothing was due)."""
        idx = self.index
        con = idx._con
        if self._closed:
            raise RuntimeError("this writer is closed")
        if self._adds or self._removes:
            raise RuntimeError("commit the staged documents before optimizing the index")
        gen = idx.generation
        if gen == 0:
            return 0
        layout = _Layout.of(idx, con, gen, gen + 1)
        if full:
            layout.rewrite_all(None)
        else:
            layout.merge(None)
        if not layout.changed:
            return gen
        dim = int(store.get_meta(con, "dim", "0") or 0)
        self._publish(con, gen + 1, layout, dim=dim, space=idx._space(gen) or space_of(idx.embedder, idx.path))
        self._tidy(con, gen + 1)
        log.info("optimized the index: %d segments -> %d (generation %d)", layout.before, len(layout.parts), gen + 1)
        return gen + 1

    def _publish(self, con, new: int, layout: "_Layout", *, dim: int, space: Space) -> None:
        """Flip to generation ``new`` = ``layout``, its chunks' rows unchanged (re-embedding, merging)."""
        con.execute("BEGIN IMMEDIATE")
        try:
            layout.record(con)
            store.set_meta(con, "dim", dim)
            store.set_meta(con, "embedder", space.name)
            store.set_meta(con, f"space-{new}", space.to_json())
            store.set_meta(con, "generation", new)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        self.index._remember([seg for seg, _l in layout.parts])

    def _flip(self, con, gen, new, stale_vids, new_rows, replaced, next_vid, dim, layout) -> None:
        idx = self.index
        con.execute("BEGIN IMMEDIATE")
        try:
            if stale_vids:
                con.executemany("UPDATE chunks SET removed_gen=? WHERE vid=?", [(new, v) for v in stale_vids])
            for vid, c in new_rows:
                store.insert_chunk(con, vid, c, new)
            con.executemany("DELETE FROM documents WHERE doc=?", [(d,) for d in replaced])
            for doc, (chunks, _v, info) in self._adds.items():
                con.execute(
                    "INSERT INTO documents(doc, source, format, pages, size, mtime, hash, chunks, groups)"
                    " VALUES(?,?,?,?,?,?,?,?,?)",
                    (doc, info.source, info.format, info.pages, info.size, info.mtime, info.hash, len(chunks),
                     store.encode_groups(info.groups)),
                )
            layout.record(con)
            store.set_meta(con, "next_vid", next_vid)
            store.set_meta(con, "dim", dim)
            space = idx._space(gen) or space_of(idx.embedder, idx.path)
            store.set_meta(con, "embedder", space.name)
            store.set_meta(con, f"space-{new}", space.to_json())
            con.executemany("DELETE FROM files WHERE doc=?", [(d,) for d in self._removes])
            self._write_files(con)  # after: a document removed for having no text is still on record
            self._write_groups(con, gen)
            store.set_meta(con, "generation", new)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _write_groups(self, con, gen: int) -> None:
        if self._regroups:
            store.set_meta(con, "access", int(store.get_meta(con, "access", "0") or 0) + 1)
        for doc, groups in self._regroups.items():
            vids = [r[0] for r in con.execute(f"SELECT vid FROM chunks WHERE doc=:doc AND {store.LIVE}", {"doc": doc, "gen": gen})]
            con.executemany("UPDATE chunks SET groups=? WHERE vid=?", [(store.encode_groups(groups), v) for v in vids])
            con.executemany("DELETE FROM chunk_groups WHERE vid=?", [(v,) for v in vids])
            con.executemany("INSERT INTO chunk_groups(vid, grp) VALUES(?, ?)", [(v, g) for v in vids for g in groups])
            con.execute("UPDATE documents SET groups=? WHERE doc=?", (store.encode_groups(groups), doc))
        self._regroups.clear()

    def _write_files(self, con) -> None:
        con.executemany(
            "INSERT INTO files(doc, source, size, mtime, hash, status, error, job_id, updated_at)"
            " VALUES(?,?,?,?,?,?,?,?, datetime('now')) ON CONFLICT(doc) DO UPDATE SET source=excluded.source,"
            " size=excluded.size, mtime=excluded.mtime, hash=excluded.hash, status=excluded.status,"
            " error=excluded.error, job_id=excluded.job_id, updated_at=excluded.updated_at",
            list(self._files.values()),
        )
        self._files.clear()


class _Layout:
    """The segments of the generation a writer prepares: the last generation's, with the chunks
    it removes marked dead, the segment it adds and the merges it makes; and what to record."""

    def __init__(self, index: Index, new: int, parts: list, dead_gen: dict, manifest: dict):
        self.root, self.options, self.new = index.path, index.layout, new
        self.parts: list[list] = parts  # [segment, live mask]
        self.dead_gen = dead_gen  # sid -> the generation whose dead file it reads (None: none dead)
        self.files = {p[0].sid: {k: v for k, v in manifest.items() if k.startswith(f"{_folder(p[0].sid)}/")}
                      for p in parts}
        self.before = len(parts)
        self.changed = False
        self._k = 0

    @classmethod
    def of(cls, index: Index, con, gen: int, new: int) -> "_Layout":
        if gen == 0:
            return cls(index, new, [], {}, {})
        snapshot = index._read_snapshot(con, gen)
        records = {r["id"]: r.get("dead") for r in json.loads(store.get_meta(con, f"segments-{gen}") or "[]")}
        manifest = json.loads(store.get_meta(con, f"files-{gen}") or "{}")
        layout = cls(index, new, [[s, live.copy()] for s, live in snapshot.parts], records, manifest)
        legacy = [i for i, (s, _l) in enumerate(layout.parts) if s.folder is None]
        if legacy:
            log.info("writing the index as segments (once, for an index written before them)")
            layout._replace(legacy, None)
        return layout

    def _sid(self) -> str:
        self._k += 1
        return f"seg-{self.new:06d}-{self._k}"

    def kill(self, vids: np.ndarray) -> None:
        """Mark the chunks ``vids`` dead in the segments that hold them."""
        if not len(vids):
            return
        vids = np.sort(vids)
        for part in self.parts:
            segment, live = part
            at = segment.positions(vids)
            at = at[live[at]]
            if not len(at):
                continue
            live[at] = False
            self.files[segment.sid] = {k: v for k, v in self.files[segment.sid].items() if "/dead-" not in k}
            self.files[segment.sid].update(write_dead(self.root, segment, self.new, np.flatnonzero(~live)))
            self.dead_gen[segment.sid] = self.new
            self.changed = True

    def add(self, vids: np.ndarray, vectors: np.ndarray, postings: Postings) -> None:
        segment, files = write_segment(self.root, self._sid(), vids, vectors, postings, self.options)
        self.parts.append([segment, np.ones(len(segment), dtype=bool)])
        self.files[segment.sid], self.dead_gen[segment.sid] = files, None
        self.changed = True

    def merge(self, limit: int | None) -> None:
        """The merges that are due (``limit``: the most chunks one may read; None: any)."""
        sizes = [(len(s), int(live.sum())) for s, live in self.parts]
        groups = plan_merges(sizes, self.options, limit)
        if groups:
            merging = {i for g in groups for i in g}
            chosen = [[self.parts[i] for i in g] for g in groups]
            self.parts = [p for i, p in enumerate(self.parts) if i not in merging]
            for group in chosen:
                self._write_merged(group, None)

    def rewrite_all(self, vectors_of) -> None:
        """Every live chunk as one segment (``vectors_of``: vids -> their vectors in another space)."""
        group, self.parts = self.parts, []
        self._write_merged(group, vectors_of)
        self.changed = True

    def _replace(self, indices: list[int], vectors_of) -> None:
        group = [self.parts[i] for i in indices]
        self.parts = [p for i, p in enumerate(self.parts) if i not in set(indices)]
        self._write_merged(group, vectors_of)

    def _write_merged(self, group: list, vectors_of) -> None:
        self.changed = True
        if not any(live.any() for _s, live in group):
            return  # nothing live: the segments are simply dropped
        segment, files = merged(self.root, self._sid(), [(s, live) for s, live in group], self.options, vectors_of)
        self.parts.append([segment, np.ones(len(segment), dtype=bool)])
        self.files[segment.sid], self.dead_gen[segment.sid] = files, None

    def record(self, con) -> None:
        """Write the generation's segment list and files' manifest (inside the caller's transaction)."""
        records = [{"id": s.sid, "n": len(s), "dead": self.dead_gen.get(s.sid)} for s, _l in self.parts]
        manifest = {k: v for s, _l in self.parts for k, v in self.files.get(s.sid, {}).items()
                    if "/dead-" not in k or k.endswith(f"/dead-{self.dead_gen.get(s.sid)}.npy")}
        store.set_meta(con, f"segments-{self.new}", json.dumps(records))
        store.set_meta(con, f"files-{self.new}", json.dumps(manifest))


def _folder(sid: str) -> str:
    return f"{SEGMENTS}/{sid}"


def _generation_of(name: str) -> int | None:
    for prefix, suffix in (("vectors-", ".faiss"), ("lexical-", "")):
        if name.startswith(prefix) and name.endswith(suffix):
            core = name[len(prefix) : len(name) - len(suffix) if suffix else None]
            if core.isdigit():
                return int(core)
    return None

