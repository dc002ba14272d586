"""Abstention calibrated on the company's own index, not on anybody's evaluation set.

The answerer abstains when its confidence in what retrieval found (``qa.answerer.confidence``)
is below a threshold. Scores differ between corpora (long scientific articles, short HR pages,
tables), so one fixed number refuses answerable questions on one corpus and answers
unanswerable ones on another. Here the threshold is fitted per index, from questions made
from the index itself:

- **answerable**: for chunks sampled across the index, a question written from one of their
  sentences, half by rules ("Employees receive how many days of leave?") and half as a few of
  its words ("paid leave days employee?"), the way people type;
- **unanswerable**: questions about other domains (a fixed list below), and questions made from
  the index's own sentences with their rarest words replaced by invented names (the topic is
  there, the thing asked about is not).

Each question is scored exactly as the answerer scores it. The questions are split in two
halves: on the first, the threshold is the highest value that refuses at most
``max_false_abstain`` of the answerable ones (with 90 % confidence, not only on that sample); where the unanswerable ones allow a lower one
(at most ``max_false_answer`` of them above it), the threshold sits halfway between the two,
with margin both ways. The second half reports the rates a user can expect. The result is
stored in the index with the numbers it was fitted on, and every face's answerer reads it.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from typing import Callable

from qa.answerer import CALIBRATION_NOTE, Answerer
from qa.text import STOPWORDS, content_terms, sentences, words
from qa.training_data import question_rules

#: questions no company's documents should answer: general knowledge across many domains
OFF_TOPIC = [
    "Who won the football World Cup in 1998?", "What is the boiling point of mercury in Kelvin?",
    "How many moons does Jupiter have?", "Who painted the ceiling of the Sistine Chapel?",
    "What is the capital city of Mongolia?", "How long should I boil an egg for a soft yolk?",
    "Which band released the album Abbey Road?", "What is the tallest mountain in Africa?",
    "How do I make sourdough starter at home?", "Who wrote the novel War and Peace?",
    "What is the speed of sound in water?", "When did the Roman Empire fall?",
    "How many players are on a rugby union team?", "What is the chemical symbol of tungsten?",
    "Which planet has the longest day?", "What is the population of Iceland?",
    "Who discovered penicillin?", "How do you say thank you in Japanese?",
    "What is the offside rule in ice hockey?", "How many strings does a cello have?",
    "Which river flows through Baghdad?", "What temperature should a turkey be roasted at?",
    "Who was the first woman to win a Nobel Prize?", "What does a sommelier do?",
    "How far is the Moon from the Earth?", "Which animal has the largest heart?",
    "What is the plot of the opera Carmen?", "How do I change a bicycle tyre?",
    "When was the printing press invented?", "What is the national dish of Peru?",
    "How many bones are in the adult human hand?", "Who directed the film Seven Samurai?",
    "What causes the northern lights?", "Which country has the most volcanoes?",
    "How is maple syrup made?", "What is the rule for castling in chess?",
    "Who composed the Four Seasons?", "What is the deepest lake in the world?",
    "How many hearts does an octopus have?", "What is the origin of the Olympic torch relay?",
    "Which metal is liquid at room temperature besides mercury?", "How do bees make honey?",
    "What language is spoken in Suriname?", "Who invented the telescope?",
    "What is the lifespan of a giant tortoise?", "How many keys does a standard piano have?",
    "What is the hardest natural mineral?", "Which desert is the largest cold desert?",
    "How do I knit a scarf for beginners?", "What is the record for the men's marathon?",
]
_SYLLABLES = "bra cor dul fen gar hol jix kav lom mur nex pol quo ras sil tov urb vam wex yor zan".split()


@dataclass
class Calibration:
    """A fitted threshold and what it was fitted on."""

    min_confidence: float
    rule: str  # "between" (both targets met, halfway) | "answerable" (the false-abstain target decides)
    max_false_abstain: float
    max_false_answer: float
    fit_answerable: int
    fit_unanswerable: int
    heldout_answerable: int
    heldout_unanswerable: int
    heldout_false_abstain: float  # share of held-out answerable questions refused
    heldout_true_abstain: float  # share of held-out unanswerable questions refused
    generation: int
    chunks: int
    embedder: str
    fitted_at: str
    seconds: float

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Calibration | None":
        try:
            data = json.loads(text)
            return cls(**{k: data[k] for k in cls.__dataclass_fields__})
        except (ValueError, KeyError, TypeError):
            return None


def stored(index) -> Calibration | None:
    raw = index.note(CALIBRATION_NOTE)
    return Calibration.from_json(raw) if raw else None


def _invented(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(3)).capitalize()


def _keywords(sentence: str, rng: random.Random) -> str | None:
    """A few of the sentence's words, in its order, as people type a question."""
    kept = [w for w in dict.fromkeys(words(sentence)) if w not in STOPWORDS and len(w) > 2 and not w.isdigit()]
    if len(kept) < 3:
        return None
    n = min(len(kept), rng.choice((3, 4, 5)))
    picked = sorted(rng.sample(range(len(kept)), n))
    return " ".join(kept[i] for i in picked) + "?"


def _swap_rarest(question: str, frequency: dict[str, int], rng: random.Random) -> str | None:
    """The question with its two rarest words (by how many sampled sentences hold them) invented."""
    toks = question.rstrip("?").split()
    scored = [(frequency.get(content_terms(t)[0], 0), i) for i, t in enumerate(toks) if content_terms(t)]
    if len(scored) < 3:
        return None
    for _, i in sorted(scored)[:2]:
        toks[i] = _invented(rng)
    return " ".join(toks) + "?"


def sample_chunks(index, n: int, rng: random.Random) -> list:
    """Up to ``n`` live chunks, drawn uniformly over the whole index."""
    docs = [(d.doc, d.chunks) for d in index.documents() if d.chunks]
    total = sum(c for _, c in docs)
    if not total:
        return []
    wanted = sorted(rng.sample(range(total), min(n, total)))
    out, start, w = [], 0, 0
    for doc, count in docs:
        mine = []
        while w < len(wanted) and wanted[w] < start + count:
            mine.append(wanted[w] - start)
            w += 1
        if mine:
            chunks = index.document_chunks(doc)
            out += [chunks[i] for i in mine if i < len(chunks)]
        start += count
    return out


def synthetic_questions(index, n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """(answerable, unanswerable) questions drawn from the index's own chunks."""
    rng = random.Random(seed)
    answerable, rules = [], []
    chunks = sample_chunks(index, n, rng)
    per_chunk = max(1, math.ceil(n / max(1, len(chunks))))  # a small index gives several questions a chunk
    i = 0
    for chunk in chunks:
        sents = [s for s in sentences(chunk.text) if len(s.split()) >= 6 and not s.startswith("|")]
        if not sents:
            sents = [s for s in sentences(chunk.text) if len(content_terms(s)) >= 3]
        for sent in rng.sample(sents, min(per_chunk, len(sents))):
            ruled = [q for q, _a, _r in question_rules(sent)]
            typed = _keywords(sent, rng)
            q = ruled[0] if ruled and (i % 2 == 0 or typed is None) else typed
            i += 1
            if q:
                answerable.append(q)
                if ruled:
                    rules.append(ruled[0])
    answerable = answerable[:n]
    rng.shuffle(answerable)  # both forms in both halves of the split
    frequency: dict[str, int] = {}
    for q in answerable:
        for t in set(content_terms(q)):
            frequency[t] = frequency.get(t, 0) + 1
    swapped = [s for s in (_swap_rarest(q, frequency, rng) for q in rules) if s]
    unanswerable = list(OFF_TOPIC) + swapped[: len(OFF_TOPIC)]
    rng.shuffle(unanswerable)
    return answerable, unanswerable


def _upper_bound(k: int, n: int, z: float = 1.2816) -> float:
    """Wilson's upper bound (one-sided 90 %) on a rate seen k times in n."""
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre + spread) / (1 + z * z / n)


def _refusing(values: list[float], share: float) -> float:
    """The highest threshold under which so few of ``values`` fall that the rate they stand for is at
    most ``share`` with 90 % confidence (a sample's quantile alone overshoots on new questions half
    the time)."""
    v = sorted(values)
    k = int(math.floor(share * len(v)))
    while k > 0 and _upper_bound(k, len(v)) > share:
        k -= 1
    return v[min(len(v) - 1, k)]


def _answering(values: list[float], share: float) -> float:
    """The lowest threshold at or above which at most ``share`` of ``values`` lie."""
    v = sorted(values)
    allowed = int(math.floor(share * len(v)))
    return math.nextafter(v[len(v) - allowed - 1], math.inf) if len(v) > allowed else v[0]


def fit_threshold(answerable: list[float], unanswerable: list[float], max_false_abstain: float,
                  max_false_answer: float) -> tuple[float, str]:
    t_ans = _refusing(answerable, max_false_abstain)
    if not unanswerable:
        return t_ans, "answerable"
    t_neg = _answering(unanswerable, max_false_answer)
    if t_neg <= t_ans:
        return (t_neg + t_ans) / 2, "between"
    return t_ans, "answerable"


def calibrate(answerer: Answerer, *, questions: int = 200, max_false_abstain: float = 0.05,
              max_false_answer: float = 0.10, seed: int = 0,
              on_progress: Callable[[int, int], None] | None = None) -> Calibration | None:
    """Fit the index's threshold (see the module's docstring), store it in the index, return it.
    None when the index is too small to draw questions from (the default threshold stays)."""
    t0 = time.perf_counter()
    index = answerer.index
    generation = index.generation
    answerable, unanswerable = synthetic_questions(index, questions, seed)
    if len(answerable) < 10:
        return None
    values: dict[str, list[float]] = {"a": [], "u": []}
    todo = [("a", q) for q in answerable] + [("u", q) for q in unanswerable]
    for i, (kind, q) in enumerate(todo):
        try:
            values[kind].append(answerer.assess(q).confidence.value)
        except ValueError:  # a question with nothing to search for
            pass
        if on_progress:
            on_progress(i + 1, len(todo))
    fit_a, held_a = values["a"][0::2], values["a"][1::2]
    fit_u, held_u = values["u"][0::2], values["u"][1::2]
    threshold, rule = fit_threshold(fit_a, fit_u, max_false_abstain, max_false_answer)
    cal = Calibration(
        min_confidence=round(threshold, 6), rule=rule, max_false_abstain=max_false_abstain,
        max_false_answer=max_false_answer, fit_answerable=len(fit_a), fit_unanswerable=len(fit_u),
        heldout_answerable=len(held_a), heldout_unanswerable=len(held_u),
        heldout_false_abstain=round(sum(v < threshold for v in held_a) / max(1, len(held_a)), 4),
        heldout_true_abstain=round(sum(v < threshold for v in held_u) / max(1, len(held_u)), 4),
        generation=generation, chunks=len(index), embedder=index.built_with or index.embedder.name,
        fitted_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), seconds=round(time.perf_counter() - t0, 2),
    )
    index.set_note(CALIBRATION_NOTE, cal.to_json())
    return cal
