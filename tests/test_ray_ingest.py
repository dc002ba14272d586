"""`archivist ingest --ray` against a local Ray head: the same index as the plain path (same
documents, chunks, and vectors within float tolerance, from the real bundled embedder run by
the cluster's actors), bad files reported by name as locally, a worker that dies retried and then
its file reported, and a bad address one clear line."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, SAMPLES, free_port

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head of 2 CPUs on loopback, stopped with every process it started."""
    from ingest.ray_cluster import LocalHead

    with LocalHead(cpus=2) as head:
        yield head.address


def _docs(tmp_path):
    folder = tmp_path / "docs"
    shutil.copytree(SAMPLES / "docs", folder)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\nnot really a pdf")
    (folder / "nothing.txt").write_text("")
    return folder


def _env(tmp_path, name):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVIST_")}
    env.update(ARCHIVIST_DATA_DIR=str(tmp_path / name), ARCHIVIST_ACCESS__DEFAULT="everyone",
               ARCHIVIST_EMBEDDER__RUNTIME="torch", ARCHIVIST_ANSWER__CALIBRATE_AFTER_INGEST="false",
               ARCHIVIST_INGEST__OCR="false", PYTHONPATH=str(ROOT))
    return env


def _ingest(tmp_path, name, folder, *extra):
    run = subprocess.run([sys.executable, "-m", "ui.cli", "ingest", str(folder), "--json", *extra],
                         env=_env(tmp_path, name), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode in (0, 1), run.stderr[-3000:]
    return json.loads(run.stdout)


def _contents(data_dir):
    from retrieval import make_embedder
    from retrieval.index import Index

    index = Index(data_dir / "index", make_embedder("all-MiniLM-L6-v2"))
    try:
        out = {}
        for d in index.documents():
            chunks, vectors = index.stored_vectors(d.doc)
            out[d.doc] = ([(c.id, c.text, c.ordinal, c.page) for c in chunks], np.asarray(vectors))
        return out
    finally:
        index.close()


def _outcomes(report):
    return {r["doc"]: (r["status"], r.get("reason") or "", r.get("chunks")) for r in report["files"]}


def test_ingest_on_ray_gives_the_index_the_plain_path_gives(tmp_path, ray_head):
    folder = _docs(tmp_path)
    plain = _ingest(tmp_path, "plain", folder)
    on_ray = _ingest(tmp_path, "ray", folder, "--ray", ray_head)
    assert _outcomes(on_ray) == _outcomes(plain)
    assert _outcomes(on_ray)["broken.pdf"][0] == "failed"  # reported by name, the job went on
    assert _outcomes(on_ray)["nothing.txt"][0] == "empty"
    a, b = _contents(tmp_path / "plain"), _contents(tmp_path / "ray")
    assert sorted(a) == sorted(b) and len(a) >= 5
    for doc in a:
        assert a[doc][0] == b[doc][0], doc  # the same chunks, in order
        assert a[doc][1].shape == b[doc][1].shape
        np.testing.assert_allclose(a[doc][1], b[doc][1], atol=2e-4, err_msg=doc)
    # a rerun on the cluster finds nothing changed
    again = _ingest(tmp_path, "ray", folder, "--ray", ray_head)
    assert {s for s, _r, _c in _outcomes(again).values()} <= {"unchanged", "failed", "empty"}


def test_a_cluster_that_is_not_there_is_one_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "ui.cli", "ingest", str(SAMPLES / "docs"), "--ray",
                          f"127.0.0.1:{free_port()}"], env=_env(tmp_path, "nowhere"), cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert "cannot reach the Ray cluster" in run.stderr and "ray start --head" in run.stderr


def test_a_worker_that_dies_is_retried_then_its_file_is_reported(tmp_path, ray_head):
    from ingest.blocks import ParseError
    from ingest.ray_cluster import RayCluster, RayOptions, RayParser

    marker = tmp_path / "died-once"

    def dies_once(name, data, ocr, limits):
        import os

        from ingest.ray_cluster import parse_bytes

        if not marker.exists():
            marker.touch()
            os._exit(1)  # the worker process dies, as on a segfault or the OOM killer
        return parse_bytes(name, data, ocr, limits)

    def always_dies(name, data, ocr, limits):
        import os

        os._exit(1)

    note = tmp_path / "note.txt"
    note.write_text("The ferry to the north island leaves at noon every Sunday from pier four.")
    for work, retried in ((dies_once, True), (always_dies, False)):
        parser = RayParser(RayCluster(RayOptions(ray_head, retries=1)), timeout=120, work=work)
        try:
            if retried:
                assert "ferry" in parser.parse(note).blocks[0].text and marker.exists()
            else:
                with pytest.raises(ParseError, match=r"the Ray worker failed on this file \(2 tries"):
                    parser.parse(note)
        finally:
            parser.close()
