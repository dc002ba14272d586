"""Segments: a commit writes what changed, merges and removals keep every score as a fresh
build would give it, the ANN serves large segments, and an index from before segments reads."""

import json
import sqlite3

import numpy as np
import pytest

from retrieval import Chunk, DocumentInfo, FakeEmbedder, Index, SearchFilter, chunk_index_text
from retrieval.segments import SegmentOptions, plan_merges

QUERIES = ["annual leave days", "vpn badge access", "salary review may", "parking permit visitors",
           "quarterly budget engineering"]
WORDS = ("annual leave days salary review may vpn badge access parking permit visitors quarterly budget "
         "engineering canteen ferry crane tides policy travel hotel meal allowance laptop").split()


def _doc_texts(i: int, rng) -> list[str]:
    return [" ".join(rng.choice(WORDS, 9)) + f" doc{i}" for _ in range(3)]


def _chunks(doc, texts, groups=("everyone",)):
    return [Chunk(id=Chunk.make_id(doc, i, t), doc=doc, text=t, ordinal=i, groups=tuple(groups))
            for i, t in enumerate(texts)]


def _commit(index, docs: dict[str, list[str]], remove=(), groups=("everyone",)):
    with index.writer() as w:
        for doc, texts in docs.items():
            w.add_document(DocumentInfo(doc=doc, hash=doc), _chunks(doc, texts, groups))
        for doc in remove:
            w.remove_document(doc)
        return w.commit()


def _results(index, query, mode, flt=None):
    return [(h.chunk.id, round(h.score, 5)) for h in index.search(query, 8, mode=mode, filter=flt, rerank=False)]


def _corpus(n_docs=40, seed=0):
    rng = np.random.default_rng(seed)
    return {f"d{i:03d}.txt": _doc_texts(i, rng) for i in range(n_docs)}


@pytest.fixture
def embedder():
    return FakeEmbedder(dim=32)


def test_many_commits_merged_and_removed_score_as_one_fresh_build(tmp_path, embedder):
    corpus = _corpus()
    removed = ["d003.txt", "d017.txt", "d031.txt"]
    piecewise = Index(tmp_path / "a", embedder, layout=SegmentOptions(merge_factor=3, merge_inline_max=40))
    docs = list(corpus.items())
    for at in range(0, len(docs), 4):  # ten commits, some merged within a commit, some not
        _commit(piecewise, dict(docs[at:at + 4]))
    _commit(piecewise, {}, remove=removed)
    fresh = Index(tmp_path / "b", embedder)
    _commit(fresh, {d: t for d, t in corpus.items() if d not in removed})
    assert 1 < piecewise.layout_stats()["segments"] < 10
    for mode in ("lexical", "dense", "hybrid"):
        for q in QUERIES:
            assert _results(piecewise, q, mode) == _results(fresh, q, mode), (mode, q)
    with piecewise.writer() as w:
        w.optimize(full=True)
    assert piecewise.layout_stats() == {**piecewise.layout_stats(), "segments": 1, "dead_chunks": 0}
    for q in QUERIES:
        assert _results(piecewise, q, "hybrid") == _results(fresh, q, "hybrid")


def test_a_removed_or_restricted_chunk_shifts_no_reader_score(tmp_path, embedder):
    """BM25 statistics count only what the reader may see, across every segment."""
    corpus = _corpus(12)
    index = Index(tmp_path / "a", embedder)
    _commit(index, dict(list(corpus.items())[:6]))
    _commit(index, {"secret.txt": ["salary review salary review board only"] * 3}, groups=("board",))
    _commit(index, dict(list(corpus.items())[6:]))
    alone = Index(tmp_path / "b", embedder)
    _commit(alone, corpus)
    staff = SearchFilter.for_groups(["staff"])
    for mode in ("lexical", "dense", "hybrid"):
        assert _results(index, "salary review", mode, staff) == _results(alone, "salary review", mode, staff)
    board = SearchFilter.for_groups(["board"])
    assert index.search("salary review", 1, filter=board)[0].chunk.doc == "secret.txt"


def test_a_commit_writes_what_changed_not_the_index(tmp_path, embedder):
    """Adding or removing 10 documents writes about as many bytes into a 10x larger index."""

    def written_by(index, change) -> int:
        before = {p: p.stat().st_mtime_ns for p in index.path.rglob("*") if p.is_file()}
        change()
        return sum(p.stat().st_size for p in index.path.rglob("*")
                   if p.is_file() and "sqlite" not in p.name and before.get(p) != p.stat().st_mtime_ns)

    costs = {}
    for size in (200, 2000):
        index = Index(tmp_path / str(size), embedder)
        _commit(index, _corpus(size, seed=1))
        extra = {f"new{i}.txt": _doc_texts(1000 + i, np.random.default_rng(i)) for i in range(10)}
        added = written_by(index, lambda: _commit(index, extra))
        removed = written_by(index, lambda: _commit(index, {}, remove=[f"d{i:03d}.txt" for i in range(10)]))
        costs[size] = (added, removed)
        assert len(index) == 3 * size
    (small_add, small_remove), (big_add, big_remove) = costs[200], costs[2000]
    assert big_add <= 2 * small_add and big_remove <= 2 * small_remove, costs


def test_large_segments_are_searched_by_ivf_with_exact_scores_and_filters(tmp_path):
    embedder = FakeEmbedder(dim=16)
    index = Index(tmp_path / "a", embedder, layout=SegmentOptions(ann_threshold=1000, nprobe=16))
    rng = np.random.default_rng(3)
    docs = {f"d{i:04d}.txt": [" ".join(rng.choice(WORDS, 6)) + f" w{i}"] for i in range(1500)}
    _commit(index, {d: t for d, t in docs.items() if int(d[1:5]) % 2 == 0}, groups=("even",))
    _commit(index, {d: t for d, t in docs.items() if int(d[1:5]) % 2 == 1}, groups=("odd",))
    assert "ann_chunks" in index.layout_stats() and index.layout_stats()["ann_chunks"] == 0
    with index.writer() as w:
        w.optimize(full=True)
    stats = index.layout_stats()
    assert stats["ann_chunks"] == 1500 and stats["ann_recall_at_10"] >= 0.9
    assert (index.path / "segments" / "seg-000003-1" / "ann.faiss").exists()
    query = "annual leave w7"
    hits = index.search(query, 5, mode="dense", rerank=False)
    qv = embedder.embed_query(query)
    for h in hits:  # every score is the true cosine, not the 8-bit code's estimate
        assert h.score == pytest.approx(float(embedder.embed([chunk_index_text(h.chunk)])[0] @ qv), abs=1e-5)
    odd = index.search(query, 20, mode="dense", filter=SearchFilter.for_groups(["odd"]), rerank=False)
    assert len(odd) == 20 and all(int(h.chunk.doc[1:5]) % 2 == 1 for h in odd)


def test_an_index_from_before_segments_is_read_then_written_as_segments(tmp_path, embedder):
    corpus = _corpus(10)
    index = Index(tmp_path / "a", embedder)
    _commit(index, corpus)
    expected = {q: _results(index, q, "hybrid") for q in QUERIES}
    index.close()
    _as_legacy(tmp_path / "a")
    old = Index(tmp_path / "a", embedder)
    assert {q: _results(old, q, "hybrid") for q in QUERIES} == expected
    _commit(old, {"new.txt": ["annual leave days for new staff"]})
    _commit(old, {"newer.txt": ["parking permit for visitors"]})
    assert not list((tmp_path / "a").glob("vectors-*")) and not list((tmp_path / "a").glob("lexical-*"))
    assert old.search("annual leave days for new staff", 1)[0].chunk.doc == "new.txt"
    assert len(old) == 32


def _as_legacy(path):
    """Rewrite generation 1 of a fresh index as the layout before segments wrote it."""
    import faiss
    from scipy import sparse

    con = sqlite3.connect(path / "archivist.sqlite")
    sid = json.loads(con.execute("SELECT value FROM meta WHERE key='segments-1'").fetchone()[0])[0]["id"]
    folder = path / "segments" / sid
    vids, vectors = np.load(folder / "vids.npy"), np.load(folder / "vectors.npy")
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    flat.add_with_ids(vectors, vids)
    faiss.write_index(flat, str(path / "vectors-1.faiss"))
    lexical = path / "lexical-1"
    lexical.mkdir()
    np.save(lexical / "ids.npy", vids)
    terms = json.loads((folder / "lexical" / "terms.json").read_text())
    arrays = {n: np.load(folder / "lexical" / f"{n}.npy") for n in ("indptr", "rows", "tf")}
    counts = sparse.csc_matrix((arrays["tf"], arrays["rows"], arrays["indptr"]), shape=(len(vids), len(terms)))
    sparse.save_npz(lexical / "counts.npz", counts)
    (lexical / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(terms)}))
    (lexical / "ok.json").write_text(json.dumps({"n": len(vids)}))
    con.execute("DELETE FROM meta WHERE key IN ('segments-1', 'files-1')")
    con.commit()
    con.close()
    import shutil

    shutil.rmtree(path / "segments")


def test_merges_go_by_size_tier_and_large_ones_wait_for_optimize():
    options = SegmentOptions(merge_factor=4, merge_inline_max=100)
    assert plan_merges([(10, 10)] * 3, options, 100) == []
    assert plan_merges([(10, 10)] * 4, options, 100) == [[0, 1, 2, 3]]
    assert plan_merges([(40, 40)] * 4, options, 100) == []  # 160 chunks: more than a commit may merge
    assert plan_merges([(40, 40)] * 4, options, None) == [[0, 1, 2, 3]]
    assert plan_merges([(100, 30), (10, 10)], options, 100) == [[0]]  # mostly removed: rewritten alone
    with pytest.raises(ValueError, match="merge_factor"):
        SegmentOptions(merge_factor=1)


def test_a_reader_follows_the_index_link_to_a_newer_copy(tmp_path, embedder):
    """A replica syncs a new copy and points the link at it (docs/deploy.md): the running reader
    answers from the new copy at its next search."""
    import shutil

    first = tmp_path / "copy-1"
    _commit(Index(first, embedder), {"a.txt": ["the ferry leaves at nine"]})
    link = tmp_path / "index"
    link.symlink_to(first)
    reader = Index(link, embedder)
    assert [h.chunk.doc for h in reader.search("ferry", 5)] == ["a.txt"]
    second = tmp_path / "copy-2"
    shutil.copytree(first, second)
    _commit(Index(second, embedder), {"b.txt": ["the crane lifts containers"]})
    tmp_link = tmp_path / "index.new"
    tmp_link.symlink_to(second)
    tmp_link.replace(link)  # the flip: one rename
    assert reader.search("crane containers", 1)[0].chunk.doc == "b.txt"
    assert reader.generation == 2


def test_a_segment_tidied_away_while_it_is_read_is_read_again_not_called_damaged(tmp_path):
    """A commit may remove an old generation's segment while a reader is part way through its files:
    whatever the partial read raised, the folder being gone means "read the generation again" (a
    FileNotFoundError the reader retries on), not a damaged index; a folder still there is damage."""
    from retrieval.errors import IndexCorruptError
    from retrieval.segments import _reading

    def torn():
        raise ValueError("cannot reshape array of size 0")

    with pytest.raises(FileNotFoundError):
        _reading(tmp_path / "seg-gone", "vectors.npy", torn)
    (tmp_path / "seg-here").mkdir()
    with pytest.raises(IndexCorruptError, match="damaged"):
        _reading(tmp_path / "seg-here", "vectors.npy", torn)


def test_a_parse_that_failed_in_another_thread_is_read_again_not_called_damaged(tmp_path):
    """CPython 3.11's AST builder shares its depth count between threads (python/cpython#106905):
    numpy parses a .npy header with it, so a reader could see "SystemError: AST constructor recursion
    depth mismatch" from a sound file. The arrays of the index wait for one lock; a clash with code
    elsewhere is read again, and a file really damaged is still called so."""
    import threading

    from retrieval.errors import IndexCorruptError
    from retrieval.integrity import NUMPY_HEADERS, load_array
    from retrieval.segments import _reading

    (tmp_path / "seg").mkdir()
    calls = []

    def clashing_once():
        calls.append(1)
        if len(calls) == 1:
            raise SystemError("AST constructor recursion depth mismatch (before=42, after=54)")
        return "read"

    assert _reading(tmp_path / "seg", "vids.npy", clashing_once) == "read" and len(calls) == 2
    with pytest.raises(IndexCorruptError, match="damaged"):
        _reading(tmp_path / "seg", "vids.npy", lambda: (_ for _ in ()).throw(SystemError("another fault")))

    np.save(tmp_path / "seg" / "vids.npy", np.arange(3))
    got = []
    with NUMPY_HEADERS:  # a header being parsed: another thread's load waits for it
        t = threading.Thread(target=lambda: got.append(load_array(tmp_path / "seg" / "vids.npy", "r")))
        t.start()
        t.join(0.2)
        assert t.is_alive() and not got
    t.join()
    assert list(got[0]) == [0, 1, 2]
