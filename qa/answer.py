"""What an answer is: text, the passages it cites, whether it abstained, and how long it took."""

from __future__ import annotations

from dataclasses import dataclass, field

from retrieval import Chunk, Hit

ABSTAIN_TEXT = "I could not find this in the documents."


@dataclass
class Passage:
    """A numbered piece of evidence handed to the model: selected sentences of one chunk."""

    n: int
    chunk: Chunk
    text: str
    score: float
    best_sentence: str = ""


@dataclass
class Answer:
    question: str
    text: str
    abstained: bool
    citations: list[Passage] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)  # everything shown to the model / the closest found
    timings: dict[str, float] = field(default_factory=dict)
    reason: str = ""  # why it abstained, or which path produced the text
    search_query: str | None = None
    hits: list[Hit] = field(default_factory=list)  # what retrieval found, best first

    def to_json(self, id: str | None = None) -> dict:
        def cite(p: Passage) -> dict:
            c = p.chunk
            return {"n": p.n, "doc": c.doc, "page": c.page, "section": c.section, "chunk_id": c.id,
                    "text": c.text, "score": round(float(p.score), 6)}

        return {
            "id": id,
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [cite(p) for p in self.citations],
            "passages": [cite(p) for p in self.passages] if self.abstained else [],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "reason": self.reason,
        }
