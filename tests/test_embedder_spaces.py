"""Re-embedding an index in a fine-tuned embedder's space: one commit, searches see one space,
a kill midway leaves the old one; and the data and keep test of the embedder's adaptation."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from retrieval import Chunk, DocumentInfo, FakeEmbedder, Index

ROOT = Path(__file__).resolve().parent.parent

DOCS = {
    "leave.txt": "Annual leave. Every employee receives 25 days of paid annual leave per year.",
    "holiday-rota.txt": "Holiday rota. The holiday rota for the warehouse is posted every Monday.",
    "travel.txt": "Travel. Hotel costs are refunded up to EUR 140 per night on business trips.",
}


class TunedFake(FakeEmbedder):
    """A 'fine-tuned' space: it has learnt that employees say holiday for leave."""

    def __init__(self, folder: Path, name: str = "finetuned:v1", dim: int = 64):
        super().__init__(dim=dim)
        self.name, self.path, self.own_space = name, folder, True
        self.embedded = 0

    def embed_query(self, text):
        return super().embed_query(text.lower().replace("holiday", "annual leave"))

    def embed(self, texts, *, progress=False):
        self.embedded += len(texts)
        return super().embed(texts)


def loader(folder, name):
    return TunedFake(Path(folder), name)


def build(path: Path, base=None) -> Index:
    index = Index(path, base or FakeEmbedder(dim=64), space_loader=loader)
    with index.writer() as w:
        for doc, text in DOCS.items():
            w.add_document(DocumentInfo(doc=doc, format="txt"), [Chunk(Chunk.make_id(doc, 0, text), doc, text)])
        w.commit()
    return index


def top_doc(index: Index, query: str, **kw) -> str:
    return index.search(query, 1, mode="dense", **kw)[0].chunk.doc


def test_a_reembedding_commit_moves_the_index_into_the_tuned_space_and_back(tmp_path):
    index = build(tmp_path / "index")
    folder = tmp_path / "models" / "v1" / "embedder"
    folder.mkdir(parents=True)
    ids_before = sorted(c.id for d in index.documents() for c in index.document_chunks(d.doc))
    assert top_doc(index, "holiday") == "holiday-rota.txt"  # the shipped space reads words
    gen = index.generation
    with index.writer() as w:
        assert w.reembed(TunedFake(folder)) == gen + 1
    assert index.space().name == "finetuned:v1" and index.embedder.name == "finetuned:v1"
    assert top_doc(index, "holiday") == "leave.txt"
    assert sorted(c.id for d in index.documents() for c in index.document_chunks(d.doc)) == ids_before
    assert index.search("holiday", 3, mode="lexical")[0].chunk.doc == "holiday-rota.txt"  # words unchanged

    reopened = Index(tmp_path / "index", FakeEmbedder(dim=64), space_loader=loader)  # a server started later
    assert reopened.embedder.name == "finetuned:v1" and top_doc(reopened, "holiday") == "leave.txt"
    assert reopened.space().path == os.path.relpath(folder, tmp_path / "index")  # the data folder may move

    with reopened.writer() as w:  # new documents are embedded in the space in use
        text = "Parental leave. The non-birth parent receives 4 weeks of paid holiday."
        w.add_document(DocumentInfo(doc="parental.txt", format="txt"), [Chunk(Chunk.make_id("p", 0, text), "parental.txt", text)])
        w.commit()
    assert reopened.space().name == "finetuned:v1"

    with reopened.writer() as w:  # roll back: the shipped space again
        w.reembed(reopened.base_embedder)
    plain = Index(tmp_path / "index", FakeEmbedder(dim=64))  # no loader needed any more
    assert plain.space().name == "fake-hash-64" and top_doc(plain, "holiday") == "holiday-rota.txt"
    assert len(plain) == 4


def test_vectors_computed_when_the_model_was_tested_are_reused(tmp_path):
    index = build(tmp_path / "index")
    tuned = TunedFake(tmp_path / "emb")
    known = index.embed_live(tuned).by_id()
    tuned.embedded = 0
    first = next(iter(known))
    del known[first]  # a chunk added after the test: the only one embedded at promotion
    with index.writer() as w:
        w.reembed(tuned, known=known)
    assert tuned.embedded == 1 and index.space().name == "finetuned:v1"


def test_a_query_embedded_in_the_old_space_is_embedded_again_after_the_flip(tmp_path):
    index = build(tmp_path / "index")
    old_vector = index.embedder.embed_query("holiday")
    old_name = index.embedder.name
    (tmp_path / "emb").mkdir()
    with index.writer() as w:
        w.reembed(TunedFake(tmp_path / "emb"))
    got = top_doc(index, "holiday", query_vector=old_vector, query_space=old_name)
    assert got == "leave.txt"  # compared in the new space, not the old vector against new vectors


def test_a_view_in_another_space_stays_on_its_generation(tmp_path):
    index = build(tmp_path / "index")
    tuned = TunedFake(tmp_path / "emb")
    view = index.in_space(tuned, index.embed_live(tuned))
    assert top_doc(view, "holiday") == "leave.txt"
    assert top_doc(index, "holiday") == "holiday-rota.txt"  # the index itself is untouched
    assert index.space().name == "fake-hash-64"
    with index.writer() as w:
        w.remove_document("leave.txt")
        w.commit()
    assert top_doc(view, "holiday") == "leave.txt"  # pinned: what it was tested on


def test_searches_during_a_reembedding_see_one_space_or_the_other(tmp_path):
    index = build(tmp_path / "index")
    (tmp_path / "emb").mkdir()
    seen, errors, stop = set(), [], threading.Event()

    def search():
        reader = Index(tmp_path / "index", FakeEmbedder(dim=64), space_loader=loader)
        while not stop.is_set():
            try:
                seen.add(top_doc(reader, "holiday"))
            except Exception as exc:  # noqa: BLE001 - any failure is the test's failure
                errors.append(exc)

    threads = [threading.Thread(target=search) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    with index.writer() as w:
        w.reembed(TunedFake(tmp_path / "emb"))
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, "; ".join(f"{type(e).__name__}: {e}" for e in errors)
    assert seen == {"holiday-rota.txt", "leave.txt"}


SLOW_REEMBED = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    sys.path.insert(0, sys.argv[3])
    from retrieval import FakeEmbedder, Index
    from test_embedder_spaces import TunedFake

    class Slow(TunedFake):
        def embed(self, texts, *, progress=False):
            print("embedding", flush=True)
            time.sleep(30)
            return super().embed(texts)

    index = Index(sys.argv[2], FakeEmbedder(dim=64))
    with index.writer() as w:
        w.reembed(Slow(Path(sys.argv[2]).parent / "emb"), batch=1)
""")


def test_a_kill_midway_through_reembedding_leaves_the_old_space_searchable(tmp_path):
    index = build(tmp_path / "index")
    gen = index.generation
    script = tmp_path / "slow.py"
    script.write_text(SLOW_REEMBED)
    proc = subprocess.Popen([sys.executable, str(script), str(ROOT), str(tmp_path / "index"), str(ROOT / "tests")],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "embedding"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
    reader = Index(tmp_path / "index", FakeEmbedder(dim=64))
    assert reader.generation == gen and reader.space().name == "fake-hash-64"
    assert top_doc(reader, "holiday") == "holiday-rota.txt"
    (tmp_path / "emb").mkdir()
    with reader.writer() as w:  # the dead writer's lock went with it
        w.reembed(TunedFake(tmp_path / "emb"))
    assert reader.space().name == "finetuned:v1"


def test_an_index_in_a_space_whose_model_is_gone_says_what_to_do(tmp_path):
    from retrieval.errors import IndexMismatchError

    index = build(tmp_path / "index")
    folder = tmp_path / "models" / "v1" / "embedder"
    folder.mkdir(parents=True)
    with index.writer() as w:
        w.reembed(TunedFake(folder))
    folder.rmdir()
    with pytest.raises(IndexMismatchError, match="rollback"):
        Index(tmp_path / "index", FakeEmbedder(dim=64)).search("leave", 1)
    with pytest.raises(IndexMismatchError, match="was built with the embedder"):
        build(tmp_path / "other")
        Index(tmp_path / "other", FakeEmbedder(dim=32))


def test_live_vectors_round_trip_through_their_file(tmp_path):
    index = build(tmp_path / "index")
    live = index.embed_live(index.embedder)
    live.save(tmp_path / "vectors.npz")
    from retrieval.index import LiveVectors

    known = LiveVectors.load_known(tmp_path / "vectors.npz")
    assert set(known) == set(live.ids)
    assert all(np.allclose(known[i], v) for i, v in zip(live.ids, live.vectors))
    assert LiveVectors.load_known(tmp_path / "missing.npz") == {}
