"""Ingestion speed, side by side with the LangChain tutorial pipeline, on the same machine.

    .venv/bin/pip install pypdf langchain-community    # the baseline's own loader, bench only
    .venv/bin/python bench/ingest_speed.py [--set contoso-hr]

Archivist: `archivist ingest` on SET/docs (parse + chunk + embed + index), timed in-process
with the embedder already loaded. Baseline: PyPDFLoader per PDF (plus a text loader for the
rest), RecursiveCharacterTextSplitter(1000, 200), the same MiniLM model, a FAISS flat index.
Writes bench/results/ingest_speed.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import EVAL, ROOT  # noqa: E402


def run_archivist(docs: Path, embedder) -> dict:
    from ingest import Chunker, ChunkingOptions, Ingestor, Parser, discover
    from retrieval import Index

    tmp = Path(tempfile.mkdtemp())
    try:
        t0 = time.perf_counter()
        index = Index(tmp / "index", embedder)
        with Parser() as parser:
            report = Ingestor(index, Chunker(embedder.count_tokens, ChunkingOptions(max_tokens=embedder.max_tokens)), parser).ingest(discover([docs]))
        seconds = time.perf_counter() - t0
        return {"seconds": round(seconds, 2), "chunks": report.chunks, "pages": report.pages,
                "pages_per_s": round(report.pages / seconds, 1)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_langchain(docs: Path, embedder) -> dict:
    import faiss
    import numpy as np
    from langchain_community.document_loaders import PyPDFLoader, TextLoader
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    model = embedder._load()
    t0 = time.perf_counter()
    pages = []
    for f in sorted(docs.rglob("*")):
        if f.suffix.lower() == ".pdf":
            pages += PyPDFLoader(str(f)).load()
        elif f.is_file():
            pages += TextLoader(str(f), encoding="utf-8").load()
    splits = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(pages)
    vecs = model.encode([d.page_content for d in splits], batch_size=32, normalize_embeddings=True)
    index = faiss.IndexFlatIP(vecs.shape[1])
    index.add(np.asarray(vecs, dtype=np.float32))
    seconds = time.perf_counter() - t0
    n_pages = sum(1 for p in pages if "page" in p.metadata)
    return {"seconds": round(seconds, 2), "chunks": len(splits), "pages": n_pages, "pages_per_s": round(n_pages / seconds, 1)}


def run_txtai(docs: Path, model_dir: Path) -> dict:
    """txtai as its documentation builds an index: text per page (pypdf here, since txtai's own
    Textractor needs Apache Tika or Docling, which fetch their parts from the network), split into
    paragraphs by txtai's Segmentation, then ``Embeddings(content=True).index`` with the same MiniLM
    folder. Paragraphs of these PDFs run past the model's 256-token window, so txtai embeds fewer
    tokens than the other two pipelines (the rest is cut off)."""
    from pypdf import PdfReader
    from txtai import Embeddings
    from txtai.pipeline import Segmentation

    t0 = time.perf_counter()
    segment = Segmentation(paragraphs=True, minlength=50)
    texts, n_pages = [], 0
    for f in sorted(docs.rglob("*")):
        if f.suffix.lower() == ".pdf":
            pages = [page.extract_text() or "" for page in PdfReader(str(f)).pages]
            n_pages += len(pages)
        elif f.is_file():
            pages = [f.read_text(encoding="utf-8", errors="replace")]
        else:
            continue
        for page in pages:
            texts += segment(page)
    embeddings = Embeddings(path=str(model_dir), content=True)
    embeddings.index(texts)
    seconds = time.perf_counter() - t0
    return {"seconds": round(seconds, 2), "chunks": embeddings.count(), "pages": n_pages,
            "pages_per_s": round(n_pages / seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", default="contoso-hr")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    from retrieval import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    embedder._load()
    embedder.embed(["warm up the model"])
    docs = EVAL / args.set / "docs"
    out = {"set": args.set, "archivist": [], "langchain_tutorial": []}
    for _ in range(args.repeat):
        out["archivist"].append(run_archivist(docs, embedder))
        print("archivist", out["archivist"][-1], flush=True)
        try:
            out["langchain_tutorial"].append(run_langchain(docs, embedder))
            print("langchain", out["langchain_tutorial"][-1], flush=True)
        except ImportError as exc:
            print(f"baseline skipped ({exc}); pip install pypdf langchain-community", flush=True)
    path = ROOT / "bench" / "results" / "ingest_speed.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
