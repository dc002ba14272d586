"""Cross-encoder reranking: read the question and each candidate chunk together, reorder.

No pretrained reranker ships offline, so the cross-encoder is trained here, on the company's
own documents (``archivist finetune``), starting from the shipped MiniLM encoder: groups of
one question, the chunk it was written from, and the chunks retrieval confused it with.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

from retrieval.chunk import Hit

log = logging.getLogger(__name__)


class CrossEncoderReranker:
    """Scores (query, passage) pairs with a sequence-classification model from a local folder."""

    def __init__(self, path: str | Path, *, candidates: int = 20, max_tokens: int = 256, batch_size: int = 16):
        self.path = Path(path)
        self.candidates = candidates
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.name = f"cross-encoder:{self.path.parent.name or self.path.name}"
        self._model = None
        self._lock = threading.Lock()

    def load(self):
        with self._lock:
            if self._model is None:
                from transformers import AutoModelForSequenceClassification, AutoTokenizer

                tok = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
                model = AutoModelForSequenceClassification.from_pretrained(self.path, local_files_only=True)
                model.eval()
                self._model = (tok, model)
            return self._model

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        import torch

        tok, model = self.load()
        out: list[float] = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                part = list(texts[i : i + self.batch_size])
                enc = tok([query] * len(part), part, truncation="only_second", max_length=self.max_tokens,
                          padding=True, return_tensors="pt")
                out += model(**enc).logits.view(-1).tolist()
        return out

    def rerank(self, query: str, hits: list[Hit], texts: Sequence[str]) -> list[Hit]:
        """The hits reordered by the cross-encoder (score = its sigmoid), ranks renumbered."""
        if not hits:
            return hits
        s = self.scores(query, texts)
        order = sorted(range(len(hits)), key=lambda i: -s[i])
        out = []
        for rank, i in enumerate(order, start=1):
            h = hits[i]
            out.append(Hit(h.chunk, 1.0 / (1.0 + math.exp(-s[i])), rank, dense=h.dense, lexical=h.lexical))
        return out


@dataclass
class RerankerTrainingOptions:
    budget_s: float = 300.0
    epochs: float = 2.0
    lr: float = 3e-5
    negatives: int = 3
    max_tokens: int = 256
    seed: int = 0


def train_cross_encoder(
    base: str | Path,
    groups: list[tuple[str, str, list[str]]],
    out_dir: str | Path,
    options: RerankerTrainingOptions | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> dict:
    """Train from ``base`` (an encoder folder) on (query, positive text, negative texts) groups
    with a listwise loss (the positive must outscore its negatives); saves to ``out_dir``."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    opt = options or RerankerTrainingOptions()
    groups = [g for g in groups if g[2]]
    if not groups:
        raise ValueError("no training groups for the reranker (questions with negatives)")
    rng = random.Random(opt.seed)
    torch.manual_seed(opt.seed)
    hf_logging.set_verbosity_error()  # "some weights are newly initialized": the head, as intended
    tok = AutoTokenizer.from_pretrained(base, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, local_files_only=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).train()
    optim = torch.optim.AdamW(model.parameters(), lr=opt.lr, weight_decay=0.01)
    total = int(math.ceil(opt.epochs * len(groups)))
    start = time.monotonic()
    seen = 0
    losses: list[float] = []
    order: list[int] = []
    while seen < total and time.monotonic() - start < opt.budget_s:
        if not order:
            order = list(range(len(groups)))
            rng.shuffle(order)
        q, pos, negs = groups[order.pop()]
        texts = [pos] + rng.sample(negs, min(opt.negatives, len(negs)))
        enc = tok([q] * len(texts), texts, truncation="only_second", max_length=opt.max_tokens, padding=True,
                  return_tensors="pt").to(device)
        logits = model(**enc).logits.view(1, -1)
        loss = torch.nn.functional.cross_entropy(logits, torch.zeros(1, dtype=torch.long, device=device))
        loss.backward()
        for g in optim.param_groups:
            g["lr"] = opt.lr * max(0.05, 1.0 - seen / total)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        optim.zero_grad(set_to_none=True)
        seen += 1
        losses.append(loss.detach().item())
        if on_progress and seen % 10 == 0:
            on_progress({"groups": seen, "loss": sum(losses[-10:]) / 10, "seconds": time.monotonic() - start})
    model.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    record = {"groups": len(groups), "groups_seen": seen, "seconds": round(time.monotonic() - start, 1),
              "loss_first": round(sum(losses[:20]) / max(len(losses[:20]), 1), 4),
              "loss_last": round(sum(losses[-20:]) / max(len(losses[-20:]), 1), 4), "options": asdict(opt)}
    (out_dir / "training.json").write_text(json.dumps(record, indent=2))
    return record
