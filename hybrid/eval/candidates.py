"""Retrieve once, fuse many times: each retriever's candidates for a dataset, cached on disk.

:func:`retrieve_candidates` encodes documents and queries (with progress bars, through the
content-addressed :class:`~hybrid.encoders.cache.EncodingCache`), searches every retriever to
``depth`` and stores the :class:`~hybrid.engine.candidates.Candidates` (``.npz``) with a JSON
record of
what produced them (dataset fingerprint, retriever settings, depth). The file name is a hash of
that record, so changing any of it computes new candidates; a record that does not match what
was asked for is never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybrid.engine.candidates import Candidates, CandidateSet
from hybrid.engine.evidence import (
    EVIDENCE_VERSION,
    evidence_parts,
    strata_for,
)
from hybrid.engine.scripts import query_profiles
from hybrid.engine.strata import Strata
from hybrid.eval.datasets import Dataset
from hybrid.protocols import RetrieverLike

logger = logging.getLogger("hybrid")

__all__ = [
    "CandidateSet",
    "Candidates",
    "cached_encode",
    "candidates_meta",
    "content_hash",
    "encode_with_progress",
    "retrieve_candidates",
    "retriever_spec",
]


def retriever_spec(retriever: RetrieverLike) -> dict[str, Any]:
    """What a retriever's encodings and rankings depend on (its type and settings)."""
    settings = retriever.settings() if hasattr(retriever, "settings") else {}
    return json.loads(
        json.dumps({"type": getattr(retriever, "kind", "?"), **settings}, default=str)
    )


def content_hash(obj: Any) -> str:
    """16 hex digits of the sha256 of ``obj`` as canonical JSON (cache keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


_hash = content_hash


def _concat(kind: str, parts: list[Any]) -> Any:
    if kind == "splade":
        import scipy.sparse as sp

        return sp.vstack(parts).tocsr()
    if kind == "dense":
        return np.concatenate([np.asarray(p, dtype=np.float32) for p in parts], axis=0)
    return [row for p in parts for row in p]


def encode_with_progress(
    retriever: RetrieverLike,
    texts: Sequence[str],
    what: str = "documents",
    batch: int = 256,
    progress: bool = True,
    label: str = "",
) -> Any:
    """``retriever.encode_documents`` / ``encode_queries`` in batches with a tqdm bar."""
    fn = retriever.encode_documents if what == "documents" else retriever.encode_queries
    texts = list(texts)
    if not texts:
        raise ValueError(f"no {what} to encode")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=len(texts),
            desc=f"{label or retriever.kind} {what}",
            unit="text",
            file=sys.stderr,
            leave=False,
        )
    from hybrid.progress import progress_scope

    parts = []
    try:
        for i in range(0, len(texts), batch):
            with progress_scope(False):  # this bar only, not the encoder's own per batch
                parts.append(fn(texts[i : i + batch]))
            if bar is not None:
                bar.update(len(texts[i : i + batch]))
    finally:
        if bar is not None:
            bar.close()
    return _concat(retriever.kind, parts)


def candidates_meta(
    data: Dataset, specs: Mapping[str, Any], depth: int, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The record that identifies a candidate set (hashed into its cache file name)."""
    qh = _hash([[q, t] for q, t in data.queries.items()])
    return {
        "dataset": data.name,
        "source": data.source,
        "split": data.split,
        "documents": {"count": len(data.doc_ids), "fingerprint": data.fingerprint()},
        "queries": {"count": len(data.queries), "fingerprint": qh},
        "retrievers": dict(specs),
        "depth": int(depth),
        **dict(extra or {}),
    }


def retrieve_candidates(
    retrievers: Mapping[str, RetrieverLike] | Callable[[], Mapping[str, RetrieverLike]],
    data: Dataset,
    depth: int = 1000,
    *,
    cache_dir: str | Path | None = None,
    doc_encodings: Mapping[str, Any] | None = None,
    query_encodings: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    progress: bool = True,
    retrievers_spec: Mapping[str, Any] | None = None,
) -> Candidates:
    """Encode, index and search each retriever once to ``depth``; cached on disk.

    ``retrievers``: name -> fresh (empty) :class:`~hybrid.engine.retrievers.Retriever`, or a
    function
    building them. The cache key needs their settings, so a function is called once to read
    them (models load, but on a cache hit nothing is encoded or searched); pass
    ``retrievers_spec`` (name -> :func:`retriever_spec`) to skip even that. ``doc_encodings`` /
    ``query_encodings`` give precomputed encodings by retriever name (e.g. the shared SciFact
    encodings); name them in ``extra`` so the cache key says so. With ``cache_dir`` the
    candidates are stored under ``<cache_dir>/<dataset>/candidates-<split>-<hash>`` with the
    JSON record of what produced them, and model encodings in the
    :class:`~hybrid.encoders.cache.EncodingCache` under ``<cache_dir>/encodings``.
    """
    built: dict[str, Any] | None = None
    if callable(retrievers) and not isinstance(retrievers, Mapping):
        factory = retrievers
        if retrievers_spec is None:
            built = dict(factory())
            retrievers_spec = {n: retriever_spec(r) for n, r in built.items()}
    else:
        built = dict(retrievers)
        retrievers_spec = {n: retriever_spec(r) for n, r in built.items()}
        factory = None
    if not data.queries:
        raise ValueError(f"{data.name}: no judged queries to retrieve for")
    meta = candidates_meta(data, retrievers_spec, depth, extra)
    path = None
    if cache_dir is not None:
        key = _hash(meta)
        path = Path(cache_dir) / data.name / f"candidates-{data.split or 'all'}-{key}"
        if path.with_suffix(".json").is_file():
            cands = Candidates.load(path)
            if cands.meta == meta:
                logger.info("hybrid: using cached candidates %s", path)
                current = cands.evidence_version == EVIDENCE_VERSION
                if current and set(cands.evidence) >= set(cands.names):
                    return cands
                # written before candidate sets kept (this) evidence: measure it once, keep it
                if built is None:
                    built = dict(factory())  # type: ignore[misc]
                encoded = _index(built, data, cache_dir, doc_encodings, query_encodings, progress)
                if cands.query_ids != list(data.queries):
                    raise RuntimeError(f"{path}: cached query order differs from the dataset")
                cands.evidence, cands.evidence_across, cands.strata = _evidence(
                    built, data, encoded
                )
                cands.evidence_version = EVIDENCE_VERSION
                cands.save(path)
                return cands
            logger.warning("hybrid: cached candidates %s do not match; recomputing", path)
    if built is None:
        built = dict(factory())  # type: ignore[misc]
    cands = _retrieve(built, data, depth, cache_dir, doc_encodings, query_encodings, progress)
    cands.meta = meta
    if path is not None:
        cands.save(path)
    return cands


@contextlib.contextmanager
def _encoding_cache(retrievers: Mapping[str, Any], cache_dir: str | Path | None) -> Iterator[None]:
    """While indexing: each retriever's encoder (or BM25 analyzer) reads and fills the
    content-addressed :class:`~hybrid.encoders.cache.EncodingCache` under
    ``<cache_dir>/encodings``."""
    swapped: list[tuple[Any, str, Any]] = []
    if cache_dir is not None:
        from hybrid.encoders.cache import CachedAnalyzer, CachedEncoder, EncodingCache

        cache = EncodingCache(Path(cache_dir) / "encodings")
        for retriever in retrievers.values():
            for attr, wrapper in (("encoder", CachedEncoder), ("analyzer", CachedAnalyzer)):
                inner = getattr(retriever, attr, None)
                if inner is None or isinstance(inner, wrapper):
                    continue
                try:
                    wrapped = wrapper(inner, cache)
                except ValueError:  # an encoder made of callables cannot be described
                    continue
                swapped.append((retriever, attr, inner))
                setattr(retriever, attr, wrapped)
    try:
        yield
    finally:
        for retriever, attr, inner in swapped:
            setattr(retriever, attr, inner)


def _index(
    retrievers: Mapping[str, Any],
    data: Dataset,
    cache_dir: str | Path | None,
    doc_encodings: Mapping[str, Any] | None,
    query_encodings: Mapping[str, Any] | None,
    progress: bool,
) -> dict[str, Any]:
    """Index ``data``'s documents in each (fresh) retriever; returns each one's query encoding."""
    q_texts = list(data.queries.values())
    out = {}
    with _encoding_cache(retrievers, cache_dir):
        for name, retriever in retrievers.items():
            if len(retriever):
                raise ValueError(
                    f"retriever {name!r} already holds documents: pass fresh retrievers"
                )
            if doc_encodings and name in doc_encodings:
                enc = doc_encodings[name]
            else:
                enc = encode_with_progress(
                    retriever, data.doc_texts, "documents", progress=progress, label=name
                )
            retriever.observe_documents(data.doc_texts, retriever.add_encoded(enc))
            if query_encodings and name in query_encodings:
                out[name] = query_encodings[name]
            else:
                out[name] = encode_with_progress(
                    retriever, q_texts, "queries", progress=progress, label=name
                )
    return out


def _evidence(
    retrievers: Mapping[str, Any],
    data: Dataset,
    encoded: Mapping[str, Any],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], Strata | None]:
    """Each indexed retriever's evidence for ``data``'s queries as the engine measures it
    (:func:`hybrid.engine.evidence.evidence_parts`), within the queries' scripts and across
    them, and the script strata the adaptive fusion fuses by."""
    q_texts = list(data.queries.values())
    scripts, crossing = query_profiles(q_texts)
    within, across = {}, {}
    for name, r in retrievers.items():
        parts = evidence_parts(r, q_texts, encoded[name], name, scripts, crossing)
        within[name], across[name] = parts[3], parts[4]
    return within, across, strata_for(retrievers, scripts, encoded)


def _retrieve(
    retrievers: Mapping[str, Any],
    data: Dataset,
    depth: int,
    cache_dir: str | Path | None,
    doc_encodings: Mapping[str, Any] | None,
    query_encodings: Mapping[str, Any] | None,
    progress: bool,
) -> Candidates:
    encoded = _index(retrievers, data, cache_dir, doc_encodings, query_encodings, progress)
    depth = min(int(depth), len(data.doc_ids))
    ids, scores = {}, {}
    for name, retriever in retrievers.items():
        result = retriever.search_encoded(encoded[name], depth)
        ids[name] = np.asarray(result.ids, dtype=np.int64)
        scores[name] = np.asarray(result.scores, dtype=np.float32)
    evidence, across, strata = _evidence(retrievers, data, encoded)
    cands = Candidates.from_arrays(
        list(data.queries),
        list(data.doc_ids),
        ids,
        scores,
        evidence=evidence,
        evidence_across=across,
        strata=strata,
    )
    cands.evidence_version = EVIDENCE_VERSION
    return cands


def cached_encode(
    retriever: RetrieverLike,
    texts: Sequence[str],
    what: str,
    cache_dir: str | Path | None,
    key: str = "",
    progress: bool = True,
    label: str = "",
) -> Any:
    """``encode_with_progress`` with the retriever's encoder or analyzer reading and filling the
    :class:`~hybrid.encoders.cache.EncodingCache` under ``<cache_dir>/encodings`` (``key`` is
    kept for old callers: the cache is addressed by content and model, not by a key)."""
    with _encoding_cache({label or retriever.kind: retriever}, cache_dir):
        return encode_with_progress(retriever, texts, what, progress=progress, label=label)
