"""An encoder that is built from its saved spec the first time it is used.

Opening a saved engine must not load models it will not use: a BM25-only search, or a command
that stops at an argument error, should cost milliseconds, not the 10-30 s of loading SPLADE
and dense models. Saved retrievers therefore hold a :class:`LazyEncoder`: it answers ``spec``
(so the engine can be saved again untouched) and builds the real encoder, once, on the first
access to anything else (``encode_queries``, ``dim``, ``tokenizer``, ``decode`` ...).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_OWN = frozenset({"_spec", "_build", "_encoder", "_lock"})


class LazyEncoder:
    """Stands in for the encoder ``build(spec)`` returns, building it on first use.

    Thread-safe: retrievers encode in parallel threads, and two of them asking at once still
    build one encoder. ``loaded`` tells whether it has been built; ``load()`` builds it now.
    """

    def __init__(self, spec: dict[str, Any], build: Callable[[dict[str, Any]], Any]) -> None:
        if not isinstance(spec, dict):
            raise ValueError(f"an encoder spec is a dict, got {spec!r}")
        self._spec = dict(spec)
        self._build = build
        self._encoder: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the real encoder has been built."""
        return self._encoder is not None

    @property
    def spec(self) -> dict[str, Any]:
        """The real encoder's spec once built, else the saved one (no model is loaded)."""
        return self._encoder.spec if self._encoder is not None else dict(self._spec)

    def load(self) -> Any:
        """The real encoder, built now if it was not yet."""
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    self._encoder = self._build(dict(self._spec))
        return self._encoder

    def __getattr__(self, name: str) -> Any:
        # only called for names not found on the wrapper itself
        if name in _OWN or (name.startswith("__") and name.endswith("__")):
            raise AttributeError(name)
        return getattr(self.load(), name)

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self._spec, "build": self._build, "encoder": self._encoder}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._spec = state["spec"]
        self._build = state["build"]
        self._encoder = state["encoder"]
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        if self._encoder is not None:
            return repr(self._encoder)
        what = self._spec.get("model") or self._spec.get("variant") or self._spec.get("name")
        return f"LazyEncoder({self._spec.get('type')!r}, {what!r}, not loaded)"
