"""Who may read a document: the access policy, decided at ingestion and stored with every chunk.

A document's groups come from, first match wins:

1. a sidecar beside the document: ``<file name>.groups`` (``salaries.xlsx.groups``);
2. the nearest folder sidecar: a ``.groups`` file in the document's folder or a folder
   above it, up to the source folder;
3. the policy rules of the settings (``[[access.rules]]`` with ``path`` globs over document
   names and ``groups``); when several match, the last one wins, as in ``.gitignore``;
4. the default: nobody (``access.default = "deny"``), or everyone (``"everyone"``).

A sidecar lists group names separated by commas, spaces or new lines; ``#`` starts a
comment; ``everyone`` means every signed-in reader. An empty sidecar means nobody.
Sidecar files are never indexed themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ingest.sources import SIDECAR_SUFFIX, glob_match
from retrieval.filters import EVERYONE

FOLDER_SIDECAR = ".groups"
_NAME = re.compile(r"^[\w.@+-]+$")


def is_sidecar(path: Path) -> bool:
    return path.name == FOLDER_SIDECAR or path.name.endswith(SIDECAR_SUFFIX)


def parse_groups(text: str, origin: str = "groups") -> tuple[str, ...]:
    """Group names from sidecar text; a clear error for a name that is not one."""
    names: set[str] = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        for name in re.split(r"[,\s]+", line):
            if not name:
                continue
            if not _NAME.match(name):
                raise ValueError(f"{origin}: {name!r} is not a group name (letters, digits and . _ - @ +)")
            names.add(name.lower() if name.lower() == EVERYONE else name)
    return tuple(sorted(names))


@dataclass
class AccessRule:
    path: str  # a glob over document names: "hr/**", "**/board-*.pdf"
    groups: tuple[str, ...]


@dataclass
class AccessPolicy:
    rules: list[AccessRule] = field(default_factory=list)
    default: str = "deny"  # deny | everyone
    sidecars: bool = True

    def __post_init__(self):
        if self.default not in ("deny", EVERYONE):
            raise ValueError(f"access.default = {self.default!r}; use deny or everyone")

    def groups_for(self, doc: str, path: Path | None = None, root: Path | None = None) -> tuple[str, ...]:
        """The groups that may read ``doc`` (read from ``path`` under the source folder ``root``)."""
        if self.sidecars and path is not None:
            found = self._sidecar(Path(path), Path(root) if root is not None else None)
            if found is not None:
                return found
        chosen: tuple[str, ...] | None = None
        for rule in self.rules:
            if glob_match(doc, rule.path):
                chosen = rule.groups
        if chosen is not None:
            return tuple(sorted(set(chosen)))
        return (EVERYONE,) if self.default == EVERYONE else ()

    def _sidecar(self, path: Path, root: Path | None) -> tuple[str, ...] | None:
        own = path.with_name(path.name + SIDECAR_SUFFIX)
        if own.is_file():
            return parse_groups(own.read_text(encoding="utf-8", errors="replace"), str(own))
        if root is None:
            return None
        folder = path.parent
        try:
            folder.resolve().relative_to(Path(root).resolve())
        except ValueError:
            return None  # the file does not lie under its source folder: no folder sidecars
        while True:
            side = folder / FOLDER_SIDECAR
            if side.is_file():
                return parse_groups(side.read_text(encoding="utf-8", errors="replace"), str(side))
            if folder.resolve() == Path(root).resolve() or folder.parent == folder:
                return None
            folder = folder.parent
