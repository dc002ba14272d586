"""What the web app shares between sessions: settings, index, answerer, stores.

Read once per process (``st.cache_resource``), so models load once and every employee's
session uses the same copy; each session keeps its own conversation in session state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import streamlit as st

from qa import Answerer
from qa.feedback import FeedbackStore
from retrieval import Index
from ui.auth import UserStore
from ui.settings import Settings, load_settings


@dataclass
class Services:
    settings: Settings
    index: Index
    answerer: Answerer
    feedback: FeedbackStore
    users: UserStore
    audit: object  # qa.audit.AuditLog, or NullAudit when switched off


@st.cache_resource(show_spinner="Loading the index and the models…")
def _services(config: str | None, index_dir: str | None) -> Services:
    from ui.services import make_answerer, open_audit, open_index, user_store

    settings = load_settings(config, **({"index": index_dir} if index_dir else {}))
    if settings.private_files:
        os.umask(0o077)  # uploads, feedback, the audit log: for the service's account alone
    index = open_index(settings)
    answerer = make_answerer(settings, index)
    _warm_up(index, answerer)
    return Services(settings, index, answerer, FeedbackStore(settings.data_dir / "feedback.sqlite"),
                    user_store(settings), open_audit(settings))


def _warm_up(index: Index, answerer: Answerer) -> None:
    """Load the models in the background while the first page renders: the first question
    then does not wait for them."""
    import threading

    def load():
        for thing in (index.embedder, answerer.generator):
            loader = getattr(thing, "load", None) or getattr(thing, "_load", None)
            if loader:
                try:
                    loader()
                except Exception:  # reported when the first question needs it
                    pass

    threading.Thread(target=load, name="archivist-warm-up", daemon=True).start()


def services() -> Services:
    return _services(os.environ.get("ARCHIVIST_CONFIG") or None, os.environ.get("ARCHIVIST_INDEX") or None)


def require_admin(ident) -> None:
    """Stop the run unless the user is an admin: each admin page checks, not only the menu."""
    if ident is None or not ident.is_admin:
        st.error("This page is for administrators.")
        st.stop()  # ends the script run here
        raise PermissionError("administrators only")  # outside a script run, st.stop() does not stop
