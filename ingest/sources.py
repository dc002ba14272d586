"""Where documents come from: folders named in settings, with include/exclude globs.

Globs match the path relative to the folder, with ``/`` separators: ``*`` stays within
one folder, ``**`` crosses folders (``**/*.pdf``, ``drafts/**``, ``**/~$*``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path


SIDECAR_SUFFIX = ".groups"  # "<file>.groups" beside a document names who may read it


@dataclass
class SourceSpec:
    path: Path
    name: str = ""  # prefix of the document names from this folder ("hr" -> "hr/leave.pdf")
    include: list[str] = field(default_factory=lambda: ["**/*"])
    exclude: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"{self.name.strip('/')}/" if self.name.strip("/") else ""


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif c == "*":
            out += "[^/]*"
            i += 1
        elif c == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(c)
            i += 1
    return re.compile(out + r"\Z")


def glob_match(rel: str, pattern: str) -> bool:
    """``glob_match("a/b/c.pdf", "**/*.pdf") -> True``; ``glob_match("c.pdf", "*/c.pdf") -> False``"""
    return bool(_glob_regex(pattern).match(rel))


def source_files(spec: SourceSpec) -> list[tuple[Path, str]]:
    """(file, document name) for every file of the source that its globs select, sorted."""
    root = Path(spec.path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"source folder {root} does not exist")
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or name.endswith(SIDECAR_SUFFIX):
                continue  # hidden files, and access sidecars (ingest/access.py)
            f = Path(folder) / name
            rel = f.relative_to(root).as_posix()
            if any(glob_match(rel, p) for p in spec.include) and not any(glob_match(rel, p) for p in spec.exclude):
                out.append((f, spec.prefix + rel))
    return out
