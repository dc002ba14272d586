"""An ingestion job: files in, chunks embedded and committed to the index as one generation."""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ingest.blocks import ParseError
from ingest.chunker import Chunker
from ingest.partition import is_supported
from ingest.worker import Parser
from retrieval import Chunk, DocumentInfo, Index, chunk_index_text, integrity, lexical

log = logging.getLogger(__name__)

GroupsFor = Callable[[str, Path, "Path | None"], tuple[str, ...]]


@dataclass
class Source:
    """A file to ingest and the name it is known by in the index."""

    path: Path
    doc: str
    root: Path | None = None  # the source folder it was found in (where folder sidecars stop)
    #: who may read it, when the one who adds it says so (an upload's readers); None: the access policy decides
    groups: tuple[str, ...] | None = None


@dataclass
class FileResult:
    doc: str
    status: str  # added | updated | unchanged | regrouped | removed | empty | skipped (a type not read) | failed
    reason: str = ""
    chunks: int = 0
    pages: int | None = None
    seconds: float = 0.0


@dataclass
class IngestReport:
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    generation: int = 0
    job_id: int | None = None

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def chunks(self) -> int:
        return sum(r.chunks for r in self.results)

    @property
    def pages(self) -> int:
        return sum(r.pages or 0 for r in self.results if r.status in ("added", "updated"))

    def summary(self) -> str:
        parts = [f"{self.count(s)} {s}" for s in ("added", "updated", "regrouped", "unchanged", "removed", "empty", "skipped", "failed") if self.count(s)]
        return (
            f"{plural(len(self.results), 'file')}: " + (", ".join(parts) or "nothing to do")
            + f"; {plural(self.chunks, 'chunk')} in {self.seconds:.1f} s"
        )


def plural(n: int, noun: str) -> str:
    """'1 chunk', '3 chunks'."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def discover(paths: Iterable[str | os.PathLike]) -> list[Source]:
    """Files under each path. A folder's files are named relative to it; a file by its name.

    Hidden files and folders (starting with '.') are skipped.
    """
    from ingest.sources import SourceSpec, source_files

    out: list[Source] = []
    seen: set[str] = set()
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            for f, doc in source_files(SourceSpec(p)):
                if doc not in seen:
                    seen.add(doc)
                    out.append(Source(f, doc, p))
        elif p.exists():
            if p.name not in seen:
                seen.add(p.name)
                out.append(Source(p, p.name))
        else:
            raise FileNotFoundError(f"no such file or folder: {raw}")
    return out


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:  # bytes of another encoding, kept by Python as surrogates
        return False


def printable_name(name: str) -> str:
    """A file name that can be shown and stored: undecodable bytes as \\xNN."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _same_stat(seen: dict | None, stat: os.stat_result) -> bool:
    """Whether the file's size and time are those on record (the cheap first test of a change)."""
    return bool(seen) and seen["size"] == stat.st_size and seen["mtime"] == stat.st_mtime


def _may_change(src: Source, manifest: dict) -> bool:
    try:
        return not _same_stat(manifest.get(src.doc), src.path.stat())
    except OSError:
        return False


@dataclass
class _Prepared:
    """What the look-ahead thread found out about a source before the main loop handles it."""

    result: FileResult | None = None  # already decided (failed, unchanged)
    stat: os.stat_result | None = None
    digest: str = ""
    groups: tuple[str, ...] = ()
    parsed: object = None
    reuse_from: str | None = None  # a committed document with the same content


def _load_in_background(embedder) -> None:
    """Start loading the embedder's batch runtime in a thread, so that it is ready when the first
    parsed file's chunks are; a failure shows when it is used."""
    load = getattr(embedder, "load", None)
    if load is None or getattr(embedder, "loaded", True):
        return
    import threading

    def run():
        try:
            load()
        except Exception:  # reported by the embedding that needs it
            pass

    threading.Thread(target=run, name="archivist-load-embedder", daemon=True).start()


class _ParseAhead:
    """What to do with each source, in order, prepared (hashed, parsed) up to two files ahead in
    a thread, so the parser process works while this one loads the model and embeds. It starts
    at once; ``close`` stops it however the job ends."""

    def __init__(self, sources: list, prepare: Callable[[Source], _Prepared]):
        import queue
        import threading

        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(sources, prepare), name="archivist-parse-ahead",
                                        daemon=True)
        self._thread.start()

    def _work(self, sources, prepare) -> None:
        for src in sources:
            if self._stop.is_set():
                return
            try:
                item = prepare(src)
            except Exception as exc:  # never let one file stop the job
                item = _Prepared(FileResult(src.doc, "failed", f"{type(exc).__name__}: {exc}"[:300]))
            self._queue.put(item)

    def next(self) -> _Prepared:
        return self._queue.get()

    def close(self) -> None:
        import queue

        self._stop.set()
        while self._thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                pass


class _EmbedAhead:
    """Batches of documents embedded in a thread while this one chunks the next files; their
    vectors are written here, in order (the writer's connection belongs to this thread). At most
    one batch waits behind the one being embedded, so memory stays bounded; ``drain`` writes every
    batch out (before a checkpoint or the commit), and ``close`` stops the thread however the job
    ends. An error in the embedding shows where its batch is written."""

    def __init__(self, embedder, writer):
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        self._embedder = embedder
        self._writer = writer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archivist-embed")
        self._waiting: deque = deque()  # (documents, future of their vectors), oldest first

    def submit(self, batch: list[tuple[DocumentInfo, list[Chunk]]]) -> None:
        texts = [chunk_index_text(c) for _, chunks in batch for c in chunks]
        self._waiting.append((batch, self._pool.submit(self._embed, texts)))
        while len(self._waiting) > 1:  # the newer batch is queued behind it: the thread stays busy
            self._write_oldest()

    def _embed(self, texts: list[str]) -> np.ndarray:
        return self._embedder.embed(texts) if texts else np.zeros((0, 1), dtype=np.float32)

    @property
    def idle(self) -> bool:
        """Whether the thread has nothing left to embed (what it made may still wait to be written)."""
        return not self._waiting or self._waiting[-1][1].done()

    def _write_oldest(self) -> None:
        batch, future = self._waiting.popleft()
        vecs = future.result()
        at = 0
        for info, chunks in batch:
            self._writer.add_document(info, chunks, vecs[at : at + len(chunks)])
            at += len(chunks)

    def drain(self) -> None:
        while self._waiting:
            self._write_oldest()

    def close(self) -> None:
        for _, future in self._waiting:
            future.cancel()
        self._waiting.clear()
        self._pool.shutdown(wait=True)


class Ingestor:
    """Parse, chunk, embed and index files; one run is one job.

    Collaborators come in: the index (with its embedder), a chunker, a parser and
    optionally a job log. ``groups_for(doc, path, root)`` gives a document's access groups
    (an :class:`ingest.access.AccessPolicy`'s method); when only the groups changed, a rerun
    updates them without parsing or embedding again.

    Reruns are incremental: a file whose size and time (or, failing those, content hash)
    did not change is skipped; a changed one has its chunks replaced; a file with the
    content of an indexed one (moved, renamed, copied) reuses its vectors. With
    ``sync_prefixes``, indexed documents under those prefixes that are no longer among the
    sources are removed. Work is committed every ``commit_every`` files, and at the end.
    ``embedder``, when given, embeds the chunks instead of the index's own (the actors of a Ray
    cluster, :mod:`ingest.ray_cluster`); it must compute the same vectors.
    """

    def __init__(
        self,
        index: Index,
        chunker: Chunker,
        parser: Parser,
        *,
        groups_for: GroupsFor | None = None,
        embed_batch: int = 256,
        jobs=None,
        commit_every: int = 200,
        follow_symlinks: bool = False,
        embedder=None,
    ):
        self.index = index
        self.embedder = embedder  # what embeds the chunks (a Ray cluster's actors); None: the index's embedder
        self.chunker = chunker
        self.parser = parser
        self.groups_for = groups_for or (lambda doc, path, root=None: ())
        self.embed_batch = embed_batch
        self.jobs = jobs
        self.commit_every = commit_every
        self.follow_symlinks = follow_symlinks  # links out of a source folder: indexed (True) or skipped

    @property
    def _embedder(self):
        return self.embedder if self.embedder is not None else self.index.embedder

    def close(self) -> None:
        """Stop the parser's worker and close the job log (the index stays open)."""
        self.parser.close()
        if self.jobs is not None:
            self.jobs.close()

    def __enter__(self) -> "Ingestor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ingest(
        self,
        sources: list[Source],
        *,
        progress: bool = False,
        on_file: Callable[[int, int, FileResult], None] | None = None,
        force: bool = False,
        sync_prefixes: list[str] | None = None,
        kind: str = "ingest",
        on_start: Callable[[int | None], None] | None = None,
    ) -> IngestReport:
        """Run one job over ``sources``; ``on_start`` hears its job id as soon as it has one."""
        start = time.perf_counter()
        report = IngestReport()
        job_id = self.jobs.start(kind, len(sources)) if self.jobs else None
        if on_start is not None:
            on_start(job_id)
        try:
            self._run(sources, report, progress, on_file, force, sync_prefixes, job_id)
        except BaseException as exc:
            if self.jobs and job_id is not None:
                self.jobs.finish(job_id, "failed", self._counts(report), self._errors(report),
                                 f"{type(exc).__name__}: {exc}"[:500], done=len(report.results))
            raise
        report.seconds = time.perf_counter() - start
        if self.jobs and job_id is not None:
            status = "failed" if report.failed else "succeeded"
            self.jobs.finish(job_id, status, self._counts(report), self._errors(report), report.summary(), done=len(report.results))
        report.job_id = job_id
        return report

    @staticmethod
    def _counts(report: IngestReport) -> dict:
        out: dict[str, int] = {}
        for r in report.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    @staticmethod
    def _errors(report: IngestReport) -> list:
        return [{"doc": r.doc, "reason": r.reason} for r in report.results if r.status in ("failed", "empty")]

    def _run(self, sources, report, progress, on_file, force, sync_prefixes, job_id) -> None:
        known = {d.doc: d for d in self.index.documents()}
        manifest = self.index.files()
        by_hash: dict[str, str] = {}
        for d in known.values():
            if d.hash:
                by_hash.setdefault(d.hash, d.doc)
        current = {s.doc for s in sources}
        gone: list[str] = []
        if sync_prefixes is not None:
            gone = sorted(
                d for d in set(known) | set(manifest)
                if d not in current and any(d.startswith(p) for p in sync_prefixes)
            )
        changed = [s.path for s in sources if force or _may_change(s, manifest)]
        prepare = getattr(self.parser, "prepare_for", None)
        if prepare is not None and changed:
            prepare(changed)  # the parser process starts (and warms what these files need) at once
        ahead = _ParseAhead(sources, lambda src: self._prepare(src, known, manifest, by_hash, force))
        if changed:
            _load_in_background(self._embedder)  # while the first files are parsed
        try:
            any_work = progress and (force or any(_may_change(s, manifest) for s in sources))
            self._run_files(sources, gone, ahead, known, report, progress, on_file, any_work, sync_prefixes is not None,
                            job_id)
        finally:
            ahead.close()

    def _run_files(self, sources, gone, ahead, known, report, progress, on_file, any_work: bool, syncing: bool,
                   job_id) -> None:
        """Each file in order (prepared by ``ahead``), embedded in batches, committed as it goes."""
        bar = None
        if progress:
            from tqdm import tqdm

            what = "syncing" if syncing else "ingesting"
            bar = tqdm(total=len(sources) + len(gone), unit="file", desc=what, file=sys.stderr, dynamic_ncols=True)
            if any_work:  # the parser warms up meanwhile, on the first files
                bar.set_description("loading the embedding model")
                self.index.embedder.count_tokens("warm-up")  # loads it: the time left counts files, not this
                bar.set_description(what)
                bar.reset()
        with self.index.writer() as writer:
            embedding = _EmbedAhead(self._embedder, writer)
            try:
                self._each_file(sources, gone, ahead, known, report, bar, on_file, writer, embedding, job_id)
            finally:
                embedding.close()
            if bar is not None:
                bar.set_description("committing")
            report.generation = writer.commit()
        if bar is not None:
            bar.close()

    def _each_file(self, sources, gone, ahead, known, report, bar, on_file, writer, embedding, job_id) -> None:
        """Chunk each prepared file; its chunks are embedded in batches behind it and written
        before every checkpoint and before the commit. A batch goes when it is full, or as soon as
        the loaded model has nothing to do: the cores never wait for a batch to fill."""
        pending: list[tuple[DocumentInfo, list[Chunk]]] = []
        embedder = self._embedder

        def flush():
            if pending:
                embedding.submit(list(pending))
                pending.clear()

        since_commit = 0
        for i, src in enumerate(sources):
            t0 = time.perf_counter()
            res = self._one(src, known, pending, writer, ahead.next(), job_id)
            res.seconds = time.perf_counter() - t0
            if sum(len(c) for _, c in pending) >= self.embed_batch or (
                    pending and embedding.idle and getattr(embedder, "loaded", True)):
                flush()
            report.results.append(res)
            if res.status == "failed":
                log.warning("%s: %s", res.doc, res.reason)
            if res.status != "unchanged":
                since_commit += 1
            if since_commit >= self.commit_every:
                flush()
                embedding.drain()
                report.generation = writer.checkpoint()
                since_commit = 0
            if bar is not None:
                bar.set_postfix_str(res.doc[-40:])
                bar.update(1)
            if on_file:
                on_file(i + 1, len(sources), res)
            if self.jobs and job_id is not None:
                self.jobs.progress(job_id, i + 1, self._counts(report))
        for doc in gone:
            writer.remove_document(doc)
            report.results.append(FileResult(doc, "removed", "no longer in the source"))
            if bar is not None:
                bar.update(1)
        flush()
        lexical.preload()  # while the last batch embeds, not at the commit that waits for it
        embedding.drain()

    def _link(self, src: Source) -> tuple[Path | None, str]:
        """For a symbolic link: (the file whose readers it gets, or None to skip it, the reason)."""
        target = src.path.resolve()
        if src.root is None:  # a link named on the command line: its owner chose it
            return target, ""
        try:
            inside = target.relative_to(Path(src.root).resolve()).as_posix()
        except ValueError:
            if not self.follow_symlinks:
                return None, "a symbolic link out of the source folder (not followed: ingest.follow_symlinks)"
            return target, ""
        return None, f"a symbolic link to {inside}, which is indexed under its own name and readers"

    def _prepare(self, src: Source, known: dict, manifest: dict, by_hash: dict, force: bool) -> _Prepared:
        path = src.path
        if not _utf8(src.doc) or not _utf8(str(path)):
            return _Prepared(FileResult(printable_name(src.doc), "failed", "the file name is not valid UTF-8 (it was "
                                        "written in another encoding): rename the file, e.g. with convmv"))
        access_doc, access_path, access_root = src.doc, path, src.root
        if path.is_symlink():
            target, why = self._link(src)
            if target is None:
                return _Prepared(FileResult(src.doc, "skipped", why))
            # readers come from the target's own sidecars and path, never from the link's folder
            access_doc, access_path, access_root = "", target, target.parent
        if not is_supported(path):
            return _Prepared(FileResult(src.doc, "skipped", f"not a type Archivist reads ({path.suffix.lower() or 'no extension'})"))
        try:
            stat = path.stat()
        except OSError as exc:
            return _Prepared(FileResult(src.doc, "failed", f"cannot read the file ({exc.strerror or exc})"))
        try:
            given = src.groups if src.groups is not None else self.groups_for(access_doc, access_path, access_root)
            groups = tuple(sorted(set(given)))
        except (OSError, ValueError) as exc:  # an unreadable or malformed sidecar: fail closed, say why
            return _Prepared(FileResult(src.doc, "failed", f"access groups: {exc}"))
        prev = known.get(src.doc)
        seen = manifest.get(src.doc)
        regroup = prev is not None and tuple(prev.groups) != groups
        unchanged = "regrouped" if regroup else "unchanged"
        if not force and _same_stat(seen, stat):
            if prev is not None or seen["status"] in ("empty", "failed"):
                return _Prepared(FileResult(src.doc, unchanged, pages=prev.pages if prev else None), groups=groups)
        try:
            digest = integrity.digest(path)
        except OSError as exc:
            return _Prepared(FileResult(src.doc, "failed", f"cannot read the file ({exc.strerror or exc})"))
        if not force and ((prev is not None and prev.hash == digest) or (seen and seen["hash"] == digest and prev is None and seen["status"] != "indexed")):
            return _Prepared(FileResult(src.doc, unchanged, pages=prev.pages if prev else None), stat, digest, groups)
        other = by_hash.get(digest)
        if not force and other is not None and other != src.doc:
            return _Prepared(None, stat, digest, groups, reuse_from=other)
        try:
            parsed = self.parser.parse(path)
        except ParseError as exc:
            return _Prepared(FileResult(src.doc, "failed", exc.reason), stat, digest, groups)
        return _Prepared(None, stat, digest, groups, parsed)

    def _one(self, src: Source, known: dict, pending: list, writer, prep: _Prepared, job_id) -> FileResult:
        path = src.path
        stat = prep.stat

        def record(status: str, error: str | None = None):
            writer.record_file(src.doc, source=str(path.resolve()), size=stat.st_size if stat else None,
                               mtime=stat.st_mtime if stat else None, hash=prep.digest or None, status=status,
                               error=error, job_id=job_id)

        if prep.result is not None:
            res = prep.result
            if res.status == "failed" and res.doc == src.doc:  # a name the index cannot store is only reported
                record("failed", res.reason)
            if res.status == "regrouped":
                writer.set_groups(src.doc, prep.groups)
                res.reason = "access groups now: " + (", ".join(prep.groups) or "nobody")
            if res.status in ("unchanged", "regrouped") and prep.digest:
                record("indexed" if src.doc in known else "empty")  # same content, new time: remember it
            return res
        prev = known.get(src.doc)
        status = "updated" if prev is not None else "added"
        info = DocumentInfo(
            doc=src.doc, format=path.suffix.lower().lstrip("."), size=stat.st_size, mtime=stat.st_mtime,
            hash=prep.digest, source=str(path.resolve()), groups=prep.groups,
        )
        if prep.reuse_from is not None:
            chunks, vecs = self.index.stored_vectors(prep.reuse_from)
            if chunks:
                renamed = [
                    replace(c, id=Chunk.make_id(src.doc, c.ordinal, c.text), doc=src.doc, groups=prep.groups)
                    for c in chunks
                ]
                origin = known.get(prep.reuse_from)
                info.pages = origin.pages if origin else None
                writer.add_document(info, renamed, vecs)
                record("indexed")
                return FileResult(src.doc, status, f"same content as {prep.reuse_from}: vectors reused",
                                  chunks=len(renamed), pages=info.pages)
            prep.parsed = self.parser.parse(path)  # the twin vanished meanwhile: do the work
        parsed = prep.parsed
        info.pages = parsed.pages
        chunks = self.chunker.chunk(src.doc, parsed, prep.groups)
        try:
            self.parser.limits.check_chunks(len(chunks))
        except ParseError as exc:
            record("failed", exc.reason)
            return FileResult(src.doc, "failed", exc.reason, pages=parsed.pages)
        reason = "; ".join(parsed.notes)
        if not chunks:
            if prev is not None:
                writer.remove_document(src.doc)  # it had text before; now it has none
            record("empty", reason or "no text found")
            return FileResult(src.doc, "empty", reason or "no text found", pages=parsed.pages)
        pending.append((info, chunks))
        record("indexed")
        return FileResult(src.doc, status, reason, chunks=len(chunks), pages=parsed.pages)
