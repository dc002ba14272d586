"""What a generation's files must be: their sizes and checksums, recorded when they are
written and checked before the generation is published, and again when it is loaded.

A write that the disk cut short (full, quota, a file size limit) then fails the commit
loudly instead of publishing a generation no reader can load.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from retrieval.errors import IndexCorruptError, IndexWriteError


#: numpy reads a .npy header with ast.literal_eval, and CPython 3.11's AST builder counts its
#: recursion depth per interpreter, not per thread: two threads parsing at once can fail with
#: "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905), which a reader
#: would take for a damaged file. Every array the index reads is opened under this lock (the
#: header only: a memory-mapped array is read after it is released).
NUMPY_HEADERS = threading.Lock()


def load_array(path: Path, mmap_mode: str | None = None) -> np.ndarray:
    """``np.load`` of one .npy file, one thread at a time (:data:`NUMPY_HEADERS`)."""
    with NUMPY_HEADERS:
        return np.load(path, mmap_mode=mmap_mode)


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_bytes_durably(path: Path, data: bytes) -> list:
    """Write ``data`` to ``path`` through a temporary file, fsync it, and read it back; returns
    its record ([size, sha256]) for the generation's manifest."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        _remove(tmp)
        raise IndexWriteError(f"could not write {path.name} in {path.parent} ({exc.strerror or exc}): is the disk "
                              "full? The previous generation of the index stays in use.") from None
    expected = hashlib.sha256(data).hexdigest()
    if tmp.stat().st_size != len(data) or digest(tmp) != expected:
        _remove(tmp)
        raise IndexWriteError(f"{path.name} in {path.parent} was not written in full: is the disk full? The previous "
                              "generation of the index stays in use.")
    os.replace(tmp, path)
    return [len(data), expected]


def record(paths: list[Path], base: Path) -> dict[str, list]:
    """{relative name: [size, sha256]} of every file under ``paths`` (files or folders), synced to disk."""
    out: dict[str, list] = {}
    for p in paths:
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            try:
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
                out[str(f.relative_to(base))] = [f.stat().st_size, digest(f)]
            except OSError as exc:
                raise IndexWriteError(f"could not read back {f.name} in {f.parent} ({exc.strerror or exc}): "
                                      "the previous generation of the index stays in use.") from None
    return out


def check_sizes(manifest: dict[str, list], base: Path) -> None:
    """Raise IndexCorruptError naming the first file that is missing or of the wrong size (cheap: no reading)."""
    for name, (size, _sha) in manifest.items():
        p = base / name
        try:
            actual = p.stat().st_size
        except OSError:
            raise IndexCorruptError(f"the index file {p} is missing") from None
        if actual != size:
            raise IndexCorruptError(f"the index file {p} is damaged ({actual} bytes, {size} were written)")


def _remove(p: Path) -> None:
    try:
        p.unlink()
    except OSError:
        pass
