"""Rank fusion: rankings in, one fused and explainable ranking out. numpy, with the steps a
fusion repeats per query and list compiled once (numba, without the GIL: :mod:`fusion._kernels`).

Entry points: :func:`fuse` (one query), :func:`fuse_batch` / :func:`fuse_padded` (many queries,
vectorised), :class:`FusionTable` (many queries fused for many configurations, top-k only).
:data:`ADAPTIVE` (``"adaptive"``) is the evidence-weighted z-score sum the engine uses by
default; its evidence comes in as numbers (this package stays model-free). The per-method and
per-normalisation functions are public in :mod:`fusion.methods` and :mod:`fusion.normalize`
and re-exported here; :mod:`fusion.strata` merges rankings of disjoint strata of documents by a
reference ranking's pattern (what the engine's fusion by script uses). Conventions (ranks from
1, missing documents, duplicates, ties, degenerate lists, weights, depth) are listed in
:mod:`fusion.api`.
"""

from ._core import FusionResult
from .api import (
    ADAPTIVE,
    METHODS,
    NORMS,
    RANK_METHODS,
    SCORE_METHODS,
    check_options,
    fuse,
    fuse_batch,
    fuse_padded,
)
from .methods import (
    adaptive,
    adaptive_weights,
    borda,
    combanz,
    combmax,
    combmin,
    combmnz,
    combsum,
    isr,
    isr_term,
    rrf,
    rrf_term,
    wsum,
)
from .normalize import (
    bounded_minmax,
    dbsf_norm,
    identity_norm,
    max_norm,
    minmax_norm,
    rank_norm,
    sum_norm,
    zscore_norm,
)
from .table import FusionTable

__all__ = [
    "ADAPTIVE",
    "METHODS",
    "NORMS",
    "RANK_METHODS",
    "SCORE_METHODS",
    "FusionResult",
    "FusionTable",
    "adaptive",
    "adaptive_weights",
    "borda",
    "bounded_minmax",
    "check_options",
    "combanz",
    "combmax",
    "combmin",
    "combmnz",
    "combsum",
    "dbsf_norm",
    "fuse",
    "fuse_batch",
    "fuse_padded",
    "identity_norm",
    "isr",
    "isr_term",
    "max_norm",
    "minmax_norm",
    "rank_norm",
    "rrf",
    "rrf_term",
    "sum_norm",
    "wsum",
    "zscore_norm",
]
