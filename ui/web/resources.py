"""What the web app shares between sessions: one application (ui.services.Archivist).

Made once per process (``st.cache_resource``), so models load once and every employee's
session uses the same copy; each session keeps its own conversation in session state.
"""

from __future__ import annotations

import os

import streamlit as st

from ui.services import Archivist
from ui.settings import load_settings

Services = Archivist  # what every page is handed


@st.cache_resource(show_spinner="Loading the index and the models…")
def _services(config: str | None, index_dir: str | None) -> Archivist:
    settings = load_settings(config, **({"index": index_dir} if index_dir else {}))
    if settings.private_files:
        os.umask(0o077)  # uploads, feedback, the audit log: for the service's account alone
    app = Archivist(settings)
    app.index  # created when missing: the Admin page's first upload goes into it
    app.warm_up()
    return app


def services() -> Archivist:
    return _services(os.environ.get("ARCHIVIST_CONFIG") or None, os.environ.get("ARCHIVIST_INDEX") or None)


def require_admin(ident) -> None:
    """Stop the run unless the user is an admin: each admin page checks, not only the menu."""
    if ident is None or not ident.is_admin:
        st.error("This page is for administrators.")
        st.stop()  # ends the script run here
        raise PermissionError("administrators only")  # outside a script run, st.stop() does not stop
