"""Fine-tune the generator with LoRA (peft), on the CPU or a GPU, within a time budget.

The examples are (messages, target) pairs in the answerer's own prompt format, so the model
learns exactly the task it is served for: read numbered passages, answer briefly, cite. The
loss is on the answer tokens only. Training stops when the budget is spent (or after
``max_steps``), the adapter is merged into the weights, and the merged model is saved as
a plain transformers folder that :class:`qa.TransformersGenerator` loads.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)


@dataclass
class LoraOptions:
    budget_s: float = 1200.0  # training time; data building and evaluation come on top
    max_steps: int | None = None  # optimizer steps; None: as many as the budget allows
    epochs: float = 3.0  # at most this many passes over the examples
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lr: float = 3e-4
    grad_accum: int = 4
    max_tokens: int = 448  # prompt + answer; longer prompts lose their first passages' heads
    seed: int = 0
    target_modules: tuple = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    #: adapt only the top layers: the backward pass stops there, about twice as fast on a CPU
    top_layers: int | None = 12


def _device():
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_base(generator):
    """A fresh, trainable copy of a TransformersGenerator's model (the served copy stays untouched)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from qa.generators import _load_cached

    generator.load()  # makes the de-quantised cache when the model is a GGUF file
    cached = generator._cached_copy()
    if cached is not None and (cached / "model.safetensors").exists():
        tok, model = _load_cached(cached)
    elif generator.gguf_file:
        tok = AutoTokenizer.from_pretrained(generator.path, gguf_file=generator.gguf_file, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(generator.path, gguf_file=generator.gguf_file,
                                                     local_files_only=True, dtype=torch.float32)
    else:
        tok = AutoTokenizer.from_pretrained(generator.path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(generator.path, local_files_only=True, dtype=torch.float32)
    return tok, model


def encode(tok, messages: list[dict], target: str, max_tokens: int) -> tuple[list[int], list[int]] | None:
    """Token ids and labels (-100 on the prompt) for one example; None when it cannot fit."""
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(prompt, dict) or hasattr(prompt, "input_ids"):
        prompt = prompt["input_ids"]
    answer = tok(target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    if len(answer) >= max_tokens // 2:
        return None
    prompt = prompt[-(max_tokens - len(answer)):]
    return prompt + answer, [-100] * len(prompt) + answer


def train_lora(
    generator,
    examples: list[tuple[list[dict], str]],
    out_dir: Path,
    options: LoraOptions | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> dict:
    """Fine-tune, merge and save to ``out_dir``; returns the training record."""
    import torch
    from peft import LoraConfig, get_peft_model

    opt = options or LoraOptions()
    if not examples:
        raise ValueError("no training examples: the index has no chunks the rules could write questions for")
    rng = random.Random(opt.seed)
    torch.manual_seed(opt.seed)
    device = _device()
    tok, model = load_base(generator)
    model.to(device)
    encoded = [e for e in (encode(tok, m, t, opt.max_tokens) for m, t in examples) if e is not None]
    if not encoded:
        raise ValueError("no training example fits the model's context")
    n_layers = int(getattr(model.config, "num_hidden_layers", 0) or 0)
    layers = list(range(max(0, n_layers - opt.top_layers), n_layers)) if opt.top_layers and n_layers else None
    config = LoraConfig(r=opt.lora_r, lora_alpha=opt.lora_alpha, lora_dropout=opt.lora_dropout,
                        target_modules=list(opt.target_modules), task_type="CAUSAL_LM", layers_to_transform=layers)
    model = get_peft_model(model, config)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=opt.lr, weight_decay=0.0)
    max_examples = int(math.ceil(opt.epochs * len(encoded)))
    start = time.monotonic()
    seen = steps = 0
    losses: list[float] = []
    running = 0.0
    order: list[int] = []
    while seen < max_examples:
        if not order:
            order = list(range(len(encoded)))
            rng.shuffle(order)
        ids, labels = encoded[order.pop()]
        out = model(input_ids=torch.tensor([ids], device=device), labels=torch.tensor([labels], device=device))
        (out.loss / opt.grad_accum).backward()
        running += out.loss.detach().item()
        seen += 1
        if seen % opt.grad_accum == 0:
            spent = (time.monotonic() - start) / max(opt.budget_s, 1e-6)
            for g in optim.param_groups:  # linear decay over the time budget (or the steps)
                frac = steps / opt.max_steps if opt.max_steps else spent
                g["lr"] = opt.lr * max(0.05, 1.0 - frac)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optim.step()
            optim.zero_grad(set_to_none=True)
            steps += 1
            losses.append(running / opt.grad_accum)
            running = 0.0
            if on_progress:
                on_progress({"step": steps, "examples": seen, "loss": losses[-1],
                             "seconds": time.monotonic() - start, "budget_s": opt.budget_s})
            if (opt.max_steps and steps >= opt.max_steps) or time.monotonic() - start >= opt.budget_s:
                break
    if steps == 0:  # fewer examples than one accumulation: still take the step
        optim.step()
        steps = 1
        losses.append(running / max(seen, 1))
    seconds = time.monotonic() - start
    model = model.merge_and_unload()
    model.eval()
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    model.to(torch.float16).save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    record = {
        "device": device, "examples": len(encoded), "examples_seen": seen, "steps": steps, "seconds": round(seconds, 1),
        "loss_first": round(sum(losses[:5]) / max(len(losses[:5]), 1), 4),
        "loss_last": round(sum(losses[-5:]) / max(len(losses[-5:]), 1), 4),
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(opt).items()},
    }
    (tmp / "training.json").write_text(json.dumps(record, indent=2))
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    log.info("fine-tuned %d steps on %d examples in %.0f s (loss %.3f -> %.3f)", steps, len(encoded), seconds,
             record["loss_first"], record["loss_last"])
    return record
