"""QA: question in, grounded answer out (evidence, prompt, generators, checks, evaluation)."""

from qa.answer import ABSTAIN_TEXT, Answer, Passage
from qa.answerer import Answerer, AnswerOptions
from qa.evidence import EvidenceOptions, select_evidence
from qa.generators import (
    DEFAULT_GENERATOR,
    FakeGenerator,
    Generator,
    GeneratorError,
    LlamaCppGenerator,
    OpenAIGenerator,
    TransformersGenerator,
)

__all__ = [
    "ABSTAIN_TEXT",
    "Answer",
    "AnswerOptions",
    "Answerer",
    "DEFAULT_GENERATOR",
    "EvidenceOptions",
    "FakeGenerator",
    "Generator",
    "GeneratorError",
    "LlamaCppGenerator",
    "OpenAIGenerator",
    "Passage",
    "TransformersGenerator",
    "select_evidence",
]
