"""One scoring step shared by every batched path: aligned lists in, fused score per union row.

:func:`fusion.fuse_padded` (full explanations) and :class:`fusion.FusionTable` (scores and top-k
only, for many configurations) both call :func:`combine`; each method's arithmetic is defined
once, in :mod:`fusion.methods`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import methods as _m
from ._core import Aligned, Canonical, scatter
from ._kernels import combine_per_list


class Combined(NamedTuple):
    """Fused scores of the union rows, with the per-list values behind them.

    Per-list methods (:data:`fusion.methods.PER_LIST`) give ``terms`` / ``contrib`` as one flat
    array over the lists' present entries (list by list, each in ``Aligned.rows`` order, as
    :func:`fusion._kernels.combine_per_list` takes them); the other methods as
    ``(U, L)`` matrices (``per_entry`` False). ``covered`` marks union rows that a list with a
    positive weight holds (all rows unless per-query weights of 0 are given for kept entries).
    """

    fused: np.ndarray
    terms: np.ndarray
    contrib: np.ndarray
    per_entry: bool
    covered: np.ndarray | None


def combine(
    method: str,
    canon: list[Canonical],
    normed: list[np.ndarray] | None,
    al: Aligned,
    weights: np.ndarray,
    k: float,
    values: list[np.ndarray] | None = None,
) -> Combined:
    """Fuse aligned lists. ``canon``: the lists as fused (cut to depth); ``normed``: their
    normalised scores (score methods; at least as wide as each list); ``weights``: ``(L,)`` or
    per query ``(n_queries, L)``, one column per list in ``canon``. ``values``: the per-entry
    inputs of a per-list method (:func:`entry_values`), when the caller keeps them."""
    n_rows = al.ids.shape[0]
    per_query = weights.ndim == 2
    if method in _m.PER_LIST:
        spec = _m.PER_LIST[method]
        if values is None:
            values = entry_values(spec.uses, canon, normed, al)
        n_lists = len(canon)
        counts = np.array([r.shape[0] for r in al.rows], dtype=np.int64)
        if per_query:  # each entry's weight: its list's weight for the entry's query
            w_entry = np.concatenate(
                [weights[np.nonzero(p)[0], i] for i, p in enumerate(al.present)]
            )
            keep = w_entry > 0
            off = np.zeros(n_lists, dtype=bool)
        else:  # a list weighted 0 is left out entirely (not counted in m, adds nothing)
            w_entry = np.repeat(weights[:n_lists], counts)
            keep = np.ones(w_entry.shape[0], dtype=bool)
            off = ~(weights[:n_lists] > 0)
        terms, contrib, fused, covered = combine_per_list(
            _flat(values, np.float64),
            _flat(al.rows, np.int64),
            counts,
            w_entry.astype(np.float64, copy=False),
            keep,
            off,
            n_rows,
            spec.term,
            spec.count_power,
            float(k) if method == "rrf" else 0.0,  # only RRF reads k (unchecked otherwise)
        )
        everything = off.any() or not keep.all()
        return Combined(fused, terms, contrib, True, covered if everything else None)
    counts = np.diff(al.offsets)
    query_of_row = np.repeat(np.arange(counts.shape[0]), counts)
    w_rows = weights[query_of_row] if per_query else weights
    if method == "borda":
        rank_of = [np.broadcast_to(np.arange(1, c.ids.shape[1] + 1), c.ids.shape) for c in canon]
        ranks = scatter(al, rank_of, 0, np.int64)
        sizes = np.stack([c.sizes for c in canon], axis=1)
        terms_u, contrib_u = _m.borda(ranks, counts[query_of_row], sizes[query_of_row], w_rows)
    else:
        cut = [x[:, : c.ids.shape[1]] for x, c in zip(normed, canon, strict=True)]  # type: ignore[arg-type]
        terms_u, contrib_u = SCORE_ROW_FUNCS[method](scatter(al, cut, np.nan), w_rows)
    return Combined(contrib_u.sum(axis=1), terms_u, contrib_u, False, None)


def _flat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    if len(parts) == 1:
        return np.ascontiguousarray(parts[0], dtype=dtype).ravel()
    return np.concatenate(parts).astype(dtype, copy=False)


SCORE_ROW_FUNCS = {"combmax": _m.combmax, "combmin": _m.combmin}
"""Score methods that need the whole row of a document (not one term per list)."""


def entry_values(
    uses: str, canon: list[Canonical], normed: list[np.ndarray] | None, al: Aligned
) -> list[np.ndarray]:
    """Per list, the rank (``uses="rank"``) or normalised score of each present entry, in the
    order of ``Aligned.rows``."""
    if uses == "rank":
        return [
            np.broadcast_to(np.arange(1, c.ids.shape[1] + 1), c.ids.shape)[p]
            for c, p in zip(canon, al.present, strict=True)
        ]
    return [
        x[:, : c.ids.shape[1]][p]
        for x, c, p in zip(normed, canon, al.present, strict=True)  # type: ignore[arg-type]
    ]
