"""The shape of the code (issue 15): imports point one way, the faces call one application
layer, and nothing shared is switched per request. Each test reads the source, so it fails the
moment a face reaches around the layer."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

FACES = [ROOT / "ui" / "cli.py", ROOT / "ui" / "api.py", ROOT / "ui" / "client.py",
         *sorted((ROOT / "ui" / "web").glob("*.py"))]
BELOW = ("retrieval", "qa", "ingest")


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, at the top or inside a function, with its line."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.lineno, node.module))
    return out


def _package_files(name: str) -> list[Path]:
    return sorted((ROOT / name).rglob("*.py"))


def test_faces_reach_retrieval_qa_and_ingest_only_through_the_application_layer():
    reached = [f"{p.relative_to(ROOT)}:{line} imports {mod}" for p in FACES for line, mod in _imports(p)
               if mod.split(".")[0] in BELOW]
    assert reached == [], "a face must call ui.services (the application layer) instead:\n" + "\n".join(reached)


def test_faces_do_not_write_the_audit_log_themselves():
    """The layer's operations record their own entries; a face only reports events it alone
    sees (a page viewed, a download) through Archivist.record."""
    found = []
    for p in FACES:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("record", "record_answer", "entries", "export") \
                    and isinstance(node.value, ast.Attribute) and node.value.attr == "audit":
                found.append(f"{p.relative_to(ROOT)}:{node.lineno} .audit.{node.attr}")
    assert found == [], "\n".join(found)


def test_imports_point_one_way():
    allowed = {"retrieval": set(), "ingest": {"retrieval"}, "qa": {"retrieval"}}
    wrong = []
    for package, may in allowed.items():
        for p in _package_files(package):
            for line, mod in _imports(p):
                top = mod.split(".")[0]
                if top in (*BELOW, "ui") and top != package and top not in may:
                    wrong.append(f"{p.relative_to(ROOT)}:{line} imports {mod}")
    assert wrong == [], "\n".join(wrong)


def test_no_caller_switches_the_reranker_of_a_shared_index():
    """A variant searches through ``index.with_reranker(r)``; only the index sets its own."""
    found = []
    for package in ("qa", "ui", "ingest", "bench"):
        for p in _package_files(package):
            for node in ast.walk(ast.parse(p.read_text())):
                if isinstance(node, (ast.Assign, ast.AugAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for t in targets:
                        if isinstance(t, ast.Attribute) and t.attr == "reranker":
                            found.append(f"{p.relative_to(ROOT)}:{node.lineno}")
    assert found == [], "\n".join(found)


def test_the_shared_index_keeps_its_reranker_while_a_view_uses_another(make_index):
    from retrieval import Chunk, DocumentInfo

    index = make_index()
    with index.writer() as w:
        for i in range(3):
            w.add_document(DocumentInfo(doc=f"d{i}.md", format="md", hash=f"h{i}"),
                           [Chunk(id=f"c{i}", doc=f"d{i}.md", text=f"passage number {i} about leave",
                                  groups=("everyone",))])
        w.commit()

    class Reverse:
        candidates = 10

        def rerank(self, query, hits, texts):
            return list(reversed(hits))

    plain = [h.chunk.id for h in index.search("leave", 3)]
    view = index.with_reranker(Reverse())
    assert [h.chunk.id for h in view.search("leave", 3)] == plain[::-1]
    assert index.reranker is None and [h.chunk.id for h in index.search("leave", 3)] == plain
    assert view.stats()["chunks"] == 3  # everything else is the shared index's


def test_each_settings_section_is_the_components_own_options():
    """A setting is declared once, where its component is: the [search], [answer] and [ingest]
    sections are the index's, the answerer's and the parser's option types plus the faces' own."""
    import dataclasses

    import pytest

    from ingest.limits import ParseLimits
    from qa import AnswerOptions
    from qa.finetune_job import FinetuneOptions
    from retrieval import SearchOptions
    from ui.services.compose import answer_options
    from ui.settings import (AnswerSettings, ConfigError, FinetuneSettings, IngestSettings, SearchSettings,
                             load_settings)

    for section, options in ((SearchSettings, SearchOptions), (AnswerSettings, AnswerOptions),
                             (IngestSettings, ParseLimits), (FinetuneSettings, FinetuneOptions)):
        assert issubclass(section, options)
        redeclared = set(section.__dict__.get("__annotations__", {})) & {f.name for f in dataclasses.fields(options)}
        assert redeclared == set(), f"{section.__name__} declares {redeclared} again"
    s = load_settings(env={"ARCHIVIST_ANSWER__RESCORE_CANDIDATES": "7", "ARCHIVIST_GENERATOR__MAX_TOKENS": "40",
                           "ARCHIVIST_ANSWER__PHRASING": "model"})
    assert (s.answer.evidence.rescore_candidates, s.answer.max_tokens) == (7, 40)  # the old names still work
    opts = answer_options(s)
    assert type(opts) is AnswerOptions and (opts.phrasing, opts.max_tokens, opts.evidence.rescore_candidates) == \
        ("model", 40, 7)
    with pytest.raises(ConfigError, match=r"search\.fusion = 'nope'; use relative, convex or rrf"):
        load_settings(env={"ARCHIVIST_SEARCH__FUSION": "nope"})
    with pytest.raises(ConfigError, match=r"answer\.evidence\.rescore_candidates = -1"):
        load_settings(env={"ARCHIVIST_ANSWER__RESCORE_CANDIDATES": "-1"})
    with pytest.raises(ConfigError, match=r"ingest\.max_pages = -2"):
        load_settings(env={"ARCHIVIST_INGEST__MAX_PAGES": "-2"})
    with pytest.raises(ConfigError, match=r"finetune\.heldout = 1\.5"):
        load_settings(env={"ARCHIVIST_FINETUNE__HELDOUT": "1.5"})
    lora = load_settings(env={"ARCHIVIST_FINETUNE__LORA_R": "8"}).finetune.lora(60.0)
    assert (lora.lora_r, lora.lora_alpha, lora.budget_s, lora.max_steps) == (8, 16, 60.0, None)
