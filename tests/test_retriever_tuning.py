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
    with pytest.raises(ValueError, match="writing_minutes = -1"):
        FinetuneOptions(writing_minutes=-1)
    with pytest.raises(ValueError, match="nothing to fine-tune"):
        FinetuneOptions(embedder=False, generator=False, reranker=False)


def test_embedder_training_options_say_what_to_use():
    from retrieval.embedder_training import EmbedderTrainingOptions

    with pytest.raises(ValueError, match="mix = 0"):
        EmbedderTrainingOptions(mix=0)
    with pytest.raises(ValueError, match="batch of 2 or more"):
        EmbedderTrainingOptions(batch_size=1)
    with pytest.raises(ValueError, match="paraphrase_share = 0"):
        EmbedderTrainingOptions(paraphrase_share=0)


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
        paraphrases = [("What do long-serving staff get?", triples[0][1], triples[1][2])] * 2  # a third of a batch
        record = train_embedder(packaged_minilm_path(), triples, out,
                                EmbedderTrainingOptions(budget_s=60, batch_size=4, max_steps=2, mix=mix, lr=1e-4),
                                paraphrases=paraphrases)
        assert record["steps"] == 2 and record["mix"] == mix and record["paraphrases"] == len(paraphrases)
        runs[mix] = load_file(str(out / "model.safetensors"))
    shipped = {k.removeprefix("bert."): v for k, v in load_file(str(packaged_minilm_path() / "model.safetensors")).items()}
    name = next(k for k in runs[1.0] if k.endswith("layer.0.attention.self.query.weight"))
    full, half, start = runs[1.0][name].float(), runs[0.5][name].float(), shipped[name.removeprefix("bert.")].float()
    assert (full - start).abs().max() > 1e-5  # it trained
    assert (half - (0.5 * full + 0.5 * start)).abs().max() < 1e-5
    emb = SentenceTransformerEmbedder(str(tmp_path / "mix-0.5"))
    assert emb.embed(["leave"]).shape == (1, 384)  # loads as a plain sentence-transformers folder


def test_written_queries_are_about_train_chunks_in_the_writers_words_and_find_them(make_index):
    import re

    from qa.retriever_tuning import usable_written, written_queries
    from qa.training_data import split_of

    class Writer:
        """Writes a paraphrase for even policies, and for odd ones a reply that is no query."""

        def generate(self, messages, max_tokens=96):
            n = int(re.search(r"item (\d+)", messages[-1]["content"]).group(1))
            if n % 2:
                return "This passage answers the question about it."
            return f"What sum goes to item {n} monthly?\nExplanation: ..."

    index = make_index()
    with index.writer() as w:
        for i in range(1, 41):
            doc, text = f"policy-{i}.txt", f"Policy {i}. The allowance for item {i} is EUR {10 * i} per month."
            w.add_document(DocumentInfo(doc=doc, format="txt"), [Chunk(Chunk.make_id(doc, 0, text), doc, text)])
        w.commit()
    chunks = [c for d in index.documents() for c in index.document_chunks(d.doc)]
    written = written_queries(index, chunks, Writer(), budget_s=60, heldout=0.3, seed=0)
    assert written and all(q.kind == "written" and q.split == "train" for q in written)
    by_id = {c.id: c for c in chunks}
    for q in written:
        assert split_of(q.chunk_id, 0.3) == "train"  # a held-out chunk is never written about
        n = int(re.search(r"item (\d+)", q.text).group(1))
        assert n % 2 == 0 and q.text.endswith("?") and f"item {n} " in by_id[q.chunk_id].text + " "
    # the examples the writer was shown are not the passage's topic
    assert usable_written("Does dredging harbours prevent groundings of ships?", "The allowance for dredging is EUR 10.") is None
    assert usable_written("allowance item", "The allowance for item 4 is EUR 40.") is None  # too short to be a query


def test_paraphrases_fill_their_share_of_every_batch_and_are_all_used():
    import random

    from retrieval.embedder_training import _Mixed

    paraphrases = [(f"q{i}", "p", "n") for i in range(5)]
    mixed = _Mixed(paraphrases, 1 / 3, 16, random.Random(0))
    taken = [mixed.take() for _ in range(5)]
    assert all(len(t) == 5 for t in taken)  # round(16 / 3)
    assert {t for batch in taken for t in batch} == set(paraphrases)  # cycled, each one used
    assert all(len(set(batch)) == 5 for batch in taken[:1])  # no repeats within the first round
    assert _Mixed(paraphrases[:2], 1 / 3, 16, random.Random(0)).take() == []  # too few to fill the share
