"""Evaluate: run a question set, see the metrics, compare two settings side by side."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from ui.auth import Identity
from ui.services import METRIC_LABELS, QuestionSet, load_question_set, parse_questions
from ui.web.render import escape_md
from ui.web.resources import Services, require_admin

SAMPLES = Path(__file__).resolve().parents[2] / "data-samples"
VARIANTS = {
    "as configured": {},
    "short answer extracted": {"answer.phrasing": "extract"},
    "short answer phrased by the model (checked)": {"answer.phrasing": "model"},
    "no spelling correction": {"answer.correct_spelling": False},
    "no check of the question's names": {"answer.check_names": False},
}


def render(svc: Services, ident: Identity) -> None:
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
                st.error(f"Not a question file: {escape_md(str(exc))}")
    cols = st.columns(3)
    limit = cols[0].number_input("At most this many questions", 1, 2000, 20)
    a = cols[1].selectbox("Setting A", list(VARIANTS), index=0)
    b = cols[2].selectbox("Setting B (optional)", ["(none)"] + list(VARIANTS), index=0)
    if not st.button("Run the evaluation", disabled=qset is None):
        return
    qset.questions = qset.questions[: int(limit)]
    labels = [a] + ([b] if b != "(none)" and b != a else [])
    bars = {label: st.progress(0.0, text=f"{label}: waiting…") for label in labels}
    texts: dict = {}

    def on_progress(label: str, done: int, total: int) -> None:
        if label not in texts:  # its clock starts with its own first question
            texts[label] = ProgressText(bars[label], label, total)
        texts[label](done - 1, None)

    result = svc.evaluate(ident, qset, {label: VARIANTS[label] for label in labels}, on_progress=on_progress)
    for label in labels:
        bars[label].progress(1.0, text=f"{label}: {len(qset.questions)} questions answered")
    summaries, rows = result.summaries, result.rows
    table = [{"metric": name, **{l: summaries[l].get(key) for l in summaries}} for key, name in METRIC_LABELS]
    st.subheader("Metrics")
    st.dataframe(table, hide_index=True, width="stretch")
    st.vega_lite_chart(comparison_chart(summaries), width="stretch")
    st.subheader("Per question")
    first = list(rows)[0]
    st.dataframe([{"question": r["question"], "answer": r["answer"], "quote": r.get("quote", ""), "abstained": r["abstained"],
                   "contained": r.get("contained"), "f1": round(r.get("f1") or 0, 3),
                   "citations": ", ".join(f"[{c['n']}] {c['doc']}" for c in r["citations"])} for r in rows[first]],
                 hide_index=True, width="stretch")


class ProgressText:
    """``on_row(i, row)`` for evaluate: moves a progress bar and says how long is left."""

    def __init__(self, bar, label: str, total: int, clock=time.monotonic):
        self.bar, self.label, self.total, self.clock = bar, label, max(total, 1), clock
        self.start = clock()

    def __call__(self, i: int, _row) -> None:
        done = i + 1
        left = (self.clock() - self.start) / done * (self.total - done)
        self.bar.progress(min(done / self.total, 1.0), text=f"{self.label}: {done}/{self.total} questions, "
                          f"about {_duration(left)} left")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


#: the metrics drawn: shares from 0 to 1 (latency has its own scale and stays in the table)
CHARTED = [(key, name) for key, name in METRIC_LABELS if not key.startswith("latency")]


def comparison_chart(summaries: dict) -> dict:
    """A Vega-Lite spec: one row per metric, the settings' bars side by side on a 0-1 axis."""
    values = [{"metric": name, "setting": label, "score": float(summaries[label].get(key) or 0.0)}
              for key, name in CHARTED for label in summaries]
    return {
        "data": {"values": values},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "metric", "type": "nominal", "sort": [name for _, name in CHARTED], "title": None,
                  "axis": {"labelLimit": 400}},
            "yOffset": {"field": "setting", "type": "nominal"},
            "x": {"field": "score", "type": "quantitative", "scale": {"domain": [0, 1]}, "title": "score (0-1)"},
            "color": {"field": "setting", "type": "nominal", "legend": {"orient": "bottom", "labelLimit": 400}},
        },
        "height": {"step": 14 * max(len(summaries), 1)},
    }
