"""Which runtime computes the embedder's batches on this machine: a short self-test, run once and
recorded.

fp32 torch and int8 ONNX give nearly the same vectors (cosine about 0.999) at speeds that depend on
the CPU: int8 wins where the cores have fast int8 dot products (VNNI, AVX-512), fp32 torch on the
AVX2-only cores this project was measured on. ``chosen_runtime`` embeds the same few synthetic
passages with each runtime installed and keeps the faster; the record (``{"runtime", "chunks_per_s",
"cpu", "measured_at"}``) is reused until the CPU changes. An index keeps the runtime that built it
(its embedder name says which), so a choice never mixes two kinds of vectors in one index.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

from retrieval.errors import ConfigError

RUNTIMES = ("torch", "onnx-int8")
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


def runtime_of(embedder_name: str) -> str:
    """The batch runtime an index's recorded embedder name implies."""
    return "onnx-int8" if embedder_name.endswith(INT8_SUFFIX) else "torch"


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
    from retrieval import onnx_int8

    return ["torch"] + (["onnx-int8"] if onnx_int8.available() else [])


def measure(model_dir: Path, runtimes: list[str], passages: list[str], *, threads: int | None = None) -> dict[str, float]:
    """Chunks per second of each runtime on ``passages``, after a warm-up batch."""
    from retrieval.bert import BertEncoder
    from retrieval.onnx_int8 import OnnxInt8Encoder

    rates = {}
    for runtime in runtimes:
        encoder = (OnnxInt8Encoder(model_dir, threads=threads) if runtime == "onnx-int8"
                   else BertEncoder(model_dir, runtime="torch", threads=threads))
        encoder.encode(passages[:8])
        started = time.perf_counter()
        encoder.encode(passages)
        rates[runtime] = round(len(passages) / max(time.perf_counter() - started, 1e-9), 1)
    return rates


def read_record(record: Path) -> dict | None:
    try:
        found = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and found.get("runtime") in RUNTIMES else None


def chosen_runtime(record: Path, model_dir: Path, *, log=None) -> str:
    """The runtime recorded for this CPU in ``record``, else the faster one of a self-test (recorded)."""
    found = read_record(record)
    cpu = cpu_signature()
    if found and found.get("cpu") == cpu and found["runtime"] in installed_runtimes():
        return found["runtime"]
    runtimes = installed_runtimes()
    if len(runtimes) == 1:
        rates = {"torch": None}
    else:
        if log:
            log(f"choosing the embedding runtime for this machine (once): {', '.join(runtimes)}")
        rates = measure(model_dir, runtimes, sample_passages())
    runtime = max(rates, key=lambda r: rates[r] or 0)
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
    return runtime


def validate(runtime: str) -> None:
    if runtime not in ("auto", *RUNTIMES):
        raise ConfigError(f"embedder.runtime = {runtime!r}; use auto (a self-test picks the faster on this "
                          "machine), torch (fp32) or onnx-int8")
