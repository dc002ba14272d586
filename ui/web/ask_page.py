"""Ask: the chat. Answers stream in; each citation opens a source card."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.auth import Identity
from ui.services import ABSTAIN_TEXT, Answer, Evidence, plural
from ui.web.render import answer_md, escape_md, highlight, quote_md, where
from ui.web.resources import Services


def _page_image(path: Path, page: int):
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        return pdf[page - 1].render(scale=1.4).to_pil()
    finally:
        pdf.close()


def source_card(svc: Services, ident: Identity, n: int, chunk, sentence: str, key: str) -> None:
    with st.expander(f"\\[{n}\\] {escape_md(where(chunk))}"):
        st.markdown(highlight(chunk.text, sentence))
        info = svc.document(ident, chunk.doc)  # the download goes through the reader's filter too
        path = Path(info.source) if info and info.source else None
        if path is None or not path.is_file():
            st.caption("The original file is no longer where it was indexed from.")
            return
        cols = st.columns(2)
        cols[0].download_button("Download the document", path.read_bytes(), file_name=path.name, key=f"dl-{key}",
                                on_click=svc.record, args=(ident, "download"),
                                kwargs={"detail": chunk.doc})
        if path.suffix.lower() == ".pdf" and chunk.page:
            if cols[1].toggle(f"Show page {chunk.page}", key=f"pg-{key}"):
                st.image(_page_image(path, chunk.page), caption=escape_md(f"{chunk.doc}, page {chunk.page}"))


def _feedback_form(svc: Services, ident: Identity, answer: Answer, i: int) -> None:
    done = st.session_state.setdefault("feedback_done", set())
    if i in done:
        st.caption("Thanks for the feedback.")
        return
    with st.form(key=f"fb-{i}", border=False):
        cols = st.columns([2, 5, 1])
        rating = cols[0].radio("Was this helpful?", ["Helpful", "Not helpful"], horizontal=True, key=f"fbr-{i}", index=None)
        comment = cols[1].text_input("Comment (optional)", key=f"fbc-{i}", label_visibility="collapsed",
                                     placeholder="Comment (optional)")
        if cols[2].form_submit_button("Send"):
            if rating is None:
                st.warning("Choose Helpful or Not helpful first.")
            else:
                svc.feedback(ident, answer, 1 if rating == "Helpful" else -1, comment)
                done.add(i)
                st.rerun()


def show_answer(svc: Services, ident: Identity, answer: Answer, i: int) -> None:
    if answer.abstained:
        if answer.hits:
            why = answer.answer if answer.answer != ABSTAIN_TEXT else "The documents do not answer this question."
            st.info(f"{escape_md(why)} These are the closest passages:")
        else:
            st.info("None of the documents you may read answers this question.")
        for j, h in enumerate(answer.hits[:3], 1):
            source_card(svc, ident, j, h.chunk, "", key=f"{i}-c{j}")
    else:
        if answer.answer:
            st.markdown(answer_md(answer.answer))
        show_quote(answer.quote, answer.citations)
        for p in answer.citations:
            source_card(svc, ident, p.n, p.chunk, p.best_sentence, key=f"{i}-{p.n}")
    if answer.search_query and answer.search_query != answer.question and st.session_state.get("show_rewrite"):
        st.caption(f"Searched for: {escape_md(answer.search_query)}")
    _feedback_form(svc, ident, answer, i)


def show_quote(quote: str, citations) -> None:
    """The quote card: the evidence under its source's name (a table quote as a table)."""
    with st.container(border=True):
        st.markdown(quote_md(quote))
        if citations:
            st.caption(f"[{citations[0].n}] {escape_md(where(citations[0].chunk))}")


def render(svc: Services, ident: Identity) -> None:
    st.title("Ask the company documents")
    history: list[Answer] = st.session_state.setdefault("history", [])
    with st.sidebar:
        st.toggle("Show how follow-up questions were understood", key="show_rewrite")
        if st.button("New conversation"):
            st.session_state.history = []
            st.session_state.feedback_done = set()
            st.rerun()
    if not history:
        readable = svc.stats(ident)["documents"]  # counts only what this reader may read
        if readable:
            st.caption(f"{plural(readable, 'document')} you may read. Answers cite their sources; "
                       "when the documents do not say, Archivist says so.")
        else:
            st.info("No documents are shared with you yet. An administrator adds documents and decides who may "
                    "read them (the access rules of the settings, or .groups files beside the documents).")
    for i, answer in enumerate(history):
        with st.chat_message("user"):
            st.markdown(escape_md(answer.question))
        with st.chat_message("assistant"):
            show_answer(svc, ident, answer, i)
    question = st.chat_input("Ask a question about the documents")
    if not question:
        return
    previous = [a.search_query or a.question for a in history]
    with st.chat_message("user"):
        st.markdown(escape_md(question))
    with st.chat_message("assistant"):
        box = st.empty()
        final = None
        try:  # the quote shows as soon as retrieval is done; the short answer once it has passed its checks
            for event in svc.stream(ident, question, history=previous):
                if isinstance(event, Answer):
                    final = event
                elif isinstance(event, Evidence):
                    with box.container():
                        st.caption("Checking the answer against this source…")
                        show_quote(event.quote, event.citations)
        except ValueError as exc:
            box.warning(str(exc))
            return
        except Exception as exc:  # the model or the index failed: say so, keep the app alive
            box.error(f"Could not answer: {exc}")
            return
        box.empty()
    history.append(final)
    st.rerun()
