import json
import time
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, SAMPLES
from ui.cli import main


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARCHIVIST_EMBEDDER__MODEL", "fake")
    monkeypatch.delenv("ARCHIVIST_CONFIG", raising=False)

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="module")
def samples_index(tmp_path_factory):
    """data-samples ingested once with the fake embedder; tests get a copy."""
    import os

    base = tmp_path_factory.mktemp("samples")
    old = os.environ.get("ARCHIVIST_EMBEDDER__MODEL")
    os.environ["ARCHIVIST_EMBEDDER__MODEL"] = "fake"
    try:
        code = main(["ingest", str(SAMPLES / "docs"), "--no-progress", "--index", str(base / "index")])
    finally:
        if old is None:
            os.environ.pop("ARCHIVIST_EMBEDDER__MODEL")
        else:
            os.environ["ARCHIVIST_EMBEDDER__MODEL"] = old
    assert code == 0
    return base / "index"


@pytest.fixture
def ingested(cli, tmp_path, samples_index, capsys):
    target = tmp_path / "archivist-data" / "index"
    shutil.copytree(samples_index, target)
    capsys.readouterr()
    return target


def test_help_names_the_commands_and_the_default_index(cli):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    code, out, err = cli()
    assert code == 0 and "ingest" in out and "search" in out and "archivist-data/index" in out


def test_ingest_samples_then_search_json(cli, ingested):
    code, out, err = cli("search", "paid annual leave days", "--json", "-k", "3")
    assert code == 0
    data = json.loads(out)
    assert data["query"] == "paid annual leave days"
    assert len(data["results"]) == 3
    first = data["results"][0]
    assert set(first) == {"rank", "doc", "page", "section", "chunk_id", "text", "score"}
    assert first["rank"] == 1 and isinstance(first["score"], float)
    docs = [r["doc"] for r in data["results"]]
    assert "hr/employee-handbook.pdf" in docs
    hit = next(r for r in data["results"] if r["doc"] == "hr/employee-handbook.pdf")
    assert hit["page"] == 2


def test_rerun_skips_unchanged_files(cli, ingested):
    code, out, err = cli("ingest", str(SAMPLES / "docs"), "--no-progress", "--json")
    report = json.loads(out)
    assert code == 0
    assert {f["status"] for f in report["files"]} == {"unchanged"}
    assert report["chunks"] == 0


def test_batch_search_keeps_order_and_ids(cli, ingested, tmp_path):
    qfile = tmp_path / "q.jsonl"
    qfile.write_text('{"id": "b", "question": "mileage rate"}\n\n{"id": "a", "question": "on-call compensation"}\n')
    code, out, err = cli("search", "--queries", str(qfile), "--json", "-k", "2")
    assert code == 0
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["id"] for x in lines] == ["b", "a"]
    assert [x["query"] for x in lines] == ["mileage rate", "on-call compensation"]
    assert all(len(x["results"]) == 2 for x in lines)


def test_failures_are_reported_by_name_and_exit_1(cli, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.txt").write_text("The ferry leaves at nine.")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 broken")
    (folder / "empty.txt").write_text("   ")
    code, out, err = cli("ingest", str(folder), "--no-progress")
    assert code == 1
    assert "broken.pdf" in err and "empty.txt" in err
    assert "1 added" in err and "1 failed" in err and "1 empty" in err
    code, out, err = cli("search", "ferry", "--json")
    assert json.loads(out)["results"][0]["doc"] == "good.txt"


def test_types_it_does_not_read_are_skipped_and_text_types_are_read(cli, tmp_path):
    """Issue 18: .exe, images, audio are 'skipped' (exit 0, listed with --verbose); code and JSON lines are text."""
    folder = tmp_path / "share"
    folder.mkdir()
    (folder / "tool.exe").write_bytes(b"MZ\x90\x00\x03" + bytes(200))
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (folder / "song.wav").write_bytes(b"RIFF....WAVE")
    (folder / "rates.py").write_text("# the ferry tariff\nFERRY_TARIFF_EUR = 42  # per car, one way\n")
    (folder / "events.jsonl").write_text('{"event": "dock closed", "harbour": "Bergen"}\n')
    (folder / "binary.json").write_bytes(b"{\x00\x00\x01}")
    code, out, err = cli("ingest", str(folder), "--no-progress")
    assert code == 1 and "binary.json" in err and "not a text file" in err  # named .json but binary: failed
    assert "2 added" in err and "3 skipped" in err and "tool.exe" not in err
    code, out, err = cli("ingest", str(folder), "--no-progress", "--force", "-v")
    assert "skipped  tool.exe" in err and "skipped  photo.png" in err
    (folder / "binary.json").unlink()
    code, out, err = cli("ingest", str(folder), "--no-progress")
    assert code == 0, err
    hits = json.loads(cli("search", "ferry tariff", "--json")[1])["results"]
    assert hits[0]["doc"] == "rates.py" and "FERRY_TARIFF_EUR = 42" in hits[0]["text"]
    hits = json.loads(cli("search", "dock closed Bergen", "--json")[1])["results"]
    assert hits[0]["doc"] == "events.jsonl"


def test_single_file_is_named_by_its_name(cli, tmp_path):
    f = tmp_path / "notes.md"
    f.write_text("# Notes\n\nThe boat is blue.")
    assert cli("ingest", str(f), "--no-progress")[0] == 0
    code, out, _ = cli("search", "boat", "--json")
    assert json.loads(out)["results"][0]["doc"] == "notes.md"


def test_user_errors_are_messages_not_tracebacks(cli, tmp_path, ingested):
    code, out, err = cli("search", "   ")
    assert code == 2 and "give a query" in err
    code, out, err = cli("search", "x", "--index", str(tmp_path / "none"))
    assert code == 2 and "no index" in err and "archivist ingest" in err
    code, out, err = cli("ingest", str(tmp_path / "missing-folder"))
    assert code == 2 and "no such file or folder" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n')
    code, out, err = cli("search", "--queries", str(bad))
    assert code == 2 and "line 1" in err
    code, out, err = cli("search", "leave", "--index", str(ingested), "--config", str(tmp_path / "missing.toml"))
    assert code == 2 and "does not exist" in err


def test_index_refuses_other_embedder_with_a_message(cli, ingested, monkeypatch):
    monkeypatch.setenv("ARCHIVIST_EMBEDDER__MODEL", "fake:32")
    code, out, err = cli("search", "leave")
    assert code == 2 and "was built with the embedder" in err and "--index" in err


def test_stats_docs_remove(cli, ingested):
    code, out, err = cli("stats", "--json")
    stats = json.loads(out)
    assert stats["documents"] == 21 and stats["chunks"] > 21 and stats["formats"]["pdf"] == 2
    code, out, err = cli("docs")
    assert "hr/parental-leave-policy.docx" in out
    code, out, err = cli("remove", "hr/parental-leave-policy.docx")
    assert code == 0
    code, out, err = cli("search", "parental leave weeks", "--json", "-k", "10")
    assert "hr/parental-leave-policy.docx" not in [r["doc"] for r in json.loads(out)["results"]]
    assert cli("remove", "nope.txt")[0] == 2


def test_console_script_runs(tmp_path):
    exe = shutil.which("archivist", path=str(ROOT / ".venv" / "bin")) or shutil.which("archivist")
    cmd = [exe] if exe else [sys.executable, "-m", "ui.cli"]
    res = subprocess.run(cmd + ["search", "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0 and "--queries" in res.stdout


def test_ask_json_and_batch(cli, ingested, tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHIVIST_GENERATOR__BACKEND", "fake")
    monkeypatch.setenv("ARCHIVIST_ANSWER__MIN_CONFIDENCE", "0.3")
    monkeypatch.setenv("ARCHIVIST_ANSWER__MATCH_WEIGHT", "0")
    code, out, err = cli("ask", "How many days of paid annual leave does an employee get?", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert list(data) == ["id", "question", "answer", "quote", "abstained", "citations", "timings", "reason"]
    assert data["id"] is None and not data["abstained"]
    assert "25 days" in data["answer"] and "25 days" in data["quote"]
    assert data["citations"] and set(data["citations"][0]) == {"n", "doc", "page", "section", "chunk_id", "text", "score"}
    assert data["citations"][0]["doc"] == "hr/employee-handbook.pdf" and data["citations"][0]["page"] == 2
    assert set(data["timings"]) == {"retrieve_s", "extract_s", "total_s"}
    qfile = tmp_path / "qs.jsonl"
    qfile.write_text('{"id": "x2", "question": "What is the mileage rate in Norway?"}\n{"id": "x1", "question": "Who approves purchases?"}\n')
    code, out, err = cli("ask", "--questions", str(qfile), "--json")
    assert code == 0
    assert [json.loads(l)["id"] for l in out.splitlines()] == ["x2", "x1"]
    code, out, err = cli("ask", "")
    assert code == 2 and "ask a question" in err


def test_eval_writes_reports_and_compares(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHIVIST_GENERATOR__BACKEND", "fake")
    out_dir = tmp_path / "report"
    code, out, err = cli("eval", str(SAMPLES), "--out", str(out_dir), "--limit", "8", "--json",
                         "--compare", "answer.phrasing=model")
    assert code == 0, err
    summary = json.loads(out)["summaries"]
    assert set(summary) == {"base", "answer.phrasing=model"}
    base = summary["base"]
    assert base["questions"] == 8 and base["unanswerable"] >= 1
    for key in ("evidence_doc@k", "evidence_page@k", "mrr", "f1", "containment", "citation_precision",
                "abstain_unanswerable", "abstain_answerable", "latency_p50_s", "latency_p95_s"):
        assert key in base
    assert 0 <= base["evidence_doc@k"] <= 1
    report = (out_dir / "report.md").read_text()
    assert "| short answer contains the gold answer |" in report and "| gold-answer containment (all shown) |" in report and "answer.phrasing=model" in report
    assert json.loads((out_dir / "report.json").read_text())["rows"]["base"][0]["question"]
    code, out, err = cli("eval", str(tmp_path / "nothing"))
    assert code == 2 and "not a question set" in err


def test_reindex_from_settings_and_jobs(cli, tmp_path):
    src = tmp_path / "company"
    shutil.copytree(SAMPLES / "docs" / "hr", src / "hr")
    (tmp_path / "archivist.toml").write_text(
        f'[[sources]]\npath = "{src}"\nname = "co"\nexclude = ["**/*.csv"]\n')
    code, out, err = cli("reindex", "--no-progress", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert {f["status"] for f in report["files"]} == {"added"}
    docs = {f["doc"] for f in report["files"]}
    assert "co/hr/employee-handbook.pdf" in docs and not any(d.endswith(".csv") for d in docs)
    (src / "hr" / "onboarding-checklist.md").unlink()
    code, out, err = cli("reindex", "--no-progress")
    assert code == 0 and "removed" in err and "unchanged" in err
    code, out, err = cli("jobs")
    assert code == 0 and out.count("reindex") == 2 and "succeeded" in out
    job_id = int(out.split()[0])
    code, out, err = cli("jobs", "--show", str(job_id))
    assert code == 0 and "removed 1" in out


def test_reindex_and_schedule_without_sources_say_what_to_do(cli, tmp_path):
    code, out, err = cli("reindex")
    assert code == 2 and "[[sources]]" in err
    code, out, err = cli("schedule", "--cron", "not a cron")
    assert code == 2 and "cron" in err


def test_schedule_runs_reindex_and_survives_a_failing_run(tmp_path):
    import threading

    from ingest.schedule import run_schedule

    calls = []

    def job():
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("disk full")
        return "ok"

    stop = threading.Event()
    t = threading.Thread(target=run_schedule, args=("* * * * * *", job), kwargs={"stop": stop})
    t.start()
    time.sleep(3.5)
    stop.set()
    t.join(timeout=10)
    assert len(calls) >= 2, "the run after a failing one still happens"
