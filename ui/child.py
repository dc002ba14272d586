"""Run server processes so that they stop when their parent does: `archivist serve`'s
Streamlit and HTTP API.

The child gets its own process group; SIGTERM, SIGINT and SIGHUP sent to the parent are
passed on to that whole group, and the parent waits for it (killing it after a grace
period), so nothing is left listening on a port once `archivist serve` has exited.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
from typing import Mapping, Sequence

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class PortError(OSError):
    """The address cannot be listened on: in use, or not this machine's."""


def check_port_free(host: str, port: int) -> None:
    """Raise PortError with a sentence to show when ``host:port`` cannot be bound now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortError(f"port {port} on {host} is already in use (another 'archivist serve'?): stop that "
                                f"server or pick a free port with --port") from None
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise PortError(f"not allowed to listen on port {port}: ports below 1024 need privileges; "
                                f"use --port 8501 or another above 1023") from None
            raise PortError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): check --host") from None
        except socket.gaierror as exc:
            raise PortError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): check --host") from None


def run_in_group(cmds: Sequence[Sequence[str]], env: Mapping[str, str] | None = None, *, grace_s: float = 10.0,
                 poll_s: float = 0.5) -> int:
    """Run each command in a new process group of its own, forward stop signals to them all,
    and return the exit code of the first to end (the others are stopped then: one server
    without the other is not what was asked for)."""
    import time

    procs = [subprocess.Popen(list(cmd), env=dict(env) if env is not None else None, start_new_session=True)
             for cmd in cmds]
    previous = {}

    def forward(signum, _frame):
        for proc in procs:
            _signal_group(proc, signum)

    for sig in FORWARDED:
        previous[sig] = signal.signal(sig, forward)
    try:
        while True:
            for proc in procs:
                code = proc.poll()
                if code is not None:
                    return code
            time.sleep(poll_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for proc in procs:
            stop_group(proc, grace_s)


def stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Stop the child and everything it started: SIGTERM to the group, SIGKILL after ``grace_s``."""
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(proc, signal.SIGKILL)  # its own children too, even when it has exited
    proc.wait()


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
