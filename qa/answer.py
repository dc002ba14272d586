"""What an answer is: a short answer, the quote that backs it, the passages it cites, whether it
abstained, and how long it took."""

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
class Evidence:
    """What is shown as soon as retrieval is done, before the short answer is checked: the quote
    and its citation (first = the source of the quote)."""

    quote: str
    citations: list[Passage]


@dataclass
class Answer:
    """``answer`` is the short answer alone (a phrase or one sentence; "" when nothing shorter than
    the quote can be said), ``quote`` the evidence shown with it, ``citations`` its sources, the
    first being the quote's. An abstention has ``abstained`` set, ``answer`` = ABSTAIN_TEXT and no
    quote."""

    question: str
    answer: str
    quote: str = ""
    abstained: bool = False
    citations: list[Passage] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)  # everything shown to the model / the closest found
    timings: dict[str, float] = field(default_factory=dict)
    reason: str = ""  # why it abstained, or which path produced the answer
    search_query: str | None = None
    hits: list[Hit] = field(default_factory=list)  # what retrieval found, best first

    @property
    def text(self) -> str:
        """Everything shown, as plain text: the short answer, then the quote with its citation."""
        if self.abstained or not self.quote:
            return self.answer
        n = f" [{self.citations[0].n}]" if self.citations else ""
        quoted = f"“{self.quote}”{n}"
        return f"{self.answer}\n\n{quoted}" if self.answer else quoted

    def to_json(self, id: str | None = None) -> dict:
        def cite(p: Passage) -> dict:
            c = p.chunk
            return {"n": p.n, "doc": c.doc, "page": c.page, "section": c.section, "chunk_id": c.id,
                    "text": c.text, "score": round(float(p.score), 6)}

        return {
            "id": id,
            "question": self.question,
            "answer": self.answer,
            "quote": self.quote,
            "abstained": self.abstained,
            "citations": [cite(p) for p in self.citations],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "reason": self.reason,
        }
