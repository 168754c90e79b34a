"""Opening, saving, refreshing and optimising folder-backed engines (the engine's glue)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hybrid.storage import atomic
from hybrid.storage.docstore import SqliteDocumentStore
from hybrid.storage.files import check_name, fsync_dir
from hybrid.storage.folder import (
    DB_FILE,
    KIND,
    EngineFolder,
    committed,
    write_engine,
)
from hybrid.storage.merge import DEFAULT_POLICY, MergePolicy, Merger, policy_of
from indexes.base import META_FILE, IndexCorruptedError, IndexFormatError

V1 = 1


def kind_of(path: Path) -> str:
    """``"v2"``, ``"v1"``, ``"empty"`` (missing or empty folder) or ``"other"``."""
    if not path.exists():
        return "empty"
    if not path.is_dir():
        return "other"
    if committed(path):
        return "v2"
    if (path / META_FILE).is_file():
        return "v1"
    names = [p.name for p in path.iterdir()]
    leftovers = all(n.startswith((DB_FILE, "base-", ".tmp")) or n == "LOCK" for n in names)
    return "empty" if leftovers else "other"


def engine_settings(engine: Any) -> dict[str, Any]:
    """What the manifest records besides files and counts."""
    return {
        "retrievers": [check_name(n) for n in engine.names],
        "config": engine.config.to_dict(),
        "preset": engine.preset,
        "extra": engine._manifest_extra(),
    }


def _rows(store: Any) -> Iterator[tuple[Any, str, Any, int]]:
    if isinstance(store, SqliteDocumentStore):
        import json

        for doc_id, text, meta, live in store.db.rows(
            "SELECT id, text, meta, live FROM docs ORDER BY row"
        ):
            yield doc_id, text, json.loads(meta), live
        return
    for doc_id, text, meta, live in zip(
        store.ids, store.texts, store.metadata, store.live, strict=True
    ):
        yield doc_id, text, meta, int(live)


def save(engine: Any, path: Path) -> Path:
    """Write a full copy of ``engine`` (its committed state) to ``path``, crash-safely.

    A new folder is written beside the target and renamed into place; an engine folder at
    ``path`` (format 2 or 1) is replaced in place by one atomic commit, never deleted first.
    """
    kind = kind_of(path)
    if kind == "other":
        raise IndexFormatError(f"{path} exists and is not a saved engine: refusing to overwrite it")
    counts = (engine.store.n_rows, len(engine.store))
    settings = engine_settings(engine)
    if kind in ("v2", "v1") or (path.exists() and any(path.iterdir())):
        write_engine(path, settings, engine.retrievers, _rows(engine.store), counts)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".tmp-{path.name}.*"):  # left by a save that was killed
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}.", dir=path.parent))
    try:
        write_engine(tmp, settings, engine.retrievers, _rows(engine.store), counts)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp / "LOCK")
        if path.exists():
            path.rmdir()  # empty
        os.rename(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def create(engine: Any, path: Path) -> None:
    """Make ``engine`` (empty or not) live in a new folder ``path``."""
    path = Path(path)
    if kind_of(path) != "empty":
        raise IndexFormatError(
            f"{path} already holds files; HybridRetriever(..., path=) creates a new engine "
            "folder: use HybridRetriever.open() for an existing engine"
        )
    counts = (engine.store.n_rows, len(engine.store))
    write_engine(path, engine_settings(engine), engine.retrievers, _rows(engine.store), counts)
    attach(engine, EngineFolder.open(path, readonly=False), verify=False, reload=False)
    start_merger(engine, DEFAULT_POLICY)


def open_engine(
    cls: Any,
    path: Path,
    encoders: Mapping[str, Any] | None,
    verify: bool,
    readonly: bool,
    options: dict[str, Any],
) -> Any:
    path = Path(path)
    options = dict(options)
    policy = policy_of(options.pop("merge", True))
    kind = kind_of(path)
    if kind == "v1":
        if readonly:
            raise IndexFormatError(
                f"{path} is a format-1 engine folder: open it once without readonly=True to "
                "upgrade it in place, or load() it"
            )
        old = cls._load_v1(path, encoders, options)
        write_engine(
            path,
            engine_settings(old),
            old.retrievers,
            _rows(old.store),
            (old.store.n_rows, len(old.store)),
        )
    elif kind != "v2":
        raise IndexFormatError(
            f"{path} is not a saved index: no committed {DB_FILE} (nor a format-1 "
            f"{META_FILE}) in it"
        )
    for attempt in range(5):
        folder = EngineFolder.open(path, readonly)
        gen = folder.manifest["gen"]
        try:
            engine = _build(cls, folder, encoders, verify, options)
            if not readonly and policy is not None:
                start_merger(engine, policy)
            return engine
        except (IndexFormatError, OSError):
            # a reader may race the writer's optimize(), which removes the base it reads
            moved = readonly and attempt < 4 and folder.current_gen() != gen
            folder.close()
            if not moved:
                raise
        except BaseException:
            folder.close()
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def _build(cls, folder, encoders, verify, options) -> Any:
    m = folder.manifest
    encoders = dict(encoders or {})
    unknown = set(encoders) - set(m["retrievers"])
    if unknown:
        raise ValueError(f"encoders given for unknown retrievers {sorted(unknown)}")
    folder.check(verify)
    retrievers = {
        name: cls._load_retriever(folder.base_folder(name), encoders.get(name))
        for name in m["retrievers"]
    }
    engine = cls._from_manifest(m, retrievers, options)
    attach(engine, folder, verify)
    return engine


def _encoder_of(retriever: Any) -> Any:
    return getattr(retriever, "encoder", None) or getattr(retriever, "analyzer", None)


def start_merger(engine: Any, policy: MergePolicy) -> None:
    """Give a writing folder engine its background merge (see :mod:`hybrid.storage.merge`).

    Only for engines whose indexes all live in the folder (sparse, dense, BM25): a merge
    replays commits into indexes loaded from disk, which a remote store (Qdrant) is not."""
    from indexes import BM25Index, DenseIndex, SparseIndex

    folder: EngineFolder = engine._folder
    local = (SparseIndex, DenseIndex, BM25Index, type(None))
    if folder.readonly or not all(
        isinstance(getattr(r, "index", None), local) for r in engine.retrievers.values()
    ):
        return
    load_retriever = type(engine)._load_retriever

    def load(name: str, path: Path) -> Any:
        return load_retriever(path, _encoder_of(engine.retrievers[name]))

    folder.merger = Merger(folder, policy, load)
    folder.merger.notify()  # a folder opened with a long log merges now


def attach(engine: Any, folder: EngineFolder, verify: bool, reload: bool = True) -> None:
    """Give ``engine`` the folder's documents and replay its commits into the retrievers."""
    folder.begin_snapshot()
    m = folder.read_manifest()
    folder.manifest = m
    store = SqliteDocumentStore.read(folder.db, m["n_rows"], m["n_live"], verify)
    if reload:
        for _, delete_rows, encoded in folder.segments(after=m["base_gen"]):
            atomic.replay(engine.retrievers, delete_rows, encoded)
    for name, retriever in engine.retrievers.items():
        if len(retriever) != len(store):
            raise IndexCorruptedError(
                f"{folder.path}: retriever {name!r} holds {len(retriever)} documents, the "
                f"document store {len(store)}"
            )
    if not folder.readonly:
        folder.end_snapshot()
    engine.store = store
    engine._folder = folder
    engine._gen = m["gen"]
    engine._backfill_stats()  # rows replayed from commits carry no texts


def refresh(engine: Any, encoders: Mapping[str, Any] | None = None) -> bool:
    """Bring a read-only engine to the folder's committed state; whether anything changed."""
    folder: EngineFolder = engine._folder
    with engine._rw.write():
        folder.end_snapshot()
        folder.begin_snapshot()
        m = folder.read_manifest()
        if m["gen"] == engine._gen:
            return False
        if m["base_gen"] <= engine._gen:
            store = engine.store
            n_old = store.n_rows
            for _, delete_rows, encoded in folder.segments(after=engine._gen):
                atomic.replay(engine.retrievers, delete_rows, encoded)
                old = delete_rows[delete_rows < n_old]
                for row in old.tolist():
                    if store.live[row]:
                        store.remove([row])
            store.extend(
                folder.db.rows(
                    "SELECT row, id, live FROM docs WHERE row >= ? ORDER BY row", (n_old,)
                ),
                n_old,
            )
            folder.manifest = m
            engine._gen = m["gen"]
            engine._backfill_stats()
            return True
    # the writer folded commits into a new base: open it afresh and take its state
    fresh = open_engine(type(engine), folder.path, engine._encoders, False, True, {})
    with engine._rw.write():
        old_folder = engine._folder
        engine.retrievers, engine.store = fresh.retrievers, fresh.store
        engine._folder, engine._gen = fresh._folder, fresh._gen
        old_folder.close()
    return True


def detach(engine: Any) -> None:
    """Copy a folder engine's documents into memory and close the folder (for ``load``)."""
    from hybrid.engine.store import DocumentStore

    store = DocumentStore()
    for row, (doc_id, text, meta, live) in enumerate(_rows(engine.store)):
        store.ids.append(doc_id)
        store.texts.append(text)
        store.metadata.append(meta)
        store.live.append(bool(live))
        if live:
            store._row[doc_id] = row
    engine._folder.close()
    engine._folder = None
    engine.store = store


__all__ = [
    "KIND",
    "V1",
    "create",
    "detach",
    "kind_of",
    "open_engine",
    "refresh",
    "save",
    "start_merger",
]
