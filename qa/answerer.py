"""Question in, grounded answer out, in three parts: a short answer, the quote that backs it,
and its citations.

- the question's misspelt words are read against the index's own vocabulary;
- the best chunks are retrieved through the reader's filter and reordered by their best
  sentence (and by what sets their document apart from its siblings);
- it abstains when what was found is not close enough: below the threshold calibrated on this
  index (:mod:`qa.calibration`), or the default where none was fitted yet;
- the answer-bearing sentence and the span in it are extracted (:mod:`qa.extract`): the quote
  is shown at once (:class:`Evidence`), before any model runs;
- with ``phrasing = "model"`` the small model may phrase the short answer, and its sentence is
  shown only when it passes the checks: it holds the extracted span, its sources back its words
  and numbers, it does not merely restate the question. A draft is never shown before that.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field, replace
from typing import Iterator

from qa.answer import ABSTAIN_TEXT, Answer, Evidence, Passage
from qa.evidence import EvidenceOptions, SentenceVectors, kind_words, overlap, retrieve, select_evidence
from qa.extract import Extract, choose, short_form, without_trailing_asides
from qa.generators import Generator
from qa.grounding import is_abstention, question_coverage, strip_citations, support, without_citations
from qa.names import ACRONYM, absent_names, named_terms, spelt_out
from qa.prompt import build_messages
from qa.question import without_instructions
from qa.quote import quote as quote_of
from qa.text import STOPWORDS, content_terms, normalize_answer
from qa.text import words as words_of
from retrieval import Index, SearchFilter, chunk_index_text
from retrieval.periods import period_terms

PHRASINGS = ("extract", "model")
CALIBRATION_NOTE = "calibration"


@dataclass
class AnswerOptions:
    k: int = 5  # chunks retrieved
    #: abstain when similarity (best cosine) + coverage_weight * coverage (share of the question's
    #: words found in the best chunks) + match_weight * match (the best chunk's sentence-level score,
    #: qa.evidence.rescore) is below the threshold. The threshold is calibrated per index
    #: (qa.calibration); this one is used only until an index has been calibrated.
    min_confidence: float = 1.35
    coverage_weight: float = 0.25
    match_weight: float = 1.0
    use_calibration: bool = True  # the index's own fitted threshold, where it has one
    min_support: float = 0.6  # share of a phrased answer's content words found in its source
    #: who writes the short answer: "extract" (the answer-bearing sentence, or its clause) or "model"
    #: (the generator phrases it; shown only when it holds the extracted span and passes the checks)
    phrasing: str = "extract"
    correct_spelling: bool = True  # read unknown words as the index's closest ones, and acronyms as they spell out
    acronym_pool: int = 30  # chunks searched to find how the documents spell out an acronym
    #: abstain when the question names a thing the reader's documents never name (qa.names)
    check_names: bool = True
    quote_neighbours: int = 2  # sentences quoted around the answer-bearing one
    quote_words: int = 120
    max_tokens: int = 64
    evidence: EvidenceOptions = field(default_factory=EvidenceOptions)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """ValueError naming the option and what to use instead."""
        if self.phrasing not in PHRASINGS:
            raise ValueError(f"phrasing = {self.phrasing!r}; use extract or model")
        if self.k < 1:
            raise ValueError(f"k = {self.k}; it must be at least 1")
        if self.acronym_pool < 1:
            raise ValueError(f"acronym_pool = {self.acronym_pool}; use a count of chunks, e.g. 30")
        if not 0.0 <= self.min_support <= 1.0:
            raise ValueError(f"min_support = {self.min_support}; use a share between 0 and 1, e.g. 0.6")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens = {self.max_tokens}; use a count, e.g. 64")
        try:
            self.evidence.validate()
        except ValueError as exc:
            raise ValueError(f"evidence.{exc}") from None


_SENTENCE_DONE = re.compile(r"([.!?](?:\s*\[\d{1,2}\])*[.]?)\s+\S|(\S)\n\n")


def _first_sentence(text: str) -> str | None:
    """The first sentence (of a few words, with its citations) once the text has moved past it."""
    for m in _SENTENCE_DONE.finditer(text):
        end = m.end(1) if m.group(1) else m.end(2)
        if len(text[:end].split()) >= 4:
            return text[:end]
    return None


def _stray_numbers(answer: str, source: str, question: str, share: float = 0.6) -> set[str]:
    """Numbers of the answer that occur in the source only in sentences (or table rows) about
    something else than the question: "4 weeks" taken from the row of another parent.

    A sentence is about the question when its overlap with the question's words is at least
    ``share`` of the best sentence's."""
    from qa.text import numbers, sentences

    wanted = numbers(strip_citations(answer)) - numbers(question)
    if not wanted:
        return set()
    q_terms = set(content_terms(question))
    sents = sentences(source)
    scores = [overlap(q_terms, x) for x in sents]
    floor = share * max(scores, default=0.0)
    relevant: set[str] = set()
    for sent, score in zip(sents, scores):
        if score >= floor and score > 0:
            relevant |= numbers(sent)
    return wanted - relevant


@dataclass
class Confidence:
    """How close what was found comes to the question; below the threshold the answerer abstains."""

    similarity: float  # best cosine among the hits
    coverage: float  # share of the question's words found in the best hits
    match: float  # the best sentence-level score among the hits (qa.evidence.rescore, Hit.own)
    value: float  # similarity + coverage_weight * coverage + match_weight * match


def confidence(question: str, hits: list, options: AnswerOptions) -> Confidence:
    similarity = max((h.dense or 0.0) for h in hits) if hits else 0.0
    coverage = question_coverage(question, hits)
    # the best chunk's own match (without its document's coverage), whichever rank the coverage gave it
    match = max((h.own if h.own is not None else h.score for h in hits), default=0.0)
    value = similarity + options.coverage_weight * coverage + options.match_weight * match
    return Confidence(similarity, coverage, match, value)


@dataclass
class Assessment:
    """What retrieval found for a question, as the answerer reads it."""

    query: str  # what was searched: the question (or its follow-up rewrite), misspellings read
    hits: list
    confidence: Confidence
    vectors: SentenceVectors  # the sentences' cosines to the query, for the extraction to reuse


class Answerer:
    def __init__(self, index: Index, generator: Generator, options: AnswerOptions | None = None):
        self.index = index
        self.generator = generator
        self.options = options or AnswerOptions()

    # -- the parts ---------------------------------------------------------------------
    def threshold(self) -> tuple[float, str]:
        """The abstention threshold and where it comes from ("calibrated" or "default")."""
        if self.options.use_calibration:
            raw = self.index.note(CALIBRATION_NOTE)
            if raw:
                try:
                    return float(json.loads(raw)["min_confidence"]), "calibrated"
                except (ValueError, KeyError, TypeError):
                    pass  # a note from another version: the default serves until the next calibration
        return self.options.min_confidence, "default"

    def assess(self, question: str, *, filter: SearchFilter | None = None) -> Assessment:
        opt = self.options
        query = self._spelt_out(self.index.correct(question, filter=filter), filter) if opt.correct_spelling else question
        vectors = SentenceVectors(self.index.embedder, query)
        hits = retrieve(self.index, query, opt.k, opt.evidence, filter=filter, vectors=vectors)
        return Assessment(query, hits, confidence(query, hits, opt), vectors)

    def _spelt_out(self, query: str, filter: SearchFilter | None) -> str:
        """``query`` with each acronym the reader's documents never write ("Who is the CFO?") in the words
        they spell it out in ("Who is the Chief Financial Officer?"), as the chunks a search for the
        query finds write them: the acronym is no word to find, and the question keeps its shape ("diluted
        EPS" -> "diluted earnings per share" asks for an amount). Unchanged when no chunk spells it out."""
        unknown = [n for n in named_terms(query) if ACRONYM.fullmatch(n)]
        if unknown:
            held = self.index.known_words([n.lower() for n in unknown], filter=filter)
            unknown = [n for n in unknown if n.lower() not in held]
        if not unknown:
            return query
        found = " ".join(chunk_index_text(h.chunk) for h in
                         self.index.search(query, self.options.acronym_pool, filter=filter, rerank=False))
        for name in unknown:
            words = spelt_out(name, found, around=[w for w in words_of(query) if w not in STOPWORDS])
            if words:
                query = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", words, query)
        return query

    @staticmethod
    def _shorter_than(quoted: str, ex: Extract, question: str) -> str:
        """What to show above a quote the short answer would repeat whole: the sentence alone (not what
        follows it), else the sentence without its closing aside, else the span, else nothing."""
        whole = normalize_answer(quoted)
        for own in (short_form(ex.sentence, ex.span, periods=period_terms(question)), without_trailing_asides(ex.sentence, set(content_terms(question)))):
            if normalize_answer(own) != whole:
                return own
        return ex.span or ""

    def _absent_names(self, question: str, hits: list, filter: SearchFilter | None) -> list[str]:
        if not self.options.check_names:
            return []
        return absent_names(question, [chunk_index_text(h.chunk) for h in hits],
                            lambda words: self.index.known_words(words, filter=filter))

    def _phrase(self, question: str, ex: Extract, quote: str) -> tuple[str | None, str]:
        """The model's short answer, when it passes every check; else None and why not."""
        source = Passage(1, ex.passage.chunk, quote, ex.passage.score, ex.sentence)
        stream = self.generator.stream(build_messages(question, [source]), self.options.max_tokens)
        parts: list[str] = []
        try:
            for piece in stream:
                parts.append(piece)
                first = _first_sentence("".join(parts))
                if first is not None:
                    parts = [first]
                    break
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()
        draft = without_citations("".join(parts))
        if not draft or ABSTAIN_TEXT.lower() in draft.lower() or is_abstention(draft):
            return None, "the model found no answer"
        if ex.span and normalize_answer(ex.span) not in normalize_answer(draft):
            return None, f"the model's sentence lacks the answer {ex.span!r}"
        s = support(draft, ex.passage.chunk.text, question)
        if not (s.ok and s.score >= self.options.min_support):
            return None, f"the model's sentence was not supported by its source (support {s.score:.2f})"
        if not set(content_terms(draft)) - set(content_terms(question)):
            return None, "the model's sentence only restated the question"
        stray = _stray_numbers(draft, ex.passage.chunk.text, question)
        if stray:
            return None, f"the model's sentence took {sorted(stray)} from a part of the source about something else"
        return draft, f"phrased by the model (support {s.score:.2f})"

    # -- the whole ----------------------------------------------------------------------
    def ask(self, question: str, *, filter: SearchFilter | None = None, search_query: str | None = None) -> Answer:
        answer = None
        for event in self.stream(question, filter=filter, search_query=search_query):
            if isinstance(event, Answer):
                answer = event
        assert answer is not None
        return answer

    def stream(self, question: str, *, filter: SearchFilter | None = None,
               search_query: str | None = None) -> Iterator[Evidence | Answer]:
        """Yield the :class:`Evidence` (quote and citation) as soon as retrieval is done, then the
        final :class:`Answer`, whose short answer has passed its checks. An abstention yields only
        the Answer. Nothing unchecked is ever yielded."""
        question = (question or "").strip()
        if not question:
            raise ValueError("the question is empty; ask something, e.g. 'How many days of annual leave do I get?'")
        if len(question) > 2000:
            raise ValueError("the question is too long (over 2000 characters); ask it in fewer words")
        opt = self.options
        t0 = time.perf_counter()
        asked = search_query or without_instructions(question)  # "Answer in USD millions." is no word to find
        found = self.assess(asked, filter=filter)
        query, hits, c = found.query, found.hits, found.confidence
        passages = select_evidence(query, hits, opt.evidence)
        timings = {"retrieve_s": time.perf_counter() - t0}

        def done(short: str, quoted: str, abstained: bool, cited: list[Passage], reason: str) -> Answer:
            timings["total_s"] = time.perf_counter() - t0
            return Answer(question, short, quoted, abstained, cited, passages, timings, reason,
                          query if query != question else search_query, hits)

        missing = self._absent_names(asked, hits, filter) if hits else []
        if missing:
            named = ", ".join(f"“{n}”" for n in missing)
            yield done(f"{ABSTAIN_TEXT} None of them mentions {named}.", "", True, [],
                       f"the documents never mention {named}")
            return
        threshold, origin = self.threshold()
        if not hits or c.value < threshold:
            yield done(ABSTAIN_TEXT, "", True, [], f"nothing close enough (confidence {c.value:.2f} < {origin} "
                       f"threshold {threshold:.2f}: similarity {c.similarity:.2f}, coverage {c.coverage:.2f}, "
                       f"sentence match {c.match:.2f})")
            return
        ex = choose(query, passages, found.vectors.embedder, found.vectors,
                    identity_weight=opt.evidence.identity_weight, kinds=kind_words(query, [h.chunk for h in hits]))
        if ex is None:
            yield done(ABSTAIN_TEXT, "", True, [], "no sentence of the passages found reads as an answer")
            return
        quoted = quote_of(ex.passage.chunk.text, ex.sentence, opt.quote_neighbours, opt.quote_words)
        cited = [replace(ex.passage, best_sentence=ex.sentence)]  # the source card marks the quoted sentence
        timings["extract_s"] = time.perf_counter() - t0 - timings["retrieve_s"]
        yield Evidence(quoted, cited)
        short, reason = ex.short, "extracted" + (f" (answer {ex.span!r})" if ex.span else "")
        if opt.phrasing == "model":
            t_gen = time.perf_counter()
            phrased, why = self._phrase(question, ex, quoted)
            timings["generate_s"] = time.perf_counter() - t_gen
            short, reason = (phrased, why) if phrased else (short, f"{reason}; {why}")
        if normalize_answer(short) == normalize_answer(quoted):  # the short answer is all the quote says
            short = self._shorter_than(quoted, ex, query)
        yield done(short, quoted, False, cited, reason)
