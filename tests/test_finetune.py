"""Fine-tuning: training data, model versions, and the whole pipeline on a tiny corpus."""

import json

import pytest

from qa.model_versions import ModelVersions
from qa.training_data import questions_from_sentence, split_of
from retrieval.errors import ArchivistError
from ui.cli import main

FACTS = {
    "leave.txt": "Annual leave. Every employee receives 25 days of paid annual leave per year. Unused days expire "
                 "at the end of March. Employees with five years of service receive 28 days of leave.",
    "travel.txt": "Travel. The mileage rate for a private car is EUR 0.30 per kilometre. Hotel costs are refunded "
                  "up to EUR 140 per night. Train journeys over 4 hours may be booked in first class.",
    "it.txt": "IT support. The helpdesk answers within 2 hours on working days. Laptops are replaced every "
              "3 years. Passwords expire after 90 days and need 12 characters.",
    "pay.txt": "Pay. Salaries are paid on the 25th of each month. The pension contribution is 7 percent of salary. "
               "Overtime is paid at 150 percent of the hourly rate for up to 10 hours per week.",
}


def test_questions_are_written_from_facts_by_rules():
    assert questions_from_sentence("Every employee receives 25 days of paid annual leave per year.") == [
        ("Every employee receives how many days of paid annual leave per year?", "25 days")]
    (q, a), = questions_from_sentence("The mileage rate for a private car is EUR 0.30 per kilometre.")
    assert a == "EUR 0.30" and "how much" in q
    assert questions_from_sentence("Short one.") == []
    assert questions_from_sentence("cells U87MG were grown in 1000mg/L of medium for the assay") == []


def test_the_held_out_split_is_fixed():
    keys = [f"chunk-{i}" for i in range(2000)]
    first = [split_of(k, 0.2) for k in keys]
    assert first == [split_of(k, 0.2) for k in keys]
    assert 0.15 < first.count("heldout") / len(keys) < 0.25


def test_versions_promote_and_roll_back(tmp_path):
    versions = ModelVersions(tmp_path / "models")
    made = []
    for _ in range(2):
        vid, folder = versions.new_folder()
        (folder / "generator").mkdir()
        (folder / "generator" / "config.json").write_text("{}")
        versions.register(vid, {"eval": {}})
        made.append(vid)
    assert made == ["v1", "v2"] and versions.active is None
    versions.promote("v1")
    versions.promote("v2")
    assert versions.active.id == "v2" and versions.active.generator == tmp_path / "models" / "v2" / "generator"
    with pytest.raises(ArchivistError, match="in use"):
        versions.remove("v2")
    assert versions.rollback().id == "v1"
    assert versions.rollback() is None and versions.active is None
    with pytest.raises(ArchivistError, match="nothing to roll back"):
        versions.rollback()
    with pytest.raises(ArchivistError, match="no model version 'v9'"):
        versions.promote("v9")


@pytest.mark.real
def test_the_whole_pipeline_makes_a_version_that_loads_answers_and_can_be_promoted_and_rolled_back(
        tmp_path, monkeypatch, capsys):
    from ui.services import make_generator
    from ui.settings import load_settings

    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in FACTS.items():
        (docs / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARCHIVIST_ACCESS__DEFAULT", "everyone")
    monkeypatch.setenv("ARCHIVIST_FINETUNE__HELDOUT", "0.3")
    assert main(["ingest", "docs", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["finetune", "--budget-minutes", "0.5", "--max-steps", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == "v1"
    record = out["record"]
    assert record["data"]["train"] > 0 and record["generator_training"]["steps"] >= 1
    assert set(record["eval"]) == {"before", "after"}
    folder = tmp_path / "archivist-data" / "models" / "v1"
    assert (folder / "generator" / "config.json").exists() and (folder / "report.md").exists()
    data = [json.loads(line) for line in (folder / "data.jsonl").read_text().splitlines()]
    train = {e["chunk_id"] for e in data if e["split"] == "train" and e["chunk_id"]}
    held = {e["chunk_id"] for e in data if e["split"] == "heldout"}
    assert not train & held  # never trained on a held-out chunk
    settings = load_settings()
    assert make_generator(settings).name == "SmolLM2-135M-Instruct"  # not promoted yet
    assert main(["models", "promote", "v1"]) == 0
    tuned = make_generator(load_settings())
    assert tuned.path.resolve() == (folder / "generator").resolve()
    capsys.readouterr()
    assert main(["ask", "How many days of paid annual leave does an employee get?", "--json"]) == 0
    ans = json.loads(capsys.readouterr().out)
    assert ans["answer"] and ans["citations"]
    assert main(["models", "list"]) == 0
    assert "* v1" in capsys.readouterr().out
    assert main(["models", "rollback"]) == 0
    assert make_generator(load_settings()).name == "SmolLM2-135M-Instruct"
