"""Engine-side glue for the Qdrant backend: retrievers over one collection, payloads, and
server-side fusion.

>>> from indexes.qdrant import QdrantStore
>>> from hybrid.backends.qdrant import QdrantHybridRetriever
>>> store = QdrantStore("scifact", url="http://qdrant:6333")       # or path="./qdrant-data"
>>> engine = QdrantHybridRetriever.from_store(store, preset="offline")
>>> engine.add(texts, ids=ids, metadata=meta)     # vectors + payload (id, text, metadata)
>>> engine.search("query", k=10)                              # client-side fusion (fusion/)
>>> engine.search("query", k=10, server_fusion="rrf")         # one query_points, prefetch + RRF

Any retriever of a plain :class:`~hybrid.engine.HybridRetriever` can take a Qdrant view as its
``index`` (see :func:`qdrant_retrievers`); :class:`QdrantHybridRetriever` adds what needs the
engine: payloads, server-side fusion, and reopening saved Qdrant-backed retrievers.

Server-side fusion (``server_fusion="rrf"`` or ``"dbsf"``) sends one ``query_points`` per query
with one prefetch (``limit=depth``) per retriever of non-zero weight and Qdrant's fusion on top.
Qdrant ranks the fused list itself, so per-retriever ranks are not in its answer; with
``with_sources=True`` (default) the same batch request also runs each prefetch alone and the
hits' ``sources`` carry each retriever's rank and raw score (``normalized_score`` and
``contribution`` are NaN: Qdrant does not return them). With ``with_sources=False`` one request
per query is sent and ``sources`` is empty. Conventions that differ from ``fusion/``:

- RRF: Qdrant scores ``1 / (rank / w + k - 1)`` (rank from 1, weight w); we send ``k = rrf_k + 1``
  so unweighted scores equal ``fusion.rrf``'s ``1 / (rrf_k + rank)``. With weights, Qdrant
  divides the rank by the weight where ``fusion.rrf`` multiplies the term by it: rankings can
  differ. ``rrf_k`` must be an integer.
- DBSF: each list is normalised to ``(s - (mean - 3 sd)) / 6 sd`` and summed; Qdrant takes no
  weights (non-equal weights raise ``ValueError``).
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hybrid.backends.qdrant_filters import PREFIX, payload_schemas, to_qdrant
from hybrid.encoders.base import validate_texts
from hybrid.engine import HybridRetriever
from hybrid.engine.candidates import Candidates
from hybrid.engine.config import FusionConfig
from hybrid.engine.results import Hit, SourceScore
from hybrid.engine.retrievers import (
    BM25Retriever,
    DenseRetriever,
    Retriever,
    SpladeRetriever,
)
from indexes.base import check_k

SERVER_FUSIONS = ("rrf", "dbsf")


def _qdrant_models() -> Any:
    from indexes.qdrant import qdrant_models

    return qdrant_models()


def qdrant_retrievers(
    store: Any,
    splade: Any | None = None,
    dense: Any | None = None,
    bm25: Any | None = None,
) -> dict[str, Retriever]:
    """Retrievers whose indexes are views of ``store``: pass an encoder (SPLADE, dense) or an
    analyzer (BM25, e.g. ``"multilingual"``) for each one wanted. Names: splade, dense, bm25."""
    from indexes.qdrant import QdrantBM25Index, QdrantDenseIndex, QdrantSparseIndex

    out: dict[str, Retriever] = {}
    if splade is not None:
        out["splade"] = SpladeRetriever(splade, QdrantSparseIndex(store, "splade", dim=splade.dim))
    if dense is not None:
        index = QdrantDenseIndex(
            store,
            "dense",
            dim=dense.dim,
            metric=dense.metric,
            model_name=getattr(dense, "name", None),
        )
        out["dense"] = DenseRetriever(dense, index)
    if bm25 is not None:
        retriever = BM25Retriever(bm25, QdrantBM25Index(store, "bm25"))
        out["bm25"] = retriever
    if not out:
        raise ValueError("give at least one of splade=, dense=, bm25=")
    return out


def _is_view(index: Any) -> bool:
    from indexes.qdrant import QdrantView

    return isinstance(index, QdrantView)


class QdrantHybridRetriever(HybridRetriever):
    """A :class:`HybridRetriever` some or all of whose retrievers live in Qdrant.

    Besides the engine's behaviour it writes each document's payload (``doc_id``, ``text``,
    ``metadata``) into the Qdrant points, offers server-side fusion (``server_fusion=`` on the
    engine or per search; ``None`` keeps client-side fusion with every method of ``fusion/``),
    and reopens saved engines whose retrievers use Qdrant views (``load``).
    """

    def __init__(
        self,
        retrievers: Mapping[str, Retriever],
        *,
        server_fusion: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(retrievers, **options)
        self.server_fusion = _check_server_fusion(server_fusion)
        stores = {}
        for retriever in self.retrievers.values():
            index = getattr(retriever, "index", None)
            if _is_view(index):
                key = (id(index.store.client), index.store.collection)
                stores.setdefault(key, index.store)
        self.qdrant_stores = list(stores.values())

    @classmethod
    def from_store(
        cls, store: Any, preset: str = "offline", bm25: Any = "multilingual", **options: Any
    ) -> QdrantHybridRetriever:
        """An engine with a preset's encoders (``"offline"`` or ``"pixie"``) over ``store``."""
        from hybrid.engine.presets import build_retrievers

        used, local = build_retrievers(preset)
        retrievers = qdrant_retrievers(
            store,
            splade=local["splade"].encoder,
            dense=local["dense"].encoder,
            bm25=local["bm25"].analyzer if bm25 == "multilingual" else bm25,
        )
        return cls(retrievers, preset=used, **options)

    # -- documents -------------------------------------------------------------------------------

    def add(self, texts, ids=None, metadata=None, encoded=None):
        start = self.store.n_rows
        added = super().add(texts, ids=ids, metadata=metadata, encoded=encoded)
        rows = list(range(start, start + len(added)))
        payloads = [
            {
                "doc_id": self.store.ids[r],
                "text": self.store.texts[r],
                "metadata": self.store.metadata[r],
            }
            for r in rows
        ]
        schemas = payload_schemas(self.store.metadata[r] for r in rows)
        for store in self.qdrant_stores:
            store.set_payloads(rows, payloads)
            for field, schema in schemas.items():
                store.ensure_payload_index(PREFIX + field, schema)
        return added

    def _search_retriever(self, name, encoded, depth, allowed, filter):
        """Qdrant views filter inside Qdrant (a payload filter on ``metadata.*``); local
        retrievers take the row mask."""
        retriever = self.retrievers[name]
        if filter is None or not _is_view(getattr(retriever, "index", None)):
            return super()._search_retriever(name, encoded, depth, allowed, filter)
        return retriever.search_encoded(encoded, depth, allowed=self._payload_filter(filter))

    def _payload_filter(self, filter: Mapping[str, Any]) -> Any:
        return to_qdrant(filter, _qdrant_models())

    # -- search ----------------------------------------------------------------------------------

    def search(self, query, k: int = 10, *, server_fusion: str | None = None, **kwargs: Any):
        """Like :meth:`HybridRetriever.search`; ``server_fusion`` ("rrf", "dbsf") or the
        engine's ``server_fusion`` makes Qdrant fuse (see the module docstring)."""
        method = _check_server_fusion(server_fusion) or self.server_fusion
        if method is None:
            return super().search(query, k, **kwargs)
        client_only = [n for n in ("fusion", "norm") if kwargs.get(n) is not None]
        if client_only:
            raise ValueError(
                f"{', '.join(client_only)} apply to client-side fusion; with server_fusion="
                f"{method!r} Qdrant fuses (pass server_fusion=None to fuse with fusion/)"
            )
        kwargs.pop("fusion", None)
        kwargs.pop("norm", None)
        return self.search_server(query, k, method=method, **kwargs)

    def search_server(
        self,
        query: str | Sequence[str],
        k: int = 10,
        *,
        method: str = "rrf",
        with_sources: bool = True,
        config: FusionConfig | None = None,
        weights: Mapping[str, float] | None = None,
        rrf_k: float | None = None,
        depth: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> list[Hit] | list[list[Hit]]:
        """Top-``k`` hits fused by Qdrant (one ``query_points`` with prefetches per query);
        ``filter`` (see :mod:`hybrid.engine.filters`) becomes a payload filter on every prefetch."""
        method = _check_server_fusion(method)
        single = isinstance(query, str)
        queries = validate_texts(query, "queries")
        k = check_k(k)
        cfg = self.resolve_config(config, None, weights, None, rrf_k, depth)
        names = [n for n in self.names if self.weight_of(cfg, n) > 0]
        stores = {
            id(self.retrievers[n].index.store.client)
            for n in names
            if _is_view(getattr(self.retrievers[n], "index", None))
        }
        if len(stores) != 1 or not all(
            _is_view(getattr(self.retrievers[n], "index", None)) for n in names
        ):
            raise ValueError(
                "server-side fusion needs every searched retriever in the same Qdrant "
                f"collection; retrievers {names} are not (use client-side fusion)"
            )
        if len(self.store) == 0:
            empty: list[list[Hit]] = [[] for _ in queries]
            return empty[0] if single else empty
        models = _qdrant_models()
        weights_l = [self.weight_of(cfg, n) for n in names]
        if method == "rrf":
            if float(cfg.rrf_k) != int(cfg.rrf_k):
                raise ValueError(f"Qdrant's RRF takes an integer k, got rrf_k={cfg.rrf_k}")
            same = all(w == weights_l[0] for w in weights_l)
            fusion_query = models.RrfQuery(
                rrf=models.Rrf(k=int(cfg.rrf_k) + 1, weights=None if same else weights_l)
            )
        else:
            if any(w != weights_l[0] for w in weights_l):
                raise ValueError("Qdrant's DBSF takes no weights; use equal weights or 'rrf'")
            fusion_query = models.FusionQuery(fusion=models.Fusion.DBSF)
        depth_ = max(cfg.depth, k)
        store = self.retrievers[names[0]].index.store
        encoded = self.map_retrievers(lambda r: r.encode_queries(queries), names)
        payload = None if filter is None else self._payload_filter(filter)
        singles = {
            n: [
                r if r is None or payload is None else r.model_copy(update={"filter": payload})
                for r in self.retrievers[n].index.query_requests(encoded[n], depth_)
            ]
            for n in names
        }
        requests, layout = [], []
        for q in range(len(queries)):
            prefetch = []
            for n in names:
                request = singles[n][q]
                if request is not None:
                    prefetch.append(
                        models.Prefetch(
                            query=request.query,
                            using=request.using,
                            limit=depth_,
                            filter=request.filter,
                        )
                    )
            if not prefetch:
                layout.append(None)
                continue
            layout.append(len(requests))
            requests.append(
                models.QueryRequest(
                    prefetch=prefetch, query=fusion_query, limit=k, with_payload=False
                )
            )
            if with_sources:
                requests += [singles[n][q] for n in names]
        live = [r for r in requests if r is not None]
        answers = iter(store.query(live))
        results = [next(answers) if r is not None else [] for r in requests]
        label = f"qdrant-{method}" + (f" k={cfg.rrf_k:g}" if method == "rrf" else "")
        hits = []
        for q, at in enumerate(layout):
            if at is None:
                hits.append([])
                continue
            fused = results[at]
            per = {}
            if with_sources:
                for j, n in enumerate(names):
                    per[n] = {
                        int(p.id): (rank, float(p.score))
                        for rank, p in enumerate(results[at + 1 + j], 1)
                    }
            hits.append(self._server_hits(fused, names, cfg, per, label, q, encoded, queries))
        return hits[0] if single else hits

    def _server_hits(self, fused, names, cfg, per, label, q, encoded, queries) -> list[Hit]:
        candidates = Candidates(queries=list(queries), results={}, encoded=encoded)
        out = []
        for i, point in enumerate(fused):
            row = int(point.id)
            sources = {}
            for n in names if per else []:
                rank, raw = per[n].get(row, (0, math.nan))
                sources[n] = SourceScore(
                    rank=rank,
                    score=raw,
                    normalized_score=math.nan,
                    contribution=math.nan,
                    weight=self.weight_of(cfg, n),
                )
            out.append(self.make_hit(row, i + 1, float(point.score), sources, label, candidates, q))
        return out

    # -- persistence -----------------------------------------------------------------------------

    def _manifest_extra(self) -> dict[str, Any]:
        return {"server_fusion": self.server_fusion}

    @classmethod
    def _from_manifest(cls, meta, retrievers, options):
        options = dict(options)
        extra = meta.get("extra") or {}
        if "server_fusion" in extra and "server_fusion" not in options:
            options["server_fusion"] = extra["server_fusion"]
        return super()._from_manifest(meta, retrievers, options)

    @classmethod
    def open(
        cls,
        path: str | Path,
        encoders: Mapping[str, Any] | None = None,
        verify: bool = True,
        readonly: bool = False,
        **options: Any,
    ):
        """Read-only only: a Qdrant-backed engine's vectors live in Qdrant, so it is written
        through ``add`` on a loaded engine and ``save``d, not committed to a folder."""
        if not readonly:
            raise ValueError(
                "a QdrantHybridRetriever keeps its vectors in Qdrant: use load() and save(), "
                "or open(path, readonly=True)"
            )
        return super().open(path, encoders, verify, readonly, **options)

    @classmethod
    def _load_retriever(cls, folder: Path, encoder: Any | None) -> Retriever:
        stores, shared = _LOADING.get()
        return _load_retriever(folder, encoder, stores, shared)

    @classmethod
    def load(
        cls,
        path: str | Path,
        encoders: Mapping[str, Any] | None = None,
        stores: Any | None = None,
        **options: Any,
    ) -> QdrantHybridRetriever:
        """Open a saved engine, reconnecting its Qdrant views (local retrievers load as usual).

        ``stores``: a :class:`~indexes.qdrant.QdrantStore` that replaces the saved connection
        of every Qdrant view (e.g. the same collection on a cluster: ``QdrantStore("scifact",
        url=...)``).
        """
        import json

        path = Path(path)
        token = _LOADING.set((stores, {}))
        try:
            engine = super().load(path, encoders, **options)
        finally:
            _LOADING.reset(token)
        extra = path / "qdrant.json"  # format-1 folders
        if extra.is_file() and "server_fusion" not in options:
            engine.server_fusion = json.loads(extra.read_text()).get("server_fusion")
        return engine


_LOADING: contextvars.ContextVar = contextvars.ContextVar("qdrant_loading", default=(None, {}))


def _load_retriever(folder: Path, encoder: Any, store: Any, shared: dict) -> Retriever:
    """Load a saved retriever whose index may be a Qdrant view (reconnected here; the retriever
    itself comes from :meth:`Retriever.load`, as for a local index)."""
    import json

    from indexes.qdrant import QdrantStore, is_qdrant_index, load_qdrant_index

    if not is_qdrant_index(folder / "index"):
        return Retriever.load(folder, encoder)
    if store is None:
        saved = json.loads((folder / "index" / "meta.json").read_text())["store"]
        key = tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in saved.items()))
        if key not in shared:
            shared[key] = QdrantStore.from_settings(saved)
        store = shared[key]
    return Retriever.load(folder, encoder, index=load_qdrant_index(folder / "index", store=store))


def _check_server_fusion(method: str | None) -> str | None:
    if method is not None and method not in SERVER_FUSIONS:
        raise ValueError(f"server_fusion must be one of {SERVER_FUSIONS} or None, got {method!r}")
    return method
