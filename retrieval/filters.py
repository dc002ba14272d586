"""What a search may see: a document path prefix and the reader's access groups.

``groups=None`` means no access filtering (the operator's command line, system jobs); a set
means: chunks shared with :data:`EVERYONE` plus those shared with any of these groups. A
chunk with no groups at all is readable by nobody through a filter (the policy's default
is deny).
"""

from __future__ import annotations

from dataclasses import dataclass


#: the group every signed-in reader belongs to ("readable by everyone")
EVERYONE = "everyone"


@dataclass(frozen=True)
class SearchFilter:
    doc_prefix: str | None = None
    groups: frozenset[str] | None = None

    @classmethod
    def for_groups(cls, groups, doc_prefix: str | None = None) -> "SearchFilter":
        return cls(doc_prefix=doc_prefix, groups=frozenset(groups))

    @property
    def is_open(self) -> bool:
        return not self.doc_prefix and self.groups is None

    def sql(self) -> tuple[str, dict]:
        """A WHERE fragment over ``chunks`` and its parameters."""
        parts: list[str] = []
        params: dict = {}
        if self.doc_prefix:
            esc = self.doc_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            parts.append("doc LIKE :prefix ESCAPE '\\'")
            params["prefix"] = esc + "%"
        if self.groups is not None:
            names = sorted(set(self.groups) | {EVERYONE})
            marks = ",".join(f":g{i}" for i in range(len(names)))
            parts.append(f"vid IN (SELECT vid FROM chunk_groups WHERE grp IN ({marks}))")
            params.update({f"g{i}": n for i, n in enumerate(names)})
        return (" AND ".join(parts) or "1=1"), params
