"""The real tier: the shipped all-MiniLM-L6-v2 end to end on data-samples."""

import json

import pytest

from conftest import SAMPLES
from ingest import Chunker, ChunkingOptions, Ingestor, Parser, discover
from retrieval import Index, chunk_index_text

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def real_index(minilm, tmp_path_factory):
    index = Index(tmp_path_factory.mktemp("real") / "index", minilm)
    chunker = Chunker(minilm.count_tokens, ChunkingOptions(max_tokens=minilm.max_tokens))
    with Parser() as parser:
        report = Ingestor(index, chunker, parser).ingest(discover([SAMPLES / "docs"]))
    assert not report.failed, [(r.doc, r.reason) for r in report.failed]
    return index


def test_model_is_the_packaged_minilm(minilm):
    assert minilm.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert minilm.dim == 384 and minilm.max_tokens == 256


def test_no_chunk_is_truncated_by_the_embedder(real_index, minilm):
    rows = real_index._con.execute("SELECT doc FROM documents").fetchall()
    for (doc,) in rows:
        for chunk in real_index.document_chunks(doc):
            assert minilm.count_tokens(chunk_index_text(chunk)) <= 256, (doc, chunk.ordinal)


def test_sample_questions_find_their_evidence(real_index):
    questions = [json.loads(l) for l in (SAMPLES / "questions.jsonl").read_text().splitlines() if l.strip()]
    answerable = [q for q in questions if q["answerable"]]
    doc_hits = page_hits = paged = 0
    for q in answerable:
        hits = real_index.search(q["question"], 5)
        gold_docs = {e["doc"] for e in q["evidence"]}
        doc_hits += any(h.chunk.doc in gold_docs for h in hits)
        pages = {(e["doc"], e["page"]) for e in q["evidence"] if e["page"]}
        if pages:
            paged += 1
            page_hits += any((h.chunk.doc, h.chunk.page) in pages for h in hits)
    assert doc_hits / len(answerable) >= 0.9
    assert page_hits / paged >= 0.8


def test_semantic_match_without_shared_words(real_index):
    hits = real_index.search("Can I keep a gift from a vendor?", 1, mode="dense")
    assert hits[0].chunk.doc == "hr/code-of-conduct.html"
