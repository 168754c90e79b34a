"""Whole-or-nothing ``.npz`` writes for what the engine keeps beside its indexes (collection
statistics, vector samples, cached candidates)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    """Write ``arrays`` to ``path`` through a temporary file renamed over it, so a reader sees
    the old file or the new one, never a part."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    tmp.replace(path)
    return path
