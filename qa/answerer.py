"""Question in, grounded answer out.

1. retrieve the best chunks (hybrid search, through the reader's filter), reordered by their
   best sentence;
2. abstain when nothing found is close enough: low similarity, or the question's words
   mostly absent from what was found;
3. select the best sentences of the top chunks as numbered passages;
4. let the generator answer from them, citing [n];
5. check the answer against the passages it cites; an answer they do not support is not
   shown: the best supporting sentence is quoted instead (or, if configured, it abstains).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Iterator

from qa.answer import ABSTAIN_TEXT, Answer, Passage
from qa.evidence import EvidenceOptions, overlap, retrieve, select_evidence
from qa.generators import Generator
from qa.grounding import cited_numbers, is_abstention, question_coverage, strip_citations, support
from qa.text import content_terms
from qa.prompt import build_messages
from retrieval import Index, SearchFilter


@dataclass
class AnswerOptions:
    k: int = 5  # chunks retrieved
    #: abstain when similarity (best cosine) + coverage_weight * coverage (share of the question's
    #: words found in the best chunks) + match_weight * match (the best chunk's sentence-level score,
    #: qa.evidence.rescore) is below this. Chosen on all unanswerable questions of contoso-hr and
    #: covid-qa and 466 answerable ones (bench/README.md): unanswerable score at most 1.31, 95 % of the
    #: answerable at least 1.22 (covid-qa) and 1.56 (contoso-hr).
    min_confidence: float = 1.35
    coverage_weight: float = 0.25
    match_weight: float = 1.0
    min_support: float = 0.6  # share of the answer's content words found in its cited passages
    #: the answer (with its source sentence) must cover the question's words at least this share of what
    #: the best-matching passage sentence covers: a supported answer to another question is not an answer
    min_relevance: float = 0.75
    on_unsupported: str = "quote"  # "quote" the best evidence sentence, or "abstain"
    #: "generated": the model's answer; "quote": the best evidence sentence; "both": the model's
    #: answer followed by the sentence of the source that supports it
    style: str = "both"
    quote_neighbours: int = 2  # sentences quoted around the supporting one ("both")
    #: what a rejected draft is replaced by: "sentence" (the best evidence sentence) or "context" (with
    #: its neighbours, as a generated answer's quote is shown in style "both")
    fallback: str = "context"
    #: style "both": a draft copied word for word from its source is shown once, inside the quote of its
    #: sentence's context, instead of twice
    extract_in_context: bool = True
    quote_words: int = 120
    max_tokens: int = 64
    stop_after_sentence: bool = True  # small models answer in the first sentence, then ramble
    #: which passage the fallback quote (and a citation between equally supporting passages) comes from:
    #: "top" (the best-ranked) | "best-match" (the one whose best sentence covers most of the question)
    #: (measured in bench/README.md: covid-qa citation precision 0.824 -> 0.853, contoso-hr 0.975 -> 1.000)
    quote_from: str = "best-match"
    evidence: EvidenceOptions = field(default_factory=EvidenceOptions)


_SENTENCE_DONE = re.compile(r"([.!?](?:\s*\[\d{1,2}\])*[.]?)\s+\S|(\S)\n\n")


def _first_sentence(text: str) -> str | None:
    """The first sentence (of a few words, with its citations) once the text has moved past it."""
    for m in _SENTENCE_DONE.finditer(text):
        end = m.end(1) if m.group(1) else m.end(2)
        if len(text[:end].split()) >= 4:
            return text[:end]
    return None


def _context(p: Passage, neighbours: int, max_words: int, around: str | None = None) -> str:
    """The supporting sentence of a passage (or ``around``, one of its chunk's sentences) with
    ``neighbours`` sentences of its chunk on each side."""
    from qa.text import sentences

    sents = sentences(p.chunk.text)
    centre = around or p.best_sentence
    try:
        i = sents.index(centre)
    except ValueError:
        return p.text
    picked = sents[max(0, i - neighbours) : i + neighbours + 1]
    while len(" ".join(picked).split()) > max_words and len(picked) > 1:
        # drop from the side farther from the supporting sentence
        if picked[0] != centre and (picked[-1] == centre or len(picked[0]) >= len(picked[-1])):
            picked = picked[1:]
        else:
            picked = picked[:-1]
    return " ".join(picked)


def _extracted(draft: str, p: Passage) -> str | None:
    """The sentence of the passage's chunk that the draft copies word for word, nearly whole (a short
    span such as "Employees get 25 days" is a direct answer worth showing before the quote)."""
    from qa.text import sentences

    body = re.sub(r"^[\W_]+|[\W_]+$", "", strip_citations(draft)).lower()
    words = len(body.split())
    if words < 4:
        return None
    return next((x for x in sentences(p.chunk.text) if body in x.lower() and words >= 0.66 * len(x.split())), None)


def _overlap(question: str, text: str) -> float:
    return overlap(set(content_terms(question)), text)


def _stray_numbers(answer: str, source: str, question: str, share: float = 0.6) -> set[str]:
    """Numbers of the answer that occur in the source only in sentences (or table rows) about
    something else than the question: "4 weeks" taken from the row of another parent.

    A sentence is about the question when its overlap with the question's words is at least
    ``share`` of the best sentence's."""
    from qa.text import numbers, sentences

    wanted = numbers(strip_citations(answer)) - numbers(question)
    if not wanted:
        return set()
    sents = sentences(source)
    scores = [_overlap(question, x) for x in sents]
    floor = share * max(scores, default=0.0)
    relevant: set[str] = set()
    for sent, score in zip(sents, scores):
        if score >= floor and score > 0:
            relevant |= numbers(sent)
    return wanted - relevant


@dataclass
class Confidence:
    """How close what was found comes to the question; below ``min_confidence`` the answerer abstains."""

    similarity: float  # best cosine among the hits
    coverage: float  # share of the question's words found in the best hits
    match: float  # the best hit's sentence-level score (qa.evidence.rescore)
    value: float  # similarity + coverage_weight * coverage + match_weight * match


def confidence(question: str, hits: list, options: AnswerOptions) -> Confidence:
    similarity = max((h.dense or 0.0) for h in hits) if hits else 0.0
    coverage = question_coverage(question, hits)
    match = hits[0].score if hits else 0.0
    value = similarity + options.coverage_weight * coverage + options.match_weight * match
    return Confidence(similarity, coverage, match, value)


class Answerer:
    def __init__(self, index: Index, generator: Generator, options: AnswerOptions | None = None):
        self.index = index
        self.generator = generator
        self.options = options or AnswerOptions()
        if self.options.on_unsupported not in ("quote", "abstain"):
            raise ValueError("on_unsupported must be 'quote' or 'abstain'")
        if self.options.style not in ("generated", "quote", "both"):
            raise ValueError("style must be 'generated', 'quote' or 'both'")
        if self.options.fallback not in ("sentence", "context"):
            raise ValueError("fallback must be 'sentence' or 'context'")

    def _refused(self, draft: str, passages: list[Passage], question: str) -> bool:
        """The model said it found no answer. Company documents say "does not provide coverage" and
        "cannot find an in-network provider" too: a draft the passages back word for word is an answer."""
        if ABSTAIN_TEXT.lower() in draft.lower():
            return True
        if not is_abstention(draft):
            return False
        s = support(draft, " ".join(p.chunk.text for p in passages), question)
        return not (s.ok and s.score >= self.options.min_support)

    def ask(self, question: str, *, filter: SearchFilter | None = None) -> Answer:
        answer = None
        for event in self.stream(question, filter=filter):
            if isinstance(event, Answer):
                answer = event
        assert answer is not None
        return answer

    def stream(self, question: str, *, filter: SearchFilter | None = None, search_query: str | None = None) -> Iterator[str | Answer]:
        """Yield text pieces as the model writes them, then the final :class:`Answer`.

        The final answer's text is what to show: it can differ from the streamed draft when the
        check after generation replaced it.
        """
        question = (question or "").strip()
        if not question:
            raise ValueError("the question is empty; ask something, e.g. 'How many days of annual leave do I get?'")
        if len(question) > 2000:
            raise ValueError("the question is too long (over 2000 characters); ask it in fewer words")
        opt = self.options
        t0 = time.perf_counter()
        query = search_query or question
        hits = retrieve(self.index, query, opt.k, opt.evidence, filter=filter)
        t_retrieved = time.perf_counter()
        passages = select_evidence(query, hits, opt.evidence)
        timings = {"retrieve_s": t_retrieved - t0, "generate_s": 0.0}

        def done(text: str, abstained: bool, cited: list[Passage], reason: str) -> Answer:
            timings["total_s"] = time.perf_counter() - t0
            return Answer(question, text, abstained, cited, passages, timings, reason, search_query, hits)

        c = confidence(query, hits, opt)
        if not hits or c.value < opt.min_confidence:
            yield done(ABSTAIN_TEXT, True, [], f"nothing close enough (similarity {c.similarity:.2f}, coverage "
                                               f"{c.coverage:.2f}, sentence match {c.match:.2f})")
            return

        best = passages[0]
        if opt.quote_from == "best-match":  # ties go to the better-ranked passage
            best = max(passages, key=lambda p: (_overlap(query, p.best_sentence), -p.n))
        quote = f"{strip_citations(best.best_sentence)} [{best.n}]"
        if opt.style == "quote":
            yield done(quote, False, [best], "quoted")
            return
        messages = build_messages(question, passages)
        parts: list[str] = []
        t_gen = time.perf_counter()
        stream = self.generator.stream(messages, opt.max_tokens)
        try:
            for piece in stream:
                parts.append(piece)
                yield piece
                if opt.stop_after_sentence:
                    first = _first_sentence("".join(parts))
                    if first is not None:
                        parts = [first]
                        break
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()
        timings["generate_s"] = time.perf_counter() - t_gen
        draft = " ".join("".join(parts).split())
        by_n = {p.n: p for p in passages}
        cited = [by_n[n] for n in dict.fromkeys(cited_numbers(draft)) if n in by_n]

        if draft and not self._refused(draft, passages, question):
            if not cited:  # the model forgot to cite: attach the passage that backs it best
                backing = max(passages, key=lambda p: support(draft, p.chunk.text, question).score)
                cited = [backing]
                draft = f"{draft} [{backing.n}]"
            evidence = " ".join(p.chunk.text for p in cited)
            s = support(draft, evidence, question)
            if s.ok and s.score >= opt.min_support:
                # cite the best-ranked passage that backs the answer (small models often cite the wrong number)
                for p in passages:
                    if p in cited:
                        break
                    alt = support(draft, p.chunk.text, question)
                    if alt.ok and alt.score >= opt.min_support:
                        draft = re.sub(r"\[\d{1,2}\]", f"[{p.n}]", draft)
                        cited = [p]
                        break
            supported = s.ok and s.score >= opt.min_support
            best_match = max(_overlap(query, p.best_sentence) for p in passages)
            relevant = _overlap(query, cited[0].best_sentence) >= opt.min_relevance * best_match
            stray = _stray_numbers(draft, cited[0].chunk.text, query)
            if supported and relevant and not stray:
                text = draft
                if opt.style == "both":
                    src = cited[0]
                    extract = _extracted(draft, src) if opt.extract_in_context else None
                    quoted = strip_citations(_context(src, opt.quote_neighbours, opt.quote_words, extract))
                    if extract and quoted:
                        text = f"“{quoted}” [{src.n}]"
                    elif quoted and quoted.lower() not in draft.lower():
                        text = f"{draft}\n\n“{quoted}” [{src.n}]"
                yield done(text, False, cited, f"generated (support {s.score:.2f})")
                return
            if not supported:
                why = f"the generated answer was not supported by its sources (support {s.score:.2f}" + (
                    f", numbers {sorted(s.missing_numbers)} not in them)" if s.missing_numbers else ")")
            elif not relevant:
                why = "the generated answer drew on a passage that does not match the question"
            else:
                why = f"the generated answer took {sorted(stray)} from a part of the source about something else"
        else:
            why = "the model found no answer in the passages"
        if opt.on_unsupported == "abstain":
            yield done(ABSTAIN_TEXT, True, [], why)
            return
        if opt.fallback == "context":
            quote = f"“{strip_citations(_context(best, opt.quote_neighbours, opt.quote_words))}” [{best.n}]"
        yield done(quote, False, [best], f"quoted: {why}")
