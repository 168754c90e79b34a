"""Applying a write batch to an engine's retrievers and store all or nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hybrid.engine.store import DocId, check_storable


def _preview(ids: list[DocId]) -> str:
    shown = ", ".join(repr(i) for i in ids[:3])
    return f"[{shown}{', ...' if len(ids) > 3 else ''}] ({len(ids)} documents)"


def _named(exc: BaseException, message: str) -> BaseException:
    try:
        return type(exc)(f"{message}: {exc}")
    except Exception:  # an exception type that takes other arguments
        return RuntimeError(f"{message}: {type(exc).__name__}: {exc}")


def check_encoded(name: str, value: Any, ids: list[DocId]) -> None:
    """Name the document whose given encoding is unusable (NaN, infinite, negative weights)."""
    if hasattr(value, "tocsr"):
        m = value.tocsr()
        bad = ~np.isfinite(m.data) | (m.data < 0)
        if bad.any():
            row = int(np.searchsorted(m.indptr, np.flatnonzero(bad)[0], side="right") - 1)
            raise ValueError(
                f"encoded[{name!r}] of document {ids[row]!r} holds a NaN, infinite or negative "
                "weight"
            )
    elif isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.ndim == 2:
        bad = ~np.isfinite(value).all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(f"encoded[{name!r}] of document {ids[row]!r} holds NaN or inf")


def check_batch(store: Any, batch: Any) -> None:
    """Deletes and metadata updates must name distinct live rows (checked before any change,
    so that no index is left half-deleted)."""
    rows = np.asarray(batch.delete_rows, dtype=np.int64).ravel()
    if np.unique(rows).size != rows.size:
        raise ValueError("the same document is deleted twice in one write")
    for row in [*rows.tolist(), *batch.metadata_updates]:
        if not (0 <= row < store.n_rows and store.live[row]):
            raise KeyError(f"row {row} is not a live document")
    gone = set(rows.tolist())
    for row, meta in batch.metadata_updates.items():
        if row in gone:
            raise ValueError(f"document {store.ids[row]!r} is both deleted and updated")
        check_storable(meta, f"metadata of document {store.ids[row]!r}")


def _checkpoint(retriever: Any) -> Any:
    index = getattr(retriever, "index", None)
    if index is None:
        return ("unset",)
    take = getattr(index, "checkpoint", None)
    return ("index", index, take() if take is not None else None)


def _rollback(retriever: Any, token: Any) -> None:
    if token[0] == "stats":  # the collection statistics of the evidence (hybrid.engine.evidence)
        retriever.stats = token[1]
        token = token[2]
    if token[0] == "unset":
        retriever.index = None
        return
    _, index, state = token
    retriever.index = index
    if state is None:
        raise RuntimeError(f"{type(index).__name__} cannot undo a write")
    index.rollback(state)


def _order(retrievers: dict[str, Any]) -> list[str]:
    """Dense retrievers go last: their adds cost most to undo (an IVF index trained by the
    add is reset; an HNSW graph keeps the undone vectors as orphans)."""

    def late(name: str) -> bool:
        index = getattr(retrievers[name], "index", None)
        return index is None or type(index).__name__ == "DenseIndex"

    return sorted(retrievers, key=late)


def apply(
    engine: Any, batch: Any, indexed: Callable[[str], None] | None = None
) -> Callable[[], None]:
    """Apply ``batch``: appends to every retriever, then deletes, then the document store.

    Any exception leaves retrievers and store as they were (the error names the documents);
    returns a function that undoes the whole batch (for a commit that fails afterwards).
    ``indexed(name)`` is called as each retriever finishes its appends (progress).
    """
    retrievers = engine.retrievers
    store = engine.store
    tokens = {
        name: ("stats", None if r.stats is None else r.stats.copy(), _checkpoint(r))
        if hasattr(r, "observe_documents")
        else _checkpoint(r)
        for name, r in retrievers.items()
    }
    n_rows = store.n_rows
    old_meta = {row: store.metadata[row] for row in batch.metadata_updates}

    def undo() -> None:
        failed = []
        for name in reversed(list(tokens)):
            try:
                _rollback(retrievers[name], tokens[name])
            except Exception as exc:
                failed.append(f"{name}: {exc}")
        store.undo(n_rows, batch.delete_rows[batch.delete_rows < n_rows], old_meta)
        if failed:
            engine._broken = (
                "a failed write could not be undone in "
                + "; ".join(failed)
                + ": reopen or reload the engine"
            )

    try:
        if batch.texts:
            expected = np.arange(n_rows, n_rows + len(batch.texts))
            for name in _order(retrievers):
                try:
                    assigned = np.asarray(retrievers[name].add_encoded(batch.encoded[name]))
                except Exception as exc:
                    raise _named(
                        exc, f"retriever {name!r} could not index documents {_preview(batch.ids)}"
                    ) from exc
                if not np.array_equal(assigned, expected):
                    raise RuntimeError(
                        f"retriever {name!r} assigned ids {assigned[:3]}..., expected "
                        f"{expected[:3]}...: its index was changed outside this engine"
                    )
                if indexed is not None:
                    indexed(name)
                retrievers[name].observe_documents(batch.texts, assigned)
        if batch.delete_rows.size:
            for retriever in retrievers.values():
                retriever.delete(batch.delete_rows)
        if batch.delete_rows.size:  # before the appends: an upsert re-adds the same ids
            store.remove(batch.delete_rows)
        if batch.texts:
            store.append(batch.texts, batch.ids, batch.metadata)
        if batch.metadata_updates:
            store.update_metadata(batch.metadata_updates)
    except BaseException:
        undo()
        raise
    return undo


def settle(retrievers: dict[str, Any]) -> None:
    """The write is final: indexes drop what they kept only to undo it (the dense deletes,
    tombstones until now, leave FAISS)."""
    for retriever in retrievers.values():
        done = getattr(getattr(retriever, "index", None), "settle", None)
        if done is not None:
            done()


def replay(retrievers: dict[str, Any], delete_rows: np.ndarray, encoded: dict[str, Any]) -> None:
    """Apply one stored commit record to the retrievers (as :func:`apply` did)."""
    if encoded:
        for name in _order(retrievers):
            retrievers[name].add_encoded(encoded[name])
    if delete_rows.size:
        for retriever in retrievers.values():
            retriever.delete(delete_rows)
