"""Evaluation on a question set in the shared layout (``docs/`` + ``questions.jsonl``).

Per question: retrieval (evidence document / page among the top k, reciprocal rank),
answer (token F1, containment, content recall), citation precision, abstention and
latency. :func:`summarize` turns the rows into the numbers an admin compares.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from qa.answerer import Answerer
from qa.metrics import contained, content_recall, token_f1
from retrieval import SearchFilter


@dataclass
class QuestionSet:
    name: str
    docs: Path
    questions: list[dict]


def parse_questions(text: str, origin: str = "questions") -> list[dict]:
    """JSON lines in the shared layout; missing optional fields get their defaults."""
    questions = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                q = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{origin}, line {n}: not valid JSON ({exc.msg})") from None
            if not isinstance(q, dict) or not isinstance(q.get("question"), str):
                raise ValueError(f"{origin}, line {n}: no 'question'")
            q.setdefault("answers", [])
            q.setdefault("evidence", [])
            q.setdefault("answerable", bool(q["answers"]))
            questions.append(q)
    return questions


def load_question_set(folder: str | Path, *, limit: int | None = None, seed: int = 0) -> QuestionSet:
    folder = Path(folder)
    qfile = folder / "questions.jsonl"
    if not qfile.is_file() or not (folder / "docs").is_dir():
        raise FileNotFoundError(f"{folder} is not a question set: it needs docs/ and questions.jsonl")
    questions = parse_questions(qfile.read_text(encoding="utf-8"), str(qfile))
    if limit and len(questions) > limit:
        # keep the set's mix: answerable and unanswerable sampled in proportion, seeded
        rng = random.Random(seed)
        ans = [q for q in questions if q["answerable"]]
        una = [q for q in questions if not q["answerable"]]
        n_una = min(len(una), max(1 if una else 0, round(limit * len(una) / len(questions))))
        picked = rng.sample(ans, min(len(ans), limit - n_una)) + rng.sample(una, n_una)
        order = {id(q): i for i, q in enumerate(questions)}
        questions = sorted(picked, key=lambda q: order[id(q)])
    return QuestionSet(folder.name, folder / "docs", questions)


def score_question(q: dict, answer, k: int = 5) -> dict:
    gold_docs = {e["doc"] for e in q["evidence"]}
    gold_pages = {(e["doc"], e["page"]) for e in q["evidence"] if e.get("page") is not None}
    hits = answer.hits[:k]
    rank = next((h.rank for h in hits if h.chunk.doc in gold_docs), None)
    row = {
        "id": q.get("id"),
        "question": q["question"],
        "answerable": q["answerable"],
        "answer": answer.answer,
        "quote": answer.quote,
        "abstained": answer.abstained,
        "reason": answer.reason,
        "gold": q["answers"],
        "citations": [{"n": p.n, "doc": p.chunk.doc, "page": p.chunk.page} for p in answer.citations],
        "total_s": answer.timings.get("total_s", 0.0),
    }
    if q["answerable"]:
        row.update(
            evidence_doc=rank is not None,
            evidence_page=any((h.chunk.doc, h.chunk.page) in gold_pages for h in hits) if gold_pages else None,
            rr=1.0 / rank if rank else 0.0,
            f1=token_f1(answer.text, q["answers"]) if not answer.abstained else 0.0,
            contained=contained(answer.text, q["answers"]) if not answer.abstained else False,
            content_recall=content_recall(answer.text, q["answers"]) if not answer.abstained else 0.0,
            short_f1=token_f1(answer.answer, q["answers"]) if not answer.abstained else 0.0,
            short_contained=contained(answer.answer, q["answers"]) if not answer.abstained else False,
            quote_only=(not answer.answer) if not answer.abstained else None,
            cited_ok=[p.chunk.doc in gold_docs for p in answer.citations],
            first_page_ok=((answer.citations[0].chunk.doc, answer.citations[0].chunk.page) in gold_pages)
            if gold_pages and answer.citations else None,
        )
    return row


def evaluate(answerer: Answerer, qset: QuestionSet, *, k: int = 5, on_row: Callable[[int, dict], None] | None = None,
             filter: SearchFilter | None = None) -> list[dict]:
    """Answer and score every question, as the reader ``filter`` stands for would be answered."""
    rows = []
    for i, q in enumerate(qset.questions):
        row = score_question(q, answerer.ask(q["question"], filter=filter), k)
        rows.append(row)
        if on_row:
            on_row(i, row)
    return rows


def _mean(xs) -> float | None:
    xs = [float(x) for x in xs if x is not None]
    return round(sum(xs) / len(xs), 4) if xs else None


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    v = sorted(xs)
    return round(v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))], 3)


def summarize(rows: list[dict]) -> dict:
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    cited = [ok for r in ans if not r["abstained"] for ok in r["cited_ok"]]
    times = [r["total_s"] for r in rows]
    return {
        "questions": len(rows),
        "answerable": len(ans),
        "unanswerable": len(una),
        "evidence_doc@k": _mean(r["evidence_doc"] for r in ans),
        "evidence_page@k": _mean(r["evidence_page"] for r in ans),
        "mrr": _mean(r["rr"] for r in ans),
        "short_containment": _mean(r.get("short_contained") for r in ans),
        "short_f1": _mean(r.get("short_f1") for r in ans),
        "f1": _mean(r["f1"] for r in ans),
        "containment": _mean(r["contained"] for r in ans),
        "content_recall": _mean(r["content_recall"] for r in ans),
        "citation_precision": _mean(cited),
        "first_citation_page": _mean(r.get("first_page_ok") for r in ans if not r["abstained"]),
        "quote_only": _mean(r.get("quote_only") for r in ans if not r["abstained"]),
        "abstain_unanswerable": _mean(r["abstained"] for r in una),
        "abstain_answerable": _mean(r["abstained"] for r in ans),
        "latency_p50_s": _pct(times, 50),
        "latency_p95_s": _pct(times, 95),
    }


METRIC_LABELS = [
    ("evidence_doc@k", "evidence document in top k"),
    ("evidence_page@k", "evidence page in top k"),
    ("mrr", "MRR (evidence document)"),
    ("short_containment", "short answer contains the gold answer"),
    ("short_f1", "short answer token F1"),
    ("containment", "gold-answer containment (all shown)"),
    ("f1", "token F1 (all shown)"),
    ("content_recall", "gold content-word recall (all shown)"),
    ("citation_precision", "citation precision"),
    ("first_citation_page", "first citation on an evidence page"),
    ("quote_only", "answer shown is only a quote"),
    ("abstain_unanswerable", "abstained on unanswerable (higher is better)"),
    ("abstain_answerable", "abstained on answerable (lower is better)"),
    ("latency_p50_s", "latency p50 (s)"),
    ("latency_p95_s", "latency p95 (s)"),
]


def markdown_report(set_name: str, summaries: dict[str, dict], rows: dict[str, list[dict]] | None = None) -> str:
    """One column per compared setting; then, for the first, the questions it got wrong."""
    labels = list(summaries)
    first = summaries[labels[0]]
    out = [f"# Evaluation: {set_name}", "",
           f"{first['questions']} questions ({first['answerable']} answerable, {first['unanswerable']} unanswerable).", "",
           "| metric | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for key, label in METRIC_LABELS:
        vals = ["-" if summaries[l].get(key) is None else f"{summaries[l][key]:.3f}" for l in labels]
        out.append(f"| {label} | " + " | ".join(vals) + " |")
    if rows:
        r0 = rows[labels[0]]
        misses = [r for r in r0 if (r["answerable"] and (r["abstained"] or not r.get("contained"))) or (not r["answerable"] and not r["abstained"])]
        if misses:
            out += ["", f"## Not right with `{labels[0]}` (first 20)", ""]
            for r in misses[:20]:
                gold = r["gold"][0] if r["gold"] else "(unanswerable)"
                out.append(f"- **{r['question']}**  \n  answer: {(r['answer'] or r.get('quote') or '')[:200]}  \n  gold: {gold[:200]}")
    return "\n".join(out) + "\n"
