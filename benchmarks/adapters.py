"""Benchmark: what each framework adapter adds to a search, against a direct ``engine.search``.

SciFact (5,183 documents, the 300 test queries), an engine with three retrievers: BM25
(English analyzer, tokenised at query time) and SPLADE-tiny + all-MiniLM-L6-v2 from the shared
**precomputed** encodings (``../shared/data/scifact-encoded``): documents are added with
``encoded=`` and the query "encoders" look the query's precomputed vector up by its text, so the
times are retrieval + fusion + the adapter, no model inference. Default fusion, ``k=10``,
``parallel=False`` (one thread per search, so the adapters' costs are not hidden by thread
scheduling noise on a shared machine).

Per query, every path is called once, in rotating order (so drift on a shared machine hits all
paths alike), after ``--warmup`` rounds:

- ``engine.search`` / ``await engine.asearch`` (direct, the baselines);
- LangChain ``retriever.invoke`` / ``await retriever.ainvoke``;
- LlamaIndex ``retriever.retrieve`` / ``await retriever.aretrieve``;
- Haystack ``component.run`` and ``Pipeline.run`` with the component alone.

Async paths are timed inside one running event loop (``await`` only, no loop start-up). The
table gives the median and p99 per call and the median of the per-query difference from the
matching direct call (sync paths and ``engine.asearch`` against ``engine.search``, async
adapter paths against ``engine.asearch``). Frameworks that are not installed are left out.

    python3 benchmarks/adapters.py                 # 300 queries x --rounds 2
    python3 benchmarks/adapters.py --json benchmarks/results/adapters.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hybrid import BM25Retriever, DenseRetriever, HybridRetriever, SpladeRetriever  # noqa: E402
from hybrid.data import read_documents, read_queries  # noqa: E402
from hybrid.encoders.dense import CallableEncoder  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


class LookupSparse:
    """A SPLADE "encoder" that returns precomputed query rows, looked up by query text."""

    def __init__(self, queries: dict[str, int], matrix: sp.csr_matrix) -> None:
        self.rows, self.matrix, self.dim = queries, matrix.tocsr(), matrix.shape[1]
        self.spec = {"type": "lookup"}

    def encode_queries(self, texts: list[str]) -> sp.csr_matrix:
        return self.matrix[[self.rows[t] for t in texts]]

    def encode_documents(self, texts: list[str]):  # documents come precomputed (encoded=)
        raise NotImplementedError("documents are added with encoded=")

    def decode(self, ids):
        return [str(i) for i in ids]


def build_engine() -> tuple[HybridRetriever, list[str]]:
    enc = DATA / "scifact-encoded"
    doc_ids = json.loads((enc / "doc_ids.json").read_text())
    query_ids = json.loads((enc / "query_ids.json").read_text())
    docs = read_documents(DATA / "scifact" / "corpus.jsonl")
    by_id = {i: (t, m) for i, t, m in zip(docs.ids, docs.texts, docs.metadata, strict=True)}
    texts = [by_id[i][0] for i in doc_ids]
    metadata = [by_id[i][1] for i in doc_ids]  # SciFact's own (the title)
    all_queries = read_queries(DATA / "scifact" / "queries.jsonl")
    queries = [all_queries[q] for q in query_ids]
    rows = {q: i for i, q in enumerate(queries)}
    dense_q = np.load(enc / "minilm_queries.npy")
    splade_q = sp.load_npz(enc / "splade_queries.npz")

    def dense(texts_: list[str]) -> np.ndarray:
        return dense_q[[rows[t] for t in texts_]]

    engine = HybridRetriever(
        {
            "splade": SpladeRetriever(LookupSparse(rows, splade_q)),
            "dense": DenseRetriever(CallableEncoder(dense, name="minilm-lookup", dim=384)),
            "bm25": BM25Retriever("english"),
        },
        parallel=False,
    )
    engine.add(
        texts,
        ids=doc_ids,
        metadata=metadata,
        encoded={
            "splade": sp.load_npz(enc / "splade_docs.npz"),
            "dense": np.load(enc / "minilm_docs.npy"),
        },
    )
    return engine, queries


def paths(engine: HybridRetriever, k: int) -> tuple[dict[str, Callable], dict[str, Callable]]:
    """name -> sync callable(query), name -> async callable(query); the adapters installed."""
    sync: dict[str, Callable] = {"engine.search": lambda q: engine.search(q, k=k)}
    aio: dict[str, Callable] = {"engine.asearch": lambda q: engine.asearch(q, k=k)}
    try:
        from hybrid.integrations.langchain import LangChainRetriever

        lc = LangChainRetriever(engine=engine, k=k)
        sync["LangChain invoke"] = lc.invoke
        aio["LangChain ainvoke"] = lc.ainvoke
    except ImportError as exc:
        print(f"skipping LangChain: {exc}", file=sys.stderr)
    try:
        from hybrid.integrations.llama_index import LlamaIndexRetriever

        li = LlamaIndexRetriever(engine, similarity_top_k=k)
        sync["LlamaIndex retrieve"] = li.retrieve
        aio["LlamaIndex aretrieve"] = li.aretrieve
    except ImportError as exc:
        print(f"skipping LlamaIndex: {exc}", file=sys.stderr)
    try:
        from haystack import Pipeline

        from hybrid.integrations.haystack import HaystackRetriever

        hs = HaystackRetriever(engine, top_k=k)
        pipe = Pipeline()
        pipe.add_component("retriever", HaystackRetriever(engine, top_k=k))
        sync["Haystack run"] = lambda q: hs.run(q)
        sync["Haystack Pipeline.run"] = lambda q: pipe.run({"retriever": {"query": q}})
        aio["Haystack run_async"] = lambda q: hs.run_async(q)
    except ImportError as exc:
        print(f"skipping Haystack: {exc}", file=sys.stderr)
    return sync, aio


def measure(sync, aio, queries, rounds: int, warmup: int) -> dict[str, np.ndarray]:
    names = list(sync) + list(aio)
    times: dict[str, list[float]] = {n: [] for n in names}

    async def run_all() -> None:
        for r in range(warmup + rounds):
            for i, q in enumerate(queries):
                shift = (i + r) % len(names)
                for name in names[shift:] + names[:shift]:
                    start = time.perf_counter()
                    if name in sync:
                        sync[name](q)
                    else:
                        await aio[name](q)
                    if r >= warmup:
                        times[name].append(time.perf_counter() - start)

    asyncio.run(run_all())
    return {n: np.array(t) for n, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="passes over the 300 queries")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    t0 = time.perf_counter()
    engine, queries = build_engine()
    build_s = time.perf_counter() - t0
    sync, aio = paths(engine, args.k)
    for name, fn in {**sync}.items():  # every path returns the same ids as the engine
        if name.startswith("engine"):
            continue
        out = fn(queries[0])
        docs = out["retriever"]["documents"] if "Pipeline" in name else out
        docs = docs["documents"] if isinstance(docs, dict) else docs
        got = [getattr(d, "id", None) or d.node.id_ for d in docs]
        assert got == [str(h.id) for h in engine.search(queries[0], k=args.k)], name
    times = measure(sync, aio, queries, args.rounds, args.warmup)

    rows = []
    for name, t in times.items():
        twin = "engine.asearch" if name in aio and name != "engine.asearch" else "engine.search"
        base = times[twin]
        over = np.median(t - base) * 1e3
        rows.append(
            {
                "path": name,
                "calls": int(t.size),
                "median_ms": float(np.median(t) * 1e3),
                "p99_ms": float(np.quantile(t, 0.99) * 1e3),
                "overhead_median_ms": float(over),
                "overhead_vs": twin,
            }
        )
    print(
        f"SciFact {len(engine)} docs, {len(queries)} queries x {args.rounds} rounds, k={args.k}, "
        f"BM25 + SPLADE-tiny + MiniLM (precomputed vectors), adaptive fusion, parallel=False; "
        f"engine built in {build_s:.1f} s; Python {platform.python_version()}"
    )
    print("\n| path | calls | median ms | p99 ms | median paired overhead (ms) | vs |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['path']} | {r['calls']} | {r['median_ms']:.3f} | {r['p99_ms']:.3f} | "
            f"{r['overhead_median_ms']:+.3f} | {r['overhead_vs']} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "args": vars(args) | {"json": None}}))


if __name__ == "__main__":
    main()
