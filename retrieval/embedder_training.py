"""Adapt the sentence embedder to a corpus: contrastive training on (query, passage, hard negative).

The loss is sentence-transformers' MultipleNegativesRankingLoss written out: each query must
score its own passage above every other passage of the batch, its hard negative included
(scaled cosines, cross-entropy). Training stops when the time budget is spent. The weights kept
are the average of the trained and the starting ones (weight-space ensembling, WiSE-FT: Wortsman
et al., 2022): queries written from the chunks are near-copies of their sentences, and a model
trained on them alone forgets what it knew of paraphrase (SciFact's claims: nDCG@10 0.737 ->
0.690 fully tuned; covid-qa's questions gained either way; bench/README.md, "Adapting the
retriever"). The model is saved in sentence-transformers' layout (a folder :class:`retrieval.SentenceTransformerEmbedder`
loads), written beside and renamed into place so a half-written model is never left.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)


@dataclass
class EmbedderTrainingOptions:
    budget_s: float = 600.0
    batch_size: int = 16  # queries per step; each brings its passage and its hard negative
    lr: float = 2e-5
    scale: float = 20.0  # cosines times this before the softmax (sentence-transformers' default)
    epochs: float = 1.0  # at most this many passes over the triples
    max_tokens: int = 256
    seed: int = 0
    max_steps: int | None = None
    #: the trained weights' share of the kept model, the rest the starting model's (1: the trained model alone)
    mix: float = 0.5
    #: the share of each batch drawn from the paraphrases, when there are any (queries in other words
    #: than their passage's, e.g. written by a generator): they are few, and the point of having them
    paraphrase_share: float = 1 / 3

    def __post_init__(self) -> None:
        if not 0.0 < self.mix <= 1.0:
            raise ValueError(f"embedder training: mix = {self.mix}; use the trained weights' share, above 0 and "
                             "at most 1, e.g. 0.5")
        if not 0.0 < self.paraphrase_share < 1.0:
            raise ValueError(f"embedder training: paraphrase_share = {self.paraphrase_share}; use a share of each "
                             "batch above 0 and below 1, e.g. 0.33")
        if self.budget_s <= 0 or self.batch_size < 2 or self.lr <= 0 or self.epochs <= 0:
            raise ValueError(f"embedder training: budget_s = {self.budget_s}, batch_size = {self.batch_size}, "
                             f"lr = {self.lr}, epochs = {self.epochs}; use a budget and a rate above 0, a batch "
                             "of 2 or more and at least part of a pass")


def train_embedder(
    base: str | Path,
    triples: list[tuple[str, str, str]],
    out_dir: str | Path,
    options: EmbedderTrainingOptions | None = None,
    on_progress: Callable[[dict], None] | None = None,
    paraphrases: list[tuple[str, str, str]] = (),
) -> dict:
    """Train from the sentence-transformers folder ``base`` on (query, positive, negative) texts;
    saves to ``out_dir`` and returns the training record. ``paraphrases`` (triples of the same
    form) fill ``options.paraphrase_share`` of every batch, drawn again in a new order when used up."""
    import torch
    from sentence_transformers import SentenceTransformer

    opt = options or EmbedderTrainingOptions()
    if len(triples) < opt.batch_size:
        raise ValueError(f"{len(triples)} training queries for the embedder; it needs at least {opt.batch_size} "
                         "(ingest more documents, or leave the embedder out: --no-embedder)")
    rng = random.Random(opt.seed)
    torch.manual_seed(opt.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = SentenceTransformer(str(base), device=device)
    model.max_seq_length = opt.max_tokens
    prepare = getattr(model, "preprocess", None) or model.tokenize

    def encode(texts: list[str]):
        features = {k: v.to(device) if hasattr(v, "to") else v for k, v in prepare(texts).items()}
        return torch.nn.functional.normalize(model(features)["sentence_embedding"], dim=-1)

    order = list(range(len(triples)))
    rng.shuffle(order)
    mixed = _Mixed(paraphrases, opt.paraphrase_share, opt.batch_size, rng)
    plain = opt.batch_size - mixed.per_batch
    steps_per_pass = max(1, len(order) // plain)
    total_steps = max(1, int(opt.epochs * steps_per_pass))
    if opt.max_steps:
        total_steps = min(total_steps, opt.max_steps)
    optim = torch.optim.AdamW(model.parameters(), lr=opt.lr)
    model.train()
    start = time.monotonic()
    losses: list[float] = []
    step = 0
    while step < total_steps and time.monotonic() - start < opt.budget_s:
        at = (step % steps_per_pass) * plain
        batch = [triples[i] for i in order[at : at + plain]] + mixed.take()
        queries = encode([q for q, _, _ in batch])
        passages = encode([p for _, p, _ in batch] + [n for _, _, n in batch])
        scores = opt.scale * queries @ passages.T
        loss = torch.nn.functional.cross_entropy(scores, torch.arange(len(batch), device=device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        optim.zero_grad(set_to_none=True)
        step += 1
        losses.append(float(loss.detach()))
        if on_progress:
            on_progress({"step": step, "steps": total_steps, "loss": losses[-1],
                         "seconds": round(time.monotonic() - start, 1), "budget_s": opt.budget_s})
    seconds = time.monotonic() - start
    model.eval()
    if opt.mix < 1.0:
        _mix_with(model, base, opt.mix)
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp))
    record = {
        "device": device, "triples": len(triples), "paraphrases": len(paraphrases), "mix": opt.mix, "steps": step,
        "queries_seen": step * opt.batch_size,
        "seconds": round(seconds, 1),
        "loss_first": round(sum(losses[:5]) / max(len(losses[:5]), 1), 4),
        "loss_last": round(sum(losses[-5:]) / max(len(losses[-5:]), 1), 4),
        "options": asdict(opt), "base": str(base),
    }
    (tmp / "training.json").write_text(json.dumps(record, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    log.info("embedder: %d steps on %d triples in %.0f s (loss %.3f -> %.3f)", step, len(triples), seconds,
             record["loss_first"], record["loss_last"])
    return record


class _Mixed:
    """The paraphrases' part of each batch: ``share`` of it (none when there are fewer paraphrases
    than that part holds), cycling through them in a new order each time round."""

    def __init__(self, paraphrases, share: float, batch_size: int, rng: random.Random):
        part = round(share * batch_size)
        self.items = list(paraphrases)
        self.per_batch = part if 0 < part < batch_size and len(self.items) >= part else 0
        self.rng = rng
        self.queue: list[int] = []

    def take(self) -> list[tuple[str, str, str]]:
        out = []
        while len(out) < self.per_batch:
            if not self.queue:
                self.queue = list(range(len(self.items)))
                self.rng.shuffle(self.queue)
            out.append(self.items[self.queue.pop()])
        return out


def _mix_with(model, base: str | Path, mix: float) -> None:
    """``model``'s weights become ``mix`` of its own plus ``1 - mix`` of the starting model's."""
    import torch
    from sentence_transformers import SentenceTransformer

    start = SentenceTransformer(str(base), device="cpu").state_dict()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name in start and tensor.is_floating_point():
                tensor.copy_(mix * tensor + (1.0 - mix) * start[name].to(tensor.device, tensor.dtype))
