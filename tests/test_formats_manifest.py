"""Every file of the shared parser-robustness corpus is parsed, or reported, as its entry expects."""

import json
import time

import pytest

from conftest import require_eval
from ingest import Parser
from ingest.blocks import ParseError
from ingest.pdf import tesseract_available

PER_FILE_LIMIT_S = 120


def _manifest():
    try:
        folder = require_eval("formats")
    except pytest.skip.Exception:
        return []
    return [json.loads(line) for line in (folder / "MANIFEST.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def parser():
    with Parser(timeout=PER_FILE_LIMIT_S) as p:
        yield p


def test_manifest_is_present():
    assert len(_manifest()) >= 100 or pytest.skip("shared eval data not found")


@pytest.mark.parametrize("entry", _manifest(), ids=lambda e: e["path"])
def test_file_behaves_as_expected(entry, parser):
    path = require_eval("formats", entry["path"])
    started = time.monotonic()
    try:
        doc = parser.parse(path)
        got = "empty" if doc.is_empty else "parse"
    except ParseError as exc:
        got = "error"
        assert exc.reason and len(exc.reason) < 400
    assert time.monotonic() - started < PER_FILE_LIMIT_S
    expect = entry["expect"]
    if expect == "parse" and "needs-ocr" in entry["tags"] and not tesseract_available():
        assert got == "empty", "an image-only file without OCR must come back empty, not crash"
    else:
        assert got == expect, f"{entry['path']}: expected {expect}, got {got} ({entry['note']})"
