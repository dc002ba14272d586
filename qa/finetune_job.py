"""`archivist finetune`: from the indexed documents to a new, evaluated model version.

1. build training data from the chunks (qa.training_data), with a fixed held-out split;
2. adapt the embedder to the documents (qa.retriever_tuning), optionally with training queries
   a generator writes in its own words (the teacher, else ``writer``: the served model), and
   keep it only if held-out queries find their chunks better; its vectors of the index are kept
   with it;
3. fine-tune the generator with LoRA and merge it (qa.finetune);
4. train a cross-encoder reranker from the MiniLM encoder on the same questions, and keep it
   only if it finds the answering chunk more often on the held-out questions;
5. answer the held-out questions before and after with qa.evaluate (what `archivist eval`
   runs) and write the comparison into the version's record and report.md.

The version is registered, not promoted: an admin promotes it (`archivist models promote`).
"""

from __future__ import annotations

import logging
import random
import shutil
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable

from qa.answerer import Answerer, AnswerOptions
from qa.evaluate import QuestionSet, evaluate, markdown_report, summarize
from qa.finetune import LoraOptions, train_lora
from qa.model_versions import ModelVersion, ModelVersions
from qa.training_data import Example, TrainingSet, build_training_set, prompt_for
from retrieval import Index, SearchFilter
from retrieval.reranker import CrossEncoderReranker, RerankerTrainingOptions, train_cross_encoder

log = logging.getLogger(__name__)


@dataclass
class FinetuneOptions:
    """What `archivist finetune` does; the settings' [finetune] section is this, plus which
    documents it may learn from and an optional teacher."""

    #: training time: the embedder's share first, the rest generator 75 %, reranker 25 %; data, re-embedding
    #: and evaluation come on top
    budget_minutes: float = 20.0
    embedder: bool = True
    #: the embedder pays most: 10 minutes of 20 took covid-qa's MRR from 0.771 to 0.819 (bench/README.md)
    embedder_share: float = 0.5
    #: minutes a generator (the teacher, else the served model) spends writing the embedder queries in its own
    #: words, a third of every batch (qa.retriever_tuning.written_queries), before the embedder's budget. Off:
    #: 3 minutes cut SciFact's loss but also covid-qa's gain (bench/README.md, "Adapting the retriever")
    writing_minutes: float = 0.0
    generator: bool = True
    reranker: bool = True
    heldout: float = 0.2  # share of the chunks whose questions are never trained on
    max_examples: int = 1500
    #: share of the training questions also shown, as negatives, with another document's passages and
    #: "I could not find this" as the target. Off by default: the answerer abstains on its own confidence
    #: rule, and even 3 % taught the 135M model to refuse 7 of 40 answerable contoso-hr questions that
    #: the untuned one answered; 15 % half of them (bench/README.md, fine-tuning)
    negatives: float = 0.0
    #: times each curated example (an admin's question, a helpful-rated answer, a teacher's question) is
    #: shown per pass, against once for a rule-written one: they are few and written the way people ask
    curated_repeat: int = 3
    eval_questions: int = 40  # held-out questions answered before and after
    seed: int = 0
    lora_r: int = 16  # the LoRA rank of the generator's adapter (its alpha: twice the rank)
    learning_rate: float = 3e-4
    max_steps: int = 0  # each model's optimizer steps at most; 0: as many as the budget allows

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """ValueError naming the option and what to use instead."""
        if self.budget_minutes <= 0:
            raise ValueError(f"budget_minutes = {self.budget_minutes}; give the training time in minutes, e.g. 20")
        if not 0.0 < self.embedder_share < 1.0:
            raise ValueError(f"embedder_share = {self.embedder_share}; use a share of the budget between 0 and 1, "
                             "e.g. 0.5 (or turn the embedder off: embedder = false)")
        if not 0.0 <= self.writing_minutes <= 120.0:
            raise ValueError(f"writing_minutes = {self.writing_minutes}; use 0 (no written queries) up to 120, e.g. 3")
        if not (self.embedder or self.generator or self.reranker):
            raise ValueError("embedder, generator and reranker are all off: nothing to fine-tune")
        if not 1 <= self.curated_repeat <= 20:
            raise ValueError(f"curated_repeat = {self.curated_repeat}; use a count from 1 to 20, e.g. 3")
        if not 0.0 <= self.negatives <= 0.5:
            raise ValueError(f"negatives = {self.negatives}; use a share between 0 and 0.5, e.g. 0.03")
        if not 0.0 < self.heldout < 1.0:
            raise ValueError(f"heldout = {self.heldout}; use a share between 0 and 1 (the questions never trained on)")
        if self.lora_r < 1 or self.learning_rate <= 0 or self.max_steps < 0:
            raise ValueError(f"lora_r = {self.lora_r}, learning_rate = {self.learning_rate}, max_steps = "
                             f"{self.max_steps}: use a rank of 1 or more, a rate above 0, and 0 or more steps")

    def budgets(self) -> dict[str, float]:
        """Seconds of training for each part that is on."""
        total = self.budget_minutes * 60
        embedder = total * self.embedder_share if self.embedder and (self.generator or self.reranker) else total
        rest = total - embedder if self.embedder else total
        generator = rest * (0.75 if self.reranker else 1.0) if self.generator else 0.0
        return {"embedder": embedder if self.embedder else 0.0, "generator": generator,
                "reranker": rest - generator if self.reranker else 0.0}

    def lora(self, budget_s: float) -> LoraOptions:
        return LoraOptions(lora_r=self.lora_r, lora_alpha=2 * self.lora_r, lr=self.learning_rate,
                           max_steps=self.max_steps or None, budget_s=budget_s, seed=self.seed)


def _stage(on_stage, name: str, **info) -> None:
    log.info("%s %s", name, info or "")
    if on_stage:
        on_stage(name, info)


CURATED = ("admin", "feedback", "teacher")


def training_pairs(index: Index, examples: list[Example], answer_options: AnswerOptions, readers,
                   curated_repeat: int = 1, rng: random.Random | None = None) -> list[tuple[list[dict], str]]:
    """(messages, target) for each example, in the answerer's prompt format; curated examples repeated."""
    rng = rng or random.Random(0)
    pairs = []
    for e in examples:
        pair = prompt_for(index, e, k=answer_options.k, evidence=answer_options.evidence, readers=readers, rng=rng)
        if pair is not None:
            pairs += [pair] * (max(1, curated_repeat) if e.kind in CURATED else 1)
    return pairs


def _chunk_hit(index: Index, examples: list[Example], k: int, rerank: bool, readers) -> float:
    if not examples:
        return 0.0
    hits = 0
    for e in examples:
        found = index.search(e.question, k, filter=readers, rerank=rerank)
        hits += any(h.chunk.id == e.chunk_id for h in found)
    return hits / len(examples)


def reranker_groups(index: Index, examples: list[Example], readers, negatives_from: int = 10):
    """(question, answering chunk's text, confusable chunks' texts) for the reranker."""
    from retrieval.index import chunk_index_text

    groups = []
    for e in examples:
        if e.kind == "negative" or not e.chunk_id:
            continue
        own = index.get_chunk(e.chunk_id)
        if own is None:
            continue
        found = index.search(e.question, negatives_from, filter=readers, rerank=False)
        negs = [chunk_index_text(h.chunk) for h in found
                if h.chunk.id != e.chunk_id and e.answer.lower() not in h.chunk.text.lower()]
        groups.append((e.question, chunk_index_text(own), negs))
    return groups


def run_finetune(
    index: Index,
    generator,
    versions: ModelVersions,
    *,
    answer_options: AnswerOptions | None = None,
    options: FinetuneOptions | None = None,
    readers: SearchFilter | None = None,
    admin_questions=(),
    feedback=(),
    teacher=None,
    writer=None,
    encoder_path=None,
    on_stage: Callable[[str, dict], None] | None = None,
) -> ModelVersion:
    from qa.generators import TransformersGenerator

    opt = options or FinetuneOptions()
    answer_options = answer_options or AnswerOptions()
    if not isinstance(generator, TransformersGenerator) and opt.generator:
        raise ValueError("fine-tuning needs the transformers backend (a local model); "
                         "set generator.backend = 'transformers' or run with --no-generator")
    started = time.monotonic()
    _stage(on_stage, "data")
    ts: TrainingSet = build_training_set(index, readers=readers, heldout=opt.heldout, max_examples=opt.max_examples,
                                         negatives=opt.negatives,
                                         admin_questions=admin_questions, feedback=feedback, teacher=teacher,
                                         seed=opt.seed)
    train, heldout = ts.split("train"), [e for e in ts.split("heldout") if e.kind != "negative"]
    if not train:
        raise ValueError("no training data could be built from the index: ingest documents with sentences "
                         "that state facts (amounts, dates, names), or give --questions FILE")
    vid, folder = versions.new_folder()
    try:
        ts.save(folder / "data.jsonl")
        _stage(on_stage, "data-done", **ts.counts)
        base_gguf = getattr(generator, "gguf_file", None) and str(generator.path / generator.gguf_file)
        record: dict = {"version": vid, "data": ts.counts, "base_generator": getattr(generator, "name", "?"),
                        "base_gguf": base_gguf,
                        "options": {k: v for k, v in asdict(opt).items() if k not in ("lora", "rerank")},
                        "embedder": index.built_with}
        budgets = opt.budgets()
        gen_budget, rerank_budget = budgets["generator"], budgets["reranker"]
        searched = index  # the index the "after" answers search: in the tuned embedder's space when it is kept
        if opt.embedder:
            from qa.retriever_tuning import tune_embedder

            tuned_retriever = tune_embedder(index, folder, readers=readers, budget_s=budgets["embedder"],
                                            heldout=opt.heldout, seed=opt.seed, max_steps=opt.max_steps or None,
                                            writer=teacher or writer, writing_s=opt.writing_minutes * 60,
                                            on_stage=on_stage)
            record["embedder_tuning"] = tuned_retriever.record
            if tuned_retriever.view is not None:
                searched = tuned_retriever.view
        tuned = None
        if opt.generator:
            rng = random.Random(opt.seed)
            pairs = training_pairs(index, train, answer_options, readers, opt.curated_repeat, rng)
            _stage(on_stage, "generator", examples=len(pairs), budget_s=gen_budget)
            lora = opt.lora(gen_budget)
            record["generator_training"] = train_lora(
                generator, pairs, folder / "generator", lora,
                on_progress=lambda p: _stage(on_stage, "generator-step", **p))
            tuned = TransformersGenerator(str(folder / "generator"))
        if opt.reranker:
            from retrieval.embedder import packaged_minilm_path

            groups = reranker_groups(index, train, readers)
            _stage(on_stage, "reranker", groups=len(groups), budget_s=rerank_budget)
            record["reranker_training"] = train_cross_encoder(
                encoder_path or packaged_minilm_path(), groups, folder / "reranker",
                RerankerTrainingOptions(budget_s=rerank_budget),
                on_progress=lambda p: _stage(on_stage, "reranker-step", **p))
        # -- before and after, on the held-out questions ------------------------------------
        rng = random.Random(opt.seed)
        sample = rng.sample(heldout, min(opt.eval_questions, len(heldout)))
        record["heldout_questions"] = len(sample)
        plain = index.with_reranker(None)  # the shared index keeps its own reranker
        reranker = CrossEncoderReranker(folder / "reranker") if opt.reranker else None
        chunk_before = _chunk_hit(plain, sample, 5, False, readers)
        if reranker is not None:
            chunk_after = _chunk_hit(index.with_reranker(reranker), sample, 5, True, readers)
            keep = chunk_after > chunk_before
            record["reranker"] = {"chunk_hit@5_before": round(chunk_before, 4), "chunk_hit@5_after": round(chunk_after, 4),
                                  "kept": keep}
            if not keep:
                shutil.rmtree(folder / "reranker", ignore_errors=True)
                reranker = None
        qset = QuestionSet("heldout", folder, [e.to_question() for e in sample])
        phrased = replace(answer_options, phrasing="model")  # the generator writes the short answers compared
        summaries, rows = {}, {}
        variants = {"before": (None, generator)}
        if tuned is not None or reranker is not None or searched is not index:
            variants["after"] = (reranker, tuned or generator)
        for label, (rr, gen) in variants.items():
            _stage(on_stage, "evaluate", variant=label, questions=len(sample))
            space = searched if label == "after" else index
            rows[label] = evaluate(Answerer(space.with_reranker(rr), gen, phrased), qset, k=answer_options.k,
                                   filter=readers)
            summaries[label] = summarize(rows[label])
        record["eval"] = summaries
        record["seconds"] = round(time.monotonic() - started, 1)
        (folder / "report.md").write_text(markdown_report(f"held-out questions of {vid}", summaries, rows))
        version = versions.register(vid, record)
        _stage(on_stage, "done", version=vid, seconds=record["seconds"])
        return version
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # no half-made version is left behind
        raise
