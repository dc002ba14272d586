"""The prompt: numbered passages, the question, and the rules a small model can follow."""

from __future__ import annotations

from qa.answer import ABSTAIN_TEXT, Passage

SYSTEM = (
    "You answer questions about company documents. Use only the numbered passages. "
    "Answer in one or two short sentences and cite the passage you used like [1]. "
    f"If the passages do not contain the answer, reply exactly: {ABSTAIN_TEXT}"
)


def build_messages(question: str, passages: list[Passage]) -> list[dict]:
    lines = []
    for p in passages:
        where = p.chunk.doc + (f", page {p.chunk.page}" if p.chunk.page else "")
        lines.append(f"[{p.n}] ({where}) {p.text}")
    user = "Passages:\n" + "\n".join(lines) + f"\n\nQuestion: {question.strip()}\nAnswer:"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
