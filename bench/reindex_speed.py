"""How long `archivist reindex` takes when nothing changed, and when one file changed.

    .venv/bin/python bench/reindex_speed.py

Sets up a temporary folder with data-samples/docs as the only source, runs a first full
reindex, then times the unchanged reindex as a user runs it (the whole command, process
start included), five times, and once after editing one file. Writes
bench/results/reindex_speed.json.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cmd, cwd) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    return time.perf_counter() - t0


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    try:
        docs = tmp / "docs"
        shutil.copytree(ROOT / "data-samples" / "docs", docs)
        (tmp / "archivist.toml").write_text(f'[[sources]]\npath = "{docs}"\n')
        cmd = [sys.executable, "-m", "ui.cli", "reindex", "--no-progress"]
        first = run(cmd, tmp)
        unchanged = [run(cmd, tmp) for _ in range(5)]
        (docs / "hr" / "onboarding-checklist.md").write_text((docs / "hr" / "onboarding-checklist.md").read_text() + "\nUpdated.\n")
        one_changed = run(cmd, tmp)
        out = {"first_s": round(first, 2), "unchanged_s": [round(x, 2) for x in unchanged],
               "unchanged_median_s": round(statistics.median(unchanged), 2), "one_changed_s": round(one_changed, 2)}
        print(json.dumps(out))
        path = ROOT / "bench" / "results" / "reindex_speed.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
