"""Evaluate: run a question set, see the metrics, compare two settings side by side."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import streamlit as st

from qa.evaluate import METRIC_LABELS, QuestionSet, evaluate, load_question_set, parse_questions, summarize
from ui.auth import Identity
from ui.web.resources import Services, require_admin

SAMPLES = Path(__file__).resolve().parents[2] / "data-samples"
VARIANTS = {
    "as configured": {},
    "short answer extracted": {"phrasing": "extract"},
    "short answer phrased by the model (checked)": {"phrasing": "model"},
    "no spelling correction": {"correct_spelling": False},
}


def render(svc: Services, ident: Identity) -> None:
    from qa import Answerer

    require_admin(ident)
    st.title("Evaluate")
    st.caption("Answers a question set with the current index and models and reports retrieval, answers, "
               "citations, abstention and latency. Use it to choose settings for your documents.")
    source = st.radio("Questions", ["Bundled sample questions", "Upload a JSONL file"], horizontal=True)
    qset: QuestionSet | None = None
    if source.startswith("Bundled"):
        qset = load_question_set(SAMPLES)
        st.caption(f"{len(qset.questions)} questions about data-samples/docs (ingest that folder first on Admin).")
    else:
        up = st.file_uploader("questions.jsonl (the shared layout: id, question, answers, evidence, answerable)", type=["jsonl"])
        if up is not None:
            try:
                qset = QuestionSet("upload", Path("."), parse_questions(up.getvalue().decode("utf-8", "replace"), up.name))
            except ValueError as exc:
                st.error(f"Not a question file: {exc}")
    cols = st.columns(3)
    limit = cols[0].number_input("At most this many questions", 1, 2000, 20)
    a = cols[1].selectbox("Setting A", list(VARIANTS), index=0)
    b = cols[2].selectbox("Setting B (optional)", ["(none)"] + list(VARIANTS), index=0)
    if not st.button("Run the evaluation", disabled=qset is None):
        return
    qset.questions = qset.questions[: int(limit)]
    summaries, rows = {}, {}
    for label in [a] + ([b] if b != "(none)" and b != a else []):
        options = replace(svc.answerer.options, **VARIANTS[label])
        answerer = Answerer(svc.index, svc.answerer.generator, options)
        bar = st.progress(0.0, text=f"{label}…")
        rows[label] = evaluate(answerer, qset, on_row=lambda i, r: bar.progress((i + 1) / len(qset.questions)),
                               filter=ident.filter)  # answered as this admin may read
        summaries[label] = summarize(rows[label])
    svc.audit.record(ident.user, "eval", detail=f"{qset.name}: {len(qset.questions)} questions, {', '.join(summaries)}")
    table = [{"metric": name, **{l: summaries[l].get(key) for l in summaries}} for key, name in METRIC_LABELS]
    st.subheader("Metrics")
    st.dataframe(table, hide_index=True, use_container_width=True)
    chart = {l: {name: summaries[l].get(key) or 0.0 for key, name in METRIC_LABELS[:9]} for l in summaries}
    st.bar_chart(chart)
    st.subheader("Per question")
    first = list(rows)[0]
    st.dataframe([{"question": r["question"], "answer": r["answer"], "quote": r.get("quote", ""), "abstained": r["abstained"],
                   "contained": r.get("contained"), "f1": round(r.get("f1") or 0, 3),
                   "citations": ", ".join(f"[{c['n']}] {c['doc']}" for c in r["citations"])} for r in rows[first]],
                 hide_index=True, use_container_width=True)
