"""A fine-tuned generator exported to GGUF for llama.cpp: the base's tensors copied as they are,
the changed ones written from the fine-tuned weights in llama.cpp's layout."""

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from safetensors.numpy import save_file  # noqa: E402

from qa.gguf_export import ExportError, export_gguf, hf_name, llama_permute  # noqa: E402

N_HEAD, N_KV, DIM = 4, 2, 64


def _unpermute(w, n_head, n_kv=None):  # what transformers does when it reads a GGUF file
    if n_kv is not None and n_head != n_kv:
        n_head = n_kv
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


def _tiny_base(path, arch="llama"):
    """A two-tensor-kinds llama GGUF: a Q8_0 projection, an F32 norm, and the q and k projections."""
    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(str(path), arch=arch)
    writer.add_uint32(f"{arch}.attention.head_count", N_HEAD)
    writer.add_uint32(f"{arch}.attention.head_count_kv", N_KV)
    writer.add_string("tokenizer.chat_template", "{{ messages }}")
    tensors = {
        "blk.0.attn_q.weight": rng.standard_normal((DIM, DIM)).astype(np.float32),
        "blk.0.attn_k.weight": rng.standard_normal((DIM // 2, DIM)).astype(np.float32),
        "blk.0.attn_norm.weight": rng.standard_normal(DIM).astype(np.float32),
        "blk.0.ffn_up.weight": rng.standard_normal((2 * DIM, DIM)).astype(np.float32),
    }
    for name, values in tensors.items():
        if name.endswith("ffn_up.weight"):
            q = gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(name, values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _as_transformers_saw_it(base, folder):
    """The base as the fine-tuning saved it untouched: de-quantised, q/k in transformers' order, F16."""
    reader = gguf.GGUFReader(str(base))
    weights = {}
    for t in reader.tensors:
        values = gguf.quants.dequantize(t.data, t.tensor_type).reshape([int(d) for d in reversed(t.shape)])
        if t.name.endswith("attn_q.weight"):
            values = _unpermute(values, N_HEAD, N_HEAD)
        elif t.name.endswith("attn_k.weight"):
            values = _unpermute(values, N_HEAD, N_KV)
        weights[hf_name(t.name)] = values.astype(np.float16)
    folder.mkdir()
    save_file(weights, str(folder / "model.safetensors"))
    return weights


def test_names_map_both_ways_of_a_layer():
    assert hf_name("blk.3.attn_q.weight") == "model.layers.3.self_attn.q_proj.weight"
    assert hf_name("blk.0.ffn_down.weight") == "model.layers.0.mlp.down_proj.weight"
    assert hf_name("token_embd.weight") == "model.embed_tokens.weight"
    assert hf_name("rope_freqs.weight") is None


def test_the_permutation_is_the_inverse_of_transformers_reading():
    w = np.arange(DIM * 8, dtype=np.float32).reshape(DIM, 8)
    assert np.array_equal(llama_permute(_unpermute(w, N_HEAD, N_KV), N_HEAD, N_KV), w)
    assert not np.array_equal(llama_permute(w, N_HEAD), w)


def test_an_untouched_model_exports_to_the_base_byte_for_byte(tmp_path):
    base = tmp_path / "base.gguf"
    _tiny_base(base)
    _as_transformers_saw_it(base, tmp_path / "tuned")
    report = export_gguf(tmp_path / "tuned", base)
    assert (report.tensors, report.changed) == (4, 0)
    old, new = gguf.GGUFReader(str(base)), gguf.GGUFReader(str(report.path))
    for a, b in zip(old.tensors, new.tensors):
        assert a.name == b.name and a.tensor_type == b.tensor_type and np.array_equal(a.data, b.data)
    assert new.fields["tokenizer.chat_template"].contents() == "{{ messages }}"


def test_a_changed_projection_is_written_in_llama_cpp_order(tmp_path):
    base = tmp_path / "base.gguf"
    _tiny_base(base)
    weights = _as_transformers_saw_it(base, tmp_path / "tuned")
    k = "model.layers.0.self_attn.k_proj.weight"
    weights[k] = (weights[k].astype(np.float32) + 0.5).astype(np.float16)
    save_file(weights, str(tmp_path / "tuned" / "model.safetensors"))
    report = export_gguf(tmp_path / "tuned", base)
    assert report.changed == 1 and not (tmp_path / "tuned" / "model.gguf.tmp").exists()
    written = {t.name: t for t in gguf.GGUFReader(str(report.path)).tensors}
    t = written["blk.0.attn_k.weight"]
    assert t.tensor_type == gguf.GGMLQuantizationType.F16
    assert np.array_equal(np.asarray(t.data).reshape(DIM // 2, DIM), llama_permute(weights[k], N_HEAD, N_KV))
    assert written["blk.0.ffn_up.weight"].tensor_type == gguf.GGMLQuantizationType.Q8_0  # untouched: still quantised


def test_a_base_of_another_architecture_is_refused_by_name(tmp_path):
    base = tmp_path / "gemma.gguf"
    _tiny_base(base, arch="gemma3")
    (tmp_path / "tuned").mkdir()
    with pytest.raises(ExportError, match="gemma.gguf is a 'gemma3' model"):
        export_gguf(tmp_path / "tuned", base)
