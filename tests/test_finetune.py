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


def _ingest_facts(tmp_path, monkeypatch, **settings):
    """FACTS ingested by the command line in ``tmp_path``, readable by everyone, with ARCHIVIST_<settings>."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in FACTS.items():
        (docs / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARCHIVIST_ACCESS__DEFAULT", "everyone")
    for key, value in settings.items():
        monkeypatch.setenv("ARCHIVIST_" + key, value)
    assert main(["ingest", "docs", "--no-progress"]) == 0


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
    from ui.services.compose import make_generator
    from ui.settings import load_settings

    _ingest_facts(tmp_path, monkeypatch, FINETUNE__HELDOUT="0.3")
    capsys.readouterr()
    assert main(["finetune", "--budget-minutes", "0.5", "--max-steps", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == "v1"
    record = out["record"]
    assert record["data"]["train"] > 0 and record["generator_training"]["steps"] >= 1
    assert "kept" in record["embedder_tuning"]  # four short files: too few queries to adapt it, and it says so
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
    tuned = make_generator(load_settings())  # served on llama.cpp: the version's GGUF export
    assert tuned.path.resolve() == (folder / "generator" / "model.gguf").resolve()
    assert tuned.generate([{"role": "user", "content": "Say hello."}], max_tokens=8).strip()
    capsys.readouterr()
    assert main(["ask", "How many days of paid annual leave does an employee get?", "--json"]) == 0
    ans = json.loads(capsys.readouterr().out)
    assert ans["answer"] and ans["citations"]
    assert main(["models", "list"]) == 0
    assert "* v1" in capsys.readouterr().out
    assert main(["models", "rollback"]) == 0
    assert make_generator(load_settings()).name == "SmolLM2-135M-Instruct"


class _Teacher:
    """A stand-in for a larger model behind an endpoint: answers in the JSON it is asked for."""

    def __init__(self):
        self.calls = 0

    def generate(self, messages, max_tokens=96):
        self.calls += 1
        text = messages[-1]["content"]
        if "mileage" in text:
            return 'Sure! {"question": "What is the mileage rate for a private car?", "answer": "EUR 0.30 per kilometre"}'
        return "I cannot do that."  # not JSON: skipped


def test_training_set_from_rules_teacher_admin_questions_and_feedback(make_index):
    from types import SimpleNamespace

    from qa.training_data import build_training_set, prompt_for
    from retrieval import Chunk, DocumentInfo

    idx = make_index()
    with idx.writer() as w:
        for i, (name, text) in enumerate(FACTS.items()):
            w.add_document(DocumentInfo(doc=name), [Chunk(id=f"c{i}", doc=name, text=text, groups=("everyone",))])
        w.add_document(DocumentInfo(doc="secret.txt"), [Chunk(id="s", doc="secret.txt", groups=("board",),
                       text="The board pays the chief executive 4 million euros per year from 2027 onwards.")])
        w.commit()
    teacher = _Teacher()
    feedback = [SimpleNamespace(rating=1, abstained=False, question="When are salaries paid?",
                                answer="Salaries are paid on the 25th of each month [1].\n\n“...”", chunks=[{"chunk_id": "c3"}]),
                SimpleNamespace(rating=1, abstained=False, question="What does the board pay?", answer="4 million [1].",
                                chunks=[{"chunk_id": "s"}])]
    admin = [{"id": "a1", "question": "How long do passwords last?", "answers": ["90 days"], "answerable": True,
              "evidence": [{"doc": "it.txt", "page": None}]},
             # a written answer, not a span of the document: taught as written, from its document's chunk
             {"id": "a2", "question": "Who pays for my hotel?", "answerable": True,
              "answers": ["The company refunds hotel costs of up to EUR 140 a night."],
              "evidence": [{"doc": "travel.txt", "page": None}]},
             {"id": "a3", "question": "Do we get a car?", "answers": ["Every manager gets a company car."],
              "answerable": True, "evidence": [{"doc": "travel.txt", "page": None}]}]
    from retrieval import SearchFilter

    ts = build_training_set(idx, readers=SearchFilter.for_groups([]), heldout=0.0, admin_questions=admin,
                            feedback=feedback, teacher=teacher, round_trip_k=3, negatives=0.15)
    kinds = {e.kind for e in ts.examples}
    assert {"synthetic", "teacher", "admin", "feedback", "negative"} <= kinds
    assert teacher.calls == len(FACTS)  # one request per readable chunk; the board's chunk is never shown
    assert all(e.doc != "secret.txt" for e in ts.examples)  # nor learned from, even via feedback
    t = next(e for e in ts.examples if e.kind == "teacher")
    assert t.question == "What is the mileage rate for a private car?" and t.answer == "EUR 0.30 per kilometre"
    by_q = {e.question: e for e in ts.examples if e.kind == "admin"}
    assert by_q["How long do passwords last?"].support == "Passwords expire after 90 days and need 12 characters"
    hotel = by_q["Who pays for my hotel?"]
    assert hotel.doc == "travel.txt" and hotel.support.startswith("The company refunds hotel costs")
    assert "Do we get a car?" not in by_q  # the document does not say so: not learned
    messages, target = prompt_for(idx, hotel, readers=SearchFilter.for_groups([]))
    assert target.startswith("The company refunds hotel costs") and "EUR 140 per night" in messages[-1]["content"]
    leave = next(e for e in ts.examples if e.answer == "25 days")
    messages, target = prompt_for(idx, leave, readers=SearchFilter.for_groups([]))
    assert "[1]" in messages[-1]["content"] and leave.question in messages[-1]["content"]
    assert target.startswith("Every employee receives 25 days") and target.endswith("].")
    negatives = [e for e in ts.examples if e.kind == "negative"]
    assert negatives and all(e.decoy and e.decoy != e.question for e in negatives)
    for negative in negatives:  # its question, with passages found for another document's question
        messages, target = prompt_for(idx, negative, readers=SearchFilter.for_groups([]))
        assert target == "I could not find this in the documents." and negative.question in messages[-1]["content"]
        assert f"({negative.doc}" not in messages[-1]["content"]


def test_curated_examples_are_shown_more_often_than_rule_written_ones(make_index):
    from qa import AnswerOptions
    from qa.finetune_job import training_pairs
    from qa.training_data import Example
    from retrieval import Chunk, DocumentInfo

    idx = make_index()
    with idx.writer() as w:
        w.add_document(DocumentInfo(doc="leave.txt"), [Chunk(id="c1", doc="leave.txt", text=FACTS["leave.txt"])])
        w.commit()
    rule = Example("Every employee receives how many days of paid annual leave per year?", "25 days", "c1", "leave.txt")
    admin = Example("How much leave do I get?", "25 days", "c1", "leave.txt", kind="admin")
    pairs = training_pairs(idx, [rule, admin], AnswerOptions(), None, curated_repeat=3)
    assert len(pairs) == 4
    assert sum(1 for messages, _ in pairs if "How much leave do I get?" in messages[-1]["content"]) == 3
    assert all("25 days" in target and target.endswith("[1].") for _, target in pairs)


def _version_with_embedder(models, vid="v1"):
    """A registered version whose embedder is a copy of the shipped MiniLM (links to its files): what a
    kept fine-tuned embedder looks like on disk, without spending minutes training one."""
    import os

    from retrieval.embedder import packaged_minilm_path

    versions = ModelVersions(models)
    made, folder = versions.new_folder()
    assert made == vid
    src = packaged_minilm_path()
    for path in src.rglob("*"):
        if path.is_file():
            target = folder / "embedder" / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, target)
    versions.register(vid, {"embedder_tuning": {"kept": True, "heldout_before": {"mrr@10": 0.5, "hit@1": 0.4, "hit@5": 0.7},
                                                "heldout_after": {"mrr@10": 0.6, "hit@1": 0.5, "hit@5": 0.8}}})
    return versions


@pytest.mark.real
def test_promoting_a_version_with_an_embedder_re_embeds_the_index_and_rolling_back_returns(tmp_path, monkeypatch,
                                                                                          capsys):
    from retrieval import Index, SentenceTransformerEmbedder

    _ingest_facts(tmp_path, monkeypatch, GENERATOR__BACKEND="fake", EMBEDDER__RUNTIME="torch")
    data = tmp_path / "archivist-data"
    _version_with_embedder(data / "models")
    index_dir = data / "index"
    gen = Index(index_dir, SentenceTransformerEmbedder()).generation
    capsys.readouterr()

    assert main(["models", "list"]) == 0
    listed = capsys.readouterr().out
    assert "embedder" in listed and "held-out retrieval MRR 0.500 -> 0.600" in listed
    assert main(["models", "promote", "v1"]) == 0
    served = Index(index_dir, SentenceTransformerEmbedder())  # a server (re)started after the promotion
    assert served.generation == gen + 1 and served.space().name == "finetuned:v1"
    assert served.embedder.path.resolve() == (data / "models" / "v1" / "embedder").resolve()
    assert main(["ask", "How many days of paid annual leave does an employee get?", "--json"]) == 0
    ans = json.loads(capsys.readouterr().out)
    assert not ans["abstained"] and ans["citations"][0]["doc"] == "leave.txt"
    assert main(["stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["embedder"] == "finetuned:v1"

    assert main(["models", "remove", "v1"]) == 2  # its embedder embeds the index: refused, one line
    assert "roll back" in capsys.readouterr().err
    assert main(["models", "rollback"]) == 0
    back = Index(index_dir, SentenceTransformerEmbedder())
    assert back.space().name == "sentence-transformers/all-MiniLM-L6-v2" and back.generation == gen + 2
    assert main(["models", "remove", "v1"]) == 0
