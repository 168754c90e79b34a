"""How much of a search holds the GIL: CPU time in the kernels that release it against the rest.

Concurrent searches from several threads can only overlap the parts that run without the GIL:
the index kernels (SPLADE and BM25 numba ``nogil`` kernels, one call for both where the engine
searches them one after another: :mod:`indexes.joint`; FAISS), the evidence kernel and the
fusion kernels (:mod:`fusion._kernels`, :mod:`fusion._scale`; the time of a call includes
numba's dispatch, a few microseconds that do hold the GIL).
Everything else (query handling, validation, fusion, evidence, hit assembly, locks) is Python
holding the GIL, and with a share ``p`` of it two threads give at most ``min(2, 1 / p)`` times
one thread's queries per second, less in practice (a thread returning from a kernel waits for
the GIL). The figures are the calling thread's CPU time (``time.thread_time``), so a loaded
machine changes them much less than wall-clock throughput: this is the load-independent view of
``benchmarks/concurrency.py``.

Same engine and queries as ``benchmarks/concurrency.py`` (SPLADE + FAISS Flat + BM25, one query
per ``engine.search(q, k=10)`` call, default adaptive fusion, ``parallel=False`` so every part
runs in the calling thread).

    python3 benchmarks/gil_share.py --sizes 5183,100000
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from concurrency import build, md  # noqa: E402

_KERNELS: dict[str, int] = {}
_MAIN = threading.get_ident()  # only the searching thread's kernel calls count


def _timed(fn, label: str):
    def call(*args, **kwargs):
        if threading.get_ident() != _MAIN:  # e.g. BM25's background precomputation
            return fn(*args, **kwargs)
        start = time.thread_time_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            _KERNELS[label] = _KERNELS.get(label, 0) + time.thread_time_ns() - start

    return call


def instrument(engine) -> None:
    """Time every call into a GIL-free kernel (the module attributes the callers look up, once
    per process; FAISS per engine)."""
    faiss_index = engine.retrievers["dense"].index._index
    faiss_index.search_c = _timed(faiss_index.search_c, "FAISS search")
    if _KERNELS.get("instrumented"):
        return
    _KERNELS["instrumented"] = 1
    import indexes.bm25 as bm25
    import indexes.sparse as sparse

    for name in ("search_serial", "search_segment"):
        setattr(sparse.K, name, _timed(getattr(sparse.K, name), "SPLADE kernel"))
    import indexes._sparse_query as sparse_query  # the common one-segment search
    import indexes.joint as joint  # SPLADE and BM25 in one call (the engine's serial searches)

    sparse_query.search_checked = _timed(sparse_query.search_checked, "SPLADE kernel")
    joint._both = _timed(joint._both, "SPLADE + BM25 kernels (one call)")
    for name in ("search_positive", "search_batch"):
        setattr(bm25._k, name, _timed(getattr(bm25._k, name), "BM25 kernel"))
    import hybrid.engine.evidence as evidence

    if hasattr(evidence, "_reference_share"):
        evidence._reference_share = _timed(evidence._reference_share, "evidence kernel")
    import fusion._combine as fusion_combine
    import fusion._core as fusion_core
    import fusion.api as fusion_api
    import fusion.normalize as fusion_normalize
    import fusion.trusted as fusion_trusted

    for module, names in (
        (fusion_core, ("canonical_rows", "align_rows", "order_union", "entries_valid")),
        (fusion_normalize, ("zscore_rows",)),
        (fusion_api, ("fuse_lists", "fuse_entries", "gather_entries")),
        (fusion_combine, ("combine_per_list",)),
        (fusion_trusted, ("fuse_checked",)),
    ):
        for name in names:
            if hasattr(module, name):
                setattr(module, name, _timed(getattr(module, name), "fusion kernels"))


def measure(n_docs: int, rounds: int) -> dict:
    engine, queries = build(n_docs, parallel=False)
    for q in queries[:30]:  # compile first: a kernel calling a wrapped kernel would not type
        engine.search(q, k=10)
    instrument(engine)
    for q in queries[:30]:  # warm the wrappers
        engine.search(q, k=10)
    best: dict | None = None
    for _ in range(rounds):
        for key in [k for k in _KERNELS if k != "instrumented"]:
            del _KERNELS[key]
        load = os.getloadavg()[0]
        start = time.thread_time_ns()
        for q in queries:
            engine.search(q, k=10)
        total = (time.thread_time_ns() - start) / len(queries) / 1e3
        kernels = {k: v / len(queries) / 1e3 for k, v in _KERNELS.items() if k != "instrumented"}
        free = sum(kernels.values())
        row = {
            "docs": n_docs,
            "CPU us per search": total,
            **{f"{k} us": v for k, v in sorted(kernels.items())},
            "GIL-free us": free,
            "GIL held us": total - free,
            "GIL held share": (total - free) / total,
            "2-thread bound": min(2.0, total / (total - free)),
            "load avg": load,
        }
        if best is None or row["CPU us per search"] < best["CPU us per search"]:
            best = row
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5183")
    ap.add_argument("--rounds", type=int, default=3, help="passes over the 300 queries (best)")
    args = ap.parse_args(argv)
    rows = [measure(int(n), args.rounds) for n in args.sizes.split(",") if n]
    cols = {k for r in rows for k in r}
    rows = [{k: r.get(k, 0.0) for k in rows[0] | dict.fromkeys(cols)} for r in rows]
    shown = [{k: f"{v:.1%}" if k == "GIL held share" else v for k, v in r.items()} for r in rows]
    print(md(shown))


if __name__ == "__main__":
    main()
