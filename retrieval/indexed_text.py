"""The text the embedder and the lexical index see for a chunk: a short header naming the
document and section, then the passage. The header lets a passage that never repeats its
document's subject ("this plan covers...") be found by it."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

_SEP = re.compile(r"[_\-]+")


def doc_title(doc: str) -> str:
    """``hr/Leave_Policy-2024.pdf`` -> ``Leave Policy 2024``"""
    return _SEP.sub(" ", PurePosixPath(doc).stem).strip()


def indexed_text(title: str | None, section: str | None, body: str) -> str:
    head = " | ".join(x for x in (title, section) if x)
    return f"{head}\n{body}" if head else body
