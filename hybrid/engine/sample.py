"""A uniform sample of a dense index's vectors, kept through adds and deletes, for the mean
similarity of a query to each script's documents.

A multilingual dense model scores a document in the query's own language higher than its
translation: part of every similarity is the language, not the meaning. The mean similarity of
a query to the documents of one script measures that part for this query and collection
(:mod:`hybrid.engine.strata` removes it before it lets the dense ranking place the scripts).
The mean over all documents of a script is the query's dot product with their centroid, and a
uniform sample estimates the centroid well with a few thousand vectors (a query's similarities
to one script's documents spread by about 0.02, so 100 sampled vectors put its mean within
0.002).

The sample is a Bernoulli sample with a deterministic key per internal id: row ``i`` is in it
while ``key(i) < rate``. Deleting a row drops it, which keeps the sample uniform over the live
rows without reading any vector back from the index; when adds grow it past ``2 * target`` rows
the rate halves and the rows above it leave. Arrays are replaced, never changed in place, so a
copy (the undo point of a write) shares them safely. Up to ``2 * target`` documents every vector
is in the sample and the centroids are exact; beyond, two engines holding the same documents
under other internal ids (one rebuilt from the survivors of another) estimate them from
different samples, which can move a baseline in its last digits.
"""

from __future__ import annotations

from pathlib import Path
from zipfile import BadZipFile

import numpy as np

from hybrid.engine.npz import write_npz

__all__ = ["SAMPLE_TARGET", "VectorSample", "sample_keys"]

SAMPLE_TARGET = 2048
"""The sample keeps between this many and twice as many vectors, once the collection has them."""


def sample_keys(rows: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random key in [0, 1) per internal id (SplitMix64's finaliser)."""
    z = np.asarray(rows, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class VectorSample:
    """Sampled vectors (as the index searches them) of a dense retriever's documents.

    ``rows``: ``(m,)`` internal ids, increasing; ``vectors``: ``(m, dim)`` float32; ``rate``:
    the sampling rate (row ``i`` is sampled while :func:`sample_keys` of ``i`` is below it);
    ``n_rows``: ids assigned so far (the next add must start there).
    """

    def __init__(self, dim: int, target: int = SAMPLE_TARGET) -> None:
        self.dim = int(dim)
        self.target = int(target)
        self.rate = 1.0
        self.n_rows = 0
        self.rows = np.zeros(0, dtype=np.int64)
        self.vectors = np.zeros((0, self.dim), dtype=np.float32)
        self._cache: tuple | None = None

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def copy(self) -> VectorSample:
        """An independent copy (writes replace the arrays, so they are shared safely)."""
        out = VectorSample(self.dim, self.target)
        out.rate, out.n_rows, out.rows, out.vectors = (
            self.rate,
            self.n_rows,
            self.rows,
            self.vectors,
        )
        return out

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Offer just-indexed documents: their ids (``n_rows`` onwards, in order) and vectors."""
        rows = np.asarray(rows, dtype=np.int64).ravel()
        if rows.size == 0:
            return
        vectors = np.asarray(vectors, dtype=np.float32).reshape(rows.size, self.dim)
        take = sample_keys(rows) < self.rate
        self.rows = np.concatenate([self.rows, rows[take]])
        self.vectors = np.concatenate([self.vectors, vectors[take]])
        self.n_rows = int(rows[-1]) + 1
        while len(self) > 2 * self.target:
            self.rate /= 2
            keep = sample_keys(self.rows) < self.rate
            self.rows, self.vectors = self.rows[keep], self.vectors[keep]

    def delete(self, rows: np.ndarray) -> None:
        """Drop deleted documents (ids not in the sample are ignored)."""
        gone = np.isin(self.rows, np.asarray(rows, dtype=np.int64).ravel())
        if gone.any():
            self.rows, self.vectors = self.rows[~gone], self.vectors[~gone]

    def centroids(self, doc_scripts: np.ndarray, n_codes: int) -> np.ndarray:
        """``(n_codes + 1, dim)`` float64: row ``c + 1`` the mean sampled vector of the documents
        with script code ``c`` (``doc_scripts``: code per internal id, ``-1`` for no letters);
        the mean of the whole sample for a code with no sampled document. Empty sample: zeros.
        Cached per state of the sample and of ``doc_scripts``."""
        key = (self.rows, doc_scripts, n_codes)
        cached = self._cache
        if cached is not None and all(a is b for a, b in zip(cached[0], key, strict=True)):
            return cached[1]
        out = np.zeros((n_codes + 1, self.dim))
        if len(self):
            vecs = self.vectors.astype(np.float64)
            known = self.rows < doc_scripts.shape[0]
            codes = np.full(self.rows.shape[0], -2, dtype=np.int64)
            codes[known] = doc_scripts[self.rows[known]]
            out[:] = vecs.mean(axis=0)
            for c in range(-1, n_codes):
                member = codes == c
                if member.any():
                    out[c + 1] = vecs[member].mean(axis=0)
        self._cache = (key, out)
        return out

    # -- persistence -----------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        return write_npz(
            path,
            kind=np.array("vector_sample"),
            meta=np.array([self.dim, self.target, self.n_rows], dtype=np.int64),
            rate=np.array([self.rate]),
            rows=self.rows,
            vectors=self.vectors,
        )

    @classmethod
    def load(cls, path: str | Path) -> VectorSample:
        """Read a saved sample; ``ValueError`` naming ``path`` when its arrays do not agree."""
        try:
            with np.load(Path(path), allow_pickle=False) as z:
                kind = str(z["kind"])
                dim, target, n_rows = (int(v) for v in z["meta"])
                rate = float(z["rate"][0])
                rows = z["rows"].astype(np.int64)
                vectors = z["vectors"]
        except (OSError, EOFError, KeyError, ValueError, IndexError, BadZipFile) as exc:
            raise ValueError(f"{path}: not a readable vector sample: {exc}") from exc
        if kind != "vector_sample" or dim < 1 or target < 1 or n_rows < 0:
            raise ValueError(f"{path}: not a vector sample")
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"{path}: sampling rate {rate} outside (0, 1]")
        if vectors.dtype != np.float32 or vectors.shape != (rows.shape[0], dim):
            raise ValueError(
                f"{path}: {vectors.shape} {vectors.dtype} vectors for {rows.size} rows"
            )
        if rows.size and (rows[0] < 0 or rows[-1] >= n_rows or np.any(np.diff(rows) <= 0)):
            raise ValueError(f"{path}: sampled ids are not increasing ids below {n_rows}")
        if not np.isfinite(vectors).all():
            raise ValueError(f"{path}: sampled vectors hold NaN or infinite values")
        out = cls(dim, target)
        out.rate, out.n_rows, out.rows, out.vectors = rate, n_rows, rows, vectors
        return out
