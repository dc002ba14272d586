"""The Archivist web app: `archivist serve` (or `streamlit run ui/web/app.py`)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:  # streamlit puts this folder, not the project, on the path
    sys.path.insert(0, ROOT)

import streamlit as st  # noqa: E402

from retrieval.errors import ArchivistError  # noqa: E402
from ui.web import admin_page, ask_page, eval_page  # noqa: E402
from ui.web.resources import services  # noqa: E402

st.set_page_config(page_title="Archivist", page_icon="📚", layout="wide")

try:
    svc = services()
except ArchivistError as exc:
    st.error(f"Archivist cannot start: {exc}")
    st.stop()

PAGES = {"Ask": ask_page.render, "Admin": admin_page.render, "Evaluate": eval_page.render}
page = st.sidebar.radio("Archivist", list(PAGES), key="page")
PAGES[page](svc)
