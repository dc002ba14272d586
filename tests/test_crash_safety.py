"""A killed job never breaks the index: readers see the last commit, the next run finishes.
And readers never see half of a commit while a writer works."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time


from conftest import ROOT
from retrieval import FakeEmbedder, Index

N_FILES = 150


def _env(**extra):
    env = dict(os.environ)
    env.update({
        "ARCHIVIST_EMBEDDER__MODEL": "fake:64",
        "ARCHIVIST_INGEST__COMMIT_EVERY": "7",
        "ARCHIVIST_INGEST__ISOLATE_PARSER": "false",
        "PYTHONPATH": str(ROOT),
    })
    env.update(extra)
    return env


def _make_docs(folder, version="alpha"):
    folder.mkdir(exist_ok=True)
    for i in range(N_FILES):
        (folder / f"doc{i:03d}.txt").write_text(
            f"Document {i} is about {version} topic{i}. " + " ".join(f"{version} word{j}" for j in range(60)))


def _ingest_cmd(folder, index_dir):
    return [sys.executable, "-m", "ui.cli", "ingest", str(folder), "--index", str(index_dir), "--no-progress"]


def _check_consistent(index_dir):
    con = sqlite3.connect(index_dir / "archivist.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    index = Index(index_dir, FakeEmbedder(dim=64))
    try:
        if index.generation == 0:
            return 0
        docs = {d.doc: d for d in index.documents()}
        for d in docs.values():
            assert len(index.document_chunks(d.doc)) == d.chunks, d.doc
        for mode in ("hybrid", "dense", "lexical"):
            for h in index.search("document topic word1", 10, mode=mode):
                assert h.chunk.doc in docs
        assert len(index) == sum(d.chunks for d in docs.values())
        return len(docs)
    finally:
        index.close()


def _job_status(index_dir, pid: int) -> str | None:
    """The status of the ingest run ``pid``'s job row, None before it has written one (read-only,
    as a bystander)."""
    db = index_dir / "archivist.sqlite"
    if not db.exists():
        return None
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        row = con.execute("SELECT status FROM jobs WHERE pid=?", (pid,)).fetchone()
    except sqlite3.OperationalError:  # no jobs table yet
        return None
    finally:
        con.close()
    return row[0] if row else None


def test_sigkill_at_random_points_never_breaks_the_index(tmp_path):
    folder = tmp_path / "docs"
    index_dir = tmp_path / "index"
    _make_docs(folder, "v0")
    t0 = time.monotonic()
    first = subprocess.run(_ingest_cmd(folder, index_dir), env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    full = time.monotonic() - t0
    assert first.returncode == 0, first.stderr
    rng = random.Random(1234)
    killed: dict[int, str | None] = {}  # pid -> its job's status when it was killed (None: no row yet)
    for run in range(1, 13):
        version = f"v{run}"
        _make_docs(folder, version)  # every file changed: the run has real work to do
        proc = subprocess.Popen(_ingest_cmd(folder, index_dir), env=_env(), cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.15, 0.9) * full)
        if proc.poll() is None:
            status = _job_status(index_dir, proc.pid)
            proc.send_signal(signal.SIGKILL)
            killed[proc.pid] = status
        proc.wait(timeout=60)
        assert _check_consistent(index_dir) == N_FILES  # the last commit, whole and searchable
        index = Index(index_dir, FakeEmbedder(dim=64))
        for d in index.documents()[:20]:
            texts = {c.text.split(" is about ")[1].split()[0] for c in index.document_chunks(d.doc)}
            assert len(texts) == 1, f"{d.doc} mixes versions {texts}"
        index.close()
    kills = len(killed)
    assert kills >= 10, f"the test must really kill the process most of the time ({kills} kills, full run {full:.1f} s)"
    done = subprocess.run(_ingest_cmd(folder, index_dir), env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _check_consistent(index_dir) == N_FILES
    index = Index(index_dir, FakeEmbedder(dim=64))
    assert all("v12" in c.text for d in index.documents() for c in index.document_chunks(d.doc))
    index.close()
    jobs = subprocess.run([sys.executable, "-m", "ui.cli", "jobs", "--index", str(index_dir), "-n", "50", "--json"],
                          env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    import json

    rows = {r["pid"]: r["status"] for r in json.loads(jobs.stdout)}
    # every run that was not killed succeeded; a run killed while its job was running is marked
    # failed; one killed after its job had finished (while exiting) stays succeeded; one killed
    # before it wrote its job row has none
    assert all(status == "succeeded" for pid, status in rows.items() if pid not in killed), rows
    for pid, before in killed.items():
        expected = {None: (None, "failed"), "running": ("failed",), "failed": ("failed",),
                    "succeeded": ("succeeded",)}[before]
        assert rows.get(pid) in expected, (before, rows.get(pid))
    assert "running" in killed.values(), f"no run was killed while its job was running: {killed}"


def test_readers_never_see_a_half_commit(tmp_path):
    """Every file says either 'alpha' or 'beta'; a reindex rewrites all of them in one commit.
    A reader searching meanwhile must always get results from one version only."""
    folder = tmp_path / "docs"
    _make_docs(folder, "alpha")
    index_dir = tmp_path / "index"
    env = _env(ARCHIVIST_INGEST__COMMIT_EVERY="100000")
    assert subprocess.run(_ingest_cmd(folder, index_dir), env=env, cwd=tmp_path, capture_output=True, timeout=300).returncode == 0
    reader = Index(index_dir, FakeEmbedder(dim=64))
    errors: list = []
    versions: set = set()
    stop = threading.Event()

    def search_loop():
        while not stop.is_set():
            try:
                hits = reader.search("document topic alpha beta word1", 20)
                kinds = {"alpha" if "alpha" in h.chunk.text else "beta" for h in hits}
                if len(kinds) != 1:
                    errors.append(f"mixed results: {kinds}")
                versions.update(kinds)
            except Exception as exc:  # noqa: BLE001 - any error is a failure here
                errors.append(repr(exc))

    t = threading.Thread(target=search_loop)
    t.start()
    try:
        for version in ("beta", "alpha", "beta"):
            _make_docs(folder, version)
            res = subprocess.run(_ingest_cmd(folder, index_dir), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
            assert res.returncode == 0, res.stderr
            time.sleep(0.3)
    finally:
        stop.set()
        t.join()
    assert not errors, errors[:5]
    assert versions == {"alpha", "beta"}
