"""The one record every stage shares: ingest writes it, retrieval returns it, qa cites it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace


def content_hash(text: str) -> str:
    """Stable hash of a piece of text (sha256, hex, first 16 bytes)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Chunk:
    """A passage of a source document, with where it came from.

    ``doc`` is the source path relative to the ingested directory (for a single file
    argument, its name); ``page`` is 1-based where the format has pages, else None;
    ``section`` is the title path ("Benefits > Dental"), or None; ``groups`` are the
    access groups allowed to read it (empty tuple = everyone).
    """

    id: str
    doc: str
    text: str
    page: int | None = None
    section: str | None = None
    ordinal: int = 0
    groups: tuple[str, ...] = ()
    hash: str = ""
    kind: str = "text"  # "text" or "table"
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @staticmethod
    def make_id(doc: str, ordinal: int, text: str) -> str:
        return hashlib.sha1(f"{doc}\x00{ordinal}\x00{text}".encode("utf-8")).hexdigest()[:20]

    def with_groups(self, groups: tuple[str, ...]) -> "Chunk":
        return replace(self, groups=tuple(sorted(set(groups))))


@dataclass(frozen=True)
class Hit:
    """A chunk found by a search, with its score and 1-based rank.

    ``dense`` (cosine) and ``lexical`` (BM25) are the raw scores of each search that
    found it, None where that search did not rank it among its candidates.
    """

    chunk: Chunk
    score: float
    rank: int
    dense: float | None = None
    lexical: float | None = None
    #: where a reordering added what the chunk's document has to its score, the chunk's own part
    own: float | None = None

    def to_json(self) -> dict:
        """What a search shows of it (the command line's --json, the API's /v1/search)."""
        c = self.chunk
        return {"rank": self.rank, "doc": c.doc, "page": c.page, "section": c.section, "chunk_id": c.id,
                "text": c.text, "score": round(float(self.score), 6)}
