"""A fine-tuned generator, exported to GGUF so that it runs on the llama.cpp backend like the
shipped one.

Fine-tuning (:mod:`qa.finetune`) trains LoRA adapters on the de-quantised base and saves the
merged model as a transformers folder. The export takes the base GGUF as the template: its
metadata (tokenizer, chat template) and every tensor the training left as it was are copied
byte for byte, still quantised; only the tensors the training changed are written, as F16, from
the merged weights. A tensor counts as changed when its F16 values differ from the base's
de-quantised ones in any element: what the merged model's own F16 copy could tell apart.

Only llama-architecture bases (SmolLM2 is one) are mapped; other bases keep their fine-tuned
versions on the transformers backend.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from retrieval.errors import ArchivistError

GGUF_NAME = "model.gguf"

_LAYER = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}
_GLOBAL = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


class ExportError(ArchivistError):
    """The model could not be written as GGUF; the version stays on the transformers backend."""


@dataclass(frozen=True)
class ExportReport:
    path: Path
    tensors: int  # tensors in the file
    changed: int  # of them, written from the fine-tuned weights


def hf_name(gguf_name: str) -> str | None:
    """The transformers name of a llama GGUF tensor: blk.3.attn_q.weight -> model.layers.3.self_attn.q_proj.weight."""
    m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.(weight|bias)", gguf_name)
    if m and m.group(2) in _LAYER:
        return f"model.layers.{m.group(1)}.{_LAYER[m.group(2)]}.{m.group(3)}"
    m = re.fullmatch(r"(\w+)\.(weight|bias)", gguf_name)
    if m and m.group(1) in _GLOBAL:
        return f"{_GLOBAL[m.group(1)]}.{m.group(2)}"
    return None


def llama_permute(weights, n_head: int, n_kv_head: int | None = None):
    """llama.cpp's row order for the q and k projections (what its converter does; transformers
    undoes it when it reads a GGUF file)."""
    if n_kv_head is not None and n_head != n_kv_head:
        n_head = n_kv_head
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _field(reader, key: str):
    field = reader.fields.get(key)
    return field.contents() if field is not None else None


def _merged_weights(model_dir: Path) -> dict:
    from safetensors.numpy import load_file

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise ExportError(f"no weights (*.safetensors) in {model_dir}")
    weights: dict = {}
    for f in files:
        weights.update(load_file(str(f)))
    return weights


def export_gguf(model_dir: str | os.PathLike, base_gguf: str | os.PathLike,
                out_path: str | os.PathLike | None = None) -> ExportReport:
    """Write ``model_dir`` (a merged transformers model fine-tuned from ``base_gguf``) as GGUF,
    by default to ``model_dir/model.gguf``; atomically (a temporary file renamed)."""
    import gguf
    import numpy as np

    model_dir, base_gguf = Path(model_dir), Path(base_gguf)
    out = Path(out_path) if out_path else model_dir / GGUF_NAME
    reader = gguf.GGUFReader(str(base_gguf), "r")
    arch = _field(reader, gguf.Keys.General.ARCHITECTURE)
    if arch != "llama":
        raise ExportError(f"{base_gguf.name} is a {arch!r} model; only llama-architecture bases are exported")
    n_head = int(_field(reader, f"{arch}.attention.head_count"))
    n_kv = int(_field(reader, f"{arch}.attention.head_count_kv") or n_head)
    weights = _merged_weights(model_dir)

    planned = []  # (the base's tensor, the fine-tuned F16 values where they differ, else None)
    for tensor in reader.tensors:
        tuned = weights.get(hf_name(tensor.name) or "")
        if tuned is None:
            planned.append((tensor, None))
            continue
        tuned = np.asarray(tuned, dtype=np.float32)
        if tensor.name.endswith("attn_q.weight"):
            tuned = llama_permute(tuned, n_head, n_head)
        elif tensor.name.endswith("attn_k.weight"):
            tuned = llama_permute(tuned, n_head, n_kv)
        base = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(tuned.shape)
        changed = not np.array_equal(base.astype(np.float16), tuned.astype(np.float16))
        planned.append((tensor, tuned.astype(np.float16) if changed else None))

    tmp = out.with_name(out.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch=arch, endianess=reader.endianess)
    alignment = _field(reader, gguf.Keys.General.ALIGNMENT)
    if alignment is not None:
        writer.data_alignment = alignment
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    for tensor, tuned in planned:
        if tuned is None:
            writer.add_tensor_info(tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes,
                                   tensor.tensor_type)
        else:
            writer.add_tensor_info(tensor.name, tuned.shape, tuned.dtype, tuned.nbytes, gguf.GGMLQuantizationType.F16)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for tensor, tuned in planned:
            writer.write_tensor_data(tensor.data if tuned is None else tuned)
    finally:
        writer.close()
    os.replace(tmp, out)
    return ExportReport(out, len(planned), sum(t is not None for _, t in planned))
