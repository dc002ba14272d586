"""Ingestion on Ray against the plain path, on this machine.

    .venv/bin/python bench/ray_ingest.py

contoso-hr and covid-qa's documents ingested into a fresh data folder by `archivist ingest`
(the whole command: start, model loading, parse, chunk, embed, commit, optimize), three ways:
the plain path (the parser process and the embedder here), and `--ray` against a local Ray head
of 2 CPUs with 1 and with 2 embedding actors (ingest.ray_workers). The head's own start is
timed apart: a cluster is started once, not per job. The last run's chunks are compared with the
plain run's. Writes bench/results/ray_ingest.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import EVAL, ROOT  # noqa: E402

SETS = ("contoso-hr", "covid-qa")


def ingest(data: Path, *extra: str, env_extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVIST_")}
    env.update(ARCHIVIST_DATA_DIR=str(data), ARCHIVIST_ACCESS__DEFAULT="everyone", ARCHIVIST_EMBEDDER__RUNTIME="torch",
               ARCHIVIST_ANSWER__CALIBRATE_AFTER_INGEST="false", PYTHONPATH=str(ROOT), **(env_extra or {}))
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "ui.cli", "ingest", *[str(EVAL / s / "docs") for s in SETS],
                          "--json", *extra], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if run.returncode not in (0, 1):
        raise SystemExit(run.stderr[-3000:])
    report = json.loads(run.stdout)
    files = report["files"]
    return {"seconds": round(seconds, 1), "files": len(files), "chunks": report["chunks"],
            "failed": sum(f["status"] == "failed" for f in files),
            "chunks_per_s": round(report["chunks"] / seconds, 1)}


def chunk_ids(data: Path) -> set[str]:
    import sqlite3

    with sqlite3.connect(data / "index" / "archivist.sqlite") as con:
        return {r[0] for r in con.execute("SELECT id FROM chunks")}


def main() -> int:
    from ingest.ray_cluster import LocalHead

    root = Path(tempfile.mkdtemp(prefix="archivist-ray-bench-"))
    rows = {"plain": ingest(root / "plain")}
    print("plain", rows["plain"], file=sys.stderr)
    t0 = time.perf_counter()
    with LocalHead(cpus=2, object_store_mb=500) as head:
        rows["ray_head_start_s"] = round(time.perf_counter() - t0, 1)
        for workers in (1, 2):
            row = ingest(root / f"ray-{workers}", "--ray", head.address,
                         env_extra={"ARCHIVIST_INGEST__RAY_WORKERS": str(workers)})
            rows[f"ray_{workers}_workers"] = row
            print(f"ray, {workers} workers", row, file=sys.stderr)
    rows["same_chunks"] = chunk_ids(root / "plain") == chunk_ids(root / "ray-2")
    out = {"machine": f"{os.cpu_count()} cores", "sets": list(SETS), **rows}
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "ray_ingest.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
