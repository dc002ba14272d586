"""The Archivist web app: `archivist serve` (or `streamlit run ui/web/app.py`)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:  # streamlit puts this folder, not the project, on the path
    sys.path.insert(0, ROOT)

import streamlit as st  # noqa: E402

from ui.services import ArchivistError  # noqa: E402
from ui.web import admin_page, ask_page, audit_page, eval_page, signin  # noqa: E402
from ui.web.render import escape_md  # noqa: E402
from ui.web.resources import services  # noqa: E402

st.set_page_config(page_title="Archivist", page_icon="📚", layout="wide")

try:
    svc = services()
except ArchivistError as exc:
    st.error(f"Archivist cannot start: {escape_md(str(exc))}")
    st.stop()

ident = signin.current_identity(svc)  # the sign-in screen, and a stop, for anyone not signed in

PAGES = {"Ask": ask_page.render}
if ident.is_admin:
    PAGES.update({"Admin": admin_page.render, "Evaluate": eval_page.render, "Audit log": audit_page.render})
if st.session_state.get("page") not in PAGES:
    st.session_state["page"] = "Ask"
if len(PAGES) > 1:  # a menu only when there is something to choose
    page = st.sidebar.radio("Archivist", list(PAGES), key="page")
else:
    page = "Ask"
with st.sidebar:
    st.caption(f"Signed in as **{escape_md(ident.user)}**" + (" (admin)" if ident.is_admin else ""))
    if svc.settings.auth.mode == "local" and st.button("Sign out"):
        svc.record(ident, "sign-out")
        signin.sign_out()
        st.rerun()
if st.session_state.get("viewed") != page:  # who looked at which page, once per visit
    st.session_state["viewed"] = page
    svc.record(ident, "view", detail=page)
PAGES[page](svc, ident)
