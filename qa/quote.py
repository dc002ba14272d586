"""The quote shown with an answer: its sentence with the sentences around it, or, for a table
row, the rows around it under their header, as a Markdown table.

    rows "| Parent | Weeks | | Birth | 16 |", "| Parent | Weeks | | Other | 12 |" ->

    | Parent | Weeks |
    | --- | --- |
    | Birth | 16 |
    | Other | 12 |
"""

from __future__ import annotations

from qa.extract import table_cells
from qa.text import sentences


def _table(rows: list[str]) -> str:
    header, _ = table_cells(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(table_cells(r)[1]) + " |" for r in rows]
    return "\n".join(lines)


def quote(text: str, centre: str, neighbours: int = 2, max_words: int = 120) -> str:
    """``centre`` (one of the sentences of ``text``) with up to ``neighbours`` sentences each side,
    trimmed from the farther side to ``max_words``; table rows stay rows of their own table."""
    sents = sentences(text)
    try:
        i = sents.index(centre)
    except ValueError:
        return centre
    parsed = table_cells(centre)
    if parsed is not None:
        same = lambda s: (table_cells(s) or ([None], None))[0] == parsed[0]  # noqa: E731
        lo, hi = i, i + 1
        while lo > 0 and i - lo < neighbours and same(sents[lo - 1]):
            lo -= 1
        while hi < len(sents) and hi - i <= neighbours and same(sents[hi]):
            hi += 1
        return _table(sents[lo:hi])
    picked = [s for s in sents[max(0, i - neighbours): i + neighbours + 1] if table_cells(s) is None or s == centre]
    while len(" ".join(picked).split()) > max_words and len(picked) > 1:
        # drop from the side farther from the centre
        if picked[0] != centre and (picked[-1] == centre or len(picked[0]) >= len(picked[-1])):
            picked = picked[1:]
        else:
            picked = picked[:-1]
    return " ".join(picked)
