"""Shared fixtures: locate ../shared/data relative to the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (expected ../shared/data beside the repo)")
    return path


@pytest.fixture(scope="session")
def scifact_encoded() -> Path:
    """Folder of real SPLADE-tiny and MiniLM encodings of SciFact."""
    return shared_path("scifact-encoded")


@pytest.fixture(scope="session")
def scifact_dir() -> Path:
    """BEIR folder of SciFact."""
    return shared_path("scifact")
