"""The embedder's adaptation to the company's documents: its training data and its keep test."""

import pytest

from retrieval import Chunk, DocumentInfo


def test_held_out_chunks_are_never_trained_on_as_positive_or_negative(make_index):
    from qa.retriever_tuning import retrieval_queries, training_triples
    from qa.training_data import split_of
    from retrieval.index import chunk_index_text

    index = make_index()
    sentences = [f"Policy {i}. The allowance for item {i} is EUR {10 * i} per month for staff in region {i}."
                 for i in range(1, 41)]
    with index.writer() as w:
        for i, text in enumerate(sentences):
            doc = f"policy-{i}.txt"
            w.add_document(DocumentInfo(doc=doc, format="txt"), [Chunk(Chunk.make_id(doc, 0, text), doc, text)])
        w.commit()
    chunks = [c for d in index.documents() for c in index.document_chunks(d.doc)]
    queries = retrieval_queries(chunks, heldout=0.3, seed=0)
    assert {q.kind for q in queries} == {"question", "sentence"}
    assert queries == retrieval_queries(chunks, heldout=0.3, seed=0)  # seeded
    held_texts = {chunk_index_text(c) for c in chunks if split_of(c.id, 0.3) == "heldout"}
    assert held_texts and any(q.split == "heldout" for q in queries)
    triples = training_triples(index, queries, None, 0.3)
    assert triples
    for _q, positive, negative in triples:
        assert positive not in held_texts and negative not in held_texts and positive != negative


def test_the_keep_test_needs_better_mrr_and_no_fewer_found_in_the_top_five():
    from qa.retriever_tuning import keeps

    before = {"mrr@10": 0.50, "hit@1": 0.4, "hit@5": 0.70}
    assert keeps(before, {"mrr@10": 0.55, "hit@1": 0.45, "hit@5": 0.70})
    assert not keeps(before, {"mrr@10": 0.50, "hit@1": 0.4, "hit@5": 0.75})  # MRR must rise
    assert not keeps(before, {"mrr@10": 0.60, "hit@1": 0.6, "hit@5": 0.65})  # found less often


def test_finetune_options_split_the_budget_and_reject_nonsense():
    from qa.finetune_job import FinetuneOptions

    b = FinetuneOptions(budget_minutes=20).budgets()
    assert b == {"embedder": 600.0, "generator": 450.0, "reranker": 150.0}
    assert FinetuneOptions(budget_minutes=10, generator=False, reranker=False).budgets()["embedder"] == 600.0
    assert FinetuneOptions(budget_minutes=10, embedder=False).budgets() == {"embedder": 0.0, "generator": 450.0,
                                                                            "reranker": 150.0}
    with pytest.raises(ValueError, match="embedder_share"):
        FinetuneOptions(embedder_share=1.5)
    with pytest.raises(ValueError, match="nothing to fine-tune"):
        FinetuneOptions(embedder=False, generator=False, reranker=False)


def test_embedder_training_options_say_what_to_use():
    from retrieval.embedder_training import EmbedderTrainingOptions

    with pytest.raises(ValueError, match="mix = 0"):
        EmbedderTrainingOptions(mix=0)
    with pytest.raises(ValueError, match="batch of 2 or more"):
        EmbedderTrainingOptions(batch_size=1)


@pytest.mark.real
def test_the_kept_embedder_is_halfway_between_the_trained_and_the_shipped_weights(tmp_path):
    from safetensors.torch import load_file

    from retrieval import SentenceTransformerEmbedder
    from retrieval.embedder import packaged_minilm_path
    from retrieval.embedder_training import EmbedderTrainingOptions, train_embedder

    triples = [(f"How many days of leave after {i} years?", f"After {i} years of service staff receive {20 + i} days.",
                f"The hotel limit in region {i} is EUR {100 + i}.") for i in range(8)]
    runs = {}
    for mix in (1.0, 0.5):
        out = tmp_path / f"mix-{mix}"
        record = train_embedder(packaged_minilm_path(), triples, out,
                                EmbedderTrainingOptions(budget_s=60, batch_size=4, max_steps=2, mix=mix, lr=1e-4))
        assert record["steps"] == 2 and record["mix"] == mix
        runs[mix] = load_file(str(out / "model.safetensors"))
    shipped = {k.removeprefix("bert."): v for k, v in load_file(str(packaged_minilm_path() / "model.safetensors")).items()}
    name = next(k for k in runs[1.0] if k.endswith("layer.0.attention.self.query.weight"))
    full, half, start = runs[1.0][name].float(), runs[0.5][name].float(), shipped[name.removeprefix("bert.")].float()
    assert (full - start).abs().max() > 1e-5  # it trained
    assert (half - (0.5 * full + 0.5 * start)).abs().max() < 1e-5
    emb = SentenceTransformerEmbedder(str(tmp_path / "mix-0.5"))
    assert emb.embed(["leave"]).shape == (1, 384)  # loads as a plain sentence-transformers folder
