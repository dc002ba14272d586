"""The ``archivist`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ui.auth import Identity
from ui.services import (Answer, Archivist, ArchivistError, Evidence, ProgressBar, load_question_set, parse_questions,
                         plural, printable)
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
    p.add_argument("--ray", nargs="?", const="auto", metavar="ADDRESS",
                   help="parse and embed on a Ray cluster: its head's HOST:PORT, or none for 'auto' (the cluster "
                        "this machine belongs to); default: ingest.ray_address, empty: here")
    _common(p)


def _actions(p: argparse.ArgumentParser, dest: str):
    """The ACTION subcommands of a command group (users, models, tokens); the group alone still
    has the common flags' defaults, so it can say what to do."""
    p.set_defaults(verbose=0, index=None, config=None)
    return p.add_subparsers(dest=dest, metavar="ACTION")


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
    _local_flag(p)
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
    p.add_argument("--server", metavar="URL", help="ask a running API (e.g. http://127.0.0.1:8502) with the token in "
                   "$ARCHIVIST_TOKEN: its models are loaded already")
    _local_flag(p)
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
    p.add_argument("--api-port", type=int, metavar="PORT",
                   help="port of the HTTP API started beside it (default: api.port, 8502; 0: no API)")
    _common(p)

    p = sub.add_parser("api", help="start the HTTP API alone (OpenAI-compatible chat, search, documents, jobs)",
                       description=(
        "Serve the HTTP API on api.host:api.port (default 0.0.0.0:8502): POST /v1/chat/completions (OpenAI's shapes, "
        "streaming too, with citations), /v1/search, /v1/documents, /v1/jobs, /v1/feedback, /healthz, /metrics; "
        "its OpenAPI spec at /docs. Programs sign in with a token: archivist tokens create USER. "
        "'archivist serve' starts it beside the web app."))
    p.add_argument("--host", help="address to listen on (default: api.host, 0.0.0.0)")
    p.add_argument("--port", type=int, help="port (default: api.port, 8502)")
    _common(p)

    p = sub.add_parser("tokens", help="API tokens: create, list, revoke", description=(
        "Tokens with which programs use the HTTP API as a user: each request then reads only what that user may "
        "read, and is audited under their name. A token is printed once, when made; only its digest is stored "
        "(<data_dir>/tokens.json). Removing a user revokes their tokens."))
    ts = _actions(p, "tokens_command")
    q = ts.add_parser("create", help="make a token for a user and print it once")
    q.add_argument("user_name", metavar="USER")
    q.add_argument("--expires", type=float, metavar="DAYS", help="days until it stops working (default: until revoked)")
    q.add_argument("--note", help="what it is for, e.g. 'intranet chat'")
    _common(q)
    q = ts.add_parser("list", help="tokens (their ids, owners and expiry; never the tokens)")
    q.add_argument("user_name", metavar="USER", nargs="?", help="only this user's")
    q.add_argument("--json", action="store_true", help="JSON output")
    _common(q)
    q = ts.add_parser("revoke", help="stop a token from working")
    q.add_argument("token_id", metavar="ID", help="the id 'archivist tokens list' shows (or the token itself)")
    _common(q)

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

    p = sub.add_parser("optimize", help="merge the index's segments", description=(
        "Merge the segments that are due (every size tier holding storage.merge_factor segments, and segments "
        "more than half removed). Runs by itself after each ingest or reindex; --full merges everything into "
        "one segment (an IVF index is built when it holds storage.ann_threshold chunks or more). Readers keep "
        "searching the previous commit until it is done."))
    p.add_argument("--full", action="store_true", help="merge every segment into one")
    p.add_argument("--json", action="store_true", help="JSON output")
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
    us = _actions(p, "users_command")
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
        "Adapts the embedder to the indexed documents (queries written from the chunks, hard negatives from the "
        "index; kept only if held-out queries find their chunks better, with its vectors of the index), builds "
        "question-answer pairs from the indexed chunks (kept only when the question finds its own chunk "
        "again), fine-tunes the generator with LoRA within the time budget and merges it, trains a cross-encoder "
        "reranker from the MiniLM encoder (kept only if it helps), and answers a fixed held-out share of the "
        "questions before and after. The result is a new model version in <data_dir>/models; promote it with "
        "'archivist models promote VERSION' (or --promote). Uses a GPU when there is one; needs none."))
    p.add_argument("--budget-minutes", type=float, help="training time (default: finetune.budget_minutes, 20)")
    p.add_argument("--max-steps", type=int, help="stop each model's training after this many optimizer steps")
    p.add_argument("--no-embedder", action="store_true", help="leave the embedder (and the index's vectors) as they are")
    p.add_argument("--no-generator", action="store_true", help="leave the generator as it is")
    p.add_argument("--no-reranker", action="store_true", help="train no reranker")
    p.add_argument("--questions", metavar="FILE.jsonl", help="your own questions (shared eval layout) to train on too")
    p.add_argument("--no-feedback", action="store_true", help="do not learn from answers marked helpful")
    p.add_argument("--promote", action="store_true", help="promote the new version when it is done")
    p.add_argument("--json", action="store_true", help="print the version's record as JSON")
    _common(p)

    p = sub.add_parser("models", help="fine-tuned model versions: list, promote, roll back", description=(
        "The versions made by 'archivist finetune' with their held-out scores. 'promote V' makes V the model "
        "that answers (and reranks); a version with an embedder re-embeds the index in its space first (one "
        "commit; searches go on meanwhile). 'rollback' returns to the version before (or to the shipped models)."))
    ms = _actions(p, "models_command")
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
        overrides.update({"web.host": args.host, "web.port": args.port, "api.port": args.api_port})
    if args.command == "api":
        overrides.update({"api.host": args.host, "api.port": args.port})
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


def _local_flag(p) -> None:
    p.add_argument("--local", action="store_true", help="answer in this process even when 'archivist serve' or "
                   "'archivist api' runs on this index (by default the running server answers: its models are warm)")


def _running_server(args, app: Archivist):
    """The server on this machine that serves this index, for a question the command line would
    answer as the operator; None with --local, --user or a batch."""
    if getattr(args, "local", False) or getattr(args, "user", None) or getattr(args, "questions", None) \
            or getattr(args, "queries", None):
        return None
    from ui.presence import running_server

    return running_server(app.settings)


def _who(args, app: Archivist) -> Identity:
    """The identity a command acts as: ``--user NAME``, or the operator (no access filter)."""
    user = getattr(args, "user", None)
    return app.as_user(user) if user else app.operator()


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


def cmd_reindex(args, app: Archivist) -> int:
    report = app.reindex(app.operator(), progress=not args.no_progress and not args.json, force=args.force,
                         ray_address=args.ray)
    return _print_report(report, app.settings.index_dir, args.json, args.verbose > 0)


def _fmt_time(ts: float | None) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def cmd_jobs(args, app: Archivist) -> int:
    if not (app.settings.index_dir / "archivist.sqlite").exists():
        print("No jobs yet: the index has not been created. Run 'archivist ingest PATH' or 'archivist reindex'.")
        return 0
    who = app.operator()
    if args.show is not None:
        job = app.job(who, args.show)
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
    jobs = app.jobs(who, args.n)
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


def cmd_schedule(args, app: Archivist) -> int:
    import signal
    import threading

    from ui.services import cron_trigger, run_schedule

    settings = app.settings
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
        return app.reindex(app.operator()).summary()

    print(f"archivist: reindexing on '{expr}'; Ctrl-C to stop", file=sys.stderr)
    try:
        run_schedule(expr, job, stop=stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


def _server_env(args, settings: Settings) -> dict:
    """The environment of a server child: offline, the same settings, index and data folder."""
    import os

    from ui.services.compose import offline_env

    env = dict(os.environ)
    env.update(offline_env())
    if args.config:
        env["ARCHIVIST_CONFIG"] = str(Path(args.config).resolve())
    env["ARCHIVIST_INDEX"] = str(settings.index_dir.resolve())
    env["ARCHIVIST_DATA_DIR"] = str(Path(settings.data_dir).resolve())  # the same users, audit log, uploads
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    # the servers check the address of the connection itself for proxy sign-in: never let them
    # rewrite it from an X-Forwarded-For header
    env["FORWARDED_ALLOW_IPS"] = ""
    return env


def cmd_serve(args, app: Archivist) -> int:
    from ui.child import PortError, check_port_free

    settings = app.settings
    host, port = settings.web.host, settings.web.port
    servers = [streamlit_command(Path(__file__).resolve().parent / "web" / "app.py", settings)]
    ports = [(host, port)]
    if settings.api.port:
        servers.append(api_command(settings))
        ports.append((settings.api.host, settings.api.port))
    try:
        for h, p in ports:
            check_port_free(h, p)
    except PortError as exc:
        raise ArchivistError(str(exc)) from None
    if settings.auth.mode == "local" and not app.users.list():
        print(f"archivist: no users yet in {settings.users_path}; add one first: "
              "archivist users add NAME --groups admin", file=sys.stderr)
    print(f"archivist: serving the web app on http://{host}:{port} (index {settings.index_dir}); Ctrl-C to stop",
          file=sys.stderr)
    if settings.api.port:
        print(f"archivist: the HTTP API on http://{settings.api.host}:{settings.api.port}/v1 "
              f"(its spec at /docs; tokens: archivist tokens create USER)", file=sys.stderr)
    code = _run_servers(servers, args, settings)
    return 0 if code in (0, -2, -15, 130, 143) else code


def cmd_api(args, app: Archivist) -> int:
    from ui.child import PortError, check_port_free

    a = app.settings.api
    if not a.port:
        raise ArchivistError("api.port is 0 (no API): give --port, e.g. --port 8502")
    try:
        check_port_free(a.host, a.port)
    except PortError as exc:
        raise ArchivistError(str(exc)) from None
    print(f"archivist: the HTTP API on http://{a.host}:{a.port}/v1 (its spec at /docs); Ctrl-C to stop",
          file=sys.stderr)
    code = _run_servers([api_command(app.settings)], args, app.settings)
    return 0 if code in (0, -2, -15, 130, 143) else code


def _run_servers(servers: list, args, settings: Settings) -> int:
    """Run the servers as one group (stopping this process stops them all); while they run, the
    card that lets 'ask' and 'search' on this machine use their warm models (ui.presence)."""
    from ui import presence
    from ui.child import run_in_group

    env = _server_env(args, settings)
    card = presence.announce(settings, settings.api.host, settings.api.port) if settings.api.port else None
    if card is not None:
        env[presence.SECRET_ENV] = card.secret
    try:
        return run_in_group(servers, env)
    finally:
        if card is not None:
            presence.withdraw(settings, card)


def streamlit_command(app: Path, settings: Settings) -> list[str]:
    """The Streamlit server of `archivist serve`: headless, no telemetry, XSRF protection, and
    errors shown to a browser as a message only (no traceback with the server's paths)."""
    w = settings.web
    return [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless=true",
            f"--server.address={w.host}", f"--server.port={w.port}", "--browser.gatherUsageStats=false",
            "--server.fileWatcherType=none", "--global.developmentMode=false", "--client.toolbarMode=minimal",
            f"--server.maxUploadSize={w.max_upload_mb}", "--server.enableXsrfProtection=true",
            "--client.showErrorDetails=none", "--logger.level=warning"]


def api_command(settings: Settings) -> list[str]:
    """The API server: uvicorn with the app factory, one process (the models load once), no
    forwarded-address rewriting, no server header."""
    a = settings.api
    return [sys.executable, "-m", "uvicorn", "ui.api:create_app", "--factory", "--host", a.host, "--port", str(a.port),
            "--no-proxy-headers", "--no-server-header", "--log-level", "warning", "--timeout-graceful-shutdown", "5"]


def cmd_ingest(args, app: Archivist) -> int:
    progress = not args.no_progress and not args.json
    report = app.ingest_paths(app.operator(), args.paths, progress=progress, force=args.force, ray_address=args.ray)
    return _print_report(report, app.settings.index_dir, args.json, args.verbose > 0)


def _calibration_lines(cal) -> list[str]:
    return [
        f"abstention: threshold {cal.min_confidence:.3f}, fitted {cal.fitted_at} on generation {cal.generation} "
        f"({cal.fit_answerable} answerable + {cal.fit_unanswerable} unanswerable questions from the index)",
        f"            held out: refuses {cal.heldout_false_abstain:.1%} of {cal.heldout_answerable} answerable "
        f"(target <= {cal.max_false_abstain:.0%}), {cal.heldout_true_abstain:.1%} of {cal.heldout_unanswerable} "
        f"unanswerable",
    ]


def cmd_calibrate(args, app: Archivist) -> int:
    bar = ProgressBar("scoring questions drawn from the index", not (args.json or args.no_progress))
    try:
        cal = app.calibrate(app.operator(), on_progress=bar)
    finally:
        bar.close()
    if cal is None:
        raise ArchivistError("the index is too small to draw questions from (it needs at least 10 chunks with "
                             "sentences); the default threshold answer.min_confidence stays in use")
    if args.json:
        print(json.dumps(json.loads(cal.to_json()), indent=2))
    else:
        print("\n".join(_calibration_lines(cal)))
    return 0


def _read_jsonl(path: str) -> list[dict]:
    try:
        return parse_questions(Path(path).read_text(encoding="utf-8"), path)
    except OSError as exc:
        raise ArchivistError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ArchivistError(f"{exc} (each line needs a 'question' string and an 'id')") from None


def cmd_search(args, app: Archivist) -> int:
    k = app.settings.search.k if args.k is None else args.k
    if not 1 <= k <= 1000:
        raise ArchivistError(f"-k {k}: give the number of passages to show, from 1 to 1000 (default {app.settings.search.k})")
    who = _who(args, app)
    if args.queries:
        queries = _read_jsonl(args.queries)
        failed = 0
        for q in queries:
            try:
                hits = app.search(who, q["question"], k, doc_prefix=args.doc_prefix)
            except ValueError as exc:
                failed += 1
                print(json.dumps({"id": q.get("id"), "query": q["question"], "error": str(exc)}, ensure_ascii=False),
                      flush=True)
                continue
            out = {"id": q.get("id"), "query": q["question"], "results": [h.to_json() for h in hits]}
            print(json.dumps(out, ensure_ascii=False), flush=True)
        return 1 if failed else 0
    if not args.query or not args.query.strip():
        raise ArchivistError("give a query, e.g. archivist search \"parental leave\", or --queries FILE.jsonl")
    results = None
    server = _running_server(args, app) if not args.mode else None  # the server searches in its own mode
    if server is not None:
        from ui.client import ApiClient, ServerUnreachable

        try:
            results = ApiClient(server.url, server.secret).search(args.query, k, doc_prefix=args.doc_prefix)
        except ServerUnreachable:
            results = None  # gone since it wrote its card: search here
    if results is None:
        results = [h.to_json() for h in app.search(who, args.query, k, doc_prefix=args.doc_prefix)]
    if args.json:
        print(json.dumps({"query": args.query, "results": results}, ensure_ascii=False, indent=2))
        return 0
    if not results:
        print("No passages matched. Try other words, or check 'archivist stats' for what is indexed.")
        return 0
    for h in results:
        text = " ".join(h["text"].split())
        print(f"[{h['rank']}] {_where(h)}  (score {h['score']:.3f})\n    {text[:300]}{'…' if len(text) > 300 else ''}\n")
    return 0


def _where(passage: dict) -> str:
    """doc, page N — section: where a passage (as --json shows it) comes from."""
    return (passage["doc"] + (f", page {passage['page']}" if passage.get("page") else "")
            + (f" — {passage['section']}" if passage.get("section") else ""))


def cmd_stats(args, app: Archivist) -> int:
    who = _who(args, app)
    stats = app.stats(who)
    cal = app.calibration(who)  # fitted on every document: the operator's view only
    if args.json:
        print(json.dumps({**stats, "calibration": json.loads(cal.to_json()) if cal else None}, indent=2))
        return 0
    print(f"index:      {stats['index']}")
    print(f"embedder:   {stats['embedder']}")
    print(f"runtime:    {stats['embedding_runtime']}" + _runtime_test_text(stats.get("runtime_test")))
    print(f"documents:  {stats['documents']}")
    print(f"chunks:     {stats['chunks']}")
    print(f"pages:      {stats['pages']}")
    print("formats:    " + (", ".join(f"{k} {v}" for k, v in stats["formats"].items()) or "-"))
    if stats["size_bytes"] is not None:  # not shown to a --user: it counts every document
        print(f"size:       {stats['size_bytes'] / 1e6:.1f} MB")
    if "segments" in stats:
        print(f"segments:   {stats['segments']}" + (f" ({stats['dead_chunks']} removed chunks not merged away yet)"
                                                     if stats.get("dead_chunks") else ""))
        ann = (f"IVF over {stats['ann_chunks']} chunks, recall@10 {stats['ann_recall_at_10']:.3f} against exact "
               f"(nprobe {stats['nprobe']})" if stats.get("ann_chunks") else
               f"exact (an IVF index is built for segments of {stats['ann_threshold']} chunks or more)")
        print(f"vectors:    {ann}")
    if who.unrestricted:
        print("\n".join(_calibration_lines(cal)) if cal else
              "abstention: default threshold (not calibrated yet: run 'archivist calibrate')")
    return 0


def _runtime_test_text(test: dict | None) -> str:
    """' (self-test on this CPU, DATE: torch 48 chunks/s, onnx-int8 27 chunks/s)', or '' when none ran."""
    rates = (test or {}).get("chunks_per_s") or {}
    if len(rates) < 2 or not any(rates.values()):  # no choice was measured
        return ""
    measured = ", ".join(f"{r} {v:g} chunks/s" if v else f"{r} failed" for r, v in rates.items())
    return f" (self-test on this CPU, {str(test.get('measured_at', ''))[:10]}: {measured})"


def cmd_optimize(args, app: Archivist) -> int:
    result = app.optimize(app.operator(), full=args.full)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    before, after = result["before"], result["after"]
    if result["generation"] is None:
        print("another job is writing the index; it merges the segments when it finishes", file=sys.stderr)
        return 0
    print(f"segments: {before.get('segments', 0)} -> {after.get('segments', 0)}; generation {result['generation']}")
    if after.get("ann_chunks"):
        print(f"approximate search: {after['ann_chunks']} chunks, recall@10 {after['ann_recall_at_10']:.3f} "
              "against exact search")
    return 0


def cmd_docs(args, app: Archivist) -> int:
    docs = app.documents(_who(args, app))
    if args.json:
        print(json.dumps([d.__dict__ for d in docs], indent=2, default=list))
        return 0
    if not docs:
        print("The index holds no documents yet; add some with 'archivist ingest PATH'.")
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


def cmd_remove(args, app: Archivist) -> int:
    app.remove(app.operator(), args.docs)
    print(f"removed {len(args.docs)} document(s)", file=sys.stderr)
    return 0


def _quote_lines(quote: str, first: int | None) -> list[str]:
    n = f"[{first}] " if first is not None else ""
    if quote.startswith("|"):  # a table quote: its rows as they are
        return [n + "from the table:"] + ["    " + line for line in quote.splitlines()]
    return [f"{n}“{' '.join(quote.split())}”"]


def _print_quote(quote: str, first: int | None) -> None:
    print("\n".join(_quote_lines(quote, first)), flush=True)


def _print_answer(ans: dict, quote_printed: bool, bold: bool = False) -> None:
    """An answer as ``ask --json`` gives it (plus the ``closest`` passages of a refusal)."""
    if ans["abstained"]:
        print(ans["answer"])
        if ans.get("closest"):
            print("\nThe closest passages:")
            for h in ans["closest"]:
                print(f"  - {_where(dict(h, section=None))}: {' '.join(h['text'].split())[:200]}")
        return
    first = ans["citations"][0]["n"] if ans["citations"] else None
    if not quote_printed:
        if ans["answer"]:
            print(f"\033[1m{ans['answer']}\033[0m" if bold else ans["answer"])
            print()
        _print_quote(ans["quote"], first)
    elif ans["answer"]:
        print(f"\nAnswer: \033[1m{ans['answer']}\033[0m" if bold else f"\nAnswer: {ans['answer']}")
    print()
    for c in ans["citations"]:
        print(f"[{c['n']}] {_where(c)}")


def _shown(ans) -> dict:
    """An answer of this process in the form the printer (and the API) uses."""
    return dict(ans.to_json(None), closest=[h.to_json() for h in ans.hits[:3]] if ans.abstained else [])


def cmd_ask(args, app: Archivist) -> int:
    if args.server:
        return _ask_server(args)
    server = _running_server(args, app)
    if server is not None and (args.question or "").strip():
        from ui.client import ApiClient, ServerUnreachable

        try:
            return _ask_through(ApiClient(server.url, server.secret), args)
        except ServerUnreachable:
            pass  # gone since it wrote its card: answer here
    who = _who(args, app)
    if args.questions:
        queries = _read_jsonl(args.questions)
        failed = 0
        for q in queries:
            try:
                ans = app.ask(who, q["question"])
            except (ValueError, ArchivistError) as exc:  # this question's fault: say so on its line, go on
                failed += 1
                print(json.dumps({"id": q.get("id"), "question": q["question"], "error": str(exc)},
                                 ensure_ascii=False), flush=True)
                continue
            print(json.dumps(ans.to_json(q.get("id")), ensure_ascii=False), flush=True)
        if failed:
            print(f"archivist: {failed} of {len(queries)} question(s) could not be asked (see their 'error')",
                  file=sys.stderr)
        return 1 if failed else 0
    if not args.question or not args.question.strip():
        raise ArchivistError('ask a question, e.g. archivist ask "How many days of annual leave do I get?"')
    if args.json:
        print(json.dumps(app.ask(who, args.question).to_json(None), ensure_ascii=False, indent=2))
        return 0
    tty = sys.stdout.isatty()
    stream = tty and not args.no_stream
    final, quote_printed = None, False
    for event in app.stream(who, args.question):
        if isinstance(event, Answer):
            final = event
        elif stream and isinstance(event, Evidence):  # the source first, the checked answer after it
            _print_quote(event.quote, event.citations[0].n if event.citations else None)
            quote_printed = True
    _print_answer(_shown(final), quote_printed, bold=sys.stdout.isatty())
    return 0


def _ask_server(args) -> int:
    """``ask --server URL``: the question goes to a running API, whose models are loaded already."""
    import os

    from ui.client import ApiClient

    token = os.environ.get("ARCHIVIST_TOKEN", "")
    if not token:
        raise ArchivistError("--server needs an API token in $ARCHIVIST_TOKEN (make one: archivist tokens create USER)")
    if args.questions or not (args.question or "").strip():
        raise ArchivistError('with --server, ask one question, e.g. archivist ask --server URL "How many days?"')
    return _ask_through(ApiClient(args.server, token), args)


def _ask_through(client, args) -> int:
    """One question answered by a server, printed as an answer of this process would be."""
    shown = {k: v for k, v in client.ask(args.question)["archivist"].items() if k not in ("answer_id", "search_query")}
    if args.json:
        shown.pop("closest", None)
        print(json.dumps(shown, ensure_ascii=False, indent=2))
    else:
        _print_answer(shown, False, bold=sys.stdout.isatty())
    return 0


def _parse_compare(spec: str) -> dict:
    out = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ArchivistError(f"--compare {spec!r}: use KEY=VALUE pairs, e.g. answer.phrasing=model")
        out[key.strip()] = value.strip()
    return out


def cmd_eval(args, app: Archivist) -> int:
    try:
        qset = load_question_set(args.set_dir, limit=args.limit, seed=args.seed)
    except (FileNotFoundError, ValueError) as exc:
        raise ArchivistError(str(exc)) from None
    settings = app.settings
    if not args.index:  # the set's own index, beside the others
        settings = settings.with_overrides({"index": str(settings.data_dir / "eval" / qset.name / "index"),
                                            "data_dir": str(settings.data_dir)})
        app = Archivist(settings)
    who = _who(args, app)
    out_dir = Path(args.out) if args.out else settings.data_dir / "eval" / qset.name
    variants = {"base": {}}
    for spec in args.compare:
        overrides = _parse_compare(spec)
        settings.with_overrides(overrides, "--compare")  # a bad setting is refused before any work
        variants[spec] = overrides
    report = app.ingest_paths(app.operator(), [str(qset.docs)], progress=not args.json)
    if report.failed:
        print(f"note: {len(report.failed)} document(s) of the set could not be read", file=sys.stderr)
    from tqdm import tqdm

    bars: dict = {}

    def on_progress(label, done, total):
        if label not in bars:
            for bar in bars.values():
                bar.close()
            bars[label] = tqdm(total=total, desc=f"answering ({label})", unit="q", file=sys.stderr, disable=args.json)
        bars[label].update(done - bars[label].n)

    try:
        result = app.evaluate(app.operator(), qset, variants, reader=who, on_progress=on_progress)
    finally:
        for bar in bars.values():
            bar.close()
    md_path = result.write(out_dir)
    if args.json:
        print(json.dumps({"set": qset.name, "summaries": result.summaries}, indent=2))
    else:
        print(result.markdown().split("\n## ")[0])
        print(f"written: {md_path} and report.json", file=sys.stderr)
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


def cmd_users(args, app: Archivist) -> int:
    who = app.operator()
    action = args.users_command
    if action is None:
        raise ArchivistError("say what to do: archivist users add|remove|list|set-groups|passwd (see --help)")
    if action == "list":
        users = app.list_users(who)
        if args.json:
            print(json.dumps(users, indent=2))
        elif not users:
            print(f"No users yet ({app.users.path}); add one with: archivist users add NAME --groups admin")
        for name, groups in users.items():
            print(f"{name}\t{','.join(groups) or '-'}")
        return 0
    if action == "remove":
        revoked = app.remove_user(who, args.name)
        print(f"removed user {args.name}" + (f" and revoked {plural(revoked, 'API token')}" if revoked else ""),
              file=sys.stderr)
        return 0
    if action == "set-groups":
        groups = app.set_groups(who, args.name, args.groups.split(","))
        print(f"{args.name}: {', '.join(groups) or 'no groups'}", file=sys.stderr)
        return 0
    if action == "demo":
        from ui.auth import random_password

        demo = {"demo-admin": ["admin", "finance", "hr"], "demo-employee": ["engineering"]}
        print("Sign in to the web app as:")
        for name, groups in demo.items():
            password = random_password()
            app.add_user(who, name, password, groups, replace=True, note=" (demo)")
            print(f"  {name:<14} password {password}   (groups: {', '.join(groups)})")
        print(f"(stored as salted hashes in {app.users.path}; 'archivist users demo' again makes new passwords)")
        return 0
    password, generated = _password(args, args.name)
    if action == "add":
        groups = app.add_user(who, args.name, password, args.groups.split(","))
        print(f"added user {args.name} ({', '.join(groups) or 'no groups'})", file=sys.stderr)
    else:
        app.set_password(who, args.name, password)
        print(f"password of {args.name} changed", file=sys.stderr)
    if generated:
        print(password)  # once, on stdout; it is stored only as a hash
    return 0


def cmd_tokens(args, app: Archivist) -> int:
    who = app.operator()
    action = args.tokens_command
    if action is None:
        raise ArchivistError("say what to do: archivist tokens create|list|revoke (see --help)")
    if action == "create":
        token, info = app.create_token(who, args.user_name, days=args.expires, note=args.note or "")
        print(token)  # once, on stdout; only its digest is stored
        print(f"token {info.id} for {info.user}" + (f", expires {_fmt_time(info.expires)}" if info.expires else
              ", until revoked") + "; send it as 'Authorization: Bearer TOKEN'", file=sys.stderr)
        return 0
    if action == "list":
        tokens = app.list_tokens(who, args.user_name)
        if args.json:
            print(json.dumps([t.to_json() for t in tokens], indent=2))
            return 0
        if not tokens:
            print("No API tokens yet; make one with: archivist tokens create USER")
        for t in tokens:
            state = "EXPIRED" if t.expired else (f"expires {_fmt_time(t.expires)}" if t.expires else "until revoked")
            print(f"{t.id}…\t{t.user}\tcreated {_fmt_time(t.created)}\t{state}" + (f"\t{t.note}" if t.note else ""))
        return 0
    info = app.revoke_token(who, args.token_id.rstrip("…"))
    print(f"revoked token {info.id} of {info.user}", file=sys.stderr)
    return 0


def cmd_audit(args, app: Archivist) -> int:
    if not app.settings.audit.enabled:
        print("The audit log is switched off (audit.enabled = false).", file=sys.stderr)
    who = app.operator()
    entries = app.audit_entries(who, user=args.user, action=args.action, days=args.days, limit=args.n or None)
    if args.export:
        fmt = "jsonl" if args.export.endswith((".jsonl", ".json")) else "csv"
        Path(args.export).write_text(app.export_audit(who, entries, fmt, args.export), encoding="utf-8")
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
    et = v.record.get("embedder_tuning") or {}
    parts = [f"{'*' if v.id == active else ' '} {v.id}", v.created,
             "embedder" if v.embedder else "", "generator" if v.generator else "", "reranker" if v.reranker else ""]
    if et.get("heldout_before"):
        hb, ha = et["heldout_before"], et["heldout_after"]
        parts.append(f"held-out retrieval MRR {hb['mrr@10']:.3f} -> {ha['mrr@10']:.3f}, @1 {hb['hit@1']:.3f} -> "
                     f"{ha['hit@1']:.3f}, @5 {hb['hit@5']:.3f} -> {ha['hit@5']:.3f}"
                     + ("" if et.get("kept") else " (embedder not kept)"))
    parts += [f"containment {m(b, 'containment')} -> {m(a, 'containment')}", f"F1 {m(b, 'f1')} -> {m(a, 'f1')}",
              f"wrongly abstained {m(b, 'abstain_answerable')} -> {m(a, 'abstain_answerable')}"]
    if rr:
        parts.append(f"chunk@5 {rr.get('chunk_hit@5_before')} -> {rr.get('chunk_hit@5_after')}")
    return "  ".join(p for p in parts if p)


def cmd_finetune(args, app: Archivist) -> int:
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

    who = app.operator()
    version = app.finetune(who, budget_minutes=args.budget_minutes, max_steps=args.max_steps,
                           generator=False if args.no_generator else None, reranker=False if args.no_reranker else None,
                           embedder=False if args.no_embedder else None,
                           questions=questions, use_feedback=not args.no_feedback, on_stage=on_stage)
    if args.promote:
        _promote(app, who, version.id)
    if args.json:
        print(json.dumps({"version": version.id, "path": str(version.path), "record": version.record}, indent=2, default=str))
    else:
        versions = app.model_versions()
        active = versions.active.id if versions.active else None
        print(_version_line(version, active))
        print(f"report: {version.path / 'report.md'}", file=sys.stderr)
        if not args.promote:
            print(f"promote it with: archivist models promote {version.id}", file=sys.stderr)
    return 0


def _promote(app: Archivist, who, version_id: str):
    bar = ProgressBar("re-embedding the index")
    try:
        return app.promote(who, version_id, on_progress=bar)
    finally:
        bar.close()


def cmd_models(args, app: Archivist) -> int:
    who = app.operator()
    versions = app.model_versions()
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
        v = _promote(app, who, args.version)
        print(f"{v.id} is in use now (restart 'archivist serve' to load it); 'archivist models rollback' undoes it",
              file=sys.stderr)
        return 0
    if action == "rollback":
        bar = ProgressBar("re-embedding the index")
        try:
            v = app.rollback(who, on_progress=bar)
        finally:
            bar.close()
        print(f"in use now: {v.id if v else 'the shipped models'} (restart 'archivist serve' to load it)", file=sys.stderr)
        return 0
    app.remove_model(who, args.version)
    print(f"removed {args.version}", file=sys.stderr)
    return 0


COMMANDS = {"api": cmd_api, "tokens": cmd_tokens, "finetune": cmd_finetune, "models": cmd_models, "users": cmd_users, "audit": cmd_audit, "ask": cmd_ask, "eval": cmd_eval, "ingest": cmd_ingest, "reindex": cmd_reindex, "jobs": cmd_jobs,
            "schedule": cmd_schedule, "serve": cmd_serve, "search": cmd_search, "stats": cmd_stats, "calibrate": cmd_calibrate, "docs": cmd_docs, "optimize": cmd_optimize, "remove": cmd_remove}


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
        app = Archivist(settings)
        try:
            return COMMANDS[args.command](args, app)
        finally:
            app.close()
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
