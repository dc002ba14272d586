"""A BERT sentence encoder run in plain numpy: the same weights and the same arithmetic as
sentence-transformers (mean pooling, then unit length: all-MiniLM-L6-v2's recipe), without
importing torch, transformers and sentence-transformers, which take 6-9 s before the first
vector. A command-line question, or a server starting, embeds its query in well under a second;
ingestion still batches its thousands of chunks through sentence-transformers. Vectors agree
with it to about 1e-6 (``tests/test_embedder.py``), so both fill and search one index.

Only models of that shape are taken (:func:`supports`); any other folder goes through
sentence-transformers as before.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np


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


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / np.float32(np.sqrt(2.0))))


class NumpyBert:
    """``encode(texts)``: unit-length sentence vectors, as sentence-transformers' ``encode`` gives them."""

    def __init__(self, path: str | os.PathLike, *, max_tokens: int | None = None, batch_size: int = 16):
        from safetensors.numpy import load_file
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
        w = load_file(str(p / "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
        self.w = {k[len(prefix):]: v.astype(np.float32) for k, v in w.items() if k.startswith(prefix)}
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

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        w, c = self.w, self.config
        eps = float(c.get("layer_norm_eps", 1e-12))
        n, length = len(batch), max(len(x) for x in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for i, x in enumerate(batch):
            ids[i, : len(x)] = x
            mask[i, : len(x)] = 1.0
        h = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][0])
        h = _layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        heads = int(c["num_attention_heads"])
        size = self.dim // heads
        blocked = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for layer in range(int(c["num_hidden_layers"])):
            h = self._layer(h, f"encoder.layer.{layer}.", heads, size, blocked, eps)
        pooled = (h * mask[..., None]).sum(1) / np.clip(mask.sum(1, keepdims=True), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    def _layer(self, h, pre: str, heads: int, size: int, blocked, eps: float):
        w = self.w
        n, length, dim = h.shape

        def dense(x, name):
            return x @ w[pre + name + ".weight"].T + w[pre + name + ".bias"]

        def split(x):
            return x.reshape(n, length, heads, size).transpose(0, 2, 1, 3)

        q, k, v = (split(dense(h, f"attention.self.{m}")) for m in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(size)) + blocked
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = (scores / scores.sum(-1, keepdims=True)) @ v
        context = context.transpose(0, 2, 1, 3).reshape(n, length, dim)
        h = _layer_norm(dense(context, "attention.output.dense") + h,
                        w[pre + "attention.output.LayerNorm.weight"], w[pre + "attention.output.LayerNorm.bias"], eps)
        inner = _gelu(dense(h, "intermediate.dense"))
        return _layer_norm(dense(inner, "output.dense") + h,
                           w[pre + "output.LayerNorm.weight"], w[pre + "output.LayerNorm.bias"], eps)
