"""The vector space each generation of an index was embedded in.

An index is embedded with the embedder the settings name, until a fine-tuned embedder is
promoted: then a re-embedding commit writes every live chunk's vector again in the new space,
and the generation records that space (``meta['space-<gen>']``: its name and the folder of its
model, relative to the index so the data folder can move). A reader loads a generation's
vectors and the embedder of its space together, so a query is never compared with vectors of
another space; a generation without a record is in the space of the index's ``embedder`` meta.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from retrieval.embedder import Embedder, SentenceTransformerEmbedder
from retrieval.errors import IndexMismatchError


@dataclass(frozen=True)
class Space:
    name: str
    path: str | None = None  # the model's folder, relative to the index folder; None: the settings' embedder

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "path": self.path})

    @classmethod
    def from_json(cls, text: str | None) -> "Space | None":
        if not text:
            return None
        data = json.loads(text)
        return cls(data["name"], data.get("path"))


def space_of(embedder: Embedder, index_dir: Path) -> Space:
    """The record for vectors ``embedder`` computes: a model of its own folder keeps its path."""
    path = getattr(embedder, "path", None)
    own = getattr(embedder, "own_space", False)
    return Space(embedder.name, os.path.relpath(Path(path).resolve(), Path(index_dir).resolve()) if own and path else None)


class Spaces:
    """The embedders an index's generations need: the settings' one, and fine-tuned ones loaded
    from their folders on first use (kept for the life of the index)."""

    def __init__(self, base: Embedder, index_dir: Path, loader=None):
        self.base = base
        self.index_dir = Path(index_dir)
        #: (model folder, space name) -> Embedder; default: a sentence-transformers model (tests pass fakes)
        self.loader = loader or (lambda folder, name: tuned_embedder(folder, name,
                                                                     batch_size=getattr(base, "batch_size", 32)))
        self._loaded: dict[str, Embedder] = {base.name: base}
        self._lock = threading.Lock()

    def embedder(self, space: Space | None) -> Embedder:
        if space is None or space.name == self.base.name:
            return self.base
        with self._lock:
            found = self._loaded.get(space.name)
            if found is None:
                found = self._load(space)
                self._loaded[space.name] = found
            return found

    def _load(self, space: Space) -> Embedder:
        if not space.path:
            raise IndexMismatchError(
                f"the index in {self.index_dir} was built with the embedder {space.name!r}, but the settings "
                f"name {self.base.name!r}. Search it with the embedder it was built with, or ingest into a "
                "new index folder (--index DIR) to use the new embedder.")
        folder = (self.index_dir / space.path).resolve()
        if not folder.is_dir():
            raise IndexMismatchError(
                f"the index in {self.index_dir} is embedded with the fine-tuned embedder {space.name!r}, whose "
                f"model folder {folder} is gone. Restore it, or roll back ('archivist models rollback') to "
                "re-embed the index with the shipped embedder.")
        return self.loader(folder, space.name)


def tuned_embedder(folder: Path, name: str, *, batch_size: int = 32) -> SentenceTransformerEmbedder:
    """A fine-tuned sentence-transformers model as an embedder of its own space ``name``."""
    emb = SentenceTransformerEmbedder(str(folder), batch_size=batch_size)
    emb.name = name
    emb.own_space = True  # its folder is recorded with the vectors it computes
    return emb
