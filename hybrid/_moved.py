"""Module paths from before ``hybrid/`` was split into subpackages, kept importable.

``import hybrid.retrievers`` (or ``from hybrid.filters import parse``) still works: it gives the
module at its new place (:data:`MOVED`), the same module object, and says where it lives now
with a :class:`DeprecationWarning`. One table instead of a re-export file per old path keeps
the package's folders telling its architecture.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

MOVED: dict[str, str] = {
    "hybrid.config": "hybrid.engine.config",
    "hybrid.documents": "hybrid.engine.documents",
    "hybrid.store": "hybrid.engine.store",
    "hybrid.candidates": "hybrid.engine.candidates",
    "hybrid.results": "hybrid.engine.results",
    "hybrid.retrievers": "hybrid.engine.retrievers",
    "hybrid.rerankers": "hybrid.engine.rerankers",
    "hybrid.presets": "hybrid.engine.presets",
    "hybrid.evidence": "hybrid.engine.evidence",
    "hybrid.filters": "hybrid.engine.filters",
    "hybrid.locks": "hybrid.engine.locks",
    "hybrid.aio": "hybrid.engine.aio",
    "hybrid.analyzers": "hybrid.encoders.analyzers",
    "hybrid.models": "hybrid.encoders.models",
    "hybrid.qdrant_filters": "hybrid.backends.qdrant_filters",
    "hybrid.cli_args": "hybrid.cli.args",
    "hybrid.cli_errors": "hybrid.cli.errors",
    "hybrid.cli_eval": "hybrid.cli.eval_commands",
    "hybrid.evaluation": "hybrid.eval",
    "hybrid.tuning": "hybrid.eval.tuning",
    "hybrid.qdrant": "hybrid.backends.qdrant",
    "hybrid.distributed": "hybrid.backends.distributed",
}
"""Old module path -> the module it is now."""


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old paths of :data:`MOVED` and loads each as its new module."""

    def find_spec(
        self,
        name: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if name not in MOVED:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new}; import it from there",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module was imported under its new name."""


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
        sys.meta_path.append(_MovedModules())
