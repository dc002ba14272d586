"""Admin: add documents (upload or a server folder), watch the job, see what the index holds."""

from __future__ import annotations

import re
import time
from pathlib import Path

import streamlit as st

from ingest import SUPPORTED
from ui.auth import Identity
from ui.web.render import escape_md
from ui.web.resources import Services, require_admin


def safe_name(name: str) -> str:
    """An uploaded file's name reduced to a plain file name: no folders, no traversal."""
    base = Path(name.replace("\\", "/")).name
    base = re.sub(r"[^\w.\- ]", "_", base).strip(" .")
    return base[:200] or "upload"


def run_job(svc: Services, ident: Identity, sources, what: str, readers: str = "") -> None:
    from ui.services import make_ingestor

    ingestor = make_ingestor(svc.settings, svc.index)
    bar = st.progress(0.0, text="Starting…")
    rows = []
    table = st.empty()

    def on_file(done, total, res):
        rows.append({"document": res.doc, "result": res.status, "chunks": res.chunks, "reason": res.reason})
        bar.progress(done / max(total, 1), text=f"{done}/{total}: {res.doc}")
        table.dataframe(rows, hide_index=True, width="stretch")

    try:
        report = ingestor.ingest(sources, on_file=on_file)
    except Exception as exc:  # a locked index, a full disk...: a message, not a traceback
        svc.audit.record(ident.user, "ingest", detail=f"{what}: stopped: {exc}")
        st.error(f"The job stopped: {escape_md(str(exc))}")
        return
    finally:
        ingestor.parser.close()
        ingestor.jobs.close()
    svc.audit.record(ident.user, "ingest", detail=f"{what}: job {report.job_id}: {report.summary()}")
    from ui.services import after_ingest

    bar.progress(1.0, text="Calibrating when to abstain on the new index…")
    after_ingest(svc.settings, svc.index)
    bar.progress(1.0, text="Done")
    (st.warning if report.failed else st.success)(report.summary() + (f" · readable by {readers}" if readers else ""))


def reader_choices(svc: Services, ident: Identity) -> list[str]:
    """Groups an upload can be shared with: everyone, the users' groups, the index's groups."""
    from retrieval.filters import EVERYONE

    known = {g for groups in svc.users.list().values() for g in groups} | set(ident.groups)
    known |= {g for d in svc.index.documents(ident.filter) for g in d.groups}
    return [EVERYONE] + sorted(known - {EVERYONE})


def save_upload(target: Path, name: str, data: bytes, readers: tuple[str, ...]) -> Path:
    """Write an uploaded file and its ``.groups`` sidecar (who may read it, kept for later reindexing)."""
    from ingest.sources import SIDECAR_SUFFIX

    path = target / name
    path.write_bytes(data)
    (target / (name + SIDECAR_SUFFIX)).write_text("\n".join(readers) + "\n", encoding="utf-8")
    return path


def render_metrics(box, svc: Services, ident: Identity) -> None:
    stats = svc.index.stats(ident.filter)  # what this admin may read; the command line sees everything
    with box.container():
        cols = st.columns(4)
        cols[0].metric("Documents", stats["documents"])
        cols[1].metric("Chunks", stats["chunks"])
        cols[2].metric("Pages", stats["pages"])
        cols[3].metric("Formats", len(stats["formats"]))
        st.caption(f"Embedder: {stats['embedder']} · Generator: {svc.answerer.generator.name} · Index: {stats['index']}")


def render_upload(svc: Services, ident: Identity) -> None:
    from ingest import Source

    limit_mb = svc.settings.web.max_upload_mb
    files = st.file_uploader("Files", accept_multiple_files=True, key="uploads",
                             type=sorted(e.lstrip(".") for e in SUPPORTED))
    mine = sorted(g for g in ident.groups if g != svc.settings.auth.admin_group) or sorted(ident.groups)
    readers = st.multiselect("Who may read them", reader_choices(svc, ident), default=mine, key="upload_readers",
                             help="Groups whose members may read the uploaded files ('everyone': every signed-in "
                                  "user). Default: your own groups.")
    if not readers:
        st.warning("Nobody will be able to read these files: choose at least one group.")
    if st.button("Ingest the uploaded files", disabled=not files or not readers):
        target = svc.settings.data_dir / "uploads"
        target.mkdir(parents=True, exist_ok=True)
        sources = []
        for f in files:
            name = safe_name(f.name)
            if f.size > limit_mb * 1_000_000:
                st.error(f"{escape_md(name)}: larger than {limit_mb} MB (web.max_upload_mb), not ingested")
                continue
            if Path(name).suffix.lower() not in SUPPORTED:
                st.error(f"{escape_md(name)}: not a supported file type, not ingested")
                continue
            path = save_upload(target, name, f.getvalue(), tuple(readers))
            sources.append(Source(path, f"uploads/{name}", target, groups=tuple(readers)))
        if sources:
            run_job(svc, ident, sources, f"upload of {len(sources)} file(s) for {', '.join(readers)}",
                    readers=", ".join(readers))
    st.caption(f"Up to {limit_mb} MB a file. Supported: " + ", ".join(sorted(e.lstrip(".") for e in SUPPORTED)))


def render_documents(svc: Services, ident: Identity) -> None:
    nobody = [d.doc for d in svc.index.documents() if not d.groups]  # hidden from every reader, this admin too
    if nobody:
        st.warning(f"{len(nobody)} document(s) readable by nobody: add a rule or a .groups file, then reindex: "
                   + ", ".join(escape_md(d) for d in nobody[:20]) + (" …" if len(nobody) > 20 else ""))
    docs = svc.index.documents(ident.filter)
    if not docs:
        st.info("No documents yet: upload some above, or name a folder.")
        return
    st.dataframe([{"document": d.doc, "format": d.format, "pages": str(d.pages) if d.pages else "–",
                   "chunks": d.chunks, "readers": ", ".join(d.groups), "indexed": d.indexed_at} for d in docs],
                 hide_index=True, width="stretch")
    doomed = st.selectbox("Remove a document", [""] + [d.doc for d in docs], key="remove_doc")
    if st.button("Remove", disabled=not doomed):
        try:
            with svc.index.writer() as w:
                w.remove_document(doomed)
                w.commit()
        except Exception as exc:
            st.error(escape_md(str(exc)))
        else:
            svc.audit.record(ident.user, "remove", detail=f"removed: {doomed}")
            st.success(f"Removed {escape_md(doomed)}")
            time.sleep(0.2)
            st.rerun()


def render(svc: Services, ident: Identity) -> None:
    from ingest import discover
    from ingest.jobs import JobLog

    require_admin(ident)
    st.title("Admin")
    metrics = st.empty()  # filled last: the counts include what this run just added or removed

    st.subheader("Add documents")
    tab_up, tab_dir = st.tabs(["Upload files", "A folder on the server"])
    with tab_up:
        render_upload(svc, ident)
    with tab_dir:
        folder = st.text_input("Folder", placeholder="/srv/shares/hr")
        if st.button("Ingest the folder", disabled=not folder):
            try:
                sources = discover([folder])
            except FileNotFoundError as exc:
                st.error(escape_md(str(exc)))
            else:
                run_job(svc, ident, sources, f"folder {folder}")

    st.subheader("Documents")
    render_documents(svc, ident)
    render_metrics(metrics, svc, ident)

    render_models(svc, ident)

    st.subheader("Jobs")
    log = JobLog(svc.index.path)
    jobs = log.list(20)
    log.close()
    if not jobs:
        st.caption("No jobs yet.")
    else:
        st.dataframe([{"job": j.id, "kind": j.kind, "status": j.status, "files": f"{j.done}/{j.total}",
                       "counts": ", ".join(f"{k} {v}" for k, v in j.counts.items()),
                       "seconds": round(j.seconds or 0, 1), "message": j.message} for j in jobs],
                     hide_index=True, width="stretch")


def _finetune_running(svc: Services) -> int | None:
    import os

    pid_file = svc.settings.data_dir / "finetune.pid"
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _start_finetune(svc: Services, budget: float) -> None:
    import os
    import subprocess
    import sys

    data = svc.settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ARCHIVIST_INDEX=str(svc.index.path.resolve()), ARCHIVIST_DATA_DIR=str(data.resolve()))
    log = open(data / "finetune.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "finetune", "--budget-minutes", str(budget)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                            cwd=os.getcwd())
    (data / "finetune.pid").write_text(str(proc.pid))


def render_models(svc: Services, ident: Identity) -> None:
    """Fine-tune on the indexed documents, compare versions, promote or roll back."""
    from ui.services import model_versions
    from ui.web import resources

    require_admin(ident)
    st.subheader("Fine-tuned models")
    versions = model_versions(svc.settings)
    active = versions.active
    st.caption(f"In use: {active.id if active else 'the shipped models'}. Fine-tuning learns from the documents "
               f"everyone may read (finetune.train_on) and compares before/after on held-out questions.")
    items = versions.list()
    if items:
        def metric(v, side, key):
            x = v.record.get("eval", {}).get(side, {}).get(key)
            return None if x is None else round(x, 3)

        st.dataframe([{"version": v.id, "in use": v.id == (active.id if active else None), "created": v.created,
                       "reranker": bool(v.reranker),
                       "containment before": metric(v, "before", "containment"),
                       "containment after": metric(v, "after", "containment"),
                       "F1 before": metric(v, "before", "f1"), "F1 after": metric(v, "after", "f1"),
                       "wrongly abstained after": metric(v, "after", "abstain_answerable")} for v in items],
                     hide_index=True, width="stretch")
        cols = st.columns([2, 1, 1])
        chosen = cols[0].selectbox("Version", [v.id for v in items], key="promote_version")
        if cols[1].button("Promote", key="promote"):
            versions.promote(chosen)
            svc.audit.record(ident.user, "promote", detail=chosen)
            resources._services.clear()  # load the promoted models on the next run
            st.rerun()
        if cols[2].button("Roll back", key="rollback", disabled=active is None):
            back = versions.rollback()
            svc.audit.record(ident.user, "rollback", detail=back.id if back else "shipped models")
            resources._services.clear()
            st.rerun()
    else:
        st.caption("No fine-tuned versions yet.")
    pid = _finetune_running(svc)
    log_file = svc.settings.data_dir / "finetune.log"
    if pid:
        st.info(f"Fine-tuning is running (process {pid}); it takes about the budget plus a few minutes.")
        if log_file.exists():
            st.code(log_file.read_text(errors="replace")[-3000:], language=None)
        st.button("Refresh", key="ft_refresh")
        return
    cols = st.columns([2, 2])
    budget = cols[0].number_input("Training budget (minutes)", 1.0, 600.0, float(svc.settings.finetune.budget_minutes),
                                  key="ft_budget")
    if cols[1].button("Fine-tune on the indexed documents", key="ft_start"):
        _start_finetune(svc, budget)
        svc.audit.record(ident.user, "finetune", detail=f"started, budget {budget} min")
        st.rerun()
    if log_file.exists():
        with st.expander("Last fine-tuning log"):
            st.code(log_file.read_text(errors="replace")[-3000:], language=None)
