"""Searches under concurrency: throughput with 1, 2, 4 threads on one engine, and the latency of
``parallel=True`` (retrievers in the shared pool) against ``parallel=False``.

The engine has SPLADE (SparseIndex), dense (FAISS Flat, 384-d) and BM25 retrievers over SciFact
(5,183 real documents: SPLADE-tiny and MiniLM encodings from ../shared/data/scifact-encoded,
BM25 over the English analyzer's tokens) or synthetic collections made from them (SPLADE rows
mixed from two real documents as in benchmarks/sparse.py, MiniLM vectors with noise as in
benchmarks/dense.py, BM25 token lists as in benchmarks/bm25.py). Queries are the 300 SciFact
test queries with precomputed encodings (the encoders are look-ups), one query per
``engine.search(q, k=10)`` call with the default (adaptive) fusion. Wall-clock figures on a
shared machine: the load average before each measurement is printed beside it, and the
compared settings are measured in interleaved rounds of the same run.

    python3 benchmarks/concurrency.py --sizes 5183,100000 --throughput-sizes 5183,200000
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"

from hybrid import BM25Retriever, DenseRetriever, HybridRetriever, SpladeRetriever  # noqa: E402
from hybrid.encoders import CallableEncoder  # noqa: E402
from hybrid.encoders.analyzers import get_analyzer  # noqa: E402


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class LookupSparse:
    """Query "q17" -> row 17 of the precomputed SPLADE query matrix (documents: "d17")."""

    def __init__(self, queries: sp.csr_matrix) -> None:
        self.queries = queries
        self.dim = queries.shape[1]
        self.spec = {"type": "lookup"}
        # one query's row, sliced once: scipy's row indexing costs ~100 us a call, more than
        # a real encoder holds the GIL for (torch releases it)
        self.rows = [queries[i : i + 1] for i in range(queries.shape[0])]

    def encode_queries(self, texts):
        if len(texts) == 1:
            return self.rows[int(texts[0][1:])]
        return self.queries[[int(t[1:]) for t in texts]]

    def encode_documents(self, texts):
        """Document "d17" -> row 17 of the documents (set ``self.docs`` first)."""
        return self.docs[[int(t[1:]) for t in texts]]

    def decode(self, ids):
        return [str(i) for i in ids]


def load(n_docs: int, seed: int = 0):
    """(splade docs, dense docs, bm25 docs, splade queries, dense queries, bm25 queries)."""
    enc = DATA / "scifact-encoded"
    s_docs = sp.load_npz(enc / "splade_docs.npz").tocsr()
    d_docs = np.load(enc / "minilm_docs.npy")
    s_q = sp.load_npz(enc / "splade_queries.npz").tocsr()
    d_q = np.load(enc / "minilm_queries.npy")
    bm25 = _bench_module("bm25.py")
    _, corpus, _, queries, _ = bm25.load_beir(DATA / "scifact")
    an = get_analyzer("english")
    b_docs = an.analyze_batch(corpus, progress=False)
    b_q = an.analyze_batch(queries, progress=False)
    if n_docs != s_docs.shape[0]:
        s_docs = _bench_module("sparse.py").synthesize(s_docs, n_docs, seed)
        d_docs = _bench_module("dense.py").synthetic(n_docs, d_docs, seed)
        b_docs = bm25.synthetic(b_docs, n_docs, seed)
    return s_docs, d_docs, b_docs, s_q, d_q, b_q


CHUNKED_ABOVE = 300_000
"""Larger collections are made and added 100,000 documents at a time (each chunk synthesised
with its own seed), so only one chunk's raw encodings are held beside the indexes: a 1M-document
engine then fits in a few GB."""


def build(n_docs: int, parallel: bool = True) -> tuple[HybridRetriever, list[str]]:
    if n_docs > CHUNKED_ABOVE:
        return build_chunked(n_docs, parallel)
    s_docs, d_docs, b_docs, s_q, d_q, b_q = load(n_docs)
    sparse = LookupSparse(s_q)
    sparse.docs = s_docs

    def dense(texts, queries: bool):
        return (d_q if queries else d_docs)[[int(x[1:]) for x in texts]]

    engine = HybridRetriever(
        {
            "splade": SpladeRetriever(sparse),
            "dense": DenseRetriever(
                CallableEncoder(lambda t: dense(t, True), lambda t: dense(t, False), "minilm", 384)
            ),
            "bm25": BM25Retriever(lambda t: (b_q if t[0] == "q" else b_docs)[int(t[1:])]),
        },
        parallel=parallel,
    )
    step = 100_000
    for lo in range(0, n_docs, step):
        hi = min(n_docs, lo + step)
        engine.add(
            [f"d{i}" for i in range(lo, hi)],
            encoded={"splade": s_docs[lo:hi], "dense": d_docs[lo:hi], "bm25": b_docs[lo:hi]},
        )
    return engine, [f"q{i}" for i in range(s_q.shape[0])]


def build_chunked(n_docs: int, parallel: bool = True) -> tuple[HybridRetriever, list[str]]:
    """The engine of :func:`build` over ``n_docs`` synthetic documents made chunk by chunk."""
    enc = DATA / "scifact-encoded"
    base_s = sp.load_npz(enc / "splade_docs.npz").tocsr()
    base_d = np.load(enc / "minilm_docs.npy")
    s_q = sp.load_npz(enc / "splade_queries.npz").tocsr()
    d_q = np.load(enc / "minilm_queries.npy")
    bm25 = _bench_module("bm25.py")
    _, corpus, _, queries, _ = bm25.load_beir(DATA / "scifact")
    an = get_analyzer("english")
    base_b = an.analyze_batch(corpus, progress=False)
    b_q = an.analyze_batch(queries, progress=False)
    sparse_mod, dense_mod = _bench_module("sparse.py"), _bench_module("dense.py")

    def dense(texts):  # queries only: documents come encoded
        return d_q[[int(x[1:]) for x in texts]]

    def no_documents(texts):
        raise RuntimeError("documents are added encoded")

    engine = HybridRetriever(
        {
            "splade": SpladeRetriever(LookupSparse(s_q)),
            "dense": DenseRetriever(CallableEncoder(dense, no_documents, "minilm", 384)),
            "bm25": BM25Retriever(lambda t: b_q[int(t[1:])]),
        },
        parallel=parallel,
    )
    step = 100_000
    for seed, lo in enumerate(range(0, n_docs, step)):
        m = min(step, n_docs - lo)
        engine.add(
            [f"d{i}" for i in range(lo, lo + m)],
            encoded={
                "splade": sparse_mod.synthesize(base_s, m, seed),
                "dense": dense_mod.synthetic(m, base_d, seed),
                "bm25": bm25.synthetic(base_b, m, seed),
            },
        )
    return engine, [f"q{i}" for i in range(s_q.shape[0])]


def throughput(engine, queries, threads: int, seconds: float) -> tuple[float, float]:
    """(queries per second, CPU cores this process used) of ``threads`` threads each searching
    one query at a time. More than one core used means searches ran in parallel (the GIL was
    released); on a loaded machine the scheduler caps both figures."""
    stop = threading.Event()
    counts = [0] * threads

    def run(t):
        i = t * 37
        while not stop.is_set():
            engine.search(queries[i % len(queries)], k=10)
            counts[t] += 1
            i += 1

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    start, cpu = time.perf_counter(), time.process_time()
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    wall = time.perf_counter() - start
    return sum(counts) / wall, (time.process_time() - cpu) / wall


def latencies(engine, queries, parallel: bool) -> tuple[np.ndarray, float]:
    """Wall ms of each search, and CPU ms per search (all threads of this process)."""
    engine.parallel = parallel
    out = []
    cpu = time.process_time()
    for q in queries:
        t = time.perf_counter()
        engine.search(q, k=10)
        out.append(time.perf_counter() - t)
    return 1e3 * np.array(out), 1e3 * (time.process_time() - cpu) / len(out)


def load_avg() -> float:
    return os.getloadavg()[0]


def md(rows: list[dict]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for v in r.values():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                cells.append(str(v))
            else:
                cells.append(f"{v:,.2f}" if isinstance(v, float) else f"{v:,}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def latency_rows(engine, queries, n: int, rounds: int) -> list[dict]:
    """parallel=False and True in interleaved rounds over all queries."""
    samples: dict[bool, list] = {False: [], True: []}
    loads = []
    for _ in range(rounds):
        for parallel in (False, True):
            loads.append(load_avg())
            samples[parallel].append(latencies(engine, queries, parallel))
    rows = []
    for parallel in (False, True):
        lat = np.concatenate([x for x, _ in samples[parallel]])
        rows.append(
            {
                "docs": n,
                "parallel": parallel,
                "searches": int(lat.size),
                "p50 ms": float(np.percentile(lat, 50)),
                "p99 ms": float(np.percentile(lat, 99)),
                "best round p50 ms": float(min(np.percentile(x, 50) for x, _ in samples[parallel])),
                "CPU ms per search": float(np.mean([c for _, c in samples[parallel]])),
                "load avg": float(np.mean(loads)),
            }
        )
        print(f"  {rows[-1]}", file=sys.stderr)
    return rows


def throughput_rows(
    engine, queries, n: int, threads: list[int], seconds: float, rounds: int
) -> list[dict]:
    """Each thread count in interleaved rounds (parallel=False, then True); best round each."""
    rows = []
    for parallel in (False, True):
        engine.parallel = parallel
        best: dict[int, tuple[float, float]] = {}
        loads = []
        for _ in range(rounds):
            for t in threads:
                loads.append(load_avg())
                qps, cores = throughput(engine, queries, t, seconds)
                if qps > best.get(t, (0.0, 0.0))[0]:
                    best[t] = (qps, cores)
        for t in threads:
            rows.append(
                {
                    "docs": n,
                    "parallel": parallel,
                    "threads": t,
                    "q/s (best round)": best[t][0],
                    "x one thread": best[t][0] / best[threads[0]][0],
                    "CPU cores used": best[t][1],
                    "load avg": float(np.mean(loads)),
                }
            )
            print(f"  {rows[-1]}", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5183,100000", help="parallel vs serial latency sizes")
    ap.add_argument("--throughput-sizes", default="5183,200000")
    ap.add_argument("--threads", default="1,2,4")
    ap.add_argument("--seconds", type=float, default=8.0, help="per throughput measurement")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of each setting")
    ap.add_argument("--queries", type=int, default=300, help="queries per latency round")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    report: dict = {"cpus": os.cpu_count()}
    lat_sizes = [int(s) for s in args.sizes.split(",") if s]
    tp_sizes = [int(s) for s in args.throughput_sizes.split(",") if s]
    threads = [int(x) for x in args.threads.split(",")]
    lat_rows, tp_rows = [], []
    for n in sorted(set(lat_sizes + tp_sizes)):
        t = time.perf_counter()
        engine, queries = build(n)
        print(f"  built {n:,} docs in {time.perf_counter() - t:.0f}s", file=sys.stderr)
        for q in queries[:20]:  # compile and warm
            engine.search(q, k=10)
        if n in lat_sizes:
            lat_rows += latency_rows(engine, queries[: args.queries], n, args.rounds)
        if n in tp_sizes:
            tp_rows += throughput_rows(engine, queries, n, threads, args.seconds, args.rounds)
        engine = None
    report["latency"], report["throughput"] = lat_rows, tp_rows
    if lat_rows:
        print(f"\n### parallel=True vs False, one query at a time ({os.cpu_count()} CPUs)\n")
        print(md(lat_rows))
    if tp_rows:
        print(f"\n### Search throughput, threads against one engine ({os.cpu_count()} CPUs)\n")
        print(md(tp_rows))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
