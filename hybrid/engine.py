"""The engine users call: several retrievers over the same documents, fused and explained."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np

import fusion as fusion_lib
from hybrid.aio import AsyncEngineMixin
from hybrid.candidates import Candidates
from hybrid.config import DEFAULT_CONFIG, FusionConfig
from hybrid.documents import Document
from hybrid.encoders.base import validate_texts
from hybrid.evidence import (
    EXPLAIN_MIN_EVIDENCE,
    describe_reach,
    dominant_script,
    measure_evidence,
    reference_rows,
)
from hybrid.filters import MetadataIndex, parse
from hybrid.locks import RWLock, run_each
from hybrid.progress import bar as progress_bar
from hybrid.progress import progress_scope, wanted
from hybrid.rerankers import RerankCandidates, Reranker, get_reranker
from hybrid.results import Explanation, Hit, SourceScore
from hybrid.retrievers import Retriever
from hybrid.storage import atomic, engine_io
from hybrid.storage.files import check_name
from hybrid.store import DocId, DocumentStore
from indexes.base import IndexFormatError, SearchResult, check_k, read_meta, short

FORMAT_VERSION = 2  # 1: meta.json + documents.jsonl + retrievers/ (still read)
_KIND = "HybridRetriever"
PARALLEL_MIN_WORK = 20_000
"""Documents x queries below which ``parallel=True`` searches the retrievers one after another
in the calling thread, where a thread hand-off would cost about as much as it saves (a
single-query search of SciFact's 5,183 documents stays serial; ``benchmarks/concurrency.py``
compares both settings)."""
_T = TypeVar("_T")


class HybridRetriever(AsyncEngineMixin):
    """SPLADE, dense and BM25 retrievers (any subset, any names) fused into one ranking.

    >>> r = HybridRetriever.from_preset("offline")
    >>> r.add(["text one", "text two"], ids=["a", "b"])
    >>> hits = r.search("query", k=10)
    >>> hits[0].id, hits[0].score, hits[0].sources["splade"].rank

    Fusion defaults (each overridable per search call): ``fusion`` is the method name understood
    by :func:`fusion.fuse` (default ``"adaptive"``: z-scored lists summed with per-query weights
    from each retriever's evidence, see :data:`hybrid.config.DEFAULT_CONFIG`; or ``"wsum"``,
    ``"rrf"``, ...); ``weights`` maps retriever names to non-negative weights (missing names
    weigh 1.0, a weight of 0 leaves that retriever out of the search); ``depth`` is how many
    candidates each retriever contributes before fusion.

    Threads: one engine may be shared by any number of threads. Searches (``search``,
    ``retrieve``, ``fuse``, ``get``, ``ids``, ``len``, ``Hit.explain``) run concurrently with each
    other, on several cores (the index kernels release the GIL), and with writes (``add``,
    ``delete``, ``upsert``, ``update_metadata``, ``save``). Each search sees the engine as it was
    before or after any write, never in between: a write is prepared (validated, and its
    documents encoded) while searches go on, then applied as one unit under a readers-writer
    lock, which holds new searches back only while the prepared write is applied (milliseconds
    for a small write; BM25 statistics are updated in O(documents) vectorised, segment merges
    of the SPLADE and BM25 indexes grow with their size). Writes run one at a time, in call
    order per thread. Once ``delete`` (or ``upsert``) returns, no search that starts afterwards
    returns the old document; a search that started before may. ``Hit.explain`` of a hit whose
    document was deleted since raises ``KeyError``. ``parallel=True`` searches the retrievers of
    one query batch in a shared thread pool (the calling thread takes one of them); small
    searches, where a hand-off costs more than it saves, run in the calling thread.
    """

    def __init__(
        self,
        retrievers: Mapping[str, Retriever],
        *,
        config: FusionConfig | None = None,
        fusion: str | None = None,
        weights: Mapping[str, float] | None = None,
        norm: str | None = None,
        rrf_k: float | None = None,
        depth: int | None = None,
        reranker: Any | None = None,
        rerank_top: int = 100,
        parallel: bool = True,
        preset: str | None = None,
        path: str | Path | None = None,
    ) -> None:
        if not isinstance(retrievers, Mapping):
            raise TypeError(
                f"retrievers must be a dict of name -> Retriever, got {short(retrievers)}"
            )
        if not retrievers:
            raise ValueError("a HybridRetriever needs at least one retriever")
        for name, retriever in retrievers.items():
            check_name(name)
            if not isinstance(retriever, Retriever):
                kind = type(retriever).__name__
                raise TypeError(f"retriever {name!r} is a {kind}, not a Retriever")
        self.retrievers: dict[str, Retriever] = dict(retrievers)
        self.store = DocumentStore()
        self._rw = RWLock()  # searches read, a commit writes
        self._writer = threading.RLock()  # one writer at a time
        # Metadata index for filters: built from the store on the first filtered search, then
        # kept up to date by _apply. Whoever replaces self.store sets it back to None.
        self._filter_index: MetadataIndex | None = None
        self._filter_build = threading.Lock()
        self.parallel = parallel
        self.preset = preset
        self.config = DEFAULT_CONFIG
        self.config = self._config(config, fusion, weights, norm, rrf_k, depth)
        self.reranker = None if reranker is None else get_reranker(reranker)
        self.rerank_top = check_k(rerank_top, "rerank_top")
        self._folder: Any = None  # the engine folder of a folder-backed engine
        self._gen = 0  # the folder generation this engine holds
        self._encoders: dict[str, Any] | None = None
        self._broken: str | None = None
        if path is not None:
            engine_io.create(self, Path(path))

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def from_preset(
        cls, name: str = "auto", models: Mapping[str, str] | None = None, **options: Any
    ) -> HybridRetriever:
        """Build an engine from a named preset: ``"pixie"``, ``"offline"`` or ``"auto"``.

        ``"auto"`` uses ``pixie`` when its models are cached or the model hub answers, and
        otherwise says so in one logged line and uses ``offline``. A preset whose models are
        neither local nor downloadable fails at once with
        :class:`~hybrid.models.ModelNotAvailableError` (a ``ValueError``). ``models`` replaces
        a preset's model by role (``{"splade": "/path/to/PIXIE-Splade-v1.5"}``). ``options``
        go to the engine (``fusion=``, ``weights=``, ``depth=``, ``path=`` ...).
        """
        from hybrid.presets import build_retrievers

        preset, retrievers = build_retrievers(name, models)
        return cls(retrievers, preset=preset, **options)

    @property
    def names(self) -> list[str]:
        return list(self.retrievers)

    def __len__(self) -> int:
        return len(self.store)

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={type(r).__name__}" for n, r in self.retrievers.items())
        return f"HybridRetriever({parts}; {len(self)} documents; {_fusion_label(self.config)})"

    # -- documents ------------------------------------------------------------------------------

    def add(
        self,
        texts: str | Sequence[str],
        ids: Sequence[DocId] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        encoded: Mapping[str, Any] | None = None,
        progress: bool | None = None,
    ) -> list[DocId]:
        """Index documents in every retriever; returns their ids (``str(row)`` when not given).

        ``encoded`` optionally gives some retrievers' document encodings already computed
        (retriever name -> what its ``encode_documents`` returns: a CSR matrix for SPLADE, an
        array for dense, token lists for BM25), so they are not encoded again. Every retriever
        encodes the whole batch before any index changes, so a failure while encoding leaves
        the engine as it was.

        ``progress``: one bar per encoder and one for building the indexes, on stderr; ``True``
        / ``False`` force them, ``None`` (default) shows them when stderr is a terminal and
        there are at least :data:`hybrid.progress.PROGRESS_MIN_ITEMS` documents.
        """
        texts = validate_texts(texts, "documents")
        with self._writer, progress_scope(progress):
            batch = self._prepare_add(texts, ids, metadata, encoded)
            self._commit(batch)
        return batch.ids

    def upsert(
        self,
        texts: str | Sequence[str],
        ids: DocId | Sequence[DocId],
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        encoded: Mapping[str, Any] | None = None,
    ) -> list[DocId]:
        """Insert documents, replacing those whose id is already indexed; returns the ids.

        Atomic: a search sees every document of the call replaced or none. The ids of one call
        must be unique. A replaced document gets its new text and metadata (``{}`` when not
        given) and moves to the end of :meth:`ids`. Everything is validated and encoded before
        anything changes. ``encoded`` is as for :meth:`add`.
        """
        if isinstance(texts, str):
            texts = [texts]
            ids = [ids] if isinstance(ids, (str, int)) else ids
        texts = validate_texts(texts, "documents")
        if ids is None:
            raise TypeError("upsert needs ids (one per document) to know what to replace")
        with self._writer:
            batch = self._prepare_add(texts, ids, metadata, encoded, replacing=True)
            batch.delete_rows = self.store.rows_of([i for i in batch.ids if i in self.store])
            self._commit(batch)
        return batch.ids

    def delete(self, ids: DocId | Sequence[DocId]) -> None:
        """Remove documents by id from every retriever.

        Every id is checked before anything is removed: a wrong type raises ``TypeError``, an
        id given twice ``ValueError``, ids the engine does not hold ``KeyError`` (naming them).
        """
        ids = self.store.check_ids(ids, "ids")
        with self._writer:
            rows = self.store.rows_of(dict.fromkeys(ids))  # each id once
            self._commit(WriteBatch(delete_rows=rows))

    def update_metadata(
        self,
        ids: DocId | Sequence[DocId],
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None],
    ) -> None:
        """Replace the metadata of indexed documents, without encoding them again.

        ``update_metadata("a", {"lang": "en"})`` for one document, or lists of the same length
        (``None`` clears a document's metadata). The new dict replaces the old one whole.
        Unknown ids raise ``KeyError`` naming them; nothing changes then.
        """
        single = isinstance(ids, (str, int)) and not isinstance(ids, bool)
        ids = _as_id_list(ids)
        if single:
            if not isinstance(metadata, Mapping):
                raise TypeError(
                    f"metadata for one id must be a dict, got {type(metadata).__name__}"
                )
            metadata = [metadata]
        elif isinstance(metadata, Mapping) or not isinstance(metadata, Sequence):
            raise TypeError("metadata must be a list of dicts, one per id")
        if len(metadata) != len(ids):
            raise ValueError(f"got {len(ids)} ids but {len(metadata)} metadata entries")
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate id in ids: {_first_duplicate(ids)!r}")
        for i, m in enumerate(metadata):
            if m is not None and not isinstance(m, Mapping):
                raise TypeError(f"metadata[{i}] must be a dict or None")
        with self._writer:
            rows = self.store.rows_of(ids)
            updates = {int(r): dict(m) if m else {} for r, m in zip(rows, metadata, strict=True)}
            self._commit(WriteBatch(metadata_updates=updates))

    @overload
    def get(self, ids: DocId) -> Document: ...
    @overload
    def get(self, ids: Sequence[DocId]) -> list[Document]: ...

    def get(self, ids: DocId | Sequence[DocId]) -> Document | list[Document]:
        """The stored text and metadata of documents by id: one :class:`Document` for one id,
        a list in the order asked for a list. Unknown ids raise ``KeyError`` naming them."""
        single = isinstance(ids, (str, int)) and not isinstance(ids, bool)
        id_list = _as_id_list(ids)
        with self._rw.read():
            rows = self.store.rows_of(id_list).tolist()
            docs = [
                Document(self.store.ids[r], self.store.texts[r], dict(self.store.metadata[r]))
                for r in rows
            ]
        return docs[0] if single else docs

    def ids(self) -> list[DocId]:
        """The ids of the live documents, in insertion order."""
        with self._rw.read():
            return [self.store.ids[r] for r in range(self.store.n_rows) if self.store.live[r]]

    # -- the write path -------------------------------------------------------------------------
    #
    # Every write (add, delete, and whatever combines them) is prepared first (validated and
    # encoded, without blocking searches), then committed: applied to every retriever and the
    # document store as one unit while searches wait, so a search sees the engine before or
    # after a write, never in between. ``self._writer`` serialises writers (preparation
    # included, so two writers cannot both claim one id).

    def _prepare_add(
        self,
        texts: list[str],
        ids: Sequence[DocId] | None,
        metadata: Sequence[Mapping[str, Any] | None] | None,
        encoded: Mapping[str, Any] | None,
        replacing: bool = False,
    ) -> WriteBatch:
        """Validate a batch of new documents and encode it for every retriever (``replacing``:
        an upsert, whose ids may already be indexed)."""
        ids, meta = self.store.check_new(texts, ids, metadata, replacing=replacing)
        if encoded is not None and not isinstance(encoded, Mapping):
            raise TypeError(
                f"encoded must be a dict of retriever name -> encodings, got {short(encoded)}"
            )
        given = dict(encoded or {})
        unknown = set(given) - set(self.names)
        if unknown:
            raise ValueError(f"encoded given for unknown retrievers {sorted(unknown)}")
        for name, value in given.items():
            rows = value.shape[0] if hasattr(value, "shape") else len(value)
            if rows != len(texts):
                raise ValueError(f"encoded[{name!r}] has not one row per document ({len(texts)})")
        todo = [n for n in self.names if n not in given]
        encoded = {**given, **self._map(lambda r: r.encode_documents(texts), todo)}
        return WriteBatch(texts=list(texts), ids=ids, metadata=meta, encoded=encoded)

    def _commit(self, batch: WriteBatch) -> None:
        """Apply a prepared write to every retriever and the store, as one unit; on a
        folder-backed engine it is durable (one SQLite commit) before this returns."""
        if self._broken:
            raise RuntimeError(self._broken)
        for name, value in batch.encoded.items():
            atomic.check_encoded(name, value, batch.ids)
        with self._rw.write():
            atomic.check_batch(self.store, batch)
            if self._folder is None:
                self._apply(batch)
                return
            pending = self._folder.begin_commit(batch, self.store, self.names)
            try:
                undo = self._apply(batch)
            except BaseException:
                self._folder.abort()
                raise
            try:
                self._folder.finish_commit(pending)
            except BaseException:
                undo()
                raise
            self._gen = pending["gen"]

    def _apply(self, batch: WriteBatch) -> None:
        """Appends to every retriever, then deletes, then the store: all or nothing (any
        exception leaves the engine as it was and names the documents). Returns a function
        that undoes the whole batch (for a durable commit that fails afterwards)."""
        show = bool(batch.texts) and wanted(None, len(batch.texts))  # the caller's scope decides
        with progress_bar(len(self.names), "build indexes", show, unit="index") as bar:

            def indexed(name: str) -> None:
                bar.set_postfix_str(name, refresh=False)
                bar.update(1)

            undo = atomic.apply(self, batch, indexed)
        self._update_filter_index(batch)

        def undo_all() -> None:
            undo()
            self._filter_index = None  # derived state: rebuilt by the next filtered search

        return undo_all

    def _update_filter_index(self, batch: WriteBatch) -> None:
        """Keep the metadata index (if built) in step with a committed batch."""
        index = self._filter_index
        if index is None:
            return
        try:
            if batch.delete_rows.size:
                index.delete(batch.delete_rows)
            if batch.metadata_updates:
                index.update(batch.metadata_updates)
            if batch.texts:
                index.append(batch.metadata)
        except Exception:
            self._filter_index = None  # rebuilt from the store by the next filtered search

    # -- search ---------------------------------------------------------------------------------

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
        :class:`~hybrid.rerankers.Reranker`, or any ``(query, texts) -> scores`` callable)
        re-orders the best ``rerank_top`` fused candidates (default: the engine's reranker and
        ``rerank_top``); each hit keeps its ``fused_score`` and ``fused_rank``.

        When ``k`` (or ``rerank_top`` with a reranker) exceeds the fusion ``depth``, this call
        uses ``depth = k``: each retriever then contributes enough candidates for ``k`` hits
        whenever the collection holds that many matching documents.

        ``filter`` restricts the search to documents whose metadata matches it (the language of
        :mod:`hybrid.filters`, e.g. ``{"lang": "ko", "year": {"$gte": 2020}}``). Every
        retriever searches only those documents, so up to ``k`` hits come back however few
        match; each retriever's candidates are its unfiltered ranking with the other documents
        removed. An invalid filter raises :class:`~hybrid.filters.FilterError` (a ``ValueError``).
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
        encoded = self._map(lambda r: r.encode_queries(queries), names)  # no lock held
        with self._rw.read():  # one consistent state from index search to hits
            allowed = self._allowed(filter)
            if allowed is not None and not allowed.any():
                nothing: list[list[Hit]] = [[] for _ in queries]
                return nothing[0] if single else nothing
            candidates = self._retrieve_encoded(
                queries, encoded, cfg.retrieval_depth, names, allowed, filter
            )
            hits = self._fuse(candidates, top, cfg)
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
        encoded = self._map(lambda r: r.encode_queries(queries), names)
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
    ) -> Candidates:
        """Search every named retriever with its encoded queries (caller holds the read lock);
        ``allowed`` (the row mask of ``filter``, see :meth:`_allowed`) restricts them."""
        work = len(self.store) * len(queries)  # small searches stay in the calling thread
        results = self._each(
            lambda n: self._search_retriever(n, encoded[n], depth, allowed, filter), names, work
        )
        return Candidates(queries=queries, results=results, encoded=dict(encoded))

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
        k = check_k(k)
        cfg = self._config(config)
        names = [n for n in candidates.results if self._weight(cfg, n) > 0]
        if not names:
            raise ValueError("every retriever weight is 0: nothing to fuse")
        weights = [self._weight(cfg, n) for n in names]
        evidence = None
        if cfg.method == fusion_lib.ADAPTIVE:
            evidence = self.evidence(candidates, names)
        names, fused = candidates.fuse(cfg, k, names)  # through fusion/, as evaluation does
        label = _fusion_label(cfg)
        out = []
        for q, result in enumerate(fused):
            ev = None if evidence is None else evidence[q]
            why = partial(self._weighting, names, weights, result.weights, ev, candidates, q)
            out.append(self._hits(result, names, ev, label, why, candidates, q))
        return out

    def evidence(self, candidates: Candidates, names: Sequence[str] | None = None) -> np.ndarray:
        """``(n_queries, len(names))`` evidence of each retriever for each query, in [0, 1].

        The query-only measure of :meth:`Retriever.evidence` times, for script-bound retrievers
        (BM25, SPLADE), the :func:`~hybrid.evidence.document_reach` of their collection (kept in
        ``candidates.evidence``, the parts in ``candidates.read`` and ``candidates.reach``, so
        fusing the same candidates again does not measure again); what ``"adaptive"`` fusion
        weighs by.
        """
        names = list(candidates.results if names is None else names)
        ranked = {n: r.ids for n, r in candidates.results.items()}
        reference, candidates.reference = reference_rows(self.retrievers, ranked)
        for name in names:
            if name in candidates.evidence:
                continue
            retriever = self.retrievers[name]
            encoded = candidates.encoded.get(name)
            if encoded is None:
                encoded = retriever.encode_queries(candidates.queries)
            read, reach = measure_evidence(retriever, candidates.queries, encoded, name, reference)
            candidates.read[name], candidates.reach[name] = read, reach
            candidates.evidence[name] = read * reach
        return np.stack([candidates.evidence[n] for n in names], axis=1)

    def _weighting(
        self,
        names: list[str],
        base: list[float],
        used: np.ndarray,
        evidence: np.ndarray | None,
        candidates: Candidates,
        q: int,
    ) -> str | None:
        """Why each retriever had its weight for one query, in words (adaptive fusion only)."""
        if evidence is None:
            return None
        parts = []
        for name, b, w, e in zip(names, base, used.tolist(), evidence.tolist(), strict=True):
            scale = "" if b == 1.0 else f" = {b:g} x {e:.2f}"
            why = self._why(name, candidates, q, e)
            parts.append(f"{name} {w:.2f}{scale} ({why})")
        if not np.any(np.asarray(base) * evidence > 0):
            return (
                "weights for this query: no retriever has evidence for it, so the configured "
                "weights are used; " + ", ".join(parts)
            )
        return "weights for this query (configured weight x evidence): " + ", ".join(parts)

    def _why(self, name: str, candidates: Candidates, q: int, value: float) -> str:
        """One retriever's evidence for query ``q`` in words: the query part, then the reach."""
        retriever = self.retrievers[name]
        read = candidates.read.get(name)
        why = retriever.describe_evidence(value if read is None else float(read[q]))
        stats = retriever.collection_stats()
        reach = candidates.reach.get(name)
        if stats is not None and reach is not None and retriever.script_bound:
            script = dominant_script(candidates.queries[q])
            why += "; " + describe_reach(stats, script, float(reach[q]), candidates.reference)
        return why

    def _hits(
        self,
        result,
        names: list[str],
        evidence: np.ndarray | None,
        label: str,
        weighting: Callable[[], str | None] | None,
        candidates: Candidates,
        q: int,
    ) -> list[Hit]:
        hits = []
        used = result.weights.tolist()
        for i, row in enumerate(result.ids.tolist()):
            sources = {
                name: SourceScore(
                    rank=int(result.ranks[i, j]),
                    score=float(result.raw_scores[i, j]),
                    normalized_score=float(result.normalized[i, j]),
                    contribution=float(result.contributions[i, j]),
                    weight=used[j],
                    evidence=None if evidence is None else float(evidence[j]),
                )
                for j, name in enumerate(names)
            }
            score = float(result.scores[i])
            hits.append(
                Hit(
                    id=self.store.ids[row],
                    score=score,
                    text=self.store.texts[row],
                    rank=i + 1,
                    sources=sources,
                    fused_score=score,
                    fused_rank=i + 1,
                    metadata=self.store.metadata[row],
                    _row=row,
                    _explainer=self._explainer(row, label, candidates, q, weighting),
                )
            )
        return hits

    def _explainer(
        self,
        row: int,
        label: str,
        candidates: Candidates,
        q: int,
        weighting: Callable[[], str | None] | None = None,
    ) -> Callable:
        def explain(hit: Hit, top: int | None) -> Explanation:
            splade, bm25, notes = [], [], []
            for name, source in hit.sources.items():
                retriever = self.retrievers[name]
                if retriever.kind not in ("splade", "bm25"):
                    continue
                what = "tokens" if retriever.kind == "splade" else "terms"
                if not source.rank:
                    notes.append(f"{name}: no {what} shown: it did not return this document")
                    continue
                if source.evidence is not None and source.evidence < EXPLAIN_MIN_EVIDENCE:
                    notes.append(
                        f"{name}: no {what} shown: its evidence for this query is "
                        f"{source.evidence:.2f}, so its matches are noise "
                        f"({self._why(name, candidates, q, source.evidence)})"
                    )
                    continue
                encoded = candidates.encoded_query(retriever, name, q)
                with self._rw.read():  # the indexes as they are now
                    try:
                        terms = retriever.explain_terms(encoded, row, top)
                    except KeyError:
                        raise KeyError(
                            f"document {hit.id!r} was deleted or replaced after this search; "
                            "search again to explain it"
                        ) from None
                (splade if retriever.kind == "splade" else bm25).extend(terms)
            return Explanation(
                id=hit.id,
                score=hit.score,
                fusion=label,
                retrievers=hit.sources,
                splade_tokens=splade,
                bm25_terms=bm25,
                reranker_score=hit.reranker_score,
                weighting=None if weighting is None else weighting(),
                notes=notes,
            )

        return explain

    # -- persistence ----------------------------------------------------------------------------

    auto_refresh = True
    """Read-only folder engines check for new commits before each search (one SQLite query)."""

    @property
    def path(self) -> Path | None:
        """The folder of a folder-backed engine (``None`` for one in memory)."""
        return None if self._folder is None else self._folder.path

    def save(self, path: str | Path) -> Path:
        """Write a full copy of the engine to folder ``path`` (format 2), crash-safely.

        A new folder is written beside the target and renamed into place; a saved engine
        already at ``path`` is replaced by one atomic commit (never deleted first); a folder
        that is not a saved engine is refused. On a folder-backed engine, ``save`` to its own
        folder is :meth:`optimize`.
        """
        path = Path(path)
        if self._folder is not None and path.resolve() == self._folder.path.resolve():
            self.optimize()
            return path
        with self._rw.read():  # one consistent state, whatever writers do meanwhile
            return engine_io.save(self, path)

    @classmethod
    def open(
        cls,
        path: str | Path,
        encoders: Mapping[str, Any] | None = None,
        verify: bool = True,
        readonly: bool = False,
        **options: Any,
    ) -> HybridRetriever:
        """Open a saved engine folder in place: every write is durable when it returns.

        One writer at a time per folder (a lock file; a second gets ``EngineLockedError``);
        any number of ``readonly=True`` engines (other processes) search it and see each
        commit after :meth:`refresh` (automatic before a search, see ``auto_refresh``).
        ``verify`` checks every file's CRC-32 and every document row's (sizes, headers and
        index bounds are always checked); damage raises ``IndexCorruptedError`` naming the
        file. A format-1 folder is upgraded in place. ``encoders`` as in :meth:`load`.
        """
        engine = engine_io.open_engine(cls, Path(path), encoders, verify, readonly, options)
        engine._encoders = dict(encoders or {})
        return engine

    @classmethod
    def load(
        cls,
        path: str | Path,
        encoders: Mapping[str, Any] | None = None,
        verify: bool = True,
        **options: Any,
    ) -> HybridRetriever:
        """Load a saved engine into memory (later writes stay in memory; :meth:`save` them).

        ``encoders`` replaces saved encoders/analyzers by retriever name (required for custom
        callables, which cannot be saved); ``options`` override settings; ``verify`` as in
        :meth:`open`. Reads format 2 and format 1 folders. No model is loaded here: each saved
        encoder is built on its first use, so a search that gives a retriever weight 0 never
        loads that retriever's model.
        """
        path = Path(path)
        if not path.is_dir():
            raise IndexFormatError(f"{path} is not a folder")
        if engine_io.kind_of(path) == "v1":
            return cls._load_v1(path, encoders, options)
        engine = cls.open(path, encoders=encoders, verify=verify, readonly=True, **options)
        engine_io.detach(engine)
        return engine

    def refresh(self) -> bool:
        """Take the commits another process made to this read-only engine's folder; returns
        whether anything changed. Searches never see a partial commit."""
        if self._folder is None or not self._folder.readonly:
            return False
        changed = engine_io.refresh(self)
        if changed:
            self._filter_index = None  # rebuilt from the new state by the next filtered search
        return changed

    def optimize(self) -> None:
        """Fold the commits of a folder-backed engine into a new snapshot of its indexes
        (makes opening faster); searches continue meanwhile."""
        if self._folder is None:
            raise ValueError("optimize() applies to folder-backed engines (open/path=)")
        with self._writer, self._rw.read():
            self._folder.write_base(self.retrievers)

    def close(self) -> None:
        """Release the folder (its writer lock, the database); an in-memory engine: no-op."""
        if self._folder is not None:
            self._folder.close()
            self._folder = None

    def __enter__(self) -> HybridRetriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _manifest_extra(self) -> dict[str, Any]:
        """Engine-type settings saved in the manifest (subclasses add theirs)."""
        return {}

    @classmethod
    def _load_retriever(cls, folder: Path, encoder: Any | None) -> Retriever:
        return Retriever.load(folder, encoder)

    @classmethod
    def _from_manifest(
        cls, meta: dict[str, Any], retrievers: dict[str, Retriever], options: dict[str, Any]
    ) -> HybridRetriever:
        settings: dict[str, Any] = {
            "config": FusionConfig.from_dict(meta["config"]),
            "preset": meta.get("preset"),
        }
        settings.update(options)
        return cls(retrievers, **settings)

    @classmethod
    def _load_v1(
        cls, path: Path, encoders: Mapping[str, Any] | None, options: dict[str, Any]
    ) -> HybridRetriever:
        """A format-1 folder (``meta.json``, ``documents.jsonl``, ``retrievers/``) in memory."""
        meta = read_meta(path, _KIND, 1)
        encoders = dict(encoders or {})
        unknown = set(encoders) - set(meta["retrievers"])
        if unknown:
            raise ValueError(f"encoders given for unknown retrievers {sorted(unknown)}")
        retrievers = {
            name: cls._load_retriever(path / "retrievers" / check_name(name), encoders.get(name))
            for name in meta["retrievers"]
        }
        return cls._assemble(path, meta, retrievers, options)

    @classmethod
    def _assemble(
        cls,
        path: Path,
        meta: dict[str, Any],
        retrievers: dict[str, Retriever],
        options: dict[str, Any],
    ) -> HybridRetriever:
        """An engine from loaded retrievers and a format-1 folder's settings and documents."""
        engine = cls._from_manifest(meta, retrievers, options)
        engine.store = DocumentStore.load(path / "documents.jsonl")
        for name, retriever in retrievers.items():
            if len(retriever) != len(engine.store):
                raise IndexFormatError(
                    f"{path}: retriever {name!r} holds {len(retriever)} documents,"
                    f" the document store {len(engine.store)}"
                )
        engine._backfill_stats()
        return engine

    def _backfill_stats(self) -> None:
        """Collection statistics of the script-bound retrievers brought in line with the
        store: computed from the stored texts for retrievers saved without them (older
        folders), extended by the rows that commits replayed into the index after its saved
        state (they carry encodings, not texts)."""
        store = self.store
        live = np.asarray(store.live, dtype=bool)
        for retriever in self.retrievers.values():
            if not retriever.script_bound or retriever.collection_stats() is not None:
                continue
            stats = retriever.stats
            start = 0 if stats is None or stats.n_rows > store.n_rows else stats.n_rows
            if start == 0:
                retriever.stats = None
            if start < store.n_rows:
                texts = list(store.texts[start : store.n_rows])
                retriever.observe_documents(texts, np.arange(start, store.n_rows))
            if retriever.stats is not None:
                retriever.stats.delete(np.flatnonzero(~live))

    # -- helpers --------------------------------------------------------------------------------

    def _config(
        self,
        config: FusionConfig | None = None,
        fusion: str | None = None,
        weights: Mapping[str, float] | None = None,
        norm: str | None = None,
        rrf_k: float | None = None,
        depth: int | None = None,
    ) -> FusionConfig:
        """The engine's configuration (or ``config``) with the given fields replaced, checked."""
        base = self.config if config is None else config
        if not isinstance(base, FusionConfig):
            raise TypeError(f"config must be a FusionConfig, got {type(base).__name__}")
        if fusion in fusion_lib.RANK_METHODS and norm is None:
            base = replace(base, norm=None)  # a rank method takes no normalisation
        cfg = base.replace(method=fusion, norm=norm, rrf_k=rrf_k, depth=depth)
        cfg = replace(cfg, weights=self._check_weights(cfg.weights if weights is None else weights))
        check_k(cfg.depth, "depth")
        check_k(cfg.stats_depth, "stats_depth")
        fusion_lib.check_options(cfg.method, cfg.norm, cfg.rrf_k)
        return cfg

    def _check_weights(self, weights: Mapping[str, float]) -> dict[str, float]:
        if not isinstance(weights, Mapping):
            raise TypeError("weights must be a dict of retriever name -> weight")
        for name, value in weights.items():
            if name not in self.retrievers:
                names = ", ".join(self.names)
                raise ValueError(f"unknown retriever {name!r} in weights; this engine has: {names}")
            if isinstance(value, (bool, np.bool_)) or not isinstance(
                value, (int, float, np.integer, np.floating)
            ):
                raise TypeError(f"weight of {name!r} must be a number, got {short(value)}")
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"weight of {name!r} must be finite and >= 0, got {value}")
        if all(weights.get(n, 1.0) == 0 for n in self.names):
            raise ValueError("every retriever weight is 0: nothing to search")
        return {name: float(value) for name, value in weights.items()}

    @staticmethod
    def _weight(cfg: FusionConfig, name: str) -> float:
        return float(cfg.weights.get(name, 1.0))

    def _map(self, fn: Callable[[Any], _T], names: list[str]) -> dict[str, _T]:
        """Apply ``fn`` to each named retriever, in parallel threads when enabled."""
        return self._each(lambda n: fn(self.retrievers[n]), names)

    def _each(
        self, fn: Callable[[str], _T], names: list[str], work: int | None = None
    ) -> dict[str, _T]:
        """Apply ``fn`` to each retriever name: in the shared thread pool when enabled and
        ``work`` (documents x queries; None: unknown, e.g. encoding) is not tiny."""
        parallel = self.parallel and (work is None or work >= PARALLEL_MIN_WORK)
        return run_each(fn, names, parallel)

    # Public hooks for engines built on this one (e.g. hybrid.backends.qdrant); the underscored
    # names stay as the same functions.
    resolve_config = _config
    weight_of = _weight
    map_retrievers = _map
    explainer = _explainer
    assemble = _assemble


def _as_id_list(ids: DocId | Sequence[DocId]) -> list[DocId]:
    """One id or a list of ids as a list, checked: str or int each."""
    if isinstance(ids, (str, int)) and not isinstance(ids, bool):
        return [ids]
    if isinstance(ids, bytes) or not isinstance(ids, Sequence):
        kind = type(ids).__name__
        raise TypeError(f"ids must be an id (str or int) or a list of them, got {kind}")
    out = list(ids)
    for i, doc_id in enumerate(out):
        if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
            raise TypeError(f"ids[{i}] is {type(doc_id).__name__}; ids must be str or int")
    return out


def _first_duplicate(ids: list[DocId]) -> DocId:
    seen: set[DocId] = set()
    for doc_id in ids:
        if doc_id in seen:
            return doc_id
        seen.add(doc_id)
    raise ValueError("no duplicate")  # pragma: no cover - callers check first


def _fusion_label(cfg: FusionConfig) -> str:
    if cfg.method in fusion_lib.RANK_METHODS:
        return f"{cfg.method} k={cfg.rrf_k:g}" if cfg.method == "rrf" else cfg.method
    norm = fusion_lib.check_options(cfg.method, cfg.norm, cfg.rrf_k)
    if cfg.method == fusion_lib.ADAPTIVE:
        return f"{cfg.method} norm={norm} depth={cfg.depth} stats_depth={cfg.stats_depth}"
    return f"{cfg.method} norm={norm}"


@dataclass
class WriteBatch:
    """One write to an engine: rows to delete, then documents to append (both for an upsert),
    and metadata to replace on live rows (``metadata_updates``: row -> new metadata).

    ``encoded`` maps each retriever name to the batch's document encodings.
    """

    delete_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    texts: list[str] = field(default_factory=list)
    ids: list[DocId] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    encoded: dict[str, Any] = field(default_factory=dict)
    metadata_updates: dict[int, dict[str, Any]] = field(default_factory=dict)
