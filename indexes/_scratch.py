"""Pooled scratch buffers for search kernels, safe to take from several threads at once.

A kernel leaves its buffers clean (zeroed) when it returns, so a buffer goes back to the pool
after a successful call and is reused by the next search of the same size; a call that raises
drops its buffers (they may be dirty). Each running search holds its own buffers, so concurrent
searches never share one.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np


class ScratchPool:
    """``with pool.take((name, size), dtype) as buf:`` a zeroed array of ``size`` elements
    (or :meth:`get` and :meth:`put`, without a context manager)."""

    def __init__(self, keep: int = 8, keys: int = 64) -> None:
        self._free: dict[Hashable, list[Any]] = {}
        self._lock = threading.Lock()
        self._keep = keep  # buffers kept per key (about the number of concurrent searches)
        self._keys = keys  # sizes kept (one per segment and buffer kind), least recent dropped

    @contextmanager
    def take(self, key: tuple[Hashable, int], dtype: type) -> Iterator[np.ndarray]:
        buf = self.get(key, dtype)
        yield buf  # an exception in the block skips the return below: the buffer is dropped
        self.put(key, buf)

    def get(self, key: tuple[Hashable, int], dtype: type) -> np.ndarray:
        """A zeroed buffer of ``key[1]`` elements, to :meth:`put` back once it is clean
        again (what :meth:`take` does; a caller whose kernel raised keeps it instead)."""
        buf = self._pop(key)
        return np.zeros(key[1], dtype=dtype) if buf is None else buf

    def get_group(self, key: Hashable, sizes: tuple[tuple[int, type], ...]) -> tuple:
        """Zeroed buffers of ``sizes`` (``(elements, dtype)`` each) kept together under
        ``key`` (one lock for all), to :meth:`put` back together as that tuple."""
        bufs = self._pop(key)
        return tuple(np.zeros(n, dtype=dtype) for n, dtype in sizes) if bufs is None else bufs

    def _pop(self, key: Hashable) -> Any:
        with self._lock:
            free = self._free.get(key)
            buf = free.pop() if free else None
            if free is not None and not free:
                del self._free[key]
        return buf

    def put(self, key: Hashable, buf: Any) -> None:
        """Return a clean buffer (or group) taken with :meth:`get` (:meth:`get_group`) under
        the same ``key``."""
        with self._lock:
            free = self._free.pop(key, [])
            if len(free) < self._keep:
                free.append(buf)
            self._free[key] = free  # most recently used last
            while len(self._free) > self._keys:  # sizes no longer asked for age out
                del self._free[next(iter(self._free))]
