"""Tiny engines from fast, deterministic stand-in encoders (hashing) for the tests of writes,
storage, threads and the server. Texts are whitespace-separated words.

Importable from subprocesses (the kill and corruption tests run writers and readers there).
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

DIM_SPARSE = 512
DIM_DENSE = 16


def _h(word: str) -> int:
    return zlib.crc32(word.encode("utf-8"))


class HashSplade:
    """SPLADE stand-in: each distinct word weighs 1-2 (by length) in one hashed column, and
    column 0 weighs 3.0 in every vector, so every batch has the same largest weight and the
    index's quantisation step never depends on which documents came first."""

    dim = DIM_SPARSE
    spec: ClassVar[dict[str, str]] = {"type": "splade", "model": "hash-standin"}

    def _encode(self, texts: list[str]) -> sp.csr_matrix:
        rows, cols, vals = [], [], []
        for i, text in enumerate(texts):
            rows.append(i)
            cols.append(0)
            vals.append(3.0)
            for word in set(text.lower().split()):
                rows.append(i)
                cols.append(1 + _h(word) % (DIM_SPARSE - 1))
                vals.append(1.0 + len(word) % 2)
        m = sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), DIM_SPARSE), dtype=np.float32)
        m.sum_duplicates()
        return m

    encode_documents = encode_queries = _encode

    def decode(self, ids: Any) -> list[str]:
        return [f"c{i}" for i in np.asarray(ids).tolist()]


def hash_dense(texts: list[str]) -> np.ndarray:
    """Dense stand-in: the sum of a fixed random vector per word (seeded by the word)."""
    out = np.zeros((len(texts), DIM_DENSE), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.lower().split():
            out[i] += np.random.default_rng(_h(word)).standard_normal(DIM_DENSE)
    return out


def encoders() -> dict[str, Any]:
    """What ``open``/``load`` need to rebuild the stand-in retrievers (BM25's whitespace
    analyzer is saved by name)."""
    from hybrid.encoders.dense import CallableEncoder

    return {
        "splade": HashSplade(),
        "dense": CallableEncoder(hash_dense, name="hash", dim=DIM_DENSE, normalize=True),
    }


def retrievers(dense_factory: str = "Flat") -> dict[str, Any]:
    """SPLADE, dense (FAISS ``dense_factory``) and BM25 retrievers over the stand-ins."""
    from hybrid.engine.retrievers import BM25Retriever, DenseRetriever, SpladeRetriever

    enc = encoders()
    return {
        "splade": SpladeRetriever(enc["splade"]),
        "dense": DenseRetriever(enc["dense"], factory=dense_factory),
        "bm25": BM25Retriever("whitespace"),
    }


def engine(path: Any = None, dense_factory: str = "Flat", **options: Any):
    """An engine over the stand-ins: in memory, or folder-backed at ``path``."""
    from hybrid import HybridRetriever

    return HybridRetriever(retrievers(dense_factory), path=path, **options)


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


def check_sample(engine: Any) -> None:
    """The dense retriever's vector sample holds exactly the live rows under its rate, with the
    vectors its index searches (unit length: the stand-in encoder normalises)."""
    from hybrid.engine.sample import sample_keys

    retriever = engine.retrievers["dense"]
    sample = retriever.vector_sample()
    assert sample is not None, "the dense retriever keeps no vector sample"
    live = retriever.index.live_ids()
    np.testing.assert_array_equal(sample.rows, live[sample_keys(live) < sample.rate])
    want = hash_dense([engine.store.texts[int(r)] for r in sample.rows])
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(sample.vectors, want, rtol=1e-5, atol=1e-6)


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


def write_v1(engine: Any, path: Path) -> None:
    """Write ``engine`` as a format-1 folder (``meta.json``, ``documents.jsonl``,
    ``retrievers/``), the layout ``save`` wrote before format 2: every file rewritten."""
    import json

    path.mkdir(parents=True)
    with open(path / "documents.jsonl", "w", encoding="utf-8") as f:
        for doc_id, text, m, live in zip(
            engine.store.ids,
            engine.store.texts,
            engine.store.metadata,
            engine.store.live,
            strict=True,
        ):
            row = {"id": doc_id, "text": text, "metadata": m, "live": live}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    for name, r in engine.retrievers.items():
        r.save(path / "retrievers" / name)
    (path / "meta.json").write_text(
        json.dumps(
            {
                "type": "HybridRetriever",
                "format_version": 1,
                "retrievers": engine.names,
                "config": engine.config.to_dict(),
                "preset": None,
            }
        )
    )
