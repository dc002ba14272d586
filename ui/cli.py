"""The ``archivist`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from retrieval.errors import ArchivistError
from ui.settings import DEFAULT_DATA_DIR, Settings, load_settings

EPILOG = f"""\
Settings come from ./archivist.toml (or --config FILE, or $ARCHIVIST_CONFIG) and
ARCHIVIST_* environment variables; flags win over both. The index lives in
./{DEFAULT_DATA_DIR}/index under the current directory unless --index DIR or the
'index' setting says otherwise. Nothing is ever downloaded: models come from
installed packages or local folders.
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", metavar="DIR", help=f"index folder (default: ./{DEFAULT_DATA_DIR}/index)")
    p.add_argument("--config", metavar="FILE", help="settings file (default: ./archivist.toml if present)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")


def _user_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user", metavar="NAME", help="act as this user of the users file: see only what they may read "
                   "(default: the operator, who sees everything)")


def _password_flags(p: argparse.ArgumentParser) -> None:
    """How a password is given (users add, users passwd): never as an argument, which others can see."""
    pw = p.add_mutually_exclusive_group()
    pw.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    pw.add_argument("--random-password", action="store_true", help="generate a password and print it once")


def _job_flags(p: argparse.ArgumentParser) -> None:
    """The flags of the commands that run an ingestion job (ingest, reindex)."""
    p.add_argument("--force", action="store_true", help="re-ingest files even when unchanged")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _common(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archivist",
        description="Private question answering over your own documents, fully offline.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("ingest", help="add files or folders to the index", description=(
        "Parse, chunk, embed and index files. Folders are walked recursively; each file is known "
        "by its path relative to the folder given (a single file by its name). Unchanged files are "
        "skipped. A file that cannot be read is reported and the rest go on; the exit code is 1 "
        "when any file failed."))
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    _job_flags(p)

    p = sub.add_parser("reindex", help="sync the index with the sources named in settings", description=(
        "Walk every [[sources]] folder of the settings (with its include/exclude globs) and bring the index "
        "in line: new files added, changed ones replaced, moved ones kept without re-embedding, deleted ones "
        "removed. Unchanged files are skipped, so a rerun takes seconds. Exit code 1 when any file failed."))
    _job_flags(p)

    p = sub.add_parser("jobs", help="recent ingestion and reindex jobs", description=(
        "The last jobs with their status, counts and duration; --show ID lists a job's per-file errors. "
        "A job whose process died is shown as failed, never as running forever."))
    p.add_argument("-n", type=int, default=10, help="how many jobs (default 10)")
    p.add_argument("--show", type=int, metavar="ID", help="one job in full")
    p.add_argument("--json", action="store_true", help="JSON output")
    _common(p)

    p = sub.add_parser("schedule", help="reindex the sources on a schedule (a long-running service)", description=(
        "Runs 'reindex' at the times of schedule.cron (default '0 2 * * *', every night at 02:00), logs each "
        "run, and keeps going when a run fails. Stop it with Ctrl-C or SIGTERM."))
    p.add_argument("--cron", metavar="EXPR", help="override schedule.cron, e.g. '*/30 * * * *'")
    _common(p)

    p = sub.add_parser("search", help="find passages", description=(
        "Hybrid (lexical + dense) search over the index. With --queries, reads JSON lines "
        "with 'id' and 'question' and prints one result object per line, in input order."))
    p.add_argument("query", nargs="?", help="what to look for")
    p.add_argument("-k", type=int, default=None, help="number of results (default: search.k, 5)")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.add_argument("--queries", metavar="FILE.jsonl", help="batch: one JSON object per line with id and question")
    p.add_argument("--mode", choices=["hybrid", "dense", "lexical"], help="search mode (default: hybrid)")
    p.add_argument("--doc-prefix", metavar="PREFIX", help="only documents whose path starts with PREFIX")
    _user_flag(p)
    _common(p)

    p = sub.add_parser("ask", help="answer a question from the documents, with citations", description=(
        "Retrieve, pick the sentence that answers and the answer in it, and print the short answer, the quote "
        "that backs it and its source (answer.phrasing = model lets the small model phrase the short answer, "
        "shown only when it passes the checks). When the documents do not answer the question, says so and lists "
        "the closest passages. "
        "With --questions, reads JSON lines with 'id' and 'question' and prints one answer object per line, "
        "in input order, loading the models once."))
    p.add_argument("question", nargs="?", help="the question")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.add_argument("--questions", metavar="FILE.jsonl", help="batch: one JSON object per line with id and question")
    p.add_argument("--no-stream", action="store_true", help="print the answer only when it is complete")
    _user_flag(p)
    _common(p)

    p = sub.add_parser("eval", help="measure retrieval and answers on a question set", description=(
        "Evaluate on SET_DIR (docs/ and questions.jsonl, the layout of shared/eval): ingests SET_DIR/docs into "
        "its own index when needed, answers every question and reports retrieval, answer quality, citations, "
        "abstention and latency, as JSON and Markdown. --compare runs the same questions with other settings "
        "and puts the results side by side, e.g. --compare answer.phrasing=model."))
    p.add_argument("set_dir", metavar="SET_DIR", help="folder with docs/ and questions.jsonl")
    p.add_argument("--out", metavar="DIR", help="where to write report.json and report.md (default: <data_dir>/eval/<set>)")
    p.add_argument("--limit", type=int, help="answer at most N questions (a seeded sample keeping the answerable/unanswerable mix)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --limit sample (default 0)")
    p.add_argument("--compare", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                   help="another setting to compare (repeatable), e.g. generator.backend=fake")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    _user_flag(p)
    _common(p)

    p = sub.add_parser("serve", help="start the web app", description=(
        "Start the web app (Ask, Admin, Evaluate) on web.host:web.port (default 0.0.0.0:8501, every interface "
        "of this host; --host 127.0.0.1 for this machine only). Models load once and are shared by all sessions."))
    p.add_argument("--host", help="address to listen on (default: web.host, 0.0.0.0)")
    p.add_argument("--port", type=int, help="port (default: web.port, 8501)")
    _common(p)

    p = sub.add_parser("calibrate", help="fit when to abstain on this index's own documents", description=(
        "Draws questions from the index's own chunks (answerable) and questions it cannot answer (other domains, "
        "invented names), scores them as answers are scored, and stores the abstention threshold that refuses at "
        "most answer.max_false_abstain of the answerable ones. Runs by itself after an ingest or reindex when the "
        "index has none yet or has changed by 5 percent of its chunks; 'archivist stats' shows the result."))
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the calibration as JSON")
    _common(p)

    p = sub.add_parser("stats", help="what the index holds")
    p.add_argument("--json", action="store_true", help="JSON output")
    _user_flag(p)
    _common(p)

    p = sub.add_parser("docs", help="list indexed documents")
    p.add_argument("--json", action="store_true", help="JSON output")
    _user_flag(p)
    _common(p)

    p = sub.add_parser("users", help="manage the web app's users (auth.mode = local)", description=(
        "Users of the web app and their groups, kept in the users file (auth.users_file, default "
        "<data_dir>/users.json) with a salted scrypt hash of each password, never the password. Passwords are "
        "typed at a prompt, read from stdin (--password-stdin) or generated (--random-password); never given as "
        "an argument. Members of the group 'admin' may ingest, see jobs, evaluate and read the audit log."))
    us = p.add_subparsers(dest="users_command", metavar="ACTION")
    q = us.add_parser("add", help="add a user")
    q.add_argument("name")
    q.add_argument("--groups", default="", help="comma-separated groups, e.g. hr,admin")
    _password_flags(q)
    _common(q)
    q = us.add_parser("remove", help="remove a user")
    q.add_argument("name")
    _common(q)
    q = us.add_parser("list", help="users and their groups")
    q.add_argument("--json", action="store_true", help="JSON output")
    _common(q)
    q = us.add_parser("set-groups", help="replace a user's groups")
    q.add_argument("name")
    q.add_argument("groups", help="comma-separated groups ('' for none)")
    _common(q)
    q = us.add_parser("passwd", help="set a user's password")
    q.add_argument("name")
    _password_flags(q)
    _common(q)

    q = us.add_parser("demo", help="create (or reset) the demo users and print their new passwords", description=(
        "For the bundled data-samples: 'demo-admin' (groups admin, finance, hr: reads everything) and "
        "'demo-employee' (group engineering: reads the documents shared with everyone, not finance/ nor "
        "hr/benefits-summary.xlsx). Fresh random passwords each time; there are no built-in ones."))
    _common(q)

    p = sub.add_parser("audit", help="the audit log: who asked what, who ran which job", description=(
        "Entries of the audit log (newest first): questions with the chunks retrieved and cited and the answer, "
        "and jobs with who ran them. --export writes them as CSV or JSON lines. Kept for audit.retention_days."))
    p.add_argument("-n", type=int, default=50, help="how many entries (default 50; 0 for all)")
    p.add_argument("--user", metavar="NAME", help="only this user's entries")
    p.add_argument("--action", help="only this action (ask, search, eval, ingest, reindex, remove, sign-in, ...)")
    p.add_argument("--days", type=float, help="only the last DAYS days")
    p.add_argument("--export", metavar="FILE", help="write the entries to FILE (.csv or .jsonl)")
    p.add_argument("--json", action="store_true", help="JSON lines on stdout")
    _common(p)

    p = sub.add_parser("finetune", help="fine-tune the small models on the indexed documents", description=(
        "Builds question-answer pairs from the indexed chunks (kept only when the question finds its own chunk "
        "again), fine-tunes the generator with LoRA within the time budget and merges it, trains a cross-encoder "
        "reranker from the MiniLM encoder (kept only if it helps), and answers a fixed held-out share of the "
        "questions before and after. The result is a new model version in <data_dir>/models; promote it with "
        "'archivist models promote VERSION' (or --promote). Uses a GPU when there is one; needs none."))
    p.add_argument("--budget-minutes", type=float, help="training time (default: finetune.budget_minutes, 20)")
    p.add_argument("--max-steps", type=int, help="stop the generator after this many optimizer steps")
    p.add_argument("--no-generator", action="store_true", help="train only the reranker")
    p.add_argument("--no-reranker", action="store_true", help="train only the generator")
    p.add_argument("--questions", metavar="FILE.jsonl", help="your own questions (shared eval layout) to train on too")
    p.add_argument("--no-feedback", action="store_true", help="do not learn from answers marked helpful")
    p.add_argument("--promote", action="store_true", help="promote the new version when it is done")
    p.add_argument("--json", action="store_true", help="print the version's record as JSON")
    _common(p)

    p = sub.add_parser("models", help="fine-tuned model versions: list, promote, roll back", description=(
        "The versions made by 'archivist finetune' with their held-out scores. 'promote V' makes V the model "
        "that answers (and reranks); 'rollback' returns to the version before (or to the shipped models)."))
    ms = p.add_subparsers(dest="models_command", metavar="ACTION")
    q = ms.add_parser("list", help="versions and their scores")
    q.add_argument("--json", action="store_true", help="JSON output")
    _common(q)
    q = ms.add_parser("promote", help="use this version")
    q.add_argument("version")
    _common(q)
    q = ms.add_parser("rollback", help="back to the version used before")
    _common(q)
    q = ms.add_parser("remove", help="delete a version that is not in use")
    q.add_argument("version")
    _common(q)

    p = sub.add_parser("remove", help="remove documents from the index")
    p.add_argument("docs", nargs="+", metavar="DOC", help="document names as listed by 'archivist docs'")
    _common(p)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {"index": getattr(args, "index", None)}
    if args.command == "serve":
        overrides.update({"web.host": args.host, "web.port": args.port})
    if getattr(args, "mode", None):
        overrides["search.mode"] = args.mode
    return load_settings(getattr(args, "config", None), **overrides)


def _setup_logging(args: argparse.Namespace, settings: Settings | None = None) -> None:
    level = {0: (settings.log_level if settings else "WARNING"), 1: "INFO"}.get(args.verbose, "DEBUG")
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.verbose < 2:
        for noisy in ("unstructured", "transformers", "sentence_transformers", "faiss", "bm25s", "httpx"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        import warnings

        warnings.filterwarnings("ignore")


def _print_report(report, index_path, as_json: bool, verbose: bool = False) -> int:
    if as_json:
        print(json.dumps({
            "files": [r.__dict__ for r in report.results],
            "seconds": round(report.seconds, 3),
            "chunks": report.chunks,
            "generation": report.generation,
            "job": report.job_id,
        }, indent=2))
    else:
        shown = ("failed", "empty", "skipped") if verbose else ("failed", "empty")
        for r in report.results:
            if r.status in shown:
                print(f"  {r.status:>7}  {r.doc}: {r.reason}", file=sys.stderr)
        if report.count("skipped") and not verbose:
            print(f"  {report.count('skipped')} file(s) of a type Archivist does not read were skipped "
                  "(--verbose lists them)", file=sys.stderr)
        print(report.summary(), file=sys.stderr)
        print(f"index: {index_path}", file=sys.stderr)
    return 1 if report.failed else 0


def cmd_reindex(args, settings: Settings) -> int:
    from ui.services import reindex

    report = reindex(settings, progress=not args.no_progress and not args.json, force=args.force)
    _audit_job(settings, "reindex", report)
    return _print_report(report, settings.index_dir, args.json, args.verbose > 0)


def _audit_job(settings: Settings, action: str, report=None, detail: str = "") -> None:
    from ui.services import open_audit, operator_name

    audit = open_audit(settings)
    try:
        if report is not None:
            detail = f"job {report.job_id}: {report.summary()}"
        audit.record(operator_name(), action, detail=detail)
    finally:
        audit.close()


def _reader(args, settings: Settings):
    """(identity or None for the operator, the search filter, the name for the audit log)."""
    from ui.services import identity_for, operator_name

    ident = identity_for(settings, getattr(args, "user", None))
    if ident is None:
        return None, None, operator_name()
    return ident, ident.filter, ident.user


def _fmt_time(ts: float | None) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def cmd_jobs(args, settings: Settings) -> int:
    from ingest.jobs import JobLog

    if not (settings.index_dir / "archivist.sqlite").exists():
        print("No jobs yet: the index has not been created. Run 'archivist ingest PATH' or 'archivist reindex'.")
        return 0
    log = JobLog(settings.index_dir)
    if args.show is not None:
        job = log.get(args.show)
        if job is None:
            raise ArchivistError(f"no job {args.show}; see 'archivist jobs'")
        if args.json:
            print(json.dumps(job.__dict__, indent=2))
            return 0
        print(f"job {job.id}: {job.kind}, {job.status}, started {_fmt_time(job.started_at)}, "
              f"{job.done}/{job.total} files, {job.seconds or 0:.1f} s")
        print("counts: " + (", ".join(f"{k} {v}" for k, v in job.counts.items()) or "-"))
        if job.message:
            print(job.message)
        for e in job.errors:
            print(f"  {e['doc']}: {e['reason']}")
        return 0
    jobs = log.list(args.n)
    if args.json:
        print(json.dumps([j.__dict__ for j in jobs], indent=2))
        return 0
    if not jobs:
        print("No jobs yet.")
    for j in jobs:
        counts = ", ".join(f"{k} {v}" for k, v in j.counts.items()) or "-"
        print(f"{j.id:>4}  {j.kind:<8} {j.status:<10} {_fmt_time(j.started_at)}  {j.seconds or 0:7.1f} s  "
              f"{j.done}/{j.total}  {counts}" + (f"  — {j.message}" if j.status == "failed" and j.message else ""))
    return 0


def cmd_schedule(args, settings: Settings) -> int:
    import signal
    import threading

    from ingest.schedule import cron_trigger, run_schedule
    from ui.services import reindex

    expr = args.cron or settings.schedule.cron
    try:
        cron_trigger(expr)
    except ValueError as exc:
        raise ArchivistError(str(exc)) from None
    if not settings.sources:
        raise ArchivistError("no sources are configured: add [[sources]] tables to archivist.toml (see README)")
    logging.getLogger("archivist").setLevel(logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger("archivist").addHandler(handler)
    logging.getLogger("archivist").propagate = False
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())

    def job():
        report = reindex(settings)
        _audit_job(settings, "reindex", report)
        return report.summary()

    print(f"archivist: reindexing on '{expr}'; Ctrl-C to stop", file=sys.stderr)
    try:
        run_schedule(expr, job, stop=stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


def cmd_serve(args, settings: Settings) -> int:
    import os

    from ingest._offline import set_offline_env
    from ui.child import PortError, check_port_free, run_in_group
    from ui.services import user_store

    host, port = settings.web.host, settings.web.port
    try:
        check_port_free(host, port)
    except PortError as exc:
        raise ArchivistError(str(exc)) from None
    app = Path(__file__).resolve().parent / "web" / "app.py"
    env = dict(os.environ)
    set_offline_env()
    env.update({k: v for k, v in os.environ.items() if k.startswith(("HF_", "TRANSFORMERS_", "DO_NOT", "SCARF", "UNSTRUCTURED"))})
    if args.config:
        env["ARCHIVIST_CONFIG"] = str(Path(args.config).resolve())
    env["ARCHIVIST_INDEX"] = str(settings.index_dir.resolve())
    env["ARCHIVIST_DATA_DIR"] = str(Path(settings.data_dir).resolve())  # the same users, audit log, uploads
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    if settings.auth.mode == "local" and not user_store(settings).list():
        print(f"archivist: no users yet in {settings.users_path}; add one first: "
              "archivist users add NAME --groups admin", file=sys.stderr)
    cmd = streamlit_command(app, settings)
    # the app checks the address of the connection itself for proxy sign-in: never let the
    # server rewrite it from an X-Forwarded-For header
    env["FORWARDED_ALLOW_IPS"] = ""
    print(f"archivist: serving on http://{host}:{port} (index {settings.index_dir}); Ctrl-C to stop", file=sys.stderr)
    code = run_in_group(cmd, env)  # stopping this process stops the server and its children
    return 0 if code in (0, -2, -15, 130, 143) else code


def streamlit_command(app: Path, settings: Settings) -> list[str]:
    """The Streamlit server of `archivist serve`: headless, no telemetry, XSRF protection, and
    errors shown to a browser as a message only (no traceback with the server's paths)."""
    w = settings.web
    return [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless=true",
            f"--server.address={w.host}", f"--server.port={w.port}", "--browser.gatherUsageStats=false",
            "--server.fileWatcherType=none", "--global.developmentMode=false", "--client.toolbarMode=minimal",
            f"--server.maxUploadSize={w.max_upload_mb}", "--server.enableXsrfProtection=true",
            "--client.showErrorDetails=none", "--logger.level=warning"]


def cmd_ingest(args, settings: Settings) -> int:
    from ingest import discover
    from ui.services import after_ingest, make_ingestor, open_index

    try:
        sources = discover(args.paths)
    except FileNotFoundError as exc:
        raise ArchivistError(str(exc)) from None
    index = open_index(settings)
    ingestor = make_ingestor(settings, index)
    progress = not args.no_progress and not args.json
    try:
        report = ingestor.ingest(sources, progress=progress, force=args.force)
    finally:
        ingestor.parser.close()
        ingestor.jobs.close()
    after_ingest(settings, index, progress=progress)
    _audit_job(settings, "ingest", report)
    return _print_report(report, index.path, args.json, args.verbose > 0)


def _calibration_lines(cal) -> list[str]:
    return [
        f"abstention: threshold {cal.min_confidence:.3f}, fitted {cal.fitted_at} on generation {cal.generation} "
        f"({cal.fit_answerable} answerable + {cal.fit_unanswerable} unanswerable questions from the index)",
        f"            held out: refuses {cal.heldout_false_abstain:.1%} of {cal.heldout_answerable} answerable "
        f"(target <= {cal.max_false_abstain:.0%}), {cal.heldout_true_abstain:.1%} of {cal.heldout_unanswerable} "
        f"unanswerable",
    ]


def cmd_calibrate(args, settings: Settings) -> int:
    from ui.services import ProgressBar, calibrate, open_index

    index = open_index(settings, create=False)
    bar = ProgressBar("scoring questions drawn from the index", not (args.json or args.no_progress))
    try:
        cal = calibrate(settings, index, on_progress=bar)
    finally:
        bar.close()
    if cal is None:
        raise ArchivistError("the index is too small to draw questions from (it needs at least 10 chunks with "
                             "sentences); the default threshold answer.min_confidence stays in use")
    _audit_job(settings, "calibrate", detail=f"threshold {cal.min_confidence:.3f} on generation {cal.generation}")
    if args.json:
        print(json.dumps(json.loads(cal.to_json()), indent=2))
    else:
        print("\n".join(_calibration_lines(cal)))
    return 0


def _hit_json(h) -> dict:
    c = h.chunk
    return {"rank": h.rank, "doc": c.doc, "page": c.page, "section": c.section, "chunk_id": c.id,
            "text": c.text, "score": round(float(h.score), 6)}


def _read_jsonl(path: str) -> list[dict]:
    from qa.evaluate import parse_questions

    try:
        return parse_questions(Path(path).read_text(encoding="utf-8"), path)
    except OSError as exc:
        raise ArchivistError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ArchivistError(f"{exc} (each line needs a 'question' string and an 'id')") from None


def cmd_search(args, settings: Settings) -> int:
    from retrieval import SearchFilter
    from ui.services import open_index

    k = settings.search.k if args.k is None else args.k
    if not 1 <= k <= 1000:
        raise ArchivistError(f"-k {k}: give the number of passages to show, from 1 to 1000 (default {settings.search.k})")
    from ui.services import open_audit

    _ident, flt, who = _reader(args, settings)
    if args.doc_prefix:
        flt = SearchFilter(doc_prefix=args.doc_prefix, groups=flt.groups if flt else None)
    if args.queries:
        queries = _read_jsonl(args.queries)
        index = open_index(settings, create=False)
        audit = open_audit(settings)
        failed = 0
        for q in queries:
            try:
                hits = index.search(q["question"], k, filter=flt)
            except ValueError as exc:
                failed += 1
                print(json.dumps({"id": q.get("id"), "query": q["question"], "error": str(exc)}, ensure_ascii=False),
                      flush=True)
                continue
            audit.record(who, "search", question=q["question"], retrieved=[h.chunk.id for h in hits])
            out = {"id": q.get("id"), "query": q["question"], "results": [_hit_json(h) for h in hits]}
            print(json.dumps(out, ensure_ascii=False), flush=True)
        return 1 if failed else 0
    if not args.query or not args.query.strip():
        raise ArchivistError("give a query, e.g. archivist search \"parental leave\", or --queries FILE.jsonl")
    index = open_index(settings, create=False)
    hits = index.search(args.query, k, filter=flt)
    audit = open_audit(settings)
    audit.record(who, "search", question=args.query, retrieved=[h.chunk.id for h in hits])
    audit.close()
    if args.json:
        print(json.dumps({"query": args.query, "results": [_hit_json(h) for h in hits]}, ensure_ascii=False, indent=2))
        return 0
    if not hits:
        print("No passages matched. Try other words, or check 'archivist stats' for what is indexed.")
        return 0
    for h in hits:
        c = h.chunk
        where = c.doc + (f", page {c.page}" if c.page else "") + (f" — {c.section}" if c.section else "")
        text = " ".join(c.text.split())
        print(f"[{h.rank}] {where}  (score {h.score:.3f})\n    {text[:300]}{'…' if len(text) > 300 else ''}\n")
    return 0


def cmd_stats(args, settings: Settings) -> int:
    from ui.services import open_index

    from qa.calibration import stored

    _ident, flt, _who = _reader(args, settings)
    index = open_index(settings, create=False)
    stats = index.stats(flt)
    cal = stored(index) if flt is None else None  # fitted on every document: the operator's view only
    if args.json:
        print(json.dumps({**stats, "calibration": json.loads(cal.to_json()) if cal else None}, indent=2))
        return 0
    print(f"index:      {stats['index']}")
    print(f"embedder:   {stats['embedder']}")
    print(f"documents:  {stats['documents']}")
    print(f"chunks:     {stats['chunks']}")
    print(f"pages:      {stats['pages']}")
    print("formats:    " + (", ".join(f"{k} {v}" for k, v in stats["formats"].items()) or "-"))
    if stats["size_bytes"] is not None:  # not shown to a --user: it counts every document
        print(f"size:       {stats['size_bytes'] / 1e6:.1f} MB")
    if flt is None:
        print("\n".join(_calibration_lines(cal)) if cal else
              "abstention: default threshold (not calibrated yet: run 'archivist calibrate')")
    return 0


def cmd_docs(args, settings: Settings) -> int:
    from ui.services import open_index

    _ident, flt, _who = _reader(args, settings)
    docs = open_index(settings, create=False).documents(flt)
    if args.json:
        print(json.dumps([d.__dict__ for d in docs], indent=2, default=list))
        return 0
    if not docs:
        print("The index holds no documents yet; add some with 'archivist ingest PATH'.")
    from ingest.pipeline import plural
    from qa.audit import printable

    for d in docs:
        pages = plural(d.pages, "page") if d.pages else "-"
        print(f"{printable(d.doc)}\t{d.format}\t{pages}\t{plural(d.chunks, 'chunk')}\t{readers_text(d.groups)}")
    nobody = [d.doc for d in docs if not d.groups]
    if nobody:
        print(f"\n{plural(len(nobody), 'document')} readable by nobody: add an [[access.rules]] entry or a .groups "
              "file for them, then run reindex (or ingest again)", file=sys.stderr)
    return 0


def readers_text(groups) -> str:
    """Who may read a document, in words; an empty list is flagged."""
    return "readers: " + ", ".join(groups) if groups else "READABLE BY NOBODY: add a rule or a .groups file"


def cmd_remove(args, settings: Settings) -> int:
    from ui.services import open_index

    index = open_index(settings, create=False)
    known = {d.doc for d in index.documents()}
    missing = [d for d in args.docs if d not in known]
    if missing:
        raise ArchivistError("not in the index: " + ", ".join(missing) + " (see 'archivist docs')")
    with index.writer() as w:
        for d in args.docs:
            w.remove_document(d)
        w.commit()
    _audit_job(settings, "remove", detail="removed: " + ", ".join(args.docs))
    print(f"removed {len(args.docs)} document(s)", file=sys.stderr)
    return 0


def _quote_lines(quote: str, citations) -> list[str]:
    n = f"[{citations[0].n}] " if citations else ""
    if quote.startswith("|"):  # a table quote: its rows as they are
        return [n + "from the table:"] + ["    " + line for line in quote.splitlines()]
    return [f"{n}“{' '.join(quote.split())}”"]


def _print_quote(quote: str, citations) -> None:
    print("\n".join(_quote_lines(quote, citations)), flush=True)


def _print_answer(ans, quote_printed: bool, bold: bool = False) -> None:
    if ans.abstained:
        print(ans.answer)
        if ans.hits:
            print("\nThe closest passages:")
            for h in ans.hits[:3]:
                c = h.chunk
                where = c.doc + (f", page {c.page}" if c.page else "")
                print(f"  - {where}: {' '.join(c.text.split())[:200]}")
        return
    if not quote_printed:
        if ans.answer:
            print(f"\033[1m{ans.answer}\033[0m" if bold else ans.answer)
            print()
        _print_quote(ans.quote, ans.citations)
    elif ans.answer:
        print(f"\nAnswer: \033[1m{ans.answer}\033[0m" if bold else f"\nAnswer: {ans.answer}")
    print()
    for p in ans.citations:
        c = p.chunk
        where = c.doc + (f", page {c.page}" if c.page else "") + (f" — {c.section}" if c.section else "")
        print(f"[{p.n}] {where}")


def cmd_ask(args, settings: Settings) -> int:
    from qa import Answer
    from qa.answer import Evidence
    from ui.services import make_answerer, open_audit, open_index

    _ident, flt, who = _reader(args, settings)
    audit = open_audit(settings)
    if args.questions:
        queries = _read_jsonl(args.questions)
        answerer = make_answerer(settings, open_index(settings, create=False))
        failed = 0
        for q in queries:
            try:
                ans = answerer.ask(q["question"], filter=flt)
            except (ValueError, ArchivistError) as exc:  # this question's fault: say so on its line, go on
                failed += 1
                print(json.dumps({"id": q.get("id"), "question": q["question"], "error": str(exc)},
                                 ensure_ascii=False), flush=True)
                continue
            audit.record_answer(who, ans)
            print(json.dumps(ans.to_json(q.get("id")), ensure_ascii=False), flush=True)
        if failed:
            print(f"archivist: {failed} of {len(queries)} question(s) could not be asked (see their 'error')",
                  file=sys.stderr)
        return 1 if failed else 0
    if not args.question or not args.question.strip():
        raise ArchivistError('ask a question, e.g. archivist ask "How many days of annual leave do I get?"')
    answerer = make_answerer(settings, open_index(settings, create=False))
    if args.json:
        ans = answerer.ask(args.question, filter=flt)
        audit.record_answer(who, ans)
        print(json.dumps(ans.to_json(None), ensure_ascii=False, indent=2))
        return 0
    tty = sys.stdout.isatty()
    stream = tty and not args.no_stream
    final, quote_printed = None, False
    for event in answerer.stream(args.question, filter=flt):
        if isinstance(event, Answer):
            final = event
        elif stream and isinstance(event, Evidence):  # the source first, the checked answer after it
            _print_quote(event.quote, event.citations)
            quote_printed = True
    audit.record_answer(who, final)
    _print_answer(final, quote_printed, bold=tty)
    return 0


def _parse_compare(spec: str) -> dict:
    out = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ArchivistError(f"--compare {spec!r}: use KEY=VALUE pairs, e.g. answer.phrasing=model")
        out[key.strip()] = value.strip()
    return out


def cmd_eval(args, settings: Settings) -> int:
    from ingest import discover
    from qa.evaluate import evaluate, load_question_set, markdown_report, summarize
    from ui.services import after_ingest, make_answerer, make_ingestor, open_audit, open_index

    _ident, flt, who = _reader(args, settings)
    try:
        qset = load_question_set(args.set_dir, limit=args.limit, seed=args.seed)
    except (FileNotFoundError, ValueError) as exc:
        raise ArchivistError(str(exc)) from None
    if not args.index:
        settings.index = settings.data_dir / "eval" / qset.name / "index"
    out_dir = Path(args.out) if args.out else settings.data_dir / "eval" / qset.name
    variants = {"base": settings}
    for spec in args.compare:
        overrides = _parse_compare(spec)
        variants[spec] = load_settings(args.config, **{"index": str(settings.index_dir), **overrides})
    index = open_index(settings)
    ingestor = make_ingestor(settings, index)
    try:
        report = ingestor.ingest(discover([qset.docs]), progress=not args.json)
    finally:
        ingestor.parser.close()
        ingestor.jobs.close()
    after_ingest(settings, index, progress=not args.json)
    if report.failed:
        print(f"note: {len(report.failed)} document(s) of the set could not be read", file=sys.stderr)
    summaries, rows = {}, {}
    from tqdm import tqdm

    for label, vs in variants.items():
        vindex = index if vs.embedder == settings.embedder and vs.search == settings.search else open_index(vs)
        answerer = make_answerer(vs, vindex)
        bar = tqdm(total=len(qset.questions), desc=f"answering ({label})", unit="q", file=sys.stderr, disable=args.json)
        rows[label] = evaluate(answerer, qset, k=vs.answer.k, on_row=lambda i, r: bar.update(1), filter=flt)
        bar.close()
        summaries[label] = summarize(rows[label])
    audit = open_audit(settings)
    audit.record(who, "eval", detail=f"{qset.name}: {len(qset.questions)} questions, variants {', '.join(variants)}")
    audit.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps({"set": qset.name, "summaries": summaries, "rows": rows}, indent=2))
    md = markdown_report(qset.name, summaries, rows)
    (out_dir / "report.md").write_text(md)
    if args.json:
        print(json.dumps({"set": qset.name, "summaries": summaries}, indent=2))
    else:
        print(md.split("\n## ")[0])
        print(f"written: {out_dir / 'report.md'} and report.json", file=sys.stderr)
    return 0


def _password(args, name: str) -> tuple[str, bool]:
    """(password, generated?) from --random-password, stdin, or a prompt typed twice."""
    import getpass

    from ui.auth import random_password

    if args.random_password:
        return random_password(), True
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise ArchivistError("no password on stdin")
        return line, False
    if not sys.stdin.isatty():
        raise ArchivistError("no terminal to type a password: use --password-stdin or --random-password")
    first = getpass.getpass(f"password for {name}: ")
    if getpass.getpass("again: ") != first:
        raise ArchivistError("the two passwords differ")
    return first, False


def cmd_users(args, settings: Settings) -> int:
    from ui.services import user_store

    store = user_store(settings)
    action = args.users_command
    if action is None:
        raise ArchivistError("say what to do: archivist users add|remove|list|set-groups|passwd (see --help)")
    if action == "list":
        users = store.list()
        if args.json:
            print(json.dumps(users, indent=2))
        elif not users:
            print(f"No users yet ({store.path}); add one with: archivist users add NAME --groups admin")
        for name, groups in users.items():
            print(f"{name}\t{','.join(groups) or '-'}")
        return 0
    if action == "remove":
        store.remove(args.name)
        _audit_job(settings, "user-remove", detail=args.name)
        print(f"removed user {args.name}", file=sys.stderr)
        return 0
    if action == "set-groups":
        store.set_groups(args.name, args.groups.split(","))
        _audit_job(settings, "user-groups", detail=f"{args.name}: {', '.join(store.list()[args.name]) or 'no groups'}")
        print(f"{args.name}: {', '.join(store.list()[args.name]) or 'no groups'}", file=sys.stderr)
        return 0
    if action == "demo":
        from ui.auth import random_password

        demo = {"demo-admin": ["admin", "finance", "hr"], "demo-employee": ["engineering"]}
        print("Sign in to the web app as:")
        for name, groups in demo.items():
            password = random_password()
            store.add(name, password, groups, replace=True)
            _audit_job(settings, "user-add", detail=f"{name} (demo): {', '.join(groups)}")
            print(f"  {name:<14} password {password}   (groups: {', '.join(groups)})")
        print(f"(stored as salted hashes in {store.path}; 'archivist users demo' again makes new passwords)")
        return 0
    password, generated = _password(args, args.name)
    if action == "add":
        store.add(args.name, password, args.groups.split(","))
        _audit_job(settings, "user-add", detail=f"{args.name}: {', '.join(store.list()[args.name]) or 'no groups'}")
        print(f"added user {args.name} ({', '.join(store.list()[args.name]) or 'no groups'})", file=sys.stderr)
    else:
        store.set_password(args.name, password)
        _audit_job(settings, "user-passwd", detail=args.name)  # that it changed, never the password
        print(f"password of {args.name} changed", file=sys.stderr)
    if generated:
        print(password)  # once, on stdout; it is stored only as a hash
    return 0


def cmd_audit(args, settings: Settings) -> int:
    import time as _time

    from qa.audit import printable
    from ui.services import open_audit
    from ui.services import operator_name as _operator

    if not settings.audit.enabled:
        print("The audit log is switched off (audit.enabled = false).", file=sys.stderr)
    audit = open_audit(settings)
    since = _time.time() - args.days * 86400 if args.days else None
    entries = audit.entries(user=args.user, action=args.action, since=since, limit=args.n or None)
    if args.export:
        fmt = "jsonl" if args.export.endswith((".jsonl", ".json")) else "csv"
        Path(args.export).write_text(audit.export(entries, fmt), encoding="utf-8")
        audit.record(_operator(), "export", detail=f"{len(entries)} entries to {args.export}")
        print(f"wrote {len(entries)} entries to {args.export}", file=sys.stderr)
        return 0
    if args.json:
        for e in entries:
            print(json.dumps(e.to_json(), ensure_ascii=False))
        return 0
    if not entries:
        print("No audit entries match.")
    for e in entries:
        when = e.to_json()["time"]
        what = e.question if e.question is not None else e.detail
        tail = ""
        if e.action == "ask":
            tail = " → abstained" if e.abstained else f" → {len(e.cited)} cited of {len(e.retrieved)} retrieved"
        print(f"{when}  {printable(e.user):<16} {printable(e.action):<8} {printable(what)[:100]}{tail}")
    return 0


def _version_line(v, active: str | None) -> str:
    ev = v.record.get("eval", {})
    b, a = ev.get("before", {}), ev.get("after", {})

    def m(d, key):
        x = d.get(key)
        return "-" if x is None else f"{x:.3f}"

    rr = v.record.get("reranker") or {}
    parts = [f"{'*' if v.id == active else ' '} {v.id}", v.created,
             "generator" if v.generator else "", "reranker" if v.reranker else "",
             f"containment {m(b, 'containment')} -> {m(a, 'containment')}", f"F1 {m(b, 'f1')} -> {m(a, 'f1')}",
             f"wrongly abstained {m(b, 'abstain_answerable')} -> {m(a, 'abstain_answerable')}"]
    if rr:
        parts.append(f"chunk@5 {rr.get('chunk_hit@5_before')} -> {rr.get('chunk_hit@5_after')}")
    return "  ".join(p for p in parts if p)


def cmd_finetune(args, settings: Settings) -> int:
    from ui.services import finetune, model_versions

    questions = _read_jsonl(args.questions) if args.questions else []
    last = {"stage": None}

    def on_stage(name, info):
        if name.endswith("-step"):
            if name == "generator-step" and info["step"] % 5 == 0:
                print(f"  generator step {info['step']}: loss {info['loss']:.3f}, {info['seconds']:.0f}/{info['budget_s']:.0f} s",
                      file=sys.stderr)
            return
        if name != last["stage"]:
            last["stage"] = name
            print(f"archivist finetune: {name} " + ", ".join(f"{k} {v}" for k, v in info.items()), file=sys.stderr)

    version = finetune(settings, budget_minutes=args.budget_minutes, max_steps=args.max_steps,
                       generator=False if args.no_generator else None, reranker=False if args.no_reranker else None,
                       questions=questions, use_feedback=not args.no_feedback, on_stage=on_stage)
    _audit_job(settings, "finetune", detail=f"made {version.id}")
    versions = model_versions(settings)
    if args.promote:
        versions.promote(version.id)
    if args.json:
        print(json.dumps({"version": version.id, "path": str(version.path), "record": version.record}, indent=2, default=str))
    else:
        active = versions.active.id if versions.active else None
        print(_version_line(version, active))
        print(f"report: {version.path / 'report.md'}", file=sys.stderr)
        if not args.promote:
            print(f"promote it with: archivist models promote {version.id}", file=sys.stderr)
    return 0


def cmd_models(args, settings: Settings) -> int:
    from ui.services import model_versions

    versions = model_versions(settings)
    action = args.models_command or "list"
    if action == "list":
        items = versions.list()
        active = versions.active.id if versions.active else None
        if getattr(args, "json", False):
            print(json.dumps({"active": active, "versions": [{"id": v.id, "path": str(v.path), "record": v.record}
                                                              for v in items]}, indent=2, default=str))
            return 0
        if not items:
            print("No fine-tuned versions yet; make one with: archivist finetune")
        else:
            print(f"in use: {active or 'the shipped models'}")
        for v in items:
            print(_version_line(v, active))
        return 0
    if action == "promote":
        v = versions.promote(args.version)
        _audit_job(settings, "promote", detail=v.id)
        print(f"{v.id} is in use now (restart 'archivist serve' to load it); 'archivist models rollback' undoes it",
              file=sys.stderr)
        return 0
    if action == "rollback":
        v = versions.rollback()
        _audit_job(settings, "rollback", detail=v.id if v else "shipped models")
        print(f"in use now: {v.id if v else 'the shipped models'} (restart 'archivist serve' to load it)", file=sys.stderr)
        return 0
    versions.remove(args.version)
    _audit_job(settings, "model-remove", detail=args.version)
    print(f"removed {args.version}", file=sys.stderr)
    return 0


COMMANDS = {"finetune": cmd_finetune, "models": cmd_models, "users": cmd_users, "audit": cmd_audit, "ask": cmd_ask, "eval": cmd_eval, "ingest": cmd_ingest, "reindex": cmd_reindex, "jobs": cmd_jobs,
            "schedule": cmd_schedule, "serve": cmd_serve, "search": cmd_search, "stats": cmd_stats, "calibrate": cmd_calibrate, "docs": cmd_docs, "remove": cmd_remove}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    try:
        settings = _settings(args)
        _setup_logging(args, settings)
        if settings.private_files:
            import os

            os.umask(0o077)  # the documents' text, the audit log: for the service's account alone
        return COMMANDS[args.command](args, settings)
    except ArchivistError as exc:
        print(f"archivist: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"archivist: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # bad user input that reached a component
        print(f"archivist: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archivist: interrupted; the index keeps its last committed state", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
