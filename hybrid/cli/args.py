"""Checks the ``hybrid`` command runs before it loads any model, and its summary formatting.

Everything here is cheap (no model, no index is loaded): argument types for argparse, the
retriever weights of ``hybrid search`` checked against the saved index's ``meta.json``, and what
an existing ``--out`` folder holds.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import fusion as fusion_lib

FUSION_METHODS = tuple(fusion_lib.METHODS)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def weight_pair(text: str) -> tuple[str, float]:
    """argparse type: ``NAME=VALUE`` with a finite, non-negative number."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. bm25=0.5), got {text!r}")
    try:
        weight = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"weight {value!r} of {name!r} is not a number") from None
    if not math.isfinite(weight) or weight < 0:
        raise argparse.ArgumentTypeError(f"weight of {name!r} must be finite and >= 0, got {value}")
    return name, weight


def model_pair(text: str) -> tuple[str, str]:
    """argparse type: ``ROLE=NAME_OR_PATH`` for ``--model``."""
    from hybrid.engine.presets import ROLES

    role, sep, model = text.partition("=")
    if not sep or role not in ROLES or not model:
        roles = ", ".join(ROLES)
        raise argparse.ArgumentTypeError(
            f"expected ROLE=MODEL with ROLE one of {roles} and MODEL a local folder or hub "
            f"name, got {text!r}"
        )
    return role, model


def search_weights(
    pairs: Sequence[tuple[str, float]] | None, only: str | None, saved: Sequence[str]
) -> dict[str, float] | None:
    """The weights of ``--weight`` and ``--retrievers``, checked against the saved retrievers.

    ``--retrievers a,b`` gives every other retriever the weight 0 (so its model never loads).
    """
    weights = dict(pairs or [])
    names = ", ".join(saved)
    for name in weights:
        if name not in saved:
            raise ValueError(f"--weight names {name!r}, but this index has the retrievers {names}")
    if only is not None:
        chosen = [n.strip() for n in only.split(",") if n.strip()]
        unknown = [n for n in chosen if n not in saved]
        if unknown or not chosen:
            raise ValueError(f"--retrievers {only!r}: choose among the index's retrievers {names}")
        for name in saved:
            if name not in chosen:
                weights[name] = 0.0
    if weights and all(weights.get(n, 1.0) == 0 for n in saved):
        raise ValueError("every retriever weight is 0: nothing to search")
    return weights or None


@dataclass(frozen=True)
class SavedIndex:
    """What an existing index folder holds, read from its metadata (no index is loaded)."""

    path: Path
    documents: int | None
    retrievers: list[str]
    preset: str | None

    def describe(self) -> str:
        docs = "? documents" if self.documents is None else f"{self.documents:,} documents"
        preset = f", preset {self.preset!r}" if self.preset else ""
        return f"{docs}; retrievers {', '.join(self.retrievers)}{preset}"


def saved_index(path: str | Path) -> SavedIndex:
    """Read a saved engine's settings: its retrievers, preset and live document count (from
    the format-2 manifest, or a format-1 ``meta.json``; no index or model is loaded).

    Raises :class:`~indexes.IndexFormatError` (a ``ValueError``) when ``path`` is not one.
    """
    from hybrid.storage import engine_io
    from indexes.base import IndexFormatError

    path = Path(path)
    kind = engine_io.kind_of(path)
    if kind == "v2":
        from hybrid.storage.folder import EngineFolder

        folder = EngineFolder.open(path, readonly=True)
        try:
            meta = dict(folder.manifest)
        finally:
            folder.close()
        return SavedIndex(
            path, meta.get("n_live"), list(meta.get("retrievers", [])), meta.get("preset")
        )
    if kind != "v1":
        raise IndexFormatError(f"{path} is not a saved index")
    from hybrid.engine import KIND as _KIND
    from indexes.base import read_meta

    meta = read_meta(path, _KIND, 1)
    documents = None
    store = path / "documents.jsonl"
    if store.is_file():
        with store.open("rb") as f:
            documents = sum(1 for line in f if line.strip())
    return SavedIndex(path, documents, list(meta.get("retrievers", [])), meta.get("preset"))


def check_out_dir(out: str | Path, overwrite: bool) -> SavedIndex | None:
    """The index ``hybrid index --out`` would replace (None for a new or empty folder).

    An existing index needs ``--overwrite``; a non-empty folder that is not an index is never
    replaced.
    """
    out = Path(out)
    if not out.exists():
        return None
    if not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if not any(out.iterdir()):
        return None
    try:
        existing = saved_index(out)
    except ValueError:
        raise ValueError(
            f"--out {out} is a non-empty folder that is not a saved index: choose another folder"
        ) from None
    if not overwrite:
        raise ValueError(
            f"--out {out} already holds an index ({existing.describe()}): pass --overwrite "
            "to replace it"
        )
    return existing


def folder_bytes(path: str | Path) -> int:
    """Total size of the files under ``path``."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def human_bytes(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def human_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
