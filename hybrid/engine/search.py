"""The engine's searches: ``search``, ``retrieve`` and ``fuse``, with filters and reranking."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, overload

import numpy as np

import fusion as fusion_lib
from hybrid.encoders.base import validate_texts
from hybrid.engine.base import fusion_label
from hybrid.engine.candidates import Candidates
from hybrid.engine.config import FusionConfig
from hybrid.engine.explain import ExplainMixin
from hybrid.engine.filters import MetadataIndex, parse
from hybrid.engine.rerankers import RerankCandidates, Reranker, get_reranker
from hybrid.engine.results import Hit
from hybrid.engine.retrievers import Retriever
from indexes import BM25Index, SparseIndex
from indexes.base import SearchResult, check_k, short
from indexes.joint import search_lexical


class SearchMixin(ExplainMixin):
    """Searching the retrievers and fusing their candidates (part of :class:`HybridRetriever`)."""

    @overload
    def search(self, query: str, k: int = ..., **kwargs: Any) -> list[Hit]: ...
    @overload
    def search(self, query: Sequence[str], k: int = ..., **kwargs: Any) -> list[list[Hit]]: ...

    def search(
        self,
        query: str | Sequence[str],
        k: int = 10,
        *,
        config: FusionConfig | None = None,
        fusion: str | None = None,
        weights: Mapping[str, float] | None = None,
        norm: str | None = None,
        rrf_k: float | None = None,
        depth: int | None = None,
        reranker: Any | None = None,
        rerank_top: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> list[Hit] | list[list[Hit]]:
        """Top-``k`` fused hits for one query (a list) or a batch (a list of lists).

        ``config`` replaces the engine's :class:`FusionConfig` for this call; the keyword
        arguments override single fields of it (``fusion`` is the method name). ``reranker``
        (a name such as ``"dense"``, ``"splade"``, ``"cross-encoder:<model>"``, a
        :class:`~hybrid.engine.rerankers.Reranker`, or any ``(query, texts) -> scores`` callable)
        re-orders the best ``rerank_top`` fused candidates (default: the engine's reranker and
        ``rerank_top``); each hit keeps its ``fused_score`` and ``fused_rank``.

        When ``k`` (or ``rerank_top`` with a reranker) exceeds the fusion ``depth``, this call
        uses ``depth = k``: each retriever then contributes enough candidates for ``k`` hits
        whenever the collection holds that many matching documents.

        ``filter`` restricts the search to documents whose metadata matches it (the language of
        :mod:`hybrid.engine.filters`, e.g. ``{"lang": "ko", "year": {"$gte": 2020}}``). Every
        retriever searches only those documents, so up to ``k`` hits come back however few
        match; each retriever's candidates are its unfiltered ranking with the other documents
        removed. An invalid filter raises :class:`~hybrid.engine.filters.FilterError` (a
        ``ValueError``).
        """
        single = isinstance(query, str)
        queries = validate_texts(query, "queries")
        k = check_k(k)
        given = check_k(rerank_top, "rerank_top") if rerank_top is not None else None
        cfg = self._config(config, fusion, weights, norm, rrf_k, depth)
        if filter is not None:
            parse(filter)  # a bad filter fails before anything is encoded
        if self._folder is not None and self._folder.readonly and self.auto_refresh:
            if self._folder.current_gen() != self._gen:
                self.refresh()
        if len(self.store) == 0:
            empty: list[list[Hit]] = [[] for _ in queries]
            return empty[0] if single else empty
        rerank = self.reranker if reranker is None else get_reranker(reranker)
        top = k
        if rerank is not None:
            top = max(k, given if given is not None else self.rerank_top)
        if top > cfg.depth:
            cfg = replace(cfg, depth=top)
        names = [n for n in self.names if self._weight(cfg, n) > 0]
        encoded = self._encode_queries(queries, names)  # no lock held
        with self._rw.read():  # one consistent state from index search to hits
            allowed = self._allowed(filter)
            if allowed is not None and not allowed.any():
                nothing: list[list[Hit]] = [[] for _ in queries]
                return nothing[0] if single else nothing
            adaptive = cfg.method == fusion_lib.ADAPTIVE  # (its evidence: measured on the way)
            candidates = self._retrieve_encoded(
                queries, encoded, cfg.retrieval_depth, names, allowed, filter, measure=adaptive
            )
            hits = self._fuse_checked(candidates, top, cfg)
            if rerank is not None and rerank.reads_index:
                hits = [self._rerank(rerank, q, h, k) for q, h in zip(queries, hits, strict=True)]
        if rerank is not None and not rerank.reads_index:
            hits = [self._rerank(rerank, q, h, k) for q, h in zip(queries, hits, strict=True)]
        return hits[0] if single else hits

    def _rerank(self, reranker: Reranker, query: str, hits: list[Hit], k: int) -> list[Hit]:
        """Order ``hits`` by the reranker's scores (ties: fused rank) and keep the top ``k``."""
        if not hits:
            return hits
        rows = np.array([h._row for h in hits], dtype=np.int64)
        scores = np.asarray(
            reranker.score(query, RerankCandidates([h.text for h in hits], rows, self)),
            dtype=np.float64,
        ).ravel()
        if scores.shape != (len(hits),):
            raise ValueError(
                f"reranker {reranker.name!r} returned {scores.size} scores for {len(hits)} texts"
            )
        if not np.all(np.isfinite(scores)):
            raise ValueError(f"reranker {reranker.name!r} returned NaN or infinite scores")
        order = np.lexsort((np.arange(len(hits)), -scores))[:k]
        out = []
        for new_rank, i in enumerate(order.tolist(), 1):
            hit = hits[i]
            hit.score = hit.reranker_score = float(scores[i])
            hit.rank = new_rank
            out.append(hit)
        return out

    def retrieve(
        self,
        queries: str | Sequence[str],
        depth: int | None = None,
        names: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> Candidates:
        """Each retriever's top-``depth`` candidates (internal ids), before any fusion.

        Retrievers run in parallel threads. The result can be fused many times with
        :meth:`fuse` (e.g. while tuning weights) without encoding or searching again.
        ``filter`` restricts every retriever to the matching documents, as in :meth:`search`.
        """
        queries = validate_texts(queries, "queries")
        depth = check_k(depth if depth is not None else self.config.depth, "depth")
        bad_names = isinstance(names, (str, bytes)) or not isinstance(names, Sequence)
        if names is not None and bad_names:
            raise TypeError(f"names must be a list of retriever names, got {short(names)}")
        names = list(self.names if names is None else names)
        unknown = [n for n in names if n not in self.retrievers]
        if unknown or not names:
            raise ValueError(
                f"unknown retrievers {unknown}; this engine has: {', '.join(self.names)}"
            )

        if filter is not None:
            parse(filter)
        encoded = self._encode_queries(queries, names)
        with self._rw.read():
            allowed = self._allowed(filter)
            return self._retrieve_encoded(queries, encoded, depth, names, allowed, filter)

    def _retrieve_encoded(
        self,
        queries: list[str],
        encoded: dict[str, Any],
        depth: int,
        names: list[str],
        allowed: np.ndarray | None = None,
        filter: Mapping[str, Any] | None = None,
        measure: bool = False,
    ) -> Candidates:
        """Search every named retriever with its encoded queries (caller holds the read lock);
        ``allowed`` (the row mask of ``filter``, see :meth:`_allowed`) restricts them.
        ``measure``: the candidates get the retrievers' evidence too (:meth:`_measure`)."""
        candidates = Candidates(queries=queries, results={}, encoded=dict(encoded))
        work = len(self.store) * len(queries)  # small searches stay in the calling thread
        results = None
        if allowed is None and not self._parallel_for(work):
            results = self._search_lexical_together(candidates, depth, names, filter, measure)
        if results is None:
            results = self._each(
                lambda n: self._search_retriever(n, encoded[n], depth, allowed, filter),
                names,
                work,
            )
        candidates.results = results
        return candidates

    def _search_lexical_together(
        self,
        candidates: Candidates,
        depth: int,
        names: list[str],
        filter: Mapping[str, Any] | None,
        measure: bool,
    ) -> dict[str, SearchResult] | None:
        """Every named retriever's results, a SPLADE and a BM25 index searched in one GIL-free
        call (:func:`indexes.joint.search_lexical`: one GIL hand-over fewer per search when
        threads search at once); None where the engine has no such pair or they cannot.

        With ``measure``, the evidence is measured (:meth:`_measure`: it reads only the
        queries) between that call and the other retrievers' searches: there it splits the
        Python a search runs holding the GIL into shorter stretches, which a thread returning
        from a kernel waits for less."""
        pair = self._lexical_pair(names)
        if pair is None:
            return None
        encoded = candidates.encoded
        (splade, splade_index), (bm25, bm25_index) = pair
        found = search_lexical(splade_index, encoded[splade], bm25_index, encoded[bm25], depth)
        if found is None:
            return None
        if measure:
            self._measure(candidates, names)
        results = {splade: found[0], bm25: found[1]}
        for n in names:
            if n not in results:
                results[n] = self._search_retriever(n, encoded[n], depth, None, filter)
        return {n: results[n] for n in names}

    def _lexical_pair(self, names: list[str]) -> tuple | None:
        """``((name, index), (name, index))`` of the first retriever of ``names`` searching a
        :class:`~indexes.sparse.SparseIndex` and the first searching a
        :class:`~indexes.bm25.BM25Index`, each as :meth:`Retriever.search_encoded` does; None
        when there is no such pair, or a subclass of the engine searches its own way."""
        if type(self)._search_retriever is not SearchMixin._search_retriever:
            return None
        splade = bm25 = None
        for n in names:
            r = self.retrievers[n]
            if type(r).search_encoded is not Retriever.search_encoded:
                continue
            index = getattr(r, "index", None)
            if splade is None and type(index) is SparseIndex:
                splade = (n, index)
            elif bm25 is None and type(index) is BM25Index:
                bm25 = (n, index)
        return None if splade is None or bm25 is None else (splade, bm25)

    def _search_retriever(
        self,
        name: str,
        encoded: Any,
        depth: int,
        allowed: np.ndarray | None,
        filter: Mapping[str, Any] | None,
    ) -> SearchResult:
        """One retriever's search, restricted to the rows of ``allowed`` (a backend that filters
        by itself, e.g. Qdrant, may use ``filter`` instead)."""
        retriever = self.retrievers[name]
        if allowed is None:  # retrievers written before filters take no allowed=
            return retriever.search_encoded(encoded, depth)
        return retriever.search_encoded(encoded, depth, allowed=allowed)

    def _allowed(self, filter: Mapping[str, Any] | None) -> np.ndarray | None:
        """The row mask of a filter (None for no filter); caller holds the read lock."""
        if filter is None:
            return None
        return self.filter_index().mask(filter)

    def filter_index(self) -> MetadataIndex:
        """The metadata index that evaluates filters, built from the store on first use."""
        index = self._filter_index
        if index is None:
            with self._filter_build:  # two first searches must not both build it
                index = self._filter_index
                if index is None:
                    index = MetadataIndex()
                    index.rebuild(self.store.n_rows, self._live_metadata())
                    self._filter_index = index
        return index

    def _live_metadata(self) -> Iterator[tuple[int, Mapping[str, Any]]]:
        """(row, metadata) of every live document: what the metadata index is built from."""
        return self.store.iter_metadata()

    def fuse(
        self, candidates: Candidates, k: int = 10, config: FusionConfig | None = None
    ) -> list[list[Hit]]:
        """Fuse retrieved candidates into the top-``k`` hits of each query."""
        if not isinstance(candidates, Candidates):
            raise TypeError(
                f"candidates must be what retrieve() returns (Candidates), got "
                f"{type(candidates).__name__}"
            )
        with self._rw.read():
            return self._fuse(candidates, k, config)

    def _fuse(
        self, candidates: Candidates, k: int = 10, config: FusionConfig | None = None
    ) -> list[list[Hit]]:
        return self._fuse_checked(candidates, check_k(k), self._config(config))

    def _fuse_checked(self, candidates: Candidates, k: int, cfg: FusionConfig) -> list[list[Hit]]:
        """:meth:`_fuse` with ``k`` and ``cfg`` checked by the caller."""
        names = [n for n in candidates.results if self._weight(cfg, n) > 0]
        if not names:
            raise ValueError("every retriever weight is 0: nothing to fuse")
        weights = [self._weight(cfg, n) for n in names]
        adaptive = cfg.method == fusion_lib.ADAPTIVE
        if adaptive:
            self._measure(candidates, names)
        names, fused = candidates.fuse(cfg, k, names)  # through fusion/, as evaluation does
        label = fusion_label(cfg)
        base = weights if adaptive else None
        return [
            self._hits(result, names, base, label, candidates, q) for q, result in enumerate(fused)
        ]
