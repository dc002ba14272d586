import numpy as np
import pytest

from retrieval import Chunk, DocumentInfo, FakeEmbedder, Index, SearchFilter, chunk_index_text
from retrieval.errors import EmptyIndexError, IndexLockedError, IndexMismatchError


def _chunks(doc, texts, groups=()):
    return [Chunk(id=Chunk.make_id(doc, i, t), doc=doc, text=t, page=i + 1, ordinal=i, groups=tuple(groups)) for i, t in enumerate(texts)]


def _add(index, doc, texts, groups=()):
    with index.writer() as w:
        w.add_document(DocumentInfo(doc=doc, format="txt", hash=doc), _chunks(doc, texts, groups))
        return w.commit()


def test_empty_index_says_what_to_do(make_index):
    with pytest.raises(EmptyIndexError, match="archivist ingest"):
        make_index().search("anything")


def test_add_search_persist_reload(make_index, fake_embedder):
    idx = make_index()
    _add(idx, "hr/leave.txt", ["annual leave is twenty five days", "sick leave needs a doctor note"])
    _add(idx, "it/vpn.txt", ["connect to the vpn with your badge"])
    hits = idx.search("how many days of annual leave", 2)
    assert hits[0].chunk.doc == "hr/leave.txt" and hits[0].chunk.page == 1
    assert [h.rank for h in hits] == [1, 2]
    idx.close()
    again = Index(idx.path, fake_embedder)
    assert len(again) == 3
    assert again.search("vpn badge", 1)[0].chunk.doc == "it/vpn.txt"
    assert again.stats()["documents"] == 2 and again.stats()["chunks"] == 3


@pytest.mark.parametrize("mode", ["lexical", "dense", "hybrid"])
def test_every_mode_finds_the_obvious_passage(make_index, mode):
    idx = make_index()
    _add(idx, "a.txt", ["the quarterly budget for engineering", "the cafeteria menu for friday", "parking permits for visitors"])
    assert idx.search("cafeteria menu", 1, mode=mode)[0].chunk.text == "the cafeteria menu for friday"


def test_unknown_mode_and_empty_query_are_errors(make_index):
    idx = make_index()
    _add(idx, "a.txt", ["text"])
    with pytest.raises(ValueError, match="unknown search mode"):
        idx.search("text", mode="psychic")
    with pytest.raises(ValueError, match="empty"):
        idx.search("   ")


def test_replace_and_remove_document(make_index):
    idx = make_index()
    _add(idx, "a.txt", ["old wording about pensions"])
    _add(idx, "a.txt", ["new wording about salaries"])  # same doc: replaces
    assert len(idx) == 1
    assert idx.search("salaries", 1)[0].chunk.text == "new wording about salaries"
    assert all("pensions" not in h.chunk.text for h in idx.search("pensions", 5))
    with idx.writer() as w:
        w.remove_document("a.txt")
        w.commit()
    assert len(idx) == 0 and idx.documents() == []


def test_dense_search_matches_brute_force(make_index, fake_embedder):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)]
    texts = [" ".join(rng.choice(words, 8)) for _ in range(200)]
    idx = make_index()
    _add(idx, "many.txt", texts)
    query = " ".join(rng.choice(words, 4))
    got = [h.chunk.text for h in idx.search(query, 10, mode="dense")]
    vecs = fake_embedder.embed([chunk_index_text(c) for c in _chunks("many.txt", texts)])
    scores = vecs @ fake_embedder.embed_query(query)
    expect_scores = np.sort(scores)[::-1][:10]
    got_scores = [h.score for h in idx.search(query, 10, mode="dense")]
    assert np.allclose(got_scores, expect_scores, atol=1e-5)
    assert len(got) == 10


def test_filter_applies_before_the_cut(make_index):
    """Many forbidden near-duplicates must not push the one allowed passage out of the top k."""
    idx = make_index()
    _add(idx, "secret/board.txt", [f"salary table for executives row {i}" for i in range(50)], groups=("board",))
    _add(idx, "public/handbook.txt", ["salary reviews happen in may", "unrelated text about parking"], groups=("everyone",))
    _add(idx, "nobody/draft.txt", ["salary table draft nobody may read"])  # no groups: default deny
    for mode in ("lexical", "dense", "hybrid"):
        hits = idx.search("salary table", 1, mode=mode, filter=SearchFilter.for_groups(["staff"]))
        assert [h.chunk.doc for h in hits] == ["public/handbook.txt"], mode
        hits = idx.search("salary table", 3, mode=mode, filter=SearchFilter.for_groups(["board"]))
        assert hits[0].chunk.doc == "secret/board.txt"
        hits = idx.search("salary", 2, mode=mode, filter=SearchFilter(doc_prefix="public/"))
        assert {h.chunk.doc for h in hits} == {"public/handbook.txt"}
        assert "nobody/draft.txt" not in {h.chunk.doc for h in idx.search("salary table draft", 10, mode=mode, filter=SearchFilter.for_groups(["board", "staff"]))}
    assert [d.doc for d in idx.documents(SearchFilter.for_groups([]))] == ["public/handbook.txt"]
    assert idx.stats(SearchFilter.for_groups([]))["chunks"] == 2
    assert idx.document("secret/board.txt", SearchFilter.for_groups(["staff"])) is None
    assert idx.document("secret/board.txt", SearchFilter.for_groups(["board"])).doc == "secret/board.txt"


def test_set_groups_changes_access_without_re_embedding(make_index):
    idx = make_index()
    _add(idx, "hr/pay.txt", ["pay rises are announced in april"], groups=("hr",))
    gen = idx.generation
    staff = SearchFilter.for_groups(["staff"])
    assert idx.search("pay rises", 3, filter=staff) == []
    with idx.writer() as w:
        w.set_groups("hr/pay.txt", ["everyone"])
        w.commit()
    assert idx.generation == gen  # no new vectors: only who may read changed
    assert [h.chunk.doc for h in idx.search("pay rises", 3, filter=staff)] == ["hr/pay.txt"]
    assert idx.documents(staff)[0].groups == ("everyone",)
    with idx.writer() as w:
        w.set_groups("hr/pay.txt", [])
        w.commit()
    for mode in ("lexical", "dense", "hybrid"):
        assert idx.search("pay rises", 3, mode=mode, filter=staff) == []


def test_prefix_filter_escapes_like_wildcards(make_index):
    idx = make_index()
    _add(idx, "a_b/x.txt", ["alpha text"])
    _add(idx, "aXb/y.txt", ["alpha text"])
    hits = idx.search("alpha", 5, filter=SearchFilter(doc_prefix="a_b/"))
    assert {h.chunk.doc for h in hits} == {"a_b/x.txt"}


def test_index_refuses_another_embedder(make_index, tmp_path):
    idx = make_index()
    _add(idx, "a.txt", ["text"])
    with pytest.raises(IndexMismatchError, match="built with the embedder 'fake-hash-64'"):
        Index(idx.path, FakeEmbedder(dim=32))


def test_one_writer_at_a_time(make_index):
    idx = make_index()
    w = idx.writer()
    with pytest.raises(IndexLockedError, match="another job is writing"):
        idx.writer()
    w.close()
    idx.writer().close()  # free again


def test_uncommitted_changes_are_invisible_and_discarded(make_index, fake_embedder):
    idx = make_index()
    _add(idx, "a.txt", ["committed text about ferries"])
    with idx.writer() as w:
        w.add_document(DocumentInfo(doc="b.txt"), _chunks("b.txt", ["staged text about ferries"]))
        assert {h.chunk.doc for h in idx.search("ferries", 5)} == {"a.txt"}
    # left without commit: gone
    assert {h.chunk.doc for h in Index(idx.path, fake_embedder).search("ferries", 5)} == {"a.txt"}


def test_reader_sees_new_generation_and_old_files_are_tidied(make_index, fake_embedder):
    idx = make_index()
    reader = Index(idx.path, fake_embedder)
    for i in range(4):
        _add(idx, f"d{i}.txt", [f"document number {i} about tides"])
    assert len(reader.search("tides", 10)) == 4
    segments = idx.path / "segments"
    assert len(list(segments.iterdir())) == 4  # one per commit, each still live
    with idx.writer() as w:
        assert w.optimize(full=True) == 5
    _add(idx, "d4.txt", ["document number 4 about tides"])
    assert sorted(p.name for p in segments.iterdir()) == ["seg-000005-1", "seg-000006-1"]
    assert len(reader.search("tides", 10)) == 5


def test_langchain_adapter_returns_documents_with_metadata(make_index):
    from retrieval.langchain import ArchivistRetriever

    idx = make_index()
    _add(idx, "hr/a.txt", ["parental leave is eighteen weeks", "the canteen opens at noon"], groups=("hr",))
    _add(idx, "pub/b.txt", ["parental leave questions go to HR"], groups=("everyone",))
    docs = ArchivistRetriever(index=idx, k=2, filter=SearchFilter()).invoke("parental leave")  # the operator's view
    assert len(docs) == 2 and all(d.metadata["chunk_id"] for d in docs)
    assert {d.metadata["doc"] for d in docs} == {"hr/a.txt", "pub/b.txt"}
    docs = ArchivistRetriever(index=idx, k=2, filter=SearchFilter.for_groups(["hr"])).invoke("parental leave")
    assert {d.metadata["doc"] for d in docs} == {"hr/a.txt", "pub/b.txt"}
    # issue 19: no filter is not everything, only what everyone may read
    docs = ArchivistRetriever(index=idx, k=2).invoke("parental leave")
    assert [d.metadata["doc"] for d in docs] == ["pub/b.txt"]
