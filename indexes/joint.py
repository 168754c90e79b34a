"""A SPLADE search and a BM25 search in one call that holds no GIL: :func:`search_lexical`.

Searches from several threads overlap only while the GIL is released, and each kernel call
gives it up and must take it back. Under contention taking it back means waiting for the other
thread's Python, then a thread wake-up (tens of microseconds on a virtual machine) on a core
whose caches the other thread used. A hybrid search runs both lexical searches of a query one
after the other; this runs their kernels in one call, one hand-over fewer per search
(``benchmarks/concurrency.py``: 2 threads over 1 on SciFact). The results are exactly those of
``splade.search(...)`` and ``bm25.search(...)``: the same kernels with the same arguments.
"""

from __future__ import annotations

from typing import Any

from numba import njit

from indexes._base import SearchResult
from indexes._bm25_kernels import search_positive
from indexes._sparse_query import common_args, common_result, search_checked

__all__ = ["search_lexical"]


@njit(cache=True, nogil=True)
def _both(splade_args, bm25_args):
    return search_checked(*splade_args), search_positive(*bm25_args)


def search_lexical(
    splade: Any, splade_queries: Any, bm25: Any, bm25_queries: Any, k: int
) -> tuple[SearchResult, SearchResult] | None:
    """``(splade.search(splade_queries, k), bm25.search(bm25_queries, k))`` with both kernels
    in one GIL-free call, for a :class:`~indexes.sparse.SparseIndex` and a
    :class:`~indexes.bm25.BM25Index` of one segment each searched without a filter; None when
    either search takes other steps (search them one by one then)."""
    sparse = common_args(splade, splade_queries, k)
    if sparse is None or type(bm25_queries) is not list or type(k) is not int or k < 1:
        return None
    lexical = bm25._one_call(bm25_queries, k)
    if lexical is None:
        return None
    head, key, sizes, tail = lexical
    acc = splade._workspace(1)
    scratch = bm25._pool.get_group(key, sizes)
    out_sparse, out_bm25 = _both((*sparse, acc), (*head, *scratch, *tail))
    splade._pool.append(acc)  # both clean again: the kernels returned
    bm25._pool.put(key, scratch)
    found = common_result(out_sparse)
    if found is None:  # a query the general path canonicalises first
        found = splade.search(splade_queries, k)
    return found, SearchResult(*out_bm25)
