"""The package layout's promises: the public imports, old module paths, ``python -m``."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from hybrid._moved import MOVED

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_imports_work():
    import fusion
    from hybrid import BM25Retriever, DenseRetriever, FusionConfig, HybridRetriever
    from hybrid import SpladeRetriever as Splade
    from hybrid.encoders import SpladeEncoder
    from indexes import BM25Index, DenseIndex, SparseIndex

    assert HybridRetriever.__module__ == "hybrid.engine.core"
    assert {BM25Retriever, DenseRetriever, Splade, FusionConfig, SpladeEncoder}
    assert {BM25Index, DenseIndex, SparseIndex} and callable(fusion.fuse)


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_is_the_new_module_with_a_warning(old):
    new = importlib.import_module(MOVED[old])
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is new
    messages = [str(w.message) for w in caught if w.category is DeprecationWarning]
    assert messages == [f"{old} moved to {MOVED[old]}; import it from there"]


def test_from_an_old_path_import_a_name():
    sys.modules.pop("hybrid.filters", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from hybrid.filters import parse
    from hybrid.engine.filters import parse as new_parse

    assert parse is new_parse


def test_unknown_modules_are_still_missing():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("hybrid.no_such_module")


def test_python_m_hybrid_cli_runs():
    out = subprocess.run(
        [sys.executable, "-m", "hybrid.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert out.stdout.startswith("usage: hybrid")
