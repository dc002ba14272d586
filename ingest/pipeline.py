"""An ingestion job: files in, chunks embedded and committed to the index as one generation."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ingest.blocks import ParseError
from ingest.chunker import Chunker
from ingest.partition import is_supported
from ingest.worker import Parser
from retrieval import Chunk, DocumentInfo, Index, chunk_index_text

log = logging.getLogger(__name__)

GroupsFor = Callable[[str, Path], tuple[str, ...]]


@dataclass
class Source:
    """A file to ingest and the name it is known by in the index."""

    path: Path
    doc: str


@dataclass
class FileResult:
    doc: str
    status: str  # added | updated | unchanged | empty | failed
    reason: str = ""
    chunks: int = 0
    pages: int | None = None
    seconds: float = 0.0


@dataclass
class IngestReport:
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    generation: int = 0

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
        parts = [f"{self.count(s)} {s}" for s in ("added", "updated", "unchanged", "empty", "failed") if self.count(s)]
        return (
            f"{len(self.results)} file(s): " + (", ".join(parts) or "nothing to do")
            + f"; {self.chunks} chunks in {self.seconds:.1f} s"
        )


def discover(paths: Iterable[str | os.PathLike]) -> list[Source]:
    """Files under each path. A folder's files are named relative to it; a file by its name.

    Hidden files and folders (starting with '.') are skipped.
    """
    out: list[Source] = []
    seen: set[str] = set()
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.startswith("."):
                        continue
                    f = Path(root) / name
                    doc = f.relative_to(p).as_posix()
                    if doc not in seen:
                        seen.add(doc)
                        out.append(Source(f, doc))
        elif p.exists():
            if p.name not in seen:
                seen.add(p.name)
                out.append(Source(p, p.name))
        else:
            raise FileNotFoundError(f"no such file or folder: {raw}")
    return out


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Ingestor:
    """Parse, chunk, embed and index files.

    Collaborators come in: the index (with its embedder), a chunker and a parser.
    ``groups_for(doc, path)`` gives a document's access groups (default: everyone).
    """

    def __init__(
        self,
        index: Index,
        chunker: Chunker,
        parser: Parser,
        *,
        groups_for: GroupsFor | None = None,
        embed_batch: int = 256,
    ):
        self.index = index
        self.chunker = chunker
        self.parser = parser
        self.groups_for = groups_for or (lambda doc, path: ())
        self.embed_batch = embed_batch

    def ingest(
        self,
        sources: list[Source],
        *,
        progress: bool = False,
        on_file: Callable[[int, int, FileResult], None] | None = None,
        force: bool = False,
    ) -> IngestReport:
        start = time.perf_counter()
        report = IngestReport()
        known = {d.doc: d for d in self.index.documents()}
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(sources), unit="file", desc="ingesting", file=sys.stderr, dynamic_ncols=True)
        pending: list[tuple[DocumentInfo, list[Chunk], FileResult]] = []
        with self.index.writer() as writer:

            def flush():
                if not pending:
                    return
                texts = [chunk_index_text(c) for _, chunks, _ in pending for c in chunks]
                vecs = self.index.embedder.embed(texts) if texts else np.zeros((0, 1), dtype=np.float32)
                at = 0
                for info, chunks, _res in pending:
                    writer.add_document(info, chunks, vecs[at : at + len(chunks)])
                    at += len(chunks)
                pending.clear()

            parsed_ahead = self._parse_ahead(sources, known, force)
            for i, src in enumerate(sources):
                t0 = time.perf_counter()
                res = self._one(src, known, pending, force, next(parsed_ahead))
                res.seconds = time.perf_counter() - t0
                if sum(len(c) for _, c, _ in pending) >= self.embed_batch:
                    flush()
                report.results.append(res)
                if res.status == "failed":
                    log.warning("%s: %s", src.doc, res.reason)
                if bar is not None:
                    bar.set_postfix_str(src.doc[-40:])
                    bar.update(1)
                if on_file:
                    on_file(i + 1, len(sources), res)
            flush()
            if bar is not None:
                bar.set_description("committing")
            report.generation = writer.commit()
        if bar is not None:
            bar.close()
        report.seconds = time.perf_counter() - start
        return report

    def _parse_ahead(self, sources: list[Source], known: dict, force: bool):
        """Yield, per source, what to do with it, parsing up to two files ahead in a thread
        so the parser process works while this one embeds."""
        import queue
        import threading

        q: queue.Queue = queue.Queue(maxsize=2)
        stop = threading.Event()

        def work():
            for src in sources:
                if stop.is_set():
                    return
                q.put(self._prepare(src, known, force))

        t = threading.Thread(target=work, name="archivist-parse-ahead", daemon=True)
        t.start()
        try:
            for _ in sources:
                yield q.get()
        finally:
            stop.set()
            while t.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q.get(timeout=0.1)
                except queue.Empty:
                    pass

    def _prepare(self, src: Source, known: dict, force: bool):
        """Hash, compare and parse one source: a FileResult when done, else (stat, digest, groups, parsed)."""
        path = src.path
        if not is_supported(path):
            return FileResult(src.doc, "failed", f"unsupported file type {path.suffix.lower() or '(no extension)'!r}")
        try:
            stat = path.stat()
            digest = file_hash(path)
        except OSError as exc:
            return FileResult(src.doc, "failed", f"cannot read the file ({exc.strerror or exc})")
        groups = tuple(sorted(set(self.groups_for(src.doc, path))))
        prev = known.get(src.doc)
        if prev is not None and prev.hash == digest and tuple(prev.groups) == groups and not force:
            return FileResult(src.doc, "unchanged", chunks=0, pages=prev.pages)
        try:
            parsed = self.parser.parse(path)
        except ParseError as exc:
            return FileResult(src.doc, "failed", exc.reason)
        except Exception as exc:  # never let one file stop the job
            return FileResult(src.doc, "failed", f"{type(exc).__name__}: {exc}"[:300])
        return stat, digest, groups, parsed

    def _one(self, src: Source, known: dict, pending: list, force: bool, prepared) -> FileResult:
        if isinstance(prepared, FileResult):
            return prepared
        stat, digest, groups, parsed = prepared
        path = src.path
        prev = known.get(src.doc)
        chunks = self.chunker.chunk(src.doc, parsed, groups)
        status = "updated" if prev is not None else "added"
        reason = "; ".join(parsed.notes)
        if not chunks:
            return FileResult(src.doc, "empty", reason or "no text found", pages=parsed.pages)
        info = DocumentInfo(
            doc=src.doc, format=path.suffix.lower().lstrip("."), pages=parsed.pages, size=stat.st_size,
            mtime=stat.st_mtime, hash=digest, source=str(path.resolve()), groups=groups,
        )
        pending.append((info, chunks, None))
        return FileResult(src.doc, status, reason, chunks=len(chunks), pages=parsed.pages)
