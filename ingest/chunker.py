"""Structure-aware chunking bounded by the embedder's tokenizer.

Rules, in order:
- a heading starts a new chunk (unless the open chunk is still tiny), and every chunk
  carries the heading path above it as ``section``;
- a passage may run over a page break; ``page`` is the page where the chunk starts;
- a table that fits the budget is never split; a larger one is split between rows, each
  piece repeating the header row;
- a paragraph over the budget is split at sentence, then word boundaries
  (LangChain's recursive splitter measuring with the embedder's own tokenizer);
- the text the embedder sees (a short header with document and section, then the body)
  stays within ``max_tokens``, checked with the tokenizer, so nothing is silently truncated.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from ingest.blocks import Block, ParsedDocument
from ingest.opening import opening_meta
from retrieval.chunk import Chunk, content_hash
from retrieval.indexed_text import doc_title, indexed_text

CountTokens = Callable[[str], int]


@dataclass
class ChunkingOptions:
    max_tokens: int = 256  # the embedder's window, special tokens included
    target_tokens: int = 180  # body size a chunk grows to before it is closed
    min_tokens: int = 48  # a chunk smaller than this is not closed at a heading or page break
    safety: int = 4
    #: close a chunk at a page break (once it has min_tokens). Off: a passage that runs over a
    #: page break stays whole, and ``page`` is the page where it starts.
    page_breaks: bool = False


@dataclass
class _Piece:
    text: str
    tokens: int
    kind: str
    page: int | None
    section: tuple[str, ...]


class Chunker:
    def __init__(self, count_tokens: CountTokens, options: ChunkingOptions | None = None):
        self.count = count_tokens
        self.opt = options or ChunkingOptions()

    # -- public --------------------------------------------------------------
    def chunk(self, doc: str, parsed: ParsedDocument, groups: tuple[str, ...] = ()) -> list[Chunk]:
        title = doc_title(doc)
        meta = opening_meta(parsed.blocks)  # the period and names its opening states (ingest.opening)
        pieces = self._pieces(parsed.blocks)
        chunks: list[Chunk] = []
        cur: list[_Piece] = []
        cur_tokens = 0

        def flush():
            nonlocal cur, cur_tokens
            if not cur:
                return
            body = "\n".join(p.text for p in cur).strip()
            if body:
                section = " > ".join(cur[0].section) or None
                kind = "table" if all(p.kind == "table" for p in cur) else "text"
                for text in self._fit(title, section, body, kind):
                    n = len(chunks)
                    chunks.append(
                        Chunk(
                            id=Chunk.make_id(doc, n, text),
                            doc=doc,
                            text=text,
                            page=cur[0].page,
                            section=section,
                            ordinal=n,
                            groups=tuple(groups),
                            hash=content_hash(text),
                            kind=kind,
                            meta=dict(meta),
                        )
                    )
            cur, cur_tokens = [], 0

        budget = self._budget(title, None)
        for piece in pieces:
            if cur:
                new_page = self.opt.page_breaks and piece.page != cur[-1].page and piece.page is not None
                boundary = piece.section != cur[-1].section or new_page
                if boundary and cur_tokens >= self.opt.min_tokens:
                    flush()
                elif cur_tokens + piece.tokens > min(self.opt.target_tokens, budget):
                    flush()
                elif piece.kind == "table" and cur_tokens + piece.tokens > self.opt.target_tokens:
                    flush()
            cur.append(piece)
            cur_tokens += piece.tokens
        flush()
        return chunks

    # -- internals -----------------------------------------------------------
    def _budget(self, title: str, section: str | None) -> int:
        header = indexed_text(title, section, "")
        return self.opt.max_tokens - self.count(header) - self.opt.safety

    def _pieces(self, blocks: list[Block]) -> list[_Piece]:
        """Blocks to pieces no bigger than a chunk body, with the heading path of each."""
        out: list[_Piece] = []
        stack: list[tuple[int, str]] = []
        limit = self.opt.target_tokens
        for b in blocks:
            text = b.text.strip()
            if not text:
                continue
            if b.kind == "title":
                while stack and stack[-1][0] >= b.level:
                    stack.pop()
                stack.append((b.level, " ".join(text.split())[:120]))
                continue
            section = tuple(t for _, t in stack)
            n = self.count(text)
            if n <= limit:
                out.append(_Piece(text, n, b.kind, b.page, section))
            elif b.kind == "table":
                out.extend(_Piece(t, self.count(t), "table", b.page, section) for t in self._split_table(text, limit))
            else:
                out.extend(_Piece(t, self.count(t), b.kind, b.page, section) for t in self._split_text(text, limit))
        return out

    def _split_text(self, text: str, limit: int) -> list[str]:
        # the splitter measures each piece two or three times (to split, to merge, to drop); the
        # tokenizer runs once per piece
        # imported here, not at construction: 0.35 s that a job would otherwise wait for before its first file
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(
            chunk_size=limit,
            chunk_overlap=0,
            length_function=functools.lru_cache(maxsize=None)(self.count),
            separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
            keep_separator="end",
        )
        return [t.strip() for t in splitter.split_text(text) if t.strip()]

    def _split_table(self, table: str, limit: int) -> list[str]:
        lines = table.split("\n")
        header = lines[:2] if len(lines) > 2 and set(lines[1].replace("|", "").split()) <= {"---"} else lines[:1]
        head_text = "\n".join(header)
        head_tokens = self.count(head_text)
        if head_tokens > limit // 2:  # a monster header: treat the table as text
            return self._split_text(table, limit)
        out: list[str] = []
        rows: list[str] = []
        size = head_tokens
        for row in lines[len(header):]:
            n = self.count(row)
            if n + head_tokens > limit:  # a single huge row
                if rows:
                    out.append("\n".join(header + rows))
                    rows, size = [], head_tokens
                out.extend(self._split_text(row, limit))
                continue
            if size + n > limit and rows:
                out.append("\n".join(header + rows))
                rows, size = [], head_tokens
            rows.append(row)
            size += n
        if rows:
            out.append("\n".join(header + rows))
        return out

    def _fit(self, title: str, section: str | None, body: str, kind: str) -> list[str]:
        """Exact check of what the embedder will see; split again if it is over the window."""
        if self.count(indexed_text(title, section, body)) <= self.opt.max_tokens:
            return [body]
        limit = max(16, self._budget(title, section))
        parts = self._split_table(body, limit) if kind == "table" else self._split_text(body, limit)
        out: list[str] = []
        for p in parts:
            if self.count(indexed_text(title, section, p)) <= self.opt.max_tokens or len(p) < 20:
                out.append(p)
            else:
                half = len(p) // 2
                out.extend(self._fit(title, section, p[:half], "text") + self._fit(title, section, p[half:], "text"))
        return out
