"""The compiled step of adaptive fusion's weights (private): per query, each list's weight times
its evidence, in one GIL-free call (:func:`fusion.methods.scaled_weights` and
:func:`fusion.trusted.fuse_trusted` use it)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def scale_rows(w, e):
    """``(out, in_range, all_positive)`` for weights ``w`` (``(1, L)``: the same for every
    query, or ``(n, L)``) and evidence ``e`` ``(n, L)``: ``out[q, j] = w[q, j] * e[q, j]``,
    except that a query with no positive product keeps its weights; ``in_range`` whether every
    evidence value is in [0, 1] (False for NaN); ``all_positive`` whether every ``out`` value
    is > 0."""
    n, n_lists = e.shape
    out = np.empty((n, n_lists))
    in_range = True
    all_positive = True
    for q in range(n):
        r = q if w.shape[0] != 1 else 0
        alive = False
        for j in range(n_lists):
            x = e[q, j]
            if not (x >= 0.0 and x <= 1.0):
                in_range = False
            v = w[r, j] * x
            out[q, j] = v
            if v > 0:
                alive = True
        if not alive:  # no evidence for any list: the weights as configured
            for j in range(n_lists):
                out[q, j] = w[r, j]
        for j in range(n_lists):
            if not out[q, j] > 0:
                all_positive = False
    return out, in_range, all_positive
