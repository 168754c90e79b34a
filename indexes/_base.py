"""Shared result type, validation and on-disk format helpers for every index."""

from __future__ import annotations

import json
import reprlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

PAD_ID = -1
"""Id used to pad result rows that have fewer than ``k`` hits."""

PAD_SCORE = -np.inf
"""Score used to pad result rows that have fewer than ``k`` hits."""

META_FILE = "meta.json"


class SearchResult(NamedTuple):
    """Top-k hits for a batch of queries, best first.

    ``ids`` is int64 and ``scores`` float32, both of shape ``(n_queries, width)`` with
    ``width = min(k, number of live documents)``: a ``k`` larger than the collection returns
    at most the whole collection (an empty index gives width 0) and allocates nothing for the
    requested size. Rows with fewer than ``width`` hits are padded with ``PAD_ID`` (-1) and
    ``PAD_SCORE`` (-inf).
    """

    ids: np.ndarray
    scores: np.ndarray


class IndexFormatError(ValueError):
    """A folder is not a saved index of the expected type or format version."""


class IndexCorruptedError(IndexFormatError):
    """A saved index is damaged: a file is missing, truncated, fails its checksum or holds
    values out of range. The message names the file."""


def load_array(
    path: Path, dtype: Any, ndim: int = 1, mmap: bool = False, what: str = ""
) -> np.ndarray:
    """``np.load`` of one saved array, checked for dtype and dimensions.

    Any parse error (bad header, truncated data) becomes an :class:`IndexCorruptedError`
    naming the file.
    """
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise IndexCorruptedError(f"{path}: not a readable .npy array ({exc})") from exc
    if arr.dtype != np.dtype(dtype) or arr.ndim != ndim:
        raise IndexCorruptedError(
            f"{path}: expected a {ndim}-d {np.dtype(dtype)} array{what}, got {arr.ndim}-d "
            f"{arr.dtype}"
        )
    return arr


def check_pointers(ptr: np.ndarray, n_items: int, path: Path, name: str) -> None:
    """``ptr`` must start at 0, never decrease and end at ``n_items`` (CSR-style offsets)."""
    if ptr.shape[0] < 1 or ptr[0] != 0 or ptr[-1] != n_items:
        raise IndexCorruptedError(f"{path}: {name} does not span the {n_items} stored entries")
    if ptr.shape[0] > 1 and bool((np.diff(ptr) < 0).any()):
        raise IndexCorruptedError(f"{path}: {name} is not monotone")


def check_range(values: np.ndarray, lo: int, hi: int, path: Path, name: str) -> None:
    """Every value of ``values`` within ``[lo, hi)``."""
    if values.size and (int(values.min()) < lo or int(values.max()) >= hi):
        raise IndexCorruptedError(f"{path}: {name} holds values outside [{lo}, {hi})")


def check_k(k: int, name: str = "k") -> int:
    """Validate a top-k argument: a positive integer; errors name the argument ``name``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name} must be a positive integer, got {reprlib.repr(k)}")
    return int(k)


def check_allowed(allowed: np.ndarray, n_ids: int) -> np.ndarray:
    """Validate an ``allowed`` mask: a 1-d bool or uint8 array with one entry per internal id
    ever assigned (``n_ids``); returns it as bool (uint8 nonzero = allowed)."""
    arr = np.asarray(allowed)
    if arr.ndim != 1 or arr.dtype not in (np.bool_, np.uint8):
        raise TypeError(
            f"allowed must be a 1-d numpy bool or uint8 mask over internal ids, got "
            f"{arr.dtype} with shape {arr.shape}"
        )
    if arr.shape[0] != n_ids:
        raise ValueError(f"allowed has {arr.shape[0]} entries; the index has assigned {n_ids} ids")
    return np.ascontiguousarray(arr if arr.dtype == np.bool_ else arr != 0)


def empty_result(n_queries: int, k: int) -> SearchResult:
    """A result with every row fully padded."""
    return SearchResult(
        np.full((n_queries, k), PAD_ID, dtype=np.int64),
        np.full((n_queries, k), PAD_SCORE, dtype=np.float32),
    )


def write_meta(path: str | Path, kind: str, format_version: int, **params: Any) -> Path:
    """Create ``path`` and write its ``meta.json`` recording the index type and format version."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    meta = {"type": kind, "format_version": format_version, **params}
    (path / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    return path


def read_meta(path: str | Path, kind: str, max_version: int) -> dict[str, Any]:
    """Read ``meta.json`` of a saved index, checking its type and format version."""
    path = Path(path)
    meta_file = path / META_FILE
    if not meta_file.is_file():
        raise IndexFormatError(f"{path} is not a saved index: no {META_FILE} in it")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptedError(f"{meta_file} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise IndexCorruptedError(f"{meta_file} does not hold a JSON object")
    if meta.get("type") != kind:
        raise IndexFormatError(f"{path} holds a {meta.get('type')!r} index, expected {kind!r}")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > max_version:
        raise IndexFormatError(
            f"{path} has format version {version!r}; this release reads up to {max_version}"
        )
    return meta
