"""Bounded top-k heap shared by the numba search kernels (private).

The heap keeps the best ``k`` hits of one query in two arrays, scores ``hs`` and ids ``hd``, with
the worst kept hit at the root; a hit ranks below another with a lower score, or an equal score
and a larger id, so results come out score descending, id ascending. The functions are inlined
into each kernel (numba caches a kernel with them inlined: after editing this file, clear the
``__pycache__`` of the kernel modules).
"""

from __future__ import annotations

from numba import njit


@njit(inline="always")
def worse(s1, d1, s2, d2):
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
        if right < size and worse(hs[right], hd[right], hs[left], hd[left]):
            worst = right
        if worse(hs[worst], hd[worst], hs[i], hd[i]):
            hs[i], hs[worst] = hs[worst], hs[i]
            hd[i], hd[worst] = hd[worst], hd[i]
            i = worst
        else:
            return


@njit(inline="always")
def _sift_up(hs, hd, i):
    while i > 0:
        parent = (i - 1) // 2
        if worse(hs[i], hd[i], hs[parent], hd[parent]):
            hs[i], hs[parent] = hs[parent], hs[i]
            hd[i], hd[parent] = hd[parent], hd[i]
            i = parent
        else:
            return


@njit(inline="always")
def offer(hs, hd, size, k, s, d):
    """Offer hit (s, d) to a heap of ``size`` hits and capacity ``k``; returns the new size."""
    if size < k:
        hs[size] = s
        hd[size] = d
        _sift_up(hs, hd, size)
        return size + 1
    if worse(hs[0], hd[0], s, d):
        hs[0] = s
        hd[0] = d
        _sift_down(hs, hd, size, 0)
    return size


@njit(inline="always")
def pop_into(hs, hd, size, out_ids, out_scores):
    """Empty the heap into the rows ``out_ids`` / ``out_scores``, best first."""
    while size > 0:  # pops the worst, filling from the back
        size -= 1
        out_scores[size] = hs[0]
        out_ids[size] = hd[0]
        hs[0] = hs[size]
        hd[0] = hd[size]
        _sift_down(hs, hd, size, 0)
