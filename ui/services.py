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


def make_generator(settings: Settings):
    from qa import FakeGenerator, LlamaCppGenerator, OpenAIGenerator, TransformersGenerator

    g = settings.generator
    if g.backend == "fake":
        return FakeGenerator()
    if g.backend == "openai":
        return OpenAIGenerator(g.base_url, g.model, api_key=g.api_key, timeout=g.timeout)
    if g.backend == "llama-cpp":
        return LlamaCppGenerator(g.model)
    return TransformersGenerator(g.model, cache_dir=settings.data_dir / "models")


def make_answerer(settings: Settings, index: Index, generator=None):
    from qa import Answerer, AnswerOptions

    a = settings.answer
    options = AnswerOptions(
        k=a.k, min_similarity=a.min_similarity, min_coverage=a.min_coverage, coverage_similarity=a.coverage_similarity,
        min_support=a.min_support, on_unsupported=a.on_unsupported, max_tokens=settings.generator.max_tokens,
    )
    return Answerer(index, generator if generator is not None else make_generator(settings), options)
