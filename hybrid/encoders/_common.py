"""Helpers shared by the encoders: input validation and device choice."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def validate_texts(texts: str | Iterable[str], what: str = "texts") -> list[str]:
    """A list of non-empty strings; a single string counts as one text.

    Wrong types raise ``TypeError``; an empty batch or a blank text raises ``ValueError``.
    """
    if isinstance(texts, str):
        texts = [texts]
    if texts is None or isinstance(texts, (bytes, bytearray, Mapping)):
        raise TypeError(f"{what} must be a string or a list of strings, got {type(texts).__name__}")
    try:
        out = list(texts)
    except TypeError:
        raise TypeError(
            f"{what} must be a string or a list of strings, got {type(texts).__name__}"
        ) from None
    if not out:
        raise ValueError(f"{what} is empty: pass at least one text")
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"{what}[{i}] is {type(text).__name__}, expected str")
        if not text.strip():
            raise ValueError(f"{what}[{i}] is empty or only whitespace")
    return out


def auto_device(device: str | None = None) -> str:
    """The device to run a torch model on: the one given, else cuda, mps or cpu."""
    if device is not None:
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def require(module: str, extra: str):
    """Import ``module`` or fail with the extra that installs it."""
    from importlib import import_module

    try:
        return import_module(module)
    except ImportError as exc:
        raise ImportError(f"{module} is needed here: pip install 'splade-hybrid[{extra}]'") from exc
