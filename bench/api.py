"""The HTTP API's answer time, alone, with the default models: what a chat front end waits for.

    .venv/bin/python bench/api.py

Ingests data-samples/docs into a temporary index and data folder, starts the API (uvicorn, in
this process, on a free port of 127.0.0.1), warms it with one question, then asks every sample
question once through ``POST /v1/chat/completions`` (whole answers), and again with
``stream: true``, timing the first content chunk (the quote) and the end. One client, nothing
else running. Writes bench/results/api.json.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, load_jsonl, percentile  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    import httpx
    import uvicorn

    from ui.api import create_app
    from ui.services import Archivist
    from ui.settings import load_settings

    tmp = Path(tempfile.mkdtemp())
    try:
        settings = load_settings(env={"ARCHIVIST_DATA_DIR": str(tmp / "data"), "ARCHIVIST_ACCESS__DEFAULT": "everyone",
                                      "ARCHIVIST_API__RATE_PER_MINUTE": "0"})
        app = Archivist(settings)
        op = app.operator()
        app.ingest_paths(op, [str(ROOT / "data-samples" / "docs")])
        app.add_user(op, "bench", "a long enough password", ["staff"])
        token, _ = app.create_token(op, "bench")
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        headers = {"Authorization": f"Bearer {token}"}
        questions = [q["question"] for q in load_jsonl(ROOT / "data-samples" / "questions.jsonl")]
        with httpx.Client(timeout=120) as client:
            client.post(url, headers=headers, json={"messages": [{"role": "user", "content": "warm up"}]})
            whole, first, streamed, errors = [], [], [], 0
            for q in questions:
                body = {"model": "archivist", "messages": [{"role": "user", "content": q}]}
                t0 = time.perf_counter()
                r = client.post(url, headers=headers, json=body)
                whole.append(time.perf_counter() - t0)
                errors += r.status_code != 200
                t0, t_first = time.perf_counter(), None
                with client.stream("POST", url, headers=headers, json={**body, "stream": True}) as s:
                    for line in s.iter_lines():
                        if t_first is None and '"content": "' in line and '"content": ""' not in line:
                            t_first = time.perf_counter() - t0
                streamed.append(time.perf_counter() - t0)
                first.append(t_first if t_first is not None else streamed[-1])
        server.should_exit = True
        thread.join(10)
        out = {"questions": len(questions), "errors": errors,
               "answer_p50_s": round(percentile(whole, 50), 3), "answer_p95_s": round(percentile(whole, 95), 3),
               "stream_first_content_p50_s": round(percentile(first, 50), 3),
               "stream_first_content_p95_s": round(percentile(first, 95), 3),
               "stream_done_p50_s": round(percentile(streamed, 50), 3)}
        print(json.dumps(out))
        results = ROOT / "bench" / "results"
        results.mkdir(exist_ok=True)
        (results / "api.json").write_text(json.dumps(out, indent=2) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
