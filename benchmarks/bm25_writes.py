"""BM25 under writes: the first search after a small add, against the previous implementation.

The previous ``BM25Index`` (git ``--baseline-ref``, default ``d993823``: precomputed impacts,
rebuilt on the first search after any write) and the current one (query-time scoring over
segments) are built in turn on the same synthetic collection (SciFact's unigram and length
distributions, as in ``benchmarks/bm25.py``), one at a time in memory. For each: ordinary
search speed (SciFact test queries one at a time, CPU time, best of ``--repeats``), then
``--rounds`` x (add 100 documents, time the first search after it; delete 100, time the first
search after it). The current index computes contributions at query time right after a write and
precomputes them in the background once writes pause; both speeds are shown (the precomputation
is run by hand and timed here). One thread; query tokenisation excluded.

    python3 benchmarks/bm25_writes.py --docs 1000000
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bm25 import DATA, best_of, load_beir, md_table, synthetic  # noqa: E402

from hybrid.analyzers import get_analyzer  # noqa: E402


def baseline_class(ref: str):
    """``BM25Index`` as it was at git ``ref``, imported from a temporary package."""
    tmp = Path(tempfile.mkdtemp(prefix="bm25-baseline-"))
    pkg = tmp / "bm25_baseline"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in ("bm25.py", "_bm25_kernels.py", "_topk.py"):
        src = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{ref}:indexes/{name}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        src = src.replace(
            "from indexes import _bm25_kernels", "from bm25_baseline import _bm25_kernels"
        ).replace("from indexes._topk", "from bm25_baseline._topk")
        (pkg / name).write_text(src)
    sys.path.insert(0, str(tmp))
    return importlib.import_module("bm25_baseline.bm25").BM25Index


def run(name: str, cls, docs, extra, queries, repeats: int, rounds: int) -> dict:
    current = hasattr(cls, "precompute")

    def qps() -> float:
        per_call = best_of(lambda: [index.search([q], 10) for q in queries], repeats)
        return len(queries) / per_call

    t = time.perf_counter()
    index = cls("lucene")
    if current:
        index.precompute_delay = None  # precompute by hand below, timed apart
    for s in range(0, len(docs), 100_000):
        index.add(docs[s : s + 100_000])
    index.search([queries[0]], 10)  # the previous implementation's refresh: part of the build
    build = time.perf_counter() - t
    row = {"implementation": name, "docs": len(docs), "build s": build}
    if current:
        index.search(queries[:2], 10)
        row["q/s, contributions computed at query time"] = qps()
        t = time.perf_counter()
        index.precompute()
        row["precompute s (background)"] = time.perf_counter() - t
    index.search(queries[:2], 10)
    row["q/s one at a time (steady)"] = qps()
    first_add, first_del, add_s = [], [], []
    for r in range(rounds):
        batch = extra[r * 100 : (r + 1) * 100]
        t = time.perf_counter()
        index.add(batch)
        add_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        index.search([queries[r % len(queries)]], 10)
        first_add.append(time.perf_counter() - t)
        index.delete(np.arange(r * 1000, r * 1000 + 100) + 7)
        t = time.perf_counter()
        index.search([queries[(r + 1) % len(queries)]], 10)
        first_del.append(time.perf_counter() - t)
    row["add 100 docs, ms"] = 1e3 * float(np.median(add_s))
    row["first search after add, ms"] = 1e3 * float(np.median(first_add))
    row["first search after delete, ms"] = 1e3 * float(np.median(first_del))
    if current:
        index.precompute()
    row[f"q/s after {rounds} add+delete rounds (steady)"] = qps()
    print(f"  {row}", file=sys.stderr)
    index = None  # free it before the next implementation is built
    gc.collect()
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--baseline-ref", default="d993823")
    ap.add_argument("--only", choices=["baseline", "current"])
    args = ap.parse_args(argv)
    _, corpus, _, queries, _ = load_beir(DATA / "scifact")
    an = get_analyzer("english")
    tok = an.analyze_batch(corpus, progress=False)
    qtok = an.analyze_batch(queries, progress=False)
    docs = synthetic(tok, args.docs)
    extra = synthetic(tok, 100 * args.rounds, seed=1)
    from indexes import BM25Index

    impls = [
        ("baseline " + args.baseline_ref, lambda: baseline_class(args.baseline_ref)),
        ("current", lambda: BM25Index),
    ]
    rows = []
    for name, get in impls:
        if args.only and not name.startswith(args.only):
            continue
        rows.append(run(name, get(), docs, extra, qtok, args.repeats, args.rounds))
    print(
        f"\n### BM25 (lucene) under writes, {args.docs:,} synthetic documents, "
        f"{len(qtok)} SciFact queries, k=10, one thread\n"
    )
    cols = list(dict.fromkeys(c for r in rows for c in r))
    print(md_table(rows, cols))


if __name__ == "__main__":
    main()
