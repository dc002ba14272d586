"""The audit log: who asked what and what they were shown; who ran which job.

SQLite in the data dir (``audit.sqlite``). Entries older than the retention period are
deleted when the log is opened and once a day after; ``NullAudit`` is the switched-off log.
Passwords and API keys never reach it: callers pass questions, answers and chunk ids only.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    user TEXT NOT NULL,
    action TEXT NOT NULL,          -- ask | search | eval | ingest | reindex | remove | sign-in | sign-in-failed | export
    question TEXT,
    answer TEXT,
    abstained INTEGER,
    retrieved TEXT NOT NULL DEFAULT '[]',   -- chunk ids the search returned
    cited TEXT NOT NULL DEFAULT '[]',       -- chunk ids the answer cites
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts);
CREATE INDEX IF NOT EXISTS audit_user ON audit(user, ts);
"""

#: control characters (C0, DEL, C1) and the line and paragraph separators: what can move a
#: terminal's cursor, recolour it, or start a new line of a listing
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: what a spreadsheet reads as a formula at the start of a cell
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def printable(text: str | None) -> str:
    """``text`` safe to print on one line of a terminal: control characters as escapes (\\x1b, \\n)."""
    if not text:
        return ""
    return _CONTROL.sub(lambda m: {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(m.group(), f"\\x{ord(m.group()):02x}"
                        if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}"), text)


def spreadsheet_safe(cell):
    """A CSV cell a spreadsheet shows as text: one starting like a formula gets a leading quote."""
    if isinstance(cell, str) and cell.startswith(_FORMULA):
        return "'" + cell
    return cell


COLUMNS = ("id", "ts", "user", "action", "question", "answer", "abstained", "retrieved", "cited", "detail")


@dataclass
class AuditEntry:
    id: int
    ts: float
    user: str
    action: str
    question: str | None = None
    answer: str | None = None
    abstained: bool | None = None
    retrieved: list = field(default_factory=list)
    cited: list = field(default_factory=list)
    detail: str = ""

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.ts))
        return d


class AuditLog:
    def __init__(self, path: str | Path, retention_days: int = 365):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.retention_days = retention_days
        self._lock = threading.Lock()
        if not self.path.exists():  # who asked what is confidential: only the service account reads it
            self.path.touch(mode=0o600)
        self._con = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False, isolation_level=None)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.executescript(SCHEMA)
        self._purged_at = 0.0
        self.purge()

    enabled = True

    def purge(self) -> int:
        """Delete entries older than the retention period; returns how many."""
        self._purged_at = time.time()
        if not self.retention_days:
            return 0
        cutoff = time.time() - self.retention_days * 86400
        with self._lock:
            return self._con.execute("DELETE FROM audit WHERE ts < ?", (cutoff,)).rowcount

    def record(self, user: str, action: str, *, question: str | None = None, answer: str | None = None,
               abstained: bool | None = None, retrieved=(), cited=(), detail: str = "") -> int:
        if time.time() - self._purged_at > 86400:
            self.purge()
        with self._lock:
            cur = self._con.execute(
                "INSERT INTO audit(ts, user, action, question, answer, abstained, retrieved, cited, detail)"
                " VALUES(?,?,?,?,?,?,?,?,?)",
                (time.time(), user, action, question, answer, None if abstained is None else int(abstained),
                 json.dumps(list(retrieved)), json.dumps(list(cited)), detail[:2000]),
            )
            return int(cur.lastrowid)

    def record_answer(self, user: str, answer, action: str = "ask") -> int:
        """An :class:`qa.Answer` as asked by ``user``: question, answer, retrieved and cited chunks."""
        return self.record(
            user, action, question=answer.question, answer=answer.text, abstained=answer.abstained,
            retrieved=[h.chunk.id for h in answer.hits], cited=[p.chunk.id for p in answer.citations],
            detail=(f"searched for: {answer.search_query}" if answer.search_query and answer.search_query != answer.question else ""),
        )

    def entries(self, *, user: str | None = None, action: str | None = None, since: float | None = None,
                limit: int | None = 1000) -> list[AuditEntry]:
        where, params = [], []
        if user:
            where.append("user = ?")
            params.append(user)
        if action:
            where.append("action = ?")
            params.append(action)
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        sql = "SELECT * FROM audit" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._con.execute(sql, params).fetchall()
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], r[5], None if r[6] is None else bool(r[6]),
                           json.loads(r[7] or "[]"), json.loads(r[8] or "[]"), r[9] or "") for r in rows]

    def export(self, entries: list[AuditEntry], fmt: str = "csv") -> str:
        if fmt == "jsonl":
            return "".join(json.dumps(e.to_json(), ensure_ascii=False) + "\n" for e in entries)
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["time", *COLUMNS[2:]])
        for e in entries:
            d = e.to_json()
            w.writerow([spreadsheet_safe(c) for c in (
                d["time"], e.user, e.action, e.question or "", e.answer or "",
                "" if e.abstained is None else int(e.abstained), " ".join(e.retrieved), " ".join(e.cited), e.detail)])
        return buf.getvalue()

    def close(self) -> None:
        self._con.close()


class NullAudit:
    """The audit log when ``audit.enabled = false``: records nothing."""

    enabled = False

    def record(self, *a, **k) -> int:
        return 0

    def record_answer(self, *a, **k) -> int:
        return 0

    def entries(self, **k) -> list[AuditEntry]:
        return []

    def export(self, entries, fmt: str = "csv") -> str:
        return ""

    def purge(self) -> int:
        return 0

    def close(self) -> None:
        pass
