"""Tiny engines from fast, deterministic stand-in encoders (hashing), for storage tests.

Importable from subprocesses (the kill and corruption tests run writers and readers there).
"""

from __future__ import annotations

import zlib
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

DIM_SPARSE = 64
DIM_DENSE = 8


def _h(word: str) -> int:
    return zlib.crc32(word.encode("utf-8"))


class HashSplade:
    """SPLADE stand-in: each word adds weight to one hashed column."""

    dim = DIM_SPARSE
    spec: ClassVar[dict[str, str]] = {"type": "splade", "model": "hash-standin"}

    def _encode(self, texts: list[str]) -> sp.csr_matrix:
        rows, cols, vals = [], [], []
        for i, text in enumerate(texts):
            for word in text.lower().split():
                rows.append(i)
                cols.append(_h(word) % DIM_SPARSE)
                vals.append(1.0 + (_h(word + "#") % 7) / 7.0)
        m = sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), DIM_SPARSE), dtype=np.float32)
        m.sum_duplicates()
        return m

    encode_documents = encode_queries = _encode

    def decode(self, ids: Any) -> list[str]:
        return [f"c{i}" for i in np.asarray(ids).tolist()]


def hash_dense(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), DIM_DENSE), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.lower().split():
            out[i, _h(word) % DIM_DENSE] += 1.0
        out[i, -1] += 0.5
    return out


def encoders() -> dict[str, Any]:
    """What ``open``/``load`` need to rebuild the stand-in retrievers."""
    from hybrid.encoders.dense import CallableEncoder

    return {
        "splade": HashSplade(),
        "dense": CallableEncoder(hash_dense, name="hash", dim=DIM_DENSE),
        "bm25": str.split,
    }


def retrievers(dense_factory: str = "Flat") -> dict[str, Any]:
    from hybrid.engine.retrievers import BM25Retriever, DenseRetriever, SpladeRetriever

    enc = encoders()
    return {
        "splade": SpladeRetriever(enc["splade"]),
        "dense": DenseRetriever(enc["dense"], factory=dense_factory),
        "bm25": BM25Retriever(enc["bm25"]),
    }


def engine(path: Any = None, **options: Any):
    from hybrid import HybridRetriever

    return HybridRetriever(retrievers(), path=path, **options)


WORDS = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi "
    "rho sigma tau upsilon phi chi psi omega satellite orbit image radar"
).split()


def docs(n: int, seed: int, prefix: str = "d") -> tuple[list[str], list[str], list[dict]]:
    """``n`` random documents: texts, ids ``prefix + number`` and metadata."""
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 12)))) for _ in range(n)]
    ids = [f"{prefix}{seed}-{i}" for i in range(n)]
    meta = [{"seed": seed, "i": i, "tags": [WORDS[i % len(WORDS)]]} for i in range(n)]
    return texts, ids, meta


QUERIES = ["alpha beta", "satellite image radar", "omega psi chi", "gamma", "tau sigma rho pi"]


def state(engine: Any) -> dict[str, Any]:
    """Everything a test compares: ids, texts, metadata and search results."""
    ids = engine.ids()
    rows = engine.store.rows_of(ids) if ids else []
    hits = engine.search(QUERIES, k=5) if ids else [[] for _ in QUERIES]
    return {
        "ids": ids,
        "texts": [engine.store.texts[int(r)] for r in rows],
        "metadata": [engine.store.metadata[int(r)] for r in rows],
        "hits": [[(h.id, round(h.score, 5)) for h in q] for q in hits],
    }


def processes():
    """A multiprocessing context whose children fork from a clean server process (no OpenMP
    team, no open database), with the engine's modules already imported: fast to start."""
    import multiprocessing as mp

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(
        [
            "tests._standins",
            "hybrid.engine",
            "hybrid.engine.retrievers",
            "indexes.bm25",
            "indexes.sparse",
            "indexes.dense",
            "faiss",
            "scipy.sparse",
        ]
    )
    return ctx
