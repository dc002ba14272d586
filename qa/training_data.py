"""Training data from the company's own documents, for fine-tuning the small models.

Sources of question-answer pairs, each tied to the chunk that answers it:

* **synthetic**: questions written from the chunks' sentences by rules: an answer span (an
  amount, a count with its unit, a date, a name, what something "is") is replaced by the
  matching question phrase ("Employees receive 25 days of leave" -> "Employees receive how
  many days of leave?", answer "25 days");
* **teacher** (optional): a larger model behind a local folder or an OpenAI-compatible
  endpoint writes one question and a short answer per chunk (distillation);
* **admin**: a question file in the shared eval layout (id, question, answers, evidence);
* **feedback**: answers employees marked helpful.

Every question is kept only if it finds its own chunk again (round-trip retrieval). Each
example is assigned to ``train`` or ``heldout`` by a hash of its chunk (admin questions: of
their id), so the held-out split is fixed for a corpus and never trained on.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from qa.answer import ABSTAIN_TEXT, Passage
from qa.evidence import EvidenceOptions, retrieve, select_evidence
from qa.prompt import build_messages
from qa.text import content_terms, sentences
from retrieval import Chunk, Hit, Index, SearchFilter

_UNIT = r"(?:days?|weeks?|months?|years?|hours?|minutes?|seconds?|percent|per cent|%|times|people|employees|members|" \
        r"patients|cases|deaths|countries|km|kilometres|kilometers|miles|kg|mg|ml|euros?|dollars?|pounds?|kroner|" \
        r"points|pages|items|working days|business days|calendar days|nights|hectares|beds|doses|samples|participants)"
_CURRENCY = r"(?:[$€£]|EUR|USD|GBP|NOK|SEK|DKK|CHF)"
_NUMBER = re.compile(
    rf"(?<![\w.,/-])(?P<cur>{_CURRENCY}\s?)?(?P<num>\d{{1,3}}(?:[,.]\d{{3}})*(?:\.\d+)?|\d+(?:\.\d+)?)(?P<unit>\s?{_UNIT}\b)?(?![\w/])",
    re.IGNORECASE,
)
_YEAR = re.compile(r"\b(?:in|since|from|until|by|before|after)\s+((?:January|February|March|April|May|June|July|August|"
                   r"September|October|November|December)?\s?\d{0,2},?\s?(?:19|20)\d{2})\b")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z]+(?:\s+(?:of\s+|the\s+)?[A-Z][a-z]+){1,3})\b")
_IS = re.compile(r"^(?P<subj>(?:The |An? )?[A-Za-z][\w\- ]{2,50}?) (?P<verb>is|are|means|refers to) (?P<rest>.{8,160})$")
_PLURAL_UNITS = {"day": "days", "week": "weeks", "month": "months", "year": "years", "hour": "hours", "minute": "minutes"}


@dataclass
class Example:
    question: str
    answer: str  # a short answer span; ABSTAIN_TEXT for a negative
    chunk_id: str  # the chunk that answers it ('' for negatives)
    doc: str
    page: int | None = None
    kind: str = "synthetic"  # synthetic | teacher | admin | feedback | negative
    split: str = "train"  # train | heldout
    support: str = ""  # the sentence that states the answer: what the model learns to say
    #: for a negative: another document's question, whose passages are shown with this question
    decoy: str = ""

    def to_question(self) -> dict:
        """The example in the shared eval layout, for scoring with qa.evaluate."""
        answerable = self.kind != "negative"
        return {"id": f"{self.kind}-{_digest(self.question)[:10]}", "question": self.question,
                "answers": [self.answer] if answerable else [], "answerable": answerable,
                "evidence": [{"doc": self.doc, "page": self.page}] if answerable else []}


@dataclass
class TrainingSet:
    examples: list[Example] = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    def split(self, name: str) -> list[Example]:
        return [e for e in self.examples if e.split == name]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            for e in self.examples:
                fh.write(json.dumps(asdict(e), ensure_ascii=False) + "\n")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_of(key: str, heldout: float) -> str:
    """Deterministic: the same key always lands in the same split."""
    return "heldout" if int(_digest(key)[:8], 16) % 1000 < heldout * 1000 else "train"


def _clean(text: str) -> str:
    return " ".join(text.split()).strip()


def _trim(sentence: str, words: int = 45) -> str:
    w = _clean(sentence).split()
    return " ".join(w[:words]).rstrip(" .;:,")


def questions_from_sentence(sentence: str) -> list[tuple[str, str]]:
    """(question, answer) pairs written from one sentence by rules; [] when nothing fits."""
    return [(q, a) for q, a, _rule in question_rules(sentence)]


def question_rules(sentence: str) -> list[tuple[str, str, str]]:
    """(question, answer, rule) with rule one of amount, date, definition, name."""
    s = re.sub(r"^[\W_]+", "", _clean(sentence)).rstrip(" .;:")  # no leading bullets or dashes
    words = s.split()
    if not 6 <= len(words) <= 45 or "|" in s:
        return []
    out: list[tuple[str, str]] = []
    for m in _NUMBER.finditer(s):
        span = m.group(0).strip()
        if m.start() == 0 or len(span) < 1:
            continue
        unit = (m.group("unit") or "").strip().lower()
        if m.group("cur") or unit in ("percent", "per cent", "%"):
            ask = "how much"
        elif unit:
            ask = f"how many {_PLURAL_UNITS.get(unit, unit)}"
        else:
            continue  # a bare number: too often a clause number or an id
        out.append((f"{s[: m.start()].rstrip()} {ask}{s[m.end():]}?", span, "amount"))
        break
    m = _YEAR.search(s)
    if m and not out:
        span = m.group(1).strip()
        out.append((f"{s[: m.start(1)].rstrip()} when{s[m.end(1):]}?".replace(" in when", " when"), span, "date"))
    m = _IS.match(s)
    if m and not out:
        rest = m.group("rest")
        out.append((f"What {m.group('verb')} {m.group('subj')[0].lower() + m.group('subj')[1:]}?",
                    " ".join(rest.split()[:12]), "definition"))
    if not out:
        for m in _NAME.finditer(s):
            if m.start() < 3:
                continue
            span, before = m.group(1), s[: m.start()].rstrip()
            if before.lower().endswith(" the") or before.lower() == "the":
                out.append((f"{before[:-3].rstrip()} which{s[m.end():]}?".strip(), span, "name"))  # "the X plan" -> "which plan"
            else:
                out.append((f"{before} what{s[m.end():]}?", span, "name"))
            break
    return [(q[0].upper() + q[1:], a, r) for q, a, r in out if len(q.split()) >= 5]


def _live_chunks(index: Index, readers: SearchFilter | None) -> list[Chunk]:
    out: list[Chunk] = []
    for d in index.documents(readers):
        out += [c for c in index.document_chunks(d.doc)
                if readers is None or readers.groups is None or set(c.groups) & (set(readers.groups) | {"everyone"})]
    return out


def _round_trip(index: Index, question: str, chunk_id: str, k: int, readers: SearchFilter | None) -> bool:
    try:
        return any(h.chunk.id == chunk_id for h in index.search(question, k, filter=readers))
    except ValueError:
        return False


def teacher_pairs(teacher, chunk: Chunk) -> list[tuple[str, str]]:
    """Ask a larger model (any qa Generator) for one question and its short answer about a chunk."""
    messages = [
        {"role": "system", "content": "You write exam questions about a company document. Reply with JSON only."},
        {"role": "user", "content": "Passage:\n" + chunk.text[:2000] + "\n\nWrite one question an employee might ask "
         "that this passage answers, and its answer in at most 8 words copied from the passage. Reply as "
         '{"question": "...", "answer": "..."}'},
    ]
    try:
        text = teacher.generate(messages, 96)
        data = json.loads(text[text.index("{"): text.rindex("}") + 1])
        q, a = _clean(str(data["question"])), _clean(str(data["answer"]))
    except Exception:  # a teacher that does not answer in JSON is skipped, not fatal
        return []
    if q.endswith("?") and a and a.lower() in chunk.text.lower():
        return [(q, a)]
    return []


def _admin_holder(q: dict, chunks: list[Chunk], min_overlap: float = 0.5) -> tuple[Chunk, str] | None:
    """The chunk an admin's question is answered from, and what the model should learn to say.

    A gold answer copied from the document (a span) teaches its sentence, as the synthetic
    questions do; a written answer (not found word for word) is taught as the admin wrote it,
    from the chunk of its evidence document (and page) that shares most of its words."""
    docs = {e["doc"] for e in q.get("evidence", [])}
    pages = {(e["doc"], e.get("page")) for e in q.get("evidence", []) if e.get("page") is not None}
    gold = _clean(q["answers"][0])
    in_docs = [c for c in chunks if c.doc in docs]
    mine = [c for c in in_docs if (c.doc, c.page) in pages] or in_docs  # its pages, else its documents
    for c in mine:
        if gold.lower() in c.text.lower():
            sent = next((s for s in sentences(c.text) if gold.lower() in s.lower()), gold)
            return c, _trim(sent)
    terms = set(content_terms(gold))
    if not terms or not mine:
        return None
    shared = {c.id: len(terms & set(content_terms(c.text))) for c in mine}
    best = max(mine, key=lambda c: shared[c.id])
    if shared[best.id] < min_overlap * len(terms):
        return None
    return best, _trim(gold, 80)


def build_training_set(
    index: Index,
    *,
    readers: SearchFilter | None = None,
    heldout: float = 0.2,
    max_examples: int = 2000,
    negatives: float = 0.0,
    admin_questions: Iterable[dict] = (),
    feedback: Iterable = (),
    teacher=None,
    round_trip_k: int = 5,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
) -> TrainingSet:
    """Question-answer examples grounded in the index's chunks (those ``readers`` may read)."""
    rng = random.Random(seed)
    chunks = _live_chunks(index, readers)
    rng.shuffle(chunks)
    by_id = {c.id: c for c in chunks}
    ts = TrainingSet()
    counts = {"chunks": len(chunks), "candidates": 0, "kept": 0, "dropped_round_trip": 0}
    seen: set[str] = set()
    for i, chunk in enumerate(chunks):
        if len(ts.examples) >= max_examples:
            break
        pairs: list[tuple[str, str, str, str]] = []
        for sent in sentences(chunk.text):
            for q, a, rule in question_rules(sent):
                if rule == "name" and rng.random() > 0.3:
                    continue  # names are everywhere in company prose: keep a few, favour facts
                pairs.append((q, a, "synthetic", sent))
        if teacher is not None:
            pairs += [(q, a, "teacher", a) for q, a in teacher_pairs(teacher, chunk)]
        rng.shuffle(pairs)
        for q, a, kind, sent in pairs[:3]:  # a few per chunk: breadth over depth
            key = q.lower()
            if key in seen:
                continue
            seen.add(key)
            counts["candidates"] += 1
            if not _round_trip(index, q, chunk.id, round_trip_k, readers):
                counts["dropped_round_trip"] += 1
                continue
            ts.examples.append(Example(q, a, chunk.id, chunk.doc, chunk.page, kind, split_of(chunk.id, heldout),
                                       _trim(sent)))
            counts["kept"] += 1
        if on_progress:
            on_progress(i + 1, len(chunks))
    for q in admin_questions:
        if not q.get("answerable", True) or not q.get("answers"):
            continue
        found = _admin_holder(q, chunks)
        if found is None:
            continue
        holder, said = found
        ts.examples.append(Example(q["question"], q["answers"][0], holder.id, holder.doc, holder.page, "admin",
                                   split_of(str(q.get("id") or q["question"]), heldout), said))
    for entry in feedback:
        if getattr(entry, "rating", 0) != 1 or getattr(entry, "abstained", False) or not entry.chunks:
            continue
        cited = [c.get("chunk_id") for c in entry.chunks]
        cid = cited[0]
        if all(c in by_id for c in cited):  # the answer may repeat any chunk it cites: all must be readable
            first = re.split(r"\n\n", entry.answer)[0]
            said = re.sub(r"\s*\[\d{1,2}\]", "", first).strip()
            ts.examples.append(Example(entry.question, said, cid, by_id[cid].doc, by_id[cid].page, "feedback", "train",
                                       _trim(said)))
    positives = [e for e in ts.examples if e.split == "train"]
    # a negative shows a question with the passages found for another document's question: the model
    # learns to say it cannot answer from passages about something else, and nothing more (negatives
    # built from near-miss passages of the same subject taught it to refuse answerable questions;
    # bench/README.md, fine-tuning)
    for e in rng.sample(positives, int(len(positives) * negatives)) if positives else []:
        others = [o for o in positives if o.doc != e.doc]
        if others:
            ts.examples.append(Example(e.question, ABSTAIN_TEXT, "", e.doc, None, "negative", "train",
                                       decoy=rng.choice(others).question))
    counts.update({k: sum(1 for e in ts.examples if e.kind == k) for k in ("synthetic", "teacher", "admin", "feedback", "negative")})
    counts["train"] = len(ts.split("train"))
    counts["heldout"] = len(ts.split("heldout"))
    ts.counts = counts
    return ts


def prompt_for(index: Index, example: Example, *, k: int = 5, evidence: EvidenceOptions | None = None,
               readers: SearchFilter | None = None, rng: random.Random | None = None) -> tuple[list[dict], str] | None:
    """(messages, target) in the exact form the answerer uses: retrieved passages, numbered;
    the answering chunk among them (placed where retrieval put it, or added); the target cites it.

    A negative gets the passages retrieved for its decoy (another document's question), none from its own document."""
    rng = rng or random.Random(0)
    if example.kind == "negative":
        hits = [h for h in retrieve(index, example.decoy or example.question, k + 1, evidence, filter=readers)
                if h.chunk.doc != example.doc][:k]
        if not hits:
            return None
        passages = select_evidence(example.question, hits, evidence)
        return build_messages(example.question, passages), ABSTAIN_TEXT
    hits = retrieve(index, example.question, k, evidence, filter=readers)
    if not any(h.chunk.id == example.chunk_id for h in hits):
        own = index.get_chunk(example.chunk_id)
        if own is None:
            return None
        pos = rng.randrange(0, min(len(hits), (evidence or EvidenceOptions()).max_passages) + 1)
        hits = hits[:pos] + [Hit(own, 1.0, pos + 1)] + hits[pos:]
    passages: list[Passage] = select_evidence(example.question, hits, evidence)
    target = next((p for p in passages if p.chunk.id == example.chunk_id), None)
    if target is None:
        return None
    if example.answer.lower() in target.chunk.text.lower() and example.answer.lower() not in target.text.lower():
        return None  # the passage shown would not contain the answer: nothing to learn from it
    # the answer as a sentence that restates the question: what employees (and the checks) expect
    said = example.support or example.answer
    return build_messages(example.question, passages), f"{said} [{target.n}]."
