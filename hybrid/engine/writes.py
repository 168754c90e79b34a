"""The engine's writes: ``add``, ``upsert``, ``delete``, ``update_metadata`` and the reads of
stored documents (``get``, ``ids``), all through one prepare -> commit path."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np

from hybrid.encoders.base import validate_texts
from hybrid.engine.base import EngineBase
from hybrid.engine.documents import Document
from hybrid.engine.store import DocId
from hybrid.progress import bar as progress_bar
from hybrid.progress import progress_scope, wanted
from hybrid.storage import atomic
from indexes.base import short


class WritesMixin(EngineBase):
    """Adding, replacing, deleting and reading documents (part of :class:`HybridRetriever`)."""

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
                atomic.settle(self.retrievers)
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
            atomic.settle(self.retrievers)

    def _apply(self, batch: WriteBatch) -> Callable[[], None]:
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
