"""Fine-tuning on a set's documents, measured on the set's own questions (never trained on).

    .venv/bin/python bench/finetune.py [--sets contoso-hr covid-qa] [--budget-minutes 12]

For each set: `archivist finetune`'s pipeline (qa.finetune_job.run_finetune) on the set's
indexed documents (training questions are written from the chunks; the set's questions are
never seen), then the same seeded sample as bench/answers.py (40 answerable + 10
unanswerable, seed 0) answered by the untuned and the tuned generator, with and without the
trained reranker, plus evidence page/document in the top 5 with and without the reranker, and
the generator's own sentence scored alone (draft_f1, draft_containment: before the answerer's
checks replace or quote it).
Writes bench/results/finetune.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.answers import set_dir  # noqa: E402
from bench.common import CACHE, ROOT, answer_all, sample_questions  # noqa: E402
from bench.retrieval import build_qa_index, eval_qa  # noqa: E402
from qa import Answerer, TransformersGenerator  # noqa: E402
from qa.evaluate import load_question_set, markdown_report, summarize  # noqa: E402
from qa.finetune_job import FinetuneOptions, run_finetune  # noqa: E402
from qa.model_versions import ModelVersions  # noqa: E402
from retrieval import make_embedder  # noqa: E402
from retrieval.reranker import CrossEncoderReranker  # noqa: E402


class _DraftRecorder:
    """Passes a generator through and keeps what it wrote for the last question (the draft, before the
    answerer's checks and quote): the generator's own answer, scored on its own."""

    def __init__(self, generator):
        self.generator, self.text = generator, ""

    def stream(self, messages, max_tokens):
        self.text = ""
        for piece in self.generator.stream(messages, max_tokens):
            self.text += piece
            yield piece

    def __getattr__(self, name):
        return getattr(self.generator, name)


def draft_scores(rows: list[dict], drafts: list[str]) -> dict:
    """Token F1 and containment of the drafts alone, on the answerable questions (no draft: 0)."""
    from qa.grounding import strip_citations
    from qa.metrics import contained, token_f1

    pairs = [(strip_citations(d), r["gold"]) for r, d in zip(rows, drafts) if r["answerable"]]
    n = max(len(pairs), 1)
    return {"draft_f1": round(sum(token_f1(d, g) for d, g in pairs) / n, 4),
            "draft_containment": round(sum(contained(d, g) for d, g in pairs) / n, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["contoso-hr", "covid-qa"])
    ap.add_argument("--budget-minutes", type=float, default=12.0)
    ap.add_argument("--max-examples", type=int, default=1500)
    ap.add_argument("--answerable", type=int, default=40)
    ap.add_argument("--unanswerable", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reuse", metavar="VERSION", help="evaluate an existing version instead of training")
    ap.add_argument("--admin-questions", action="store_true",
                    help="also train on the set's other questions (not in the measured sample), as an admin's "
                         "question file would be: the measured questions are never trained on")
    ap.add_argument("--max-admin", type=int, default=300)
    ap.add_argument("--no-reranker", action="store_true", help="spend the whole budget on the generator")
    ap.add_argument("--negatives", type=float, default=FinetuneOptions.negatives, help="share of abstention negatives")
    ap.add_argument("--curated-repeat", type=int, default=FinetuneOptions.curated_repeat,
                    help="times each admin/feedback/teacher example is shown per pass")
    args = ap.parse_args()
    embedder = make_embedder("all-MiniLM-L6-v2")
    base = TransformersGenerator(cache_dir=ROOT / ".bench-cache" / "models")
    base.load()
    out = ROOT / "bench" / "results" / "finetune.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    for name in args.sets:
        index, _ = build_qa_index(name, embedder, False)
        versions = ModelVersions(CACHE / f"finetune-{name}")
        qset = load_question_set(set_dir(name))
        ans = [q for q in qset.questions if q["answerable"]]  # retrieval is measured on all of them
        measured = sample_questions(qset.questions, args.answerable, args.unanswerable, args.seed)
        taken = {id(q) for q in measured}
        admin = [q for q in qset.questions if id(q) not in taken] if args.admin_questions else []
        if len(admin) > args.max_admin:  # an admin's file is tens to hundreds of questions
            admin = random.Random(args.seed).sample(admin, args.max_admin)
        t0 = time.perf_counter()
        if args.reuse:
            version = versions.get(args.reuse)
        else:
            version = run_finetune(
                index, base, versions, admin_questions=admin,
                options=FinetuneOptions(budget_minutes=args.budget_minutes, reranker=not args.no_reranker,
                                        negatives=args.negatives, curated_repeat=args.curated_repeat,
                                        max_examples=args.max_examples, eval_questions=30),
                on_stage=lambda stage, info: print(f"{name}: {stage} {info}", file=sys.stderr, flush=True)
                if not stage.endswith("-step") else None,
            )
        finetune_s = time.perf_counter() - t0
        qset.questions = measured
        tuned = TransformersGenerator(str(version.generator)) if version.generator else None
        reranker = CrossEncoderReranker(version.reranker) if version.reranker else None
        if reranker is None and (version.path / "reranker").exists():
            reranker = CrossEncoderReranker(version.path / "reranker")
        retrieval = {"without reranker": eval_qa(index, ans, "hybrid")}
        variants = {"untuned": (base, None)}
        if tuned is not None:
            variants["fine-tuned generator"] = (tuned, None)
        if reranker is not None:
            retrieval["with reranker"] = eval_qa(index.with_reranker(reranker), ans, "hybrid")
            variants["untuned + reranker"] = (base, reranker)
            if tuned is not None:
                variants["fine-tuned generator + reranker"] = (tuned, reranker)
        summaries, rows = {}, {}
        for label, (gen, rr) in variants.items():
            recorder, drafts = _DraftRecorder(gen), []
            answerer = Answerer(index.with_reranker(rr), recorder)

            def ask(question: str, answerer=answerer, recorder=recorder, drafts=drafts):
                recorder.text = ""
                answer = answerer.ask(question)
                drafts.append(recorder.text)
                return answer

            rows[label] = answer_all(f"{name} {label}", ask, qset.questions)
            for row, draft in zip(rows[label], drafts):
                row["draft"] = draft
            summaries[label] = {**summarize(rows[label]), **draft_scores(rows[label], drafts)}
        results[name] = {"version": version.id, "admin_questions": len(admin), "record": version.record,
                         "finetune_s": round(finetune_s, 1), "retrieval": retrieval, "summaries": summaries, "rows": rows}
        print(markdown_report(f"{name}: untuned vs fine-tuned ({version.id})", summaries).strip())
        print("the model's own sentence (before the answerer's checks and quote): " + json.dumps(
            {k: {m: v[m] for m in ("draft_f1", "draft_containment")} for k, v in summaries.items()}))
        print("retrieval (answerable questions, top 5): " + json.dumps(
            {k: {m: v.get(m) for m in ("evidence_doc@5", "evidence_page@5", "mrr_doc@5")} for k, v in retrieval.items()}))
        print(f"version record: {json.dumps({k: version.record.get(k) for k in ('data', 'generator_training', 'reranker', 'eval')}, default=str)[:1500]}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
