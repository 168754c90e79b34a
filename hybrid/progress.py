"""Progress bars for the long stages (encoding, analysing, indexing), all in one style.

Every stage that can take minutes on a CPU (SPLADE and dense encoding, BM25 analysis, building
the indexes) draws the same kind of bar on stderr: ``desc: 45%|███  | 135/300 [00:12<00:15,
11.2doc/s]`` (count, elapsed, ETA, rate). Whether it is drawn is decided once per stage:

1. an encoder's own setting (``show_progress=True/False``) wins;
2. else the innermost :func:`progress_scope` (``HybridRetriever.add(progress=...)`` opens one;
   the CLI opens ``progress_scope(True)`` for ``hybrid index`` and ``False`` under ``-q``);
3. else the default: shown when stderr is a terminal and the stage has at least
   :data:`PROGRESS_MIN_ITEMS` items (a few hundred documents already take minutes on a CPU; a
   handful of queries never gets a bar, and logs and notebooks stay clean).

The scope is a :class:`contextvars.ContextVar`, so it follows the engine into the threads that
run its retrievers (the engine copies the context into each) and never leaks between callers.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

PROGRESS_MIN_ITEMS = 200
"""With no explicit setting, a stage gets a bar from this many items on (and only on a TTY)."""

_T = TypeVar("_T")
_SCOPE: ContextVar[bool | None] = ContextVar("hybrid_progress", default=None)


@contextmanager
def progress_scope(enabled: bool | None) -> Iterator[None]:
    """Show (``True``) or hide (``False``) the bars of every stage run inside the block;
    ``None`` keeps whatever the enclosing scope (or the default) says."""
    if enabled is None:
        yield
        return
    token = _SCOPE.set(bool(enabled))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def wanted(setting: bool | None, total: int) -> bool:
    """Whether a stage of ``total`` items shows a bar (see the module docstring for the rule)."""
    if setting is None:
        setting = _SCOPE.get()
    if setting is None:
        return total >= PROGRESS_MIN_ITEMS and _stderr_is_tty()
    return bool(setting)


def bar(total: int, desc: str, setting: bool | None = None, unit: str = "doc") -> Any:
    """A tqdm bar on stderr (disabled when :func:`wanted` says no); use it as a context
    manager and call ``update(n)``. Off a terminal it redraws at most every 10 s, so a log
    file gets a line per 10 s rather than ten per second, and never moves the cursor (bars of
    retrievers encoding in parallel then share one line instead of stacking)."""
    if not wanted(setting, total):
        return _NoBar(total)  # every search encodes its queries: no tqdm object for them
    from tqdm.auto import tqdm

    tty = _stderr_is_tty()
    options: dict[str, Any] = {} if tty else {"position": 0, "mininterval": 10.0}
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        dynamic_ncols=tty,
        leave=True,
        **options,
    )


class _NoBar:
    """What :func:`bar` returns when no bar is shown: the calls a stage makes, doing nothing
    (creating a disabled tqdm costs ~60 us, on every query encoded)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.n = 0

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
        return None

    def close(self) -> None:
        return None


def track(items: Iterable[_T], total: int, desc: str, setting: bool | None = None) -> Iterator[_T]:
    """Iterate ``items`` while advancing a :func:`bar` of ``total`` items."""
    with bar(total, desc, setting) as b:
        for item in items:
            yield item
            b.update(1)
