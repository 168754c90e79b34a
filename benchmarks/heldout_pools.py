"""Held-out bilingual pools: each set's own documents plus another set's documents in the other
script as distractors, searched with the set's own queries (none of these pools was used to
design the fusion by strata). nDCG@10 of each retriever, of the default ``adaptive`` fusion,
and of ``adaptive`` with the scripts placed by dense's own scores (no per-script baselines).

    python3 benchmarks/heldout_pools.py

Needs the candidate and encoding caches of ``benchmarks/default_fusion.py`` (run it first).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from default_fusion import nd, pooled_candidates  # noqa: E402
from quality import DATA  # noqa: E402

from hybrid.engine.config import DEFAULT_CONFIG  # noqa: E402
from hybrid.eval import load_dataset  # noqa: E402

POOLS = (
    ("autorag-retrieval-ko", "news-dev-ko2en"),  # Korean answers, English distractors
    ("belebele-ko2en", "news-dev-en2ko"),  # English answers, Korean distractors
    ("news-dev-ko2en", "autorag-retrieval-ko"),  # English answers, Korean distractors
    ("news-dev-en2ko", "belebele-ko2en"),  # Korean answers, English distractors
)


def pool(query_set: str, distractor_set: str):
    """Candidates of ``query_set``'s queries over its documents and ``distractor_set``'s."""
    parts = [load_dataset(DATA / name, "test") for name in (query_set, distractor_set)]
    return pooled_candidates(parts, parts[0], "heldout-pool", [query_set, distractor_set])


def main() -> None:
    cols = ["bm25", "splade", "dense", "adaptive", "adaptive, no baselines"]
    print("| queries | distractors | docs | " + " | ".join(cols) + " |")
    print("|---|---|---:|" + "---:|" * len(cols))
    for query_set, distractor_set in POOLS:
        data, cands = pool(query_set, distractor_set)
        row = {n: float(np.nanmean(nd(cands, data.qrels, n))) for n in cands.names}
        row["adaptive"] = float(np.nanmean(nd(cands, data.qrels, DEFAULT_CONFIG)))
        strata = cands.strata
        cands.strata = dataclasses.replace(strata, baselines=None)
        row["adaptive, no baselines"] = float(np.nanmean(nd(cands, data.qrels, DEFAULT_CONFIG)))
        cands.strata = strata
        cells = " | ".join(f"{row[c]:.3f}" for c in cols)
        print(f"| {query_set} | {distractor_set} | {len(data.doc_ids):,} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
