"""Retrieval: the shared Chunk record, embedders, and the hybrid index that finds chunks."""

from retrieval.chunk import Chunk, Hit, content_hash
from retrieval.embedder import DEFAULT_EMBEDDER, Embedder, FakeEmbedder, SentenceTransformerEmbedder, make_embedder
from retrieval.errors import ArchivistError, ConfigError, EmptyIndexError, IndexLockedError, IndexMismatchError
from retrieval.filters import EVERYONE, SearchFilter
from retrieval.index import DocumentInfo, Index, IndexWriter, SearchOptions, chunk_index_text

__all__ = [
    "ArchivistError",
    "Chunk",
    "ConfigError",
    "DEFAULT_EMBEDDER",
    "DocumentInfo",
    "EVERYONE",
    "Embedder",
    "EmptyIndexError",
    "FakeEmbedder",
    "Hit",
    "Index",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexWriter",
    "SearchFilter",
    "SearchOptions",
    "SentenceTransformerEmbedder",
    "chunk_index_text",
    "content_hash",
    "make_embedder",
]
