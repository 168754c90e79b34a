"""The engine users call: several retrievers over the same documents, fused and explained.

:class:`HybridRetriever` is assembled from one part per concern: :mod:`~hybrid.engine.writes`
(documents in and out), :mod:`~hybrid.engine.search` (retrieval, filters, fusion, reranking),
:mod:`~hybrid.engine.explain` (evidence, weights and explanations), and
:mod:`~hybrid.engine.persistence` (folders on disk), over the state and checks of
:mod:`~hybrid.engine.base`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hybrid.engine.aio import AsyncEngineMixin
from hybrid.engine.base import fusion_label
from hybrid.engine.config import DEFAULT_CONFIG, FusionConfig
from hybrid.engine.filters import MetadataIndex
from hybrid.engine.locks import RWLock
from hybrid.engine.persistence import PersistenceMixin
from hybrid.engine.rerankers import get_reranker
from hybrid.engine.retrievers import Retriever
from hybrid.engine.search import SearchMixin
from hybrid.engine.store import DocumentStore
from hybrid.engine.writes import WritesMixin
from hybrid.storage import engine_io
from hybrid.storage.files import check_name
from indexes.base import check_k, short


class HybridRetriever(WritesMixin, SearchMixin, PersistenceMixin, AsyncEngineMixin):
    """SPLADE, dense and BM25 retrievers (any subset, any names) fused into one ranking.

    >>> r = HybridRetriever.from_preset("offline")
    >>> r.add(["text one", "text two"], ids=["a", "b"])
    >>> hits = r.search("query", k=10)
    >>> hits[0].id, hits[0].score, hits[0].sources["splade"].rank

    Fusion defaults (each overridable per search call): ``fusion`` is the method name understood
    by :func:`fusion.fuse` (default ``"adaptive"``: z-scored lists summed with per-query weights
    from each retriever's evidence, see :data:`hybrid.engine.config.DEFAULT_CONFIG`; or ``"wsum"``,
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
    searches, where a hand-off costs more than it saves, run in the calling thread, and so do
    query encoders that take microseconds (look-ups, analyzers; model encoders run side by side,
    see :data:`hybrid.engine.base.ENCODE_PARALLEL_MIN_SECONDS`).
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
        :class:`~hybrid.encoders.models.ModelNotAvailableError` (a ``ValueError``). ``models``
        replaces
        a preset's model by role (``{"splade": "/path/to/PIXIE-Splade-v1.5"}``). ``options``
        go to the engine (``fusion=``, ``weights=``, ``depth=``, ``path=`` ...).
        """
        from hybrid.engine.presets import build_retrievers

        preset, retrievers = build_retrievers(name, models)
        return cls(retrievers, preset=preset, **options)

    def __len__(self) -> int:
        return len(self.store)

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={type(r).__name__}" for n, r in self.retrievers.items())
        return f"HybridRetriever({parts}; {len(self)} documents; {fusion_label(self.config)})"
