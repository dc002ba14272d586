"""BERT sentence encoders computed here, from the model folder's weights and fast tokenizer:
mean pooling, then unit length (all-MiniLM-L6-v2's recipe), on either of two runtimes:

- ``numpy``: a query, or a question's sentences, in a process that has not imported torch: the
  first vector comes in a fraction of a second instead of after the 6-9 s that importing torch,
  transformers and sentence-transformers take (``archivist ask`` on the command line);
- ``torch``: batches (ingestion, a warm server), with the kernels sentence-transformers ends up
  calling, but without importing sentence-transformers and transformers (about 6 s of a 2 s
  torch import), texts sorted by length so that a batch pads little.

Both agree with sentence-transformers to about 1e-6 (``tests/test_real_models.py``), so they fill
and search one index. Only models of that shape are taken (:func:`supports`); any other folder
goes through sentence-transformers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

RUNTIMES = ("numpy", "torch")


def supports(path: str | os.PathLike) -> bool:
    """A sentence-transformers folder of a BERT encoder, mean-pooled and normalised, with a fast tokenizer."""
    p = Path(path)
    try:
        config = json.loads((p / "config.json").read_text())
        modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((p / "modules.json").read_text())]
        pooling = json.loads((p / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return False
    means_only = pooling.get("pooling_mode_mean_tokens") and not any(
        v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens")
    return (config.get("model_type") == "bert" and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and modules == ["Transformer", "Pooling", "Normalize"] and bool(means_only)
            and (p / "tokenizer.json").is_file() and (p / "model.safetensors").is_file())


def load_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The BERT weights of a model folder as fp32 arrays, named without the ``bert.`` prefix some
    checkpoints carry (position ids and other integer buffers left out)."""
    from safetensors.numpy import load_file

    w = load_file(str(Path(path) / "model.safetensors"))
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
    return {k[len(prefix):]: np.ascontiguousarray(v, dtype=np.float32)
            for k, v in w.items() if k.startswith(prefix) and v.dtype != np.int64}


def mean_pool_normalised(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sentence vectors: the mean of each text's real tokens (``mask`` 1), at unit length."""
    mask = mask.astype(np.float32)
    pooled = (hidden * mask[..., None]).sum(1) / np.clip(mask.sum(1, keepdims=True), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


class _NumpyOps:
    """The few operations the forward pass needs, on numpy arrays."""

    @staticmethod
    def array(a: np.ndarray):
        return a

    @staticmethod
    def linear(x, weight, bias):
        return x @ weight.T + bias

    @staticmethod
    def layer_norm(x, weight, bias, eps: float):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * weight + bias

    @staticmethod
    def gelu(x):
        from scipy.special import erf

        return 0.5 * x * (1.0 + erf(x / np.float32(np.sqrt(2.0))))

    @staticmethod
    def attention(q, k, v, mask):
        """Scaled dot-product attention; ``mask`` is 1 for the tokens to attend to."""
        blocked = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        scores = q @ k.swapaxes(-1, -2) / np.float32(np.sqrt(q.shape[-1])) + blocked
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        return (scores / scores.sum(-1, keepdims=True)) @ v

    @staticmethod
    def mean_pool_normalised(h, mask) -> np.ndarray:
        return mean_pool_normalised(h, mask)


class _TorchOps:
    """The same operations on torch tensors (the kernels transformers' BertModel calls)."""

    def __init__(self):
        import torch
        import torch.nn.functional as F

        self.torch, self.F = torch, F

    def array(self, a: np.ndarray):
        return self.torch.from_numpy(a)

    def linear(self, x, weight, bias):
        return self.F.linear(x, weight, bias)

    def layer_norm(self, x, weight, bias, eps: float):
        return self.F.layer_norm(x, (x.shape[-1],), weight, bias, eps)

    def gelu(self, x):
        return self.F.gelu(x)

    def attention(self, q, k, v, mask):
        keep = mask[:, None, None, :].to(self.torch.bool)
        return self.F.scaled_dot_product_attention(q, k, v, attn_mask=keep)

    def mean_pool_normalised(self, h, mask) -> np.ndarray:
        m = mask[..., None]
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return self.F.normalize(pooled, p=2, dim=1).numpy()


class LengthSortedEncoder:
    """What every encoder of a BERT sentence model here shares: the model folder's fast tokenizer,
    truncation to the window as sentence-transformers does it, texts sorted by length so that a
    batch pads little. A subclass computes ``_forward(batch of token ids) -> unit vectors``."""

    def __init__(self, path: str | os.PathLike, *, max_tokens: int | None = None, batch_size: int = 32):
        from tokenizers import Tokenizer

        p = Path(path)
        self.config = json.loads((p / "config.json").read_text())
        if max_tokens is None:
            st = p / "sentence_bert_config.json"
            max_tokens = int(json.loads(st.read_text())["max_seq_length"]) if st.exists() else 512
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.tokenizer = Tokenizer.from_file(str(p / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.dim = int(self.config["hidden_size"])

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for ``text``, special tokens included, before truncation."""
        return len(self.tokenizer.encode(text).ids)

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        out = []
        for enc in self.tokenizer.encode_batch(list(texts)):
            ids = enc.ids
            if len(ids) > self.max_tokens:  # keep [CLS] ... and the closing [SEP], as truncation does
                ids = ids[: self.max_tokens - 1] + ids[-1:]
            out.append(ids)
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = self._ids(texts)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # like lengths together: little padding
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            out[batch] = self._forward([ids[i] for i in batch])
        return out

    def _forward(self, batch: list[list[int]]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def padded(batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids padded with 0 to the batch's longest, and the mask (1 for a real token)."""
    n, length = len(batch), max(len(x) for x in batch)
    ids = np.zeros((n, length), dtype=np.int64)
    mask = np.zeros((n, length), dtype=np.int64)
    for i, x in enumerate(batch):
        ids[i, : len(x)] = x
        mask[i, : len(x)] = 1
    return ids, mask


class BertEncoder(LengthSortedEncoder):
    """``encode(texts)``: unit-length sentence vectors, as sentence-transformers' ``encode`` gives them."""

    def __init__(self, path: str | os.PathLike, *, runtime: str = "numpy", max_tokens: int | None = None,
                 batch_size: int | None = None, threads: int | None = None):
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime = {runtime!r}; use one of {', '.join(RUNTIMES)}")
        super().__init__(path, max_tokens=max_tokens, batch_size=batch_size or (16 if runtime == "numpy" else 32))
        self.runtime = runtime
        self.ops = _NumpyOps() if runtime == "numpy" else _TorchOps()
        if runtime == "torch" and threads:
            self.ops.torch.set_num_threads(threads)
        self.w = {k: self.ops.array(v) for k, v in load_weights(path).items()}

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        if self.runtime == "torch":
            with self.ops.torch.inference_mode():
                return self._pass(batch)
        return self._pass(batch)

    def _pass(self, batch: list[list[int]]) -> np.ndarray:
        w, c, ops = self.w, self.config, self.ops
        eps = float(c.get("layer_norm_eps", 1e-12))
        ids, mask = padded(batch)
        length = ids.shape[1]
        ids, mask = ops.array(ids), ops.array(mask.astype(np.float32))
        h = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][0])
        h = ops.layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        for layer in range(int(c["num_hidden_layers"])):
            h = self._layer(h, f"encoder.layer.{layer}.", int(c["num_attention_heads"]), mask, eps)
        return ops.mean_pool_normalised(h, mask)

    def _layer(self, h, pre: str, heads: int, mask, eps: float):
        w, ops = self.w, self.ops
        n, length, dim = h.shape

        def dense(x, name):
            return ops.linear(x, w[pre + name + ".weight"], w[pre + name + ".bias"])

        def split(x):
            return x.reshape(n, length, heads, dim // heads).swapaxes(1, 2)

        q, k, v = (split(dense(h, f"attention.self.{m}")) for m in ("query", "key", "value"))
        context = ops.attention(q, k, v, mask).swapaxes(1, 2).reshape(n, length, dim)
        h = ops.layer_norm(dense(context, "attention.output.dense") + h,
                           w[pre + "attention.output.LayerNorm.weight"], w[pre + "attention.output.LayerNorm.bias"], eps)
        inner = ops.gelu(dense(h, "intermediate.dense"))
        return ops.layer_norm(dense(inner, "output.dense") + h,
                              w[pre + "output.LayerNorm.weight"], w[pre + "output.LayerNorm.bias"], eps)
