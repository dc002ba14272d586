"""Answer quality: Archivist's answerer against a naive pipeline with the same small model.

    .venv/bin/python bench/answers.py [--sets contoso-hr covid-qa data-samples] [--limit 50]

Naive baseline: the top-3 chunks stuffed into one prompt, the model's reply taken as the
answer (the usual tutorial pipeline). Both run on the same index, the same questions
(a seeded sample of up to 40 answerable + 10 unanswerable per set, as in the issue's
measurements) and the same SmolLM2-135M-Instruct. Updates bench/results/answers.json (the
sets and pipelines of this run; the others stay) and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import EVAL, ROOT, answer_all, sample_questions  # noqa: E402
from bench.retrieval import build_qa_index  # noqa: E402
from qa import ABSTAIN_TEXT, Answer, Answerer, Passage, TransformersGenerator  # noqa: E402
from qa.evaluate import load_question_set, markdown_report, summarize  # noqa: E402
from qa.grounding import is_abstention  # noqa: E402
from retrieval import make_embedder  # noqa: E402

NAIVE_PROMPT = "Use the following context to answer the question.\n\nContext:\n{context}\n\nQuestion: {question}\nAnswer:"


class NaivePipeline:
    """Top-3 chunks in one prompt; whatever the model says is the answer."""

    def __init__(self, index, generator, k: int = 3):
        self.index, self.generator, self.k = index, generator, k

    def ask(self, question: str) -> Answer:
        t0 = time.perf_counter()
        hits = self.index.search(question, self.k)
        t1 = time.perf_counter()
        context = "\n\n".join(h.chunk.text for h in hits)
        text = self.generator.generate([{"role": "user", "content": NAIVE_PROMPT.format(context=context, question=question)}], 80)
        text = " ".join(text.split())
        t2 = time.perf_counter()
        cited = [Passage(i + 1, h.chunk, h.chunk.text, h.score) for i, h in enumerate(hits)]
        abstained = is_abstention(text)
        return Answer(question, text or ABSTAIN_TEXT, abstained, [] if abstained else cited, cited,
                      {"retrieve_s": t1 - t0, "generate_s": t2 - t1, "total_s": t2 - t0}, "naive", None, hits)


def set_dir(name: str) -> Path:
    return ROOT / "data-samples" if name == "data-samples" else EVAL / name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["contoso-hr", "covid-qa", "data-samples"])
    ap.add_argument("--answerable", type=int, default=40)
    ap.add_argument("--unanswerable", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--styles", nargs="*", default=[], help="also run the answerer with these styles (generated, quote, both)")
    args = ap.parse_args()
    embedder = make_embedder("all-MiniLM-L6-v2")
    generator = TransformersGenerator(cache_dir=ROOT / ".bench-cache" / "models")
    generator.load()
    results = {}
    for name in args.sets:
        folder = set_dir(name)
        qset = load_question_set(folder)
        qset.questions = sample_questions(qset.questions, args.answerable, args.unanswerable, args.seed)
        if name == "data-samples":
            from bench.retrieval import CACHE
            from ingest import Chunker, ChunkingOptions, Ingestor, Parser, discover
            from retrieval import Index

            index = Index(CACHE / "data-samples", embedder)
            with Parser() as parser:
                Ingestor(index, Chunker(embedder.count_tokens, ChunkingOptions(max_tokens=256)), parser).ingest(discover([folder / "docs"]))
        else:
            index, _ = build_qa_index(name, embedder, False)
        from qa import AnswerOptions

        pipelines = {"archivist": Answerer(index, generator)}
        for style in args.styles:
            pipelines[f"archivist ({style})"] = Answerer(index, generator, AnswerOptions(style=style))
        if not args.skip_naive:
            pipelines["naive top-3"] = NaivePipeline(index, generator)
        summaries, rows = {}, {}
        for label, pipe in pipelines.items():
            rows[label] = answer_all(f"{name} {label}", pipe.ask, qset.questions)
            summaries[label] = summarize(rows[label])
        results[name] = {"summaries": summaries, "rows": rows}
        print(markdown_report(name, summaries).strip(), flush=True)
        print(flush=True)
    out = ROOT / "bench" / "results" / "answers.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(out.read_text()) if out.exists() else {}
    for name, res in results.items():  # a run of some sets or pipelines updates those, keeps the rest
        entry = merged.setdefault(name, {"summaries": {}, "rows": {}})
        entry["summaries"].update(res["summaries"])
        entry["rows"].update(res["rows"])
    out.write_text(json.dumps(merged, indent=2))


if __name__ == "__main__":
    main()
