"""Parsing in a separate process, so a file that hangs or crashes a parser costs that
file alone: it is reported, the worker is replaced, and the job goes on."""

from __future__ import annotations

import multiprocessing as mp
import threading
from pathlib import Path

from ingest.blocks import ParsedDocument, ParseError, ParseTimeout


def _serve(conn, ocr: bool) -> None:  # runs in the worker process
    from ingest._offline import set_offline_env

    set_offline_env()
    import logging
    import warnings

    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    from ingest.partition import parse_file

    while True:
        try:
            path = conn.recv()
        except EOFError:
            return
        if path is None:
            return
        try:
            conn.send(("ok", parse_file(Path(path), ocr=ocr)))
        except ParseError as exc:
            conn.send(("parse_error", (type(exc).__name__, exc.reason)))
        except Exception as exc:  # a parser bug: report it as this file's failure
            conn.send(("parse_error", ("ParseError", f"parser failed: {type(exc).__name__}: {exc}"[:300])))


class Parser:
    """``parse(path)`` with a time limit per file; ``isolate=False`` parses in-process."""

    def __init__(self, *, timeout: float = 300.0, ocr: bool = True, isolate: bool = True):
        self.timeout = timeout
        self.ocr = ocr
        self.isolate = isolate
        self._proc = None
        self._conn = None
        self._lock = threading.Lock()

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(child, self.ocr), daemon=True, name="archivist-parser")
        proc.start()
        self._proc = proc
        child.close()
        self._conn = parent

    def _stop(self, kill: bool = False) -> None:
        if self._proc is None or self._conn is None:
            self._proc = self._conn = None
            return
        try:
            if kill:
                self._proc.kill()
            else:
                self._conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=5)
        self._conn.close()
        self._proc = self._conn = None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def __enter__(self) -> "Parser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def parse(self, path: Path) -> ParsedDocument:
        if not self.isolate:
            from ingest.partition import parse_file

            try:
                return parse_file(Path(path), ocr=self.ocr)
            except ParseError:
                raise
            except Exception as exc:
                raise ParseError(f"parser failed: {type(exc).__name__}: {exc}"[:300]) from exc
        with self._lock:
            if self._proc is None or not self._proc.is_alive():
                self._start()
            self._conn.send(str(path))
            if not self._conn.poll(self.timeout):
                self._stop(kill=True)
                raise ParseTimeout(f"parsing took longer than {self.timeout:.0f} s and was stopped")
            try:
                status, payload = self._conn.recv()
            except (EOFError, OSError):
                self._stop(kill=True)
                raise ParseError("the parser crashed on this file") from None
        if status == "ok":
            return payload
        kind, reason = payload
        import ingest.blocks as blocks

        raise getattr(blocks, kind, ParseError)(reason)
