"""A BERT sentence model's own fp32 weights as an onnxruntime graph, built here from the model
folder (no export step, no file to ship): the same vectors as :mod:`retrieval.bert` (to about
1e-6), so it fills and searches the same index as the torch runtime.

Why: importing onnxruntime takes a fraction of a second where torch takes two or more, so a job
that embeds (``archivist ingest``) starts embedding seconds earlier, and onnxruntime's fused BERT
kernels (``EmbedLayerNormalization``, ``Attention``, ``SkipLayerNormalization``, ``BiasGelu``)
are at least as fast as torch's on a CPU. Whether it is faster on this machine is measured, not
assumed (:mod:`retrieval.runtime_choice`).

The graph, per layer (H hidden units, the ``com.microsoft`` operators onnxruntime's CPU provider
runs)::

    h = EmbedLayerNormalization(ids, word, position, token_type, gamma, beta, mask)   # once
    a = Attention(h, [Wq|Wk|Wv], [bq|bk|bv], lengths, num_heads)
    h = SkipLayerNormalization(a @ Wo, h, gamma, beta, bo)
    f = BiasGelu(h @ Wi, bi) @ Wo2
    h = SkipLayerNormalization(f, h, gamma, beta, bo2)

and mean pooling over the real tokens, then unit length, in numpy (as the int8 runtime does).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from retrieval.bert import LengthSortedEncoder, load_weights, mean_pool_normalised, padded
from retrieval.errors import ConfigError

_MS = "com.microsoft"
GRAPH_VERSION = 1  # raised when build_graph changes what it writes, so cached graphs are rebuilt


def available() -> bool:
    """Whether onnxruntime and onnx (to write the graph) are installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def build_graph(path: str | os.PathLike, config: dict) -> bytes:
    """The serialised ONNX model of the BERT encoder in ``path`` (inputs ``input_ids``,
    ``attention_mask``, both int32 [batch, length]; output ``hidden`` [batch, length, H])."""
    from onnx import TensorProto, helper, numpy_helper

    w = load_weights(path)
    eps = float(config.get("layer_norm_eps", 1e-12))
    heads = int(config["num_attention_heads"])
    inits: list = []
    nodes: list = []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def node(op: str, inputs: list[str], outputs: list[str], domain: str = "", **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, outputs, name=f"{op}_{len(nodes)}", domain=domain, **attrs))
        return outputs[0]

    e = "embeddings."
    h = node("EmbedLayerNormalization",
             ["input_ids", "", const("word", w[e + "word_embeddings.weight"]),
              const("position", w[e + "position_embeddings.weight"]),
              const("token_type", w[e + "token_type_embeddings.weight"]),
              const("embed_gamma", w[e + "LayerNorm.weight"]), const("embed_beta", w[e + "LayerNorm.bias"]),
              "attention_mask"],
             ["h_embed", "lengths"], domain=_MS, epsilon=eps)
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        qkv = [p + f"attention.self.{m}." for m in ("query", "key", "value")]
        a = node("Attention", [h, const(f"qkv_w{i}", np.concatenate([w[q + "weight"].T for q in qkv], axis=1)),
                               const(f"qkv_b{i}", np.concatenate([w[q + "bias"] for q in qkv])), "lengths"],
                 [f"attn{i}"], domain=_MS, num_heads=heads)
        a = node("MatMul", [a, const(f"attn_out_w{i}", w[p + "attention.output.dense.weight"].T)], [f"attn_proj{i}"])
        h = node("SkipLayerNormalization",
                 [a, h, const(f"attn_gamma{i}", w[p + "attention.output.LayerNorm.weight"]),
                  const(f"attn_beta{i}", w[p + "attention.output.LayerNorm.bias"]),
                  const(f"attn_out_b{i}", w[p + "attention.output.dense.bias"])],
                 [f"h_attn{i}"], domain=_MS, epsilon=eps)
        f = node("MatMul", [h, const(f"inner_w{i}", w[p + "intermediate.dense.weight"].T)], [f"inner{i}"])
        f = node("BiasGelu", [f, const(f"inner_b{i}", w[p + "intermediate.dense.bias"])], [f"gelu{i}"], domain=_MS)
        f = node("MatMul", [f, const(f"ffn_out_w{i}", w[p + "output.dense.weight"].T)], [f"ffn{i}"])
        h = node("SkipLayerNormalization",
                 [f, h, const(f"ffn_gamma{i}", w[p + "output.LayerNorm.weight"]),
                  const(f"ffn_beta{i}", w[p + "output.LayerNorm.bias"]),
                  const(f"ffn_out_b{i}", w[p + "output.dense.bias"])],
                 ["hidden" if i == int(config["num_hidden_layers"]) - 1 else f"h{i}"], domain=_MS, epsilon=eps)
    dims = ["batch", "length"]
    graph = helper.make_graph(
        nodes, "sentence_encoder",
        [helper.make_tensor_value_info(n, TensorProto.INT32, dims) for n in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [*dims, int(config["hidden_size"])])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(_MS, 1)],
                              producer_name="archivist")
    model.ir_version = 8
    return model.SerializeToString()


def cached_graph(path: str | os.PathLike, config: dict, cache_dir: str | os.PathLike) -> Path:
    """The graph of the model in ``path``, written once under ``cache_dir`` (about 90 MB for MiniLM)
    and reused: building it costs about 1.5 s (importing onnx included), loading it 0.2 s. The file
    is named for the weights it was built from, so other weights get a graph of their own."""
    weights = Path(path) / "model.safetensors"
    stat = weights.stat()
    key = hashlib.sha1(f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{GRAPH_VERSION}".encode()).hexdigest()[:12]
    out = Path(cache_dir) / f"bert-fp32-{key}.onnx"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(build_graph(path, config))
        os.replace(tmp, out)  # a reader never sees half a file
    return out


class OnnxFp32Encoder(LengthSortedEncoder):
    """``encode(texts)``: unit-length vectors from the model's fp32 weights on onnxruntime; with
    ``cache_dir``, the graph is built once and kept there."""

    runtime = "onnx-fp32"

    def __init__(self, path: str | os.PathLike, *, max_tokens: int | None = None, batch_size: int = 32,
                 threads: int | None = None, cache_dir: str | os.PathLike | None = None):
        if not available():
            raise ConfigError("embedder.runtime = 'onnx-fp32' needs onnxruntime and onnx (pip install onnxruntime "
                              "onnx), or set embedder.runtime = 'torch'.")
        import onnxruntime as ort

        super().__init__(path, max_tokens=max_tokens, batch_size=batch_size)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: onnxruntime's own choice, one per core
        options.log_severity_level = 3
        graph = self._graph(path, cache_dir)
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    def _graph(self, path, cache_dir) -> str | bytes:
        if cache_dir is not None:
            try:
                return str(cached_graph(path, self.config, cache_dir))
            except OSError:  # a read-only data folder: build it in memory each time
                pass
        return build_graph(path, self.config)

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        ids, mask = padded(batch)
        hidden = self.session.run(None, {"input_ids": ids.astype(np.int32), "attention_mask": mask.astype(np.int32)})[0]
        return mean_pool_normalised(hidden, mask)
