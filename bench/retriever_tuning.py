"""The embedder adapted to a set's documents (what `archivist finetune` does first), measured on the
set's own questions, which it never sees.

    .venv/bin/python bench/retriever_tuning.py [--sets covid-qa scifact contoso-hr] [--seeds 0 1 2]
        [--budget-minutes 10] [--writing-minutes 3] [--answers] [--label " variant"] [--remeasure]

Per set and seed: qa.retriever_tuning.tune_embedder on the set's product index (the index
bench/answers.py builds; SciFact's is bench/retrieval.py's), with the default budget share of
`archivist finetune` (10 of its 20 minutes), then the set's questions searched the way users
search (hybrid, top 5: evidence document found, MRR; SciFact: nDCG@10, recall@10) in the old
space and in the new one, and the held-out synthetic queries' keep test. With ``--answers``
the kept model is promoted on a copy of the index (re-embedded with the vectors fine-tuning
computed, the threshold calibrated again on the copy's own chunks) and bench/answers.py's
questions are answered before and after. With ``--writing-minutes`` the bundled generator first
writes training queries in its own words for that long (finetune.writing_minutes). Writes
bench/results/retriever_tuning.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.answers import _no_model, pick_questions, product_index, set_dir  # noqa: E402
from bench.common import CACHE, ROOT, answer_all  # noqa: E402
from bench.retrieval import build_scifact_index, eval_qa, eval_scifact  # noqa: E402

SUMMARY_KEYS = ("evidence_doc@5", "mrr_doc@5", "evidence_page@5", "mrr_page@5", "ndcg@10", "recall@10", "queries",
                "questions")
ANSWER_KEYS = ("citation_precision", "short_containment", "containment", "abstain_answerable", "abstain_unanswerable",
               "first_citation_page", "latency_p50_s")


def searched(index, name: str, questions: list[dict]) -> dict:
    """The set's real questions searched in ``index``'s space (hybrid, as users search)."""
    if name == "scifact":
        got = eval_scifact(index, "hybrid")
    else:
        got = eval_qa(index, [q for q in questions if q["answerable"]], "hybrid")
    return {k: got[k] for k in SUMMARY_KEYS if k in got}


def answered(index, settings, questions: list[dict], label: str) -> dict:
    from qa import Answerer
    from qa.evaluate import summarize
    from ui.services.compose import answer_options

    opts = replace(answer_options(settings), phrasing="extract")
    rows = answer_all(label, Answerer(index, _no_model(), opts).ask, questions)
    summary = summarize(rows)
    return {k: summary.get(k) for k in ANSWER_KEYS}


def promoted_copy(index, settings, name: str, folder: Path, space: str):
    """The set's index copied and re-embedded in the tuned space, calibrated again: what promoting
    the version does (ui.services.compose.use_embedder_of), on a copy."""
    from qa.retriever_tuning import known_vectors
    from retrieval.spaces import tuned_embedder
    from ui.services.compose import calibrate, open_index

    copy = CACHE / f"promoted-{name}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(index.path, copy, ignore=shutil.ignore_patterns("write.lock"))
    csettings = replace(settings, index=str(copy), data_dir=copy.parent)
    cindex = open_index(csettings)
    with cindex.writer() as w:
        w.reembed(tuned_embedder(folder, space), known=known_vectors(folder))
    calibrate(csettings, cindex)
    return cindex, csettings


def remeasured(entry: dict, index, name: str, questions: list[dict], embedder_folder: Path) -> dict:
    """``entry`` with the real questions searched again, before and in the space of the model it saved."""
    from qa.retriever_tuning import VECTORS_FILE, known_vectors
    from retrieval.spaces import tuned_embedder

    if not (embedder_folder / VECTORS_FILE).exists():
        raise SystemExit(f"{embedder_folder}: no saved model and vectors to measure again: run without --remeasure")
    tuned = tuned_embedder(embedder_folder, f"finetuned:{embedder_folder.parent.parent.name}")
    vectors = index.embed_live(tuned, known=known_vectors(embedder_folder))
    return {**entry, "real_before": searched(index, name, questions),
            "real_after": searched(index.in_space(tuned, vectors), name, questions)}


def main() -> None:
    from qa.evaluate import load_question_set
    from qa.retriever_tuning import tune_embedder
    from retrieval import make_embedder
    from ui.settings import load_settings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["covid-qa", "scifact", "contoso-hr"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--budget-minutes", type=float, default=10.0, help="the embedder's training time "
                    "(archivist finetune's default: half of its 20 minutes)")
    ap.add_argument("--answers", action="store_true", help="also answer bench/answers.py's questions, before and "
                    "after promoting the kept model on a copy of the index")
    ap.add_argument("--label", default="", help="added to each result's key (a variant measured beside the default)")
    ap.add_argument("--writing-minutes", type=float, default=0.0, help="the bundled generator first writes "
                    "training questions in its own words for this long (qa.retriever_tuning.written_queries)")
    ap.add_argument("--remeasure", action="store_true", help="no training: search the set's questions again with "
                    "the models an earlier run saved (new metrics on the same models), keeping the rest of its entry")
    args = ap.parse_args()
    base = load_settings(None, env={})
    writer = None
    if args.writing_minutes:
        from qa.generators import LlamaCppGenerator

        writer = LlamaCppGenerator(weights="f16", cache_dir=CACHE / "models")
    out = ROOT / "bench" / "results" / "retriever_tuning.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    for name in args.sets:
        if name == "scifact":
            index, _ = build_scifact_index(make_embedder("all-MiniLM-L6-v2"), False)
            questions, settings = [], None
        else:
            index, settings = product_index(name, base)
            questions = load_question_set(set_dir(name)).questions
        for seed in args.seeds:
            key = f"{name} seed {seed}{args.label}"
            folder = CACHE / f"tune-{name}-s{seed}{args.label.strip().replace(' ', '-')}" / "v1"
            if args.remeasure:
                if key not in results:
                    raise SystemExit(f"{out} has no '{key}' to measure again: run without --remeasure first")
                results[key] = remeasured(results[key], index, name, questions, folder / "embedder")
                print(json.dumps({key: {k: results[key][k] for k in ("real_before", "real_after")}}), flush=True)
                out.write_text(json.dumps(results, indent=2))
                continue
            shutil.rmtree(folder.parent, ignore_errors=True)
            folder.mkdir(parents=True)
            t0 = time.perf_counter()
            tuned = tune_embedder(index, folder, budget_s=args.budget_minutes * 60, seed=seed, discard_rejected=False,
                                  writer=writer, writing_s=args.writing_minutes * 60,
                                  on_stage=lambda stage, info: None if stage.endswith("-step") else
                                  print(f"{key}: {stage} {info}", file=sys.stderr, flush=True))
            seconds = time.perf_counter() - t0
            record = tuned.record
            entry = {"kept": record["kept"], "seconds": round(seconds, 1), "data": record["data"],
                     "training": {k: record.get("training", {}).get(k) for k in ("steps", "seconds", "loss_first",
                                                                                  "loss_last")},
                     "heldout_before": record.get("heldout_before"), "heldout_after": record.get("heldout_after"),
                     "real_before": searched(index, name, questions)}
            entry["real_after"] = searched(tuned.view, name, questions)  # kept or not: the keep test is judged too
            if record["kept"]:
                if args.answers and settings is not None:
                    picked = pick_questions(questions, 300, 0)
                    entry["answers_before"] = answered(index, settings, picked, f"{key} before")
                    cindex, csettings = promoted_copy(index, settings, name, folder / "embedder", record["space"])
                    entry["answers_after"] = answered(cindex, csettings, picked, f"{key} after")
            results[key] = entry
            print(json.dumps({key: {k: v for k, v in entry.items() if k not in ("data", "training")}}), flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
