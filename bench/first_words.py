"""Time to the first words of an answer, with the default models, as the web app and
`archivist ask` see it: the quote card (shown as soon as retrieval is done), then the checked
short answer. ``--phrasing model`` has the small model phrase the short answer.

    .venv/bin/python bench/first_words.py

Ingests data-samples/docs into a temporary index, loads the models once, then asks every
answerable sample question and records when the first piece of text arrives and when the
answer is complete. Writes bench/results/first_words.json.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, load_jsonl, percentile  # noqa: E402


def main() -> None:
    from ingest import Chunker, ChunkingOptions, Ingestor, Parser, discover
    from qa import Answer, Answerer, TransformersGenerator
    from retrieval import Index, SentenceTransformerEmbedder

    tmp = Path(tempfile.mkdtemp())
    try:
        emb = SentenceTransformerEmbedder()
        index = Index(tmp / "index", emb)
        with Parser() as parser:
            Ingestor(index, Chunker(emb.count_tokens, ChunkingOptions(max_tokens=emb.max_tokens)), parser).ingest(
                discover([ROOT / "data-samples" / "docs"]))
        gen = TransformersGenerator(cache_dir=ROOT / ".bench-cache" / "models")
        gen.load()
        from qa import AnswerOptions

        answerer = Answerer(index, gen, AnswerOptions(phrasing=sys.argv[sys.argv.index("--phrasing") + 1]
                                                      if "--phrasing" in sys.argv else "extract"))
        answerer.ask("warm up")  # first call pays for lazy loading
        first, total = [], []
        for q in load_jsonl(ROOT / "data-samples" / "questions.jsonl"):
            if not q["answerable"]:
                continue
            t0 = time.perf_counter()
            t_first = None
            for event in answerer.stream(q["question"]):
                if t_first is None:
                    t_first = time.perf_counter() - t0  # first words, or the whole answer when none streamed
                if isinstance(event, Answer):
                    total.append(time.perf_counter() - t0)
            first.append(t_first)
        out = {"questions": len(first), "first_words_p50_s": round(percentile(first, 50), 3),
               "first_words_p95_s": round(percentile(first, 95), 3), "answer_p50_s": round(percentile(total, 50), 3),
               "answer_p95_s": round(percentile(total, 95), 3)}
        print(json.dumps(out))
        path = ROOT / "bench" / "results" / "first_words.json"
        path.write_text(json.dumps(out, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
