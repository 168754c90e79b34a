"""Fast, deterministic stand-in encoders for engine tests that exercise writes and threads.

Texts are whitespace-separated words. The sparse encoder maps each word to a column by CRC32
(weight 1-2 by word length) plus column 0 with weight 3.0 in every vector, so every batch has
the same largest weight and the SPLADE index's quantisation step never depends on which
documents came first. The dense encoder sums fixed random vectors per word (FAISS ``Flat`` by
default, or any factory). BM25 uses the whitespace analyzer.
"""

from __future__ import annotations

import zlib
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from hybrid import BM25Retriever, DenseRetriever, HybridRetriever, SpladeRetriever
from hybrid.encoders import CallableEncoder

SPARSE_DIM = 512
DENSE_DIM = 16


def _crc(word: str) -> int:
    return zlib.crc32(word.encode("utf-8"))


class StandinSparseEncoder:
    """Bag of hashed words as a CSR row per text (see the module docstring)."""

    dim = SPARSE_DIM
    spec: ClassVar[dict[str, Any]] = {"type": "standin-sparse", "dim": SPARSE_DIM}

    def _encode(self, texts: list[str]) -> sp.csr_matrix:
        rows, cols, vals = [], [], []
        for i, text in enumerate(texts):
            rows.append(i)
            cols.append(0)
            vals.append(3.0)
            for word in set(text.split()):
                rows.append(i)
                cols.append(1 + _crc(word) % (SPARSE_DIM - 1))
                vals.append(1.0 + len(word) % 2)
        m = sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), SPARSE_DIM), dtype=np.float32)
        m.sum_duplicates()
        return m

    encode_documents = _encode
    encode_queries = _encode

    def decode(self, ids) -> list[str]:
        return [f"c{int(i)}" for i in ids]


def _dense(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), DENSE_DIM), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.split():
            rng = np.random.default_rng(_crc(word))
            out[i] += rng.standard_normal(DENSE_DIM).astype(np.float32)
    return out


def standin_engine(factory: str = "Flat", **options: Any) -> HybridRetriever:
    """An engine with SPLADE, dense and BM25 retrievers over the stand-in encoders."""
    return HybridRetriever(
        {
            "splade": SpladeRetriever(StandinSparseEncoder()),
            "dense": DenseRetriever(
                CallableEncoder(_dense, name="standin-dense", dim=DENSE_DIM, normalize=True),
                factory=factory,
            ),
            "bm25": BM25Retriever("whitespace"),
        },
        **options,
    )


def standin_encoders() -> dict[str, Any]:
    """The encoders to pass to ``HybridRetriever.load`` for a saved stand-in engine."""
    return {
        "splade": StandinSparseEncoder(),
        "dense": CallableEncoder(_dense, name="standin-dense", dim=DENSE_DIM, normalize=True),
    }
