"""Ingest: documents in, chunks out (partitioning, chunking, jobs)."""

from ingest.blocks import Block, ParsedDocument, ParseError
from ingest.chunker import Chunker, ChunkingOptions
from ingest.partition import SUPPORTED, is_supported, parse_file
from ingest.pipeline import FileResult, IngestReport, Ingestor, Source, discover
from ingest.worker import Parser

__all__ = [
    "Block",
    "Chunker",
    "ChunkingOptions",
    "FileResult",
    "IngestReport",
    "Ingestor",
    "ParseError",
    "ParsedDocument",
    "Parser",
    "SUPPORTED",
    "Source",
    "discover",
    "is_supported",
    "parse_file",
]
