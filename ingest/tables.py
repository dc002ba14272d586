"""Tables as Markdown text, one row per line, so the chunker can keep rows together."""

from __future__ import annotations

from html.parser import HTMLParser


class _TableHTML(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if any(c for c in self._row):
                self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def html_table_rows(html: str) -> list[list[str]]:
    parser = _TableHTML()
    parser.feed(html)
    parser.close()
    return parser.rows


def rows_to_markdown(rows: list[list[str]]) -> str:
    """``[["a","b"],["1","2"]]`` -> ``| a | b |\\n| --- | --- |\\n| 1 | 2 |``"""
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    norm = [[c.replace("|", "/") for c in r] + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(norm[0]) + " |", "|" + " --- |" * width]
    lines += ["| " + " | ".join(r) + " |" for r in norm[1:]]
    return "\n".join(lines)


def html_to_markdown_table(html: str) -> str:
    return rows_to_markdown(html_table_rows(html))
