"""Sign-in: every page of the web app is behind it.

``auth.mode = "local"``: a form checked against the users file; the identity then lives in
the session (server side) until "Sign out". ``auth.mode = "proxy"``: the identity comes from
the trusted proxy's headers on every run, and a request from any other address is refused.
"""

from __future__ import annotations

import streamlit as st

from ui.auth import AuthError, Identity
from ui.web.render import escape_md
from ui.web.resources import Services


def _request_headers() -> dict:
    """Every header of the request, each with all the values it was sent with."""
    try:
        headers = st.context.headers
        return {key: headers.get_all(key) for key in headers.keys()}
    except Exception:  # no request (a bare script run)
        return {}


def _peer_address() -> str | None:
    """The address of the connection itself (the TCP peer), never a forwarded-for header.

    ``archivist serve`` runs the server with FORWARDED_ALLOW_IPS empty, so the peer is not
    rewritten from X-Forwarded-For either."""
    try:
        from streamlit.runtime import get_instance
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        client = get_instance().get_client(ctx.session_id)
        return client.client_context.remote_ip
    except Exception:
        return None


def sign_out() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def current_identity(svc: Services) -> Identity:
    """The signed-in user; otherwise draws the sign-in screen and stops the run."""
    auth = svc.settings.auth
    if auth.mode == "proxy":
        try:
            ident = svc.from_proxy(_request_headers(), _peer_address())
        except AuthError as exc:
            st.title("Archivist")
            st.error(f"Not signed in: {escape_md(str(exc))}")
            st.stop()
        if st.session_state.get("signed_in_as") != ident.user:
            st.session_state["signed_in_as"] = ident.user
            svc.record(ident, "sign-in", detail="via the sign-in proxy")
        return ident
    ident = st.session_state.get("identity")
    if isinstance(ident, Identity):
        try:  # every run reads the users file again: removed users and changed groups count at once
            ident = svc.recheck(ident)
        except AuthError as exc:
            sign_out()
            st.session_state["signed_out_because"] = str(exc)
        else:
            st.session_state["identity"] = ident
            return ident
    _sign_in_form(svc)
    st.stop()


def _sign_in_form(svc: Services) -> None:
    _, middle, _ = st.columns([1, 1, 1])  # a form of a readable width, not the whole page
    with middle:
        _sign_in_form_body(svc)


def _sign_in_form_body(svc: Services) -> None:
    st.title("Archivist")
    st.caption("Sign in to ask the company documents.")
    if st.session_state.get("signed_out_because"):
        st.info(f"You were signed out: {escape_md(st.session_state['signed_out_because'])}.")
    if not svc.users.list():
        st.warning("No users exist yet. An administrator creates them on the server: "
                   "`archivist users add NAME --groups admin`.")
    with st.form("sign-in"):
        name = st.text_input("User name", key="signin_user")
        password = st.text_input("Password", type="password", key="signin_password")
        submitted = st.form_submit_button("Sign in")
    if not submitted:
        return
    try:
        ident = svc.sign_in(name, password)
    except AuthError as exc:
        st.error(escape_md(str(exc)))
        return
    st.session_state.pop("signin_password", None)
    st.session_state.pop("signed_out_because", None)
    st.session_state["identity"] = ident
    st.rerun()
