"""Helpers shared by the benchmarks: where the eval data is, cached indexes, percentiles."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL = Path(os.environ.get("ARCHIVIST_EVAL_DIR", ROOT.parent / "shared" / "eval"))
CACHE = Path(os.environ.get("ARCHIVIST_BENCH_CACHE", ROOT / ".bench-cache"))


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def sample_questions(questions: list[dict], answerable: int, unanswerable: int, seed: int = 0) -> list[dict]:
    """The seeded sample every answer benchmark uses: up to N answerable, then up to M unanswerable."""
    import random

    rng = random.Random(seed)
    ans = [q for q in questions if q["answerable"]]
    una = [q for q in questions if not q["answerable"]]
    return rng.sample(ans, min(len(ans), answerable)) + rng.sample(una, min(len(una), unanswerable))


def answer_all(label: str, ask, questions: list[dict]) -> list[dict]:
    """Score ``ask(question)`` on every question, with a progress line on stderr."""
    import sys

    from qa.evaluate import score_question

    rows = []
    for i, q in enumerate(questions):
        rows.append(score_question(q, ask(q["question"])))
        print(f"\r{label}: {i + 1}/{len(questions)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    i = min(len(v) - 1, max(0, int(round(q / 100 * (len(v) - 1)))))
    return v[i]


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
