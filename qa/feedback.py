"""Thumbs up or down on answers, kept with the question, the answer and the cited chunks,
for review and for fine-tuning (SQLite, in the data folder)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    user TEXT,
    question TEXT NOT NULL,
    search_query TEXT,
    answer TEXT NOT NULL,
    abstained INTEGER NOT NULL,
    rating INTEGER NOT NULL,          -- +1 or -1
    comment TEXT NOT NULL DEFAULT '',
    chunks TEXT NOT NULL DEFAULT '[]' -- cited chunks: [{chunk_id, doc, page}]
);
"""


@dataclass
class FeedbackEntry:
    id: int
    created_at: float
    user: str | None
    question: str
    search_query: str | None
    answer: str
    abstained: bool
    rating: int
    comment: str
    chunks: list


class FeedbackStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as con:
            con.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30)
        con.row_factory = sqlite3.Row
        return con

    def add(self, answer, rating: int, comment: str = "", user: str | None = None) -> int:
        if rating not in (1, -1):
            raise ValueError("rating is +1 (helpful) or -1 (not helpful)")
        chunks = [{"chunk_id": p.chunk.id, "doc": p.chunk.doc, "page": p.chunk.page} for p in answer.citations]
        with self._lock, self._connect() as con:
            cur = con.execute(
                "INSERT INTO feedback(created_at, user, question, search_query, answer, abstained, rating, comment, chunks)"
                " VALUES(?,?,?,?,?,?,?,?,?)",
                (time.time(), user, answer.question, answer.search_query, answer.text, int(answer.abstained), rating,
                 comment.strip()[:2000], json.dumps(chunks)),
            )
            return int(cur.lastrowid)

    def list(self, limit: int = 100) -> list[FeedbackEntry]:
        with self._connect() as con:
            rows = con.execute("SELECT * FROM feedback ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [
            FeedbackEntry(r["id"], r["created_at"], r["user"], r["question"], r["search_query"], r["answer"],
                          bool(r["abstained"]), r["rating"], r["comment"], json.loads(r["chunks"]))
            for r in rows
        ]
