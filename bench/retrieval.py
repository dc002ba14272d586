"""Retrieval benchmark: lexical, dense and hybrid search on the shared eval sets.

    .venv/bin/python bench/retrieval.py                 # all sets, all modes
    .venv/bin/python bench/retrieval.py --sets contoso-hr --modes hybrid

Reports, per set and mode: evidence document / page in the top 5 and MRR (QA sets),
nDCG@10 and recall@10 (SciFact), ingest time and pages per second, and query latency
p50/p95. Indexes are cached under .bench-cache/ (delete it to re-measure ingestion).
Results go to bench/results/retrieval.json and are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import CACHE, EVAL, ROOT, Timer, load_jsonl, percentile  # noqa: E402
from ingest import Chunker, ChunkingOptions, Ingestor, Parser, discover  # noqa: E402
from ingest.blocks import Block, ParsedDocument  # noqa: E402
from retrieval import DocumentInfo, Index, SearchOptions, chunk_index_text, make_embedder  # noqa: E402


def build_qa_index(name: str, embedder, rebuild: bool) -> tuple[Index, dict]:
    path = CACHE / f"{name}-{embedder.name.replace('/', '_')}"
    info_file = path / "bench-ingest.json"
    if rebuild and path.exists():
        shutil.rmtree(path)
    index = Index(path, embedder)
    if not info_file.exists():
        chunker = Chunker(embedder.count_tokens, ChunkingOptions(max_tokens=embedder.max_tokens))
        with Parser() as parser:
            report = Ingestor(index, chunker, parser).ingest(discover([EVAL / name / "docs"]))
        info = {"seconds": report.seconds, "pages": report.pages, "chunks": report.chunks, "files": len(report.results)}
        info_file.write_text(json.dumps(info))
    return index, json.loads(info_file.read_text())


def eval_qa(index: Index, questions: list[dict], mode: str, k: int = 5) -> dict:
    doc_hits = page_hits = page_total = 0
    rr: list[float] = []
    page_rr: list[float] = []
    lat: list[float] = []
    for q in questions:
        t0 = time.perf_counter()
        hits = index.search(q["question"], k, mode=mode)
        lat.append(time.perf_counter() - t0)
        docs = {e["doc"] for e in q["evidence"]}
        pages = {(e["doc"], e["page"]) for e in q["evidence"] if e["page"] is not None}
        got_docs = [h.chunk.doc for h in hits]
        doc_hits += any(d in docs for d in got_docs)
        first = next((i for i, d in enumerate(got_docs) if d in docs), None)
        rr.append(1 / (first + 1) if first is not None else 0.0)
        if pages:
            page_total += 1
            at = next((i for i, h in enumerate(hits) if (h.chunk.doc, h.chunk.page) in pages), None)
            page_hits += at is not None
            page_rr.append(1 / (at + 1) if at is not None else 0.0)
    n = len(questions)
    return {
        "questions": n,
        "evidence_doc@5": round(doc_hits / n, 4),
        "evidence_page@5": round(page_hits / page_total, 4) if page_total else None,
        "mrr_doc@5": round(sum(rr) / n, 4),
        "mrr_page@5": round(sum(page_rr) / page_total, 4) if page_total else None,
        "latency_p50_ms": round(1000 * percentile(lat, 50), 1),
        "latency_p95_ms": round(1000 * percentile(lat, 95), 1),
    }


def build_scifact_index(embedder, rebuild: bool) -> tuple[Index, dict]:
    path = CACHE / f"scifact-{embedder.name.replace('/', '_')}"
    info_file = path / "bench-ingest.json"
    if rebuild and path.exists():
        shutil.rmtree(path)
    index = Index(path, embedder)
    if not info_file.exists():
        chunker = Chunker(embedder.count_tokens, ChunkingOptions(max_tokens=embedder.max_tokens))
        corpus = load_jsonl(EVAL / "scifact" / "corpus.jsonl")
        with Timer() as t:
            docs = []
            for d in corpus:
                parsed = ParsedDocument(blocks=[Block("title", d["title"] or "", None, 0), Block("text", d["text"], None)])
                docs.append((DocumentInfo(doc=d["_id"], format="txt"), chunker.chunk(d["_id"], parsed)))
            texts = [chunk_index_text(c) for _, cs in docs for c in cs]
            vecs = embedder.embed(texts, progress=True)
            with index.writer() as w:
                at = 0
                for info, cs in docs:
                    w.add_document(info, cs, vecs[at : at + len(cs)])
                    at += len(cs)
                w.commit()
        info_file.write_text(json.dumps({"seconds": t.seconds, "chunks": len(texts), "docs": len(docs)}))
    return index, json.loads(info_file.read_text())


def eval_scifact(index: Index, mode: str) -> dict:
    queries = {q["_id"]: q["text"] for q in load_jsonl(EVAL / "scifact" / "queries.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    for line in (EVAL / "scifact" / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, did, score = line.split("\t")
        qrels.setdefault(qid, {})[did] = int(score)
    ndcg: list[float] = []
    recall: list[float] = []
    lat: list[float] = []
    for qid, rel in qrels.items():
        t0 = time.perf_counter()
        hits = index.search(queries[qid], 30, mode=mode)
        lat.append(time.perf_counter() - t0)
        ranked: list[str] = []
        for h in hits:  # documents in order of their best chunk
            if h.chunk.doc not in ranked:
                ranked.append(h.chunk.doc)
        ranked = ranked[:10]
        dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked))
        ideal = sum(r / math.log2(i + 2) for i, r in enumerate(sorted(rel.values(), reverse=True)[:10]))
        ndcg.append(dcg / ideal if ideal else 0.0)
        recall.append(len(set(ranked) & set(rel)) / len(rel))
    return {
        "queries": len(qrels),
        "ndcg@10": round(sum(ndcg) / len(ndcg), 4),
        "recall@10": round(sum(recall) / len(recall), 4),
        "latency_p50_ms": round(1000 * percentile(lat, 50), 1),
        "latency_p95_ms": round(1000 * percentile(lat, 95), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["contoso-hr", "covid-qa", "scifact"])
    ap.add_argument("--modes", nargs="+", default=["lexical", "dense", "hybrid"])
    ap.add_argument("--embedder", default="all-MiniLM-L6-v2")
    ap.add_argument("--fusion", default="relative", choices=["relative", "convex", "rrf"])
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--rebuild", action="store_true", help="re-ingest instead of using the cached index")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "retrieval.json"))
    args = ap.parse_args()
    embedder = make_embedder(args.embedder)
    rows = []
    for name in args.sets:
        if name == "scifact":
            index, info = build_scifact_index(embedder, args.rebuild)
        else:
            index, info = build_qa_index(name, embedder, args.rebuild)
            questions = [q for q in load_jsonl(EVAL / name / "questions.jsonl") if q["answerable"]]
        index.options = SearchOptions(fusion=args.fusion, alpha=args.alpha)
        for mode in args.modes:
            res = eval_scifact(index, mode) if name == "scifact" else eval_qa(index, questions, mode)
            row = {"set": name, "mode": mode, **res, "ingest": info}
            if info.get("pages"):
                row["pages_per_s"] = round(info["pages"] / info["seconds"], 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"embedder": embedder.name, "fusion": args.fusion, "alpha": args.alpha, "rows": rows}, indent=2))
    print("\n| set | mode | doc@5 | page@5 | MRR | nDCG@10 | R@10 | p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['set']} | {r['mode']} | {r.get('evidence_doc@5', '')} | {r.get('evidence_page@5', '')} | "
              f"{r.get('mrr_doc@5', '')} | {r.get('ndcg@10', '')} | {r.get('recall@10', '')} | "
              f"{r['latency_p50_ms']} | {r['latency_p95_ms']} |")


if __name__ == "__main__":
    main()
