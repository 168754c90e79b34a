"""Argument checks for the indexes' public methods: exact types, finite ranges, clear messages.

Every check raises ``TypeError`` (wrong kind of value), ``ValueError`` (right kind, bad value)
or ``KeyError`` (an id the index does not hold), naming the argument, the offending value
(shortened with :mod:`reprlib`), where useful its position, and what is accepted. Checks run
before anything changes, and arrays are checked with vectorised numpy operations.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from typing import Any

import numpy as np

_INT64 = np.iinfo(np.int64)
_FLOAT32_MAX = float(np.finfo(np.float32).max)

_short = reprlib.Repr()
_short.maxstring = 40
_short.maxother = 40
_short.maxlist = 6
_short.maxtuple = 6
_short.maxdict = 4
_short.maxlevel = 2


def short(value: Any) -> str:
    """``repr(value)`` cut to a readable length (arrays too)."""
    if isinstance(value, np.ndarray):
        with np.printoptions(threshold=8, edgeitems=3):
            text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."
    return _short.repr(value)


def is_int(value: Any) -> bool:
    """Exactly an integer: a Python or numpy integer, not a bool, float or string."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_positive_int(value: Any, name: str, allow_none: bool = False) -> int | None:
    """A positive integer, else ``ValueError`` (as the indexes always raised for ``k``)."""
    if value is None and allow_none:
        return None
    if not is_int(value) or value < 1:
        accepted = "a positive integer (>= 1)" + (" or None" if allow_none else "")
        raise ValueError(f"{name} must be {accepted}, got {type(value).__name__} {short(value)}")
    return int(value)


def check_number(
    value: Any,
    name: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
) -> float:
    """A finite real number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``), as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {short(value)}")
    try:
        v = float(value)
    except OverflowError:
        v = math.inf
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {short(value)}")
    too_low = lo is not None and (v <= lo if lo_open else v < lo)
    if too_low or (hi is not None and v > hi):
        left = "(" if lo_open else "["
        span = (
            f"in {left}{lo:g}, {hi:g}]"
            if lo is not None and hi is not None
            else (f"{'>' if lo_open else '>='} {lo:g}" if lo is not None else f"<= {hi:g}")
        )
        raise ValueError(f"{name} must be {span}, got {short(value)}")
    return v


def _id_items(ids: Any, name: str) -> list[Any] | np.ndarray:
    """The ids as a numpy integer array or a flat Python list (not yet type-checked)."""
    if isinstance(ids, np.ndarray):
        if ids.dtype.kind in "iu":
            return ids.ravel()
        if ids.dtype.kind != "O":
            raise TypeError(
                f"{name} must be integer ids, got an array of dtype {ids.dtype}: {short(ids)}"
            )
        return ids.ravel().tolist()
    if is_int(ids):
        return [ids]
    if ids is None or isinstance(ids, (str, bytes, bytearray, Mapping, float, bool, np.generic)):
        raise TypeError(
            f"{name} must be a list or array of integer ids, got {type(ids).__name__} {short(ids)}"
        )
    try:
        return list(ids)
    except TypeError:
        raise TypeError(
            f"{name} must be a list or array of integer ids, got {type(ids).__name__} {short(ids)}"
        ) from None


def check_ids(ids: Any, name: str = "ids") -> np.ndarray:
    """Document ids as a flat int64 array; nothing that is not exactly an integer is accepted.

    Floats (even ``2.0``), strings, booleans and ``None`` raise ``TypeError`` naming the
    position; integers outside int64 raise ``KeyError`` (no document has such an id).
    """
    items = _id_items(ids, name)
    if isinstance(items, np.ndarray):
        if items.dtype.kind == "u" and items.size and items.max() > _INT64.max:
            big = items[items > _INT64.max]
            raise KeyError(f"unknown document ids ({name} beyond int64): {big[:10].tolist()}")
        return items.astype(np.int64, copy=False)
    for i, x in enumerate(items):
        if not is_int(x):
            raise TypeError(
                f"{name}[{i}] is {type(x).__name__} {short(x)}; ids must be integers "
                "(not floats, strings, booleans or None)"
            )
    big = [x for x in items if not _INT64.min <= x <= _INT64.max]
    if big:
        raise KeyError(f"unknown document ids ({name} beyond int64): {short(big)}")
    return np.array(items, dtype=np.int64)


def unique_ids(ids: Any, name: str = "ids") -> np.ndarray:
    """:func:`check_ids`, sorted; an id given twice raises ``ValueError`` naming it."""
    arr = np.sort(check_ids(ids, name))
    dup = arr[1:][arr[1:] == arr[:-1]]
    if dup.size:
        raise ValueError(
            f"{name} holds id {int(dup[0])} more than once ({dup.size} repeat(s)); "
            "give each id once"
        )
    return arr


def check_search_k(k: Any, n_docs: int, name: str = "k") -> int:
    """A positive integer ``k``, clamped to ``n_docs``: no result row is wider than the
    collection (the width may be 0 for an empty index)."""
    k = check_positive_int(k, name)
    return min(k, int(n_docs))


def check_float32_range(max_abs: float, what: str) -> None:
    """Refuse values that become infinite as float32 (scores are float32)."""
    if max_abs > _FLOAT32_MAX:
        raise ValueError(
            f"{what} hold a value of magnitude {max_abs:.3g}, beyond float32's range "
            f"(+-{_FLOAT32_MAX:.3g}); scale them down"
        )


def check_choice(value: Any, name: str, choices: Any) -> str:
    """One of the strings ``choices``."""
    options = sorted(choices)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {options}, got {short(value)}")
    return value
