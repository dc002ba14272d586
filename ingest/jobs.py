"""Job records: each ingestion or reindex run, its progress, counts and per-file errors.

A job row says ``running`` only while its process lives: :func:`reap_dead_jobs` marks the
rows of processes that died (killed, crashed, machine restarted) as failed, so nothing is
shown as running forever.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from retrieval import store

HEARTBEAT_S = 1.0
STALE_AFTER_S = 600.0  # a job on another host that has not beaten for this long is dead


@dataclass
class JobInfo:
    id: int
    kind: str
    status: str
    started_at: float
    finished_at: float | None
    pid: int | None
    host: str | None
    total: int
    done: int
    counts: dict
    errors: list
    message: str
    heartbeat_at: float | None = None

    @property
    def seconds(self) -> float | None:
        end = self.finished_at or (time.time() if self.status == "running" else None)
        return None if end is None else end - self.started_at


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed, not yet reaped by its parent) is not alive either
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


class JobLog:
    """The jobs table of an index folder."""

    def __init__(self, index_dir: str | os.PathLike):
        self.con = store.connect(Path(index_dir) / "archivist.sqlite")
        store.init_schema(self.con)

    def close(self) -> None:
        self.con.close()

    def start(self, kind: str, total: int = 0) -> int:
        self.reap_dead_jobs()
        now = time.time()
        cur = self.con.execute(
            "INSERT INTO jobs(kind, status, started_at, heartbeat_at, pid, host, total) VALUES(?,?,?,?,?,?,?)",
            (kind, "running", now, now, os.getpid(), socket.gethostname(), total),
        )
        return int(cur.lastrowid)

    def progress(self, job_id: int, done: int, counts: dict, *, total: int | None = None, force: bool = False) -> None:
        now = time.time()
        if not force and now - getattr(self, "_last_beat", 0.0) < HEARTBEAT_S:
            return
        self._last_beat = now
        if total is None:
            self.con.execute("UPDATE jobs SET done=?, counts=?, heartbeat_at=? WHERE id=?", (done, json.dumps(counts), now, job_id))
        else:
            self.con.execute("UPDATE jobs SET done=?, total=?, counts=?, heartbeat_at=? WHERE id=?",
                             (done, total, json.dumps(counts), now, job_id))

    def finish(self, job_id: int, status: str, counts: dict, errors: list, message: str = "", done: int | None = None) -> None:
        now = time.time()
        self.con.execute(
            "UPDATE jobs SET status=?, finished_at=?, heartbeat_at=?, counts=?, errors=?, message=?, done=COALESCE(?, done) WHERE id=?",
            (status, now, now, json.dumps(counts), json.dumps(errors), message, done, job_id),
        )

    def reap_dead_jobs(self) -> int:
        """Mark jobs whose process is gone as failed; returns how many."""
        host = socket.gethostname()
        now = time.time()
        dead = []
        for r in self.con.execute("SELECT id, pid, host, heartbeat_at FROM jobs WHERE status='running'"):
            if r["host"] == host:
                gone = not r["pid"] or not _pid_alive(r["pid"])
            else:
                gone = (now - (r["heartbeat_at"] or 0)) > STALE_AFTER_S
            if gone:
                dead.append(r["id"])
        for job_id in dead:
            self.con.execute(
                "UPDATE jobs SET status='failed', finished_at=?, message=? WHERE id=? AND status='running'",
                (now, "the process running this job stopped (killed or crashed); the index kept its last commit", job_id),
            )
        return len(dead)

    def list(self, limit: int = 20) -> list[JobInfo]:
        self.reap_dead_jobs()
        rows = self.con.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [self._info(r) for r in rows]

    def get(self, job_id: int) -> JobInfo | None:
        r = self.con.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return self._info(r) if r else None

    @staticmethod
    def _info(r) -> JobInfo:
        return JobInfo(
            id=r["id"], kind=r["kind"], status=r["status"], started_at=r["started_at"], finished_at=r["finished_at"],
            pid=r["pid"], host=r["host"], total=r["total"], done=r["done"], counts=json.loads(r["counts"] or "{}"),
            errors=json.loads(r["errors"] or "[]"), message=r["message"], heartbeat_at=r["heartbeat_at"],
        )
