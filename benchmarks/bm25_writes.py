"""BM25 under writes: the first search after a small add or delete against an ordinary one.

The previous ``BM25Index`` (git ``--baseline-ref``, default ``8b11a33``: segments, contributions
computed at query time until a background precomputation) and the current one (right after a
write, the last precomputed impacts rescaled per term give candidates that are scored exactly;
query-time scoring when that cannot be proven exact) are built in turn on the same synthetic
collection (SciFact's unigram and length distributions, as in ``benchmarks/bm25.py``), one at a
time in memory, at each ``--docs`` size. For each: steady speed (SciFact test queries one at a
time, best of ``--repeats``), then ``--rounds`` x (add 100 documents, time the first search and
a second one; delete 100, time the first search; precompute as the background thread would;
time the same query again, steady). The table gives the medians and their ratios to the steady
search of the same query. One thread; query tokenisation excluded; CPU time per search.

    nice -n 10 python3 benchmarks/bm25_writes.py --docs 200000 1000000
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

from hybrid.encoders.analyzers import get_analyzer  # noqa: E402


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

    def one(q) -> float:  # CPU time of one search (the machine is shared), ms
        t = time.thread_time()
        index.search([q], 10)
        return 1e3 * (time.thread_time() - t)

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
    first_add, second_add, first_del, ordinary, add_s = [], [], [], [], []
    for r in range(rounds):
        q = queries[(7 * r) % len(queries)]
        batch = extra[r * 100 : (r + 1) * 100]
        t = time.perf_counter()
        index.add(batch)
        add_s.append(time.perf_counter() - t)
        first_add.append(one(q))
        second_add.append(one(q))
        index.delete(np.arange(r * 1000, r * 1000 + 100) + 7)
        first_del.append(one(q))
        if current:
            index.precompute()  # what the background thread does once writes pause
        one(q)
        ordinary.append(min(one(q) for _ in range(3)))  # the same query, steady
    med = {
        "ordinary": float(np.median(ordinary)),
        "add": float(np.median(first_add)),
        "second": float(np.median(second_add)),
        "delete": float(np.median(first_del)),
    }
    row["add 100 docs, ms"] = 1e3 * float(np.median(add_s))
    row["ordinary search, ms"] = med["ordinary"]
    row["first search after add, ms"] = med["add"]
    row["first after add / ordinary"] = med["add"] / med["ordinary"]
    row["second search after add / ordinary"] = med["second"] / med["ordinary"]
    row["first search after delete, ms"] = med["delete"]
    row["first after delete / ordinary"] = med["delete"] / med["ordinary"]
    row[f"q/s after {rounds} add+delete rounds (steady)"] = qps()
    print(f"  {row}", file=sys.stderr)
    index = None  # free it before the next implementation is built
    gc.collect()
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, nargs="+", default=[200_000, 1_000_000])
    ap.add_argument("--doc-len", type=int, default=0, help="cap each document (0: no cap)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--baseline-ref", default="8b11a33")
    ap.add_argument("--only", choices=["baseline", "current"])
    args = ap.parse_args(argv)
    _, corpus, _, queries, _ = load_beir(DATA / "scifact")
    an = get_analyzer("english")
    tok = an.analyze_batch(corpus, progress=False)
    qtok = an.analyze_batch(queries, progress=False)
    extra = synthetic(tok, 100 * args.rounds, seed=1)
    if args.doc_len:
        extra = [d[: args.doc_len] for d in extra]
    from indexes import BM25Index

    impls = [
        ("baseline " + args.baseline_ref, lambda: baseline_class(args.baseline_ref)),
        ("current", lambda: BM25Index),
    ]
    rows = []
    for n in args.docs:
        docs = synthetic(tok, n)
        if args.doc_len:
            docs = [d[: args.doc_len] for d in docs]
        for name, get in impls:
            if args.only and not name.startswith(args.only):
                continue
            rows.append(run(name, get(), docs, extra, qtok, args.repeats, args.rounds))
        docs = None
        gc.collect()
    length = f"first {args.doc_len} tokens of each" if args.doc_len else "full-length"
    print(
        f"\n### BM25 (lucene) under writes, synthetic documents ({length}), "
        f"{len(qtok)} SciFact queries, k=10, one thread; search times are CPU ms "
        f"(medians of {args.rounds} rounds: add 100, search, search, delete 100, search)\n"
    )
    cols = list(dict.fromkeys(c for r in rows for c in r))
    print(md_table(rows, cols))


if __name__ == "__main__":
    main()
