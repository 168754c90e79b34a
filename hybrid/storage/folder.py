"""An engine folder: the commit protocol of a folder-backed engine.

Layout (format version 2)::

    engine.sqlite       documents (one row each, with a CRC), commit records, the manifest
    base-<gen>/<name>/  each retriever's index as ``Retriever.save`` writes it (a snapshot)
    LOCK                held (``fcntl.flock``) by the one process writing to the folder

The manifest (one row of ``engine.sqlite``, with its CRC) names the base snapshot, the size and
CRC-32 of every file in it, the commit generation and the document counts. A commit (``add``,
``delete``, ...) is one SQLite transaction: the batch's document rows, a commit record holding
the delete rows and every retriever's encodings of the new documents (replayed into the base on
open), and the new manifest. SQLite's WAL commit (``synchronous=FULL``) is the atomic, durable
switch, like ``segments_N`` in Lucene: a kill leaves the previous or the new generation.
``optimize`` writes a new base snapshot under a new name, fsyncs it, switches the manifest in
one transaction (dropping the folded commit records) and only then removes the old snapshot;
the background merge (:mod:`hybrid.storage.merge`) does the same from the folder's committed
state while writes go on.
Files not named by the committed manifest are leftovers of an interrupted write, removed when
a writer opens the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import threading
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from hybrid.storage.codec import pack, unpack
from hybrid.storage.docstore import SCHEMA, Database, row_crc
from hybrid.storage.files import check_files, check_name, fsync_dir, inside, seal_tree
from indexes.base import META_FILE, IndexCorruptedError, IndexFormatError

FORMAT_VERSION = 2
KIND = "HybridRetriever"
DB_FILE = "engine.sqlite"
LOCK_FILE = "LOCK"
_V1_FILES = (META_FILE, "documents.jsonl", "retrievers", "qdrant.json")


class EngineLockedError(RuntimeError):
    """Another engine (in this or another process) is writing to the folder."""


def committed(path: Path) -> bool:
    """Whether ``path`` holds a committed format-2 engine (a manifest row in its database)."""
    db = path / DB_FILE
    if not db.is_file():
        return False
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60)
        try:
            return bool(conn.execute("SELECT count(*) FROM manifest").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return False
        raise IndexCorruptedError(f"{db}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise IndexCorruptedError(f"{db}: not a readable SQLite database ({exc})") from exc


def _ours(name: str) -> bool:
    """Names a writer may create in an engine folder (anything else is someone else's)."""
    return name.startswith((DB_FILE, "base-", ".tmp")) or name == LOCK_FILE or name in _V1_FILES


class EngineFolder:
    """An open engine folder: its database, manifest and (for a writer) its lock."""

    def __init__(self, path: Path, readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        self._lock_fd: int | None = None
        self.db: Database | None = None
        self.manifest: dict[str, Any] = {}
        self._probe: sqlite3.Connection | None = None
        self._probe_lock = threading.Lock()
        self.merge_lock = threading.Lock()  # one base writer at a time (merge, optimize)
        self.merger: Any = None  # the background merge (a writer's; set by its engine)
        self.log_size = (0, 0)  # commit records since the base: (count, bytes)
        self._pending_bytes = 0

    # -- opening --------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, readonly: bool) -> EngineFolder:
        folder = cls(path, readonly)
        if not readonly:
            folder._lock()
        try:
            folder.db = Database(path / DB_FILE)
            folder.begin_snapshot()
            folder.manifest = folder.read_manifest()
            if not readonly:
                folder.end_snapshot()
                folder.cleanup()
                folder.measure_log()
        except BaseException:
            folder.close()
            raise
        return folder

    def _lock(self) -> None:
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EngineLockedError(
                f"{self.path} is being written by another engine (its {LOCK_FILE} is held); one "
                "writer at a time: open it with readonly=True to search it meanwhile"
            ) from None
        self._lock_fd = fd

    def close(self) -> None:
        if self.merger is not None:
            self.merger.stop()  # cancels a merge in progress; joins its thread
            self.merger = None
        if self.db is not None:
            self.db.close()
            self.db = None
        if self._probe is not None:
            self._probe.close()
            self._probe = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # -- the manifest ---------------------------------------------------------------------------

    def read_manifest(self) -> dict[str, Any]:
        rows = self.db.rows("SELECT gen, body, crc FROM manifest WHERE key = 1")
        if not rows:
            raise IndexCorruptedError(
                f"{self.path / DB_FILE} holds no committed manifest (damaged, or the engine's "
                "creation was interrupted): delete the folder and build the engine again"
            )
        return self.parse_manifest(*rows[0])

    def parse_manifest(self, gen: Any, body: Any, crc: Any) -> dict[str, Any]:
        """The manifest of one database row, checked (checksum, type, format, names)."""
        if not isinstance(body, str) or zlib.crc32(body.encode("utf-8")) != crc:
            raise IndexCorruptedError(f"{self.path / DB_FILE}: the manifest fails its checksum")
        try:
            manifest = json.loads(body)
        except json.JSONDecodeError as exc:
            raise IndexCorruptedError(f"{self.path / DB_FILE}: damaged manifest") from exc
        if manifest.get("type") != KIND or manifest.get("gen") != gen:
            raise IndexCorruptedError(f"{self.path / DB_FILE}: damaged manifest")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexFormatError(
                f"{self.path} has format version {manifest.get('format_version')!r}; this "
                f"release reads {FORMAT_VERSION}"
            )
        for name in manifest["retrievers"]:
            check_name(name)
        inside(self.path, manifest["base"])
        return manifest

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        body = json.dumps(manifest, sort_keys=True)
        self.db.conn.execute(
            "INSERT OR REPLACE INTO manifest VALUES (1, ?, ?, ?)",
            (manifest["gen"], body, zlib.crc32(body.encode("utf-8"))),
        )

    def measure_log(self) -> None:
        """Count the commit records since the base (what the merge policy weighs)."""
        ((count, size),) = self.db.rows(
            "SELECT count(*), coalesce(sum(length(data)), 0) FROM segments WHERE gen > ?",
            (self.manifest["base_gen"],),
        )
        self.log_size = (int(count), int(size))

    def current_gen(self) -> int:
        """The committed generation, read outside any snapshot (cheap: one indexed query)."""
        with self._probe_lock:
            if self._probe is None:
                self._probe = sqlite3.connect(
                    str(self.path / DB_FILE), isolation_level=None, check_same_thread=False
                )
            row = self._probe.execute("SELECT gen FROM manifest WHERE key = 1").fetchone()
        return int(row[0])

    def begin_snapshot(self) -> None:
        """Start a read transaction: every later read sees this one committed state."""
        with self.db.lock:
            if not self.db.conn.in_transaction:
                self.db.execute("BEGIN")
                self.db.rows("SELECT count(*) FROM sqlite_master")  # takes the snapshot

    def end_snapshot(self) -> None:
        with self.db.lock:
            if self.db.conn.in_transaction:
                self.db.execute("COMMIT")

    def check(self, verify: bool) -> None:
        """Sizes (always) and checksums (``verify``) of the base snapshot's files (the
        database's rows carry their own checksums, checked as they are read)."""
        check_files(self.path, self.manifest.get("files"), verify)

    def base_folder(self, name: str) -> Path:
        return inside(self.path, f"{self.manifest['base']}/{check_name(name)}")

    def segments(self, after: int) -> list[tuple[int, np.ndarray, dict[str, Any]]]:
        """Commit records newer than generation ``after``: ``(gen, delete_rows, encoded)``."""
        out = []
        for gen, blob, crc in self.db.rows(
            "SELECT gen, data, crc FROM segments WHERE gen > ? ORDER BY gen", (after,)
        ):
            where = f"{self.path / DB_FILE} (commit {gen})"
            if not isinstance(blob, bytes) or zlib.crc32(blob) != crc:
                raise IndexCorruptedError(f"{where}: the commit record fails its checksum")
            out.append((gen, *unpack(blob, where)))
        return out

    # -- writing --------------------------------------------------------------------------------

    def begin_commit(self, batch: Any, store: Any, names: list[str]) -> dict[str, Any]:
        """Write one batch (rows, commit record, manifest) in an open transaction; returns the
        new manifest. Follow with :meth:`finish_commit` or :meth:`abort`."""
        if self.readonly:
            raise PermissionError(f"{self.path} is open read-only: writes go through its writer")
        db = self.db
        db.lock.acquire()
        try:
            db.conn.execute("BEGIN IMMEDIATE")
            store.write(
                batch.texts, batch.ids, batch.metadata, batch.delete_rows, batch.metadata_updates
            )
            gen = self.manifest["gen"] + 1
            self._pending_bytes = -1
            if batch.texts or batch.delete_rows.size:
                blob = pack(batch.delete_rows, batch.encoded if batch.texts else {}, names)
                db.conn.execute(
                    "INSERT INTO segments VALUES (?, ?, ?)", (gen, blob, zlib.crc32(blob))
                )
                self._pending_bytes = len(blob)
            manifest = {
                **self.manifest,
                "gen": gen,
                "n_rows": store.n_rows + len(batch.texts),
                "n_live": len(store) + len(batch.texts) - int(batch.delete_rows.size),
            }
            self._write_manifest(manifest)
            return manifest
        except BaseException:
            self.abort()
            raise

    def finish_commit(self, manifest: dict[str, Any]) -> None:
        try:
            self.db.conn.execute("COMMIT")
        except BaseException:
            self.abort()
            raise
        self.manifest = manifest
        if self._pending_bytes >= 0:
            count, size = self.log_size
            self.log_size = (count + 1, size + self._pending_bytes)
        self.db.lock.release()
        if self.merger is not None:
            self.merger.notify()

    def abort(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            if self.db.conn.in_transaction:
                self.db.conn.execute("ROLLBACK")
        with contextlib.suppress(RuntimeError):
            self.db.lock.release()

    def write_base(self, retrievers: dict[str, Any]) -> None:
        """Fold every commit into a new base snapshot of ``retrievers`` (their in-memory state
        is the committed state); the old snapshot is removed once the switch is durable."""
        with self.merge_lock:  # waits for a background merge in progress
            self._write_base(retrievers)

    def _write_base(self, retrievers: dict[str, Any]) -> None:
        gen = self.manifest["gen"] + 1
        files = write_snapshot(self.path, f"base-{gen:08d}", retrievers)
        with self.db.lock:
            self.db.conn.execute("BEGIN IMMEDIATE")
            try:
                self.db.conn.execute("DELETE FROM segments WHERE gen <= ?", (gen,))
                manifest = {
                    **self.manifest,
                    "gen": gen,
                    "base": f"base-{gen:08d}",
                    "base_gen": self.manifest["gen"],
                    "files": files,
                }
                self._write_manifest(manifest)
                self.db.conn.execute("COMMIT")
            except BaseException:
                self.abort_plain()
                raise
            self.manifest = manifest
            self.log_size = (0, 0)
        self.cleanup()

    def switch_base(self, merged: dict[str, Any], name: str, files: dict[str, list[int]]) -> bool:
        """Make the snapshot ``name`` (the state of manifest ``merged``) the base, keeping the
        commits made since; one transaction under the commit lock. False (nothing changed)
        when the base changed meanwhile."""
        with self.db.lock:
            if self.manifest["base"] != merged["base"]:
                return False
            self.db.conn.execute("BEGIN IMMEDIATE")
            try:
                current = self.read_manifest()
                if current["base"] != merged["base"] or current["gen"] < merged["gen"]:
                    self.abort_plain()
                    return False
                self.db.conn.execute("DELETE FROM segments WHERE gen <= ?", (merged["gen"],))
                manifest = {
                    **current,
                    "gen": current["gen"] + 1,  # readers notice the new base
                    "base": name,
                    "base_gen": merged["gen"],
                    "files": files,
                }
                self._write_manifest(manifest)
                self.db.conn.execute("COMMIT")
            except BaseException:
                self.abort_plain()
                raise
            self.manifest = manifest
            self.measure_log()
        return True

    def abort_plain(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            if self.db.conn.in_transaction:
                self.db.conn.execute("ROLLBACK")

    def cleanup(self) -> None:
        """Remove what the committed manifest does not name (writer only)."""
        keep = {self.manifest["base"], DB_FILE, DB_FILE + "-wal", DB_FILE + "-shm", LOCK_FILE}
        for entry in self.path.iterdir():
            if entry.name in keep or not _ours(entry.name):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()


def write_snapshot(
    root: Path, name: str, retrievers: dict[str, Any], check: Any = None
) -> dict[str, list[int]]:
    """Save every retriever under ``root/name/<retriever>``, fsync it all; returns the file
    records (relative to ``root``) for the manifest. ``check()``, called between retrievers,
    may raise to stop."""
    folder = root / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    for rname, retriever in retrievers.items():
        if check is not None:
            check()
        retriever.save(folder / check_name(rname))
    return seal_tree(folder, root)


def write_engine(
    path: Path,
    settings: dict[str, Any],
    retrievers: dict[str, Any],
    rows: Iterable[tuple[Any, str, Any, int]],
    counts: tuple[int, int],
) -> None:
    """Write a complete engine into folder ``path`` (created when missing) in one commit.

    ``rows`` yields ``(id, text, metadata dict, live)`` for every row in order. An engine
    already committed there is replaced atomically (its writer lock is taken); a format-1
    engine there is replaced once the new one is committed.
    """
    path.mkdir(parents=True, exist_ok=True)
    folder = EngineFolder(path, readonly=False)
    folder._lock()
    try:
        old_gen = 0
        if committed(path):
            folder.db = Database(path / DB_FILE)
            try:
                old_gen = folder.read_manifest()["gen"]
            except IndexFormatError:
                old_gen = 0  # a damaged engine is replaced all the same
        else:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    (path / (DB_FILE + suffix)).unlink()
            folder.db = Database(path / DB_FILE)
        gen = old_gen + 1
        files = write_snapshot(path, f"base-{gen:08d}", retrievers)
        db = folder.db
        with db.lock:
            db.conn.executescript(SCHEMA)
            db.conn.execute("BEGIN IMMEDIATE")
            try:
                db.conn.execute("DELETE FROM docs")
                db.conn.execute("DELETE FROM segments")
                db.conn.executemany("INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?)", _records(rows))
                folder.manifest = {
                    "type": KIND,
                    "format_version": FORMAT_VERSION,
                    "gen": gen,
                    "base": f"base-{gen:08d}",
                    "base_gen": gen,
                    "files": files,
                    "n_rows": counts[0],
                    "n_live": counts[1],
                    **settings,
                }
                folder._write_manifest(folder.manifest)
                db.conn.execute("COMMIT")
            except BaseException:
                folder.abort_plain()
                raise
        fsync_dir(path)
        folder.cleanup()
    finally:
        folder.close()


def _records(rows: Iterable[tuple[Any, str, Any, int]]) -> Iterable[tuple]:
    for row, (doc_id, text, meta, live) in enumerate(rows):
        meta = json.dumps(meta, ensure_ascii=False, sort_keys=True)
        yield row, doc_id, text, meta, int(live), row_crc(row, doc_id, text, meta, int(live))
