"""Answer quality, the product's way: index built and calibrated as `archivist ingest` does,
questions answered as `archivist ask --questions --json` does, against a naive pipeline.

    .venv/bin/python bench/answers.py [--sets contoso-hr covid-qa data-samples] [--phrasing extract model]

Questions: every question of contoso-hr and data-samples; for covid-qa (and any set over
``--max-answerable``), the answerable questions sorted by id, then a seeded sample of 300, plus
every unanswerable one. Per set: the short answer and the whole text shown (containment, F1),
citation precision, first citation on an evidence page, abstention both ways, how often the
answer is only a quote, latency. Naive baseline (``--naive``): the top-3 chunks stuffed into one
prompt, the model's reply taken as the answer. Updates bench/results/answers.json (the sets and
pipelines of this run; the others stay) and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import CACHE, EVAL, ROOT, answer_all  # noqa: E402
from qa import ABSTAIN_TEXT, Answer, Passage  # noqa: E402
from qa.evaluate import load_question_set, markdown_report, summarize  # noqa: E402
from qa.grounding import is_abstention  # noqa: E402

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
        return Answer(question, text or ABSTAIN_TEXT, "", abstained, [] if abstained else cited, cited,
                      {"retrieve_s": t1 - t0, "generate_s": t2 - t1, "total_s": t2 - t0}, "naive", None, hits)


def set_dir(name: str) -> Path:
    if name in ("siblings", "siblings-long"):  # generated: bench/siblings.py (long: filings with notes pages)
        from bench.siblings import build

        folder = CACHE / f"{name}-set"
        if not (folder / "questions.jsonl").exists():
            build(folder, notes=name == "siblings-long")
        return folder
    return ROOT / "data-samples" if name == "data-samples" else EVAL / name


#: how askers dress a question when they write to an assistant (the form of the answer, the part they
#: play), in the manner of FinanceBench's questions; ``--dressed`` wraps every question in one of them
DRESSINGS = (
    "{q} Give a response to the question by relying on the details shown in the documents.",
    "Assume that you are an analyst reading the company's documents. Answer the following question: {q}",
    "{q} Answer in one sentence.",
    "Answer the following question as if you have lost internet connection and have only these documents. {q}",
    "{q} Please round any figure to two decimal places.",
)


def dressed(questions: list[dict]) -> list[dict]:
    """Every question in one of :data:`DRESSINGS`, the same one for a question in every run."""
    import zlib

    return [dict(q, question=DRESSINGS[zlib.crc32(q["id"].encode()) % len(DRESSINGS)].format(q=q["question"]))
            for q in questions]


def pick_questions(questions: list[dict], max_answerable: int, seed: int) -> list[dict]:
    """Every question of a small set; of a large one, answerable sorted by id then a seeded sample,
    plus every unanswerable one."""
    ans = sorted((q for q in questions if q["answerable"]), key=lambda q: q["id"])
    una = [q for q in questions if not q["answerable"]]
    if len(ans) > max_answerable:
        ans = random.Random(seed).sample(ans, max_answerable)
    return ans + una


def product_index(name: str, settings, rebuild: bool = False):
    """The set's index as `archivist ingest` builds it (default settings), calibrated after it."""
    import shutil

    from ingest import discover
    from ui.services.compose import after_ingest, make_ingestor, open_index

    path = CACHE / f"product-{name}"
    if rebuild and path.exists():
        shutil.rmtree(path)
    settings = replace(settings, index=str(path), data_dir=path.parent)
    index = open_index(settings)
    if index.generation == 0:
        with make_ingestor(settings, index) as ingestor:
            ingestor.ingest(discover([set_dir(name) / "docs"]), progress=True)
    after_ingest(settings, index, progress=True)
    return index, settings


def main() -> None:
    from ui.services.compose import answer_options, calibrate, make_generator
    from ui.settings import load_settings
    from qa import Answerer
    from qa.calibration import stored

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["contoso-hr", "covid-qa", "data-samples"])
    ap.add_argument("--max-answerable", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--phrasing", nargs="+", default=["extract"], help="extract and/or model")
    ap.add_argument("--naive", action="store_true", help="also run the naive top-3 pipeline")
    ap.add_argument("--recalibrate", action="store_true", help="fit the threshold again even if the index has one")
    ap.add_argument("--rebuild", action="store_true", help="ingest the set again")
    ap.add_argument("--label", default="", help="a suffix for the result columns (e.g. a variant's name)")
    ap.add_argument("--no-name-match", action="store_true", help="rank without telling sibling documents apart by name")
    ap.add_argument("--no-spelling", action="store_true", help="answer without reading misspellings")
    ap.add_argument("--lowercase", action="store_true", help="ask every question in lower case, as many type "
                    "into a chat box: results under the label ' lowercase'")
    ap.add_argument("--dressed", action="store_true", help="wrap every question in an instruction to the reader "
                    "(\"Answer in one sentence.\"; DRESSINGS): results under the label ' dressed'")
    ap.add_argument("--settings", metavar="TOML", help="a settings file for a variant (e.g. [answer.evidence] "
                    "document_weight = 0.5); the defaults otherwise, never the environment's")
    args = ap.parse_args()
    if not args.label:
        args.label = " dressed" * args.dressed + " lowercase" * args.lowercase
    base = load_settings(args.settings, env={})
    generator = None
    results = {}
    for name in args.sets:
        qset = load_question_set(set_dir(name))
        questions = pick_questions(qset.questions, args.max_answerable, args.seed)
        if args.dressed:
            questions = dressed(questions)
        if args.lowercase:
            questions = [dict(q, question=q["question"].lower()) for q in questions]
        index, settings = product_index(name, base, args.rebuild)
        if args.recalibrate:
            calibrate(settings, index)
        cal = stored(index)
        print(f"{name}: {len(questions)} questions; threshold {cal.min_confidence if cal else 'default'}", file=sys.stderr)
        pipelines = {}
        for phrasing in args.phrasing:
            if phrasing == "model" and generator is None:
                generator = make_generator(settings)
            opts = replace(answer_options(settings), phrasing=phrasing, correct_spelling=not args.no_spelling)
            opts.evidence = replace(opts.evidence, name_match=not args.no_name_match)
            pipelines[f"archivist ({phrasing}){args.label}"] = Answerer(index, generator or _no_model(), opts)
        if args.naive:
            generator = generator or make_generator(settings)
            pipelines["naive top-3"] = NaivePipeline(index, generator)
        summaries, rows = {}, {}
        for label, pipe in pipelines.items():
            rows[label] = answer_all(f"{name} {label}", pipe.ask, questions)
            summaries[label] = {**summarize(rows[label]), "threshold": cal.min_confidence if cal else None}
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


def _no_model():
    from qa import FakeGenerator

    return FakeGenerator(reply="")  # phrasing "extract" never calls it


if __name__ == "__main__":
    main()
