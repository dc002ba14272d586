"""Audit log (admins): who asked what and was shown which sources; who ran which job."""

from __future__ import annotations

import streamlit as st

from ui.auth import Identity
from ui.web.resources import Services, require_admin


def render(svc: Services, ident: Identity) -> None:
    require_admin(ident)
    st.title("Audit log")
    if not svc.audit_enabled:
        st.info("The audit log is switched off (audit.enabled = false in the settings).")
        return
    days = svc.settings.audit.retention_days
    st.caption("Questions with the passages retrieved and cited and the answer given; sign-ins; jobs. "
               + (f"Entries are kept {days} days." if days else "Entries are kept until deleted."))
    cols = st.columns(3)
    user = cols[0].text_input("User", key="audit_user").strip() or None
    action = cols[1].selectbox("Action", ["(all)", "ask", "search", "eval", "ingest", "reindex", "remove",
                                          "sign-in", "sign-in-failed"], key="audit_action")
    span = cols[2].number_input("Last days", 1, 3650, 30, key="audit_days")
    entries = svc.audit_entries(ident, user=user, action=None if action == "(all)" else action, days=span, limit=5000)
    if not entries:
        st.caption("No entries match.")
        return
    st.dataframe([{"time": e.to_json()["time"], "user": e.user, "action": e.action,
                   "question": e.question or e.detail, "answer": e.answer,
                   "abstained": e.abstained, "retrieved": len(e.retrieved), "cited": ", ".join(e.cited)}
                  for e in entries], hide_index=True, width="stretch")
    c1, c2 = st.columns(2)
    def exported(fmt):
        svc.record(ident, "export", detail=f"{len(entries)} audit entries as {fmt} (web)")

    c1.download_button("Export CSV", svc.export_audit(ident, entries, "csv", "web", record=False), file_name="archivist-audit.csv",
                       mime="text/csv", key="audit_csv", on_click=exported, args=("csv",))
    c2.download_button("Export JSON lines", svc.export_audit(ident, entries, "jsonl", "web", record=False), file_name="archivist-audit.jsonl",
                       mime="application/jsonl", key="audit_jsonl", on_click=exported, args=("jsonl",))
