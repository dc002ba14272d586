"""What the answerer reads: candidates reordered by their best sentence, and the abstention rule.

    .venv/bin/python bench/evidence.py [--sets covid-qa contoso-hr] [--answerable 400] [--seed 1]

For a seeded sample of answerable questions (seed 1 by default: not the answers benchmark's
sample) and every unanswerable question of each set, without the generator:

* the answering document ranked 1st / in the top 3, by plain search and after
  ``qa.evidence.rescore`` (what ``qa.evidence.retrieve`` returns);
* the passage the answerer quotes ("best-match") taken from an evidence document;
* abstention on answerable / unanswerable questions by the old rule (similarity + 0.25 x
  coverage < 0.66) and the current one (+ sentence match < ``AnswerOptions.min_confidence``),
  and the share of quoted passages from an evidence document among the questions answered.

Writes bench/results/evidence.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import EVAL, ROOT, load_jsonl  # noqa: E402
from bench.retrieval import build_qa_index  # noqa: E402
from qa.answerer import AnswerOptions, confidence  # noqa: E402
from qa.evidence import EvidenceOptions, overlap, rescore, select_evidence  # noqa: E402
from qa.text import content_terms  # noqa: E402
from retrieval import make_embedder  # noqa: E402


def _overlap(question: str, text: str) -> float:
    return overlap(set(content_terms(question)), text)


def _mean(xs) -> float | None:
    xs = list(xs)
    return round(sum(xs) / len(xs), 3) if xs else None


def measure(index, questions: list[dict], opt: AnswerOptions) -> dict:
    ev: EvidenceOptions = opt.evidence
    rows = []
    for q in questions:
        text = q["question"]
        gold = {e["doc"] for e in q["evidence"]}
        qv = index.embedder.embed_query(text)
        found = index.search(text, max(opt.k, ev.rescore_candidates), query_vector=qv)
        row = {"answerable": q["answerable"]}
        for label, hits in (("plain", found[: opt.k]), ("rescored", rescore(text, found, index.embedder, qv,
                                                                               ev.rescore_sentences)[: opt.k])):
            passages = select_evidence(text, hits, ev)
            best = max(passages, key=lambda p: (_overlap(text, p.best_sentence), -p.n))
            c = confidence(text, hits, opt)
            row[label] = {"first": hits[0].chunk.doc in gold, "top3": any(h.chunk.doc in gold for h in hits[:3]),
                          "quoted": best.chunk.doc in gold, "old_conf": c.value - opt.match_weight * c.match,
                          "conf": c.value}
        rows.append(row)
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    out: dict = {"answerable": len(ans), "unanswerable": len(una)}
    for label in ("plain", "rescored"):
        out[label] = {"first": _mean(r[label]["first"] for r in ans), "top3": _mean(r[label]["top3"] for r in ans),
                      "quoted_from_evidence": _mean(r[label]["quoted"] for r in ans)}
    for rule, label, key, thr in (("old rule", "plain", "old_conf", 0.66),
                                  ("current rule", "rescored", "conf", opt.min_confidence)):
        answered = [r for r in ans if r[label][key] >= thr]
        out[rule] = {"abstain_answerable": _mean(r[label][key] < thr for r in ans),
                     "abstain_unanswerable": _mean(r[label][key] < thr for r in una),
                     "quoted_from_evidence_answered": _mean(r[label]["quoted"] for r in answered)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["covid-qa", "contoso-hr"])
    ap.add_argument("--answerable", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    embedder = make_embedder("all-MiniLM-L6-v2")
    results = {}
    for name in args.sets:
        index, _ = build_qa_index(name, embedder, False)
        questions = load_jsonl(EVAL / name / "questions.jsonl")
        ans = [q for q in questions if q["answerable"]]
        random.Random(args.seed).shuffle(ans)
        picked = ans[: args.answerable] + [q for q in questions if not q["answerable"]]
        results[name] = measure(index, picked, AnswerOptions())
        print(f"{name}: {json.dumps(results[name])}", file=sys.stderr)
    out = ROOT / "bench" / "results" / "evidence.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print("| set | questions | 1st plain | 1st rescored | top 3 plain | top 3 rescored | quoted from evidence plain | "
          "rescored | old rule: abstain ans / unans, quoted ok | current rule |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        o, c = r["old rule"], r["current rule"]
        print(f"| {name} | {r['answerable']} + {r['unanswerable']} | {r['plain']['first']} | {r['rescored']['first']} | "
              f"{r['plain']['top3']} | {r['rescored']['top3']} | {r['plain']['quoted_from_evidence']} | "
              f"{r['rescored']['quoted_from_evidence']} | {o['abstain_answerable']} / {o['abstain_unanswerable']}, "
              f"{o['quoted_from_evidence_answered']} | {c['abstain_answerable']} / {c['abstain_unanswerable']}, "
              f"{c['quoted_from_evidence_answered']} |")


if __name__ == "__main__":
    main()
