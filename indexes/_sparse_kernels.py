"""Numba kernels behind :class:`indexes.sparse.SparseIndex` (private).

Layout of one segment (a contiguous range of ``n_docs`` internal ids starting at ``base``):
every term's postings are sorted by weight, highest first, and cut into ``T`` tiers whose sizes
grow geometrically (the last tier holds about half the list). Inside a tier, postings are sorted
by local document id so that a sorted set of candidates can be intersected with it by binary
search. ``tier_ptr[t * T + j]`` .. ``tier_ptr[t * T + j + 1]`` is tier ``j`` of term ``t`` in
``docs`` (uint32 local ids) and ``weights`` (uint16 codes or float32); ``tier_max`` holds each
tier's largest weight.

Search is exact and term-at-a-time with a bound (see ``_search_one``): tiers are scored from the
top down until the largest score any unseen posting could still add, ``R``, is below a threshold
``theta`` that is a proven lower bound of the k-th best score; the remaining candidates are then
completed exactly by binary search in the unscored tiers.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_CACHE = True


@njit(cache=_CACHE)
def csr_to_term_major(indptr, indices, codes, dim):
    """Transpose CSR rows (documents) into per-term lists of (local doc, weight), doc-sorted."""
    n_docs = indptr.shape[0] - 1
    counts = np.zeros(dim + 1, np.int64)
    for p in range(indices.shape[0]):
        if codes[p] != 0:
            counts[indices[p] + 1] += 1
    for t in range(dim):
        counts[t + 1] += counts[t]
    ptr = counts.copy()
    docs = np.empty(counts[dim], np.uint32)
    w = np.empty(counts[dim], codes.dtype)
    fill = counts[:dim].copy()
    for d in range(n_docs):
        for p in range(indptr[d], indptr[d + 1]):
            if codes[p] != 0:
                t = indices[p]
                q = fill[t]
                docs[q] = d
                w[q] = codes[p]
                fill[t] = q + 1
    return ptr, docs, w


@njit(cache=_CACHE)
def tier_bounds(n, n_tiers, first):
    """End offsets of the tiers of a list of ``n`` postings (geometric sizes, last ~n/2)."""
    ends = np.empty(n_tiers, np.int64)
    for j in range(n_tiers):
        e = -(-n // (1 << (n_tiers - 1 - j)))
        m = first << j
        if e < m:
            e = m
        if e > n:
            e = n
        ends[j] = e
    ends[n_tiers - 1] = n
    return ends


@njit(cache=_CACHE)
def build_tiers(ptr, docs, w, n_tiers, first):
    """Turn doc-sorted per-term lists into the tiered layout described in the module docstring."""
    dim = ptr.shape[0] - 1
    tier_ptr = np.empty(dim * n_tiers + 1, np.int64)
    tier_max = np.zeros(dim * n_tiers, w.dtype)
    out_docs = np.empty(docs.shape[0], np.uint32)
    out_w = np.empty(docs.shape[0], w.dtype)
    tier_ptr[0] = 0
    for t in range(dim):
        s = ptr[t]
        n = ptr[t + 1] - s
        key = np.empty(n, np.float64)
        for i in range(n):
            key[i] = -np.float64(w[s + i])
        order = np.argsort(key, kind="mergesort")  # weight desc, doc asc within ties
        ends = tier_bounds(n, n_tiers, first)
        start = 0
        for j in range(n_tiers):
            end = ends[j]
            tier_ptr[t * n_tiers + j + 1] = s + end
            if end > start:
                tier_max[t * n_tiers + j] = w[s + order[start]]
                sub = np.empty(end - start, np.uint32)
                for i in range(end - start):
                    sub[i] = docs[s + order[start + i]]
                o2 = np.argsort(sub)
                for i in range(end - start):
                    src = s + order[start + o2[i]]
                    out_docs[s + start + i] = docs[src]
                    out_w[s + start + i] = w[src]
            start = end
    return tier_ptr, out_docs, out_w, tier_max


@njit(cache=_CACHE)
def tiers_to_term_major(tier_ptr, docs, w, n_tiers, deleted, offset, ratio):
    """Per-term doc-sorted lists of a segment, dropping deleted docs; ids shifted by ``offset``.

    ``ratio`` rescales quantised weights (1.0 keeps them); weights that become 0 are dropped.
    """
    dim = (tier_ptr.shape[0] - 1) // n_tiers
    ptr = np.zeros(dim + 1, np.int64)
    rescale = ratio != 1.0
    for t in range(dim):
        c = 0
        for p in range(tier_ptr[t * n_tiers], tier_ptr[(t + 1) * n_tiers]):
            if deleted[docs[p]] == 0:
                if rescale and np.rint(np.float64(w[p]) * ratio) == 0:
                    continue
                c += 1
        ptr[t + 1] = ptr[t] + c
    out_docs = np.empty(ptr[dim], np.uint32)
    out_w = np.empty(ptr[dim], w.dtype)
    for t in range(dim):
        s = ptr[t]
        c = 0
        for p in range(tier_ptr[t * n_tiers], tier_ptr[(t + 1) * n_tiers]):
            if deleted[docs[p]] == 0:
                if rescale:
                    v2 = np.rint(np.float64(w[p]) * ratio)
                    if v2 == 0:
                        continue
                    out_w[s + c] = min(v2, 65535.0)
                else:
                    out_w[s + c] = w[p]
                out_docs[s + c] = docs[p] + offset
                c += 1
        order = np.argsort(out_docs[s : s + c])
        d2 = out_docs[s : s + c][order]
        w2 = out_w[s : s + c][order]
        out_docs[s : s + c] = d2
        out_w[s : s + c] = w2
    return ptr, out_docs, out_w


@njit(cache=_CACHE)
def concat_term_major(ptr_a, docs_a, w_a, ptr_b, docs_b, w_b):
    """Concatenate two per-term lists (every id of ``b`` is larger than every id of ``a``)."""
    dim = ptr_a.shape[0] - 1
    ptr = ptr_a + ptr_b
    docs = np.empty(ptr[dim], np.uint32)
    w = np.empty(ptr[dim], w_a.dtype)
    for t in range(dim):
        q = ptr[t]
        for p in range(ptr_a[t], ptr_a[t + 1]):
            docs[q] = docs_a[p]
            w[q] = w_a[p]
            q += 1
        for p in range(ptr_b[t], ptr_b[t + 1]):
            docs[q] = docs_b[p]
            w[q] = w_b[p]
            q += 1
    return ptr, docs, w


@njit(cache=_CACHE)
def _find(docs, a, b, x):
    """First position in ``docs[a:b]`` (sorted) whose id is >= x."""
    lo = a
    hi = b
    while lo < hi:
        mid = (lo + hi) >> 1
        if docs[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=_CACHE)
def _extract_pass(tier_ptr, docs, w, n_tiers, wanted, rows, terms, vals, write):
    dim = (tier_ptr.shape[0] - 1) // n_tiers
    m = wanted.shape[0]
    n = 0
    for t in range(dim):
        for j in range(n_tiers):
            b = tier_ptr[t * n_tiers + j + 1]
            lo = tier_ptr[t * n_tiers + j]
            for r in range(m):
                lo = _find(docs, lo, b, wanted[r])
                if lo >= b:
                    break
                if docs[lo] == wanted[r]:
                    if write:
                        rows[n] = r
                        terms[n] = t
                        vals[n] = w[lo]
                    n += 1
    return n


@njit(cache=_CACHE)
def extract_docs_scan(tier_ptr, docs, w, n_tiers, wanted, n_docs):
    """Like ``extract_docs`` by one pass over all postings (cheaper for many documents)."""
    row_of = np.full(n_docs, -1, np.int64)
    for r in range(wanted.shape[0]):
        row_of[wanted[r]] = r
    dim = (tier_ptr.shape[0] - 1) // n_tiers
    n = 0
    for p in range(docs.shape[0]):
        if row_of[docs[p]] >= 0:
            n += 1
    rows = np.empty(n, np.int64)
    terms = np.empty(n, np.int64)
    vals = np.empty(n, np.float64)
    n = 0
    for t in range(dim):
        for p in range(tier_ptr[t * n_tiers], tier_ptr[(t + 1) * n_tiers]):
            r = row_of[docs[p]]
            if r >= 0:
                rows[n] = r
                terms[n] = t
                vals[n] = w[p]
                n += 1
    return rows, terms, vals


@njit(cache=_CACHE)
def extract_docs(tier_ptr, docs, w, n_tiers, wanted):
    """Stored vectors of the sorted local ids ``wanted``: (row, term, weight) triplets."""
    rows = np.empty(0, np.int64)
    terms = np.empty(0, np.int64)
    vals = np.empty(0, np.float64)
    n = _extract_pass(tier_ptr, docs, w, n_tiers, wanted, rows, terms, vals, False)
    rows = np.empty(n, np.int64)
    terms = np.empty(n, np.int64)
    vals = np.empty(n, np.float64)
    _extract_pass(tier_ptr, docs, w, n_tiers, wanted, rows, terms, vals, True)
    return rows, terms, vals


# ---------------------------------------------------------------------------------------------
# top-k heap: the root is the worst kept hit (lowest score, then largest id)


@njit(cache=_CACHE, inline="always")
def _worse(s1, i1, s2, i2):
    return s1 < s2 or (s1 == s2 and i1 > i2)


@njit(cache=_CACHE)
def _heap_push(hs, hi, size, k, s, i):
    """Offer hit (s, i) to a heap of capacity k; returns the new size."""
    if size < k:
        pos = size
        size += 1
    elif _worse(hs[0], hi[0], s, i):
        pos = 0
        # sift down from the root with the new item
        while True:
            c = 2 * pos + 1
            if c >= size:
                break
            if c + 1 < size and _worse(hs[c + 1], hi[c + 1], hs[c], hi[c]):
                c += 1
            if _worse(hs[c], hi[c], s, i):
                hs[pos] = hs[c]
                hi[pos] = hi[c]
                pos = c
            else:
                break
        hs[pos] = s
        hi[pos] = i
        return size
    else:
        return size
    # sift up
    while pos > 0:
        par = (pos - 1) // 2
        if _worse(s, i, hs[par], hi[par]):
            hs[pos] = hs[par]
            hi[pos] = hi[par]
            pos = par
        else:
            break
    hs[pos] = s
    hi[pos] = i
    return size


@njit(cache=_CACHE)
def _complete(tier_ptr, docs, w, n_tiers, qt, qw, cur, cand, m, score):
    """Add to ``score[r]`` what every unscored tier gives sorted candidate ``cand[r]``."""
    for i in range(qt.shape[0]):
        base = qt[i] * n_tiers
        wq = qw[i]
        for j in range(cur[i], n_tiers):
            a = tier_ptr[base + j]
            b = tier_ptr[base + j + 1]
            n = b - a
            if n == 0:
                continue
            if m * 16 < n:  # few candidates: binary search each
                lo = a
                for r in range(m):
                    x = cand[r]
                    hi = b
                    while lo < hi:
                        mid = (lo + hi) >> 1
                        if docs[mid] < x:
                            lo = mid + 1
                        else:
                            hi = mid
                    if lo >= b:
                        break
                    if docs[lo] == x:
                        score[r] += wq * np.float32(w[lo])
            else:  # linear merge
                p = a
                r = 0
                while p < b and r < m:
                    dp = docs[p]
                    x = cand[r]
                    if dp < x:
                        p += 1
                    elif dp > x:
                        r += 1
                    else:
                        score[r] += wq * np.float32(w[p])
                        p += 1
                        r += 1


@njit(cache=_CACHE)
def _seed_theta(tier_ptr, docs, w, n_tiers, qt, qw, cur, acc, touched, nt, deleted, k, hs, hi):
    """A lower bound of the k-th best score: exact scores of the k best partial scores."""
    size = 0
    for r in range(nt):
        d = touched[r]
        if deleted[d] == 0:
            size = _heap_push(hs, hi, size, k, acc[d], d)
    if size < k:
        return np.float32(0.0)
    cand = np.sort(hi[:size].astype(np.uint32))
    score = np.empty(size, np.float32)
    for r in range(size):
        score[r] = acc[cand[r]]
    _complete(tier_ptr, docs, w, n_tiers, qt, qw, cur, cand, size, score)
    return score.min()


@njit(cache=_CACHE)
def _search_one(tier_ptr, docs, w, tier_max, n_tiers, deleted, qt, qw, k, theta_in, beta,
                acc, touched, out_s, out_i):
    """Exact top-k of one query in one segment; returns the number of hits written.

    ``acc`` must be all zero on entry and is left all zero. ``theta_in`` is a score that k
    earlier (smaller-id) hits already reach, so nothing scoring below it can enter the top k.
    """
    nq = qt.shape[0]
    cur = np.zeros(nq, np.int64)
    bound = np.zeros(nq, np.float32)
    nt = 0
    hs = np.empty(k, np.float32)
    hi = np.empty(k, np.int64)

    # phase 1: the first (highest-weight) tier of every query term
    for i in range(nq):
        base = qt[i] * n_tiers
        wq = qw[i]
        for p in range(tier_ptr[base], tier_ptr[base + 1]):
            d = docs[p]
            if acc[d] == 0:
                touched[nt] = d
                nt += 1
            acc[d] += wq * np.float32(w[p])
        j = 1
        while j < n_tiers and tier_ptr[base + j] == tier_ptr[base + j + 1]:
            j += 1
        cur[i] = j
        bound[i] = wq * np.float32(tier_max[base + j]) if j < n_tiers else 0.0

    theta = max(theta_in, _seed_theta(tier_ptr, docs, w, n_tiers, qt, qw, cur, acc, touched, nt,
                                      deleted, k, hs, hi))
    seeded_at = nt

    # phase 2: next tier of the term with the largest remaining bound, until the bound is small
    while True:
        rem = np.float32(0.0)
        best = -1
        bmax = np.float32(0.0)
        for i in range(nq):
            rem += bound[i]
            if bound[i] > bmax:
                bmax = bound[i]
                best = i
        if best < 0:
            break
        slack = theta * np.float32(1e-4)
        if rem < theta - slack and rem <= beta * theta:
            break
        if nt >= 2 * seeded_at + 64 and rem >= theta - slack:
            theta = max(theta, _seed_theta(tier_ptr, docs, w, n_tiers, qt, qw, cur, acc, touched,
                                           nt, deleted, k, hs, hi))
            seeded_at = nt
            continue
        base = qt[best] * n_tiers
        wq = qw[best]
        j = cur[best]
        for p in range(tier_ptr[base + j], tier_ptr[base + j + 1]):
            d = docs[p]
            if acc[d] == 0:
                touched[nt] = d
                nt += 1
            acc[d] += wq * np.float32(w[p])
        j += 1
        while j < n_tiers and tier_ptr[base + j] == tier_ptr[base + j + 1]:
            j += 1
        cur[best] = j
        bound[best] = wq * np.float32(tier_max[base + j]) if j < n_tiers else 0.0

    rem = np.float32(0.0)
    for i in range(nq):
        rem += bound[i]
    # phase 3: candidates that can still reach theta, completed exactly
    cut = theta - theta * np.float32(1e-4) - rem
    m = 0
    for r in range(nt):
        d = touched[r]
        if deleted[d] == 0 and acc[d] >= cut:
            touched[m], touched[r] = d, touched[m]
            m += 1
    cand = np.sort(touched[:m])
    score = np.empty(m, np.float32)
    for r in range(m):
        score[r] = acc[cand[r]]
    for r in range(nt):
        acc[touched[r]] = 0.0
    if rem > 0:
        _complete(tier_ptr, docs, w, n_tiers, qt, qw, cur, cand, m, score)
    size = 0
    for r in range(m):
        size = _heap_push(hs, hi, size, k, score[r], np.int64(cand[r]))
    # best first: score descending, then id ascending
    o1 = np.argsort(hi[:size])
    key = np.empty(size, np.float64)
    for a in range(size):
        key[a] = -np.float64(hs[o1[a]])
    o2 = np.argsort(key, kind="mergesort")
    for a in range(size):
        out_s[a] = hs[o1[o2[a]]]
        out_i[a] = hi[o1[o2[a]]]
    return size


@njit(cache=_CACHE)
def _search_full(tier_ptr, docs, w, n_tiers, deleted, qt, qw, k, theta_in, acc, out_s, out_i):
    """Exhaustive top-k of one query: every posting of every query term, then one dense scan.

    ``acc`` (one float per document of the segment) must be zero on entry; it is left zero.
    """
    for i in range(qt.shape[0]):
        base = qt[i] * n_tiers
        wq = qw[i]
        for p in range(tier_ptr[base], tier_ptr[base + n_tiers]):
            acc[docs[p]] += wq * np.float32(w[p])
    hs = np.empty(k, np.float32)
    hi = np.empty(k, np.int64)
    size = 0
    floor = theta_in - theta_in * np.float32(1e-4)
    for d in range(acc.shape[0]):
        s = acc[d]
        if s > 0:
            acc[d] = 0.0
            if s >= floor and deleted[d] == 0 and (size < k or s > hs[0]):
                size = _heap_push(hs, hi, size, k, s, np.int64(d))
    o1 = np.argsort(hi[:size])
    key = np.empty(size, np.float64)
    for a in range(size):
        key[a] = -np.float64(hs[o1[a]])
    o2 = np.argsort(key, kind="mergesort")
    for a in range(size):
        out_s[a] = hs[o1[o2[a]]]
        out_i[a] = hi[o1[o2[a]]]
    return size


@njit(cache=_CACHE)
def _search_any(tier_ptr, docs, w, tier_max, n_tiers, deleted, qt, qw, k, theta_in, beta, acc,
                touched, out_s, out_i):
    if beta <= 0:
        return _search_full(tier_ptr, docs, w, n_tiers, deleted, qt, qw, k, theta_in, acc,
                            out_s, out_i)
    return _search_one(tier_ptr, docs, w, tier_max, n_tiers, deleted, qt, qw, k, theta_in, beta,
                       acc, touched, out_s, out_i)


@njit(cache=_CACHE)
def search_serial(tier_ptr, docs, w, tier_max, n_tiers, deleted, q_ptr, q_idx, q_val, k, theta,
                  beta, acc, touched, out_s, out_i, out_n):
    """All queries of a CSR batch, one after another, in one segment."""
    for q in range(q_ptr.shape[0] - 1):
        a = q_ptr[q]
        b = q_ptr[q + 1]
        out_n[q] = _search_any(tier_ptr, docs, w, tier_max, n_tiers, deleted, q_idx[a:b],
                               q_val[a:b], k, theta[q], beta, acc, touched, out_s[q], out_i[q])


@njit(cache=_CACHE, parallel=True)
def search_parallel(tier_ptr, docs, w, tier_max, n_tiers, deleted, q_ptr, q_idx, q_val, k, theta,
                    beta, acc2, touched2, out_s, out_i, out_n):
    """Queries spread over ``acc2.shape[0]`` threads, each with its own workspace row."""
    n_threads = acc2.shape[0]
    n_q = q_ptr.shape[0] - 1
    for th in prange(n_threads):
        acc = acc2[th]
        touched = touched2[th]
        for q in range(th, n_q, n_threads):
            a = q_ptr[q]
            b = q_ptr[q + 1]
            out_n[q] = _search_any(tier_ptr, docs, w, tier_max, n_tiers, deleted, q_idx[a:b],
                                   q_val[a:b], k, theta[q], beta, acc, touched, out_s[q], out_i[q])
