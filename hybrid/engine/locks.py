"""A readers-writer lock (many searches at once, one write applied at a time) and the shared
thread pool that runs one search's retrievers side by side.

Writers are preferred: once a writer waits, new readers queue behind it, so a steady stream of
searches cannot starve a write. The lock is not re-entrant: a thread holding the read lock must
not take it again (a waiting writer would block it for ever).
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


class RWLock:
    """``with lock.read(): ...`` for searches, ``with lock.write(): ...`` to apply a write."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0
        self._read = _Read(self)

    def read(self) -> _Read:
        """The read side as a context manager (one object, shared: it holds no state)."""
        return self._read

    def _acquire_read(self) -> None:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1

    def _release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            if self._readers == 0 and self._waiting_writers:  # only writers wait for 0
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class _Read:
    """``with lock.read():`` (a class rather than a generator: every search takes it)."""

    __slots__ = ("_lock",)

    def __init__(self, lock: RWLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock._acquire_read()

    def __exit__(self, *exc: object) -> None:
        self._lock._release_read()


# -- the shared thread pool behind ``parallel=True`` ------------------------------------------

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def shared_pool() -> ThreadPoolExecutor:
    """One process-wide pool for the retrievers of parallel searches (created on first use):
    threads are started once, not per search."""
    global _POOL
    if _POOL is None:
        with _POOL_LOCK:
            if _POOL is None:
                workers = min(32, 4 * (os.cpu_count() or 1))
                _POOL = ThreadPoolExecutor(workers, thread_name_prefix="hybrid-retriever")
    return _POOL


def run_each(fn: Callable[[str], T], names: list[str], parallel: bool) -> dict[str, T]:
    """``{name: fn(name)}``; with ``parallel``, all but the first run in the shared pool while
    the calling thread runs the first. Every call has finished when this returns or raises (the
    caller's locks cover them all); the first exception, in name order, is raised."""
    if not parallel or len(names) <= 1:
        return {n: fn(n) for n in names}
    pool = shared_pool()
    # each pooled call runs in a copy of the caller's context (e.g. progress settings follow)
    futures = {n: pool.submit(contextvars.copy_context().run, fn, n) for n in names[1:]}
    results: dict[str, T] = {}
    errors: dict[str, BaseException] = {}
    try:
        results[names[0]] = fn(names[0])
    except BaseException as exc:  # re-raised below, after the others finish
        errors[names[0]] = exc
    for name, future in futures.items():
        try:
            results[name] = future.result()
        except BaseException as exc:
            errors[name] = exc
    for name in names:
        if name in errors:
            raise errors[name]
    return {n: results[n] for n in names}
