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

from default_fusion import nd  # noqa: E402
from quality import CACHE, DATA  # noqa: E402

from hybrid.engine.config import DEFAULT_CONFIG  # noqa: E402
from hybrid.engine.presets import offline_retrievers  # noqa: E402
from hybrid.eval import Dataset, cached_encode, load_dataset, retrieve_candidates  # noqa: E402
from hybrid.eval.candidates import content_hash  # noqa: E402

POOLS = (
    ("autorag-retrieval-ko", "news-dev-ko2en"),  # Korean answers, English distractors
    ("belebele-ko2en", "news-dev-en2ko"),  # English answers, Korean distractors
    ("news-dev-ko2en", "autorag-retrieval-ko"),  # English answers, Korean distractors
    ("news-dev-en2ko", "belebele-ko2en"),  # Korean answers, English distractors
)


def pool(query_set: str, distractor_set: str):
    """Candidates of ``query_set``'s queries over its documents and ``distractor_set``'s."""
    import scipy.sparse as sp

    parts = [load_dataset(DATA / name, "test") for name in (query_set, distractor_set)]
    own = parts[0]
    retrievers = offline_retrievers()
    docs: dict[str, list] = {n: [] for n in retrievers}
    for d in parts:
        for name, r in retrievers.items():
            docs[name].append(
                cached_encode(r, d.doc_texts, "documents", CACHE, d.fingerprint(), False, name)
            )
    q_texts = list(own.queries.values())
    key = content_hash(q_texts)
    queries = {
        name: cached_encode(r, q_texts, "queries", CACHE, key, False, name)
        for name, r in retrievers.items()
    }
    doc_enc = {
        "splade": sp.vstack(docs["splade"], format="csr"),
        "dense": np.vstack(docs["dense"]).astype(np.float32),
        "bm25": [t for part in docs["bm25"] for t in part],
    }
    data = Dataset(
        name="heldout-pool",
        doc_ids=[f"{d.name}:{i}" for d in parts for i in d.doc_ids],
        doc_texts=[t for d in parts for t in d.doc_texts],
        queries=own.queries,
        qrels={q: {f"{own.name}:{i}": v for i, v in r.items()} for q, r in own.qrels.items()},
        split=query_set,
    )
    cands = retrieve_candidates(
        retrievers,
        data,
        1000,
        cache_dir=CACHE,
        doc_encodings=doc_enc,
        query_encodings=queries,
        extra={"pooled": [query_set, distractor_set]},
        progress=False,
    )
    return data, cands


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
