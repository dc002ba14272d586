"""Parsing in a separate process, so a file that hangs or crashes a parser costs that
file alone: it is reported, the worker is replaced, and the job goes on.

The worker is a plain ``python -m ingest.worker`` child speaking length-prefixed pickles
over its stdin/stdout, so it works the same from the CLI, the web app, a notebook or a
script fed on stdin (multiprocessing's spawn would re-import the caller's main module).
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
import threading
from pathlib import Path

from ingest.blocks import ParsedDocument, ParseError, ParseTimeout

_HEADER = struct.Struct("!I")


def _write(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_exact(stream, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        part = stream.read(n - len(buf))
        if not part:
            raise EOFError
        buf += part
    return buf


def _read(stream):
    (n,) = _HEADER.unpack(_read_exact(stream, _HEADER.size))
    return pickle.loads(_read_exact(stream, n))


def _serve(warm: bool = False) -> None:  # runs in the worker process
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints from parsers must not corrupt the protocol
    inp = sys.stdin.buffer
    from ingest._offline import set_offline_env

    set_offline_env()
    import logging
    import warnings

    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    from ingest.partition import parse_file

    if warm:  # while the first files are parsed: the seconds unstructured's first use costs
        import threading

        from ingest.partition import warm_up

        threading.Thread(target=_quietly, args=(warm_up,), name="archivist-warm-parsers", daemon=True).start()
    limited = False
    while True:
        try:
            path, ocr, limits = _read(inp)
        except EOFError:  # the job is done: every answer was sent; skip tearing the parsers' modules down
            out.flush()
            os._exit(0)
        if not limited:
            _limit_memory(limits.parser_memory_mb)  # after the imports: the limit is for what a file costs
            limited = True
        try:
            _write(out, ("ok", parse_file(Path(path), ocr=ocr, limits=limits)))
        except ParseError as exc:
            _write(out, ("parse_error", (type(exc).__name__, exc.reason)))
        except MemoryError:
            _write(out, ("out_of_memory", limits.parser_memory_mb))
            return  # a process that ran out of memory is not trusted with the next file
        except Exception as exc:  # a parser bug: report it as this file's failure
            _write(out, ("parse_error", ("ParseError", f"parser failed: {type(exc).__name__}: {exc}"[:300])))


def _quietly(fn) -> None:
    try:
        fn()
    except Exception:  # the file that needs it reports the failure
        pass


def _limit_memory(memory_mb: int) -> None:
    """Cap this process's address space (and its children's: LibreOffice, tesseract)."""
    if memory_mb <= 0:
        return
    import resource

    cap = memory_mb * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))

class Parser:
    """``parse(path)`` with a time limit per file; ``isolate=False`` parses in-process."""

    def __init__(self, *, timeout: float = 300.0, ocr: bool = True, isolate: bool = True, limits=None):
        from ingest.limits import ParseLimits

        self.timeout = timeout
        self.ocr = ocr
        self.isolate = isolate
        self.limits = limits or ParseLimits()
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def prepare_for(self, paths) -> None:
        """Start the parser process now, warming the parsers these files need (a job calls it first)."""
        if not self.isolate:
            return
        from ingest.partition import needs_unstructured

        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start(warm=any(needs_unstructured(Path(p)) for p in paths))

    def _start(self, warm: bool = False) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.worker"] + (["--warm"] if warm else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=root,
        )

    def _stop(self, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if kill:
                proc.kill()
            else:
                proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=5)
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def close(self) -> None:
        with self._lock:
            self._stop()

    def __enter__(self) -> "Parser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        try:
            self._stop(kill=True)
        except Exception:
            pass

    def parse(self, path: Path) -> ParsedDocument:
        if not self.isolate:
            from ingest.partition import parse_file

            try:
                return parse_file(Path(path), ocr=self.ocr, limits=self.limits)
            except ParseError:
                raise
            except Exception as exc:
                raise ParseError(f"parser failed: {type(exc).__name__}: {exc}"[:300]) from exc
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            proc = self._proc
            try:
                _write(proc.stdin, (str(Path(path).resolve()), self.ocr, self.limits))  # the child runs elsewhere
                ready, _, _ = select.select([proc.stdout], [], [], self.timeout)
                if not ready:
                    self._stop(kill=True)
                    raise ParseTimeout(f"parsing took longer than {self.timeout:g} s and was stopped")
                status, payload = _read(proc.stdout)
            except (EOFError, OSError, pickle.UnpicklingError):
                self._stop(kill=True)
                raise ParseError("the parser crashed on this file (or passed ingest.parser_memory_mb)") from None
        if status == "ok":
            return payload
        if status == "out_of_memory":
            with self._lock:
                self._stop(kill=True)
            from ingest.limits import TooLarge

            raise TooLarge(f"needed more than {payload} MB of memory to read (ingest.parser_memory_mb): not read")
        kind, reason = payload
        raise error_class(kind)(reason)


def error_class(kind: str) -> type[ParseError]:
    """The ParseError subclass a parser process named (corrupt, encrypted, too large...), so the
    report reads as if the file had been parsed here."""
    import ingest.blocks as blocks
    import ingest.limits as limits

    for module in (blocks, limits):
        found = getattr(module, kind, None)
        if isinstance(found, type) and issubclass(found, ParseError):
            return found
    return ParseError


if __name__ == "__main__":
    _serve(warm="--warm" in sys.argv[1:])
