"""The OpenAI-compatible backend against a fake server on 127.0.0.1."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from qa import GeneratorError, OpenAIGenerator


class _Handler(BaseHTTPRequestHandler):
    requests: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, dict(self.headers), body))
        if body["model"] == "broken":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b'{"error": "model exploded"}')
            return
        text = "Employees get 25 days [1]."
        if body.get("stream") and body["model"] != "no-stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in ["Employees ", "get ", "25 days ", "[1]."]:
                chunk = {"choices": [{"delta": {"content": piece}, "index": 0}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode())


@pytest.fixture
def server():
    _Handler.requests = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


MESSAGES = [{"role": "user", "content": "How many days?"}]


def test_streams_tokens_from_the_endpoint(server):
    gen = OpenAIGenerator(server, "tiny", api_key="secret")
    pieces = list(gen.stream(MESSAGES, max_tokens=20))
    assert pieces == ["Employees ", "get ", "25 days ", "[1]."]
    path, headers, body = _Handler.requests[-1]
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer secret"
    assert body["messages"] == MESSAGES and body["max_tokens"] == 20 and body["stream"] is True and body["temperature"] == 0


def test_server_without_streaming_still_answers(server):
    assert OpenAIGenerator(server, "no-stream").generate(MESSAGES) == "Employees get 25 days [1]."


def test_errors_are_messages(server):
    with pytest.raises(GeneratorError, match="answered 500"):
        OpenAIGenerator(server, "broken").generate(MESSAGES)
    with pytest.raises(GeneratorError, match="cannot reach"):
        OpenAIGenerator("http://127.0.0.1:9/v1", "tiny", timeout=2).generate(MESSAGES)


def test_answerer_through_the_endpoint(server, make_index):
    from qa import Answerer, AnswerOptions
    from retrieval import Chunk, DocumentInfo

    idx = make_index()
    with idx.writer() as w:
        w.add_document(DocumentInfo(doc="hr.txt"), [Chunk(id="c1", doc="hr.txt", text="Employees get 25 days of annual leave.")])
        w.commit()
    ans = Answerer(idx, OpenAIGenerator(server, "tiny"), AnswerOptions(min_confidence=0.1, phrasing="model")).ask(
        "How many days of annual leave do employees get?")
    assert ans.answer == "Employees get 25 days." and ans.citations[0].chunk.id == "c1"
    assert ans.quote == "Employees get 25 days of annual leave."  # the supporting sentence, quoted
    assert ans.reason.startswith("phrased by the model")


def test_the_api_key_never_reaches_logs_errors_or_the_audit_log(server, tmp_path, monkeypatch, capsys, caplog):
    import logging

    from ui.cli import main

    caplog.set_level(logging.DEBUG)
    key = "sk-never-print-this-4711"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "hr.txt").write_text("Employees get 25 days of annual leave.")
    for k, v in {"EMBEDDER__MODEL": "fake", "GENERATOR__BACKEND": "openai", "GENERATOR__BASE_URL": server,
                 "GENERATOR__API_KEY": key, "ACCESS__DEFAULT": "everyone", "ANSWER__MIN_CONFIDENCE": "0.1", "ANSWER__MATCH_WEIGHT": "0", "ANSWER__PHRASING": "model"}.items():
        monkeypatch.setenv(f"ARCHIVIST_{k}", v)
    assert main(["ingest", "docs", "--no-progress", "-vv"]) == 0
    assert main(["ask", "How many days of annual leave do employees get?", "--no-stream", "-vv"]) == 0
    monkeypatch.setenv("ARCHIVIST_GENERATOR__MODEL", "broken")  # the endpoint fails: the error is shown, the key is not
    main(["ask", "How many days of annual leave do employees get?", "--no-stream", "-vv"])
    out = capsys.readouterr()
    seen = out.out + out.err + caplog.text + (tmp_path / "archivist-data" / "audit.sqlite").read_bytes().decode("latin-1")
    assert "25 days" in seen and key not in seen
    assert _Handler.requests[-1][1]["Authorization"] == f"Bearer {key}"  # it was used, only on the wire
