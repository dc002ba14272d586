"""Which runtime computes the embedder's batches on this machine: a short self-test, run once and
recorded.

Three runtimes compute all-MiniLM-L6-v2's batches: fp32 on torch (:mod:`retrieval.bert`), fp32 on
onnxruntime (:mod:`retrieval.onnx_fp32`: the same vectors to about 1e-7, and it starts without
importing torch) and int8 on onnxruntime (:mod:`retrieval.onnx_int8`: nearly the same vectors,
cosine about 0.999). Their speeds depend on the CPU: int8 wins where the cores have fast int8 dot
products, the fp32 graph where onnxruntime's fused kernels beat torch's. ``chosen_runtime`` embeds
the same few synthetic passages with each runtime installed and keeps the fastest; the record
(``{"runtime", "chunks_per_s", "cpu", "measured_at"}``) is reused until the CPU changes. An index
keeps the family of vectors that built it (its embedder name says which: the two fp32 runtimes are
one family), so a choice never mixes two kinds of vectors in one index.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

from retrieval.errors import ConfigError

RUNTIMES = ("torch", "onnx-fp32", "onnx-int8")
#: the runtimes whose vectors are the same, so one index takes either; int8's are its own
FAMILIES = {"fp32": ("torch", "onnx-fp32"), "int8": ("onnx-int8",)}
INT8_SUFFIX = "+onnx-int8"  # an embedder name with it was built by the int8 ONNX model

_WORDS = ("the policy applies to every employee who joined after the review period and asks for written "
          "approval from a manager before the leave starts while payments continue at the usual rate for "
          "twelve weeks unless the contract says otherwise").split()


def sample_passages(n: int = 48, words: int = 120) -> list[str]:
    """Deterministic passages of about a chunk's length (120 words: 150-180 tokens)."""
    out = []
    for i in range(n):
        picked = [_WORDS[(i * 7 + j * (3 + i % 5)) % len(_WORDS)] for j in range(words - 8 * (i % 4))]
        out.append(" ".join(picked) + f". Section {i}.")
    return out


def family_of(embedder_name: str) -> str:
    """The family of vectors ("fp32" or "int8") an index's recorded embedder name implies."""
    return "int8" if embedder_name.endswith(INT8_SUFFIX) else "fp32"


def cpu_signature() -> str:
    """The CPU model, core count and whether it has fast int8 instructions: a change re-runs the test."""
    model, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        import platform

        model = platform.processor() or platform.machine()
    fast_int8 = sorted(f for f in flags if f in ("avx512f", "avx512_vnni", "avx_vnni", "amx_int8"))
    return f"{model} | {os.cpu_count()} cores | {' '.join(fast_int8) or 'no avx512/vnni'}"


def installed_runtimes() -> list[str]:
    from retrieval import onnx_fp32, onnx_int8

    return (["torch"] + (["onnx-fp32"] if onnx_fp32.available() else [])
            + (["onnx-int8"] if onnx_int8.available() else []))


def encoder_for(runtime: str, model_dir: Path, *, threads: int | None = None, batch_size: int = 32,
                max_tokens: int | None = None, cache_dir: Path | None = None):
    """The batch encoder of the BERT model in ``model_dir`` on ``runtime`` (``cache_dir``: where the
    fp32 graph is kept)."""
    from retrieval.bert import BertEncoder

    if runtime == "onnx-int8":
        from retrieval.onnx_int8 import OnnxInt8Encoder

        return OnnxInt8Encoder(model_dir, threads=threads, batch_size=batch_size, max_tokens=max_tokens)
    if runtime == "onnx-fp32":
        from retrieval.onnx_fp32 import OnnxFp32Encoder

        return OnnxFp32Encoder(model_dir, threads=threads, batch_size=batch_size, max_tokens=max_tokens,
                               cache_dir=cache_dir)
    return BertEncoder(model_dir, runtime=runtime, threads=threads, batch_size=batch_size, max_tokens=max_tokens)


def measure(model_dir: Path, runtimes: list[str], passages: list[str], *, threads: int | None = None,
            cache_dir: Path | None = None) -> dict[str, float | None]:
    """Chunks per second of each runtime on ``passages``, after a warm-up batch; None for a runtime
    that failed (an onnxruntime build without an operator, say): it is then never chosen."""
    import logging

    rates: dict[str, float | None] = {}
    for runtime in runtimes:
        try:
            encoder = encoder_for(runtime, model_dir, threads=threads, cache_dir=cache_dir)
            encoder.encode(passages[:8])
            started = time.perf_counter()
            encoder.encode(passages)
        except Exception as exc:  # torch is always there to fall back on
            logging.getLogger("archivist.embedding").warning("embedding runtime %s failed its self-test (%s: %s); "
                                                             "it is not used", runtime, type(exc).__name__, exc)
            rates[runtime] = None
            continue
        rates[runtime] = round(len(passages) / max(time.perf_counter() - started, 1e-9), 1)
    return rates


def read_record(record: Path) -> dict | None:
    try:
        found = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and found.get("runtime") in RUNTIMES else None


def fastest(rates: dict, family: str | None = None) -> str:
    """The fastest runtime in ``rates`` (of ``family``, when given), torch when none was measured."""
    allowed = [r for r in rates if family is None or r in FAMILIES[family]]
    if not allowed:
        return FAMILIES[family][0] if family else "torch"
    return max(allowed, key=lambda r: rates[r] or 0)


def chosen_runtime(record: Path, model_dir: Path, *, family: str | None = None, may_measure: bool = True,
                   cache_dir: Path | None = None, log=None) -> str:
    """The fastest runtime (of ``family``: an existing index's) recorded for this CPU in ``record``.
    Where the record is missing, made on another CPU or lacks an installed runtime, a self-test
    decides and is recorded, unless ``may_measure`` is False: then the best recorded one serves,
    else the family's first."""
    found = read_record(record)
    cpu = cpu_signature()
    runtimes = installed_runtimes()
    rates = found["chunks_per_s"] if found and found.get("cpu") == cpu and found.get("chunks_per_s") else {}
    if may_measure and not set(runtimes) <= set(rates):
        rates = _self_test(record, model_dir, runtimes, cpu, cache_dir, log)
    return fastest({r: v for r, v in rates.items() if r in runtimes}, family)


def _self_test(record: Path, model_dir: Path, runtimes: list[str], cpu: str, cache_dir, log) -> dict:
    """Each installed runtime's chunks per second on this machine, recorded in ``record``."""
    if len(runtimes) == 1:
        rates = {"torch": None}
    else:
        if log:
            log(f"choosing the embedding runtime for this machine (once): {', '.join(runtimes)}")
        rates = measure(model_dir, runtimes, sample_passages(), cache_dir=cache_dir)
    runtime = fastest(rates)
    entry = {"runtime": runtime, "chunks_per_s": rates, "cpu": cpu,
             "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry, indent=1))
        os.replace(tmp, record)
    except OSError:  # a read-only data folder: choose again next time
        pass
    if log and len(rates) > 1:
        log("embedding runtime: " + runtime + " (" + ", ".join(f"{r} {v} chunks/s" for r, v in rates.items()) + ")")
    return rates


def validate(runtime: str) -> None:
    if runtime not in ("auto", *RUNTIMES):
        raise ConfigError(f"embedder.runtime = {runtime!r}; use auto (a self-test picks the fastest on this "
                          "machine), torch (fp32), onnx-fp32 or onnx-int8")
