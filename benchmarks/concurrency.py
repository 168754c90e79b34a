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
from hybrid.analyzers import get_analyzer  # noqa: E402
from hybrid.encoders import CallableEncoder  # noqa: E402


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

    def encode_queries(self, texts):
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


def build(n_docs: int, parallel: bool = True) -> tuple[HybridRetriever, list[str]]:
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


def throughput(engine, queries, threads: int, seconds: float) -> float:
    """Queries per second of ``threads`` threads each searching one query at a time."""
    stop = threading.Event()
    counts = [0] * threads

    def run(t):
        i = t * 37
        while not stop.is_set():
            engine.search(queries[i % len(queries)], k=10)
            counts[t] += 1
            i += 1

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    return sum(counts) / (time.perf_counter() - start)


def latencies(engine, queries, parallel: bool, rounds: int) -> np.ndarray:
    engine.parallel = parallel
    out = []
    for q in queries[:rounds]:
        t = time.perf_counter()
        engine.search(q, k=10)
        out.append(time.perf_counter() - t)
    return 1e3 * np.array(out)


def load_avg() -> float:
    return os.getloadavg()[0]


def md(rows: list[dict]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append(
            "| "
            + " | ".join(
                str(v)
                if isinstance(v, bool)
                else f"{v:,.1f}"
                if isinstance(v, float)
                else f"{v:,}"
                if isinstance(v, int)
                else str(v)
                for v in r.values()
            )
            + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5183,100000", help="parallel vs serial latency sizes")
    ap.add_argument("--throughput-sizes", default="5183,200000")
    ap.add_argument("--threads", default="1,2,4")
    ap.add_argument("--seconds", type=float, default=8.0, help="per throughput measurement")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of each setting")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    report: dict = {"cpus": os.cpu_count()}
    sizes = sorted({int(s) for s in (args.sizes + "," + args.throughput_sizes).split(",") if s})
    lat_rows, tp_rows = [], []
    for n in sizes:
        t = time.perf_counter()
        engine, queries = build(n)
        print(f"  built {n:,} docs in {time.perf_counter() - t:.0f}s", file=sys.stderr)
        for q in queries[:20]:  # compile and warm
            engine.search(q, k=10)
        if str(n) in args.sizes.split(","):
            samples = {True: [], False: []}
            loads = []
            for _ in range(args.rounds):
                for parallel in (False, True):
                    loads.append(load_avg())
                    samples[parallel].append(latencies(engine, queries, parallel, len(queries)))
            for parallel in (False, True):
                lat = np.concatenate(samples[parallel])
                lat_rows.append(
                    {
                        "docs": n,
                        "parallel": parallel,
                        "searches": lat.size,
                        "p50 ms": float(np.percentile(lat, 50)),
                        "p99 ms": float(np.percentile(lat, 99)),
                        "mean ms": float(lat.mean()),
                        "load avg": float(np.mean(loads)),
                    }
                )
                print(f"  {lat_rows[-1]}", file=sys.stderr)
        if str(n) in args.throughput_sizes.split(","):
            for parallel in (False, True):
                engine.parallel = parallel
                base = None
                for threads in (int(x) for x in args.threads.split(",")):
                    best, loads = 0.0, []
                    for _ in range(args.rounds):
                        loads.append(load_avg())
                        best = max(best, throughput(engine, queries, threads, args.seconds))
                    base = base or best
                    tp_rows.append(
                        {
                            "docs": n,
                            "parallel": parallel,
                            "threads": threads,
                            "q/s (best round)": best,
                            "x one thread": best / base,
                            "load avg": float(np.mean(loads)),
                        }
                    )
                    print(f"  {tp_rows[-1]}", file=sys.stderr)
        engine = None
    report["latency"], report["throughput"] = lat_rows, tp_rows
    print(f"\n### parallel=True vs False, one query at a time ({os.cpu_count()} CPUs)\n")
    print(md(lat_rows))
    print(f"\n### Search throughput, threads against one engine ({os.cpu_count()} CPUs)\n")
    print(md(tp_rows))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
