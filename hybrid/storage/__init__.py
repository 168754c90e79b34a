"""Folder-backed engines: crash-safe commits, checksums, snapshots (see ``folder.py``)."""

from hybrid.storage.folder import EngineLockedError
from indexes._base import IndexCorruptedError

__all__ = ["EngineLockedError", "IndexCorruptedError"]
