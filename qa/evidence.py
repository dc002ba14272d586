"""Evidence selection fitted to a small model's context.

First the candidates are reordered by their best sentence (:func:`rescore`): a chunk that
holds one sentence answering the question beats a chunk that mentions its words all over,
which is what whole-chunk scores reward. Then, from each of the best chunks, keep the
sentence that matches the question best together with its neighbours, so the model reads a
few focused lines instead of whole chunks:

    question: "How many vacation days after five years?"
    chunk:    "...Every employee receives 25 days... Employees who have completed five years
               of service receive 28 days. New employees accrue leave..."
    passage:  "Every employee receives 25 days... Employees who have completed five years of
               service receive 28 days. New employees accrue leave..."  (best sentence + neighbours)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from qa.answer import Passage
from qa.names import named_terms
from retrieval.periods import CALENDAR_WORDS, period_terms, without_periods
from qa.text import content_terms, sentences
from retrieval import Hit
from retrieval.embedder import Embedder
from retrieval.indexed_text import doc_title


@dataclass
class EvidenceOptions:
    max_passages: int = 3
    neighbours: int = 1  # sentences kept on each side of the best one
    max_words: int = 90  # per passage
    #: candidates retrieved and reordered by their best sentence before the best k are kept (k or less:
    #: only the k are reordered).
    #: Measured (bench/README.md, 400 covid-qa and 66 contoso-hr questions): the answering document
    #: ranked first 0.740 -> 0.810 and 0.939 -> 0.955, in the top 3 0.843 -> 0.875 and 0.985 -> 1.000
    rescore_candidates: int = 20
    rescore_sentences: int = 20  # sentences embedded per question: those sharing most words with it
    #: tell sibling documents apart by the words of their names the question names (rescore's name_match)
    name_match: bool = True
    #: candidates whose documents are weighed by how much of the question their retrieved chunks
    #: cover together (:func:`document_coverage`), and the weight of that share in the reordering
    #: (0: off). Measured at 0.5 over 50 candidates, abstention reading the chunks' own match
    #: (bench/README.md): covid-qa citation precision 0.795 -> 0.805, short answer 0.413 -> 0.423,
    #: contoso-hr's first citation page 0.409 -> 0.439, data-samples unchanged, no abstention changed
    document_candidates: int = 50
    document_weight: float = 0.5
    #: a sentence also holds the question's names and periods that its document is about (its name and
    #: what its front matter states: :func:`identity_terms`, :func:`naming_terms`), in the reordering and in
    #: the choice of the answer, each worth this share of a word the sentence says itself (0: off)
    identity_weight: float = 0.5

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """ValueError naming the option and what to use instead."""
        for name in ("max_passages", "max_words", "rescore_sentences"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}; use a count of 1 or more")
        for name in ("neighbours", "rescore_candidates", "document_candidates"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} = {getattr(self, name)}; use a count, e.g. 20")
        if not 0.0 <= self.identity_weight <= 1.0:
            raise ValueError(f"identity_weight = {self.identity_weight}; use a share between 0 and 1, e.g. 0.5")
        if not 0.0 <= self.document_weight <= 3.0:
            raise ValueError(f"document_weight = {self.document_weight}; use a weight between 0 and 3, e.g. 0.5")


def overlap(q_terms: set[str], text: str) -> float:
    """Share of the question's terms (``content_terms``) found in ``text``."""
    return len(q_terms & set(content_terms(text))) / len(q_terms) if q_terms else 0.0


class SentenceVectors:
    """Cosines between one question and sentences, each sentence embedded once: rescoring and the
    extraction of one answer read many of the same sentences. Made per answer, never shared."""

    def __init__(self, embedder: Embedder, question: str, query_vector: np.ndarray | None = None):
        self.embedder = embedder
        self.question = question
        self._query = None if query_vector is None else np.asarray(query_vector).reshape(-1)
        self._cosine: dict[str, float] = {}

    @property
    def query(self) -> np.ndarray:
        if self._query is None:
            self._query = np.asarray(self.embedder.embed_query(self.question)).reshape(-1)
        return self._query

    def cosines(self, texts: list[str]) -> np.ndarray:
        new = [t for t in dict.fromkeys(texts) if t not in self._cosine]
        if new:
            for t, sim in zip(new, np.asarray(self.embedder.embed(new)) @ self.query):
                self._cosine[t] = float(sim)
        return np.asarray([self._cosine[t] for t in texts], dtype=np.float64)


def _document_name(doc: str) -> str:
    """A document's folder and title, as words."""
    parts = doc.replace("\\", "/").split("/")
    return " ".join(parts[:-1] + [doc_title(doc)])


def _name_terms(hit: Hit) -> set[str]:
    """The words of a hit's folder, title and section, with the periods they name in one spelling
    (``2023Q3`` and ``Q3-2023`` both give "q3" and "2023": :func:`retrieval.periods.period_terms`)."""
    name = f"{_document_name(hit.chunk.doc)} {hit.chunk.section or ''}"
    return set(content_terms(name)) | period_terms(name)


def identity_terms(chunk) -> set[str]:
    """What every chunk of a document speaks of without saying it: the document's name (folder,
    title, the periods the name gives) and what its opening states (kept at ingest,
    :mod:`ingest.opening`: the period, and the names of its cover or first lines). The revenue
    sentence on page 3 of Northstar's Q2 filing is about Northstar and Q2 2023, though it says
    neither. The same for every chunk of the document: it tells documents apart, not their pages."""
    name = _document_name(chunk.doc)
    meta = chunk.meta or {}
    opening = " ".join(meta.get("names") or ())
    return set(content_terms(f"{name} {opening}")) | period_terms(name) | set(meta.get("periods") or ())


def _siblings(a: set[str], b: set[str]) -> bool:
    """Two documents are siblings when their names share at least half their words."""
    return bool(a and b) and len(a & b) >= 0.5 * len(a | b)


def name_match(question: str, hits: list[Hit], kinds: set[str] | None = None) -> list[float]:
    """Per hit, the share of the question's distinguishing words that its document's name and
    section hold, among its siblings: documents whose names share most of their words (the Q2 and
    the Q3 filing of one company, the 2023 and 2024 versions of a policy, two plans of one insurer).
    A word distinguishes when the question names it and some siblings' names hold it, others not;
    a plain word (not a year, quarter or version) only when the others' retrieved text never uses it
    either (:func:`_tells_apart`). Documents whose openings state a period (a filing's cover: "For
    the quarterly period ended September 30, 2023", kept at ingest) are told apart by the periods
    the question names whatever their file names. "Q3 2023" prefers the Q3 filing over its Q2 sibling, "Northwind
    Standard" the Standard plan over "Northwind Health Plus". Among all the candidates, siblings or
    not, a word naming a kind of document tells them apart too (:func:`kind_words`: "on its earnings
    call" prefers the calls to the filings). A question naming none of what sets the candidates apart
    gives every hit 0: names reorder nothing else. (Any plain word of a name, without the text test,
    sent contoso-hr's "Northwind Health" questions to the Plus plan: citation precision 0.923 -> 0.864;
    bench/README.md.) ``kinds``: :func:`kind_words` of these hits, where the caller has them already."""
    q_periods = period_terms(question)  # "third quarter of 2023": q3, 2023
    q_terms = set(content_terms(question)) | q_periods
    if not q_terms:
        return [0.0] * len(hits)
    names = [_name_terms(h) for h in hits]
    stated = _stated_periods(hits, names)
    said = _words_by_document(hits)
    out = [0.0] * len(hits)
    kinds = kind_words(question, [h.chunk for h in hits]) if kinds is None else kinds
    for i, mine in enumerate(names):
        doc = hits[i].chunk.doc
        group = {hits[j].chunk.doc: n for j, n in enumerate(names) if hits[j].chunk.doc != doc and _siblings(mine, n)}
        telling = set(kinds)
        if group:
            group[doc] = mine
            telling |= {t for t in q_terms if _tells_apart(t, group, said)}
        if doc in stated and len(stated) > 1:  # documents dated by their openings, whatever their names
            telling |= {t for t in q_periods if _tells_apart(t, stated, said)}
        if telling:  # held by the name, the periods its opening states, or the names its opening gives
            out[i] = len(telling & (mine | stated.get(doc, set()) | identity_terms(hits[i].chunk))) / len(telling)
    return out


def kind_words(question: str, chunks) -> set[str]:
    """The question's plain words that name a kind of the candidate documents (``chunks``): words that
    some of their names hold and the others neither hold nor use in their text. "on its earnings call"
    names the transcripts (``NSTR_Q2_2023_Earnings_Call.pdf``) when the filings beside them never speak
    of a call; "Northwind Health" names no plan when every plan's text says it. Numbers and periods are
    left to :func:`name_match`'s siblings and stated periods."""
    names: dict[str, set[str]] = {}
    said: dict[str, set[str]] = {}
    for c in chunks:
        names.setdefault(c.doc, set(content_terms(_document_name(c.doc))))
        said.setdefault(c.doc, set()).update(content_terms(c.text))
    if len(names) < 2:
        return set()
    plain = {t for t in content_terms(without_periods(question)) if not any(ch.isdigit() for ch in t)}
    return {t for t in plain if _tells_apart(t, names, said)}


#: a phrase that names where the answer is to come from: "according to the Q2 2024 earnings call",
#: "on its earnings call", "in the annual report", "as stated in the handbook"
_SOURCE = re.compile(r"\b(?:according\s+to|as\s+(?:stated|reported|said|described|given|set\s+out)\s+(?:in|on|by)"
                     r"|(?:in|on|from|during|per)\s+(?:the|its|their|his|her|our|this|that))"
                     r"(?P<source>(?:\s+[\w'’.-]+){1,7})", re.IGNORECASE)


def named_sources(question: str, kinds: set[str]) -> set[str]:
    """The kinds of document (:func:`kind_words`) the question names as its source: "Who is Harbor Foods'
    CFO, according to the Q2 2024 earnings call?" asks the call, not the quarter's filing, whose exhibits
    list the "Certification of the Chief Financial Officer". Its chunks come first (:func:`source_rank`)."""
    if not kinds:
        return set()
    named: set[str] = set()
    for m in _SOURCE.finditer(question):
        named |= set(content_terms(m.group("source"))) & kinds
    return named


def _from_source(doc: str, sources: set[str]) -> bool:
    """Whether the document's name holds a kind of document the question names as its source."""
    return bool(sources & set(content_terms(_document_name(doc))))


def source_rank(question: str, kinds: set[str], chunks) -> list[tuple]:
    """Per chunk, where a question that names its source (:func:`named_sources`: "according to the Q2
    2024 earnings call") ranks it before its score does: first the chunks whose documents are about most
    of what the question names (:func:`identity_terms` holding its names and periods: Harbor Foods, Q2
    2024), among them the documents of the kind named (the call) before the others (the quarter's
    filing). The call of another company or quarter never goes before the filing of the one asked
    about. ``()`` for every chunk when the question names no source."""
    sources = named_sources(question, kinds)
    if not sources:
        return [()] * len(chunks)
    names = (naming_terms(question, [c.text for c in chunks]) & terms_with_periods(question)) - sources
    return [(-len(names & identity_terms(c)), not _from_source(c.doc, sources)) for c in chunks]


def _stated_periods(hits: list[Hit], names: list[set[str]]) -> dict[str, set[str]]:
    """Per document among the hits, the periods its opening states (kept at ingest in
    ``Chunk.meta["periods"]``: "For the quarterly period ended September 30, 2023"), with its name's
    words (``names``, which hold the periods the name gives); documents that state none are left out."""
    out: dict[str, set[str]] = {}
    for h, name in zip(hits, names):
        periods = h.chunk.meta.get("periods") if h.chunk.meta else None
        if periods:
            out.setdefault(h.chunk.doc, set()).update(periods, name)
    return out


def _tells_apart(term: str, names: dict[str, set[str]], said: dict[str, set[str]]) -> bool:
    """Whether ``term`` sets some of the sibling documents (doc -> name words) apart from the others:
    some names hold it, others not, and, for a plain word, the others' text never uses it either
    ("Northwind Health" is the company in every plan's text, so "health" tells nothing; "plus" is
    in one plan's name and not in the other plan's words)."""
    holders = [doc for doc, name in names.items() if term in name]
    if not 0 < len(holders) < len(names):
        return False
    if any(ch.isdigit() for ch in term):
        return True
    return not any(term in said.get(doc, ()) for doc in names if doc not in holders)


def _words_by_document(hits: list[Hit]) -> dict[str, set[str]]:
    """Per document, the words (``content_terms``) its retrieved chunks use."""
    said: dict[str, set[str]] = {}
    for h in hits:
        said.setdefault(h.chunk.doc, set()).update(content_terms(h.chunk.text))
    return said


def document_coverage(question: str, pool: list[Hit]) -> dict[str, float]:
    """Per document of ``pool``, the share of the question's words (weighted by how few of the
    pool's documents use them) that its retrieved chunks hold together: the article about the
    question's virus, country and year covers all three across its chunks, where a neighbour
    on the same disease has one chunk that matches well and nothing of the rest."""
    q_terms = sorted(set(content_terms(question)))  # one summing order: the same scores in every process
    said = _words_by_document(pool)
    first = {h.chunk.doc: h.chunk for h in reversed(pool)}  # one chunk a document: they share its identity
    for doc, chunk in first.items():  # what a document is about counts as said: its name, its opening's period
        said[doc] |= identity_terms(chunk)
    if not q_terms or not said:
        return {}
    idf = {t: math.log(1 + len(said) / (1 + sum(t in words for words in said.values()))) for t in q_terms}
    total = sum(idf.values()) or 1.0
    return {doc: sum(idf[t] for t in q_terms if t in words) / total for doc, words in said.items()}


def rescore(question: str, hits: list[Hit], embedder: Embedder, query_vector: np.ndarray | None = None,
            sentences_embedded: int = 20, names: bool = True, vectors: SentenceVectors | None = None,
            pool: list[Hit] | None = None, document_weight: float = 0.0, identity_weight: float = 0.0) -> list[Hit]:
    """The hits reordered by: their retrieval score (relative to the best) + the cosine between
    the question and the chunk's best sentence (of the ``sentences_embedded`` sentences of all
    candidates sharing most words with the question) + the share of the question's words in
    the chunk's best sentence (periods read in one spelling; with ``identity_weight``, the words its
    document is about counted too: :func:`held`), each in [0, 1], over 3; plus a third of :func:`name_match`, what
    sets the hit's document apart from its siblings (0 when no name tells them apart), and
    ``document_weight`` thirds of :func:`document_coverage` over ``pool`` (the wider candidates). A question
    that names its source ("according to the earnings call") has that source's chunks first (:func:`source_rank`).
    ``Hit.own`` keeps the sum without the coverage: what the chunk itself matches."""
    if not hits:
        return hits
    q_terms = terms_with_periods(question)
    per_hit = [sentences(h.chunk.text) for h in hits]
    # a sentence also holds the question's names and periods its document is about (its name, its front matter)
    kinds = kind_words(question, [h.chunk for h in hits]) if identity_weight or names else set()
    naming = (naming_terms(question, [h.chunk.text for h in hits]) | kinds) & q_terms if identity_weight else set()
    about = [naming & identity_terms(h.chunk) for h in hits]
    weights = dict.fromkeys(q_terms, 1.0)
    flat = [(i, s, q_terms & terms_with_periods(s)) for i, sents in enumerate(per_hit) for s in sents]
    best_overlap = [0.0] * len(hits)
    for i, _, said in flat:
        best_overlap[i] = max(best_overlap[i], held(weights, said, about[i], identity_weight))
    picked = sorted(flat, key=lambda x: -len(x[2]))[:sentences_embedded]  # the sentences saying most of it
    best_sim = [0.0] * len(hits)
    if picked:
        vectors = vectors or SentenceVectors(embedder, question, query_vector)
        sims = vectors.cosines([s for _, s, _ in picked])
        for (i, _, _), sim in zip(picked, sims):
            best_sim[i] = max(best_sim[i], float(sim))
    top = max(h.score for h in hits)
    top = top if top > 1e-9 else 1.0
    named = name_match(question, hits, kinds) if names else [0.0] * len(hits)
    match = [(max(0.0, h.score) / top + best_sim[i] + best_overlap[i] + named[i]) / 3 for i, h in enumerate(hits)]
    covered = document_coverage(question, pool or hits) if document_weight else {}
    key = [m + document_weight * covered.get(h.chunk.doc, 0.0) / 3 for m, h in zip(match, hits)]
    first = source_rank(question, kinds, [h.chunk for h in hits]) if names else [()] * len(hits)
    order = sorted(range(len(hits)), key=lambda i: (first[i], -key[i], i))
    # the chunk's own match is kept beside the score: abstention reads it, since a document's
    # coverage would favour the calibration's questions (made from one chunk's words, always covered)
    return [Hit(hits[i].chunk, key[i], rank, dense=hits[i].dense, lexical=hits[i].lexical, own=match[i])
            for rank, i in enumerate(order, start=1)]


def terms_with_periods(text: str) -> set[str]:
    """A text's content terms with the periods it names in one spelling: "the second quarter of 2023"
    holds "q2" as "Q2 2023" does."""
    return set(content_terms(without_periods(text))) | period_terms(text)


def naming_terms(question: str, texts: list[str] | None = None) -> set[str]:
    """The question's terms that can name what a document is about: its names ("Northstar Robotics",
    "MERS-CoV": :func:`qa.names.named_terms`) and the periods it names ("Q2 2023"); not its plain words
    ("revenue", "travelling"), which a document's title may hold without being about them. The first word
    of a sentence may be a name here ("Northstar revenue Q1-23"): it counts only where a document is
    named so (:func:`identity_terms`). A question written without capitals ("what was northstar robotics'
    revenue in q1 2023") shows no names by its case: it is read cased as ``texts`` (the passages found)
    write its words (:func:`cased_as_written`)."""
    if texts and not any(ch.isupper() for ch in question):  # typed without capitals: cased as the documents write it
        question = cased_as_written(question, texts)
    return set(content_terms(" ".join(named_terms(question, openers=True)))) | period_terms(question)


_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'’\-]*[A-Za-z0-9]")
_OPENS = re.compile(r"(?:^|[.?!:]\s+|\n)\s*$")


def cased_as_written(question: str, texts: list[str]) -> str:
    """A question typed without capitals, with each word capitalised as ``texts`` (the passages found)
    write it more often than not inside a sentence: "northstar robotics revenue" -> "Northstar Robotics
    revenue" where the passages say "Northstar Robotics" (or "NORTHSTAR ROBOTICS"), "mers-cov" ->
    "Mers-cov" where they say "MERS-CoV"; "revenue", which they write in lower case, stays as it is."""
    written: dict[str, list[int]] = {}
    for text in texts:
        for m in _WORD.finditer(text):
            word = m.group()
            if _OPENS.search(text[max(0, m.start() - 3):m.start()]) and not word.isupper():
                continue  # a sentence's first word says nothing of its case
            counts = written.setdefault(word.lower(), [0, 0])
            counts[0 if word[0].isupper() else 1] += 1

    def case(m: re.Match) -> str:
        upper, lower = written.get(m.group().lower(), (0, 0))
        return m.group().capitalize() if upper > lower else m.group()

    return _WORD.sub(case, question)


#: the calendar words as terms (:data:`retrieval.periods.CALENDAR_WORDS`)
CALENDAR = frozenset(content_terms(" ".join(CALENDAR_WORDS)))


def held(weights: dict[str, float], said: set[str], of_document: set[str], about_weight: float) -> float:
    """The weighted share of the question's terms (term -> weight) a sentence holds: those it says, and,
    at ``about_weight`` each, those only its document is about (``of_document``: the question's names and
    periods among :func:`identity_terms`). What the document is about is context, not an answer: it
    counts only for a sentence that says something else of the question, besides the kind of period it
    names (:data:`CALENDAR`). A cover that names the company and the quarter, and nothing of the revenue
    asked about, holds none of "What was Northstar's revenue in Q2 2023?", nor, for its "QUARTERLY
    REPORT", of "What range did Northstar guide to for the quarter after Q2 2023?"; the results page
    saying "revenue" holds it all."""
    terms = sorted(weights)  # one summing order: the same scores in every process
    total = sum(weights[t] for t in terms)
    content = [t for t in terms if t not in of_document and t not in CALENDAR]
    if not total or (content and not any(t in said for t in content)):
        return 0.0
    own = sum(weights[t] for t in terms if t in said)
    return (own + about_weight * sum(weights[t] for t in terms if t in of_document and t not in said)) / total


def sentence_score(question_terms: set[str], sentence: str, idf: dict[str, float]) -> float:
    terms = set(content_terms(sentence))
    if not terms:
        return 0.0
    matched = sorted(question_terms & terms)  # one summing order: the same scores in every process
    return sum(idf.get(t, 1.0) for t in matched) / math.sqrt(len(terms) + 4)


def retrieve(index, query: str, k: int, options: EvidenceOptions | None = None, *, filter=None,
             vectors: SentenceVectors | None = None) -> list[Hit]:
    """The ``k`` best chunks for ``query`` as answers read them: the best ``rescore_candidates``
    (at least ``k``) searched through ``filter``, reordered by :func:`rescore`, their documents
    weighed over the best ``document_candidates``. ``vectors`` keeps the sentences' cosines for
    whoever reads the same sentences next."""
    opt = options or EvidenceOptions()
    vectors = vectors or SentenceVectors(index.embedder, query)
    wanted = max(k, opt.rescore_candidates)
    widest = max(wanted, opt.document_candidates) if opt.document_weight else wanted
    pool = index.search(query, widest, filter=filter, query_vector=vectors.query, query_space=vectors.embedder.name)
    return rescore(query, pool[:wanted], vectors.embedder, vectors.query, opt.rescore_sentences, opt.name_match,
                   vectors, pool=pool, document_weight=opt.document_weight, identity_weight=opt.identity_weight)[:k]


def select_evidence(question: str, hits: list[Hit], options: EvidenceOptions | None = None) -> list[Passage]:
    opt = options or EvidenceOptions()
    q_terms = set(content_terms(question))
    chosen = hits[: opt.max_passages]
    # inverse frequency of the question's terms among the candidate sentences: rare words count more
    all_sents = [sentences(h.chunk.text) for h in chosen]
    df: dict[str, int] = {}
    for sents in all_sents:
        for s in sents:
            for t in set(content_terms(s)) & q_terms:
                df[t] = df.get(t, 0) + 1
    total = sum(len(s) for s in all_sents) or 1
    idf = {t: math.log(1 + total / (1 + n)) for t, n in df.items()}
    passages: list[Passage] = []
    for n, (hit, sents) in enumerate(zip(chosen, all_sents), start=1):
        if not sents:
            continue
        scores = [sentence_score(q_terms, s, idf) for s in sents]
        best = max(range(len(sents)), key=lambda i: (scores[i], -i))
        lo, hi = max(0, best - opt.neighbours), min(len(sents), best + opt.neighbours + 1)
        picked = sents[lo:hi]
        text = " ".join(picked)
        w = text.split()
        if len(w) > opt.max_words:  # keep the best sentence whole, trim the neighbours
            text = " ".join(sents[best].split()[: opt.max_words])
        passages.append(Passage(n=n, chunk=hit.chunk, text=text, score=hit.score, best_sentence=sents[best]))
    return passages
