"""Abstention calibrated per index, on questions drawn from the index's own chunks."""

import json
import random

import pytest

from qa import Answerer, AnswerOptions, FakeGenerator
from qa.calibration import OFF_TOPIC, calibrate, fit_threshold, stored, synthetic_questions
from retrieval import Chunk, DocumentInfo

HR = ["Every employee receives {n} days of paid annual leave per year.",
      "The travel policy reimburses {n} euros per night for hotels in {city}.",
      "Parental leave for the other parent lasts {n} weeks at full pay.",
      "Expense claims above {n} euros need the approval of the {team} manager.",
      "The {team} team works from the {city} office on {n} days a month."]
SCIENCE = ["The incubation period of the {virus} virus was {n} days in the cohort studied.",
           "Patients infected with {virus} developed fever after a median of {n} hours.",
           "Serum antibodies against {virus} were detected in {n} percent of the samples.",
           "The {virus} strain isolated in {city} replicated in {n} cell lines.",
           "Ferrets inoculated with {virus} shed virus for {n} days in nasal washes."]


def _corpus(index, templates, fill, docs=12, per_doc=6, seed=0):
    rng = random.Random(seed)
    with index.writer() as w:
        for d in range(docs):
            doc = f"doc-{d}.txt"
            chunks = []
            for i in range(per_doc):
                text = " ".join(t.format(n=rng.randint(2, 90), **{k: rng.choice(v) for k, v in fill.items()})
                                for t in rng.sample(templates, 3))
                chunks.append(Chunk(id=f"{doc}#{i}", doc=doc, text=text, ordinal=i))
            w.add_document(DocumentInfo(doc=doc), chunks)
        w.commit()
    return index


@pytest.fixture
def two_corpora(make_index):
    hr = _corpus(make_index("hr"), HR, {"city": ["Oslo", "Bergen", "Leeds"], "team": ["finance", "sales", "legal"]})
    sci = _corpus(make_index("sci"), SCIENCE, {"virus": ["H5N1", "MERS", "RSV", "SARS"], "city": ["Lyon", "Wuhan"]})
    return hr, sci


def test_synthetic_questions_come_from_the_index_and_from_elsewhere(two_corpora):
    hr, _ = two_corpora
    answerable, unanswerable = synthetic_questions(hr, 60, seed=0)
    assert len(answerable) == 60
    assert all(q.endswith("?") for q in answerable)
    assert set(OFF_TOPIC) <= set(unanswerable)
    invented = [q for q in unanswerable if q not in OFF_TOPIC]
    assert invented, "questions about names the index does not hold"
    assert synthetic_questions(hr, 60, seed=0) == (answerable, unanswerable)  # seeded: the same each time


def test_each_index_gets_its_own_threshold_meeting_its_target(two_corpora):
    fitted = {}
    for index in two_corpora:
        answerer = Answerer(index, FakeGenerator(), AnswerOptions(match_weight=0.0))
        cal = calibrate(answerer, questions=200, max_false_abstain=0.05, max_false_answer=0.10)
        assert cal is not None and cal.generation == index.generation and cal.chunks == len(index)
        assert cal.heldout_false_abstain <= cal.max_false_abstain  # on its own held-out questions
        assert cal.fit_answerable + cal.heldout_answerable == 200
        fitted[index.path.name] = cal.min_confidence
        assert stored(index) == cal  # kept in the index, with what it was fitted on
        assert answerer.threshold() == (cal.min_confidence, "calibrated")
    assert abs(fitted["hr"] - fitted["sci"]) > 0.01, fitted


def test_the_answerer_uses_the_stored_threshold_and_falls_back_to_the_default(two_corpora):
    hr, _ = two_corpora
    answerer = Answerer(hr, FakeGenerator(), AnswerOptions(min_confidence=0.77))
    assert answerer.threshold() == (0.77, "default")
    hr.set_note("calibration", json.dumps({"min_confidence": 9.0}))
    ans = answerer.ask("How many days of paid annual leave does every employee get?")
    assert ans.abstained and "calibrated threshold 9.00" in ans.reason
    hr.set_note("calibration", "not json")  # a broken note: the default serves
    assert answerer.threshold() == (0.77, "default")
    assert Answerer(hr, FakeGenerator(), AnswerOptions(min_confidence=0.77, use_calibration=False)).threshold()[1] == "default"


def test_fit_threshold_meets_both_targets_or_keeps_the_answerable_one():
    answerable = [1.0 + i / 100 for i in range(100)]  # 1.00 .. 1.99
    t, rule = fit_threshold(answerable, [0.1 + i / 200 for i in range(100)], 0.05, 0.10)
    assert rule == "between" and sum(v < t for v in answerable) <= 5
    t, rule = fit_threshold(answerable, [1.5 + i / 200 for i in range(100)], 0.05, 0.10)
    assert rule == "answerable" and t < 1.05  # below the sample's 5 % quantile: a margin for new questions
    assert sum(v < t for v in answerable) >= 1


def test_too_small_an_index_is_not_calibrated(make_index):
    idx = make_index()
    with idx.writer() as w:
        w.add_document(DocumentInfo(doc="a.txt"), [Chunk(id="a", doc="a.txt", text="Too short.")])
        w.commit()
    assert calibrate(Answerer(idx, FakeGenerator())) is None and stored(idx) is None


def test_cli_calibrate_and_stats(tmp_path, monkeypatch, capsys):
    from ui.cli import main

    docs = tmp_path / "docs"
    docs.mkdir()
    rng = random.Random(1)
    for d in range(8):
        (docs / f"policy-{d}.txt").write_text("\n\n".join(
            t.format(n=rng.randint(2, 60), city=rng.choice(["Oslo", "Leeds"]), team=rng.choice(["sales", "legal"]))
            for t in HR * 2))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARCHIVIST_EMBEDDER__MODEL", "fake")
    monkeypatch.setenv("ARCHIVIST_ANSWER__CALIBRATE_AFTER_INGEST", "true")
    monkeypatch.setenv("ARCHIVIST_ANSWER__CALIBRATION_QUESTIONS", "40")
    assert main(["ingest", str(docs), "--no-progress"]) == 0  # fitted after the commit
    assert main(["stats", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["calibration"]
    assert first["generation"] == 1 and first["fit_answerable"] + first["heldout_answerable"] == 40
    assert main(["calibrate", "--json", "--no-progress"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["min_confidence"] == first["min_confidence"]  # the same questions, the same fit
    assert main(["stats"]) == 0
    assert "abstention: threshold" in capsys.readouterr().out
