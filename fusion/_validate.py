"""Argument checks for the public fusion functions (private; pure numpy, vectorised).

Errors are ``TypeError`` (wrong kind of value) or ``ValueError`` (bad value) and name the
argument, the offending value (shortened) and what is accepted.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Sequence
from typing import Any

import numpy as np

_INT64_MAX = np.iinfo(np.int64).max

_short = reprlib.Repr()
_short.maxstring = 40
_short.maxother = 40
_short.maxlist = 6
_short.maxtuple = 6


def short(value: Any) -> str:
    """``repr(value)`` cut to a readable length (arrays too)."""
    if isinstance(value, np.ndarray):
        with np.printoptions(threshold=8, edgeitems=3):
            text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."
    return _short.repr(value)


def check_sequence(value: Any, name: str, what: str) -> None:
    """``value`` is a list/tuple-like collection (not a string, not None)."""
    if (
        isinstance(value, (str, bytes, bytearray))
        or not isinstance(value, (Sequence, np.ndarray))
        or (isinstance(value, np.ndarray) and value.ndim == 0)
    ):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {short(value)}")


def check_real(value: Any, name: str, lo: float | None = None) -> float:
    """A finite real number (not a bool), ``>= lo`` when given."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {short(value)}")
    try:
        v = float(value)
    except OverflowError:
        v = math.inf
    if not math.isfinite(v) or (lo is not None and v < lo):
        bound = f" >= {lo:g}" if lo is not None else ""
        raise ValueError(f"{name} must be a finite number{bound}, got {short(value)}")
    return v


def real_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a float64 array; ``TypeError`` unless it holds real numbers (NaN allowed)."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
        return value.astype(np.float64, copy=False)
    if value is None or isinstance(value, (str, bytes, bytearray)):
        raise TypeError(f"{name} must be an array of numbers, got {short(value)}")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of numbers, got {short(value)}") from exc
    if arr.dtype.kind not in "fiu" and not (arr.dtype.kind == "O" and arr.size == 0):
        raise TypeError(
            f"{name} must be an array of real numbers, got dtype {arr.dtype}: {short(value)}"
        )
    return arr.astype(np.float64)


def object_ids(a: np.ndarray, where: str) -> np.ndarray:
    """An object array of ids -> int64 (all integers) or str (all strings); anything else,
    e.g. ``None`` or a mix of integers and strings, raises ``TypeError`` naming the position."""
    flat = a.ravel().tolist()
    is_str = [isinstance(x, str) for x in flat]
    if all(is_str):
        return a.astype(str)
    for i, x in enumerate(flat):
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
            raise TypeError(
                f"{where}: ids[{i}] is {type(x).__name__} {short(x)}; ids must be all integers "
                "or all strings"
            )
    if any(not -1 <= x <= _INT64_MAX for x in flat):
        bad = next(x for x in flat if not -1 <= x <= _INT64_MAX)
        raise ValueError(f"{where}: id {bad} is outside 0 .. 2**63 - 1 (-1 marks padding)")
    return a.astype(np.int64)


def check_uint_ids(a: np.ndarray, where: str) -> None:
    """Unsigned ids must fit int64 (they are converted to it)."""
    if a.dtype.kind == "u" and a.dtype.itemsize >= 8 and a.size and a.max() > _INT64_MAX:
        raise ValueError(
            f"{where}: id {int(a.max())} is beyond the int64 range (ids are 0 .. 2**63 - 1)"
        )


def matrix(value: Any, name: str) -> np.ndarray:
    """A 2-D float64 array ``(n_documents, n_lists)`` (NaN allowed: absent)."""
    arr = real_array(value, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (documents x lists), got shape {arr.shape}")
    return arr


def rank_matrix(value: Any, name: str = "ranks") -> np.ndarray:
    """A 2-D integer array of ranks: 1-based, 0 = absent."""
    accepted = "an integer array (1-based, 0 = absent)"
    try:
        arr = np.asarray(value) if not isinstance(value, np.ndarray) else value
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be {accepted}, got {short(value)}") from exc
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be {accepted}, got {short(value)}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (documents x lists), got shape {arr.shape}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must be >= 0 (0 = absent), got {int(arr.min())}")
    return arr


def weights_arg(value: Any, n_lists: int, name: str = "weights") -> np.ndarray | None:
    """None, or non-negative finite weights of shape ``(n_lists,)`` or ``(n, n_lists)``."""
    if value is None:
        return None
    w = real_array(value, name)
    if w.ndim not in (1, 2) or w.shape[-1] != n_lists:
        raise ValueError(
            f"{name} must have one value per list ({n_lists}) or shape (n, {n_lists}), "
            f"got shape {w.shape}"
        )
    ok = np.isfinite(w) & (w >= 0)
    if not ok.all():
        raise ValueError(f"{name} must be finite and >= 0, got {w[~ok][:3].tolist()}")
    return w
