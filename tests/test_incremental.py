"""Incremental ingestion: skip what did not change, replace what did, drop what is gone,
keep the vectors of what moved; every run recorded as a job."""

import os
import time

import pytest
from conftest import without_echoed_names

from ingest import Chunker, ChunkingOptions, Ingestor, Parser, discover
from ingest.jobs import JobLog
from ingest.sources import SourceSpec, glob_match, source_files
from retrieval import FakeEmbedder, Index


class CountingEmbedder(FakeEmbedder):
    def __init__(self):
        super().__init__(dim=64)
        self.embedded = 0

    def embed(self, texts, *, progress=False):
        self.embedded += len(texts)
        return super().embed(texts)


@pytest.fixture
def setup(tmp_path):
    docs = tmp_path / "docs"
    (docs / "hr").mkdir(parents=True)
    (docs / "hr" / "leave.txt").write_text("Annual leave is twenty five days for every employee.")
    (docs / "hr" / "sick.md").write_text("# Sick leave\n\nA doctor's note is needed from the fourth day.")
    (docs / "it.txt").write_text("The VPN needs a badge and a PIN code.")
    emb = CountingEmbedder()
    index = Index(tmp_path / "index", emb)
    parser = Parser(isolate=False)
    jobs = JobLog(index.path)
    ingestor = Ingestor(index, Chunker(emb.count_tokens, ChunkingOptions(max_tokens=64, target_tokens=40)), parser, jobs=jobs)

    def sync():
        return ingestor.ingest(discover([docs]), sync_prefixes=[""], kind="reindex")

    return docs, index, emb, ingestor, sync


def _docs_found(index, query, k=10):
    return {h.chunk.doc for h in index.search(query, k)}


def test_unchanged_rerun_embeds_nothing(setup):
    docs, index, emb, ingestor, sync = setup
    first = sync()
    assert first.count("added") == 3 and emb.embedded > 0
    gen = index.generation
    emb.embedded = 0
    again = sync()
    assert again.count("unchanged") == 3 and emb.embedded == 0
    assert index.generation == gen  # nothing to commit
    os.utime(docs / "it.txt", (time.time() + 5, time.time() + 5))  # touched, same content
    assert sync().count("unchanged") == 3 and emb.embedded == 0


def test_edited_file_replaces_its_chunks(setup):
    docs, index, emb, ingestor, sync = setup
    sync()
    (docs / "it.txt").write_text("The printer on floor two needs toner.")
    report = sync()
    assert report.count("updated") == 1 and report.count("unchanged") == 2
    assert "it.txt" in _docs_found(index, "printer toner")
    assert all("VPN" not in c.text for c in index.document_chunks("it.txt"))
    assert all("VPN" not in h.chunk.text for h in index.search("VPN badge PIN", 10))


def test_deleted_file_is_gone_from_search_and_answers(setup):
    from qa import Answerer, AnswerOptions, FakeGenerator

    docs, index, emb, ingestor, sync = setup
    sync()
    (docs / "it.txt").unlink()
    report = sync()
    assert report.count("removed") == 1
    assert "it.txt" not in _docs_found(index, "VPN badge PIN code")
    assert "it.txt" not in {d.doc for d in index.documents()} and "it.txt" not in index.files()
    ans = Answerer(index, FakeGenerator(), AnswerOptions(min_confidence=0.0)).ask("What does the VPN need?")
    assert all(h.chunk.doc != "it.txt" for h in ans.hits) and "VPN" not in without_echoed_names(ans.text, ["VPN"])


def test_moved_file_keeps_its_vectors(setup):
    docs, index, emb, ingestor, sync = setup
    sync()
    before = {c.text for c in index.document_chunks("hr/leave.txt")}
    (docs / "policies").mkdir()
    (docs / "hr" / "leave.txt").rename(docs / "policies" / "leave.txt")
    emb.embedded = 0
    report = sync()
    assert emb.embedded == 0, "a moved file must not be embedded again"
    assert report.count("added") == 1 and report.count("removed") == 1
    assert {c.text for c in index.document_chunks("policies/leave.txt")} == before
    assert _docs_found(index, "annual leave twenty five days") >= {"policies/leave.txt"}
    assert "hr/leave.txt" not in _docs_found(index, "annual leave twenty five days")


def test_one_off_ingest_never_deletes(setup, tmp_path):
    docs, index, emb, ingestor, sync = setup
    sync()
    other = tmp_path / "other.txt"
    other.write_text("Canteen menu for Friday: fish soup.")
    report = ingestor.ingest(discover([other]))
    assert report.count("added") == 1 and report.count("removed") == 0
    assert len(index.documents()) == 4


def test_manifest_and_jobs_record_what_happened(setup):
    docs, index, emb, ingestor, sync = setup
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    (docs / "blank.txt").write_text("   ")
    report = sync()
    files = index.files()
    assert files["broken.pdf"]["status"] == "failed" and "PDF" in files["broken.pdf"]["error"]
    assert files["blank.txt"]["status"] == "empty"
    assert files["it.txt"]["status"] == "indexed" and len(files["it.txt"]["hash"]) == 64
    job = ingestor.jobs.get(report.job_id)
    assert job.kind == "reindex" and job.status == "failed"  # a file failed
    assert job.counts == {"added": 3, "failed": 1, "empty": 1} and job.done == 5
    assert any(e["doc"] == "broken.pdf" for e in job.errors)
    # an unchanged failed file is not retried on every run
    again = sync()
    assert again.count("unchanged") == 5


def test_dead_job_is_not_shown_running_forever(setup):
    docs, index, emb, ingestor, sync = setup
    log = ingestor.jobs
    job_id = log.start("ingest", 10)
    log.con.execute("UPDATE jobs SET pid=? WHERE id=?", (2**22 + 12345, job_id))  # no such process
    jobs = log.list()
    dead = next(j for j in jobs if j.id == job_id)
    assert dead.status == "failed" and "stopped" in dead.message


def test_source_globs(tmp_path):
    assert glob_match("a/b/c.pdf", "**/*.pdf") and glob_match("c.pdf", "**/*.pdf")
    assert not glob_match("a/c.pdf", "*.pdf") and glob_match("drafts/x/y.txt", "drafts/**")
    root = tmp_path / "src"
    (root / "drafts").mkdir(parents=True)
    (root / "a.pdf").write_text("x")
    (root / "drafts" / "b.pdf").write_text("x")
    (root / "c.txt").write_text("x")
    spec = SourceSpec(root, name="hr", include=["**/*.pdf", "*.txt"], exclude=["drafts/**"])
    assert [doc for _, doc in source_files(spec)] == ["hr/a.pdf", "hr/c.txt"]
    with pytest.raises(FileNotFoundError):
        source_files(SourceSpec(tmp_path / "missing"))


class _SlowEmbedder(FakeEmbedder):
    """Records which thread embeds, and when, to see the embedding overlap the chunking."""

    def __init__(self, fail_on: str | None = None):
        super().__init__(dim=64)
        self.calls: list[tuple[str, float, float]] = []
        self.fail_on = fail_on

    def embed(self, texts, *, progress=False):
        import threading

        started = time.monotonic()
        if self.fail_on and any(self.fail_on in t for t in texts):
            raise RuntimeError("the embedding runtime ran out of memory")
        time.sleep(0.2)
        self.calls.append((threading.current_thread().name, started, time.monotonic()))
        return super().embed(texts)


class _TimedChunker(Chunker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.times: list[float] = []

    def chunk(self, doc, parsed, groups=()):
        self.times.append(time.monotonic())
        return super().chunk(doc, parsed, groups)


def test_files_are_chunked_while_the_previous_batch_embeds(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        (docs / f"note{i}.txt").write_text(f"Note {i} says the office on floor {i} opens at eight.")
    emb = _SlowEmbedder()
    index = Index(tmp_path / "index", emb)
    chunker = _TimedChunker(emb.count_tokens, ChunkingOptions(max_tokens=64, target_tokens=40))
    with Ingestor(index, chunker, Parser(isolate=False), embed_batch=1) as ingestor:
        report = ingestor.ingest(discover([docs]))
    assert report.count("added") == 6 and len(index.search("office floor opens", 10)) == 6
    assert {name for name, _, _ in emb.calls} == {"archivist-embed_0"}  # never in the job's own thread
    # some file was chunked while an earlier batch was still being embedded
    assert any(start < t < end for _, start, end in emb.calls for t in chunker.times)


class _LoadingEmbedder(_SlowEmbedder):
    """A model that reports itself loaded (or not): a batch is sent early only to a loaded one."""

    def __init__(self, loaded: bool):
        super().__init__()
        self.loaded = loaded
        self.sizes: list[int] = []

    def embed(self, texts, *, progress=False):
        self.sizes.append(len(texts))
        return super().embed(texts)


@pytest.mark.parametrize("loaded", [True, False])
def test_a_loaded_model_gets_a_batch_as_soon_as_it_is_idle_not_when_the_batch_is_full(tmp_path, loaded):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(5):
        (docs / f"note{i}.txt").write_text(f"Note {i} says the office on floor {i} opens at eight.")
    emb = _LoadingEmbedder(loaded)
    index = Index(tmp_path / "index", emb)
    chunker = Chunker(emb.count_tokens, ChunkingOptions(max_tokens=64, target_tokens=40))
    with Ingestor(index, chunker, Parser(isolate=False), embed_batch=1000) as ingestor:
        report = ingestor.ingest(discover([docs]))
    assert report.count("added") == 5 and len(index.search("office floor opens", 10)) == 5
    assert sum(emb.sizes) == 5
    if loaded:  # the first file's chunk went at once, while the others were still to come
        assert emb.sizes[0] == 1 and len(emb.sizes) > 1
    else:  # a model still loading waits for a full batch (here: the end of the job)
        assert emb.sizes == [5]


def test_a_failing_embedding_fails_the_job_and_keeps_the_last_commit(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The canteen serves lunch from noon.")
    emb = _SlowEmbedder()
    index = Index(tmp_path / "index", emb)
    chunker = Chunker(emb.count_tokens, ChunkingOptions(max_tokens=64, target_tokens=40))
    with Ingestor(index, chunker, Parser(isolate=False), embed_batch=1) as ingestor:
        ingestor.ingest(discover([docs]))
    gen = index.generation
    (docs / "b.txt").write_text("The poison pill sentence breaks the embedder.")
    emb.fail_on = "poison"
    with Ingestor(index, chunker, Parser(isolate=False), embed_batch=1) as ingestor:
        with pytest.raises(RuntimeError, match="out of memory"):
            ingestor.ingest(discover([docs]))
    assert index.generation == gen
    assert {h.chunk.doc for h in index.search("canteen lunch poison", 10)} == {"a.txt"}
