"""The application layer: every operation a person can do, once, for every face.

The command line, the web app and the HTTP API call an :class:`Archivist` and nothing below
it. Each operation takes the :class:`~ui.auth.Identity` it acts for, reads through that
identity's access filter, refuses what the identity may not do, and writes its own audit
entry. Shared objects (the index, the answerer, the stores) are never switched per call: a
variant (another reranker, other answer settings) is a new view or a new answerer.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from retrieval.errors import ArchivistError, EmptyIndexError
from ui.auth import AuthError, Identity, identify_from_proxy
from ui.services import compose
from ui.settings import Settings


class PermissionDenied(ArchivistError):
    """The identity may not do this; the message says who may."""


@dataclass
class Upload:
    """A file sent by a face: its name as the sender gave it, and its bytes."""

    name: str
    data: bytes


@dataclass
class UploadResult:
    report: object | None  # the ingest job's report (ingest.IngestReport), None when nothing was taken
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file name, why)


@dataclass
class EvalResult:
    set_name: str
    summaries: dict
    rows: dict

    def write(self, out_dir: Path) -> Path:
        """report.json and report.md in ``out_dir``; returns the Markdown report's path."""
        import json


        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "report.json").write_text(json.dumps({"set": self.set_name, "summaries": self.summaries,
                                                         "rows": self.rows}, indent=2))
        (out_dir / "report.md").write_text(self.markdown())
        return out_dir / "report.md"

    def markdown(self) -> str:
        from qa.evaluate import markdown_report

        return markdown_report(self.set_name, self.summaries, self.rows)


def safe_name(name: str) -> str:
    """An uploaded file's name reduced to a plain file name: no folders, no traversal."""
    base = Path(name.replace("\\", "/")).name
    base = re.sub(r"[^\w.\- ]", "_", base).strip(" .")
    return base[:200] or "upload"


class RecentAnswers:
    """The last answers given, by id, so that feedback sent later (the API's) can name one.
    Bounded; an answer is found only by the user it was given to."""

    def __init__(self, size: int = 2000):
        self.size = size
        self._items: OrderedDict[str, tuple[str, object]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, user: str, answer) -> str:
        import secrets

        answer_id = f"ans-{secrets.token_hex(8)}"
        with self._lock:
            self._items[answer_id] = (user, answer)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return answer_id

    def get(self, user: str, answer_id: str):
        with self._lock:
            owner, answer = self._items.get(answer_id, (None, None))
        return answer if owner == user else None


class Archivist:
    """One service over one index and data folder. Components load when first needed and are
    shared by every caller after that (the web app and the API keep one per process)."""

    def __init__(self, settings: Settings, *, generator=None):
        self.settings = settings
        self._generator = generator
        self._index = None
        self._answerer = None
        self._lock = threading.RLock()
        self.recent = RecentAnswers()
        self.users = compose.user_store(settings)
        self._audit = None
        from ui.tokens import TokenStore

        self.tokens = TokenStore(settings.tokens_path)
        self._feedback = None

    # -- shared components -----------------------------------------------------------------
    @property
    def index(self):
        """The index, created when missing (an admin's first upload goes into it)."""
        with self._lock:
            if self._index is None:
                self._index = compose.open_index(self.settings)
            return self._index

    def _readable_index(self):
        """The index for reading: a clear error when nothing was ever ingested."""
        if self._index is None and not (self.settings.index_dir / "archivist.sqlite").exists():
            raise EmptyIndexError(f"there is no index in {self.settings.index_dir} yet; run 'archivist ingest PATH' "
                                  "first (or pass --index DIR)")
        return self.index

    @property
    def answerer(self):
        with self._lock:
            if self._answerer is None:
                self._answerer = compose.make_answerer(self.settings, self._readable_index(), self._generator)
            return self._answerer

    @answerer.setter
    def answerer(self, value) -> None:  # tests hand in an answerer of their own
        self._answerer = value

    @property
    def audit(self):
        """The audit log, opened (and created) when something is first recorded or read."""
        with self._lock:
            if self._audit is None:
                self._audit = compose.open_audit(self.settings)
            return self._audit

    @property
    def feedback_store(self):
        with self._lock:
            if self._feedback is None:
                from qa.feedback import FeedbackStore

                self._feedback = FeedbackStore(self.settings.data_dir / "feedback.sqlite")
            return self._feedback

    @property
    def generator_name(self) -> str:
        return self.answerer.generator.name

    def warm_up(self) -> None:
        """Load the models in a background thread, so the first question does not wait for them."""
        def load():
            try:
                things = (self.index.embedder, self.answerer.generator)
            except ArchivistError:  # no index yet: the models load with the first one
                return
            for thing in things:
                loader = getattr(thing, "load", None) or getattr(thing, "_load", None)
                if loader:
                    try:
                        loader()
                    except Exception:  # reported when the first question needs it
                        pass

        threading.Thread(target=load, name="archivist-warm-up", daemon=True).start()

    def close(self) -> None:
        if self._audit is not None:
            self._audit.close()

    # -- who is asking -----------------------------------------------------------------------
    def operator(self) -> Identity:
        """Whoever runs the command line: no access filter (they can read the data folder anyway)."""
        return Identity.operator(compose.operator_name())

    def as_user(self, name: str, via: str = "cli") -> Identity:
        return self.users.identity(name, via=via)

    def sign_in(self, name: str, password: str) -> Identity:
        from qa.audit import printable

        try:
            ident = self.users.authenticate(name, password)
        except AuthError:
            self.audit.record(printable((name or "").strip()[:64]) or "(empty)", "sign-in-failed")
            raise
        self.audit.record(ident.user, "sign-in")
        return ident

    def recheck(self, ident: Identity) -> Identity:
        """A signed-in session as the users file says now; AuthError (and a sign-out entry) when it ended."""
        try:
            return self.users.recheck(ident)
        except AuthError as exc:
            self.audit.record(ident.user, "sign-out", detail=f"session ended: {exc}")
            raise

    def from_proxy(self, headers, peer: str | None) -> Identity:
        a = self.settings.auth
        return identify_from_proxy(headers, peer, user_header=a.proxy_user_header, groups_header=a.proxy_groups_header,
                                   trusted_proxies=a.trusted_proxies, admin_group=a.admin_group)

    def from_token(self, token: str) -> Identity:
        """The identity an API token acts as: its owner as the users file says now."""
        info = self.tokens.owner(token)
        try:
            ident = self.users.identity(info.user, via="token")
        except ArchivistError:
            raise AuthError("the owner of this API token no longer exists") from None
        return ident

    def record(self, who: Identity | str, action: str, detail: str = "") -> None:
        """An event a face saw (a page viewed, a download, a sign-out) in the audit log."""
        self.audit.record(who if isinstance(who, str) else who.user, action, detail=detail)

    @staticmethod
    def require_admin(who: Identity, what: str) -> None:
        if not who.is_admin:
            raise PermissionDenied(f"only administrators may {what}; ask one to add you to the admin group")

    # -- asking ----------------------------------------------------------------------------
    def ask(self, who: Identity, question: str, *, history: Iterable[str] = ()):
        """The checked answer, as ``who`` may read; audited."""
        from qa import Answer

        final = None
        for event in self.stream(who, question, history=history):
            if isinstance(event, Answer):
                final = event
        return final

    def stream(self, who: Identity, question: str, *, history: Iterable[str] = ()) -> Iterator:
        """The quote and its source as soon as retrieval is done (qa.answer.Evidence), then the
        final qa.Answer (audited when it is given). ``history``: the earlier questions of the
        conversation, so that a follow-up ("and for part-time staff?") is searched in full."""
        from qa import Answer
        from qa.conversation import rewrite_followup

        question = (question or "").strip()
        if not question:
            raise ValueError("the question is empty; type a question about the documents")
        history = [h for h in history if h]
        search_query = rewrite_followup(question, history) if history else None
        for event in self.answerer.stream(question, filter=who.filter, search_query=search_query):
            if isinstance(event, Answer):
                self.audit.record_answer(who.user, event)
            yield event

    def search(self, who: Identity, query: str, k: int | None = None, *, doc_prefix: str | None = None):
        from retrieval import SearchFilter

        k = self.settings.search.k if k is None else k
        if not 1 <= k <= 1000:
            raise ArchivistError(f"k = {k}: ask for 1 to 1000 passages (default {self.settings.search.k})")
        if not (query or "").strip():
            raise ValueError("the query is empty; type some words or a question")
        flt = who.filter
        if doc_prefix:
            flt = SearchFilter(doc_prefix=doc_prefix, groups=flt.groups if flt else None)
        hits = self._readable_index().search(query, k, filter=flt)
        self.audit.record(who.user, "search", question=query, retrieved=[h.chunk.id for h in hits])
        return hits

    def feedback(self, who: Identity, answer, rating: int, comment: str = "") -> int:
        """Store a rating of an answer given to ``who`` (the answer itself, or its id from ``remember``)."""
        if isinstance(answer, str):
            found = self.recent.get(who.user, answer)
            if found is None:
                raise ArchivistError(f"no recent answer {answer!r} of yours; send feedback on an answer you were given")
            answer = found
        entry = self.feedback_store.add(answer, rating, comment, user=who.user)
        self.audit.record(who.user, "feedback", question=answer.question, detail=f"rating {rating:+d}")
        return entry

    def remember(self, who: Identity, answer) -> str:
        """An id for ``answer`` that ``feedback`` accepts later from the same user."""
        return self.recent.add(who.user, answer)

    # -- what the index holds ------------------------------------------------------------------
    def documents(self, who: Identity, *, everything: bool = False):
        """The documents ``who`` may read (``everything``: all of them, for an admin's checks)."""
        if everything:
            self.require_admin(who, "list every document")
            return self._readable_index().documents()
        return self._readable_index().documents(who.filter)

    def document(self, who: Identity, doc: str):
        return self._readable_index().document(doc, who.filter)

    def stats(self, who: Identity) -> dict:
        """The index's counts, and the embedding runtime with the self-test that chose it (if one ran)."""
        from retrieval.runtime_choice import read_record
        from ui.services.compose import embedding_runtime_record

        index = self._readable_index()
        stats = index.stats(who.filter)
        return {**stats, "embedding_runtime": getattr(index.embedder, "runtime", "torch"),
                "runtime_test": read_record(embedding_runtime_record(self.settings))}

    def calibration(self, who: Identity):
        """The index's abstention calibration, fitted on every document: for the operator only."""
        from qa.calibration import stored

        return stored(self._readable_index()) if who.unrestricted else None

    def reader_choices(self, who: Identity) -> list[str]:
        """Groups an upload can be shared with: everyone, the users' groups, the index's groups."""
        from retrieval.filters import EVERYONE

        known = {g for groups in self.users.list().values() for g in groups} | set(who.groups)
        if (self.settings.index_dir / "archivist.sqlite").exists():
            known |= {g for d in self.index.documents(who.filter) for g in d.groups}
        return [EVERYONE] + sorted(known - {EVERYONE})

    def default_readers(self, who: Identity) -> list[str]:
        mine = sorted(g for g in who.groups if g != self.settings.auth.admin_group)
        return mine or sorted(who.groups)

    # -- changing the index --------------------------------------------------------------------
    def ingest_paths(self, who: Identity, paths: list[str], **kwargs):
        """Ingest files and folders on the server (``archivist ingest``, the Admin page's folder)."""
        from ingest import discover

        self.require_admin(who, "add documents")
        try:
            sources = discover(paths)
        except FileNotFoundError as exc:
            raise ArchivistError(str(exc)) from None
        return self.ingest(who, sources, what=", ".join(map(str, paths)), **kwargs)

    def ingest(self, who: Identity, sources, *, what: str = "", force: bool = False, progress: bool = False,
               on_file=None, on_start=None, kind: str = "ingest", sync_prefixes=None, ray_address: str | None = None):
        """One ingestion job, its audit entry, then the abstention threshold refitted when needed.
        ``ray_address`` (default: ``ingest.ray_address``) runs its parsing and embedding on a Ray cluster."""
        self.require_admin(who, "add documents")
        index = self.index
        with compose.make_ingestor(self.settings, index, ray_address=ray_address) as ingestor:
            try:
                report = ingestor.ingest(sources, progress=progress, on_file=on_file, force=force, kind=kind,
                                         sync_prefixes=sync_prefixes, on_start=on_start)
            except Exception as exc:
                self.audit.record(who.user, kind, detail=f"{what}: stopped: {exc}".lstrip(": "))
                raise
        self.audit.record(who.user, kind, detail=(f"{what}: " if what else "") + f"job {report.job_id}: {report.summary()}")
        compose.after_ingest(self.settings, index, progress=progress)
        return report

    def upload(self, who: Identity, files: list[Upload], readers: list[str], *, max_mb: int | None = None,
               on_file=None, on_start=None) -> UploadResult:
        """Save uploaded files (``save_uploads``) and ingest them in one job."""
        sources, rejected, what = self.save_uploads(who, files, readers, max_mb=max_mb)
        if not sources:
            return UploadResult(None, rejected)
        return UploadResult(self.ingest(who, sources, what=what, on_file=on_file, on_start=on_start), rejected)

    def save_uploads(self, who: Identity, files: list[Upload], readers: list[str], *, max_mb: int | None = None):
        """Save uploaded files under <data_dir>/uploads with a ``.groups`` sidecar naming their
        readers (kept by later reindexing): (the sources to ingest, [(file, why refused)], what for the log)."""
        from ingest import SUPPORTED, Source
        from ingest.sources import SIDECAR_SUFFIX
        from ui.auth import check_groups

        self.require_admin(who, "upload documents")
        readers = check_groups(readers)
        if not readers:
            raise ArchivistError("say who may read the files: at least one group, or 'everyone'")
        limit = max_mb or self.settings.web.max_upload_mb
        target = self.settings.data_dir / "uploads"
        target.mkdir(parents=True, exist_ok=True)
        sources, rejected = [], []
        for f in files:
            name = safe_name(f.name)
            if len(f.data) > limit * 1_000_000:
                rejected.append((name, f"larger than {limit} MB, not ingested"))
            elif Path(name).suffix.lower() not in SUPPORTED:
                rejected.append((name, "not a supported file type, not ingested"))
            else:
                (target / name).write_bytes(f.data)
                (target / (name + SIDECAR_SUFFIX)).write_text("\n".join(readers) + "\n", encoding="utf-8")
                sources.append(Source(target / name, f"uploads/{name}", target, groups=tuple(readers)))
        return sources, rejected, f"upload of {len(sources)} file(s) for {', '.join(readers)}"

    def remove(self, who: Identity, docs: list[str]) -> None:
        self.require_admin(who, "remove documents")
        index = self._readable_index()
        known = {d.doc for d in index.documents()}
        missing = [d for d in docs if d not in known]
        if missing:
            raise ArchivistError("not in the index: " + ", ".join(missing) + " (see 'archivist docs')")
        with index.writer() as w:
            for d in docs:
                w.remove_document(d)
            w.commit()
        self.audit.record(who.user, "remove", detail="removed: " + ", ".join(docs))

    def optimize(self, who: Identity, *, full: bool = False) -> dict:
        """Merge the index's segments (``full``: into one); the layout before and after."""
        self.require_admin(who, "optimize the index")
        index = self._readable_index()
        before = index.layout_stats()
        generation = compose.optimize(index, full=full)
        self.audit.record(who.user, "optimize", detail=f"{before.get('segments', 0)} segments -> "
                          f"{index.layout_stats().get('segments', 0)} (generation {generation})")
        return {"before": before, "after": index.layout_stats(), "generation": generation}

    def reindex(self, who: Identity, *, progress: bool = False, force: bool = False, ray_address: str | None = None):
        """Sync the index with the sources named in the settings: add, update, move, remove."""
        from ingest import Source
        from ingest.sources import source_files
        from retrieval.errors import ConfigError

        self.require_admin(who, "reindex")
        specs = compose.source_specs(self.settings)
        if not specs:
            raise ConfigError(
                "no sources are configured: add [[sources]] tables (path, name, include, exclude) to archivist.toml, "
                "or use 'archivist ingest PATH' for a one-off run")
        sources = [Source(path, doc, spec.path) for spec in specs for path, doc in source_files(spec)]
        return self.ingest(who, sources, progress=progress, force=force, kind="reindex",
                           sync_prefixes=[s.prefix for s in specs], ray_address=ray_address)

    def calibrate(self, who: Identity, *, on_progress=None):
        self.require_admin(who, "calibrate")
        cal = compose.calibrate(self.settings, self._readable_index(), on_progress=on_progress)
        if cal is not None:
            self.audit.record(who.user, "calibrate", detail=f"threshold {cal.min_confidence:.3f} on generation {cal.generation}")
        return cal

    # -- jobs ---------------------------------------------------------------------------------
    def jobs(self, who: Identity, n: int = 20) -> list:
        self.require_admin(who, "see jobs")
        return self._read_jobs(lambda log: log.list(n), [])

    def job(self, who: Identity, job_id: int):
        self.require_admin(who, "see jobs")
        return self._read_jobs(lambda log: log.get(job_id), None)

    def _read_jobs(self, read, empty):
        """``read(job log)``, or ``empty`` while there is no index (and so no job) yet."""
        from ingest.jobs import JobLog

        if not (self.settings.index_dir / "archivist.sqlite").exists():
            return empty
        log = JobLog(self.settings.index_dir)
        try:
            return read(log)
        finally:
            log.close()

    def start_in_background(self, work: Callable[[Callable], object], timeout: float = 30.0) -> int | None:
        """Run ``work(on_start)`` in a thread and return the job id it starts, once it has one
        (None when it failed before starting a job). The job is then watched with ``job``."""
        started, box = threading.Event(), {}

        def on_start(job_id):
            box["id"] = job_id
            started.set()

        def run():
            try:
                work(on_start)
            except Exception as exc:  # recorded in the job and the audit log; the caller polls the job
                box.setdefault("error", exc)
            finally:
                started.set()

        threading.Thread(target=run, name="archivist-job", daemon=True).start()
        started.wait(timeout)
        if "id" not in box and "error" in box:
            raise box["error"]
        return box.get("id")

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self, who: Identity, qset, variants: dict[str, dict] | None = None, *,
                 reader: Identity | None = None,
                 on_progress: Callable[[str, int, int], None] | None = None) -> EvalResult:
        """Answer a question set with each variant of the settings (dotted overrides, e.g.
        ``{"answer.phrasing": "model"}``; {} is the settings as they are), as ``reader`` (default:
        ``who``, an admin) may read."""
        from qa.evaluate import evaluate, summarize

        self.require_admin(who, "evaluate")
        reader = reader or who
        variants = variants or {"as configured": {}}
        summaries, rows = {}, {}
        for label, overrides in variants.items():
            answerer = self._answerer_for(overrides)
            total = len(qset.questions)
            rows[label] = evaluate(answerer, qset, k=answerer.options.k, filter=reader.filter,
                                   on_row=(lambda i, r, label=label: on_progress(label, i + 1, total))
                                   if on_progress else None)
            summaries[label] = summarize(rows[label])
        self.audit.record(who.user, "eval", detail=f"{qset.name}: {len(qset.questions)} questions, variants "
                                                   f"{', '.join(variants)}"
                                                   + (f", as {reader.user} reads" if reader is not who else ""))
        return EvalResult(qset.name, summaries, rows)

    def _answerer_for(self, overrides: dict):
        """The shared answerer, or a new one for other settings (the shared one is never changed)."""
        if not overrides:
            return self.answerer
        vs = self.settings.with_overrides(overrides)
        same_index = vs.embedder == self.settings.embedder and vs.search == self.settings.search
        index = self._readable_index() if same_index else compose.open_index(vs, create=False)
        generator = self.answerer.generator if vs.generator == self.settings.generator else None
        return compose.make_answerer(vs, index, generator)

    # -- models -------------------------------------------------------------------------------
    def model_versions(self):
        return compose.model_versions(self.settings)

    def finetune(self, who: Identity, **kwargs):
        """Fine-tune on the indexed documents here and now (``archivist finetune``); the new version, unpromoted."""
        self.require_admin(who, "fine-tune")
        version = compose.finetune(self.settings, **kwargs)
        self.audit.record(who.user, "finetune", detail=f"made {version.id}")
        return version

    def start_finetune(self, who: Identity, budget_minutes: float) -> int:
        """Fine-tune in a process of its own (the web app's button): its id; it logs to <data_dir>/finetune.log."""
        self.require_admin(who, "fine-tune")
        if self.finetune_running():
            raise ArchivistError("a fine-tuning run is going on already; wait for it to finish")
        pid = compose.launch_finetune(self.settings, budget_minutes)
        self.audit.record(who.user, "finetune", detail=f"started, budget {budget_minutes} min")
        return pid

    def finetune_running(self) -> int | None:
        import os

        try:
            pid = int((self.settings.data_dir / "finetune.pid").read_text().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def finetune_log(self) -> str | None:
        path = self.settings.data_dir / "finetune.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else None

    def promote(self, who: Identity, version_id: str, *, on_progress=None):
        """Make a version the one that answers; a version with an embedder first re-embeds the index
        in its space (one commit; searches go on meanwhile, on the old vectors)."""
        self.require_admin(who, "promote a model version")
        versions = self.model_versions()
        version = versions.get(version_id)
        if self.settings.generator.backend in ("auto", "llama-cpp"):
            compose.export_generator(version)  # served on llama.cpp: exported first, once
        gen = compose.use_embedder_of(self.settings, version, on_progress=on_progress) if version.embedder else None
        v = versions.promote(version_id)
        self.audit.record(who.user, "promote", detail=v.id + (f", index re-embedded (generation {gen})" if gen else ""))
        return v

    def rollback(self, who: Identity, *, on_progress=None):
        """Back to the version before (or the shipped models), re-embedding the index in its
        embedder's space when that differs from the one in use."""
        self.require_admin(who, "roll back the models")
        versions = self.model_versions()
        if not versions.active:
            versions.rollback()  # the one-line error: nothing to roll back
        previous = versions.previous
        gen = compose.use_embedder_of(self.settings, previous, on_progress=on_progress)
        v = versions.rollback()
        self.audit.record(who.user, "rollback", detail=(v.id if v else "shipped models") +
                          (f", index re-embedded (generation {gen})" if gen else ""))
        return v

    def remove_model(self, who: Identity, version_id: str) -> None:
        self.require_admin(who, "remove a model version")
        version = self.model_versions().get(version_id)
        indexed = (self.settings.index_dir / "archivist.sqlite").exists()
        space = self.index.space() if version.embedder and indexed else None
        if space is not None and space.name == version.space:
            raise ArchivistError(f"the index is embedded with {version_id}'s embedder; promote another version or "
                                 "roll back (which re-embeds the index) before removing it")
        self.model_versions().remove(version_id)
        self.audit.record(who.user, "model-remove", detail=version_id)

    # -- the audit log ----------------------------------------------------------------------------
    def audit_entries(self, who: Identity, *, user=None, action=None, days: float | None = None, limit=None):
        self.require_admin(who, "read the audit log")
        since = time.time() - days * 86400 if days else None
        return self.audit.entries(user=user, action=action, since=since, limit=limit)

    @property
    def audit_enabled(self) -> bool:
        return self.audit.enabled

    def export_audit(self, who: Identity, entries, fmt: str, where: str, *, record: bool = True) -> str:
        """The entries as CSV or JSON lines; the export is audited (``record=False``: the face
        records it when the file is actually taken, as a browser download is)."""
        self.require_admin(who, "export the audit log")
        text = self.audit.export(entries, fmt)
        if record:
            self.audit.record(who.user, "export", detail=f"{len(entries)} entries to {where}")
        return text

    # -- users and tokens ---------------------------------------------------------------------------
    def list_users(self, who: Identity) -> dict[str, list[str]]:
        self.require_admin(who, "list users")
        return self.users.list()

    def add_user(self, who: Identity, name: str, password: str, groups, *, replace: bool = False, note: str = ""):
        self.require_admin(who, "add users")
        self.users.add(name, password, groups, replace=replace)
        groups = self.users.list()[name]
        self.audit.record(who.user, "user-add", detail=f"{name}{note}: {', '.join(groups) or 'no groups'}")
        return groups

    def remove_user(self, who: Identity, name: str) -> int:
        """Remove a user and revoke their API tokens; returns how many tokens went with them."""
        self.require_admin(who, "remove users")
        self.users.remove(name)
        revoked = self.tokens.revoke_user(name)
        self.audit.record(who.user, "user-remove", detail=name + (f" ({revoked} token(s) revoked)" if revoked else ""))
        return revoked

    def set_groups(self, who: Identity, name: str, groups) -> list[str]:
        self.require_admin(who, "change groups")
        self.users.set_groups(name, groups)
        groups = self.users.list()[name]
        self.audit.record(who.user, "user-groups", detail=f"{name}: {', '.join(groups) or 'no groups'}")
        return groups

    def set_password(self, who: Identity, name: str, password: str) -> None:
        self.require_admin(who, "change passwords")
        self.users.set_password(name, password)
        self.audit.record(who.user, "user-passwd", detail=name)  # that it changed, never the password

    def create_token(self, who: Identity, user: str, *, days: float | None = None, note: str = ""):
        """A new API token for ``user``: (the token, shown once; its record)."""
        self.require_admin(who, "create API tokens")
        self.users.identity(user)  # a clear error for an unknown user
        token, info = self.tokens.create(user, days=days, note=note)
        self.audit.record(who.user, "token-create", detail=f"{info.id} for {user}"
                          + (f", expires in {days:g} days" if days else ""))
        return token, info

    def list_tokens(self, who: Identity, user: str | None = None):
        self.require_admin(who, "list API tokens")
        return self.tokens.list(user)

    def revoke_token(self, who: Identity, token_id: str):
        self.require_admin(who, "revoke API tokens")
        info = self.tokens.revoke(token_id)
        self.audit.record(who.user, "token-revoke", detail=f"{info.id} of {info.user}")
        return info
