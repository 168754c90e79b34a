"""Numba kernels behind :class:`indexes.bm25.BM25Index`: impact precomputation and top-k search.

Postings are term-major CSR arrays: ``indptr`` (n_terms + 1), ``docs`` (int32, ascending within a
term) and ``impacts`` (float32, the term's full score contribution for that document). Every
kernel adds a query's impacts into a float32 score per document in query-term order, so all paths
give bit-identical scores, and keeps the best ``k`` with a bounded heap (score descending, id
ascending).

``search_positive`` serves indexes whose impacts are all > 0 (the usual case): a score above zero
marks a hit, so no per-document "seen" flags are needed. A query with many postings is scored
one document block at a time: the postings of all its terms that fall in the block are added
into a block-sized (cache-resident) accumulator, which is then scanned for the top k in chunks
whose maximum is compared with the current k-th score (a vectorised integer max over the float
bits, valid because scores are non-negative) and cleared. A query with few postings adds into a
collection-sized accumulator and keeps a list of the documents it touched.
``search_batch`` is the general path (impacts that may be zero or negative).
All kernels are single-threaded and hold the GIL, so one index's scratch buffers are never shared
by two running searches.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from indexes._topk import offer, pop_into

OKAPI, LUCENE, BM25L, BM25PLUS = 0, 1, 2, 3
CHUNK = 64  # documents per top-k scan chunk; block sizes are multiples of it


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
                        size = offer(hs, hd, size, k, s, d)
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
                    size = offer(hs, hd, size, k, s, d)
                    if size == k:
                        thr = hs[0]
        pop_into(hs, hd, size, out_ids[q], out_scores[q])
    return out_ids, out_scores


@njit(inline="always")
def _block_end(docs, p, end, hi):
    """First position in ``[p, end)`` whose doc id is >= ``hi`` (ids ascending): gallop, bisect."""
    if p >= end or docs[p] >= hi:
        return p
    below = p  # docs[below] < hi
    step = 1
    while True:
        probe = below + step
        if probe >= end:
            probe = end
            break
        if docs[probe] >= hi:
            break
        below = probe
        step *= 2
    while probe - below > 1:  # docs[below] < hi <= docs[probe] (or probe == end)
        mid = (below + probe) >> 1
        if docs[mid] < hi:
            below = mid
        else:
            probe = mid
    return probe


@njit(inline="always")
def _raw_floor(thr, offset):
    """A raw-score floor ``rt >= 0`` with ``rt + offset <= thr`` in float32 arithmetic.

    Float32 addition is monotone, so no raw score ``r <= rt`` can beat ``thr`` once the offset
    is added and the scan may skip it; the exact ``r + offset > thr`` test still decides the rest.
    The floor sits within a few ulps of ``thr - offset`` (just a filter: lower is only slower).
    """
    if offset == 0:
        return max(thr, np.float32(0.0))
    rt = thr - offset
    step = max(abs(thr) * np.float32(2.0**-22), np.float32(1e-30))
    while rt > 0 and rt + offset > thr:
        rt -= step
        step *= np.float32(2.0)
    return max(rt, np.float32(0.0))


@njit(cache=True)
def search_positive(indptr, docs, impacts, absent, q_indptr, q_terms, k, acc, touched, block,
                    chunk_size, sparse_ratio, allowed):
    """Top-k (ids, scores) per query for impacts that are all > 0; rows padded with -1 / -inf.

    Same contract and results as :func:`search_batch`. ``touched`` (int32, n_docs) and ``acc``
    (float32, at least n_docs rounded up to ``CHUNK`` and at least ``block``, a multiple of
    ``CHUNK``) are scratch buffers, zero / left clean on return; ``chunk_size`` is ``CHUNK``,
    passed at run time because a compile-time trip count gets the chunk max unrolled instead of
    vectorised (1.2x slower overall). A query with ``sparse_ratio * postings < n_docs`` takes
    the touched-list path, others the blocked one. Only documents ``d`` with ``allowed[d] != 0``
    (uint8, n_docs; all ones for an unfiltered search) are hits: the others are scored and
    skipped when the top k is taken, so an allowed document's score is the unfiltered one.
    """
    n_q = q_indptr.shape[0] - 1
    n_docs = touched.shape[0]
    out_ids = np.full((n_q, k), -1, dtype=np.int64)
    out_scores = np.full((n_q, k), -np.inf, dtype=np.float32)
    hs = np.empty(k, dtype=np.float32)
    hd = np.empty(k, dtype=np.int64)
    bits = acc.view(np.int32)  # non-negative floats order like their int32 bit patterns
    floor_box = np.zeros(1, dtype=np.float32)
    floor_bits = floor_box.view(np.int32)
    max_terms = 0
    for q in range(n_q):
        max_terms = max(max_terms, q_indptr[q + 1] - q_indptr[q])
    cur = np.empty(max_terms, dtype=np.int64)
    chunk = np.uint64(chunk_size)
    for q in range(n_q):
        first = q_indptr[q]
        n_terms = q_indptr[q + 1] - first
        offset = np.float32(0.0)
        total = 0
        for j in range(n_terms):
            t = q_terms[first + j]
            offset += absent[t]
            total += indptr[t + 1] - indptr[t]
            cur[j] = indptr[t]
        size = 0
        thr = np.float32(-np.inf)  # score of the worst kept hit once the heap is full
        if sparse_ratio * total < n_docs:
            n_touched = 0
            for j in range(n_terms):
                t = q_terms[first + j]
                seg_docs = docs[indptr[t]:indptr[t + 1]]
                seg_impacts = impacts[indptr[t]:indptr[t + 1]]
                for i in range(np.uint64(seg_docs.shape[0])):
                    d = np.uint32(seg_docs[i])
                    if acc[d] == 0:  # first touch: every impact is > 0
                        touched[n_touched] = d
                        n_touched += 1
                    acc[d] += seg_impacts[i]
            for i in range(n_touched):
                d = touched[i]
                s = acc[d] + offset
                acc[d] = 0.0
                if (size < k or s >= thr) and allowed[d]:
                    size = offer(hs, hd, size, k, s, d)
                    if size == k:
                        thr = hs[0]
            pop_into(hs, hd, size, out_ids[q], out_scores[q])
            continue
        rt = np.float32(0.0)  # raw scores must exceed it: 0 (a hit) until the heap is full
        rt_bits = np.int32(0)
        for lo in range(0, n_docs, block):
            hi = min(lo + block, n_docs)
            base = np.uint32(lo)
            for j in range(n_terms):
                p = cur[j]
                e = _block_end(docs, p, indptr[q_terms[first + j] + 1], hi)
                seg_docs = docs[p:e]
                seg_impacts = impacts[p:e]
                # Unsigned indices spare numba's negative-index checks in this hot loop.
                for i in range(np.uint64(e - p)):
                    acc[np.uint32(seg_docs[i]) - base] += seg_impacts[i]
                cur[j] = e
            # Ascending ids: a later doc tying the worst kept score ranks below it, so only a
            # strictly better score enters. Chunks past the block's end hold zeros.
            for c0 in range(np.uint64(0), np.uint64(hi - lo), chunk):
                top = np.int32(0)
                for i in range(c0, c0 + chunk):
                    top = max(top, bits[i])
                if top > rt_bits:
                    for i in range(c0, c0 + chunk):
                        r = acc[i]
                        if r > rt and allowed[lo + np.int64(i)]:
                            s = r + offset
                            if s > thr:
                                size = offer(hs, hd, size, k, s, lo + np.int64(i))
                                if size == k:
                                    thr = hs[0]
                                    rt = _raw_floor(thr, offset)
                                    floor_box[0] = rt
                                    rt_bits = floor_bits[0]
                if top > 0:
                    for i in range(c0, c0 + chunk):
                        acc[i] = 0.0
        pop_into(hs, hd, size, out_ids[q], out_scores[q])
    return out_ids, out_scores


@njit(inline="always")
def _gallop(arr, p, end, x):
    """First position in ``[p, end)`` of ascending ``arr`` whose value is >= ``x``."""
    return _block_end(arr, p, end, x)


@njit(cache=True)
def search_allowed(indptr, docs, impacts, absent, q_indptr, q_terms, k, acc, seen, touched,
                   allowed, rows):
    """:func:`search_batch` restricted to the documents ``d`` with ``allowed[d] != 0``.

    ``rows`` lists those documents, ascending. Scores are bit-identical to the unfiltered
    kernels' (each document's impacts are added in query-term order into a float32 from 0), so
    the result is the unfiltered ranking with the other documents removed. Per query, the
    cheaper of two paths runs: when the allowed documents are few next to the query's postings,
    each term's postings are intersected with ``rows`` (galloping through the longer list) and
    scores accumulate at the document's position in ``rows``; otherwise every posting is read
    and the disallowed ones are skipped. Scratch buffers as in :func:`search_batch`.
    """
    n_q = q_indptr.shape[0] - 1
    m = rows.shape[0]
    out_ids = np.full((n_q, k), -1, dtype=np.int64)
    out_scores = np.full((n_q, k), -np.inf, dtype=np.float32)
    hs = np.empty(k, dtype=np.float32)
    hd = np.empty(k, dtype=np.int64)
    for q in range(n_q):
        offset = np.float32(0.0)
        total = 0
        merge_cost = 0.0
        for j in range(q_indptr[q], q_indptr[q + 1]):
            t = q_terms[j]
            offset += absent[t]
            df = indptr[t + 1] - indptr[t]
            total += df
            short = min(df, m)
            if short > 0:
                merge_cost += short * (2.0 + np.log2(max(df, m) / short))
        size = 0
        thr = np.float32(-np.inf)
        if merge_cost < total:
            for j in range(q_indptr[q], q_indptr[q + 1]):
                t = q_terms[j]
                p = indptr[t]
                end = indptr[t + 1]
                if end - p <= m:  # walk the postings, gallop through rows
                    i = 0
                    while p < end and i < m:
                        d = docs[p]
                        i = _gallop(rows, i, m, d)
                        if i < m and rows[i] == d:
                            acc[i] += impacts[p]
                            seen[i] = 1
                            i += 1
                        p += 1
                else:  # walk the rows, gallop through the postings
                    for i in range(m):
                        p = _gallop(docs, p, end, rows[i])
                        if p >= end:
                            break
                        if docs[p] == rows[i]:
                            acc[i] += impacts[p]
                            seen[i] = 1
                            p += 1
            for i in range(m):
                if seen[i]:
                    s = acc[i] + offset
                    acc[i] = 0.0
                    seen[i] = 0
                    if size < k or s >= thr:
                        size = offer(hs, hd, size, k, s, rows[i])
                        if size == k:
                            thr = hs[0]
        else:
            n_touched = 0
            for j in range(q_indptr[q], q_indptr[q + 1]):
                t = q_terms[j]
                for p in range(indptr[t], indptr[t + 1]):
                    d = docs[p]
                    if allowed[d]:
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
                    size = offer(hs, hd, size, k, s, d)
                    if size == k:
                        thr = hs[0]
        pop_into(hs, hd, size, out_ids[q], out_scores[q])
    return out_ids, out_scores
