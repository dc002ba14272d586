"""Scale: indexes of 100k and 1M chunks on this machine (commits, search latency, ANN recall,
memory, disk).

    .venv/bin/python bench/scale.py --sizes 100000 1000000

Text: SciFact's 5,183 abstracts cut into chunks of three sentences (about 25k real chunks).
A synthetic chunk joins the first half of one real chunk to the second half of another and
swaps three of its words for random corpus words. Vectors: the bundled MiniLM embeds a
sample of the real chunks; a synthetic chunk's vector is the normalised sum of its two
parents' vectors (weights 1 and 0.6) plus noise of norm 0.5, so the index is not a few
thousand tight clusters of near-copies. Queries: 100 SciFact claims, embedded by MiniLM.

Per size: build (commits of 50k chunks, 10 chunks per document, then ``optimize``), the
commit of 100 added documents and of 100 removed ones (median of 3), dense / lexical /
hybrid search p50 and p95 one query at a time (given the query vector; hybrid also with
the query embedded), ANN recall@10 of dense search against exact search over every live
vector, the serving process's peak RSS (a fresh process that opens the index with the real
embedder and runs the queries), and the index's size on disk. Results:
bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import EVAL, ROOT, load_jsonl, percentile  # noqa: E402

CHUNKS_PER_DOC = 10
COMMIT_CHUNKS = 50_000
SAMPLE = 3000  # real chunks embedded by MiniLM


def real_chunks() -> list[str]:
    out = []
    for doc in load_jsonl(EVAL / "scifact" / "corpus.jsonl"):
        sentences = re.split(r"(?<=[.!?])\s+", doc["text"])
        for at in range(0, len(sentences), 3):
            text = " ".join(sentences[at:at + 3]).strip()
            if len(text.split()) >= 12:
                out.append(text)
    return out


class Corpus:
    """Chunk texts and vectors for any count, deterministic by seed."""

    def __init__(self, embedder, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        texts = real_chunks()
        pick = np.sort(self.rng.choice(len(texts), size=min(SAMPLE, len(texts)), replace=False))
        self.texts = [texts[i] for i in pick]
        t0 = time.perf_counter()
        self.vectors = np.asarray(embedder.embed(self.texts), dtype=np.float32)
        print(f"embedded {len(self.texts)} real chunks in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        self.words = sorted({w for t in self.texts for w in t.split()})

    def batch(self, n: int) -> tuple[list[str], np.ndarray]:
        a = self.rng.integers(0, len(self.texts), n)
        b = self.rng.integers(0, len(self.texts), n)
        noise = self.rng.standard_normal((n, self.vectors.shape[1])).astype(np.float32)
        noise *= 0.5 / np.linalg.norm(noise, axis=1, keepdims=True)
        vecs = self.vectors[a] + 0.6 * self.vectors[b] + noise
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        texts = []
        for i, j in zip(a, b):
            x, y = self.texts[i].split(), self.texts[j].split()
            words = x[: len(x) // 2] + y[len(y) // 2:]
            for at in self.rng.integers(0, len(words), 3):
                words[at] = self.words[self.rng.integers(len(self.words))]
            texts.append(" ".join(words))
        return texts, vecs


def add_documents(writer, corpus: Corpus, first: int, count: int) -> None:
    from retrieval import Chunk, DocumentInfo

    texts, vecs = corpus.batch(count * CHUNKS_PER_DOC)
    for d in range(count):
        doc = f"docs/{first + d:07d}.txt"
        part = slice(d * CHUNKS_PER_DOC, (d + 1) * CHUNKS_PER_DOC)
        chunks = [Chunk(id=f"{doc}#{k}", doc=doc, text=t, ordinal=k, groups=("everyone",))
                  for k, t in enumerate(texts[part])]
        writer.add_document(DocumentInfo(doc=doc, format="txt", hash=doc), chunks, vecs[part])


def build(path: Path, size: int, corpus: Corpus, embedder) -> dict:
    from retrieval import Index

    index = Index(path, embedder)
    docs = size // CHUNKS_PER_DOC
    t0 = time.perf_counter()
    commits = []
    with index.writer() as w:
        for first in range(0, docs, COMMIT_CHUNKS // CHUNKS_PER_DOC):
            add_documents(w, corpus, first, min(COMMIT_CHUNKS // CHUNKS_PER_DOC, docs - first))
            t = time.perf_counter()
            w.checkpoint()
            commits.append(time.perf_counter() - t)
            print(f"\r  {size}: {min(first + COMMIT_CHUNKS // CHUNKS_PER_DOC, docs) * CHUNKS_PER_DOC} chunks",
                  end="", file=sys.stderr, flush=True)
        t = time.perf_counter()
        w.optimize()
        optimize_s = time.perf_counter() - t
        w.commit()
    print(file=sys.stderr)
    built = time.perf_counter() - t0
    add, remove = [], []
    for rep in range(3):
        with index.writer() as w:
            add_documents(w, corpus, docs + rep * 100, 100)
            t = time.perf_counter()
            w.commit()
            add.append(time.perf_counter() - t)
        with index.writer() as w:
            for d in range(rep * 100, rep * 100 + 100):
                w.remove_document(f"docs/{d:07d}.txt")
            t = time.perf_counter()
            w.commit()
            remove.append(time.perf_counter() - t)
    layout = index.layout_stats()
    index.close()
    return {"chunks": size, "build_s": round(built, 1), "optimize_s": round(optimize_s, 1),
            "commit_50k_s_max": round(max(commits), 2),
            "commit_add_100_docs_s": round(float(np.median(add)), 3),
            "commit_remove_100_docs_s": round(float(np.median(remove)), 3),
            "segments": layout["segments"], "ann_chunks": layout.get("ann_chunks", 0),
            "ann_recall_at_10_at_build": layout.get("ann_recall_at_10"),
            "disk_mb": round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6)}


def serve(path: str, queries_file: str) -> None:
    """The child: open the index with the real embedder, run every query, print the numbers."""
    from retrieval import make_embedder
    from retrieval.index import Index

    queries = json.loads(Path(queries_file).read_text())
    embedder = make_embedder("all-MiniLM-L6-v2")
    index = Index(path, embedder)
    vectors = np.asarray([embedder.embed_query(q) for q in queries], dtype=np.float32)
    index.search(queries[0], 10, query_vector=vectors[0])  # loads the generation
    out: dict = {"rss_mb_after": {"open": _rss()}}
    for mode in ("dense", "lexical", "hybrid"):
        times = []
        for q, v in zip(queries, vectors):
            t = time.perf_counter()
            index.search(q, 10, mode=mode, query_vector=v)
            times.append((time.perf_counter() - t) * 1000)
        out[mode] = {"p50_ms": round(percentile(times, 50), 1), "p95_ms": round(percentile(times, 95), 1)}
        out["rss_mb_after"][mode] = _rss()
    times = []
    for q in queries:
        t = time.perf_counter()
        index.search(q, 10, mode="hybrid")
        times.append((time.perf_counter() - t) * 1000)
    out["hybrid_with_query_embedding"] = {"p50_ms": round(percentile(times, 50), 1),
                                          "p95_ms": round(percentile(times, 95), 1)}
    out["rss_mb_after"]["hybrid_with_query_embedding"] = _rss()
    out["serving_rss_mb"] = _rss()["peak"]  # so far: VmHWM (ru_maxrss would carry the builder's across exec)
    out["ann_recall_at_10"] = round(ann_recall(index, vectors), 4)  # reads every vector: after the RSS
    print(json.dumps(out))


def _rss() -> dict:
    """This process's resident set now: its own memory (anon) and the index files' pages it maps
    (file: shared with the page cache, given back under memory pressure)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[key] = round(int(value.split()[0]) / 1024)
    return {"total": fields.get("VmRSS"), "anon": fields.get("RssAnon"), "file": fields.get("RssFile"),
            "peak": fields.get("VmHWM")}


def ann_recall(index, vectors: np.ndarray) -> float:
    """Dense top 10 through the index against exact search over every live vector."""
    snapshot = index._snapshot
    found = []
    exact_top = [[] for _ in vectors]
    for segment, live in snapshot.parts:
        vids = np.asarray(segment.vids)[live]
        for at in range(0, len(vids), 200_000):
            block = np.asarray(segment.dense.vectors[np.flatnonzero(live)[at:at + 200_000]])
            scores = block @ vectors.T
            for qi in range(len(vectors)):
                top = np.argpartition(-scores[:, qi], min(10, len(scores) - 1))[:10]
                exact_top[qi].extend(zip(scores[top, qi].tolist(), vids[at:at + 200_000][top].tolist()))
    for qi, v in enumerate(vectors):
        exact = {vid for _s, vid in sorted(exact_top[qi], reverse=True)[:10]}
        got = {h.chunk.id for h in index.search("x", 10, mode="dense", query_vector=v)}
        got_vids = {r[0] for r in index._con.execute(
            f"SELECT vid FROM chunks WHERE id IN ({','.join('?' * len(got))})", list(got))}
        found.append(len(exact & got_vids) / 10)
    return float(np.mean(found))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--keep", type=Path, help="build the indexes in this folder and keep them")
    parser.add_argument("--serve", nargs=2, metavar=("INDEX", "QUERIES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return 0
    from retrieval import make_embedder

    embedder = make_embedder("all-MiniLM-L6-v2")
    corpus = Corpus(embedder)
    claims = [q["text"] for q in load_jsonl(EVAL / "scifact" / "queries.jsonl")][:100]
    root = args.keep or Path(tempfile.mkdtemp(prefix="archivist-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    (root / "queries.json").write_text(json.dumps(claims))
    results = []
    try:
        for size in args.sizes:
            path = root / f"index-{size}"
            if path.exists():
                shutil.rmtree(path)
            row = build(path, size, corpus, embedder)
            child = subprocess.run([sys.executable, __file__, "--serve", str(path), str(root / "queries.json")],
                                   capture_output=True, text=True, cwd=ROOT)
            if child.returncode:
                raise SystemExit(child.stderr[-2000:])
            row.update(json.loads(child.stdout.strip().splitlines()[-1]))
            results.append(row)
            print(json.dumps(row), file=sys.stderr)
            if not args.keep:
                shutil.rmtree(path)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    out = ROOT / "bench" / "results" / "scale.json"
    out.write_text(json.dumps({"machine": "2 cores, 23 GB", "results": results}, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
