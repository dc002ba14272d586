"""What a new user found (issue 18), each kept fixed: uploads nobody could read, stray output,
ports, servers left running, files written where they do not belong, the web app's rough edges."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request

import pytest

from conftest import ROOT, checkout_changes, checkout_files, free_port, leftover_processes, web_app_env
from ui.cli import main


@pytest.fixture
def cli(fake_cli):
    return fake_cli


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- uploads and documents ---------------------------------------------------------------------------


def test_a_document_nobody_may_read_is_flagged_by_docs(cli, tmp_path):
    folder = tmp_path / "share"
    folder.mkdir()
    (folder / "cafeteria-rules.md").write_text("# Cafeteria\n\nTrays go back to the rack by the door.")
    (folder / "open.md").write_text("# Open\n\nThe lobby opens at seven.")
    (folder / "open.md.groups").write_text("everyone\n")
    assert cli("ingest", str(folder), "--no-progress")[0] == 0
    code, out, err = cli("docs")
    line = next(x for x in out.splitlines() if x.startswith("cafeteria-rules.md"))
    assert "READABLE BY NOBODY" in line and "1 chunk\t" in line and "1 chunks" not in out
    assert "readers: everyone" in next(x for x in out.splitlines() if x.startswith("open.md"))
    assert "1 document readable by nobody" in err and ".groups" in err


def test_search_k_zero_is_refused(cli, tmp_path):
    (tmp_path / "a.md").write_text("# A\n\nThe lobby opens at seven.")
    cli("ingest", str(tmp_path / "a.md"), "--no-progress")
    code, out, err = cli("search", "lobby", "-k", "0")
    assert code == 2 and "-k 0" in err and len(err.strip().splitlines()) == 1


def test_the_summary_counts_in_the_singular_when_it_is_one(cli, tmp_path):
    (tmp_path / "a.md").write_text("# A\n\nThe lobby opens at seven.")
    code, out, err = cli("ingest", str(tmp_path / "a.md"), "--no-progress")
    assert "1 file: 1 added; 1 chunk in" in err


# --- processes and files -----------------------------------------------------------------------------


def test_serve_with_a_bad_or_busy_port_says_what_to_do_in_one_line(cli, tmp_path):
    code, out, err = cli("serve", "--port", "70000")
    assert code == 2 and "70000" in err and "1 to 65535" in err and len(err.strip().splitlines()) == 1
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = cli("serve", "--host", "127.0.0.1", "--port", str(port))
    assert code == 2 and "already in use" in err and "--port" in err
    assert "serving on" not in err and len(err.strip().splitlines()) == 1


def test_stopping_serve_stops_the_web_server_and_the_api_and_frees_their_ports(tmp_path):
    env = dict(os.environ, ARCHIVIST_EMBEDDER__MODEL="fake", ARCHIVIST_GENERATOR__BACKEND="fake",
               ARCHIVIST_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    port, api_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--api-port", str(api_port), "--index", str(tmp_path / "index")], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not (_port_open(port) and _port_open(api_port)):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the servers did not come up"
            time.sleep(0.3)
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5).read() == b"ok"
        health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{api_port}/healthz", timeout=5).read())
        assert health["status"] == "ok"
        proc.send_signal(signal.SIGTERM)  # to `archivist serve` alone, as a service manager does
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while (_port_open(port) or _port_open(api_port)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _port_open(port), "the Streamlit server outlived 'archivist serve'"
        assert not _port_open(api_port), "the API server outlived 'archivist serve'"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group, so no test leaves a server behind
        except ProcessLookupError:
            pass
        proc.wait()


def test_a_command_given_an_index_keeps_its_audit_log_with_that_index(cli, tmp_path):
    here = tmp_path / "somewhere-else"
    here.mkdir()
    os.chdir(here)
    index = tmp_path / "idx"
    (tmp_path / "a.md").write_text("# A\n\nThe lobby opens at seven.")
    before = checkout_files(here)
    assert cli("ingest", str(tmp_path / "a.md"), "--no-progress", "--index", str(index))[0] == 0
    assert cli("search", "lobby", "--index", str(index))[0] == 0
    assert cli("ask", "When does the lobby open?", "--index", str(index))[0] == 0
    assert checkout_changes(before, checkout_files(here)) == []  # nothing in the current folder
    assert (index / "audit.sqlite").is_file()
    code, out, err = cli("audit", "--index", str(index), "--json")
    assert {json.loads(x)["action"] for x in out.splitlines()} >= {"ingest", "search", "ask"}


def test_the_data_dir_setting_wins_over_the_index_folder(tmp_path):
    from ui.settings import load_settings

    s = load_settings(env={}, index=str(tmp_path / "idx"))
    assert s.data_dir == tmp_path / "idx" and s.audit_path == tmp_path / "idx" / "audit.sqlite"
    s = load_settings(env={"ARCHIVIST_DATA_DIR": str(tmp_path / "data")}, index=str(tmp_path / "idx"))
    assert s.data_dir == tmp_path / "data" and s.index_dir == tmp_path / "idx"
    s = load_settings(env={})
    assert str(s.data_dir) == "archivist-data" and str(s.index_dir) == "archivist-data/index"


def test_the_checkout_guard_sees_a_new_file(tmp_path):
    (tmp_path / "kept.txt").write_text("x")
    before = checkout_files(tmp_path)
    (tmp_path / "archivist-data").mkdir()
    (tmp_path / "archivist-data" / "audit.sqlite").write_bytes(b"x")
    assert checkout_changes(before, checkout_files(tmp_path)) == ["new: archivist-data/audit.sqlite"]


def test_the_process_guard_sees_a_server_left_running(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], cwd=tmp_path)
    try:
        assert any(line.startswith(f"{proc.pid}:") for line in leftover_processes(tmp_path))
    finally:
        proc.kill()
        proc.wait()
    assert not any(line.startswith(f"{proc.pid}:") for line in leftover_processes(tmp_path))


# --- stray output ------------------------------------------------------------------------------------


def test_ingest_prints_no_library_debug_lines(tmp_path):
    (tmp_path / "a.md").write_text("# A\n\nThe lobby opens at seven.")
    env = dict(os.environ, ARCHIVIST_EMBEDDER__MODEL="fake", PYTHONPATH=str(ROOT))
    env.pop("ARCHIVIST_DATA_DIR", None)
    done = subprocess.run([sys.executable, "-m", "ui.cli", "ingest", str(tmp_path / "a.md"), "--no-progress",
                           "--index", str(tmp_path / "index")], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "DEBUG" not in done.stderr and "bm25s" not in done.stderr
    assert done.stderr.strip().splitlines()[0].startswith("1 file: 1 added")


def test_the_gguf_conversion_draws_no_progress_bar():
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    from qa.generators import _quiet_gguf_conversion

    _quiet_gguf_conversion()
    assert gguf_utils.tqdm([1, 2, 3]).disable is True


def test_the_web_app_uses_no_deprecated_streamlit_arguments():
    used = [str(p.relative_to(ROOT)) for p in (ROOT / "ui").rglob("*.py") if "use_container_width" in p.read_text()]
    assert used == []


def test_the_licence_is_an_spdx_string_so_setuptools_does_not_warn():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert isinstance(project["license"], str) and project["license"] == "Apache-2.0"
    assert not any(c.startswith("License ::") for c in project.get("classifiers", []))


def test_the_time_left_counts_files_not_loading_the_model(tmp_path, monkeypatch, fake_embedder):
    """The first file's estimate must not include the seconds the embedding model takes to load."""
    import tqdm as tqdm_module

    from ingest import Chunker, ChunkingOptions, Ingestor, Parser, discover
    from retrieval import Index

    bars = []

    class Recording(tqdm_module.tqdm):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            bars.append(self)

    class SlowToLoad(type(fake_embedder)):
        loaded = False

        def count_tokens(self, text):
            if not self.loaded:
                time.sleep(1.0)
                self.loaded = True
            return super().count_tokens(text)

    monkeypatch.setattr(tqdm_module, "tqdm", Recording)
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):  # plain text: no parser library to import on the first file
        (docs / f"d{i}.txt").write_text(f"The lobby opens at {i + 6} o'clock.")
    emb = SlowToLoad(dim=64)
    index = Index(tmp_path / "index", emb)
    with Ingestor(index, Chunker(emb.count_tokens, ChunkingOptions(max_tokens=256, target_tokens=120)),
                  Parser(isolate=False)) as ingestor:
        t0 = time.monotonic()
        report = ingestor.ingest(discover([docs]), progress=True)
    assert report.count("added") == 3 and time.monotonic() - t0 >= 1.0
    [bar] = bars
    assert bar.format_dict["elapsed"] < 0.9  # the clock started after the model had loaded


# --- the web app -------------------------------------------------------------------------------------


@pytest.fixture
def web(tmp_path, monkeypatch):
    """The app on a small index of its own (with a document nobody may read), alice signed in as admin."""
    from streamlit.testing.v1 import AppTest

    from ui.auth import UserStore
    from ui.web import resources

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.md").write_text("# Handbook\n\nEmployees get 25 days of annual leave.")
    (docs / "handbook.md.groups").write_text("everyone\n")
    (docs / "orphan.md").write_text("# Orphan\n\nNo rule covers this page.")
    web_app_env(monkeypatch, tmp_path)
    assert main(["ingest", str(docs), "--no-progress"]) == 0
    users = UserStore(tmp_path / "data" / "users.json")
    users.add("alice", "correct horse battery", ["admin", "finance"])
    users.add("erin", "erin's long password", ["engineering"])
    resources._services.clear()

    def start(user="alice", password="correct horse battery"):
        from conftest import sign_in

        at = AppTest.from_file(str(ROOT / "ui" / "web" / "app.py"), default_timeout=60)
        at.run()
        assert not at.exception, at.exception
        return sign_in(at, user, password)

    yield start
    resources._services.clear()


def _admin(at):
    at.sidebar.radio[0].set_value("Admin").run()
    assert not at.exception, at.exception
    return at


def _metric(at, label):
    return int(next(m.value for m in at.metric if m.label == label))


def test_an_upload_is_read_by_the_groups_the_admin_chose_and_counted_at_once(web):
    at = _admin(web())
    assert _metric(at, "Documents") == 1  # alice reads handbook.md; orphan.md nobody
    readers = at.multiselect(key="upload_readers")
    assert readers.value == ["finance"]  # the uploader's own groups by default
    at.file_uploader(key="uploads").set_value([
        ("cafeteria-rules.md", b"# Cafeteria\n\nTrays go back to the rack by the door.", "text/markdown")]).run()
    at.button[[b.label for b in at.button].index("Ingest the uploaded files")].click().run()
    assert not at.exception, at.exception
    assert any("1 added" in s.value and "readable by finance" in s.value for s in at.success)
    assert _metric(at, "Documents") == 2  # the metrics count the upload in the same run
    docs = next(d.value for d in at.dataframe if "readers" in d.value.columns).set_index("document")
    assert docs.loc["uploads/cafeteria-rules.md", "readers"] == "finance"
    assert "None" not in docs["pages"].astype(str).tolist()
    # shared with everyone: the engineer finds it too
    at = _admin(web())
    at.multiselect(key="upload_readers").set_value(["everyone"])
    at.file_uploader(key="uploads").set_value([("lobby.md", b"# Lobby\n\nThe lobby opens at seven.", "text/markdown")]).run()
    at.button[[b.label for b in at.button].index("Ingest the uploaded files")].click().run()
    from ui.web import resources

    svc = resources.services()
    erin = svc.users.identity("erin")
    assert "uploads/lobby.md" in {d.doc for d in svc.index.documents(erin.filter)}
    assert "uploads/cafeteria-rules.md" not in {d.doc for d in svc.index.documents(erin.filter)}


def test_the_admin_page_flags_documents_nobody_may_read(web):
    at = _admin(web())
    assert any("readable by nobody" in w.value and "orphan.md" in w.value.replace("\\", "") for w in at.warning)


def test_an_employee_sees_no_one_option_menu_and_the_sign_in_form_is_not_page_wide(web):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "ui" / "web" / "app.py"), default_timeout=60)
    at.run()
    assert len(at.columns) == 3 and at.columns[1].text_input  # the form sits in the middle column
    at = web("erin", "erin's long password")
    assert not at.sidebar.radio  # one page: no menu
    assert at.chat_input  # the Ask page is there
    at = web()
    assert at.sidebar.radio[0].options == ["Ask", "Admin", "Evaluate", "Audit log"]


def test_the_evaluate_chart_puts_the_settings_side_by_side_on_a_0_to_1_axis(web):
    from ui.web.eval_page import comparison_chart

    spec = comparison_chart({"A": {"mrr": 0.9, "containment": 0.8}, "B": {"mrr": 0.7, "containment": 0.95}})
    enc = spec["encoding"]
    assert enc["yOffset"]["field"] == "setting"  # grouped, not stacked: no bar can pass 1.0
    assert enc["x"]["scale"]["domain"] == [0, 1] and enc["y"]["axis"]["labelLimit"] >= 300
    assert max(v["score"] for v in spec["data"]["values"]) <= 1.0
    assert not any(v["metric"].startswith("latency") for v in spec["data"]["values"])
    at = web()
    at.sidebar.radio[0].set_value("Evaluate").run()
    at.number_input[0].set_value(2).run()
    at.selectbox[1].set_value("no spelling correction").run()
    at.button[[b.label for b in at.button].index("Run the evaluation")].click().run()
    assert not at.exception, at.exception
    [chart] = at.get("vega_lite_chart")
    assert "yOffset" in chart.proto.spec


def test_the_evaluation_progress_says_how_long_is_left():
    from ui.web.eval_page import ProgressText

    shown = []

    class Bar:
        def progress(self, share, text):
            shown.append((share, text))

    now = [100.0]
    progress = ProgressText(Bar(), "as configured", 10, clock=lambda: now[0])
    now[0] += 4.0
    progress(1, None)  # 2 of 10 done after 4 s: 2 s each, 8 left
    assert shown[-1] == (0.2, "as configured: 2/10 questions, about 16 s left")
