"""An engine on disk: ``save``, ``open``, ``load``, ``refresh``, ``optimize``, ``close`` and
the format-1 reader."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np

from hybrid.engine.base import EngineBase
from hybrid.engine.config import FusionConfig
from hybrid.engine.retrievers import Retriever
from hybrid.engine.store import DocumentStore
from hybrid.storage import engine_io
from hybrid.storage.files import check_name
from indexes.base import IndexFormatError, read_meta

FORMAT_VERSION = 2  # 1: meta.json + documents.jsonl + retrievers/ (still read)
KIND = "HybridRetriever"


class PersistenceMixin(EngineBase):
    """Saving, opening and loading engine folders (part of :class:`HybridRetriever`)."""

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
    ) -> Self:
        """Open a saved engine folder in place: every write is durable when it returns.

        One writer at a time per folder (a lock file; a second gets ``EngineLockedError``);
        any number of ``readonly=True`` engines (other processes) search it and see each
        commit after :meth:`refresh` (automatic before a search, see ``auto_refresh``).
        ``verify`` checks every file's CRC-32 and every document row's (sizes, headers and
        index bounds are always checked); damage raises ``IndexCorruptedError`` naming the
        file. A format-1 folder is upgraded in place. ``encoders`` as in :meth:`load`.
        A writer folds its commit log into a new snapshot in a background thread when the
        log passes ``merge`` (a :class:`~hybrid.storage.MergePolicy`, default
        ``MergePolicy()``; ``None``: only :meth:`optimize` folds).
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
    ) -> Self:
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
        (makes opening faster); searches continue meanwhile, a background merge in progress
        is waited for."""
        if self._folder is None:
            raise ValueError("optimize() applies to folder-backed engines (open/path=)")
        with self._writer, self._rw.read():
            self._folder.write_base(self.retrievers)

    def close(self) -> None:
        """Release the folder (its writer lock, the database) after stopping its background
        merge (one in progress is cancelled at its next step); an in-memory engine: no-op."""
        if self._folder is not None:
            self._folder.close()
            self._folder = None

    def __enter__(self) -> Self:
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
    ) -> Self:
        settings: dict[str, Any] = {
            "config": FusionConfig.from_dict(meta["config"]),
            "preset": meta.get("preset"),
        }
        settings.update(options)
        return cls(retrievers, **settings)

    @classmethod
    def _load_v1(
        cls, path: Path, encoders: Mapping[str, Any] | None, options: dict[str, Any]
    ) -> Self:
        """A format-1 folder (``meta.json``, ``documents.jsonl``, ``retrievers/``) in memory."""
        meta = read_meta(path, KIND, 1)
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
    ) -> Self:
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

    assemble = _assemble  # public hook (see EngineBase)
