"""How fast Archivist is on this machine's CPU, in one run with nothing else running:

    .venv/bin/python bench/speed.py [--parts cli answers generation ingest]

- generation: tokens/s and time to the first token of SmolLM2-135M on each installed runtime
  (llama.cpp with the weights widened to F16, the default, and as shipped; transformers), on a real answer prompt (a data-samples question and its quote);
- embedding: chunks/s of contoso-hr's chunks through retrieval.bert on torch, on onnxruntime fp32
  and int8 (the ingestion paths), on numpy (the path of a cold query) and through
  sentence-transformers itself; the
  pure embedding time of all of contoso-hr's (and covid-qa's) chunks on the runtime the machine's
  self-test chose, against the wall time of `archivist ingest` of the same folder (the whole command,
  a fresh index, no calibration), the tokens embedded per token of the documents' own text, and the
  LangChain tutorial pipeline and txtai as whole commands on the same folder (with the bench extra
  installed);
- answers as the web app makes them (Answerer.stream, models loaded): p50/p95 of the whole
  answer and of the first visible words (the quote card), on data-samples' questions;
- the command line: `archivist ask` wall time cold (no server) and with `archivist api` running
  (answered by its warm models), and the server's resident memory with both models loaded;
- 8 concurrent askers through the API: p50/p95 per answer, and errors.

Writes bench/results/speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, load_jsonl, percentile  # noqa: E402

SAMPLES = ROOT / "data-samples"
CONTOSO = ROOT.parent / "shared" / "eval" / "contoso-hr" / "docs"
COVID = ROOT.parent / "shared" / "eval" / "covid-qa" / "docs"
QUESTION = "How many weeks of paid parental leave does the other parent get?"
PARTS = ("cli", "answers", "generation", "ingest")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(data: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVIST_")}
    env.update(PYTHONPATH=str(ROOT), ARCHIVIST_DATA_DIR=str(data), ARCHIVIST_ACCESS__DEFAULT="everyone",
               ARCHIVIST_API__RATE_PER_MINUTE="0", HF_HUB_OFFLINE="1", **extra)
    return env


def _cli(env: dict, cwd: Path, *argv: str, timeout: float = 1800) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "ui.cli", *argv], env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=timeout)
    if run.returncode != 0:
        raise SystemExit(f"archivist {' '.join(argv)} failed: {run.stderr[-2000:]}")
    return time.perf_counter() - started, run


# -- generation -------------------------------------------------------------------------------------
def _phrasing_prompts(app, n: int = 8) -> list[list[dict]]:
    """What the model is handed when it phrases a short answer (answer.phrasing = "model"): the
    question and the quote of its answer; one prompt per sample question, so no run reuses the
    previous one's evaluated prompt."""
    from qa.answer import Passage
    from qa.prompt import build_messages

    prompts = []
    for q in [q["question"] for q in load_jsonl(SAMPLES / "questions.jsonl") if q["answerable"]][:n]:
        ans = app.ask(app.operator(), q)
        if ans.citations:
            c = ans.citations[0]
            prompts.append(build_messages(q, [Passage(1, c.chunk, ans.quote, c.score)]))
    return prompts


def bench_generation(prompts: list[list[dict]], max_tokens: int = 64) -> dict:
    from qa import LlamaCppGenerator, TransformersGenerator
    from qa.generators import llama_cpp_available

    def transformers_tokens(gen, text):
        return len(gen.load()[0](text, add_special_tokens=False)["input_ids"])

    def llama_tokens(gen, text):
        return len(gen.load()[0].tokenize(text.encode(), add_bos=False))

    runtimes = {"transformers": (lambda: TransformersGenerator(cache_dir=ROOT / ".bench-cache" / "models"),
                                 transformers_tokens)}
    if llama_cpp_available():
        widened = ROOT / ".bench-cache" / "models" / "runtime"
        runtimes = {"llama.cpp": (lambda: LlamaCppGenerator(weights="f16", cache_dir=widened), llama_tokens),
                    "llama.cpp as shipped (Q4_1)": (LlamaCppGenerator, llama_tokens), **runtimes}
    out = {}
    for name, (make, count_tokens) in runtimes.items():
        gen = make()
        started = time.perf_counter()
        gen.load()
        load_s = time.perf_counter() - started
        firsts, rates = [], []
        for messages in prompts:
            started = time.perf_counter()
            first, pieces = None, []
            for piece in gen.stream(messages, max_tokens=max_tokens):
                first = first if first is not None else time.perf_counter() - started
                pieces.append(piece)
            total = time.perf_counter() - started
            tokens = count_tokens(gen, "".join(pieces))
            firsts.append(first or total)
            rates.append((tokens - 1) / max(total - (first or 0), 1e-9))
        out[name] = {"load_s": round(load_s, 2), "first_token_s_median": round(statistics.median(firsts), 3),
                     "first_token_s_max": round(max(firsts), 3),
                     "tokens_per_s_median": round(statistics.median(rates), 1), "prompts": len(prompts),
                     "prompt_tokens_median": statistics.median(count_tokens(gen, m[-1]["content"]) for m in prompts),
                     "max_tokens": max_tokens}
        print(f"generation {name}: {out[name]}", flush=True)
    return out


# -- embedding --------------------------------------------------------------------------------------
def bench_embedding(chunks: list[str]) -> dict:
    """chunks/s per runtime: MiniLM computed here on torch, on onnxruntime fp32 and int8 (what
    ingestion may use), on numpy (a cold query's path, on a sample), and sentence-transformers
    itself; pure embedding time = torch."""
    from retrieval import SentenceTransformerEmbedder
    from retrieval.bert import BertEncoder
    from retrieval.embedder import packaged_minilm_path
    from retrieval.runtime_choice import encoder_for

    def rate(encode, texts) -> float:
        encode(texts[:16])  # warm
        started = time.perf_counter()
        encode(texts)
        return time.perf_counter() - started

    torch_s = rate(BertEncoder(packaged_minilm_path(), runtime="torch").encode, chunks)
    st = SentenceTransformerEmbedder()._load()
    st_s = rate(lambda t: st.encode(t, batch_size=32, normalize_embeddings=True), chunks)
    sample = chunks[:96]
    numpy_s = rate(BertEncoder(packaged_minilm_path(), runtime="numpy").encode, sample)
    int8_s = rate(encoder_for("onnx-int8", packaged_minilm_path()).encode, chunks)
    fp32_s = rate(encoder_for("onnx-fp32", packaged_minilm_path()).encode, chunks)
    out = {"chunks": len(chunks), "pure_embedding_s": round(torch_s, 2),
           "torch_chunks_per_s": round(len(chunks) / torch_s, 1),
           "onnx_fp32_chunks_per_s": round(len(chunks) / fp32_s, 1),
           "onnx_int8_chunks_per_s": round(len(chunks) / int8_s, 1),
           "sentence_transformers_chunks_per_s": round(len(chunks) / st_s, 1),
           "numpy_chunks_per_s": round(len(sample) / numpy_s, 1)}
    print(f"embedding: {out}", flush=True)
    return out


def _chunks_of(index_dir: Path) -> list[str]:
    """The texts the index embedded for its live chunks (title and section with the text)."""
    import sqlite3

    from retrieval.indexed_text import doc_title, indexed_text

    with sqlite3.connect(index_dir / "archivist.sqlite") as db:
        rows = db.execute("SELECT doc, section, text FROM chunks WHERE removed_gen IS NULL ORDER BY vid").fetchall()
    return [indexed_text(doc_title(doc), section, text) for doc, section, text in rows]


# -- answers as the web app makes them ---------------------------------------------------------------
def bench_answers(app) -> dict:
    from ui.services import Answer, Evidence

    questions = [q["question"] for q in load_jsonl(SAMPLES / "questions.jsonl")]
    who = app.operator()
    list(app.stream(who, questions[0]))  # warm
    first, whole = [], []
    for q in questions:
        started = time.perf_counter()
        seen = None
        for event in app.stream(who, q):
            if seen is None and isinstance(event, (Evidence, Answer)):
                seen = time.perf_counter() - started
        whole.append(time.perf_counter() - started)
        first.append(seen if seen is not None else whole[-1])
    out = {"questions": len(questions), "answer_p50_s": round(percentile(whole, 50), 3),
           "answer_p95_s": round(percentile(whole, 95), 3), "first_words_p50_s": round(percentile(first, 50), 3),
           "first_words_p95_s": round(percentile(first, 95), 3)}
    print(f"answers (web path): {out}", flush=True)
    return out


# -- the command line, the server, concurrency --------------------------------------------------------
def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
            pids += [int(c) for c in children]
        except OSError:
            continue
    return round(total / 1024, 1)


def bench_cli_and_server(env: dict, cwd: Path, runs: int = 3, askers: int = 8, rounds: int = 4) -> dict:
    import httpx

    cold = [_cli(env, cwd, "ask", QUESTION, "--local", "--json")[0] for _ in range(runs)]
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "api", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        card = Path(env["ARCHIVIST_DATA_DIR"]) / "server.json"
        _wait_for(proc, port, card)
        secret = json.loads(card.read_text())["server"]["secret"]
        headers = {"Authorization": f"Bearer {secret}"}
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        body = {"model": "archivist", "messages": [{"role": "user", "content": QUESTION}]}
        httpx.post(url, json=body, headers=headers, timeout=300).raise_for_status()  # warm: both models loaded
        time.sleep(5)  # the warm-up thread loads the generator too
        rss = _rss_mb(proc.pid)
        warm = [_cli(env, cwd, "ask", QUESTION, "--json")[0] for _ in range(runs)]
        questions = [q["question"] for q in load_jsonl(SAMPLES / "questions.jsonl")]
        times, errors = [], []

        def asker(i: int) -> None:
            with httpx.Client(timeout=300) as client:
                for r in range(rounds):
                    q = questions[(i * rounds + r) % len(questions)]
                    started = time.perf_counter()
                    reply = client.post(url, headers=headers, json={"model": "archivist",
                                                                    "messages": [{"role": "user", "content": q}]})
                    times.append(time.perf_counter() - started)
                    if reply.status_code != 200:
                        errors.append(reply.status_code)

        threads = [threading.Thread(target=asker, args=(i,)) for i in range(askers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    out = {"cli_ask_cold_s_median": round(statistics.median(cold), 2),
           "cli_ask_with_server_s_median": round(statistics.median(warm), 2),
           "server_rss_mb": rss,
           "concurrent_askers": askers, "concurrent_answers": len(times),
           "concurrent_p50_s": round(percentile(times, 50), 2), "concurrent_p95_s": round(percentile(times, 95), 2),
           "concurrent_errors": len(errors)}
    print(f"command line and server: {out}", flush=True)
    return out


def bench_ingest_alone(docs: Path, data: Path) -> dict:
    """`archivist ingest` of ``docs`` (whole command, fresh index, no calibration) against the pure
    embedding time of the chunks it made (MiniLM on the runtime that built the index, loaded, in
    this process). The machine's embedding-runtime self-test runs first and is timed apart: it runs
    once per machine, not per ingest."""
    from retrieval import runtime_choice
    from retrieval.embedder import packaged_minilm_path
    from ui.services.compose import recorded_embedder

    started = time.perf_counter()
    record = data / "models" / "embedding-runtime.json"
    runtime_choice.chosen_runtime(record, packaged_minilm_path(), cache_dir=data / "models" / "runtime")
    self_test_s = time.perf_counter() - started
    env = _env(data, ARCHIVIST_ANSWER__CALIBRATE_AFTER_INGEST="false")
    wall, _ = _cli(env, data.parent, "ingest", str(docs), "--no-progress")
    chunks = _chunks_of(data / "index")
    family = runtime_choice.family_of(recorded_embedder(data / "index") or "")
    runtime = runtime_choice.chosen_runtime(record, packaged_minilm_path(), family=family, may_measure=False)
    encoder = runtime_choice.encoder_for(runtime, packaged_minilm_path())
    encoder.encode(chunks[:16])
    started = time.perf_counter()
    encoder.encode(chunks)
    pure = time.perf_counter() - started
    out = {"set": docs.parent.name, "wall_s": round(wall, 2), "chunks": len(chunks), "pure_embedding_s": round(pure, 2),
           "over_pure_embedding": round(wall / pure, 2), "runtime": runtime, **token_economy(docs, chunks, encoder),
           "runtime_self_test": {**(runtime_choice.read_record(record) or {}), "seconds": round(self_test_s, 2)}}
    print(f"ingest: {out}", flush=True)
    return out


def token_economy(docs: Path, chunks: list[str], encoder) -> dict:
    """The tokens the embedder saw for ``chunks`` (special tokens and the title and section each
    chunk repeats included, cut to the model's window) against the tokens of the documents' own
    parsed text: 1.0 would be every source token embedded exactly once."""
    from ingest import Parser, discover
    from ingest.blocks import ParseError

    embedded = sum(len(ids) for ids in encoder._ids(chunks))
    source = 0
    parser = Parser(isolate=False)
    try:
        for src in discover([docs]):
            try:
                blocks = parser.parse(src.path).blocks
            except ParseError:
                continue
            source += sum(len(encoder.tokenizer.encode(b.text, add_special_tokens=False).ids) for b in blocks)
    finally:
        parser.close()
    return {"embedded_tokens": embedded, "source_tokens": source,
            "embedded_tokens_per_source_token": round(embedded / max(source, 1), 3)}


#: the baselines timed beside `archivist ingest` on contoso-hr: the modules each needs (the bench extra),
#: and the code its child process runs on the folder (sys.argv[1])
BASELINES = {
    # the LangChain tutorial pipeline: PyPDFLoader, RecursiveCharacterTextSplitter 1000/200, the same MiniLM
    # through sentence-transformers, FAISS
    "langchain_tutorial": (("langchain_community", "pypdf"),
                           "from retrieval import SentenceTransformerEmbedder; from bench.ingest_speed import run_langchain; "
                           "run_langchain(Path(sys.argv[1]), SentenceTransformerEmbedder())"),
    # txtai's documented indexing (bench.ingest_speed.run_txtai)
    "txtai": (("txtai", "pypdf"),
              "from retrieval.embedder import packaged_minilm_path; from bench.ingest_speed import run_txtai; "
              "print(run_txtai(Path(sys.argv[1]), packaged_minilm_path()))"),
}


def _baseline_command(name: str, env: dict, cwd: Path) -> float | None:
    """Baseline ``name`` on contoso-hr as a whole command, process start included, as `archivist ingest`
    is timed; None without the bench extra (pip install -e '.[bench]')."""
    import importlib.util

    modules, code = BASELINES[name]
    if any(importlib.util.find_spec(m) is None for m in modules):
        print(f"ingest: the {name} baseline needs the bench extra (pip install -e '.[bench]')", flush=True)
        return None
    started = time.perf_counter()
    subprocess.run([sys.executable, "-W", "ignore", "-c", "import sys; from pathlib import Path; " + code,
                    str(CONTOSO)], env=env, cwd=cwd, check=True, capture_output=True, timeout=1800)
    return round(time.perf_counter() - started, 2)


def _wait_for(proc, port: int, card: Path, limit_s: float = 180) -> None:
    """Until the API answers on ``port`` and has written its card."""
    deadline = time.monotonic() + limit_s
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0 and card.exists():
                return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the API did not start: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to measure (default: all)")
    args = parser.parse_args()
    from ui.services import Archivist
    from ui.settings import load_settings

    tmp = Path(tempfile.mkdtemp())
    results: dict = {"machine": f"{os.cpu_count()} cores", "when": time.strftime("%Y-%m-%d %H:%M")}
    try:
        env = _env(tmp / "data")
        ingest_s, _ = _cli(env, tmp, "ingest", str(SAMPLES / "docs"), "--no-progress")
        results["data_samples_ingest_s"] = round(ingest_s, 2)
        if "cli" in args.parts:
            results["cli"] = bench_cli_and_server(env, tmp)
        app = Archivist(load_settings(env=env))
        if "answers" in args.parts:
            results["answers"] = bench_answers(app)
        if "generation" in args.parts:
            results["generation"] = bench_generation(_phrasing_prompts(app))
        app.close()
        if "ingest" in args.parts and CONTOSO.is_dir():
            results["ingest"] = ingest = bench_ingest_alone(CONTOSO, tmp / "contoso")
            results["embedding"] = bench_embedding(_chunks_of(tmp / "contoso" / "index"))
            cenv = _env(tmp / "contoso")
            for name in BASELINES:
                baseline = _baseline_command(name, cenv, tmp)
                if baseline is not None:
                    ingest[f"{name}_wall_s"] = baseline
                    ingest[f"faster_than_{name}"] = round(baseline / ingest["wall_s"], 2)
            print(f"ingest: {results['ingest']}", flush=True)
        if "ingest" in args.parts and COVID.is_dir():
            results["ingest_covid_qa"] = bench_ingest_alone(COVID, tmp / "covid")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = ROOT / "bench" / "results" / "speed.json"
    if set(args.parts) != set(PARTS) and out.exists():  # a partial run updates its parts only
        results = {**json.loads(out.read_text()), **results}
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
