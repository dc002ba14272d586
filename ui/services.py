"""The composition root: typed settings in, wired components out. Faces call these and
keep no retrieval or model logic of their own."""

from __future__ import annotations

from retrieval import Index, SearchOptions, make_embedder
from ui.settings import Settings


def open_index(settings: Settings, *, create: bool = True) -> Index:
    from ingest._offline import set_offline_env

    set_offline_env()
    path = settings.index_dir
    if not create and not (path / "archivist.sqlite").exists():
        from retrieval.errors import EmptyIndexError

        raise EmptyIndexError(f"there is no index in {path} yet; run 'archivist ingest PATH' first (or pass --index DIR)")
    embedder = make_embedder(settings.embedder.model, batch_size=settings.embedder.batch_size)
    s = settings.search
    return Index(path, embedder, SearchOptions(mode=s.mode, fusion=s.fusion, alpha=s.alpha, candidates=s.candidates))


def make_ingestor(settings: Settings, index: Index):
    from ingest import Chunker, ChunkingOptions, Ingestor, Parser

    emb = index.embedder
    opts = ChunkingOptions(
        max_tokens=emb.max_tokens,
        target_tokens=min(settings.ingest.chunk_tokens, emb.max_tokens),
        min_tokens=settings.ingest.min_chunk_tokens,
    )
    parser = Parser(timeout=settings.ingest.parse_timeout, ocr=settings.ingest.ocr, isolate=settings.ingest.isolate_parser)
    return Ingestor(index, Chunker(emb.count_tokens, opts), parser)
