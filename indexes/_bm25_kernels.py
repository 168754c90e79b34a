"""Numba kernels behind :class:`indexes.bm25.BM25Index`: impact precomputation and top-k search.

Postings are term-major CSR arrays: ``indptr`` (n_terms + 1), ``docs`` (int32, ascending within a
term) and ``impacts`` (float32, the term's full score contribution for that document). Search
accumulates impacts into a dense scratch array over the documents touched by the query's
postings only, then keeps the best ``k`` with a bounded heap (score descending, id ascending).
All kernels are single-threaded and hold the GIL, so one index's scratch buffers are never shared
by two running searches.
"""

from __future__ import annotations

import numpy as np
from numba import njit

OKAPI, LUCENE, BM25L, BM25PLUS = 0, 1, 2, 3


@njit(cache=True)
def compute_impacts(indptr, docs, tfs, idf, doc_len, avgdl, k1, b, delta, variant):
    """Score contribution of every posting (term, doc) for the given collection statistics."""
    out = np.empty(docs.shape[0], dtype=np.float32)
    n_terms = indptr.shape[0] - 1
    for t in range(n_terms):
        w = idf[t]
        for p in range(indptr[t], indptr[t + 1]):
            tf = np.float64(tfs[p])
            norm = 1.0 - b + b * doc_len[docs[p]] / avgdl
            if variant == OKAPI:
                s = w * (tf * (k1 + 1.0) / (tf + k1 * norm))
            elif variant == LUCENE:
                s = w * (tf / (tf + k1 * norm))
            elif variant == BM25L:
                # rank_bm25.BM25L multiplies by the raw term frequency once more; kept for parity.
                ctd = tf / norm
                s = w * tf * (k1 + 1.0) * (ctd + delta) / (k1 + ctd + delta)
            else:
                # BM25+ without its constant idf * delta, which every document gets (query offset).
                s = w * (tf * (k1 + 1.0) / (k1 * norm + tf))
            out[p] = s
    return out


@njit(inline="always")
def _worse(s1, d1, s2, d2):
    """Hit (s1, d1) ranks below (s2, d2): lower score, or equal score and larger id."""
    return s1 < s2 or (s1 == s2 and d1 > d2)


@njit(inline="always")
def _sift_down(hs, hd, size, i):
    while True:
        left = 2 * i + 1
        if left >= size:
            return
        worst = left
        right = left + 1
        if right < size and _worse(hs[right], hd[right], hs[left], hd[left]):
            worst = right
        if _worse(hs[worst], hd[worst], hs[i], hd[i]):
            hs[i], hs[worst] = hs[worst], hs[i]
            hd[i], hd[worst] = hd[worst], hd[i]
            i = worst
        else:
            return


@njit(inline="always")
def _sift_up(hs, hd, i):
    while i > 0:
        parent = (i - 1) // 2
        if _worse(hs[i], hd[i], hs[parent], hd[parent]):
            hs[i], hs[parent] = hs[parent], hs[i]
            hd[i], hd[parent] = hd[parent], hd[i]
            i = parent
        else:
            return


@njit(inline="always")
def _offer(hs, hd, size, k, s, d):
    """Offer hit (s, d) to the bounded min-heap of the best k; returns the new heap size."""
    if size < k:
        hs[size] = s
        hd[size] = d
        _sift_up(hs, hd, size)
        return size + 1
    if _worse(hs[0], hd[0], s, d):
        hs[0] = s
        hd[0] = d
        _sift_down(hs, hd, size, 0)
    return size


@njit(cache=True)
def search_batch(indptr, docs, impacts, absent, q_indptr, q_terms, k, acc, seen, touched):
    """Top-k (ids, scores) for each query; rows padded with -1 / -inf.

    ``q_terms`` holds known term ids (repeats allowed: each occurrence adds once, as rank_bm25
    does). ``absent[t]`` is the score every document gets for term ``t`` whether or not it
    contains it (BM25+ only; zeros otherwise): it is added to every hit as a per-query offset.
    ``acc``, ``seen`` and ``touched`` are scratch buffers of length n_docs, left clean on return.

    A query whose postings are few next to the collection keeps a list of the documents it
    touched; one with many (common on small collections) accumulates branch-free and then scans
    the whole score array, which is faster than tracking first touches.
    """
    n_q = q_indptr.shape[0] - 1
    n_docs = acc.shape[0]
    out_ids = np.full((n_q, k), -1, dtype=np.int64)
    out_scores = np.full((n_q, k), -np.inf, dtype=np.float32)
    hs = np.empty(k, dtype=np.float32)
    hd = np.empty(k, dtype=np.int64)
    for q in range(n_q):
        offset = np.float32(0.0)
        total = 0
        for j in range(q_indptr[q], q_indptr[q + 1]):
            t = q_terms[j]
            offset += absent[t]
            total += indptr[t + 1] - indptr[t]
        size = 0
        thr = np.float32(-np.inf)  # score of the worst kept hit once the heap is full
        if 8 * total >= n_docs:
            for j in range(q_indptr[q], q_indptr[q + 1]):
                t = q_terms[j]
                for p in range(indptr[t], indptr[t + 1]):
                    d = docs[p]
                    acc[d] += impacts[p]
                    seen[d] = 1
            # Ascending ids: a later doc tying the worst kept score ranks below it, so only a
            # strictly better score enters (the test is cheap and rarely true).
            for d in range(n_docs):
                s = acc[d] + offset
                if s > thr:  # -inf until k hits are kept
                    if seen[d]:
                        size = _offer(hs, hd, size, k, s, d)
                        if size == k:
                            thr = hs[0]
            for d in range(n_docs):
                acc[d] = 0.0
                seen[d] = 0
        else:
            n_touched = 0
            for j in range(q_indptr[q], q_indptr[q + 1]):
                t = q_terms[j]
                for p in range(indptr[t], indptr[t + 1]):
                    d = docs[p]
                    if seen[d] == 0:
                        seen[d] = 1
                        touched[n_touched] = d
                        n_touched += 1
                    acc[d] += impacts[p]
            for i in range(n_touched):
                d = touched[i]
                s = acc[d] + offset
                acc[d] = 0.0
                seen[d] = 0
                if size < k or s >= thr:
                    size = _offer(hs, hd, size, k, s, d)
                    if size == k:
                        thr = hs[0]
        # Pop the worst first, filling the row from the back.
        while size > 0:
            size -= 1
            out_scores[q, size] = hs[0]
            out_ids[q, size] = hd[0]
            hs[0] = hs[size]
            hd[0] = hd[size]
            _sift_down(hs, hd, size, 0)
    return out_ids, out_scores
