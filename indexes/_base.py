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


def check_k(k: int, name: str = "k") -> int:
    """Validate a top-k argument: a positive integer; errors name the argument ``name``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name} must be a positive integer, got {reprlib.repr(k)}")
    return int(k)


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
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as exc:
        raise IndexFormatError(f"{meta_file} is not valid JSON: {exc}") from exc
    if meta.get("type") != kind:
        raise IndexFormatError(f"{path} holds a {meta.get('type')!r} index, expected {kind!r}")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > max_version:
        raise IndexFormatError(
            f"{path} has format version {version!r}; this release reads up to {max_version}"
        )
    return meta
