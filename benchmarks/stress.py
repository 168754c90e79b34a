"""Stress: 8 searcher threads against 2 writer threads on one engine for 60 s (by default).

SPLADE (stand-in sparse encoder), dense (FAISS ``--factory``) and BM25 retrievers; writers do
random add / upsert / delete / update_metadata, a saver thread saves and reloads the engine
every ``--save-every`` s. Checks (see ``tests/_stress.py``): no exception in any thread, no hit
for a document whose delete returned before the search began, no stale upserted version, no
duplicate hit, and at the end the engine equals one rebuilt from the surviving documents (ids
and scores, every retriever and fusion). Prints one markdown row per run.

    python3 benchmarks/stress.py --seconds 60 --factory Flat --factory HNSW16
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests._stress import rebuilt, run_stress  # noqa: E402

QUERIES = [f"w{i} w{(i * 7) % 80} w{(i * 13) % 80}" for i in range(40)]


def equal_to_rebuild(engine, exact: bool) -> bool:
    fresh = rebuilt(engine)
    ok = engine.ids() == fresh.ids()
    if exact:
        for fusion in ("rrf", "wsum", "adaptive"):
            for got, want in zip(
                engine.search(QUERIES, k=20, fusion=fusion),
                fresh.search(QUERIES, k=20, fusion=fusion),
                strict=True,
            ):
                ok &= [h.id for h in got] == [h.id for h in want]
                ok &= np.allclose([h.score for h in got], [h.score for h in want], rtol=1e-6)
    a, b = engine.retrieve(QUERIES, depth=50), fresh.retrieve(QUERIES, depth=50)
    for name in engine.names if exact else ["splade", "bm25"]:
        ok &= [[engine.store.ids[i] for i in r if i >= 0] for r in a.results[name].ids] == [
            [fresh.store.ids[i] for i in r if i >= 0] for r in b.results[name].ids
        ]
        ok &= np.allclose(a.results[name].scores, b.results[name].scores, rtol=1e-6)
    return bool(ok)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--searchers", type=int, default=8)
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--factory", action="append", help="FAISS factory (repeatable; Flat)")
    ap.add_argument("--save-every", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rows = []
    for factory in args.factory or ["Flat"]:
        t = time.perf_counter()
        engine, rep, live = run_stress(
            args.seconds,
            args.searchers,
            args.writers,
            factory=factory,
            save_every=args.save_every,
            seed=args.seed,
        )
        wall = time.perf_counter() - t
        same = sorted(engine.ids()) == sorted(live) and equal_to_rebuild(engine, factory == "Flat")
        lat = np.array(rep.latencies_ms or [0.0])
        rows.append(
            [
                factory,
                f"{wall:.0f}",
                f"{len(engine):,}",
                f"{rep.searches:,}",
                f"{rep.hits_checked:,}",
                ", ".join(f"{k} {v:,}" for k, v in sorted(rep.writes.items())),
                str(rep.saves),
                f"{np.percentile(lat, 50):.1f} / {np.percentile(lat, 99):.1f}",
                str(len(rep.errors)),
                str(len(rep.violations)),
                "yes" if same else "NO",
            ]
        )
        for line in (rep.errors + rep.violations)[:10]:
            print(line, file=sys.stderr)
    cols = [
        "FAISS",
        "wall s",
        "docs at end",
        "searches",
        "hits checked",
        "writes",
        "saves",
        "search p50 / p99 ms",
        "exceptions",
        "violations",
        "equals rebuild",
    ]
    print(
        f"\n### Stress: {args.searchers} searchers x {args.writers} writers, "
        f"{args.seconds:.0f} s each\n"
    )
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
