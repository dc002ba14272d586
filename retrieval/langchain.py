"""Our retriever as a LangChain retriever, so chains built with LangChain can use the index.

    from retrieval.langchain import ArchivistRetriever
    retriever = ArchivistRetriever(index=index, k=4, filter=SearchFilter.for_groups(user_groups))
    docs = retriever.invoke("parental leave")   # list[langchain_core.documents.Document]

Without a filter it reads only what is shared with everyone; ``filter=SearchFilter()`` reads
every document (an operator's view: never hand that to a chain that answers employees).
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
