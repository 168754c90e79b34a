"""Filtered search benchmark: pre-filtered BM25, SPLADE and FAISS search against unfiltered
search, post-filtering, LanceDB (``.where(prefilter=True)``) and Qdrant local mode.

Every document gets a metadata field ``bucket``, uniform in 0..999; a filter
``{"bucket": {"$lt": t}}`` then allows a fraction t / 1000 of the collection: 0.1%, 1%, 10%,
50%. Collections, as in the other benchmarks (same generators):

- ``bm25``: SciFact's English-analysed corpus resampled to ``n`` documents
  (``benchmarks/bm25.py`` ``synthetic``), 300 SciFact test queries;
- ``splade``: SPLADE-tiny SciFact encodings resampled to ``n`` (``benchmarks/sparse.py``
  ``synthesize``), the 300 test queries;
- ``dense``: clustered unit vectors, 384-d unless ``--dim`` (``benchmarks/dense.py``
  ``synthetic``), Flat, HNSW32 (efSearch 64; ``filter_policy`` "auto", "graph", and the
  policy before it, emulated: exact up to 20,000 allowed, else the beam widened by live /
  allowed) and IVF (nprobe 16), 200 queries; filtered recall@10 against exact filtered
  search. Built HNSW/IVF indexes can be kept with ``--cache DIR``;
- ``peers``: one collection of ``n`` documents with BM25 text (the bm25 tokens, joined) and a
  dense vector, searched by this engine (BM25 + Flat, RRF, ``search(filter=)``) and by LanceDB
  (FTS, exact vector search, hybrid with RRF, ``.where("bucket < t", prefilter=True)``, scalar
  index on bucket), by Qdrant local mode (dense, payload filter) and by Qdrant Edge
  (``qdrant-edge-py``, Qdrant's engine in-process: BM25 sparse + exact dense, RRF, payload
  index, one search thread; skipped if not installed); ``--engines`` picks which, built once
  each and searched in turn (run them in separate processes to keep one in memory at a time).

Timings: one query at a time, single thread (NUMBA/OMP/BLAS threads 1), query encoding
excluded, CPU seconds of this process for our indexes (``qps``), wall time for the peers (their
work may run in other threads). "hits" is the mean number of hits per query at k=10;
"post-filter hits" is what filtering the unfiltered top-10 afterwards would return. Peers:
"queries" is how many distinct queries the hit counts are from, "timed runs" how many searches
the q/s is from (slow peers: ``--lancedb-queries``, ``--qdrant-queries`` and ``--max-s`` bound
them; Qdrant local mode is a brute force in Python, seconds per query at 1M).

    nice -n 10 python3 benchmarks/filters.py bm25 --n 200000 1000000
    nice -n 10 python3 benchmarks/filters.py dense --n 200000
    nice -n 10 python3 benchmarks/filters.py dense --n 1000000 --dim 128 --hnsw-m 16 \
        --ef-construction 20 --cache /tmp/dense-cache --dense-queries 100 --budget 3
    nice -n 10 python3 benchmarks/filters.py peers --n 200000
    for e in ours lancedb qdrant qdrant-edge; do nice -n 10 python3 benchmarks/filters.py peers \
        --n 1000000 --engines $e --lancedb-queries 20 --qdrant-queries 5 --max-s 90; done
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hybrid.engine.filters import MetadataIndex  # noqa: E402
from indexes import BM25Index, DenseIndex, SparseIndex  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SELECTIVITY = [0.001, 0.01, 0.1, 0.5]
K = 10


def _bench(name: str):
    """A sibling benchmark module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", ROOT / "benchmarks" / f"{name}.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def log(msg: str) -> None:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"[{time.strftime('%H:%M:%S')} peak {rss:.1f} GB] {msg}", file=sys.stderr, flush=True)


def qps(fn, n: int, budget_s: float, min_s: float = 2.0, clock=time.process_time) -> float:
    """Queries per second of ``fn(i)`` over the ``n`` queries, repeated for at least ``min_s``
    seconds, stopping after about ``budget_s``."""
    fn(0)
    t0 = clock()
    done = 0
    while True:
        fn(done % n)
        done += 1
        spent = clock() - t0
        if spent > budget_s or (done >= n and spent > min_s):
            return done / spent


def buckets(n: int, seed: int = 123) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1000, n)


def metadata_index(bucket: np.ndarray, row: dict) -> MetadataIndex:
    """The engine's metadata index over ``{"bucket": b}``; times its build and one filter."""
    t0 = time.perf_counter()
    index = MetadataIndex()
    index.append({"bucket": int(b)} for b in bucket.tolist())
    row["meta_index_build_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    index.mask({"bucket": {"$lt": 100}})
    row["filter_eval_ms"] = round(1000 * (time.perf_counter() - t0), 2)
    t0 = time.perf_counter()
    index.mask({"bucket": {"$lt": 100}})
    row["filter_cached_us"] = round(1e6 * (time.perf_counter() - t0), 1)
    return index


def spec_of(s: float) -> dict:
    return {"bucket": {"$lt": round(s * 1000)}}


def run_lexical(kind: str, n: int, args) -> list[dict]:
    """BM25 or SPLADE: unfiltered and filtered QPS, hits, post-filter hits."""
    t0 = time.perf_counter()
    if kind == "bm25":
        bm = _bench("bm25")
        _, corpus, _, queries, _ = bm.load_beir(DATA / "scifact")
        an = bm.get_analyzer("english")
        base = an.analyze_batch(corpus, progress=False)
        q_all = an.analyze_batch(queries, progress=False)
        index = BM25Index()
        for i, start in enumerate(range(0, n, 100_000)):
            index.add(bm.synthetic(base, min(100_000, n - start), seed=i))
        index.search(q_all[:1], K)  # build the postings
        queries_at = [[q] for q in q_all]
    else:
        import scipy.sparse as sp

        spm = _bench("sparse")
        docs = sp.load_npz(DATA / "scifact-encoded" / "splade_docs.npz").astype(np.float32)
        qm = sp.load_npz(DATA / "scifact-encoded" / "splade_queries.npz").astype(np.float32)
        index = SparseIndex(threads=1)
        for i, start in enumerate(range(0, n, 100_000)):
            index.add(spm.synthesize(docs, min(100_000, n - start), seed=i))
        queries_at = [qm[i] for i in range(qm.shape[0])]
    gc.collect()
    log(f"{kind} {n}: built in {time.perf_counter() - t0:.0f}s")
    row0: dict = {"part": kind, "n": n}
    meta = metadata_index(buckets(n), row0)
    n_q = len(queries_at)
    unfiltered = [index.search(queries_at[i], K) for i in range(n_q)]
    base_qps = qps(lambda i: index.search(queries_at[i], K), n_q, args.budget)
    rows = [{**row0, "filter": "none", "qps": base_qps, "hits": _hits(unfiltered)}]
    for s in SELECTIVITY:
        allowed = meta.mask(spec_of(s))
        got = [index.search(queries_at[i], K, allowed=allowed) for i in range(n_q)]
        post = np.mean([(allowed[r.ids[0][r.ids[0] >= 0]]).sum() for r in unfiltered])
        rate = qps(lambda i, a=allowed: index.search(queries_at[i], K, allowed=a), n_q, args.budget)
        rows.append(
            {
                **row0,
                "filter": f"{s:.1%}",
                "qps": rate,
                "vs unfiltered": rate / base_qps,
                "hits": _hits(got),
                "post-filter hits": float(post),
            }
        )
        log(json.dumps(rows[-1]))
    return rows


def _hits(results) -> float:
    return float(np.mean([(r.ids >= 0).sum() / r.ids.shape[0] for r in results]))


def _key(kind: str, args) -> str:
    return f"hnsw{args.hnsw_m}-efc{args.ef_construction}" if kind == "hnsw32" else kind


def _built(kind: str, n: int, args, build) -> DenseIndex:
    """``build()``, or the index saved by an earlier run under ``--cache`` (built indexes are
    kept there: an HNSW at 1M takes many minutes on two cores)."""
    path = None if args.cache is None else args.cache / f"{_key(kind, args)}-{n}-{args.dim}"
    if path is not None and (path / "meta.json").is_file():
        index = DenseIndex.load(path, threads=1)
        log(f"dense {n}: {kind} loaded from {path}")
        return index
    t0 = time.perf_counter()
    index = build()
    log(f"dense {n}: {kind} built in {time.perf_counter() - t0:.0f}s")
    if path is not None:
        index.save(path)
    return index


def run_dense(n: int, args) -> list[dict]:
    """Flat, HNSW and IVF, one index in memory at a time (1M x 384 float32 is 1.5 GB each)."""
    dm = _bench("dense")
    dim = args.dim
    centres = np.random.default_rng(0).standard_normal((1000, dim), dtype=np.float32)
    x = dm.synthetic(n, centres, seed=1)
    q = dm.synthetic(args.dense_queries, centres, seed=2)
    row0: dict = {"n": n, "dim": dim}
    meta = metadata_index(buckets(n), row0)
    masks = {s: meta.mask(spec_of(s)) for s in SELECTIVITY}
    one = [q[i : i + 1] for i in range(q.shape[0])]
    flat: DenseIndex | None = None
    truth: dict = {}
    if not args.build_only:
        flat = DenseIndex(dim, factory="Flat", threads=1)
        flat.add(x)
        truth[None] = flat.search(q, K).ids
        for s in SELECTIVITY:
            truth[s] = flat.search(q, K, allowed=masks[s]).ids
        log(f"dense {n}: Flat built, exact filtered top-{K} taken")
    nlist = max(16, round(float(np.sqrt(n)) / 8) * 8)

    hnsw_name = f"HNSW{args.hnsw_m} ef64"

    def hnsw_build() -> DenseIndex:
        index = DenseIndex(dim, factory=f"HNSW{args.hnsw_m}", threads=2)
        index._hnsw().hnsw.efConstruction = args.ef_construction
        index.add(x)
        return index

    def ivf_build() -> DenseIndex:
        index = DenseIndex(dim, factory=f"IVF{nlist},Flat", threads=2)
        sample = np.random.default_rng(1).choice(n, size=min(n, 50_000), replace=False)
        index.train(x[np.sort(sample)])
        index.add(x)
        return index

    builds = {"hnsw32": hnsw_build, "ivf": ivf_build}
    cached = args.cache is not None and args.cache
    pending = [
        k
        for k in builds
        if k in args.indexes and not (cached and (args.cache / f"{k}-{n}").is_dir())
    ]
    if not pending:
        x = None
    rows: list[dict] = []
    for kind in ["flat", "hnsw32", "ivf"]:
        if kind not in args.indexes:
            continue
        if kind == "flat":
            if flat is not None:
                rows += _dense_rows(flat, "Flat", None, masks, truth, q, one, row0, args)
            continue
        flat = None  # the truth is taken: free it before the next index
        gc.collect()
        index = _built(kind, n, args, builds[kind])
        if kind in pending:
            pending.remove(kind)
            if not pending:
                x = None
        if args.build_only:
            continue
        index.threads = 1
        if kind == "hnsw32":
            index.ef_search = 64
            runs = [
                (hnsw_name, "auto"),
                (f"{hnsw_name}, graph only", "graph"),
                (f"{hnsw_name}, exact only", "exact"),
                (f"{hnsw_name}, previous policy", "previous"),
            ]
        else:
            index.nprobe = 16
            runs = [(f"IVF{nlist},Flat nprobe16", None)]
        base = None  # the index's unfiltered q/s, from its first run
        for name, policy in runs:
            got = _dense_rows(index, name, policy, masks, truth, q, one, row0, args, base)
            base = got[0]["qps"] if base is None else base
            rows += got
        index = None
        gc.collect()
    return rows


def _dense_rows(index, name, policy, masks, truth, q, one, row0, args, base=None) -> list[dict]:
    """Unfiltered and filtered q/s, hits and recall@10 (against exact filtered search) of one
    index; ``policy`` "graph" forces HNSW's graph walk at every selectivity."""
    from indexes import _dense_filter as df

    saved = (df.WIDEN_EXPONENT, df.graph_step_cost, df.EXACT_FLOOR)
    if policy == "previous":  # exact up to 20,000 allowed, else the beam times live / allowed
        df.WIDEN_EXPONENT, df.graph_step_cost, df.EXACT_FLOOR = 1.0, lambda dim: 0.0, 20_000
    if policy is not None:
        index.filter_policy = "auto" if policy == "previous" else policy
    try:
        return _timed_rows(index, name, policy, masks, truth, q, one, row0, args, base)
    finally:
        df.WIDEN_EXPONENT, df.graph_step_cost, df.EXACT_FLOOR = saved


def _timed_rows(index, name, policy, masks, truth, q, one, row0, args, base) -> list[dict]:
    rows: list[dict] = []
    for s in [None, *SELECTIVITY] if policy in (None, "auto") else SELECTIVITY:
        allowed = None if s is None else masks[s]
        ids = index.search(q, K, allowed=allowed).ids
        rate = qps(
            lambda i, a=allowed, x=index: x.search(one[i], K, allowed=a), len(one), args.budget
        )
        base = rate if s is None else base
        rows.append(
            {
                "part": "dense",
                **row0,
                "index": name,
                "filter": "none" if s is None else f"{s:.1%}",
                "qps": rate,
                "vs unfiltered": None if base is None else rate / base,
                "hits": float((ids >= 0).sum(1).mean()),
                "recall@10": _recall(ids, truth[s]),
            }
        )
        log(json.dumps(rows[-1]))
    return rows


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    out = []
    for f, t in zip(found, truth, strict=True):
        t = t[t >= 0]
        if t.size:
            out.append(len(np.intersect1d(f[f >= 0], t)) / t.size)
    return float(np.mean(out))


# ------------------------------------------------------------------------------------- peers


PEERS = ["ours", "lancedb", "qdrant", "qdrant-edge"]


def measure(fn, nq: int, min_queries: int, budget_s: float, args, warm: bool = True) -> dict:
    """Hits and wall-clock q/s of ``fn(i)``: an untimed warm-up call (unless ``warm`` is
    false), then the queries in order, each run once for the hit count and again in turn until
    ``min_queries`` distinct queries ran and ``budget_s`` seconds passed (or all ``nq`` ran and
    one second passed); ``args.max_s`` cuts any row short, after at least one query."""
    if warm:
        fn(0)
    hits: list[int] = []
    done = 0
    t0 = time.perf_counter()
    while True:
        got = fn(done % nq)
        if done < nq:
            hits.append(len(got))
        done += 1
        spent = time.perf_counter() - t0
        if spent > args.max_s:
            break
        if len(hits) >= min(min_queries, nq) and (spent > budget_s or (done >= nq and spent > 1)):
            break
    return {
        "qps": done / spent,
        "hits": float(np.mean(hits)),
        "min hits": min(hits),
        "queries": len(hits),
        "timed runs": done,
    }


def _peer_row(n: int, engine: str, label: str, build_s: float, got: dict) -> dict:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    row = {"part": "peers", "n": n, "engine": engine, "filter": label, **got}
    row.update({"build s": round(build_s), "peak RSS GB": round(rss, 1)})
    log(json.dumps(row))
    return row


def _filters():
    """(label, selectivity) for no filter and each selectivity."""
    return [("none" if s is None else f"{s:.1%}", s) for s in [None, *SELECTIVITY]]


class Collection:
    """The peers' collection: document texts, vectors and buckets, queries. The last engine to
    run releases the documents once it holds its own copy (:meth:`release`)."""

    def __init__(self, n, texts, x, bucket, q_text, q_vec, token_chunks) -> None:
        self.n, self.texts, self.x, self.bucket = n, texts, x, bucket
        self.q_text, self.q_vec = q_text, q_vec
        self.token_chunks = token_chunks  # () -> the texts' tokens, 100,000 documents a time
        self.last = False

    def release(self) -> None:
        if self.last:
            self.texts = self.x = None
            gc.collect()


def run_peers(n: int, args) -> list[dict]:
    """One collection searched by each engine of ``args.engines`` in turn (one in memory at a
    time)."""
    bm, dm = _bench("bm25"), _bench("dense")
    _, corpus, _, queries, _ = bm.load_beir(DATA / "scifact")
    an = bm.get_analyzer("english")
    base = an.analyze_batch(corpus, progress=False)
    q_tok = an.analyze_batch(queries, progress=False)[: args.peer_queries]

    def token_chunks():
        return bm.synthetic_chunks(base, n, seed=0)

    texts = [" ".join(t) for c in token_chunks() for t in c]
    q_text = [" ".join(t) for t in q_tok]
    centres = np.random.default_rng(0).standard_normal((1000, 384), dtype=np.float32)
    x = dm.synthetic(n, centres, seed=1)
    q_vec = dm.synthetic(len(q_text), centres, seed=2)
    bucket = buckets(n)
    log(f"peers {n}: data ready")
    runs = {"ours": _ours, "lancedb": _lancedb, "qdrant": _qdrant, "qdrant-edge": _qdrant_edge}
    col = Collection(n, texts, x, bucket, q_text, q_vec, token_chunks)
    del texts, x
    rows: list[dict] = []
    for j, name in enumerate(args.engines):
        col.last = j == len(args.engines) - 1
        rows += runs[name](col, args)
        gc.collect()
    return rows


def _built_row(n: int, engine: str, build_s: float) -> list[dict]:
    """``--build-only``: the build time and peak memory, no searches."""
    return [_peer_row(n, engine, "(build only)", build_s, {})]


def _ours(col: Collection, args) -> list[dict]:
    from hybrid.engine import HybridRetriever
    from hybrid.engine.retrievers import BM25Retriever, DenseRetriever

    class Lookup:
        dim, metric, name, spec = 384, "ip", "lookup", {"type": "lookup"}

        def encode_queries(self, texts):
            return q_vec[[q_text.index(t) for t in texts]]

        encode_documents = encode_queries

    t0 = time.perf_counter()
    engine = HybridRetriever(
        {"bm25": BM25Retriever("whitespace"), "dense": DenseRetriever(Lookup())},
        fusion="rrf",
        parallel=False,
    )
    n, q_text, q_vec = col.n, col.q_text, col.q_vec
    # in parts (the engine encodes a whole call before indexing), with the tokens the texts were
    # joined from as the BM25 encoding: the same tokens the whitespace analyzer would give, but
    # sharing their strings (the index holds every token list until its first search)
    for a, tokens in zip(range(0, n, 100_000), col.token_chunks(), strict=True):
        b = a + len(tokens)
        assert " ".join(tokens[-1]) == col.texts[b - 1]
        meta = [{"bucket": int(v)} for v in col.bucket[a:b].tolist()]
        encoded = {"dense": col.x[a:b], "bm25": tokens}
        engine.add(col.texts[a:b], metadata=meta, encoded=encoded)
    col.release()
    engine.retrievers["dense"].index.threads = 1
    engine.search(q_text[0], k=K)  # builds the BM25 postings
    build_s = time.perf_counter() - t0
    log(f"peers {n}: engine built in {build_s:.0f}s")
    if args.build_only:
        return _built_row(n, "ours", build_s)
    rows = []
    nq = len(q_text)
    for label, s in _filters():
        flt = None if s is None else spec_of(s)

        def ours(i, f=flt):
            return engine.search(q_text[i], k=K, filter=f)

        def ours_bm25(i, f=flt):
            return engine.search(q_text[i], k=K, filter=f, weights={"dense": 0})

        for name, fn in [("ours: BM25 + Flat, RRF", ours), ("ours: BM25", ours_bm25)]:
            rows.append(_peer_row(n, name, label, build_s, measure(fn, nq, nq, args.budget, args)))
    return rows


def _lancedb(col: Collection, args) -> list[dict]:
    import shutil

    import lancedb
    import pyarrow as pa

    n = col.n
    folder = tempfile.mkdtemp(prefix="lancedb-bench-")
    try:
        db = lancedb.connect(folder)
        table = pa.table(
            {
                "id": pa.array(np.arange(n)),
                "text": pa.array(col.texts),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(col.x.ravel()), 384),
                "bucket": pa.array(col.bucket),
            }
        )
        col.release()
        t0 = time.perf_counter()
        tbl = db.create_table("docs", data=table, mode="overwrite")
        del table
        tbl.create_fts_index("text", replace=True)
        tbl.create_scalar_index("bucket")
        build_s = time.perf_counter() - t0
        log(f"lancedb {n}: built in {build_s:.0f}s")
        if args.build_only:
            return _built_row(n, "LanceDB", build_s)
        return _lancedb_rows(tbl, col.q_text, col.q_vec, n, build_s, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _lancedb_rows(tbl, q_text, q_vec, n, build_s, args) -> list[dict]:
    rows = []
    nq = len(q_text)
    for label, s in _filters():
        where = None if s is None else f"bucket < {round(s * 1000)}"

        def fts(i, w=where):
            b = tbl.search(q_text[i], query_type="fts", fts_columns="text")
            return (b.where(w, prefilter=True) if w else b).limit(K).to_list()

        def vec(i, w=where):
            b = tbl.search(q_vec[i], vector_column_name="vector").metric("dot")
            return (b.where(w, prefilter=True) if w else b).limit(K).to_list()

        def hyb(i, w=where):
            b = tbl.search(query_type="hybrid").vector(q_vec[i]).text(q_text[i])
            return (b.where(w, prefilter=True) if w else b).limit(K).to_list()

        for name, fn in [
            ("LanceDB: FTS", fts),
            ("LanceDB: vector (exact)", vec),
            ("LanceDB: hybrid (RRF)", hyb),
        ]:
            try:
                got = measure(fn, nq, args.lancedb_queries, args.budget / 2, args)
            except Exception as exc:  # report, keep going
                log(f"{name} {label}: {type(exc).__name__}: {exc}")
                got = {"qps": float("nan"), "hits": float("nan")}
            rows.append(_peer_row(n, name, label, build_s, got))
    return rows


def _qdrant(col: Collection, args) -> list[dict]:
    from qdrant_client import QdrantClient, models

    n, x, bucket, q_vec = col.n, col.x, col.bucket, col.q_vec
    client = QdrantClient(":memory:")
    client.create_collection(
        "docs", vectors_config=models.VectorParams(size=384, distance=models.Distance.DOT)
    )
    t0 = time.perf_counter()
    for start in range(0, n, 10_000):
        end = min(n, start + 10_000)
        client.upload_collection(
            "docs",
            vectors=x[start:end],
            payload=[{"bucket": int(b)} for b in bucket[start:end].tolist()],
            ids=list(range(start, end)),
        )
    client.create_payload_index("docs", "bucket", models.PayloadSchemaType.INTEGER)
    build_s = time.perf_counter() - t0
    x = None
    col.release()
    log(f"qdrant local {n}: built in {build_s:.0f}s")
    if args.build_only:
        return _built_row(n, "Qdrant local", build_s)
    rows = []
    nq = len(q_vec)
    for label, s in _filters():
        flt = None
        if s is not None:
            cond = models.FieldCondition(key="bucket", range=models.Range(lt=round(s * 1000)))
            flt = models.Filter(must=[cond])

        def one(i, f=flt):
            return client.query_points("docs", query=q_vec[i], query_filter=f, limit=K).points

        # a brute force in Python: no warm-up to amortise, every query counts
        got = measure(one, nq, args.qdrant_queries, args.budget / 2, args, warm=False)
        rows.append(_peer_row(n, "Qdrant local: dense", label, build_s, got))
    return rows


def _qdrant_edge(col: Collection, args) -> list[dict]:
    """Qdrant Edge (``qdrant-edge-py``: Qdrant's Rust engine in-process, one search thread):
    named vectors ``dense`` (dot, searched exactly, no HNSW graph: m=0) and ``bm25`` (sparse,
    its own BM25 embedding of the same tokens, IDF modifier), an integer payload index on
    ``bucket``; hybrid = two prefetches of 100 (as our engine's depth) fused by RRF k=60."""
    import shutil

    try:
        import qdrant_edge as qe
    except ImportError:
        log("Qdrant Edge skipped: pip install qdrant-edge-py (or 'splade-hybrid[bench]')")
        return []
    n, texts, x, bucket = col.n, col.texts, col.x, col.bucket
    avg_len = float(np.mean([t.count(" ") + 1 for t in texts]))
    bm25 = qe.Bm25(
        qe.Bm25Config(
            k=1.2,
            b=0.75,
            avg_len=avg_len,
            tokenizer=qe.TokenizerType.Whitespace,
            lowercase=False,
            stemmer=qe.DisabledStemmer(),
            stopwords=qe.StopwordsSet(custom=set()),
        )
    )
    config = qe.EdgeConfig(
        vectors={"dense": qe.EdgeVectorParams(size=384, distance=qe.Distance.Dot)},
        sparse_vectors={"bm25": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        hnsw_config=qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10_000),
        max_search_threads=1,
        wal_enabled=False,
    )
    folder = tempfile.mkdtemp(prefix="qdrant-edge-bench-")
    shard = qe.EdgeShard.create(folder, config)
    try:
        t0 = time.perf_counter()
        shard.update(qe.UpdateOperation.create_field_index("bucket", qe.PayloadSchemaType.Integer))
        for start in range(0, n, 2_000):
            points = [
                qe.Point(
                    i,
                    {"dense": x[i].tolist(), "bm25": bm25.embed_document(texts[i])},
                    {"bucket": int(bucket[i])},
                )
                for i in range(start, min(n, start + 2_000))
            ]
            shard.update(qe.UpdateOperation.upsert_points(points))
        texts = x = None
        col.release()
        shard.optimize()
        shard.flush()
        build_s = time.perf_counter() - t0
        info = shard.info()
        log(f"qdrant edge {n}: built in {build_s:.0f}s, {info.segments_count} segments")
        if args.build_only:
            return _built_row(n, "Qdrant Edge", build_s)
        return _edge_rows(qe, shard, bm25, col.q_text, col.q_vec, n, build_s, args)
    finally:
        shard.close()
        shutil.rmtree(folder, ignore_errors=True)


def _edge_rows(qe, shard, bm25, q_text, q_vec, n, build_s, args) -> list[dict]:
    exact = qe.SearchParams(exact=True)
    rows = []
    nq = len(q_text)
    for label, s in _filters():
        flt = None
        if s is not None:
            cond = qe.FieldCondition(key="bucket", range=qe.RangeFloat(lt=float(round(s * 1000))))
            flt = qe.Filter(must=[cond])

        def dense_query(i, f=flt):
            vec = qe.Query.Nearest(q_vec[i].tolist(), using="dense")
            return qe.Prefetch(limit=100, query=vec, params=exact, filter=f)

        def bm25_query(i, f=flt):
            return qe.Prefetch(
                limit=100,
                query=qe.Query.Nearest(bm25.embed_query(q_text[i]), using="bm25"),
                filter=f,
            )

        def dense(i, f=flt):
            vec = qe.Query.Nearest(q_vec[i].tolist(), using="dense")
            return shard.query(qe.QueryRequest(limit=K, query=vec, filter=f, params=exact))

        def sparse(i, f=flt):
            vec = qe.Query.Nearest(bm25.embed_query(q_text[i]), using="bm25")
            return shard.query(qe.QueryRequest(limit=K, query=vec, filter=f))

        def hybrid(i, f=flt):
            fetch = [dense_query(i), bm25_query(i)]
            rrf = qe.Fusion.Rrf(k=60)
            return shard.query(qe.QueryRequest(limit=K, prefetches=fetch, query=rrf, filter=f))

        for name, fn in [
            ("Qdrant Edge: BM25", sparse),
            ("Qdrant Edge: dense (exact)", dense),
            ("Qdrant Edge: hybrid (RRF)", hybrid),
        ]:
            rows.append(_peer_row(n, name, label, build_s, measure(fn, nq, nq, args.budget, args)))
    return rows


# ------------------------------------------------------------------------------------- output


def markdown(rows: list[dict]) -> str:
    cols = [c for c in dict.fromkeys(k for r in rows for k in r) if c != "part"]

    def fmt(v):
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
        return str(v)

    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=["bm25", "splade", "dense", "peers"])
    ap.add_argument("--n", type=int, nargs="+", default=[200_000])
    ap.add_argument("--budget", type=float, default=6.0, help="seconds per timed method")
    ap.add_argument(
        "--engines", nargs="+", choices=PEERS, default=PEERS, help="peers: which engines, in turn"
    )
    ap.add_argument("--peer-queries", type=int, default=100, help="peers: queries (ours: all)")
    ap.add_argument("--lancedb-queries", type=int, default=50, help="peers: LanceDB, at least")
    ap.add_argument("--qdrant-queries", type=int, default=20, help="peers: Qdrant, at least")
    ap.add_argument(
        "--max-s", type=float, default=float("inf"), help="peers: cut a row short after this"
    )
    ap.add_argument("--json", type=Path, help="append rows as JSON lines here")
    ap.add_argument("--cache", type=Path, help="dense: keep built HNSW/IVF indexes here")
    ap.add_argument(
        "--indexes", nargs="+", default=["flat", "hnsw32", "ivf"], help="dense: which indexes"
    )
    ap.add_argument("--dense-queries", type=int, default=200)
    ap.add_argument("--dim", type=int, default=384, help="dense: vector dimension")
    ap.add_argument("--hnsw-m", type=int, default=32, help="dense: HNSW links per node (M)")
    ap.add_argument("--ef-construction", type=int, default=40, help="dense: HNSW build beam")
    ap.add_argument(
        "--build-only",
        action="store_true",
        help="dense: build and cache, no timing; peers: build, no searches",
    )
    args = ap.parse_args(argv)
    for n in args.n:
        if args.part in ("bm25", "splade"):
            rows = run_lexical(args.part, n, args)
        elif args.part == "dense":
            rows = run_dense(n, args)
        else:
            rows = run_peers(n, args)
        print(f"\n### {args.part}, {n:,} documents (k={K}, one query at a time, 1 thread)\n")
        print(markdown(rows), flush=True)
        if args.json:
            with args.json.open("a") as f:
                for r in rows:
                    f.write(json.dumps(r) + "\n")
        gc.collect()


if __name__ == "__main__":
    main()
