"""The engine users call: several retrievers over the same documents, fused and explained."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np

import fusion as fusion_lib
from hybrid.encoders._common import validate_texts
from hybrid.results import Explanation, Hit, SourceScore
from hybrid.retrievers import Retriever
from hybrid.store import DocId, DocumentStore
from indexes._base import IndexFormatError, check_k, read_meta, write_meta

FORMAT_VERSION = 1
_KIND = "HybridRetriever"
_T = TypeVar("_T")


class HybridRetriever:
    """SPLADE, dense and BM25 retrievers (any subset, any names) fused into one ranking.

    >>> r = HybridRetriever.from_preset("offline")
    >>> r.add(["text one", "text two"], ids=["a", "b"])
    >>> hits = r.search("query", k=10)
    >>> hits[0].id, hits[0].score, hits[0].sources["splade"].rank

    Fusion defaults (each overridable per search call): ``fusion`` is the method name understood
    by :func:`fusion.fuse` (``"wsum"``: weighted sum of min-max normalised scores, or ``"rrf"``,
    ...); ``weights`` maps retriever names to non-negative weights (missing names weigh 1.0, a
    weight of 0 leaves that retriever out of the search); ``depth`` is how many candidates each
    retriever contributes before fusion.
    """

    def __init__(
        self,
        retrievers: Mapping[str, Retriever],
        *,
        fusion: str = "wsum",
        norm: str | None = None,
        weights: Mapping[str, float] | None = None,
        rrf_k: int = 60,
        depth: int = 100,
        parallel: bool = True,
        preset: str | None = None,
    ) -> None:
        if not retrievers:
            raise ValueError("a HybridRetriever needs at least one retriever")
        for name, retriever in retrievers.items():
            if not isinstance(retriever, Retriever):
                raise TypeError(
                    f"retriever {name!r} is a {type(retriever).__name__}, not a Retriever"
                )
        self.retrievers: dict[str, Retriever] = dict(retrievers)
        self.store = DocumentStore()
        self.fusion = fusion
        self.norm = norm
        self.rrf_k = rrf_k
        self.depth = check_k(depth)
        self.parallel = parallel
        self.preset = preset
        self.weights = self._resolve_weights(weights)
        _check_fusion(fusion, norm, rrf_k)

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def from_preset(cls, name: str = "auto", **options: Any) -> HybridRetriever:
        """Build an engine from a named preset: ``"pixie"``, ``"offline"`` or ``"auto"``.

        ``"auto"`` uses ``pixie`` when its models are cached or the model hub answers, and
        otherwise says so in one logged line and uses ``offline``. ``options`` go to the
        engine (``fusion=``, ``weights=``, ``depth=`` ...).
        """
        from hybrid.presets import build_retrievers

        preset, retrievers = build_retrievers(name)
        return cls(retrievers, preset=preset, **options)

    @property
    def names(self) -> list[str]:
        return list(self.retrievers)

    def __len__(self) -> int:
        return len(self.store)

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={type(r).__name__}" for n, r in self.retrievers.items())
        return f"HybridRetriever({parts}; {len(self)} documents; fusion={self.fusion!r})"

    # -- documents ------------------------------------------------------------------------------

    def add(
        self,
        texts: str | Sequence[str],
        ids: Sequence[DocId] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[DocId]:
        """Index documents in every retriever; returns their ids (``str(row)`` when not given).

        Every retriever encodes the whole batch before any index changes, so a failure while
        encoding leaves the engine as it was.
        """
        texts = validate_texts(texts, "documents")
        ids, meta = self.store.check_new(texts, ids, metadata)
        encoded = self._map(lambda r: r.encode_documents(texts), self.names)
        expected = np.arange(self.store.n_rows, self.store.n_rows + len(texts))
        for name in self.names:
            assigned = np.asarray(self.retrievers[name].add_encoded(encoded[name]))
            if not np.array_equal(assigned, expected):
                raise RuntimeError(
                    f"retriever {name!r} assigned ids {assigned[:3]}..., expected {expected[:3]}..."
                    ": its index was changed outside this engine"
                )
        self.store.append(texts, ids, meta)
        return ids

    def delete(self, ids: DocId | Sequence[DocId]) -> None:
        """Remove documents by id from every retriever."""
        if isinstance(ids, (str, int)):
            ids = [ids]
        rows = self.store.rows_of(ids)
        for retriever in self.retrievers.values():
            retriever.delete(rows)
        self.store.remove(rows)

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
        fusion: str | None = None,
        weights: Mapping[str, float] | None = None,
        norm: str | None = None,
        rrf_k: int | None = None,
        depth: int | None = None,
    ) -> list[Hit] | list[list[Hit]]:
        """Top-``k`` fused hits for one query (a list) or a batch (a list of lists)."""
        single = isinstance(query, str)
        queries = validate_texts(query, "queries")
        k = check_k(k)
        method = fusion if fusion is not None else self.fusion
        norm = norm if norm is not None else (self.norm if fusion is None else None)
        rrf_k = self.rrf_k if rrf_k is None else rrf_k
        _check_fusion(method, norm, rrf_k)
        w = self._resolve_weights(weights) if weights is not None else self.weights
        active = [n for n in self.names if w[n] > 0]
        if not active:
            raise ValueError("every retriever weight is 0: nothing to search")
        depth = max(check_k(depth) if depth is not None else self.depth, k)
        if len(self.store) == 0:
            empty: list[list[Hit]] = [[] for _ in queries]
            return empty[0] if single else empty

        def run(retriever: Retriever):
            encoded = retriever.encode_queries(queries)
            return encoded, retriever.search_encoded(encoded, depth)

        out = self._map(run, active)
        fused = fusion_lib.fuse_padded(
            [(out[n][1].ids, out[n][1].scores) for n in active],
            method=method,
            weights=[w[n] for n in active],
            norm=norm,
            k=rrf_k,
            top=k,
        )
        label = _fusion_label(method, norm, rrf_k)
        encoded = {n: out[n][0] for n in active}
        hits = [self._hits(result, active, w, label, encoded, q) for q, result in enumerate(fused)]
        return hits[0] if single else hits

    def _hits(self, result, active, weights, label, encoded, q: int) -> list[Hit]:
        hits = []
        for i, row in enumerate(result.ids.tolist()):
            sources = {
                name: SourceScore(
                    rank=int(result.ranks[i, j]),
                    score=float(result.raw_scores[i, j]),
                    normalized_score=float(result.normalized[i, j]),
                    contribution=float(result.contributions[i, j]),
                    weight=float(weights[name]),
                )
                for j, name in enumerate(active)
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
                    _explainer=self._explainer(row, label, encoded, q),
                )
            )
        return hits

    def _explainer(self, row: int, label: str, encoded: dict[str, Any], q: int) -> Callable:
        def explain(hit: Hit, top: int | None) -> Explanation:
            terms = {
                name: self.retrievers[name].explain_terms(enc[q], row, top)
                for name, enc in encoded.items()
            }
            return Explanation(
                id=hit.id,
                score=hit.score,
                fusion=label,
                retrievers=hit.sources,
                splade_tokens=[
                    t
                    for name in terms
                    if self.retrievers[name].kind == "splade"
                    for t in terms[name]
                ],
                bm25_terms=[
                    t for name in terms if self.retrievers[name].kind == "bm25" for t in terms[name]
                ],
                reranker_score=hit.reranker_score,
            )

        return explain

    # -- persistence ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the engine to a folder (documents, each retriever's index and settings).

        The folder is written beside the target and swapped in at the end, so a failure never
        leaves a half-written index; an existing folder that is not a saved engine is refused.
        """
        path = Path(path)
        if path.exists() and any(path.iterdir()):
            read_meta(path, _KIND, FORMAT_VERSION)  # refuse to overwrite unrelated folders
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            self.store.save(tmp / "documents.jsonl")
            for name, retriever in self.retrievers.items():
                retriever.save(tmp / "retrievers" / name)
            write_meta(
                tmp,
                _KIND,
                FORMAT_VERSION,
                retrievers=self.names,
                fusion=self.fusion,
                norm=self.norm,
                rrf_k=self.rrf_k,
                depth=self.depth,
                weights=self.weights,
                preset=self.preset,
            )
            if path.exists():
                shutil.rmtree(path)
            tmp.rename(path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(
        cls, path: str | Path, encoders: Mapping[str, Any] | None = None, **options: Any
    ) -> HybridRetriever:
        """Open a saved engine. ``encoders`` replaces saved encoders/analyzers by retriever name
        (required for custom callables, which cannot be saved); ``options`` override settings."""
        path = Path(path)
        if not path.is_dir():
            raise IndexFormatError(f"{path} is not a folder")
        meta = read_meta(path, _KIND, FORMAT_VERSION)
        encoders = dict(encoders or {})
        unknown = set(encoders) - set(meta["retrievers"])
        if unknown:
            raise ValueError(f"encoders given for unknown retrievers {sorted(unknown)}")
        retrievers = {
            name: Retriever.load(path / "retrievers" / name, encoders.get(name))
            for name in meta["retrievers"]
        }
        settings = {
            key: meta[key] for key in ("fusion", "norm", "rrf_k", "depth", "weights", "preset")
        }
        settings.update(options)
        engine = cls(retrievers, **settings)
        engine.store = DocumentStore.load(path / "documents.jsonl")
        for name, retriever in retrievers.items():
            if len(retriever) != len(engine.store):
                raise IndexFormatError(
                    f"{path}: retriever {name!r} holds {len(retriever)} documents,"
                    f" the document store {len(engine.store)}"
                )
        return engine

    # -- helpers --------------------------------------------------------------------------------

    def _resolve_weights(self, weights: Mapping[str, float] | None) -> dict[str, float]:
        resolved = dict.fromkeys(self.retrievers, 1.0)
        if weights is None:
            return resolved
        if not isinstance(weights, Mapping):
            raise TypeError("weights must be a dict of retriever name -> weight")
        for name, value in weights.items():
            if name not in self.retrievers:
                names = ", ".join(self.names)
                raise ValueError(f"unknown retriever {name!r} in weights; this engine has: {names}")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"weight of {name!r} must be a number, got {value!r}")
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"weight of {name!r} must be finite and >= 0, got {value}")
            resolved[name] = float(value)
        return resolved

    def _map(self, fn: Callable[[Any], _T], names: list[str]) -> dict[str, _T]:
        """Apply ``fn`` to each named retriever, in parallel threads when enabled."""
        if not self.parallel or len(names) == 1:
            return {n: fn(self.retrievers[n]) for n in names}
        with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="retriever") as pool:
            futures = {n: pool.submit(fn, self.retrievers[n]) for n in names}
            return {n: f.result() for n, f in futures.items()}


def _check_fusion(method: str, norm: str | None, rrf_k: float) -> None:
    fusion_lib.api._check_options(method, None, norm, rrf_k, None, 1, None)


def _fusion_label(method: str, norm: str | None, rrf_k: int) -> str:
    if method == "rrf":
        return f"rrf k={rrf_k}"
    return f"{method} norm={norm or 'minmax'}"
