"""Our retriever as a LangChain retriever, so chains built with LangChain can use the index.

    from retrieval.langchain import ArchivistRetriever
    retriever = ArchivistRetriever(index=index, k=4, filter=SearchFilter.for_groups(user_groups))
    docs = retriever.invoke("parental leave")   # list[langchain_core.documents.Document]

Without a filter it reads only what is shared with everyone; ``filter=SearchFilter()`` reads
every document (an operator's view: never hand that to a chain that answers employees).

Where the index lives on another machine, :class:`HttpRetriever` searches it through the HTTP
API, as the user whose token it carries:

    retriever = HttpRetriever(base_url="http://archivist:8502/v1", token=os.environ["ARCHIVIST_TOKEN"])
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from retrieval.chunk import Hit
from retrieval.filters import SearchFilter


def hit_to_document(hit: Hit) -> Document:
    c = hit.chunk
    return Document(
        page_content=c.text,
        id=c.id,
        metadata={"doc": c.doc, "page": c.page, "section": c.section, "chunk_id": c.id, "score": hit.score,
                  "rank": hit.rank, "groups": list(c.groups)},
    )


class ArchivistRetriever(BaseRetriever):
    """Hybrid search over an :class:`retrieval.Index`; the filter applies inside the search."""

    index: Any
    k: int = 4
    mode: str | None = None
    filter: SearchFilter = Field(default_factory=lambda: SearchFilter.for_groups([]))  # safe unless told otherwise

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [hit_to_document(h) for h in self.index.search(query, self.k, mode=self.mode, filter=self.filter)]


class HttpRetriever(BaseRetriever):
    """``POST /v1/search`` of a running Archivist API, reading what the token's user may read."""

    base_url: str
    token: str
    k: int = 4
    timeout: float = 60.0

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        import httpx

        url = self.base_url.rstrip("/")
        url += "/search" if url.endswith("/v1") else "/v1/search"
        r = httpx.post(url, json={"query": query, "k": self.k}, timeout=self.timeout,
                       headers={"Authorization": f"Bearer {self.token}"})
        if r.status_code >= 400:
            try:
                message = r.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {r.status_code}"
            raise RuntimeError(f"the Archivist API refused the search: {message}")
        return [Document(page_content=h["text"], id=h["chunk_id"],
                         metadata={k: h[k] for k in ("doc", "page", "section", "chunk_id", "score", "rank")})
                for h in r.json()["results"]]
