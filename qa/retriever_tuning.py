"""Adapt the retriever's embedder to the company's own documents, and keep it only if it helps.

Training queries come from the index alone (no eval question is seen):

* the rule questions of :mod:`qa.training_data` ("Employees receive how many days of leave?"),
  at most two per chunk;
* one sentence of each chunk standing for a question about it (the inverse cloze task: a
  sentence's chunk is the passage that holds its context);
* optionally, questions a generator writes about train chunks in its own words
  (:func:`written_queries`, doc2query's idea): the rule questions and sentences are near-copies
  of the passage, and a model trained on copies alone forgets paraphrase.

Each query's hard negative is the best lexical match from another document (a passage that
shares the words but is not the source). Chunks are split into train and held-out by a hash of
their id (:func:`qa.training_data.split_of`); held-out chunks are never a positive or a
negative in training. The tuned model embeds the whole index; the held-out queries are searched
the way users search (hybrid) in the old space and in the new one, and the model is kept only if
it finds the held-out chunks better (MRR@10 up, hit@5 not down). Its vectors are saved with it,
so promoting it (:meth:`retrieval.index.IndexWriter.reembed`) computes only what changed since.
"""

from __future__ import annotations

import logging
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from qa.text import content_terms, sentences
from qa.training_data import _live_chunks as live_chunks, _round_trip as round_trip, question_rules, split_of
from retrieval import Index, SearchFilter
from retrieval.embedder_training import EmbedderTrainingOptions, train_embedder
from retrieval.index import LiveVectors, chunk_index_text
from retrieval.spaces import tuned_embedder

log = logging.getLogger(__name__)

VECTORS_FILE = "vectors.npz"
MIN_TRIPLES = 4  # fewer: nothing to learn from (a batch needs other passages to tell apart)


@dataclass(frozen=True)
class RetrievalQuery:
    text: str
    chunk_id: str
    doc: str
    kind: str  # "question" (a rule question), "sentence" (a sentence of the chunk) or "written" (by a generator)
    split: str  # "train" or "heldout"


def retrieval_queries(chunks, *, heldout: float = 0.2, seed: int = 0, per_chunk: int = 2) -> list[RetrievalQuery]:
    """Queries written from ``chunks`` (rule questions, and one sentence each), shuffled by ``seed``."""
    rng = random.Random(seed)
    out: list[RetrievalQuery] = []
    for c in chunks:
        split = split_of(c.id, heldout)
        said = [s for s in sentences(c.text) if 8 <= len(s.split()) <= 40 and "|" not in s]
        rules = [q for s in said for q, _a, _r in question_rules(s)]
        rng.shuffle(rules)
        out += [RetrievalQuery(q, c.id, c.doc, "question", split) for q in rules[:per_chunk]]
        if said:
            out.append(RetrievalQuery(rng.choice(said), c.id, c.doc, "sentence", split))
    rng.shuffle(out)
    return out


#: what a question about a passage looks like, shown to the writer before each passage: topics no
#: company shares, and three forms (a how, a yes-or-no, a search phrase), rotated per passage
WRITING_SHOTS = (
    ("The cafeteria on the second floor is open from 7:30 to 15:00 on weekdays. Hot meals are served from noon, and "
     "staff pay with their badge; the cost is taken from the monthly salary.", "How do I pay for lunch at work?"),
    ("In a two-year study of 40 harbours, those that dredged every spring saw 30% fewer groundings than those that "
     "dredged once every five years.", "Does dredging more often prevent ships running aground?"),
    ("Violins made before 1750 were strung with gut. Steel strings, common after 1920, are louder and keep their "
     "tuning longer, which is why most orchestras changed.", "why orchestras switched from gut to steel strings"),
)
_SHOT_TERMS = frozenset(t for p, q in WRITING_SHOTS for t in content_terms(p + " " + q))
_ABOUT_THE_TASK = re.compile(r"\b(?:passage|question|answer|text above|this document)\b", re.I)


def _writing_prompt(text: str, first_shot: int) -> list[dict]:
    shots = WRITING_SHOTS[first_shot:] + WRITING_SHOTS[:first_shot]
    messages = [{"role": "system", "content": "You write what a person would type to find a passage: one short "
                 "question or search phrase, in your own words, not the passage's."}]
    for passage, question in shots:
        messages += [{"role": "user", "content": "Passage: " + passage}, {"role": "assistant", "content": question}]
    return messages + [{"role": "user", "content": "Passage: " + text[:1000]}]


def usable_written(query: str, passage: str) -> str | None:
    """The writer's query, cleaned, if it is one: a line of 3-25 words about the passage (two of its
    words at least), that speaks of neither the task nor the examples it was shown."""
    line = query.strip().splitlines()[0].strip().strip('"').strip() if query.strip() else ""
    if not 3 <= len(line.split()) <= 25 or _ABOUT_THE_TASK.search(line):
        return None
    own = set(content_terms(passage))
    terms = set(content_terms(line))
    if len(terms & own) < 2 or (terms - own) & _SHOT_TERMS:
        return None
    return line


def written_queries(index: Index, chunks, writer, *, budget_s: float, heldout: float = 0.2, seed: int = 0,
                    readers: SearchFilter | None = None, k: int = 10) -> list[RetrievalQuery]:
    """Queries ``writer`` (any qa Generator) writes about train chunks for up to ``budget_s``
    seconds, each kept when it is usable and finds its chunk in the top ``k`` (the round trip)."""
    rng = random.Random(seed)
    train = [c for c in chunks if split_of(c.id, heldout) == "train"]
    rng.shuffle(train)
    out: list[RetrievalQuery] = []
    start = time.monotonic()
    for i, c in enumerate(train):
        if time.monotonic() - start >= budget_s:
            break
        try:
            text = writer.generate(_writing_prompt(c.text, i % len(WRITING_SHOTS)), 40)
        except Exception as exc:  # a writer that fails is a source that dried up, not a failed job
            log.warning("embedder: the question writer failed (%s); training without its questions", exc)
            break
        query = usable_written(text, c.text)
        if query and round_trip(index, query, c.id, k, readers):
            out.append(RetrievalQuery(query, c.id, c.doc, "written", "train"))
    log.info("embedder: %d written queries kept of %d chunks asked in %.0f s", len(out), i + 1 if train else 0,
             time.monotonic() - start)
    return out


def training_triples(index: Index, queries: list[RetrievalQuery], readers: SearchFilter | None,
                     heldout: float = 0.2) -> list[tuple[str, str, str]]:
    """(query, its chunk's text, a hard negative's text) for the train queries: the negative is the
    best lexical match of another document, from the train split."""
    triples = []
    for q in queries:
        if q.split != "train":
            continue
        own = index.get_chunk(q.chunk_id)
        if own is None:
            continue
        hits = index.search(q.text, 8, mode="lexical", filter=readers, rerank=False)
        negative = next((h.chunk for h in hits if h.chunk.doc != q.doc and split_of(h.chunk.id, heldout) == "train"),
                        None)
        if negative is not None:
            triples.append((q.text, chunk_index_text(own), chunk_index_text(negative)))
    return triples


def found_rates(index, queries: list[RetrievalQuery], readers: SearchFilter | None, k: int = 10) -> dict:
    """How well the queries find their own chunk: MRR@k, hit@1, hit@5 (hybrid search, no reranker)."""
    if not queries:
        return {"queries": 0, "mrr@10": 0.0, "hit@1": 0.0, "hit@5": 0.0}
    rr, at1, at5 = 0.0, 0, 0
    for q in queries:
        ids = [h.chunk.id for h in index.search(q.text, k, filter=readers, rerank=False)]
        rank = ids.index(q.chunk_id) + 1 if q.chunk_id in ids else None
        if rank:
            rr += 1 / rank
            at1 += rank == 1
            at5 += rank <= 5
    n = len(queries)
    return {"queries": n, "mrr@10": round(rr / n, 4), "hit@1": round(at1 / n, 4), "hit@5": round(at5 / n, 4)}


def keeps(before: dict, after: dict) -> bool:
    """The keep test: the held-out chunks are found better (MRR up) and no less often in the top 5."""
    return after["mrr@10"] > before["mrr@10"] and after["hit@5"] >= before["hit@5"]


@dataclass
class TunedRetriever:
    """What :func:`tune_embedder` made: its record, and (when kept) the model and the index seen
    through it, for the answer evaluation."""

    record: dict
    view: Index | None = None


def tune_embedder(
    index: Index,
    folder: Path,
    *,
    readers: SearchFilter | None = None,
    budget_s: float = 600.0,
    heldout: float = 0.2,
    seed: int = 0,
    max_heldout: int = 300,
    max_steps: int | None = None,
    discard_rejected: bool = True,
    writer=None,
    writing_s: float = 0.0,
    on_stage: Callable[[str, dict], None] | None = None,
) -> TunedRetriever:
    """Train an embedder for ``index`` into ``folder/embedder`` and keep it there only if the keep
    test passes (with its vectors, ``folder/embedder/vectors.npz``); the record says why either way.
    ``discard_rejected=False`` (benchmarks) keeps a rejected model and its view too, to measure it.
    With a ``writer``, it writes queries for ``writing_s`` seconds before training (data, on top of
    ``budget_s`` as all data is: :func:`written_queries`), which fill a share of every training
    batch (:attr:`retrieval.embedder_training.EmbedderTrainingOptions.paraphrase_share`)."""
    import shutil

    stage = on_stage or (lambda name, info: None)
    chunks = live_chunks(index, readers)
    queries = retrieval_queries(chunks, heldout=heldout, seed=seed)
    held = [q for q in queries if q.split == "heldout"][:max_heldout]
    triples = training_triples(index, queries, readers, heldout)
    counts = {"chunks": len(chunks), "queries": len(queries), "triples": len(triples), "heldout": len(held),
              "questions": sum(q.kind == "question" for q in queries)}
    stage("embedder", {**counts, "budget_s": budget_s})
    base = index.embedder
    base_path = getattr(base, "path", None)
    if base_path is None:
        return TunedRetriever({"data": counts, "kept": False, "why": f"the embedder {base.name} has no model to train"})
    if len(triples) < MIN_TRIPLES or not held:
        return TunedRetriever({"data": counts, "kept": False, "why": f"too few queries to train and test on "
                               f"({len(triples)} to train, {len(held)} held out): ingest more documents"})
    paraphrases = []
    if writer is not None and writing_s > 0:
        stage("embedder-writing", {"budget_s": writing_s})
        written = written_queries(index, chunks, writer, budget_s=writing_s, heldout=heldout, seed=seed,
                                  readers=readers)
        paraphrases = training_triples(index, written, readers, heldout)
    counts["written"] = len(paraphrases)
    out = folder / "embedder"
    options = EmbedderTrainingOptions(budget_s=budget_s, seed=seed, max_steps=max_steps,
                                      batch_size=min(EmbedderTrainingOptions.batch_size, len(triples)))
    training = train_embedder(base_path, triples, out, options, on_progress=lambda p: stage("embedder-step", p),
                              paraphrases=paraphrases)
    tuned = tuned_embedder(out, f"finetuned:{folder.name}")
    stage("embedder-embed", {"chunks": len(chunks)})
    vectors = index.embed_live(tuned, on_progress=lambda done, total: stage("embedder-embed-step",
                                                                             {"done": done, "total": total}))
    view = index.in_space(tuned, vectors)
    before = found_rates(index.with_reranker(None), held, readers)
    after = found_rates(view, held, readers)
    kept = keeps(before, after)
    record = {"data": counts, "training": training, "heldout_before": before, "heldout_after": after, "kept": kept,
              "space": tuned.name, "base": base.name}
    if kept or not discard_rejected:
        vectors.save(out / VECTORS_FILE)
    else:
        shutil.rmtree(out, ignore_errors=True)
        view = None
    log.info("embedder %s: held-out MRR@10 %.3f -> %.3f, hit@5 %.3f -> %.3f", "kept" if kept else "not kept",
             before["mrr@10"], after["mrr@10"], before["hit@5"], after["hit@5"])
    return TunedRetriever(record, view)


def known_vectors(embedder_folder: Path) -> dict:
    """The vectors a kept embedder computed for the index when it was tested, by chunk id."""
    return LiveVectors.load_known(Path(embedder_folder) / VECTORS_FILE)
