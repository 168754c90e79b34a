"""Benchmark SparseIndex against the model card's dict index, scipy brute force and Seismic.

Data: the real SPLADE-tiny SciFact encodings (../shared/data/scifact-encoded) and synthetic
collections resampled from them (each document mixes two random real documents: A's non-zeros
kept with p=0.7, B's with p=0.3, weights x U(0.8, 1.2), a token in both keeps the larger weight).
Queries: the 300 real SciFact test queries, one at a time, single thread, k=10, query encoding
not included ("batch" runs all 300 in one call, still one thread); q/s are queries per CPU
second of the benchmark process. Memory is the size of each
structure's arrays (Python-object overhead of the dict index estimated per tuple). Seismic's
index is built with ``--seismic-build-threads`` threads (its single-thread build of 200,000
documents takes over 20 minutes here); its queries run on one thread like the others.

    python3 benchmarks/sparse.py --sizes 5183,200000,1000000 --synth-cache /tmp/s --json out.json
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "scifact-encoded"

from indexes.sparse import SparseIndex  # noqa: E402


def synthesize(docs: sp.csr_matrix, n: int, seed: int = 0, chunk: int = 100_000) -> sp.csr_matrix:
    """``n`` synthetic documents resampled from the rows of ``docs`` (see module docstring)."""
    rng = np.random.default_rng(seed)
    parts = []
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        rows, cols, vals = [], [], []
        for pick, p_keep in ((rng.integers(docs.shape[0], size=m), 0.7),
                             (rng.integers(docs.shape[0], size=m), 0.3)):
            sub = docs[pick]
            keep = rng.random(sub.nnz) < p_keep
            r = np.repeat(np.arange(m), np.diff(sub.indptr))
            rows.append(r[keep])
            cols.append(sub.indices[keep])
            vals.append(sub.data[keep] * rng.uniform(0.8, 1.2, keep.sum()).astype(np.float32))
        r, c, v = (np.concatenate(a) for a in (rows, cols, vals))
        key = r.astype(np.int64) * docs.shape[1] + c
        order = np.lexsort((-v, key))  # per (row, col) the largest weight first
        key, v = key[order], v[order]
        first = np.r_[True, key[1:] != key[:-1]]
        key, v = key[first], v[first]
        parts.append(sp.csr_matrix((v, (key // docs.shape[1], key % docs.shape[1])),
                                   shape=(m, docs.shape[1]), dtype=np.float32))
    return sp.vstack(parts, format="csr")


class DictIndex:
    """The model card's naive index: token -> list of (doc, weight); dict accumulation."""

    def __init__(self, docs: sp.csr_matrix, terms: set[int] | None = None) -> None:
        csc = docs.tocsc()
        self.postings: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for t in range(csc.shape[1]) if terms is None else sorted(terms):
            a, b = csc.indptr[t], csc.indptr[t + 1]
            if b > a:
                self.postings[t] = list(zip(csc.indices[a:b].tolist(), csc.data[a:b].tolist(),
                                             strict=True))
        self.n_postings = sum(len(v) for v in self.postings.values())

    def search(self, terms: list[int], weights: list[float], k: int):
        scores: dict[int, float] = defaultdict(float)
        for t, qw in zip(terms, weights, strict=True):
            for d, w in self.postings.get(t, ()):
                scores[d] += qw * w
        return heapq.nlargest(k, scores.items(), key=lambda x: x[1])


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def qps(fn, n: int, budget_s: float, min_s: float = 3.0) -> tuple[float, int]:
    """Queries per CPU-second of ``fn(i)``: the ``n`` queries, repeated until ``min_s`` seconds
    have passed, stopping early after about ``budget_s`` seconds; returns (rate, queries timed).

    CPU time of this process, not wall time: other jobs on a shared machine then slow each
    method only through the caches they share, not by taking the core away.
    """
    t0 = time.process_time()
    done = 0
    while True:
        fn(done % n)
        done += 1
        spent = time.process_time() - t0
        if spent > budget_s or (done >= n and spent > min_s):
            break
    return done / spent, done


def run_size(docs, queries, n_docs, args) -> dict:
    k = 10
    row: dict = {"n_docs": n_docs}
    t0 = time.perf_counter()
    cache = args.synth_cache and args.synth_cache / f"synth{n_docs}_seed{args.seed}.npz"
    if n_docs == docs.shape[0]:
        d = docs
    elif cache and cache.exists():
        d = sp.load_npz(cache).astype(np.float32)
    else:
        d = synthesize(docs, n_docs, seed=args.seed)
        if cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            sp.save_npz(cache, d, compressed=False)
    log(f"{n_docs}: collection ready ({d.nnz:,} non-zeros)")
    row["synth_s"] = round(time.perf_counter() - t0, 1)
    row["nnz"] = int(d.nnz)
    n_q = queries.shape[0]
    q_rows = [queries[i] for i in range(n_q)]

    # ours
    t0 = time.perf_counter()
    index = SparseIndex(threads=1)
    index.add(d)
    row["ours_build_s"] = round(time.perf_counter() - t0, 1)
    row["ours_mb"] = index.nbytes / 2**20
    row["ours_bytes_per_posting"] = index.bytes_per_posting
    index.search(q_rows[0], k)
    log(f"{n_docs}: ours built in {row['ours_build_s']} s")
    row["ours_qps"], _ = qps(lambda i: index.search(q_rows[i], k), n_q, args.budget)
    exact = index.search(queries, k)
    batches, _ = qps(lambda i: index.search(queries, k), 1, args.budget)
    row["ours_batch_qps"] = batches * n_q
    if args.threads > 1:
        t0 = time.perf_counter()
        index.search(queries, k, threads=args.threads)
        row[f"ours_batch_qps_{args.threads}t"] = n_q / (time.perf_counter() - t0)

    # quantisation error vs float32 brute force on the raw weights, on a query sample
    raw = (queries[:50] @ d.T).toarray()
    got = np.take_along_axis(raw, np.maximum(exact.ids[:50], 0), 1)
    row["quant_max_abs_err"] = float(np.abs(got - exact.scores[:50]).max())
    top_raw = -np.sort(-raw, axis=1)[:, :k]
    row["quant_recall10_vs_float"] = float(np.mean([
        len(set(exact.ids[i]) & set(np.argsort(-raw[i], kind="stable")[:k])) / k
        for i in range(raw.shape[0])
    ]))
    del raw, top_raw

    # scipy brute force: inverted matrix built once, then q @ D.T + argpartition
    dt = d.T.tocsr()
    row["scipy_mb"] = (dt.data.nbytes + dt.indices.nbytes + dt.indptr.nbytes) / 2**20

    def scipy_one(i):
        s = (q_rows[i] @ dt).toarray().ravel()
        top = np.argpartition(-s, k)[:k]
        return top[np.argsort(-s[top])]

    row["scipy_qps"], _ = qps(scipy_one, n_q, args.budget)
    log(f"{n_docs}: ours {row['ours_qps']:.0f} q/s, scipy {row['scipy_qps']:.0f} q/s")
    dt = None  # free it before the next peer

    # dict of postings (only the posting lists of the timed queries' terms are built)
    n_dict = n_q if n_docs <= 10_000 else args.dict_queries
    if n_docs <= args.dict_max_docs:
        terms = set(np.concatenate([q_rows[i].indices for i in range(n_dict)]).tolist())
        di = DictIndex(d, terms if n_docs > 10_000 else None)
        qt = [(q_rows[i].indices.tolist(), q_rows[i].data.tolist()) for i in range(n_dict)]
        row["dict_qps"], row["dict_queries"] = qps(lambda i: di.search(*qt[i], k), n_dict,
                                                  args.budget)
        row["dict_mb_est"] = (d.nnz * 150) / 2**20  # tuple + 2 boxed numbers + list slot
        del di

    if n_docs <= args.seismic_max_docs:
        log(f"{n_docs}: building Seismic")
        row.update(run_seismic(d, queries, exact.ids, k, args))
    return row


def run_seismic(d, queries, exact_ids, k, args) -> dict:
    import seismic
    from seismic import SeismicDataset, SeismicIndex

    out: dict = {}
    st = seismic.get_seismic_string()
    vocab = np.array([str(t) for t in range(d.shape[1])], dtype=st)
    t0 = time.perf_counter()
    ds = SeismicDataset()
    for i in range(d.shape[0]):
        a, b = d.indptr[i], d.indptr[i + 1]
        ds.add_document(str(i), vocab[d.indices[a:b]], d.data[a:b].astype(np.float32))
    index = SeismicIndex.build_from_dataset(ds, num_threads=args.seismic_build_threads)
    del ds
    out["seismic_build_s"] = round(time.perf_counter() - t0, 1)
    qs = [(vocab[queries[i].indices], queries[i].data.astype(np.float32))
          for i in range(queries.shape[0])]
    for cut, hf in ((10, 0.7), (20, 0.9), (40, 1.0)):
        got = []

        def one(i, cut=cut, hf=hf, got=got):
            res = index.search(str(i), qs[i][0], qs[i][1], k=k, query_cut=cut, heap_factor=hf)
            got.append([int(r[2]) for r in res])

        rate, n = qps(one, queries.shape[0], args.budget)
        rec = np.mean([len(set(got[i]) & set(exact_ids[i])) / k
                       for i in range(min(n, queries.shape[0]))])
        out[f"seismic_qps_cut{cut}_hf{hf}"] = rate
        out[f"seismic_recall10_cut{cut}_hf{hf}"] = float(rec)
    return out


def table(rows: list[dict]) -> str:
    lines = ["| docs | postings | ours q/s | ours batch q/s | ours MB | B/posting | scipy q/s | "
             "scipy MB | dict q/s | Seismic q/s @ recall@10 | ours/dict | ours/scipy |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        seis = ", ".join(
            f"{r[key]:.0f} @ {r[key.replace('qps', 'recall10')]:.3f}"
            for key in r if key.startswith("seismic_qps")
        ) or "-"
        dict_q = r.get("dict_qps")
        ratio = "-" if dict_q is None else f"{r['ours_qps'] / dict_q:.0f}x"
        lines.append(
            f"| {r['n_docs']:,} | {r['nnz']:,} | {r['ours_qps']:.0f} | "
            f"{r['ours_batch_qps']:.0f} | {r['ours_mb']:.0f} | "
            f"{r['ours_bytes_per_posting']:.2f} | {r['scipy_qps']:.0f} | {r['scipy_mb']:.0f} | "
            f"{'-' if dict_q is None else f'{dict_q:.1f}'} | {seis} | "
            f"{ratio} | "
            f"{r['ours_qps'] / r['scipy_qps']:.1f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5183,200000", help="comma-separated document counts")
    ap.add_argument("--json", type=Path, help="write the rows as JSON here")
    ap.add_argument("--budget", type=float, default=20.0, help="seconds per timed method")
    ap.add_argument("--dict-queries", type=int, default=10)
    ap.add_argument("--dict-max-docs", type=int, default=200_000)
    ap.add_argument("--threads", type=int, default=1, help="also time batch search with N threads")
    ap.add_argument("--seismic-max-docs", type=int, default=200_000,
                    help="skip Seismic above this size (its build is slow)")
    ap.add_argument("--seismic-build-threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1, help="seed of the synthetic collections")
    ap.add_argument("--synth-cache", type=Path, help="folder to save/load synthetic collections")
    args = ap.parse_args(argv)
    docs = sp.load_npz(DATA / "splade_docs.npz").astype(np.float32)
    queries = sp.load_npz(DATA / "splade_queries.npz").astype(np.float32)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        rows.append(run_size(docs, queries, n, args))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
