from ingest import Block, Chunker, ChunkingOptions, ParsedDocument
from retrieval import FakeEmbedder
from retrieval.indexed_text import doc_title, indexed_text

EMB = FakeEmbedder()


def _chunker(**kw):
    return Chunker(EMB.count_tokens, ChunkingOptions(**{"max_tokens": 64, "target_tokens": 40, "min_tokens": 8, **kw}))


def _sentences(n, word="lorem"):
    return " ".join(f"Sentence {i} says {word} ipsum dolor." for i in range(n))


def test_every_chunk_fits_the_embedder_window():
    doc = ParsedDocument(blocks=[Block("title", "Policy"), Block("text", _sentences(60)), Block("text", "x" * 5 + " word" * 500)])
    chunks = _chunker().chunk("hr/policy.txt", doc)
    assert len(chunks) > 5
    for c in chunks:
        assert EMB.count_tokens(indexed_text(doc_title(c.doc), c.section, c.text)) <= 64


def test_no_text_is_lost():
    text = _sentences(40)
    chunks = _chunker().chunk("a.txt", ParsedDocument(blocks=[Block("text", text)]))
    assert " ".join(" ".join(c.text for c in chunks).split()) == " ".join(text.split())


def test_section_path_follows_heading_levels():
    doc = ParsedDocument(blocks=[
        Block("title", "Benefits", level=0), Block("text", _sentences(3)),
        Block("title", "Dental", level=1), Block("text", _sentences(3, "teeth")),
        Block("title", "Pension", level=0), Block("text", _sentences(3, "money")),
    ])
    chunks = _chunker(min_tokens=4).chunk("b.md", doc)
    sections = [c.section for c in chunks]
    assert "Benefits > Dental" in sections and "Pension" in sections
    dental = next(c for c in chunks if c.section == "Benefits > Dental")
    assert "teeth" in dental.text


def test_small_table_is_never_split_and_big_table_repeats_header():
    small = "| Plan | Premium |\n| --- | --- |\n| Basic | 0 |\n| Plus | 450 |"
    chunks = _chunker().chunk("t.md", ParsedDocument(blocks=[Block("text", _sentences(2)), Block("table", small)]))
    assert any(c.text.strip().endswith(small) or c.text.strip() == small for c in chunks)
    rows = "\n".join(f"| row {i} | value {i} |" for i in range(60))
    big = "| Key | Value |\n| --- | --- |\n" + rows
    chunks = _chunker().chunk("t.md", ParsedDocument(blocks=[Block("table", big)]))
    assert len(chunks) > 2
    for c in chunks:
        assert c.text.startswith("| Key | Value |\n| --- | --- |") and c.kind == "table"
    got_rows = [ln for c in chunks for ln in c.text.split("\n")[2:]]
    assert got_rows == rows.split("\n")


def test_pages_and_metadata():
    doc = ParsedDocument(blocks=[Block("text", _sentences(5), page=1), Block("text", _sentences(5, "next"), page=2)], pages=2)
    chunks = _chunker(min_tokens=4).chunk("f/x.pdf", doc, groups=("hr",))
    assert [c.page for c in chunks][0] == 1 and 2 in [c.page for c in chunks]
    assert all(c.doc == "f/x.pdf" and c.groups == ("hr",) and len(c.hash) == 32 for c in chunks)
    assert len({c.id for c in chunks}) == len(chunks)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
