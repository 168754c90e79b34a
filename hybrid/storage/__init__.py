"""Folder-backed engines: crash-safe commits, checksums, snapshots (see ``folder.py``) and
their background merge (``merge.py``)."""

from hybrid.storage.folder import EngineLockedError
from hybrid.storage.merge import MergePolicy
from indexes.base import IndexCorruptedError

__all__ = ["EngineLockedError", "IndexCorruptedError", "MergePolicy"]
