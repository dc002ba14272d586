"""Admin: add documents (upload or a server folder), watch the job, see what the index holds."""

from __future__ import annotations

import time

import streamlit as st

from ui.auth import Identity
from ui.services import SUPPORTED, Upload, safe_name  # noqa: F401  (safe_name: what an upload is saved as)
from ui.web.render import escape_md
from ui.web.resources import Services, require_admin


def run_job(svc: Services, ident: Identity, start, readers: str = "") -> None:
    """Run ``start(on_file)`` (an ingestion through the application) with a progress bar and a
    table of what each file came to."""
    bar = st.progress(0.0, text="Starting…")
    rows = []
    table = st.empty()

    def on_file(done, total, res):
        rows.append({"document": res.doc, "result": res.status, "chunks": res.chunks, "reason": res.reason})
        bar.progress(done / max(total, 1), text=f"{done}/{total}: {res.doc}")
        table.dataframe(rows, hide_index=True, width="stretch")

    try:
        report = start(on_file)
    except Exception as exc:  # a locked index, a full disk...: a message, not a traceback
        st.error(f"The job stopped: {escape_md(str(exc))}")
        return
    if report is None:
        return
    bar.progress(1.0, text="Done")
    (st.warning if report.failed else st.success)(report.summary() + (f" · readable by {readers}" if readers else ""))


def render_metrics(box, svc: Services, ident: Identity) -> None:
    stats = svc.stats(ident)  # what this admin may read; the command line sees everything
    with box.container():
        cols = st.columns(4)
        cols[0].metric("Documents", stats["documents"])
        cols[1].metric("Chunks", stats["chunks"])
        cols[2].metric("Pages", stats["pages"])
        cols[3].metric("Formats", len(stats["formats"]))
        st.caption(f"Embedder: {stats['embedder']} · Generator: {svc.generator_name} · Index: {stats['index']}")


def render_upload(svc: Services, ident: Identity) -> None:
    limit_mb = svc.settings.web.max_upload_mb
    files = st.file_uploader("Files", accept_multiple_files=True, key="uploads",
                             type=sorted(e.lstrip(".") for e in SUPPORTED))
    readers = st.multiselect("Who may read them", svc.reader_choices(ident), default=svc.default_readers(ident),
                             key="upload_readers",
                             help="Groups whose members may read the uploaded files ('everyone': every signed-in "
                                  "user). Default: your own groups.")
    if not readers:
        st.warning("Nobody will be able to read these files: choose at least one group.")
    if st.button("Ingest the uploaded files", disabled=not files or not readers):
        uploads = [Upload(f.name, f.getvalue()) for f in files]

        def start(on_file):
            result = svc.upload(ident, uploads, readers, on_file=on_file)
            for name, why in result.rejected:
                st.error(f"{escape_md(name)}: {why}")
            return result.report

        run_job(svc, ident, start, readers=", ".join(readers))
    st.caption(f"Up to {limit_mb} MB a file. Supported: " + ", ".join(sorted(e.lstrip(".") for e in SUPPORTED)))


def render_documents(svc: Services, ident: Identity) -> None:
    nobody = [d.doc for d in svc.documents(ident, everything=True) if not d.groups]  # hidden from every reader
    if nobody:
        st.warning(f"{len(nobody)} document(s) readable by nobody: add a rule or a .groups file, then reindex: "
                   + ", ".join(escape_md(d) for d in nobody[:20]) + (" …" if len(nobody) > 20 else ""))
    docs = svc.documents(ident)
    if not docs:
        st.info("No documents yet: upload some above, or name a folder.")
        return
    st.dataframe([{"document": d.doc, "format": d.format, "pages": str(d.pages) if d.pages else "–",
                   "chunks": d.chunks, "readers": ", ".join(d.groups), "indexed": d.indexed_at} for d in docs],
                 hide_index=True, width="stretch")
    doomed = st.selectbox("Remove a document", [""] + [d.doc for d in docs], key="remove_doc")
    if st.button("Remove", disabled=not doomed):
        try:
            svc.remove(ident, [doomed])
        except Exception as exc:
            st.error(escape_md(str(exc)))
        else:
            st.success(f"Removed {escape_md(doomed)}")
            time.sleep(0.2)
            st.rerun()


def render(svc: Services, ident: Identity) -> None:
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
            run_job(svc, ident, lambda on_file: svc.ingest_paths(ident, [folder], on_file=on_file))

    st.subheader("Documents")
    render_documents(svc, ident)
    render_metrics(metrics, svc, ident)

    render_models(svc, ident)

    st.subheader("Jobs")
    jobs = svc.jobs(ident, 20)
    if not jobs:
        st.caption("No jobs yet.")
    else:
        st.dataframe([{"job": j.id, "kind": j.kind, "status": j.status, "files": f"{j.done}/{j.total}",
                       "counts": ", ".join(f"{k} {v}" for k, v in j.counts.items()),
                       "seconds": round(j.seconds or 0, 1), "message": j.message} for j in jobs],
                     hide_index=True, width="stretch")


def render_models(svc: Services, ident: Identity) -> None:
    """Fine-tune on the indexed documents, compare versions, promote or roll back."""
    from ui.web import resources

    require_admin(ident)
    st.subheader("Fine-tuned models")
    versions = svc.model_versions()
    active = versions.active
    st.caption(f"In use: {active.id if active else 'the shipped models'}. Fine-tuning learns from the documents "
               f"everyone may read (finetune.train_on) and compares before/after on held-out questions.")
    items = versions.list()
    if items:
        def metric(v, side, key):
            x = v.record.get("eval", {}).get(side, {}).get(key)
            return None if x is None else round(x, 3)

        def retrieval(v, side, key):
            x = (v.record.get("embedder_tuning") or {}).get(f"heldout_{side}", {}).get(key)
            return None if x is None else round(x, 3)

        st.dataframe([{"version": v.id, "in use": v.id == (active.id if active else None), "created": v.created,
                       "embedder": bool(v.embedder), "reranker": bool(v.reranker),
                       "retrieval MRR before": retrieval(v, "before", "mrr@10"),
                       "retrieval MRR after": retrieval(v, "after", "mrr@10"),
                       "found @5 before": retrieval(v, "before", "hit@5"),
                       "found @5 after": retrieval(v, "after", "hit@5"),
                       "containment before": metric(v, "before", "containment"),
                       "containment after": metric(v, "after", "containment"),
                       "F1 before": metric(v, "before", "f1"), "F1 after": metric(v, "after", "f1"),
                       "wrongly abstained after": metric(v, "after", "abstain_answerable")} for v in items],
                     hide_index=True, width="stretch")
        measured = [v for v in items if retrieval(v, "before", "mrr@10") is not None]
        if measured:
            st.caption("Held-out retrieval (queries written from chunks never trained on): MRR@10 before and after")
            st.bar_chart({"before": {v.id: retrieval(v, "before", "mrr@10") for v in measured},
                          "after": {v.id: retrieval(v, "after", "mrr@10") for v in measured}}, stack=False)
        cols = st.columns([2, 1, 1])
        chosen = cols[0].selectbox("Version", [v.id for v in items], key="promote_version")
        if cols[1].button("Promote", key="promote"):
            with st.spinner("Promoting (a version with an embedder re-embeds the index; answers go on meanwhile)"):
                svc.promote(ident, chosen)
            resources._services.clear()  # load the promoted models on the next run
            st.rerun()
        if cols[2].button("Roll back", key="rollback", disabled=active is None):
            with st.spinner("Rolling back"):
                svc.rollback(ident)
            resources._services.clear()
            st.rerun()
    else:
        st.caption("No fine-tuned versions yet.")
    pid = svc.finetune_running()
    log = svc.finetune_log()
    if pid:
        st.info(f"Fine-tuning is running (process {pid}); it takes about the budget plus a few minutes.")
        if log:
            st.code(log, language=None)
        st.button("Refresh", key="ft_refresh")
        return
    cols = st.columns([2, 2])
    budget = cols[0].number_input("Training budget (minutes)", 1.0, 600.0, float(svc.settings.finetune.budget_minutes),
                                  key="ft_budget")
    if cols[1].button("Fine-tune on the indexed documents", key="ft_start"):
        svc.start_finetune(ident, budget)
        st.rerun()
    if log:
        with st.expander("Last fine-tuning log"):
            st.code(log, language=None)
