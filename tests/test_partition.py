import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLES
from ingest import Parser, parse_file
from ingest.blocks import CorruptDocument, EncryptedDocument, ParseError, UnsupportedFormat

SAMPLE_FILES = sorted(p for p in (SAMPLES / "docs").rglob("*") if p.is_file() and not p.name.endswith(".groups"))  # not the access sidecars


def test_samples_cover_the_common_formats():
    exts = {p.suffix for p in SAMPLE_FILES}
    assert {".pdf", ".docx", ".pptx", ".xlsx", ".html", ".md", ".txt", ".eml", ".csv"} <= exts
    assert 15 <= len(SAMPLE_FILES) <= 25


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_every_sample_parses_to_text(path):
    doc = parse_file(path)
    assert not doc.is_empty
    assert sum(len(b.text) for b in doc.blocks) > 100


def test_pdf_pages_and_tables_survive():
    doc = parse_file(SAMPLES / "docs/hr/employee-handbook.pdf")
    assert doc.pages == 3
    assert any(b.page == 2 and "25 days of paid annual leave" in b.text for b in doc.blocks)
    assert not any(b.text.strip() == "Page 1" for b in doc.blocks)  # page footers are dropped
    xlsx = parse_file(SAMPLES / "docs/hr/benefits-summary.xlsx")
    table = next(b for b in xlsx.blocks if b.kind == "table")
    assert "| Family Plus | 980 |" in table.text.replace(".0", "")
    pptx = parse_file(SAMPLES / "docs/finance/q3-2026-results.pptx")
    assert any(b.kind == "table" and b.page == 3 and "Tidewater buoys" in b.text for b in pptx.blocks)


def test_a_pdf_pages_table_lines_stay_rows_of_their_own():
    """A text layer gives a table as lines: a label and its figures, or cells between pipes. Joined into
    a paragraph, a question about one row would be answered from the whole table; kept a line each, every
    row is a unit of its own (qa.text.sentences), and a pipe table is read with its header."""
    from ingest.pdf import _page_blocks
    from qa.text import sentences

    page = ("Results of operations\nRevenue grew on higher shipments and pricing held through the\nquarter.\n"
            "Revenue $ 1,745.9 $ 1,477.9\nNet income 153.0 192.1\nDiluted earnings per share 0.94 1.18\n"
            "Demand stayed healthy in 2022 and 2023.")
    blocks = _page_blocks(page, 2)
    rows = next(b for b in blocks if "Net income" in b.text)
    assert rows.text.split("\n") == ["Revenue $ 1,745.9 $ 1,477.9", "Net income 153.0 192.1",
                                      "Diluted earnings per share 0.94 1.18"]
    assert "Diluted earnings per share 0.94 1.18" in sentences(rows.text)
    assert any(b.text.endswith("Revenue grew on higher shipments and pricing held through the quarter.") for b in blocks)
    assert blocks[-1].text == "Demand stayed healthy in 2022 and 2023."  # a sentence ending on years is no row
    piped = _page_blocks("| | 2023 | 2022 |\n| Net income | 153.0 | 192.1 |\n| Diluted EPS | 0.94 | 1.18 |", 2)
    assert [b.kind for b in piped] == ["table"]
    assert "| | 2023 | 2022 | | Diluted EPS | 0.94 | 1.18 |" in sentences(piped[0].text)
    alone = _page_blocks("We spent on two plants\nin total 12 14\nand no more.", 1)
    assert [b.text for b in alone] == ["We spent on two plants in total 12 14 and no more."]  # one line of figures


def test_figures_under_a_header_of_years_are_read_back_as_a_table():
    """A statement without rules reads "Three Months Ended March 31, 2024 Three Months Ended March 31, 2023"
    above "Net income 570.6 523.4": as lines, a row does not say which year a figure is; as a table, it
    is read out with its columns. Lines that do not fit the columns stay lines."""
    from ingest.pdf import _page_blocks
    from qa.text import sentences

    page = ("Condensed Statements of Operations\n(in millions)\n"
            "Three Months Ended March 31, 2024 Three Months Ended March 31, 2023\n"
            "Revenue $ 1,745.9 $ 1,477.9\nBalance at December 31, 2022 12.0 11.5\nNet income 570.6 523.4")
    table = next(b for b in _page_blocks(page, 2) if "Net income" in b.text)
    assert table.kind == "table"
    assert table.text.split("\n")[0] == "| | Three Months Ended March 31, 2024 | Three Months Ended March 31, 2023 |"
    assert "| Revenue | $1,745.9 | $1,477.9 |" in table.text
    assert "| Balance at December 31, 2022 | 12.0 | 11.5 |" in table.text  # a date in a label stays in it
    said = " ".join(sentences(table.text))
    assert "Three Months Ended March 31, 2024" in said and "570.6" in said
    years = next(b for b in _page_blocks("2023 2022 2021\nRevenue 10.5 9.1 8.0\nNet income 1.5 1.2 0.9", 1))
    assert years.kind == "table" and years.text.startswith("| | 2023 | 2022 | 2021 |")
    short = _page_blocks("2023 2022 2021\nRevenue 10.5 9.1\nNet income 1.5 1.2", 1)  # two figures under three years
    assert [b.kind for b in short] == ["text"] and short[0].text.split("\n")[1] == "Revenue 10.5 9.1"
    data = _page_blocks("Units 2,023 1,998\nNet income 1.5 1.2", 1)  # no header: figures stay lines
    assert [b.kind for b in data] == ["text"]


def test_a_header_whose_cells_wrap_and_the_parts_of_a_statement_stay_with_its_table():
    """A 10-K's text layer gives each header cell's lines apart ("Years ended" / "September 30," / "2023" /
    ...) and names the parts of a statement on lines of their own ("Net sales:"): the header is found above
    the rows, its bare years are not taken for page numbers, and every line is kept."""
    from ingest.pdf import _page_blocks

    page = ("CONSOLIDATED STATEMENTS OF OPERATIONS\n(In millions, except per-share amounts)\nYears ended\n"
            "September 30,\n2023\nSeptember 24,\n2022\nSeptember 25,\n2021\nNet sales:\n"
            "Products $ 298,085 $ 316,199 $ 297,392\nServices 85,200 78,129 68,425\nOperating expenses:\n"
            "Research and development 29,915 26,251 21,914\nSee the accompanying notes.")
    blocks = _page_blocks(page, 28)
    assert [b.kind for b in blocks] == ["title", "text", "table", "text"]
    rows = blocks[2].text.split("\n")
    assert rows[0] == "| | Years ended September 30, 2023 | September 24, 2022 | September 25, 2021 |"
    assert rows[2:] == ["| Net sales: | | | |", "| Products | $298,085 | $316,199 | $297,392 |",
                        "| Services | 85,200 | 78,129 | 68,425 |", "| Operating expenses: | | | |",
                        "| Research and development | 29,915 | 26,251 | 21,914 |"]
    two = _page_blocks("Revenue grew.\nSeptember 30,\n2023\nRevenue 10.5 9.1\nNet income 1.5 1.2", 1)
    assert two[-1].kind == "text" and any(b.text == "2023" for b in two)  # one year, two columns: no header, kept

def test_bad_files_fail_cleanly(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(UnsupportedFormat, match="unsupported file type '.zip'"):
        parse_file(tmp_path / "x.zip")
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4\n1 0 obj garbage")
    with pytest.raises(CorruptDocument):
        parse_file(tmp_path / "bad.pdf")
    (tmp_path / "bad.docx").write_bytes(b"this is not a zip")
    with pytest.raises(CorruptDocument, match="not a zip"):
        parse_file(tmp_path / "bad.docx")
    with zipfile.ZipFile(tmp_path / "plain.docx", "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(CorruptDocument, match="without Office content"):
        parse_file(tmp_path / "plain.docx")
    (tmp_path / "locked.xlsx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    with pytest.raises(EncryptedDocument):
        parse_file(tmp_path / "locked.xlsx")
    (tmp_path / "empty.txt").write_bytes(b"")
    assert parse_file(tmp_path / "empty.txt").is_empty


def test_text_in_odd_encodings(tmp_path):
    (tmp_path / "u16.txt").write_bytes("Fjord Übersicht\n\nBody text here.".encode("utf-16"))
    assert "Übersicht" in " ".join(b.text for b in parse_file(tmp_path / "u16.txt").blocks)
    (tmp_path / "cp.csv").write_bytes("name;city\nJørgen;Tromsø\nÅse;Bodø\n".encode("cp1252"))
    table = parse_file(tmp_path / "cp.csv").blocks[0].text
    assert "| Jørgen | Tromsø |" in table


def test_isolated_parser_reports_and_survives(tmp_path):
    (tmp_path / "ok.txt").write_text("Hello world, this is fine.")
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 nothing")
    with Parser(timeout=60) as parser:
        with pytest.raises(ParseError):
            parser.parse(tmp_path / "bad.pdf")
        assert "fine" in parser.parse(tmp_path / "ok.txt").blocks[0].text


def test_parser_timeout_kills_a_hanging_parse(tmp_path, monkeypatch):
    (tmp_path / "ok.txt").write_text("Hello")
    parser = Parser(timeout=0.001)
    try:
        with pytest.raises(ParseError, match="longer than"):
            parser.parse(tmp_path / "ok.txt")  # the worker cannot even start in 1 ms
    finally:
        parser.close()


def test_a_job_with_markup_starts_the_parser_warming_unstructured(tmp_path):
    """The parser process starts with the job, and warms unstructured only when a file needs it;
    a warm parser still parses every kind, and stops at once when the job is done."""
    from ingest.partition import needs_unstructured

    assert needs_unstructured(Path("a/notes.html")) and needs_unstructured(Path("deck.pptx"))
    assert not any(needs_unstructured(Path(n)) for n in ("report.pdf", "notes.txt", "data.csv", "app.py", "a.md"))
    page = tmp_path / "page.html"
    page.write_text("<h1>Leave</h1><p>Every employee receives 25 days of paid annual leave.</p>\n")
    (tmp_path / "notes.txt").write_text("Plain notes about the parking rules.\n")
    for paths, warm in (([tmp_path / "notes.txt"], False), ([page, tmp_path / "notes.txt"], True)):
        parser = Parser()
        parser.prepare_for(paths)
        assert ("--warm" in parser._proc.args) is warm
        text = " ".join(b.text for p in paths for b in parser.parse(p).blocks)
        assert "parking" in text and ("25 days" in text) is warm
        proc = parser._proc
        parser.close()
        assert proc.returncode == 0


def test_markdown_is_read_without_unstructured(tmp_path):
    """Headings with their levels, paragraphs, list items, a table with its header, code; front
    matter dropped; and no unstructured (nor spaCy) loaded for it."""
    import subprocess
    import sys

    page = tmp_path / "leave.md"
    page.write_text("---\nauthor: HR\n---\n# Leave policy\n\nEvery employee receives **25 days** of\npaid leave.\n\n"
                    "## Parents\n\n- Birth parent: 18 weeks\n- Other parent: [12 weeks](http://x)\n  - notice: 4 weeks\n\n"
                    "| Parent | Weeks |\n|---|:--:|\n| Birth | 18 |\n| Other | 12 |\n\n```\nleave --days 25\n```\n")
    doc = parse_file(page)
    assert [(b.kind, b.level, b.text) for b in doc.blocks] == [
        ("title", 0, "Leave policy"),
        ("text", 0, "Every employee receives 25 days of paid leave."),
        ("title", 1, "Parents"),
        ("list", 0, "- Birth parent: 18 weeks"),
        ("list", 0, "- Other parent: 12 weeks"),
        ("list", 0, "  - notice: 4 weeks"),
        ("table", 0, "| Parent | Weeks |\n| --- | --- |\n| Birth | 18 |\n| Other | 12 |"),
        ("text", 0, "leave --days 25"),
    ]
    code = ("import sys; from pathlib import Path; from ingest.partition import parse_file; "
            f"parse_file(Path({str(page)!r})); print('unstructured' in sys.modules, 'spacy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr[-2000:]
