"""The short answer, extracted: the answer-bearing sentence of the passages, and the span in it.

A sentence is scored on four things, each in [0, 1], and the mean wins:

- meaning: the cosine between the question and the sentence (the index's own embedder);
- words: the share of the question's words in the sentence, rare words (across the candidate
  sentences) counting more, periods read in one spelling ("Q2 2023" = "the second quarter of 2023");
  a sentence that opens on "They", "These", "It" also speaks of the words of the sentence before
  it, and every sentence speaks of what its document is about (its name, the company and period
  its cover states: :func:`qa.evidence.identity_terms`), so the results page of the filing the
  question names beats that filing's cover, which only names it;
- kind: whether the sentence holds an answer of the kind the question asks for (an amount for
  "how many", a date for "when", a name for "who"), that the question does not already say, or,
  for "What is X?", whether it defines X ("X is a ...", "X, a ...", "... (X)" spelling out an acronym);
- source: how well the passage's chunk ranked (its rescored retrieval score, relative to the best).

A sentence that only restates the question (every word of it in the question) is worth half.
A winning sentence that only announces what follows ("Baculoviruses have a number of advantages
as vaccine vectors.", a sentence ending in ':') is shown with the sentences after it, which hold
the answer.
Then the span: the amount, date or name of that kind nearest the question's words, preferring
the unit the question counts in ("how many weeks" -> "12 weeks", not "25 days").

    question: "How many weeks of leave does the other parent get?"
    sentence: "The birth parent receives 16 weeks and the other parent receives 12 weeks of paid leave."
    span:     "12 weeks"
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from qa.answer import Passage
from qa.evidence import SentenceVectors, held, identity_terms, naming_terms, source_rank, terms_with_periods
from qa.question import QuestionShape, shape
from qa.text import content_terms, sentences, words
from retrieval.periods import period_spans, period_terms

_NUMBER_WORDS = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
                 "seventeen eighteen nineteen twenty thirty forty fifty sixty hundred thousand dozen half").split()
_UNIT_WORD = r"(?:[A-Za-z][A-Za-z\-]*)"
_CURRENCY = r"(?:[$€£¥]|\b(?:USD|EUR|GBP|NOK|SEK|DKK|CHF|JPY|CAD|AUD|INR|CNY)\b)"
_QUANTITY = re.compile(
    r"\d[\d,.]*\s+per\s+\d[\d,.]*"  # a rate: "108 per 100,000"
    rf"|(?:{_CURRENCY}\s?)?\d[\d,.]*(?:\s?(?:%|percent|per\s?cent|k\b|m\b|bn\b|million|billion|thousand))?"
    rf"(?:\s+{_UNIT_WORD}){{0,2}}"
    rf"|\b(?:{'|'.join(_NUMBER_WORDS)})(?:[\s-]+(?:{'|'.join(_NUMBER_WORDS)}))*(?:\s+{_UNIT_WORD}){{1,2}}",
    re.IGNORECASE,
)
#: two quantities as one answer: "between $1,509 million and $1,604 million", "from 0.2 to 0.0125 mg/ml", "5-27 days"
_RANGE = re.compile(rf"\b(?:between|from)\s+(?:{_QUANTITY.pattern})\s+(?:and|to)\s+(?:{_QUANTITY.pattern})"
                    rf"|(?:{_QUANTITY.pattern})\s?(?:-|–|to)\s?(?:{_QUANTITY.pattern})", re.IGNORECASE)
_YEARS = re.compile(r"(?:from\s+|between\s+)?(?:19|20)\d{2}\s?(?:-|–|to|and)\s?(?:(?:19|20)\d{2}|\d{2})")  # a span of years
_MONTHS = ("january february march april may june july august september october november december "
           "jan feb mar apr jun jul aug sep sept oct nov dec").split()
_MONTH = rf"(?:{'|'.join(m.capitalize() for m in _MONTHS)})\.?"
_DATE = re.compile(
    rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?"
    rf"|\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"
    rf"|\b{_MONTH}\s+\d{{4}}"
    r"|\b(?:Q[1-4]|H[12]|FY)\s?'?\d{2,4}\b|\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
    r"|\b(?:19|20)\d{2}\b"
    rf"|\b{_MONTH}\b"
    r"|\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)s?\b"
    r"|\b(?:within|after|before|by)\s+\d+\s+(?:business\s+|working\s+|calendar\s+)?(?:days?|weeks?|months?|years?|hours?)\b",
)
_NAME = re.compile(r"\b[A-Z][\w&'’.-]*(?:\s+(?:of|and|for|the|de|&)?\s*[A-Z][\w&'’.-]*){0,4}")
_TIME_UNITS = frozenset(content_terms("second minute hour day week month year quarter"))
_STOP_UNITS = frozenset(("of the a an and or to for in on at by with from is are was were be within after before during "
                         "over under above below into than each every if when as that which who while since until "
                         "across through between against among").split())
#: what opens a numbered item before its first word: "31.2 ", "4. ", "(b) "
_ITEM_NUMBER = re.compile(r"\s*(?:\(?\d+(?:\.\d+)*[.)]?|\(?[a-z]\))\s+")
_NOT_NAMES = frozenset(w.capitalize() for w in _MONTHS) | {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "The", "A", "An", "This", "That",
    # a company's legal form alone (", Inc." after the name the question gives)
    "Inc", "Inc.", "Ltd", "Ltd.", "LLC", "LLP", "Corp", "Corp.", "Co.", "PLC", "plc", "GmbH", "AG", "S.A.", "N.V."}
_REASON = re.compile(r"\b(?:because(?:\s+of)?|due\s+to|caused\s+by|as\s+a\s+result\s+of|owing\s+to|after|since|"
                     r"so\s+that|in\s+order\s+to|leads?\s+to|led\s+to|results?\s+(?:from|in)|driven\s+(?:\w+\s+)?by)\b[^.;:]*", re.IGNORECASE)
_SHARE = re.compile(r"%|\bper\s?cent\b", re.IGNORECASE)
_MONEY = re.compile(rf"{_CURRENCY}|%|percent|per\s?cent", re.IGNORECASE)
KINDS = ("quantity", "date", "name", "place", "reason")
#: the term as a sentence's subject: "Sporulation is", "Listeria species are", "EGR1, also known as Zif268, is",
#: "Bacillus subtilis (B. subtilis), a ..."; not "The advantages of Listeria are"
_SUBJECT_START = r"^(?:(?:the|an?)\s+)?"
_DEFINES = (r"(?:\s+[a-z]+)?(?:\s*\([^)]{1,80}\))?(?:,\s*(?:also\s+)?(?:known|called|termed|referred\s+to)\s+as\s[^,]{1,60},)?"
            r"\s*(?:,\s*(?:an?|the|which\s+(?:is|are))\s|(?:is|are|was|were)\s+(?!not\b|also\b)"
            r"|refers?\s+to\b|stands?\s+for\b|means\b|denotes\b|:\s)")
#: a sentence that opens on what the one before it named ("They have a double-stranded RNA genome.")
_ANAPHOR = re.compile(r"^(?:they|these|this|it|its|their|such|both|the\s+latter)\b", re.IGNORECASE)
_ANNOUNCES = re.compile(r"\b(?:a\s+(?:number|variety|range|series|couple)\s+of|several|numerous|various|multiple|a\s+few|"
                        r"many|the\s+following|two|three|four|five|six)\s+(?:[\w-]+\s+){0,2}?(?P<noun>[\w-]+)",
                        re.IGNORECASE)


@dataclass
class Extract:
    """The sentence chosen as the answer, where it came from, and the span in it."""

    passage: Passage
    sentence: str
    span: str | None
    score: float
    short: str  # what is shown as the short answer: the sentence (or its clause) or a table row read out


def _clean_unit(span: str) -> str:
    """"25 days of paid" -> "25 days": a quantity's unit words stop at the first small word."""
    toks = span.split()
    out = [toks[0]]
    for t in toks[1:]:
        if t.lower() in _STOP_UNITS:
            break
        out.append(t)
    return " ".join(out).rstrip(".,;:")


def _clean_range(span: str) -> str | None:
    """"between $1,509 million and $1,604 million of" -> the range, its second quantity's unit cleaned;
    None when no word opens a quantity."""
    toks = span.split()
    opening = [i for i, t in enumerate(toks) if (re.match(rf"{_CURRENCY}|\d", t) or t.lower() in _NUMBER_WORDS)]
    if not opening:
        return None
    last = opening[-1]
    return " ".join(toks[:last] + [_clean_unit(" ".join(toks[last:]))])


def spans(sentence: str, kind: str) -> list[tuple[int, str]]:
    """(start offset, text) of every answer of ``kind`` in the sentence."""
    if kind == "quantity":
        # "30" of "September 30, 2023" and "three months" of "three months ended June 30" count nothing
        dates = [m.span() for m in _DATE.finditer(sentence)] + period_spans(sentence)
        found = [(m.start(), _clean_unit(m.group(0))) for m in _QUANTITY.finditer(sentence)
                 if not any(a <= m.start() < b for a, b in dates)]
        ranges = [(m.start(), _clean_range(m.group(0))) for m in _RANGE.finditer(sentence)
                  if not any(a <= m.start() < b for a, b in dates)]
        ranges = [(i, s) for i, s in ranges if s and not _YEARS.fullmatch(s)]
        return ranges + [(i, s) for i, s in found if s and not re.fullmatch(r"(?:19|20)\d{2}", s)]
    if kind == "reason":
        return [(m.start(), m.group(0).strip(" ,")) for m in _REASON.finditer(sentence)]
    if kind == "date":
        return [(m.start(), m.group(0).strip()) for m in _DATE.finditer(sentence)]
    if kind in ("name", "place"):
        out = []
        for m in _NAME.finditer(sentence):
            text = m.group(0).strip()
            before = sentence[:m.start()]
            opens = not before.strip() or before.rstrip().endswith((":", "(")) or bool(_ITEM_NUMBER.fullmatch(before))
            if (opens and len(text.split()) == 1) or text in _NOT_NAMES:
                continue  # a capital that only starts the sentence, a speaker's turn ("Operator: Good day"),
                # an aside ("(Exact name of registrant)") or a numbered item ("31.2 Certification of ..."); a
                # day, a month, a company's legal form
            out.append((m.start(), text))
        return out
    return []


def _new_to_question(span: str, q: QuestionShape) -> bool:
    terms = set(content_terms(span))
    return bool(terms - q.terms) if terms else False


def _past_the_names(span: str, q: QuestionShape) -> str | None:
    """A name span without the names the question gives at its ends ("Chief Financial Officer Tomas
    Reyes" -> "Tomas Reyes"); None when what is left is one word or holds such a name too: "Pinecrest Energy
    Partners" is the company "Who is Pinecrest Energy's CFO?" asks about, not its CFO."""
    toks = span.split()

    def given(tok: str) -> bool:
        terms = set(content_terms(tok))
        return bool(terms) and terms <= q.named

    while toks and given(toks[0]):
        toks.pop(0)
    while toks and given(toks[-1]):
        toks.pop()
    left = " ".join(toks)
    if not toks or set(content_terms(left)) & q.named or (left != span and len(toks) < 2):
        return None
    return left


def _answer_part(span: str, q: QuestionShape) -> str | None:
    """The part of a span that answers the question, or None: it must say something the question does
    not, and a name must be other than the ones the question gives (:func:`_past_the_names`)."""
    if q.kind == "name" and q.named:
        span = _past_the_names(span, q)
    return span if span and _new_to_question(span, q) else None


def _in_unit(span: str, q: QuestionShape) -> bool:
    """Whether a span counts in what the question asks for ("how many weeks": weeks; "how much is":
    money or a share); any span does when the question names no unit."""
    if q.kind != "quantity" or not q.focus:
        return True
    if q.focus == "amount":
        return bool(_MONEY.search(span))
    if q.focus == "range":
        return bool(_RANGE.fullmatch(span))
    if q.focus != "time" and _SHARE.search(span):
        return False  # "how many cases": "70% case detection" is a share, not a count of cases
    wants = _TIME_UNITS if q.focus == "time" else {q.focus}
    return bool(set(content_terms(span)) & wants)


def best_span(sentence: str, q: QuestionShape) -> str | None:
    """The span of the question's kind nearest its words, in the unit it counts in; None if none."""
    found = [(i, part) for i, s in spans(sentence, q.kind) if (part := _answer_part(s, q))]
    if not found:
        return None
    toks = words(sentence)
    where = [i for i, t in enumerate(toks) if set(content_terms(t)) & q.terms]

    def position(offset: int) -> int:
        return len(words(sentence[:offset]))

    def key(item: tuple[int, str]) -> tuple:
        offset, text = item
        pos = position(offset)
        distance = min((abs(pos - w) for w in where), default=len(toks))
        return (not _in_unit(text, q), distance, offset)

    return min(found, key=key)[1]


def table_cells(sentence: str) -> tuple[list[str], list[str]] | None:
    """A table row as :func:`qa.text.sentences` writes it ("| h1 | h2 | | v1 | v2 |") -> header, cells."""
    s = sentence.strip()
    if not (s.startswith("|") and s.endswith("|")):
        return None
    cells = [c.strip() for c in s[1:-1].split("|")]
    n = (len(cells) - 1) // 2
    if len(cells) % 2 == 1 and n > 0 and cells[n] == "":
        return cells[:n], cells[n + 1:]
    return None


def asked_columns(header: list[str], periods: set[str] | frozenset[str]) -> set[int] | None:
    """The columns of a table whose heads name every period the question names that any head does
    ("fiscal year 2023" -> the "Year Ended December 31, 2023" column, not the 2022 one beside it); None
    when the question names none of them, or every dated column (nothing to leave out)."""
    dated = {i: period_terms(h) for i, h in enumerate(header) if h}
    dated = {i: p for i, p in dated.items() if p}
    if not periods or len(dated) < 2:
        return None
    named = set(periods) & set().union(*dated.values())
    keep = {i for i, p in dated.items() if named and named <= p}
    return keep if keep and len(keep) < len(dated) else None


def label_share(sentence: str, asked: set[str]) -> float:
    """For a table row, the share of its label's words (the first cell: "Cost of revenue") that the
    question asks about: asked for revenue, the "Revenue" row is all asked, "Cost of revenue" half. The
    row that names what is asked and nothing else is the one that answers; 1 for a label of no words
    and for a sentence that is no row."""
    parsed = table_cells(sentence)
    label = set(content_terms(parsed[1][0])) if parsed and parsed[1] else set()
    return len(label & asked) / len(label) if label else 1.0


def read_row(sentence: str, periods: set[str] | frozenset[str] = frozenset()) -> str | None:
    """A table row read out: "Parent: Other; Weeks: 12"; where the question names the period of some
    columns (``periods``, :func:`retrieval.periods.period_terms`), the other dated columns left out."""
    parsed = table_cells(sentence)
    if parsed is None:
        return None
    header, cells = parsed
    keep = asked_columns(header, periods)
    pairs = [f"{h}: {c}" if h else c for i, (h, c) in enumerate(zip(header, cells))
             if c and (keep is None or i in keep or not period_terms(h))]
    return "; ".join(pairs) or None


#: words that open an aside after a comma (", which ...", ", especially ..."): a clause, and one a short answer may drop
_ASIDES = frozenset({"which", "while", "whereas", "although", "especially", "particularly", "notably"})
_CLAUSE = re.compile(rf"(?<=[;:])\s+|,\s+(?=(?:and|but|with|{'|'.join(sorted(_ASIDES))})\b)")


def clauses_of(sentence: str) -> list[str]:
    """The sentence cut at ';', ':' and ', and/but/which...', never inside brackets
    ("a rAd5-HA (H1N1; PR8) vaccine" stays whole)."""
    out, start, depth = [], 0, 0
    for i, ch in enumerate(sentence):
        depth += 1 if ch in "([{" else -1 if ch in ")]}" and depth else 0
        if depth:
            continue
        m = _CLAUSE.match(sentence, i) if ch.isspace() or ch == "," else None
        if m and m.end() > m.start() and i > start:
            out.append(sentence[start:i])
            start = m.end()
    out.append(sentence[start:])
    return [c for c in out if c and c.strip()]


def without_trailing_asides(sentence: str, terms: frozenset[str] | set[str]) -> str:
    """The sentence without the asides it closes on (", especially ...", ", which ...") that hold none
    of ``terms``: "... made it attractive as a vaccine carrier, especially during the early stages"
    loses its last clause. A list (after ':', ';' or ', and') is never cut: it is likely the answer."""
    text = sentence
    while True:
        clauses = clauses_of(text)
        last = clauses[-1]
        cut = text.rfind(last)
        aside = last.split(" ", 1)[0].lower() in _ASIDES and text[:cut].rstrip().endswith(",")
        if len(clauses) < 2 or not aside or set(content_terms(last)) & terms:
            return text
        text = text[:cut].rstrip().rstrip(",")


def short_form(sentence: str, span: str | None, max_words: int = 40, periods: set[str] | frozenset[str] = frozenset()) -> str:
    """The sentence itself (without a list item's bullet), or for a long one the clauses that hold
    the span (or its start); a table row read out, with the columns of the question's ``periods``."""
    sentence = re.sub(r"^[•▪●◦‣]\s+", "", sentence)
    row = read_row(sentence, periods)
    if row is not None:
        return row
    if len(sentence.split()) <= max_words:
        return sentence
    clauses = clauses_of(sentence)
    pick = next((i for i, c in enumerate(clauses) if span and span in c), 0)
    text = clauses[pick]
    j = pick + 1
    while len(text.split()) < 8 and j < len(clauses):
        text = f"{text} {clauses[j]}"
        j += 1
    return text if len(text.split()) <= max_words else " ".join(text.split()[:max_words]) + " …"


def _term_pattern(term: str) -> str:
    """A regex for a term as a sentence may write it: any case, '-' or ' ' between words, singular or plural."""
    words_ = term.split()
    last = words_[-1]
    if len(last) > 3 and last.lower().endswith("s") and last.isalpha():
        last = last[:-1]
    body = r"[\s-]+".join(re.escape(w) for w in words_[:-1] + [last])
    return rf"(?<![\w-]){body}(?:e?s)?(?![\w-])"


def defines(sentence: str, term: str) -> bool:
    """Whether the sentence says what ``term`` is: "X is/are ...", "X, a ...", "X refers to / stands
    for / means ...", or spells out the acronym X ("quantitative RT-PCR (qRT-PCR)")."""
    pattern = _term_pattern(term)
    if re.search(_SUBJECT_START + pattern + _DEFINES, sentence, re.IGNORECASE):
        return True
    acronym = " " not in term and sum(ch.isupper() for ch in term) >= 2
    return acronym and re.search(rf"\w[\w\s,-]{{8,}}\(\s*{pattern}\s*[,;)]", sentence, re.IGNORECASE) is not None


def announces(sentence: str, q: QuestionShape) -> bool:
    """Whether the sentence only points at what follows: it ends in ':' or counts what the question
    asks about without saying it ("a number of advantages", "several important criteria")."""
    if sentence.rstrip().endswith(":"):
        return True
    return any(set(content_terms(m.group("noun"))) & q.terms for m in _ANNOUNCES.finditer(sentence))


def with_what_follows(text: str, sentence: str, max_words: int = 40, most: int = 2) -> str:
    """The sentence and up to ``most`` sentences after it in ``text``, until ``max_words`` are shown."""
    sents = sentences(text)
    if sentence not in sents:
        return sentence
    i = sents.index(sentence)
    shown = [sentence]
    for nxt in sents[i + 1: i + 1 + most]:
        if table_cells(nxt) is not None or len(" ".join(shown).split()) >= max_words:
            break
        shown.append(nxt)
    return " ".join(shown)


def _kind_part(sentence: str, q: QuestionShape) -> tuple[float | None, str | None]:
    """(how well the sentence holds an answer of the question's kind, the span); None, None when
    the question asks for no particular kind."""
    if q.kind == "definition":
        return (1.0 if q.subject and defines(sentence, q.subject) else 0.0), None
    if q.kind not in KINDS:
        return None, None
    span = best_span(sentence, q)  # an answer of the kind asked for, and in the unit asked for
    return (0.0 if not span else 1.0 if _in_unit(span, q) else 0.5), span


def _restates(sentence: str, q: QuestionShape) -> bool:
    terms = set(content_terms(sentence))
    return bool(terms) and terms <= q.terms


def _candidates(passages: list[Passage],
                q_terms: set[str]) -> tuple[list[tuple[Passage, str]], list[set[str]], list[set[str]]]:
    """Each passage's sentences with the terms they speak of: their own (periods in one spelling)
    and, for a sentence that opens on what the sentence before it named ("They", "These antivirals"),
    that sentence's too; and, apart, those of ``q_terms`` (the question's names and periods) that the
    passage's document is about (:func:`qa.evidence.identity_terms`: its name, what its opening states)."""
    cands: list[tuple[Passage, str]] = []
    terms: list[set[str]] = []
    about: list[set[str]] = []
    for p in passages:
        of_document = q_terms & identity_terms(p.chunk) if q_terms else set()
        before: set[str] = set()
        for s in dict.fromkeys(sentences(p.chunk.text)):
            own = terms_with_periods(s)
            if content_terms(s):
                cands.append((p, s))
                terms.append(own | before if _ANAPHOR.match(s) else own)
                about.append(of_document)
            before = own
    return cands, terms, about


def _from_named_source(question: str, passages: list[Passage], kinds: set[str]) -> list[Passage]:
    """The passages of the source the question names (the call of the company and quarter it names:
    :func:`qa.evidence.source_rank`), or all of them where none is, or where the question names none."""
    rank = source_rank(question, kinds, [p.chunk for p in passages])
    best = min(rank, default=())
    if not best or best[1]:  # no source named, or none of its passages is of the kind named
        return passages
    return [p for p, r in zip(passages, rank) if r == best]


def choose(question: str, passages: list[Passage], embedder, vectors=None, max_sentences: int = 30,
           identity_weight: float = 0.0, kinds: set[str] = frozenset()) -> Extract | None:
    """The best answer-bearing sentence of the passages' chunks (see the module's docstring). ``kinds``:
    the question's words that name a kind of the documents retrieved (:func:`qa.evidence.kind_words`),
    which a sentence holds when its document's name does; where the question names one as its source
    ("according to the earnings call"), only its passages are read, if there are any
    (:func:`_from_named_source`)."""
    passages = _from_named_source(question, passages, set(kinds))
    q = shape(question)
    asked = terms_with_periods(question)
    naming = naming_terms(question, [p.chunk.text for p in passages]) | set(kinds) if identity_weight else set()
    cands, sent_terms, about = _candidates(passages, naming & asked)
    if not cands:
        return None
    df: dict[str, int] = {}
    for terms in sent_terms:
        for t in terms & asked:
            df[t] = df.get(t, 0) + 1
    q_terms = sorted(asked)  # one summing order: the same scores in every process
    idf = {t: math.log(1 + len(cands) / (1 + df.get(t, 0))) for t in q_terms}
    total = sum(idf.values()) or 1.0
    said = [sum(idf[t] for t in q_terms if t in terms) / total for terms in sent_terms]
    lexical = [held(idf, terms, of_document, identity_weight) * (1 + label_share(s, asked)) / 2  # 1 off tables
               for (_, s), terms, of_document in zip(cands, sent_terms, about)]
    # the sentences saying most of it; one saying nothing of it ("32.1 Certifications pursuant to 18 U.S.C.")
    # only where none says anything
    order = sorted(range(len(cands)), key=lambda i: -said[i])[:max_sentences]
    if any(said[i] > 0 for i in order):
        order = [i for i in order if said[i] > 0]
    dense = [0.0] * len(cands)
    vectors = vectors or SentenceVectors(embedder, question)
    sims = vectors.cosines([cands[i][1] for i in order])
    for i, sim in zip(order, sims):
        dense[i] = max(0.0, float(sim))
    top = max((p.score for p in passages), default=1.0) or 1.0
    best: Extract | None = None
    for i in order:
        p, s = cands[i]
        parts = [dense[i], lexical[i], max(0.0, p.score) / top]
        kind, span = _kind_part(s, q)
        if kind is not None:
            parts.append(kind)
        score = sum(parts) / len(parts) * (0.5 if _restates(s, q) else 1.0)
        if best is None or score > best.score:
            best = Extract(p, s, span, score, short_form(s, span, periods=period_terms(question)))
    if best is not None and best.span is None and q.kind != "quantity" and announces(best.sentence, q):
        best = replace(best, short=with_what_follows(best.passage.chunk.text, best.sentence))
    return best

