"""The HTTP API (issue 15): the official ``openai`` client and LangChain's ``ChatOpenAI`` against a
running server, every endpoint, its errors, and access control attacked through it.

The corpus: a handbook everyone may read, board minutes (group board) and a salary table
(group hr). eve (staff) must never see a word of the last two.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

import pytest
from conftest import free_port, wait_until_listening, without_echoed_names

SECRETS = ("Nightingale", "Harbour Logistics", "91 million", "912000", "Lovelace")
HANDBOOK = ("# Employee handbook\n\nAnnual leave is 25 days per year. Salaries are reviewed every April by "
            "the board. The staff meeting is every Monday at nine.\n")
MINUTES = ("# Board minutes, 3 March\n\nProject Nightingale: the board approved buying Harbour Logistics for "
           "91 million euros.\n")
SALARIES = "name,role,salary\nAda Lovelace,engineer,912000\n"
PASSWORD = "a long enough password"
ATTACKS = ["What did the board approve about Project Nightingale?", "How much is Harbour Logistics bought for?",
           "What is the salary of Ada Lovelace?", "Nightingale Harbour Logistics 91 million"]


def _env(base) -> dict:
    return {"ARCHIVIST_EMBEDDER__MODEL": "fake", "ARCHIVIST_GENERATOR__BACKEND": "fake",
            "ARCHIVIST_ANSWER__MIN_CONFIDENCE": "0.3", "ARCHIVIST_ANSWER__MATCH_WEIGHT": "0",
            "ARCHIVIST_ANSWER__CALIBRATE_AFTER_INGEST": "false", "ARCHIVIST_DATA_DIR": str(base / "data"),
            "ARCHIVIST_ACCESS__DEFAULT": "everyone", "ARCHIVIST_API__RATE_PER_MINUTE": "100000"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The application over the corpus, with users and their API tokens."""
    from ui.services import Archivist
    from ui.settings import load_settings

    base = tmp_path_factory.mktemp("api")
    docs = base / "docs"
    (docs / "board").mkdir(parents=True)
    (docs / "hr").mkdir()
    (docs / "handbook.md").write_text(HANDBOOK)
    (docs / "board" / "minutes.md").write_text(MINUTES)
    (docs / "board" / "minutes.md.groups").write_text("board\n")
    (docs / "hr" / "salaries.csv").write_text(SALARIES)
    (docs / "hr" / "salaries.csv.groups").write_text("hr\n")
    app = Archivist(load_settings(env=_env(base)))
    op = app.operator()
    assert app.ingest_paths(op, [str(docs)]).failed == []
    tokens = {}
    for name, groups in {"eve": ["staff"], "bob": ["board"], "root": ["admin"]}.items():
        app.add_user(op, name, PASSWORD, groups)
        tokens[name] = app.create_token(op, name)[0]
    yield app, tokens, base
    app.close()


@pytest.fixture(scope="module")
def client(site):
    from fastapi.testclient import TestClient

    from ui.api import create_app

    app, tokens, _ = site
    with TestClient(create_app(app), raise_server_exceptions=False) as c:
        yield c


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def _serving(api):
    """``api`` on a real port (uvicorn in a thread of this process): its /v1 address; stopped after."""
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "the API did not start"
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        srv.should_exit = True
        thread.join(10)
        assert not thread.is_alive()


@pytest.fixture(scope="module")
def server(site):
    from ui.api import create_app

    with _serving(create_app(site[0])) as url:
        yield url


def _no_secrets(text: str) -> None:
    for q in ATTACKS:
        text = text.replace(q, "").replace(json.dumps(q)[1:-1], "")
    text = without_echoed_names(text, ATTACKS + ["and who approved it?"])
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked"


# -- the official clients ---------------------------------------------------------------------------
def test_the_openai_client_gets_a_cited_answer(site, server):
    from openai import OpenAI

    _, tokens, _ = site
    client = OpenAI(base_url=server, api_key=tokens["eve"], max_retries=0)
    reply = client.chat.completions.create(model="archivist", messages=[
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "How many days of annual leave do I get?"}])
    message = reply.choices[0].message
    assert "25 days" in message.content and "[1] handbook.md" in message.content
    extra = message.model_extra["archivist"]
    assert not extra["abstained"] and extra["citations"][0]["doc"] == "handbook.md"
    assert "25 days" in extra["quote"] and extra["answer"]
    assert reply.usage.completion_tokens > 0 and reply.model == "archivist"
    assert [m.id for m in client.models.list()][0] == "archivist"


def test_the_openai_client_streams_the_same_answer_with_its_citations_last(site, server):
    from openai import OpenAI

    _, tokens, _ = site
    client = OpenAI(base_url=server, api_key=tokens["eve"], max_retries=0)
    question = [{"role": "user", "content": "How many days of annual leave do I get?"}]
    whole = client.chat.completions.create(model="archivist", messages=question).choices[0].message.content
    chunks = list(client.chat.completions.create(model="archivist", messages=question, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    assert chunks[1].choices[0].delta.content.startswith("“Annual leave")  # the quote comes first
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.model_extra["archivist"]["citations"][0]["doc"] == "handbook.md"


def test_langchain_chat_openai_gets_a_cited_streamed_answer(site, server):
    from langchain_openai import ChatOpenAI

    _, tokens, _ = site
    chat = ChatOpenAI(base_url=server, api_key=tokens["eve"], model="archivist", max_retries=0)
    answer = chat.invoke("How many days of annual leave do I get?")
    assert "25 days" in answer.content and "[1] handbook.md" in answer.content
    streamed = "".join(part.content for part in chat.stream("How many days of annual leave do I get?"))
    assert streamed == answer.content


def test_ask_server_answers_through_the_running_api(site, server, fake_cli, monkeypatch):
    _, tokens, _ = site
    monkeypatch.setenv("ARCHIVIST_TOKEN", tokens["eve"])
    code, out, err = fake_cli("ask", "--server", server.removesuffix("/v1"), "How many days of annual leave?")
    assert code == 0, err
    assert "25 days" in out and "[1] handbook.md" in out
    monkeypatch.setenv("ARCHIVIST_TOKEN", "arch_not-a-real-token")
    code, _, err = fake_cli("ask", "--server", server, "How many days of annual leave?")
    assert code == 2 and "unknown or revoked API token" in err and "Traceback" not in err


def _chat_requests(url: str) -> float:
    import httpx

    metrics = httpx.get(url.removesuffix("/v1") + "/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("archivist_requests_total") and "/v1/chat/completions" in line)


def test_ask_and_search_on_this_machine_go_through_the_running_server(site, fake_cli, monkeypatch):
    """While a server runs on the index, its card lets 'ask' and 'search' use its warm models, as
    the operator; --local answers here; a card of a server that is gone is passed over."""
    import httpx

    from ui import presence
    from ui.api import create_app

    app, _, base = site
    for key, value in _env(base).items():
        monkeypatch.setenv(key, value)
    with contextlib.ExitStack() as stack:
        card = presence.announce(app.settings, "0.0.0.0", 0)
        url = stack.enter_context(_serving(create_app(app, operator_secret=card.secret)))
        card = presence.ServerCard(url, card.index, card.pid, card.secret)
        presence.card_path(app.settings).write_text(json.dumps({"server": card.__dict__}))
        assert presence.running_server(app.settings) == card
        assert oct(presence.card_path(app.settings).stat().st_mode & 0o777) == "0o600"
        before = _chat_requests(url)
        code, out, err = fake_cli("ask", "What did the board approve about Project Nightingale?", "--json")
        assert code == 0, err
        answer = json.loads(out)
        assert set(answer) == {"id", "question", "answer", "quote", "abstained", "citations", "timings", "reason"}
        assert answer["citations"][0]["doc"] == "board/minutes.md"  # the operator reads everything, as here
        assert _chat_requests(url) == before + 1
        code, out, _ = fake_cli("search", "Harbour Logistics", "--json")
        assert code == 0 and json.loads(out)["results"][0]["doc"] == "board/minutes.md"
        assert fake_cli("ask", "How many days of annual leave?", "--local")[0] == 0
        assert _chat_requests(url) == before + 1  # --local: answered here
        wrong = httpx.post(url + "/search", json={"query": "x"}, headers=_auth(card.secret[:-1] + "x"))
        assert wrong.status_code == 401
        presence.withdraw(app.settings, card)
        assert not presence.card_path(app.settings).exists()
    gone = presence.ServerCard(url, card.index, 2**22 + 12345, "old")  # a pid no process has
    presence.card_path(app.settings).write_text(json.dumps({"server": gone.__dict__}))
    assert presence.running_server(app.settings) is None
    code, out, err = fake_cli("ask", "How many days of annual leave?")
    assert code == 0 and "handbook.md" in out, err
    presence.card_path(app.settings).unlink()


def test_the_langchain_http_retriever_reads_as_its_token(site, server):
    from retrieval.langchain import HttpRetriever

    _, tokens, _ = site
    docs = HttpRetriever(base_url=server, token=tokens["eve"], k=3).invoke("annual leave")
    assert docs and docs[0].metadata["doc"] == "handbook.md"
    _no_secrets(" ".join(d.page_content for d in HttpRetriever(base_url=server, token=tokens["eve"]).invoke(
        "Nightingale Harbour Logistics")))


# -- every endpoint ---------------------------------------------------------------------------------------
def test_health_and_metrics_need_no_token_and_count_requests(client, site):
    _, tokens, _ = site
    assert client.get("/healthz").json() == {"status": "ok", "index": "ready"}
    client.post("/v1/chat/completions", headers=_auth(tokens["eve"]),
                json={"messages": [{"role": "user", "content": "When is the staff meeting?"}]})
    text = client.get("/metrics").text
    assert 'archivist_requests_total{route="/v1/chat/completions",method="POST",status="200"}' in text
    assert 'archivist_tokens_total{kind="completion"}' in text and "archivist_request_seconds_bucket" in text


def test_search_documents_and_feedback(client, site):
    app, tokens, _ = site
    eve = _auth(tokens["eve"])
    hits = client.post("/v1/search", headers=eve, json={"query": "annual leave", "k": 2}).json()["results"]
    assert hits[0]["doc"] == "handbook.md" and len(hits) <= 2
    assert [d["doc"] for d in client.get("/v1/documents", headers=eve).json()["data"]] == ["handbook.md"]
    reply = client.post("/v1/chat/completions", headers=eve,
                        json={"messages": [{"role": "user", "content": "How many days of annual leave?"}]}).json()
    answer_id = reply["archivist"]["answer_id"]
    r = client.post("/v1/feedback", headers=eve, json={"answer_id": answer_id, "rating": 1, "comment": "right"})
    assert r.status_code == 200 and r.json()["id"] > 0
    stored = app.feedback_store.list(1)[0]
    assert (stored.user, stored.rating, stored.comment) == ("eve", 1, "right")
    r = client.post("/v1/feedback", headers=_auth(tokens["bob"]), json={"answer_id": answer_id, "rating": -1})
    assert r.status_code == 400 and "no recent answer" in r.json()["error"]["message"]  # not bob's answer


def test_an_upload_runs_a_job_that_can_be_watched(client, site):
    _, tokens, _ = site
    root, eve = _auth(tokens["root"]), _auth(tokens["eve"])
    r = client.post("/v1/documents", headers=root, data={"readers": "everyone"},
                    files=[("files", ("lobby.md", b"# Lobby\n\nThe lobby opens at seven in the morning.\n")),
                           ("files", ("tool.exe", b"MZ\x00"))])
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["job"] and body["rejected"] == [{"file": "tool.exe", "reason": "not a supported file type, not ingested"}]
    deadline = time.monotonic() + 120
    while (job := client.get(f"/v1/jobs/{body['job']}", headers=root).json())["status"] == "running":
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["status"] == "succeeded" and job["counts"] == {"added": 1}
    assert body["job"] in [j["id"] for j in client.get("/v1/jobs", headers=root).json()["data"]]
    assert "uploads/lobby.md" in [d["doc"] for d in client.get("/v1/documents", headers=eve).json()["data"]]
    assert client.delete("/v1/documents/uploads/lobby.md", headers=root).json() == {"removed": "uploads/lobby.md"}
    assert "uploads/lobby.md" not in [d["doc"] for d in client.get("/v1/documents", headers=eve).json()["data"]]


def test_errors_are_json_that_say_what_to_do(client, site):
    _, tokens, _ = site
    eve = _auth(tokens["eve"])
    cases = [
        (client.get("/v1/nothing-here", headers=eve), 404, "/docs"),
        (client.post("/v1/search", headers=eve, json={}), 422, "query"),
        (client.post("/v1/search", headers=eve, content=b"{not json"), 422, "/docs"),
        (client.post("/v1/chat/completions", headers=eve, json={"messages": []}), 422, "messages"),
        (client.post("/v1/chat/completions", headers=eve, json={"messages": [{"role": "system", "content": "hi"}]}),
         400, "role 'user'"),
        (client.post("/v1/chat/completions", headers=eve,
                     json={"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}), 404, "archivist"),
        (client.get("/v1/jobs/999999", headers=_auth(tokens["root"])), 404, "/v1/jobs"),
        (client.delete("/v1/documents/not-there.md", headers=_auth(tokens["root"])), 400, "not in the index"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert words in error["message"] and "Traceback" not in response.text


def test_the_spec_lists_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/chat/completions", "/v1/models", "/v1/search", "/v1/documents", "/v1/documents/{doc}",
                 "/v1/jobs", "/v1/jobs/{job_id}", "/v1/feedback", "/healthz", "/metrics"):
        assert path in paths, path
    assert client.get("/docs").status_code == 200


def test_a_token_past_its_rate_is_refused_with_when_to_retry(site):
    from fastapi.testclient import TestClient

    from ui.api import create_app
    from ui.services import Archivist

    app, tokens, _ = site
    limited = Archivist(app.settings.with_overrides({"api.rate_per_minute": 3}))
    with TestClient(create_app(limited)) as c:
        codes = [c.get("/v1/models", headers=_auth(tokens["eve"])).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/v1/models", headers=_auth(tokens["eve"]))
        assert int(r.headers["Retry-After"]) >= 1 and "api.rate_per_minute" in r.json()["error"]["message"]
        assert c.get("/v1/models", headers=_auth(tokens["bob"])).status_code == 200  # per token


# -- attacks ----------------------------------------------------------------------------------------------
def test_no_token_a_bad_token_or_a_forged_proxy_header_gets_nothing(client):
    forged = {"X-Forwarded-User": "bob", "X-Forwarded-Groups": "board,admin"}
    for headers in ({}, {"Authorization": "Bearer arch_guessed"}, {"Authorization": "Basic Ym9iOnB3"}, forged,
                    {**forged, "Authorization": "Bearer not-even-a-token"}):
        for method, path, body in (("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": ATTACKS[0]}]}),
                                   ("POST", "/v1/search", {"query": "Nightingale"}), ("GET", "/v1/documents", None),
                                   ("GET", "/v1/jobs", None), ("GET", "/v1/models", None)):
            r = client.request(method, path, headers=headers, json=body)
            assert r.status_code == 401, (headers, path, r.text)
            assert r.headers["WWW-Authenticate"] == "Bearer"
            _no_secrets(r.text)


def test_proxy_headers_count_only_from_a_trusted_proxy(site):
    from fastapi.testclient import TestClient

    from ui.api import create_app
    from ui.services import Archivist

    app, _, _ = site
    proxied = Archivist(app.settings.with_overrides({"auth.mode": "proxy", "auth.trusted_proxies": "10.9.9.9"}))
    with TestClient(create_app(proxied)) as c:  # the test client's address is not the proxy's
        r = c.post("/v1/search", headers={"X-Forwarded-User": "bob", "X-Forwarded-Groups": "board"},
                   json={"query": "Nightingale"})
        assert r.status_code == 401 and "sign-in proxy" in r.json()["error"]["message"]
        _no_secrets(r.text)


def test_the_trusted_proxy_signs_users_in_and_a_doubled_header_is_refused(site):
    from fastapi.testclient import TestClient

    from ui.api import create_app
    from ui.services import Archivist

    app, _, _ = site
    proxied = Archivist(app.settings.with_overrides({"auth.mode": "proxy", "auth.trusted_proxies": "10.9.9.9"}))
    with TestClient(create_app(proxied), client=("10.9.9.9", 40000)) as c:
        as_bob = {"X-Forwarded-User": "bob", "X-Forwarded-Groups": "board"}
        r = c.post("/v1/search", headers=as_bob, json={"query": "Nightingale Harbour Logistics"})
        assert r.status_code == 200 and r.json()["results"][0]["doc"] == "board/minutes.md"
        r = c.post("/v1/search", headers=[("X-Forwarded-User", "eve"), ("X-Forwarded-User", "bob"),
                                          ("X-Forwarded-Groups", "board")], json={"query": "Nightingale"})
        assert r.status_code == 401 and "more than once" in r.json()["error"]["message"]
        _no_secrets(r.text)
    assert "search" in [e.action for e in proxied.audit.entries(user="bob", limit=3)]


def test_eve_asking_for_restricted_words_gets_none_of_them(client, site):
    _, tokens, _ = site
    eve = _auth(tokens["eve"])
    for q in ATTACKS:
        for stream in (False, True):
            r = client.post("/v1/chat/completions", headers=eve,
                            json={"stream": stream, "messages": [{"role": "user", "content": q}]})
            assert r.status_code == 200
            _no_secrets(r.text)
        _no_secrets(client.post("/v1/search", headers=eve, json={"query": q, "k": 50}).text)
    follow_up = {"messages": [{"role": "user", "content": ATTACKS[0]}, {"role": "assistant", "content": "91 million"},
                              {"role": "user", "content": "and who approved it?"}]}
    _no_secrets(client.post("/v1/chat/completions", headers=eve, json=follow_up).text.replace("91 million", "", 1))
    _no_secrets(client.get("/v1/documents", headers=eve).text)


def test_what_the_board_may_read_reaches_bob_only(client, site):
    _, tokens, _ = site
    r = client.post("/v1/search", headers=_auth(tokens["bob"]), json={"query": "Nightingale Harbour Logistics"})
    assert r.json()["results"][0]["doc"] == "board/minutes.md"  # the filter passes what is his


def test_a_reader_cannot_do_an_administrators_work(client, site):
    _, tokens, _ = site
    eve = _auth(tokens["eve"])
    r = client.post("/v1/documents", headers=eve, data={"readers": "everyone"},
                    files=[("files", ("x.md", b"# X\n\nplanted text\n"))])
    assert r.status_code == 403 and "administrators" in r.json()["error"]["message"]
    assert client.get("/v1/jobs", headers=eve).status_code == 403
    assert client.delete("/v1/documents/handbook.md", headers=eve).status_code == 403
    assert "handbook.md" in [d["doc"] for d in client.get("/v1/documents", headers=eve).json()["data"]]


def test_revoked_expired_and_orphaned_tokens_stop_working(client, site):
    app, _, _ = site
    op = app.operator()
    app.add_user(op, "temp", PASSWORD, ["staff"])
    revoked, info = app.create_token(op, "temp")
    assert client.get("/v1/models", headers=_auth(revoked)).status_code == 200
    app.revoke_token(op, info.id)
    assert client.get("/v1/models", headers=_auth(revoked)).status_code == 401
    expiring, _ = app.create_token(op, "temp", days=0.00001)
    time.sleep(1.0)
    r = client.get("/v1/models", headers=_auth(expiring))
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]
    orphan, _ = app.create_token(op, "temp")
    app.remove_user(op, "temp")  # revokes the user's tokens with them
    assert client.get("/v1/models", headers=_auth(orphan)).status_code == 401
    actions = [e.action for e in app.audit.entries(user=op.user)]
    assert {"token-create", "token-revoke", "user-remove"} <= set(actions)


def test_every_api_request_is_audited_under_the_tokens_user(client, site):
    app, tokens, _ = site
    client.post("/v1/chat/completions", headers=_auth(tokens["bob"]),
                json={"messages": [{"role": "user", "content": "When is the staff meeting?"}]})
    client.post("/v1/search", headers=_auth(tokens["bob"]), json={"query": "staff meeting"})
    actions = [e.action for e in app.audit.entries(user="bob", limit=5)]
    assert actions[:2] == ["search", "ask"]


def test_tokens_from_the_command_line(fake_cli, tmp_path):
    index = str(tmp_path / "index")
    assert fake_cli("users", "add", "ann", "--groups", "staff", "--random-password", "--index", index)[0] == 0
    code, out, err = fake_cli("tokens", "create", "ann", "--expires", "30", "--note", "intranet chat", "--index", index)
    token = out.strip()
    assert code == 0 and token.startswith("arch_") and "expires" in err
    stored = (tmp_path / "index" / "tokens.json").read_text()
    assert token not in stored  # only its digest
    code, out, _ = fake_cli("tokens", "list", "--json", "--index", index)
    listed = json.loads(out)
    assert [(t["user"], t["note"]) for t in listed] == [("ann", "intranet chat")] and token not in out
    assert fake_cli("tokens", "revoke", listed[0]["id"], "--index", index)[0] == 0
    assert json.loads(fake_cli("tokens", "list", "--json", "--index", index)[1]) == []
    code, _, err = fake_cli("tokens", "create", "nobody", "--index", index)
    assert code == 2 and "no user 'nobody'" in err
    code, _, err = fake_cli("tokens", "create", "ann", "--expires", "-1", "--index", index)
    assert code == 2 and "more than 0" in err


def test_a_command_group_without_an_action_says_what_to_do(fake_cli):
    for group, words in (("tokens", "create|list|revoke"), ("users", "add|remove|list")):
        code, _, err = fake_cli(group)
        assert code == 2 and words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, out, err = fake_cli("models")
    assert code == 0 and "No fine-tuned versions yet" in out


# -- schemathesis: every endpoint, generated requests, no server error ----------------------------------
def test_no_generated_request_makes_a_server_error(site):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    from ui.api import create_app

    app, tokens, _ = site
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(app))
    tried = []
    for result in schema.get_all_operations():
        operation = result.ok()
        tried.append(f"{operation.method.upper()} {operation.path}")

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            for token in (tokens["root"], tokens["eve"]):
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
                case.call_and_validate(checks=[not_a_server_error])

        check()
    assert len(tried) >= 10, tried


# -- the real command with the real models ------------------------------------------------------------------
@pytest.mark.real
def test_archivist_api_answers_the_openai_client_with_the_shipped_models_and_stops_cleanly(tmp_path):
    """`archivist api` as an administrator starts it (uvicorn, the shipped MiniLM and SmolLM2), the
    official client streams a cited answer, and SIGTERM frees the port."""
    import os
    import signal
    import subprocess
    import sys

    from openai import OpenAI

    from conftest import ROOT

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.md").write_text(HANDBOOK)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVIST_")}
    env.update(ARCHIVIST_DATA_DIR=str(tmp_path / "data"), ARCHIVIST_ACCESS__DEFAULT="everyone", PYTHONPATH=str(ROOT))

    def cli(*argv, **kw):
        return subprocess.run([sys.executable, "-m", "ui.cli", *argv], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=300, **kw)

    assert cli("ingest", str(docs), "--no-progress").returncode == 0
    assert cli("users", "add", "erin", "--groups", "staff", "--random-password").returncode == 0
    token = cli("tokens", "create", "erin").stdout.strip()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "api", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        wait_until_listening(port, proc, "the API", time.monotonic() + 120)
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=token, max_retries=0, timeout=120)
        chunks = list(client.chat.completions.create(model="archivist", stream=True, messages=[
            {"role": "user", "content": "How many days of annual leave do I get?"}]))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert "25 days" in text and "[1] handbook.md" in text
        assert chunks[-1].model_extra["archivist"]["citations"][0]["doc"] == "handbook.md"
        card = tmp_path / "data" / "server.json"  # 'ask' on this machine finds the warm server by it
        assert json.loads(card.read_text())["server"]["url"] == f"http://127.0.0.1:{port}/v1"
        asked = cli("ask", "How many days of annual leave do I get?", "--json")
        assert asked.returncode == 0 and "25 days" in json.loads(asked.stdout)["quote"], asked.stderr
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, "the API outlived 'archivist api'"
        assert not card.exists()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
