"""Serving out (docs/deploy.md): two API processes answer from one index on one volume while a
third process reindexes it (a new folder of the sources); every answer comes from a whole commit,
and both servers see the new documents once it is committed."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from conftest import ROOT, free_port, wait_until_listening

N_OLD, N_NEW = 30, 120


def _notes(folder, count, topic):
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"{topic}{i:03d}.txt").write_text(f"Note {i} about {topic}. The {topic} schedule {i} is "
                                                     f"posted on the {topic} board every week.")
    return folder


def _search(port, token, query):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/search", method="POST",
                                     data=json.dumps({"query": query, "k": 200}).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return [r["doc"] for r in json.loads(response.read())["results"]]


def test_two_servers_answer_from_one_index_while_a_third_process_ingests(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVIST_")}
    env.update(ARCHIVIST_DATA_DIR=str(tmp_path / "data"), ARCHIVIST_ACCESS__DEFAULT="everyone",
               ARCHIVIST_EMBEDDER__MODEL="fake:64", ARCHIVIST_GENERATOR__BACKEND="fake",
               ARCHIVIST_INGEST__COMMIT_EVERY="10", ARCHIVIST_INGEST__ISOLATE_PARSER="false",
               ARCHIVIST_ANSWER__CALIBRATE_AFTER_INGEST="false", PYTHONPATH=str(ROOT))

    def cli(*argv):
        return subprocess.run([sys.executable, "-m", "ui.cli", *argv], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)

    old, new = _notes(tmp_path / "old", N_OLD, "ferry"), tmp_path / "new"
    new.mkdir()
    (tmp_path / "archivist.toml").write_text(f'[[sources]]\npath = "{old}"\nname = "ferry"\n\n'
                                             f'[[sources]]\npath = "{new}"\nname = "crane"\n')
    first = cli("reindex", "--no-progress")
    assert first.returncode == 0, first.stderr
    assert cli("users", "add", "erin", "--groups", "staff", "--random-password").returncode == 0
    token = cli("tokens", "create", "erin").stdout.strip()
    ports = [free_port(), free_port()]
    servers = [subprocess.Popen([sys.executable, "-m", "ui.cli", "api", "--host", "127.0.0.1", "--port", str(p)],
                                env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True) for p in ports]
    writer = None
    try:
        deadline = time.monotonic() + 120
        for port, proc in zip(ports, servers):
            wait_until_listening(port, proc, "the API", deadline)
        for port in ports:
            assert len(_search(port, token, "ferry schedule")) == N_OLD
        new.rmdir()
        _notes(new, N_NEW, "crane")
        writer = subprocess.Popen([sys.executable, "-m", "ui.cli", "reindex", "--no-progress"],
                                  env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, start_new_session=True)
        seen = set()
        while writer.poll() is None:  # while it commits every 10 files
            for port in ports:
                docs = _search(port, token, "crane schedule board")
                cranes = [d for d in docs if d.startswith("crane")]
                assert len(cranes) % 10 == 0 or len(cranes) == N_NEW, cranes  # whole commits only
                seen.add(len(cranes))
                assert sum(d.startswith("ferry") for d in _search(port, token, "ferry schedule")) == N_OLD
        assert writer.returncode == 0, writer.stderr.read().decode()
        assert len(seen - {0, N_NEW}) >= 1, f"the servers never answered mid-ingest ({seen})"
        for port in ports:
            assert sum(d.startswith("crane") for d in _search(port, token, "crane schedule board")) == N_NEW
    finally:
        for proc in servers + ([writer] if writer else []):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in servers + ([writer] if writer else []):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    for port in ports:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, "a server outlived the test"


def test_servers_starting_at_once_each_write_their_card_whole(tmp_path):
    """Several servers of one data folder write server.json at the same moment: each write is
    whole, none fails on another's temporary file, none is left behind, and the card stays private."""
    from concurrent.futures import ThreadPoolExecutor

    from ui.auth import write_private_json

    path = tmp_path / "server.json"
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: write_private_json(path, {"server": {"n": i}}), range(300)))
    assert json.loads(path.read_text())["server"]["n"] in range(300)
    assert [p.name for p in tmp_path.iterdir()] == ["server.json"]
    assert path.stat().st_mode & 0o777 == 0o600
