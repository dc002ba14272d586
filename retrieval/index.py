"""The index: FAISS vectors + SQLite chunks + BM25, committed atomically by generation.

Layout of an index folder::

    archivist.sqlite        chunks, documents, meta (generation, embedder, each generation's
                            vector space: retrieval.spaces, next id)
    vectors-<gen>.faiss     the dense vectors of generation <gen>
    lexical-<gen>/          the BM25 index of generation <gen>
    write.lock              held by the one process that writes

A commit writes generation G+1's files next to G's, then flips ``meta.generation`` in
one SQLite transaction. A reader (or a crash at any moment) sees G or G+1, never a mix;
readers notice a new generation on their next search and reload.
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
from retrieval.lexical import LexicalIndex
from retrieval.spaces import Space, Spaces, space_of
from retrieval.vectors import VectorIndex

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
                 reranker=None, space_loader=None):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._spaces = Spaces(embedder, self.path, space_loader)
        self.options = options or SearchOptions()
        self.reranker = reranker  # a retrieval.reranker.CrossEncoderReranker, or None
        self._local = threading.local()  # one SQLite connection per thread: the web app serves many
        self._connections: list = []
        store.init_schema(self._con)
        self._lock = threading.RLock()
        self._gen_loaded = -1
        self._gen_broken = -1  # a generation whose files were found damaged
        self._vectors: VectorIndex | None = None
        self._lexical: LexicalIndex | None = None
        self._embedder_loaded: Embedder | None = None  # the space of the loaded generation
        self._pinned = False
        current = self._space(self.generation)
        if current is not None and current.name != embedder.name and not current.path:
            self._spaces.embedder(current)  # IndexMismatchError, saying what to do

    @property
    def _con(self):
        con = getattr(self._local, "con", None)
        if con is None:
            con = store.connect(self.path / DB_NAME)
            self._local.con = con
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
        view._vectors, view._embedder_loaded, view._pinned = vectors.vector_index(), embedder, True
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
                    self._vectors, self._lexical, self._gen_loaded = None, None, 0
                    return 0
                try:
                    self._load(gen)
                    return gen
                except FileNotFoundError:
                    time.sleep(0.05)  # a newer commit removed these files: read the generation again
                except IndexCorruptError as exc:
                    return self._fall_back(gen, exc)
            raise IndexCorruptError(f"could not load a consistent generation of the index in {self.path}: "
                                    "its files keep changing or are missing")

    def _load(self, gen: int) -> None:
        vpath, lpath = self._files(gen)
        recorded = store.get_meta(self._con, f"files-{gen}")
        if recorded:
            integrity.check_sizes(json.loads(recorded), self.path)
        dim = int(store.get_meta(self._con, "dim", "0") or 0)
        embedder = self._spaces.embedder(self._space(gen))
        vectors, lexical = VectorIndex.load(vpath, dim), LexicalIndex.load(lpath)
        self._vectors, self._lexical, self._embedder_loaded, self._gen_loaded = vectors, lexical, embedder, gen

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
            vectors = self._vectors
        rows = self._con.execute(
            f"SELECT * FROM chunks WHERE doc=:doc AND {store.LIVE} ORDER BY ordinal", {"doc": doc, "gen": gen}
        ).fetchall()
        if not rows or vectors is None:
            return [], np.zeros((0, 0), dtype=np.float32)
        vecs = np.stack([vectors.index.reconstruct(int(r["vid"])) for r in rows])
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
            if gen == 0 or self._vectors is None:
                raise EmptyIndexError(f"the index in {self.path} is empty; run 'archivist ingest PATH' first")
            vectors, lexical, embedder = self._vectors, self._lexical, self._embedder_loaded or self.embedder
        allowed = self._allowed(gen, filter)
        n = max(self.options.candidates, k)
        dense: list[tuple[int, float]] = []
        lex: list[tuple[int, float]] = []
        if mode in ("dense", "hybrid"):
            same_space = query_vector is not None and query_space in (None, embedder.name)
            qv = query_vector if same_space else embedder.embed_query(query)
            dense = vectors.search(qv, n, allowed)
        if mode in ("lexical", "hybrid"):
            lex = lexical.search(query, n, allowed) if lexical is not None else []
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

    def _readers_lexical(self, filter: SearchFilter | None) -> tuple[LexicalIndex, np.ndarray | None] | None:
        """The lexical index of the current commit and the ids the reader may read; None when there
        is no lexical side to ask."""
        with self._lock:
            gen = self.refresh()
            lexical = self._lexical
        if gen == 0 or lexical is None:
            return None
        return lexical, self._allowed(gen, filter)

    def correct(self, query: str, *, filter: SearchFilter | None = None) -> str:
        """``query`` with each word the reader's chunks never use followed by the closest word they
        do use ("gendr" -> "gendr gender"); unchanged when every word is known."""
        readers = self._readers_lexical(filter)
        return query if readers is None else readers[0].correct(query, readers[1])

    def known_words(self, words: list[str], *, filter: SearchFilter | None = None) -> set[str]:
        """Those of ``words`` that the reader's chunks use (or use a close spelling of); every word
        where the index has no lexical side to tell by."""
        readers = self._readers_lexical(filter)
        return set(words) if readers is None else readers[0].known(words, readers[1])

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
        }

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

    def vector_index(self) -> VectorIndex:
        vi = VectorIndex(self.vectors.shape[1])
        vi.add(self.vids, self.vectors)
        return vi

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, ids=np.asarray(self.ids), vectors=self.vectors)
        os.replace(tmp, path)

    @staticmethod
    def load_known(path: Path) -> dict[str, np.ndarray]:
        """Vectors saved by :meth:`save`, by chunk id ({} when the file is missing)."""
        if not Path(path).exists():
            return {}
        with np.load(path) as data:
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
        marks = ",".join("?" * len(replaced))
        params = list(replaced)
        stale_vids = [
            r[0]
            for r in con.execute(
                f"SELECT vid FROM chunks WHERE doc IN ({marks}) AND added_gen <= ? AND (removed_gen IS NULL OR removed_gen > ?)",
                params + [gen, gen],
            )
        ]
        next_vid = int(store.get_meta(con, "next_vid", "1") or 1)
        new_rows: list[tuple[int, Chunk]] = []
        new_vecs: list[np.ndarray] = []
        for doc, (chunks, vecs, _info) in self._adds.items():
            for c, v in zip(chunks, vecs):
                new_rows.append((next_vid, c))
                new_vecs.append(v)
                next_vid += 1

        # 1. vectors of the new generation
        vpath, lpath = idx._files(new)
        if gen and idx._files(gen)[0].exists():
            vectors = VectorIndex.load(idx._files(gen)[0], dim)
        else:
            vectors = VectorIndex(dim)
        vectors.remove(stale_vids)
        if new_rows:
            vectors.add(np.asarray([v for v, _ in new_rows], dtype=np.int64), np.stack(new_vecs))
        vectors_record = vectors.save(vpath)  # checked against its checksum as it was written

        # 2. lexical index of the new generation
        stale = set(stale_vids)
        ids: list[int] = []
        texts: list[str] = []
        for r in store.live_rows(con, gen, "vid, doc, section, text"):
            if r["vid"] not in stale:
                ids.append(r["vid"])
                texts.append(indexed_text(doc_title(r["doc"]), r["section"], r["text"]))
        for vid, c in new_rows:
            ids.append(vid)
            texts.append(chunk_index_text(c))
        if lpath.exists():
            shutil.rmtree(lpath)
        self._write_lexical(LexicalIndex.build(ids, texts), lpath)
        manifest = {vpath.name: vectors_record, **integrity.record([lpath], idx.path)}  # what readers will check

        # 3. flip the generation in one transaction
        try:
            self._flip(con, gen, new, stale_vids, new_rows, replaced, next_vid, dim, manifest)
        except sqlite3.OperationalError as exc:  # "database or disk is full"
            raise IndexWriteError(f"could not commit to {idx.path / DB_NAME} ({exc}): is the disk full? The "
                                  "previous generation of the index stays in use.") from None

        self._tidy(con, new)
        self._adds.clear()
        self._removes.clear()
        return new

    def _tidy(self, con, new: int) -> None:
        """Remove the rows and files no reader of generation >= new-1 can need (best effort: the
        commit already stands)."""
        idx = self.index
        try:
            con.execute("DELETE FROM chunk_groups WHERE vid IN (SELECT vid FROM chunks WHERE removed_gen IS NOT NULL AND removed_gen < ?)", (new,))
            con.execute("DELETE FROM chunks WHERE removed_gen IS NOT NULL AND removed_gen < ?", (new,))
            con.execute("DELETE FROM meta WHERE key LIKE 'files-%' AND CAST(substr(key, 7) AS INTEGER) < ?", (new - 1,))
            con.execute("DELETE FROM meta WHERE key LIKE 'space-%' AND CAST(substr(key, 7) AS INTEGER) < ?", (new - 1,))
            for p in idx.path.iterdir():
                g = _generation_of(p.name)
                if g is not None and g < new - 1:
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # a read-only copy of the folder then reads it all
        except (OSError, sqlite3.Error) as exc:
            log.warning("could not remove old index files: %s", exc)

    def reembed(self, embedder: Embedder, *, known: dict[str, np.ndarray] | None = None,
                on_progress=None, batch: int = 256) -> int:
        """Write every live chunk's vector again with ``embedder``, as one new generation in its
        space (promoting or rolling back a fine-tuned embedder); returns the generation.

        ``known`` holds vectors already computed in that space, by chunk id (fine-tuning embeds
        the whole index to test the model): only the chunks added since are embedded here. The
        chunks, their ids and the lexical index stay as they are. Readers search the old space
        until the flip, then the new one; a crash before the flip leaves the old generation."""
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
        vpath, lpath = idx._files(new)
        vectors_record = embedded.vector_index().save(vpath)
        if lpath.exists():
            shutil.rmtree(lpath)
        shutil.copytree(idx._files(gen)[1], lpath)  # the words are the same: only the vectors change
        manifest = {vpath.name: vectors_record, **integrity.record([lpath], idx.path)}
        space = space_of(embedder, idx.path)
        con.execute("BEGIN IMMEDIATE")
        try:
            store.set_meta(con, f"files-{new}", json.dumps(manifest))
            store.set_meta(con, "dim", embedder.dim)
            store.set_meta(con, "embedder", space.name)
            store.set_meta(con, f"space-{new}", space.to_json())
            store.set_meta(con, "generation", new)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        self._tidy(con, new)
        log.info("re-embedded %d chunks (%d computed) in the space %s: generation %d", len(embedded.ids),
                 embedded.computed, space.name, new)
        return new

    def _write_lexical(self, lexical: LexicalIndex, lpath: Path) -> None:
        """Save the lexical index and load it back: a file the disk cut short fails here, not in a reader."""
        try:
            lexical.save(lpath)
            LexicalIndex.load(lpath)
        except (OSError, IndexCorruptError) as exc:
            shutil.rmtree(lpath, ignore_errors=True)
            raise IndexWriteError(f"could not write the lexical index {lpath} ({exc}): is the disk full? The "
                                  "previous generation of the index stays in use.") from None

    def _flip(self, con, gen, new, stale_vids, new_rows, replaced, next_vid, dim, manifest) -> None:
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
            store.set_meta(con, f"files-{new}", json.dumps(manifest))
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


def _generation_of(name: str) -> int | None:
    for prefix, suffix in (("vectors-", ".faiss"), ("lexical-", "")):
        if name.startswith(prefix) and name.endswith(suffix):
            core = name[len(prefix) : len(name) - len(suffix) if suffix else None]
            if core.isdigit():
                return int(core)
    return None

