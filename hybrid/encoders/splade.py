"""SPLADE encoder: text -> scipy CSR rows over the model's vocabulary, never densified."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from hybrid.encoders._common import auto_device, require, validate_texts
from hybrid.encoders.models import require_available, resolve_model
from hybrid.progress import bar as progress_bar

LongDocuments = Literal["truncate", "chunk"]
Backend = Literal["auto", "fast", "sentence-transformers"]
_BYTE_MARKERS = ("##", "▁", "Ġ", "Ċ")
_UNITS = {"documents": "doc", "queries": "query"}


def _byte_to_unicode() -> dict[int, str]:
    """The printable stand-ins byte-level BPE (GPT-2 style) uses for each byte value."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


_UNICODE_TO_BYTE = {c: b for b, c in _byte_to_unicode().items()}


class SpladeEncoder:
    """Learned-sparse encoder wrapping ``sentence_transformers.SparseEncoder``.

    ``encode_documents`` / ``encode_queries`` return float32 CSR matrices (rows = texts, columns
    = vocabulary ids) built batch by batch from the model's sparse output, so memory stays
    bounded by one batch of ``vocab``-wide rows however large the corpus is.

    Sparsity, set separately for documents and queries: ``*_min_weight`` drops weights below it
    (0.01 as in the PIXIE-Splade model card), ``*_max_terms`` keeps only the heaviest terms, and
    the tokenizer's special tokens ([CLS], [SEP], <s>, ...) are always dropped when
    ``drop_special_tokens`` is true.

    Documents longer than the model's maximum sequence length are either truncated by the model
    (``long_documents="truncate"``, the default) or split into windows of whole tokens that are
    encoded separately and max-pooled per vocabulary id (``"chunk"``), which is the pooling SPLADE
    applies inside one window, so a term weighs what it weighs in its strongest window.

    ``backend="auto"`` runs the exact fused forward of :mod:`hybrid.encoders._splade_fast` on CPU
    (about 3x the plain path, same vectors to ~1e-5) and the plain sentence-transformers forward
    on GPU, where the plain path measured faster on an H100 (``benchmarks/gpu_check.py``).
    ``precision="auto"`` casts the model to float16 on CUDA.

    ``show_progress``: ``True`` / ``False`` forces the progress bar on stderr; ``None`` follows
    :mod:`hybrid.progress` (the caller's scope, else a terminal and at least 200 texts).
    """

    def __init__(
        self,
        model_name_or_path: str,
        *,
        device: str | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        doc_min_weight: float = 0.01,
        query_min_weight: float = 0.01,
        doc_max_terms: int | None = None,
        query_max_terms: int | None = None,
        drop_special_tokens: bool = True,
        long_documents: LongDocuments = "truncate",
        chunk_overlap: int = 32,
        precision: Literal["auto", "float32", "float16", "bfloat16"] = "auto",
        show_progress: bool | None = None,
        revision: str | None = None,
        # -- fast encoding (hybrid/encoders/_splade_fast.py) --
        backend: Backend = "auto",
        num_threads: int | None = None,
        # -- end fast encoding --
    ) -> None:
        if long_documents not in ("truncate", "chunk"):
            raise ValueError(
                f"long_documents must be 'truncate' or 'chunk', got {long_documents!r}"
            )
        if backend not in ("auto", "fast", "sentence-transformers"):
            raise ValueError(
                f"backend must be 'auto', 'fast' or 'sentence-transformers', got {backend!r}"
            )
        self.backend: Backend = backend
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for name, value in (("doc_max_terms", doc_max_terms), ("query_max_terms", query_max_terms)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be None or >= 1, got {value}")
        st = require("sentence_transformers", "models")
        require_available([model_name_or_path], revision=revision)  # fail fast, not after retries
        self.name = model_name_or_path
        self.device = auto_device(device)
        self.model = st.SparseEncoder(
            resolve_model(model_name_or_path), device=self.device, revision=revision
        )
        if max_length is not None:
            self.model.max_seq_length = int(max_length)
        self.precision = _apply_precision(self.model, self.device, precision)
        self.batch_size = batch_size
        self.doc_min_weight = float(doc_min_weight)
        self.query_min_weight = float(query_min_weight)
        self.doc_max_terms = doc_max_terms
        self.query_max_terms = query_max_terms
        self.drop_special_tokens = drop_special_tokens
        self.long_documents: LongDocuments = long_documents
        self.chunk_overlap = int(chunk_overlap)
        self.show_progress = show_progress
        self.revision = revision
        self._special_ids = np.array(sorted(self.tokenizer.all_special_ids), dtype=np.int64)
        rust_tokenizer = getattr(self.tokenizer, "backend_tokenizer", None)
        self._byte_level = "ByteLevel" in str(getattr(rust_tokenizer, "decoder", ""))
        self._vocab: list[str] | None = None
        # -- fast encoding: exact fused forward, None when the model is not supported --
        self.num_threads = num_threads
        self._fast = None
        if self.backend == "fast" or (self.backend == "auto" and self.device == "cpu"):
            from hybrid.encoders._splade_fast import FastSplade

            self._fast = FastSplade.from_model(self.model, num_threads=num_threads)
        # -- end fast encoding --

    # -- properties ----------------------------------------------------------------------------

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @property
    def dim(self) -> int:
        """Vocabulary size: the number of columns of every encoded matrix."""
        lm = getattr(self.model, "transformers_model", None)
        size = getattr(getattr(lm, "config", None), "vocab_size", None)
        return int(size if size else self.model.get_embedding_dimension())

    @property
    def max_length(self) -> int:
        return int(self.model.max_seq_length)

    @property
    def vocab(self) -> list[str]:
        """Raw tokenizer strings by column id (unique; used for exports)."""
        if self._vocab is None:
            tokens = self.tokenizer.convert_ids_to_tokens(list(range(self.dim)))
            self._vocab = [t if t is not None else f"[unused{i}]" for i, t in enumerate(tokens)]
        return self._vocab

    @property
    def spec(self) -> dict[str, Any]:
        """JSON-able settings that rebuild this encoder with :func:`splade_encoder_from_spec`."""
        return {
            "type": "splade",
            "model": self.name,
            "revision": self.revision,
            "batch_size": self.batch_size,
            "max_length": self.max_length,
            "doc_min_weight": self.doc_min_weight,
            "query_min_weight": self.query_min_weight,
            "doc_max_terms": self.doc_max_terms,
            "query_max_terms": self.query_max_terms,
            "drop_special_tokens": self.drop_special_tokens,
            "long_documents": self.long_documents,
            "chunk_overlap": self.chunk_overlap,
            "backend": self.backend,
        }

    # -- encoding ------------------------------------------------------------------------------

    def encode_documents(self, texts: str | Sequence[str]) -> sp.csr_matrix:
        """Encode documents with the model's document prompt; one CSR row per text."""
        texts = validate_texts(texts, "documents")
        if self.long_documents == "chunk":
            windows, owner = self._windows(texts)
        else:
            windows, owner = texts, None
        matrix = self._encode(windows, self.model.encode_document, "documents")
        if owner is not None:
            matrix = max_pool_rows(matrix, owner, len(texts))
        return self._sparsify(matrix, self.doc_min_weight, self.doc_max_terms)

    def encode_queries(self, texts: str | Sequence[str]) -> sp.csr_matrix:
        """Encode queries with the model's query prompt; one CSR row per text."""
        texts = validate_texts(texts, "queries")
        matrix = self._encode(texts, self.model.encode_query, "queries")
        return self._sparsify(matrix, self.query_min_weight, self.query_max_terms)

    def decode(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        """Readable token strings for vocabulary ids (``##``, ``▁`` and byte markers removed)."""
        tokens = self.tokenizer.convert_ids_to_tokens([int(i) for i in ids])
        return [self._readable(t) for t in tokens]

    def document_batches(self, texts: Sequence[str]) -> list[np.ndarray] | None:
        """Row indices of the batches :meth:`encode_documents` forms for ``texts``, or None when
        this encoder does not plan them (the sentence-transformers path, split long documents).

        The fast path sorts each window of texts by token length and cuts batches by count and
        token budget; a batch is padded to its longest text, so a vector's last float bits
        depend on its batch neighbours. Encoding these very batches elsewhere (e.g. in Ray
        actors, :mod:`hybrid.backends.distributed`) gives bit-identical vectors.
        """
        if self._fast is None or getattr(self, "long_documents", None) != "truncate":
            return None
        step = max(self.batch_size * 64, 8192)  # the windows of _encode's fast path
        prompt = self._fast._task_prompt("document")
        out: list[np.ndarray] = []
        for lo in range(0, len(texts), step):
            window = list(texts[lo : lo + step])
            _, batches = self._fast._plan(window, "document", prompt, self.batch_size)
            out += [np.sort(b) + lo for b in batches]
        return out

    def _readable(self, token: str | None) -> str:
        if token is None:
            return ""
        if self._byte_level and all(c in _UNICODE_TO_BYTE for c in token):
            # Byte-level BPE (ModernBERT family): a subword may hold part of a Hangul syllable;
            # show the complete characters and the stray bytes as \x escapes, never U+FFFD.
            raw = bytes(_UNICODE_TO_BYTE[c] for c in token)
            return raw.decode("utf-8", errors="backslashreplace").strip() or token
        try:
            text = self.tokenizer.convert_tokens_to_string([token])
        except Exception:  # some tokenizers cannot render a lone subword
            text = token
        text = text.strip()
        for marker in _BYTE_MARKERS:
            if text.startswith(marker):
                text = text[len(marker) :]
        return text or token

    def _encode(self, texts: list[str], encode_fn, what: str) -> sp.csr_matrix:
        import torch

        step = max(self.batch_size * 8, 256)
        # -- fast encoding: the fused exact path for encode_document / encode_query --
        fast_task = None
        if self._fast is not None:
            if encode_fn == self.model.encode_document:
                fast_task = "document"
            elif encode_fn == self.model.encode_query:
                fast_task = "query"
        if fast_task is not None:
            step = max(self.batch_size * 64, 8192)  # length-sorted within each step
        # -- end fast encoding --
        blocks = []
        with (
            torch.inference_mode(),
            progress_bar(
                len(texts), f"SPLADE {what}", self.show_progress, _UNITS.get(what, "text")
            ) as bar,
        ):
            for start in range(0, len(texts), step):
                batch = texts[start : start + step]
                # -- fast encoding --
                if fast_task is not None:
                    blocks.append(
                        self._fast.encode(
                            batch, fast_task, batch_size=self.batch_size, on_batch=bar.update
                        )
                    )
                    continue
                # -- end fast encoding --
                out = encode_fn(
                    batch,
                    batch_size=self.batch_size,
                    convert_to_sparse_tensor=True,
                    show_progress_bar=False,
                )
                blocks.append(sparse_tensor_to_csr(out, self.dim))
                bar.update(len(batch))
        return sp.vstack(blocks, format="csr") if len(blocks) > 1 else blocks[0]

    def _windows(self, texts: list[str]) -> tuple[list[str], np.ndarray]:
        """Split each text into character spans of at most one model window of tokens."""
        tok = self.tokenizer
        budget = self.max_length - tok.num_special_tokens_to_add(pair=False)
        prompt = (self.model.prompts or {}).get("document")
        if prompt:
            budget -= len(tok(prompt, add_special_tokens=False)["input_ids"])
        if budget < 8:
            raise ValueError(f"max_length {self.max_length} leaves no room for document tokens")
        overlap = min(self.chunk_overlap, budget // 2)
        windows: list[str] = []
        owner: list[int] = []
        enc = tok(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        for i, (text, offsets) in enumerate(zip(texts, enc["offset_mapping"], strict=True)):
            if len(offsets) <= budget:
                windows.append(text)
                owner.append(i)
                continue
            for start in range(0, len(offsets), budget - overlap):
                end = min(start + budget, len(offsets))
                windows.append(text[offsets[start][0] : offsets[end - 1][1]])
                owner.append(i)
                if end == len(offsets):
                    break
        return windows, np.asarray(owner, dtype=np.int64)

    def _sparsify(
        self, matrix: sp.csr_matrix, min_weight: float, max_terms: int | None
    ) -> sp.csr_matrix:
        data = matrix.data
        drop = data < min_weight if min_weight > 0 else data <= 0
        if self.drop_special_tokens and self._special_ids.size:
            drop |= np.isin(matrix.indices, self._special_ids)
        if drop.any():
            matrix.data[drop] = 0
            matrix.eliminate_zeros()
        if max_terms is not None:
            matrix = keep_top_terms(matrix, max_terms)
        matrix.sort_indices()
        return matrix


def _apply_precision(model: Any, device: str, precision: str) -> str:
    import torch

    choices = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if precision == "auto":
        precision = "float16" if device.startswith("cuda") else "float32"
    if precision not in choices:
        raise ValueError(f"precision must be one of auto, {', '.join(choices)}; got {precision!r}")
    if precision != "float32":
        model.to(choices[precision])
    return precision


def sparse_tensor_to_csr(tensor: Any, dim: int) -> sp.csr_matrix:
    """A torch sparse (or dense) 2-D tensor -> float32 CSR, without densifying sparse input."""
    if tensor.is_sparse:
        tensor = tensor.coalesce()
        rows, cols = tensor.indices().cpu().numpy()
        values = tensor.values().float().cpu().numpy()
        shape = (int(tensor.shape[0]), dim)
        return sp.csr_matrix((values.astype(np.float32), (rows, cols)), shape=shape)
    return sp.csr_matrix(tensor.float().cpu().numpy().astype(np.float32))


def max_pool_rows(matrix: sp.csr_matrix, owner: np.ndarray, n_rows: int) -> sp.csr_matrix:
    """Combine rows sharing an owner by taking, per column, the maximum weight."""
    coo = matrix.tocoo()
    rows = owner[coo.row]
    order = np.lexsort((coo.col, rows))
    rows, cols, data = rows[order], coo.col[order], coo.data[order]
    if data.size == 0:
        return sp.csr_matrix((n_rows, matrix.shape[1]), dtype=np.float32)
    starts = np.flatnonzero(np.r_[True, (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])])
    pooled = np.maximum.reduceat(data, starts)
    return sp.csr_matrix(
        (pooled.astype(np.float32), (rows[starts], cols[starts])), shape=(n_rows, matrix.shape[1])
    )


def keep_top_terms(matrix: sp.csr_matrix, max_terms: int) -> sp.csr_matrix:
    """Keep the ``max_terms`` heaviest entries of each row (ties: lower column id kept)."""
    matrix = matrix.tocsr()
    row_of = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    order = np.lexsort((matrix.indices, -matrix.data, row_of))
    rank = np.arange(order.size) - matrix.indptr[row_of[order]]
    keep = order[rank < max_terms]
    return sp.csr_matrix(
        (matrix.data[keep], (row_of[keep], matrix.indices[keep])), shape=matrix.shape
    )


def splade_encoder_from_spec(spec: dict[str, Any], **overrides: Any) -> SpladeEncoder:
    """Rebuild a :class:`SpladeEncoder` from its :attr:`~SpladeEncoder.spec`."""
    settings = {k: v for k, v in spec.items() if k not in ("type", "model")}
    settings.update(overrides)
    return SpladeEncoder(spec["model"], **settings)
