"""SQLite side of the index: chunk text and metadata, documents, and index facts.

Rows are versioned by generation (``added_gen``, ``removed_gen``) so a reader that loaded
generation G keeps seeing exactly G's chunks while a writer prepares G+1.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Iterable, Iterator

from retrieval.chunk import Chunk

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(
    vid INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    doc TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    page INTEGER,
    section TEXT,
    text TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'text',
    hash TEXT NOT NULL DEFAULT '',
    groups TEXT NOT NULL DEFAULT '',
    meta TEXT NOT NULL DEFAULT '{}',
    added_gen INTEGER NOT NULL,
    removed_gen INTEGER
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc);
CREATE INDEX IF NOT EXISTS chunks_id ON chunks(id);
CREATE INDEX IF NOT EXISTS chunks_live ON chunks(removed_gen);
CREATE TABLE IF NOT EXISTS chunk_groups(vid INTEGER NOT NULL, grp TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunk_groups_grp ON chunk_groups(grp, vid);
CREATE TABLE IF NOT EXISTS documents(
    doc TEXT PRIMARY KEY,
    source TEXT,
    format TEXT,
    pages INTEGER,
    size INTEGER,
    mtime REAL,
    hash TEXT,
    chunks INTEGER NOT NULL DEFAULT 0,
    groups TEXT NOT NULL DEFAULT '',
    indexed_at TEXT NOT NULL DEFAULT (datetime('now'))
);
-- the manifest: every source file seen, indexed or not, with what happened to it
CREATE TABLE IF NOT EXISTS files(
    doc TEXT PRIMARY KEY,
    source TEXT,
    size INTEGER,
    mtime REAL,
    hash TEXT,
    status TEXT NOT NULL,          -- indexed | empty | failed
    error TEXT,
    job_id INTEGER,
    updated_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS jobs(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,             -- ingest | reindex | remove
    status TEXT NOT NULL,           -- running | succeeded | failed
    started_at REAL NOT NULL,
    finished_at REAL,
    heartbeat_at REAL,
    pid INTEGER,
    host TEXT,
    total INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    counts TEXT NOT NULL DEFAULT '{}',
    errors TEXT NOT NULL DEFAULT '[]',
    message TEXT NOT NULL DEFAULT ''
);
"""

LIVE = "added_gen <= :gen AND (removed_gen IS NULL OR removed_gen > :gen)"


def encode_groups(groups: Iterable[str]) -> str:
    g = sorted(set(groups))
    return "|" + "|".join(g) + "|" if g else ""


def decode_groups(text: str) -> tuple[str, ...]:
    return tuple(x for x in text.split("|") if x)


def is_read_only(path: Path) -> bool:
    """An existing database in a folder this process may not write (a read-only mount or copy)."""
    path = Path(path)
    return path.exists() and not os.access(path.parent, os.W_OK)


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the index database; read-only (and immutable) when its folder cannot be
    written. A file that is not a database raises IndexCorruptError naming it."""
    from retrieval.errors import IndexCorruptError

    path = Path(path)
    try:
        if is_read_only(path):
            con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro&immutable=1", uri=True, timeout=30,
                                  isolation_level=None, check_same_thread=False)
        else:
            con = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA busy_timeout=30000")
        con.row_factory = sqlite3.Row
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise IndexCorruptError(f"{path} is not a readable index database ({exc}): restore it from a backup, or "
                                "build the index again into a new folder ('archivist ingest PATH --index NEW')") from None
    return con


def init_schema(con: sqlite3.Connection) -> None:
    try:
        con.executescript(SCHEMA)
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc):
            raise  # a read-only index has its tables already


def get_meta(con: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
    row = con.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return row[0] if row else default


def set_meta(con: sqlite3.Connection, key: str, value) -> None:
    con.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, str(value)))


def row_to_chunk(row: sqlite3.Row) -> Chunk:
    return Chunk(
        id=row["id"],
        doc=row["doc"],
        text=row["text"],
        page=row["page"],
        section=row["section"],
        ordinal=row["ordinal"],
        groups=decode_groups(row["groups"]),
        hash=row["hash"],
        kind=row["kind"],
        meta=json.loads(row["meta"] or "{}"),
    )


def insert_chunk(con: sqlite3.Connection, vid: int, chunk: Chunk, gen: int) -> None:
    con.execute(
        "INSERT INTO chunks(vid, id, doc, ordinal, page, section, text, kind, hash, groups, meta, added_gen)"
        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
        (vid, chunk.id, chunk.doc, chunk.ordinal, chunk.page, chunk.section, chunk.text, chunk.kind, chunk.hash,
         encode_groups(chunk.groups), json.dumps(chunk.meta or {}), gen),
    )
    con.executemany("INSERT INTO chunk_groups(vid, grp) VALUES(?, ?)", [(vid, g) for g in set(chunk.groups)])


def live_rows(con: sqlite3.Connection, gen: int, columns: str = "*") -> Iterator[sqlite3.Row]:
    yield from con.execute(f"SELECT {columns} FROM chunks WHERE {LIVE} ORDER BY vid", {"gen": gen})
