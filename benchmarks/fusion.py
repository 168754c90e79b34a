"""Benchmark: fuse L lists x depth candidates for many queries, per method, vs ranx and dicts.

Times, in one run on the same synthetic data:

- ``fusion.fuse_padded`` (this package): the padded form the indexes return (ids ``-1`` /
  scores ``-inf`` padding, float32 scores), full output with per-list explanations, plus the
  same with ``top=100``. Best of ``--repeats``.
- ``ranx.fuse`` on prebuilt ``ranx.Run`` objects (building the Runs is *not* timed; numba
  kernels are warmed up on a tiny input first so JIT compilation is not timed). One run.
- a plain dict-based Python implementation (one dict per query and list). One run.

Scores are checked against ranx on the first queries (``max |d score|`` column). ``adaptive``
(the engine's default) has no peer: it is timed as the engine calls it, z-score statistics
over all ``--depth`` candidates, the best 100 of each list fused, evidence 1.0 for every list.
Prints a markdown table; ``--json PATH`` also writes the numbers.

    python3 benchmarks/fusion.py                       # 3 lists x 1,000 x 1,000 queries
    python3 benchmarks/fusion.py --queries 100 --quick  # smoke run
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

# Run as a script, this file's folder comes first on sys.path and this file would shadow the
# `fusion` package: put the repository root there instead.
_HERE = Path(__file__).resolve().parent
sys.path = [str(_HERE.parent) if Path(p or ".").resolve() == _HERE else p for p in sys.path]
fusion = importlib.import_module("fusion")

# ours -> (ranx method, ranx norm)
RANX = {
    "rrf": ("rrf", None),
    "isr": ("isr", None),
    "borda": ("bordafuse", None),
    "wsum": ("wsum", "min-max"),
    "combsum": ("sum", "min-max"),
    "combmnz": ("mnz", "min-max"),
    "combmax": ("max", "min-max"),
    "combmin": ("min", "min-max"),
    "combanz": ("anz", "min-max"),
}


def make_data(n_queries: int, depth: int, n_lists: int, seed: int = 0):
    """Per retriever (ids, scores) of shape (n_queries, depth), sorted best first, float32.

    Each query draws its lists from a pool of ``4 * depth`` documents so lists overlap
    partially (as sparse, dense and BM25 candidates do); about 2% of rows are cut short and
    padded with id -1 / score -inf like an index returning fewer hits.
    """
    rng = np.random.default_rng(seed)
    pool = 4 * depth
    base = rng.integers(0, 10_000_000 - pool, size=(n_queries, 1))  # shared by a query's lists
    lists = []
    for _ in range(n_lists):
        ids = np.argsort(rng.random((n_queries, pool)), axis=1)[:, :depth] + base
        scores = -np.sort(-rng.gamma(2.0, 2.0, size=(n_queries, depth)), axis=1)
        short = rng.random(n_queries) < 0.02
        cut = rng.integers(2, depth, size=n_queries)
        pad = short[:, None] & (np.arange(depth)[None, :] >= cut[:, None])
        ids = np.where(pad, -1, ids).astype(np.int64)
        scores = np.where(pad, -np.inf, scores).astype(np.float32)
        lists.append((ids, scores))
    return lists


def to_dicts(lists) -> list[list[dict[int, float]]]:
    """Per query, per list: {doc id: score} (what dict-based code and ranx start from)."""
    n_q = lists[0][0].shape[0]
    out = []
    for q in range(n_q):
        per = []
        for ids, scores in lists:
            keep = ids[q] >= 0
            per.append(
                dict(
                    zip(ids[q][keep].tolist(), scores[q][keep].astype(float).tolist(), strict=True)
                )
            )
        out.append(per)
    return out


def dict_fuse(per_list: list[dict[int, float]], method: str, weights: list[float], k: int = 60):
    """Plain Python fusion of one query (the peer baseline): dicts in, sorted (id, score) out."""
    if method in ("rrf", "isr", "borda"):
        ranked = [sorted(d, key=lambda x, d=d: (-d[x], x)) for d in per_list]
        fused: dict[int, float] = {}
        if method == "rrf":
            for w, r in zip(weights, ranked, strict=True):
                for i, doc in enumerate(r, 1):
                    fused[doc] = fused.get(doc, 0.0) + w / (k + i)
        elif method == "isr":
            hits: dict[int, int] = {}
            for w, r in zip(weights, ranked, strict=True):
                for i, doc in enumerate(r, 1):
                    fused[doc] = fused.get(doc, 0.0) + w / (i * i)
                    hits[doc] = hits.get(doc, 0) + 1
            fused = {doc: s * hits[doc] for doc, s in fused.items()}
        else:
            cands = set().union(*per_list)
            c = len(cands)
            fused = dict.fromkeys(cands, 0.0)
            for w, r in zip(weights, ranked, strict=True):
                pos = {doc: i for i, doc in enumerate(r, 1)}
                rest = (c - len(r) + 1) / 2
                for doc in cands:
                    fused[doc] += w * (c - pos[doc] + 1 if doc in pos else rest)
    else:
        normed = []
        for d in per_list:
            lo, hi = min(d.values()), max(d.values())
            span = hi - lo
            normed.append({x: (s - lo) / span if span > 0 else 0.5 for x, s in d.items()})
        vals: dict[int, list[float]] = {}
        for w, d in zip(weights, normed, strict=True):
            for doc, s in d.items():
                vals.setdefault(doc, []).append(w * s)
        agg: dict[str, Callable[[list[float]], float]] = {
            "wsum": sum,
            "combsum": sum,
            "combmnz": lambda v: sum(v) * len(v),
            "combmax": max,
            "combmin": min,
            "combanz": lambda v: sum(v) / len(v),
        }
        fused = {doc: agg[method](v) for doc, v in vals.items()}
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


def best_of(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--depth", type=int, default=1000)
    ap.add_argument("--lists", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--methods", default=",".join(fusion.METHODS))
    ap.add_argument("--no-ranx", action="store_true")
    ap.add_argument("--no-dict", action="store_true")
    ap.add_argument("--quick", action="store_true", help="1 repeat")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    methods = args.methods.split(",")
    repeats = 1 if args.quick else args.repeats
    weights = [1.0 / args.lists] * args.lists

    lists = make_data(args.queries, args.depth, args.lists)
    dicts = to_dicts(lists)
    info = {
        "queries": args.queries,
        "depth": args.depth,
        "lists": args.lists,
        "weights": weights,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "ours_threads": 1,
        "repeats_ours": repeats,
    }

    runs = None
    if not args.no_ranx:
        import numba
        import ranx

        info["ranx"] = ranx.__version__ if hasattr(ranx, "__version__") else "?"
        info["ranx_numba_threads"] = numba.get_num_threads()

        def build(n_q: int) -> list:
            return [
                ranx.Run({f"q{q}": {str(d): s for d, s in dicts[q][j].items()} for q in range(n_q)})
                for j in range(args.lists)
            ]

        warm = build(min(5, args.queries))  # same construction path: same numba types
        t0 = time.perf_counter()
        runs = build(args.queries)
        info["ranx_build_runs_s"] = time.perf_counter() - t0

    rows = []
    for method in methods:
        row: dict[str, object] = {"method": method}
        opts: dict[str, object] = {}
        if method == fusion.ADAPTIVE:
            opts = {"depth": min(100, args.depth), "evidence": np.ones((args.queries, args.lists))}
        row["ours_s"] = best_of(
            lambda m=method, o=opts: fusion.fuse_padded(lists, m, weights, **o), repeats
        )
        row["ours_top100_s"] = best_of(
            lambda m=method, o=opts: fusion.fuse_padded(lists, m, weights, top=100, **o), repeats
        )
        ours = fusion.fuse_padded(lists, method, weights, **opts)
        if method not in RANX:  # no peer implementation
            rows.append(row)
            print(f"  done {method}: {row}", flush=True)
            continue
        if runs is not None:
            rmethod, rnorm = RANX[method]
            params = {"weights": weights} if rmethod == "wsum" else {}
            ranx.fuse(warm, norm=rnorm, method=rmethod, params=params)  # JIT warm-up
            t0 = time.perf_counter()
            theirs = ranx.fuse(runs, norm=rnorm, method=rmethod, params=params)
            row["ranx_s"] = time.perf_counter() - t0
            row["speedup_vs_ranx"] = row["ranx_s"] / row["ours_s"]
            w = 1.0 if method == "wsum" else weights[0]  # ranx weighs only wsum; ours all
            diff = 0.0
            for q in range(min(20, args.queries)):
                got = dict(zip(ours[q].ids.tolist(), ours[q].scores.tolist(), strict=True))
                their = theirs.run[f"q{q}"]
                diff = max(diff, max(abs(got[int(d)] - w * s) for d, s in their.items()))
            row["max_abs_diff_vs_ranx"] = diff
        if not args.no_dict:
            t0 = time.perf_counter()
            for q in range(args.queries):
                dict_fuse(dicts[q], method, weights)
            row["dict_s"] = time.perf_counter() - t0
            row["speedup_vs_dict"] = row["dict_s"] / row["ours_s"]
        rows.append(row)
        print(f"  done {method}: {row}", flush=True)
        if args.json:  # written as we go, so a cut-short run keeps what it measured
            args.json.write_text(json.dumps({"info": info, "rows": rows}, indent=2))

    print(
        f"\n{args.lists} lists x {args.depth} candidates x {args.queries} queries; ours: numpy, "
        f"1 thread, best of {repeats}, full output with explanations (and top=100); "
        f"ranx: numba {info.get('ranx_numba_threads', '-')} threads, 1 run on prebuilt Runs "
        f"(building them: {info.get('ranx_build_runs_s', float('nan')):.1f} s, not counted); "
        "dict: plain Python, 1 run. Seconds.\n"
    )
    cols = [
        ("method", "method", "{}"),
        ("ours_s", "ours", "{:.3f}"),
        ("ours_top100_s", "ours top=100", "{:.3f}"),
        ("ranx_s", "ranx.fuse", "{:.2f}"),
        ("speedup_vs_ranx", "x vs ranx", "{:.1f}"),
        ("dict_s", "dict", "{:.2f}"),
        ("speedup_vs_dict", "x vs dict", "{:.1f}"),
        ("max_abs_diff_vs_ranx", "max abs d score vs ranx", "{:.1e}"),
    ]
    cols = [c for c in cols if any(c[0] in r for r in rows)]
    print("| " + " | ".join(c[1] for c in cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|")
    for r in rows:
        print("| " + " | ".join(c[2].format(r[c[0]]) if c[0] in r else "-" for c in cols) + " |")


if __name__ == "__main__":
    main()
