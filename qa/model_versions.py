"""Versioned fine-tuned models in the data dir, with one promoted ("active") version.

Layout::

    <data_dir>/models/versions.json      the versions, the active one and the promotion history
    <data_dir>/models/v3/generator/      a merged transformers model (the answering model), and
                                         its GGUF export for llama.cpp (model.gguf, qa.gguf_export)
    <data_dir>/models/v3/embedder/       a fine-tuned sentence embedder (optional) and its vectors of
                                         the index when it was tested (vectors.npz)
    <data_dir>/models/v3/reranker/       a cross-encoder (optional)
    <data_dir>/models/v3/record.json     its data, settings, training and evaluation scores

``promote(v)`` makes ``v`` the model the services use; ``rollback()`` returns to the version
active before it (or to the shipped models). Both are one small atomic file write; a version
with an embedder also needs the index re-embedded in its space (ui.services.compose.use_embedder_of,
one commit of the index).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from retrieval.errors import ArchivistError


@dataclass
class ModelVersion:
    id: str
    path: Path
    created: str
    record: dict

    @property
    def generator(self) -> Path | None:
        p = self.path / "generator"
        return p if (p / "config.json").exists() else None

    @property
    def generator_gguf(self) -> Path | None:
        p = self.path / "generator" / "model.gguf"
        return p if p.is_file() else None

    @property
    def embedder(self) -> Path | None:
        """The fine-tuned embedder kept by its keep test (a sentence-transformers folder)."""
        p = self.path / "embedder"
        return p if (p / "config.json").exists() else None

    @property
    def space(self) -> str:
        """The name of the vector space its embedder computes (what the index records)."""
        return f"finetuned:{self.id}"

    @property
    def reranker(self) -> Path | None:
        p = self.path / "reranker"
        return p if (p / "config.json").exists() else None


class ModelVersions:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @property
    def _file(self) -> Path:
        return self.root / "versions.json"

    def _read(self) -> dict:
        if not self._file.exists():
            return {"versions": [], "active": None, "history": []}
        return json.loads(self._file.read_text())

    def _write(self, data: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._file.with_name("versions.json.tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, self._file)

    def new_folder(self) -> tuple[str, Path]:
        """A fresh version id and its (empty) folder; registered later by :meth:`register`."""
        data = self._read()
        n = 1 + max([int(v[1:]) for v in data["versions"] if v[1:].isdigit()] +
                    [int(p.name[1:]) for p in self.root.glob("v*") if p.name[1:].isdigit()] + [0])
        path = self.root / f"v{n}"
        path.mkdir(parents=True, exist_ok=False)
        return f"v{n}", path

    def register(self, vid: str, record: dict) -> ModelVersion:
        path = self.root / vid
        record = dict(record, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        (path / "record.json").write_text(json.dumps(record, indent=2, default=str))
        data = self._read()
        if vid not in data["versions"]:
            data["versions"].append(vid)
        self._write(data)
        return self.get(vid)

    def get(self, vid: str) -> ModelVersion:
        data = self._read()
        path = self.root / vid
        if vid not in data["versions"] or not path.is_dir():
            known = ", ".join(data["versions"]) or "none yet (run 'archivist finetune')"
            raise ArchivistError(f"no model version {vid!r}; known: {known}")
        rec = json.loads((path / "record.json").read_text()) if (path / "record.json").exists() else {}
        return ModelVersion(vid, path, rec.get("created", ""), rec)

    def list(self) -> list[ModelVersion]:
        return [self.get(v) for v in self._read()["versions"] if (self.root / v).is_dir()]

    @property
    def active(self) -> ModelVersion | None:
        vid = self._read().get("active")
        return self.get(vid) if vid else None

    def promote(self, vid: str) -> ModelVersion:
        version = self.get(vid)
        data = self._read()
        if data.get("active") != vid:
            data["history"].append(data.get("active"))
            data["active"] = vid
            self._write(data)
        return version

    @property
    def previous(self) -> ModelVersion | None:
        """The version a roll back returns to (None: the shipped models)."""
        history = self._read().get("history") or []
        return self.get(history[-1]) if history and history[-1] else None

    def rollback(self) -> ModelVersion | None:
        """Back to the version active before the current one (None: the shipped models)."""
        data = self._read()
        if not data.get("active"):
            raise ArchivistError("nothing to roll back: the shipped models are in use")
        previous = data["history"].pop() if data["history"] else None
        data["active"] = previous
        self._write(data)
        return self.get(previous) if previous else None

    def remove(self, vid: str) -> None:
        data = self._read()
        if data.get("active") == vid:
            raise ArchivistError(f"{vid} is in use; promote another version or roll back first")
        data["versions"] = [v for v in data["versions"] if v != vid]
        data["history"] = [v for v in data["history"] if v != vid]
        self._write(data)
        shutil.rmtree(self.root / vid, ignore_errors=True)
