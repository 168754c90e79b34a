"""Background merge: fold an engine folder's commit records into a new base snapshot.

Every commit appends a record (deleted rows, the new rows' encodings) that ``open`` replays
over the base snapshot, so without merging, open time and the database grow with every write.
When the records pass the :class:`MergePolicy` threshold, a thread of the writing engine
builds the next base **from the folder, not from the live engine**: it reads the committed
manifest and records in one SQLite read transaction, loads the base snapshot into fresh index
objects, replays the records into them and saves them under a new name (fsynced). Searches and
writes go on meanwhile, untouched (the live indexes are never read or locked). The switch is
one SQLite transaction taken under the folder's commit lock: the manifest names the new base,
``base_gen`` becomes the merged generation, the records up to it are deleted; records that
landed during the merge have higher generations and stay, to be replayed over the new base.
The switch bumps the generation, so readers notice it (a reader behind the merged generation
reopens the new base; one past it replays the newer records as usual). The old snapshot is
removed after the switch. A kill at any moment leaves the old or the new manifest, both
complete; an unfinished snapshot is a leftover that the next writer's ``open`` removes.

Memory: a merge holds a second copy of the indexes while it runs (they are loaded from disk).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybrid.storage import atomic
from hybrid.storage.codec import unpack
from hybrid.storage.files import check_name, inside

log = logging.getLogger(__name__)

Loader = Callable[[str, Path], Any]  # (retriever name, its saved folder) -> a Retriever
NICENESS = 10  # added to the merge thread's niceness: it yields the CPU to searches and writes


@dataclass(frozen=True)
class MergePolicy:
    """When the background merge folds the commit records into a new base snapshot.

    A merge starts after a commit when the records since the base number ``max_commits`` or
    more, or number ``min_commits`` or more and weigh ``log_ratio`` x the base snapshot's size
    or more (small engines merge often and cheaply, large ones once their log is a sizeable
    fraction of them, and no engine replays more than ``max_commits`` records on open). Pass
    ``merge=None`` to :meth:`HybridRetriever.open` to disable it (``optimize()`` still folds
    on request).
    """

    max_commits: int = 256
    min_commits: int = 16
    log_ratio: float = 0.25

    def __post_init__(self) -> None:
        for name in ("max_commits", "min_commits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MergePolicy.{name} must be a positive integer, got {value!r}")
        ratio = self.log_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio >= 0:
            raise ValueError(f"MergePolicy.log_ratio must be a number >= 0, got {ratio!r}")

    def due(self, commits: int, log_bytes: int, base_bytes: int) -> bool:
        """Whether ``commits`` records of ``log_bytes`` over a base of ``base_bytes`` call for
        a merge."""
        if commits >= self.max_commits:
            return True
        return commits >= self.min_commits and log_bytes >= self.log_ratio * base_bytes


DEFAULT_POLICY = MergePolicy()


def policy_of(value: Any) -> MergePolicy | None:
    """The ``merge=`` argument of ``open``: a :class:`MergePolicy`, ``None``/``False`` (off) or
    ``True`` (the default policy)."""
    if value is None or value is False:
        return None
    if value is True:
        return DEFAULT_POLICY
    if isinstance(value, MergePolicy):
        return value
    raise TypeError(f"merge must be a MergePolicy, True or None (off), got {value!r}")


class Cancelled(Exception):
    """The merge was stopped (the engine is closing)."""


class Merger:
    """The background merge thread of one writing :class:`~hybrid.storage.folder.EngineFolder`.

    :meth:`notify` (after each commit) wakes it; it merges while the policy says so. ``stop``
    (called by the folder's ``close``) cancels a merge in progress at its next step and joins
    the thread. ``merges`` counts completed merges; ``error`` holds the last failure (a failed
    merge changes nothing; it is retried once the log has grown by ``min_commits`` more).
    """

    def __init__(self, folder: Any, policy: MergePolicy, load: Loader) -> None:
        self.folder = folder
        self.policy = policy
        self.load = load
        self.merges = 0
        self.error: BaseException | None = None
        self._retry_at = 0  # after a failure: the log length at which to try again
        self._wake = threading.Condition()
        self._pending = False
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def notify(self) -> None:
        """A commit landed: merge in the background if the policy says so."""
        if self._stopping or not self._due():
            return
        with self._wake:
            self._pending = True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"hybrid-merge {self.folder.path.name}", daemon=True
                )
                self._thread.start()
            self._wake.notify_all()

    def _due(self) -> bool:
        commits, log_bytes = self.folder.log_size
        if commits < self._retry_at:
            return False
        base_bytes = sum(size for size, _ in self.folder.manifest.get("files", {}).values())
        return self.policy.due(commits, log_bytes, base_bytes)

    def _run(self) -> None:
        with contextlib.suppress(AttributeError, OSError):  # Linux: this thread only
            tid = threading.get_native_id()
            os.setpriority(
                os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + NICENESS)
            )
        while True:
            with self._wake:
                while not self._pending and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                self._pending = False
                self._busy = True
            try:
                while not self._stopping and self._due():
                    if not merge(self.folder, self.load, self._check):
                        break  # the base changed meanwhile (optimize): nothing left to do
                    self.merges += 1
            except Cancelled:
                pass
            except Exception as exc:  # a failed merge changes nothing: keep serving
                self.error = exc
                self._retry_at = self.folder.log_size[0] + self.policy.min_commits
                log.warning("background merge of %s failed: %s", self.folder.path, exc)
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()

    def _check(self) -> None:
        if self._stopping:
            raise Cancelled

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no merge is running or due; whether that happened within ``timeout``."""
        with self._wake:
            return self._wake.wait_for(lambda: not (self._busy or self._pending), timeout)

    def stop(self) -> None:
        """Cancel a merge in progress (at its next step) and end the thread."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()


def merge(folder: Any, load: Loader, check: Callable[[], None] = lambda: None) -> bool:
    """Fold the folder's committed records into a new base snapshot and switch to it (see the
    module notes); ``check()`` between steps may raise to cancel. Whether it switched."""
    with folder.merge_lock:
        db = folder.path.resolve() / "engine.sqlite"
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
        try:
            conn.execute("BEGIN")
            (gen, body, crc), *_ = conn.execute(
                "SELECT gen, body, crc FROM manifest WHERE key = 1"
            ).fetchall()
            m = folder.parse_manifest(gen, body, crc)
            ((records,),) = conn.execute(
                "SELECT count(*) FROM segments WHERE gen > ? AND gen <= ?",
                (m["base_gen"], m["gen"]),
            ).fetchall()
            if not records:  # nothing to fold (e.g. optimize() ran while this one waited)
                return False
            name = f"base-{m['gen']:08d}-m"
            if name == m["base"]:
                return False
            retrievers = {
                r: load(r, inside(folder.path, f"{m['base']}/{check_name(r)}"))
                for r in m["retrievers"]
            }
            for retriever in retrievers.values():  # a copy that is never searched: no
                if hasattr(retriever.index, "precompute_delay"):  # BM25 precompute thread
                    retriever.index.precompute_delay = None
            check()
            cursor = conn.execute(
                "SELECT gen, data, crc FROM segments WHERE gen > ? AND gen <= ? ORDER BY gen",
                (m["base_gen"], m["gen"]),
            )
            for seg_gen, blob, seg_crc in cursor:
                where = f"{db} (commit {seg_gen})"
                if not isinstance(blob, bytes) or zlib.crc32(blob) != seg_crc:
                    raise RuntimeError(f"{where}: the commit record fails its checksum")
                atomic.replay(retrievers, *unpack(blob, where))
                check()
            live = np.array(
                [r[0] for r in conn.execute("SELECT live FROM docs ORDER BY row")], dtype=bool
            )
            if live.size != m["n_rows"] or int(live.sum()) != m["n_live"]:
                raise RuntimeError(f"{folder.path}: the documents disagree with the manifest")
            _backfill_stats(retrievers, live, conn)
            for r, retriever in retrievers.items():
                if len(retriever) != m["n_live"]:
                    raise RuntimeError(
                        f"{folder.path}: merged retriever {r!r} holds {len(retriever)} "
                        f"documents, the manifest {m['n_live']}"
                    )
        finally:
            conn.close()
        check()
        from hybrid.storage.folder import write_snapshot

        try:
            files = write_snapshot(folder.path, name, retrievers, check)
            check()
            switched = folder.switch_base(m, name, files)
        except BaseException:
            shutil.rmtree(folder.path / name, ignore_errors=True)
            raise
        if not switched:
            shutil.rmtree(folder.path / name, ignore_errors=True)
            return False
        shutil.rmtree(inside(folder.path, m["base"]), ignore_errors=True)
        return True


def _backfill_stats(retrievers: dict[str, Any], live: np.ndarray, conn: Any) -> None:
    """Collection statistics of script-bound retrievers extended by the replayed rows (their
    records carry encodings, not texts: the texts are read from the snapshot), as the engine
    does on open."""
    n_rows = live.size
    for retriever in retrievers.values():
        if not retriever.script_bound or retriever.collection_stats() is not None:
            continue
        stats = retriever.stats
        start = 0 if stats is None or stats.n_rows > n_rows else stats.n_rows
        if start == 0:
            retriever.stats = None
        if start < n_rows:
            texts = [
                t
                for (t,) in conn.execute(
                    "SELECT text FROM docs WHERE row >= ? ORDER BY row", (start,)
                )
            ]
            retriever.observe_documents(texts, np.arange(start, n_rows))
        if retriever.stats is not None:
            retriever.stats.delete(np.flatnonzero(~live))
