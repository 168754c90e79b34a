"""Documents in SQLite (WAL mode): the document store of a folder-backed engine.

Row numbers, external ids and live flags stay in memory (the indexes need them on every
search); texts and metadata are read from the database when a hit needs them, so at 1M
documents the resident memory is the indexes', not the texts'.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybrid.engine.store import DocId, DocumentStore
from indexes.base import IndexCorruptedError

SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (row INTEGER PRIMARY KEY, id NOT NULL, text TEXT NOT NULL,
    meta TEXT NOT NULL, live INTEGER NOT NULL, crc INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS segments (gen INTEGER PRIMARY KEY, data BLOB NOT NULL,
    crc INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS manifest (key INTEGER PRIMARY KEY CHECK (key = 1), gen INTEGER
    NOT NULL, body TEXT NOT NULL, crc INTEGER NOT NULL);
"""


def row_crc(row: int, doc_id: DocId, text: str, meta: str, live: int) -> int:
    """CRC-32 of one stored document row (id typed: ``7`` and ``"7"`` differ)."""
    key = f"{row}\x1f{type(doc_id).__name__}:{doc_id}\x1f{live}\x1f{meta}\x1f{text}"
    return zlib.crc32(key.encode("utf-8"))


class Database:
    """One SQLite connection shared by an engine's threads (serialised by a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=60
            )
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptedError(f"{path}: not a readable SQLite database ({exc})") from exc
        self.lock = threading.RLock()

    def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self.lock:
            try:
                return self.conn.execute(sql, args)
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    raise
                raise IndexCorruptedError(f"{self.path}: {exc}") from exc

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self.lock:
            try:
                return self.conn.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise IndexCorruptedError(f"{self.path}: {exc}") from exc

    def close(self) -> None:
        with self.lock:
            try:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                self.conn.close()
            except sqlite3.Error:
                pass


class _Column(Sequence):
    """``store.texts[row]`` / ``store.metadata[row]`` read from the database."""

    def __init__(self, store: SqliteDocumentStore, column: str, decode: Any) -> None:
        self._store, self._column, self._decode = store, column, decode

    def __len__(self) -> int:
        return self._store.n_rows

    def __getitem__(self, row: Any) -> Any:
        if isinstance(row, slice):
            return [self[r] for r in range(*row.indices(len(self)))]
        row = int(row)
        if not 0 <= row < self._store.n_rows:
            raise IndexError(f"row {row} out of range")
        found = self._store.db.rows(f"SELECT {self._column} FROM docs WHERE row = ?", (row,))
        if not found:
            raise IndexCorruptedError(f"{self._store.db.path}: document row {row} is missing")
        return self._decode(found[0][0])


class SqliteDocumentStore(DocumentStore):
    """A :class:`DocumentStore` whose texts and metadata live in SQLite.

    The folder layer writes rows inside its commit transaction (:meth:`write`); ``append``,
    ``remove`` and ``update_metadata`` then only update the in-memory ids and live flags.
    """

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        self.texts = _Column(self, "text", str)  # type: ignore[assignment]
        self.metadata = _Column(self, "meta", json.loads)  # type: ignore[assignment]

    @classmethod
    def read(cls, db: Database, n_rows: int, n_live: int, verify: bool) -> SqliteDocumentStore:
        """The committed rows; counts checked against the manifest, row checksums with
        ``verify``."""
        store = cls(db)
        if verify:
            rows = db.rows("SELECT row, id, text, meta, live, crc FROM docs ORDER BY row")
            for row, doc_id, text, meta, live, crc in rows:
                if row_crc(row, doc_id, text, meta, live) != crc:
                    raise IndexCorruptedError(f"{db.path}: document row {row} fails its checksum")
            pairs = [(r[0], r[1], r[4]) for r in rows]
        else:
            pairs = db.rows("SELECT row, id, live FROM docs ORDER BY row")
        store.extend(pairs, 0)
        if store.n_rows != n_rows or len(store) != n_live:
            raise IndexCorruptedError(
                f"{db.path}: holds {store.n_rows} rows ({len(store)} live), the manifest "
                f"{n_rows} ({n_live} live)"
            )
        return store

    def extend(self, pairs: list[tuple], first: int) -> None:
        """Add committed rows ``(row, id, live)`` numbered from ``first``."""
        for expected, (row, doc_id, live) in enumerate(pairs, first):
            if row != expected or type(doc_id) not in (str, int) or live not in (0, 1):
                raise IndexCorruptedError(f"{self.db.path}: document row {expected} is damaged")
            self.ids.append(doc_id)
            self.live.append(bool(live))
            if live:
                if doc_id in self._row:
                    raise IndexCorruptedError(f"{self.db.path}: id {doc_id!r} is live twice")
                self._row[doc_id] = row

    def write(
        self,
        texts: Sequence[str],
        ids: Sequence[DocId],
        metadata: Sequence[dict[str, Any]],
        delete_rows: np.ndarray,
        metadata_updates: Mapping[int, dict[str, Any]],
    ) -> None:
        """Write a batch's rows (inside the caller's transaction); memory is not touched."""
        start = self.n_rows
        records = []
        for row, (doc_id, text, m) in enumerate(zip(ids, texts, metadata, strict=True), start):
            meta = json.dumps(m, ensure_ascii=False, sort_keys=True)
            records.append((row, doc_id, text, meta, 1, row_crc(row, doc_id, text, meta, 1)))
        if records:
            self.db.conn.executemany("INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?)", records)
        changed = {int(r): None for r in delete_rows.tolist()}
        for row, m in metadata_updates.items():
            changed[int(row)] = json.dumps(m, ensure_ascii=False, sort_keys=True)
        updates = []
        for row, new_meta in changed.items():
            ((doc_id, text, meta, live),) = self.db.conn.execute(
                "SELECT id, text, meta, live FROM docs WHERE row = ?", (row,)
            ).fetchall()
            live = 0 if row in set(delete_rows.tolist()) else live
            meta = meta if new_meta is None else new_meta
            updates.append((meta, live, row_crc(row, doc_id, text, meta, live), row))
        if updates:
            self.db.conn.executemany("UPDATE docs SET meta=?, live=?, crc=? WHERE row=?", updates)

    def append(self, texts: Sequence[str], ids: list[DocId], meta: list[dict[str, Any]]) -> None:
        for doc_id in ids:
            self._row[doc_id] = len(self.ids)
            self.ids.append(doc_id)
            self.live.append(True)

    def update_metadata(self, updates: Mapping[int, dict[str, Any]]) -> None:
        """Nothing to do in memory: :meth:`write` stored the new metadata."""

    def undo(self, n_rows: int, removed: np.ndarray, old_metadata: Mapping[int, Any]) -> None:
        for row in range(n_rows, self.n_rows):
            self._row.pop(self.ids[row], None)
        del self.ids[n_rows:], self.live[n_rows:]
        for row in removed.tolist():
            if row < n_rows:
                self.live[row] = True
                self._row[self.ids[row]] = row

    def iter_metadata(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(row, metadata)`` of every live row, in row order (one query)."""
        for row, meta in self.db.rows("SELECT row, meta FROM docs WHERE live = 1 ORDER BY row"):
            yield row, json.loads(meta)

    def save(self, path: Path) -> None:  # pragma: no cover - folder engines save via folders
        raise NotImplementedError("a SQLite document store is saved with its engine folder")
