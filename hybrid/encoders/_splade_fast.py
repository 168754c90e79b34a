"""Exact fast forward for SPLADE max-pooling models: the vocabulary logits are never materialised.

``SparseEncoder`` computes SPLADE vectors as ``max_t log1p(relu(logits[t] * mask[t]))`` over a
``(batch x sequence x vocabulary)`` logits tensor: for a small model that tensor (2 GB for 32
texts of 512 tokens over 30,522 ids) and the element-wise passes over it cost more than the
transformer itself. This module computes the same vectors as follows:

1. texts are tokenised by the model's own ``preprocess`` (same prompt, truncation and special
   tokens as ``encode_document`` / ``encode_query``), in batches of similar token length;
2. the transformer body (the masked-LM without its vocabulary projection) runs once per batch;
3. padding positions are dropped, the MLM head's transform (dense + activation + layer norm) is
   applied to the real tokens only;
4. the vocabulary projection runs tile by tile (a group of token rows x a slice of the
   vocabulary), and each tile is reduced at once to the per-text maximum logit;
5. ``relu`` and ``log1p`` are applied to the ``(batch x vocabulary)`` maxima only.

Because ``log1p(relu(x))`` is monotone non-decreasing, ``max_t log1p(relu(x_t)) ==
log1p(relu(max_t x_t))`` bit for bit on equal logits, and a padding position (masked to 0 by
SpladePooling, i.e. weight 0) can never raise the maximum above ``log1p(relu(.))``'s floor of 0.
The only differences from the plain path are float rounding in the matrix products (different
blocking), typically below 1e-6.

Supported heads: BERT, DistilBERT, RoBERTa / XLM-R and ModernBERT masked-LMs followed by
``SpladePooling(pooling_strategy="max")``. :meth:`FastSplade.from_model` returns ``None`` for
anything else (other pooling, extra modules, query expansion, unknown architectures), and checks
a supported model once against its own full forward before it is used, so callers fall back to
``SparseEncoder`` whenever this path could differ.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

Task = Literal["query", "document"]
_PROBE_TEXTS = ("fast splade probe: satellite imagery, 위성 영상", "a second, shorter probe")
_PROBE_ATOL = 1e-4
_ESTIMATE_MIN_TEXTS = 5000  # log a time estimate when encoding at least this many texts


@dataclass
class _Head:
    """The pieces of a masked-LM: body -> transform -> vocabulary projection (weight, bias)."""

    body: Any
    transform: Callable[[Any], Any]
    decoder: Any  # torch.nn.Linear(hidden, vocab)
    body_params: frozenset[str]


def _split_mlm(lm: Any) -> _Head | None:
    """Find body, head transform and decoder of a known masked-LM class, else None."""
    import torch.nn.functional as F

    name = type(lm).__name__
    if name == "BertForMaskedLM":
        body, pred = lm.bert, lm.cls.predictions
        transform, decoder = pred.transform, pred.decoder
    elif name == "ModernBertForMaskedLM":
        if getattr(lm, "sparse_prediction", False):
            return None
        body, transform, decoder = lm.model, lm.head, lm.decoder
    elif name in ("RobertaForMaskedLM", "XLMRobertaForMaskedLM", "CamembertForMaskedLM"):
        body, head = lm.roberta, lm.lm_head

        def transform(x, head=head):
            return head.layer_norm(F.gelu(head.dense(x)))

        decoder = head.decoder
    elif name == "DistilBertForMaskedLM":
        body = lm.distilbert

        def transform(x, lm=lm):
            return lm.vocab_layer_norm(lm.activation(lm.vocab_transform(x)))

        decoder = lm.vocab_projector
    else:
        return None
    if getattr(decoder, "weight", None) is None or decoder.weight.ndim != 2:
        return None
    params = frozenset(inspect.signature(body.forward).parameters)
    return _Head(body=body, transform=transform, decoder=decoder, body_params=params)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Set torch's intra-op thread count for the block only, then restore it."""
    import torch

    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class FastSplade:
    """Exact, fused SPLADE forward over a loaded ``SparseEncoder`` (see the module docstring).

    Args:
        model: the ``sentence_transformers.SparseEncoder`` (its modules are used, not copied).
        head: from :func:`_split_mlm`.
        max_tokens: token budget of one transformer batch (padded length x texts); ``None``
            picks one from the device (free memory on CUDA, 16,384 on CPU).
        tile_rows: token rows per vocabulary-projection tile (several short texts share one).
        vocab_chunk: vocabulary ids per tile.
        autocast: ``"float16"`` / ``"bfloat16"`` to run the whole forward under
            ``torch.autocast`` on CUDA (approximate); ``None`` runs in the model's own dtype.
        projection_dtype: ``"float16"`` / ``"bfloat16"`` to run only the vocabulary projection
            (the dominant cost) in that dtype, on any device (approximate); ``None`` = exact.
        num_threads: torch intra-op threads during a call (restored after); ``None`` leaves it.
    """

    def __init__(
        self,
        model: Any,
        head: _Head,
        *,
        max_tokens: int | None = None,
        tile_rows: int = 512,
        vocab_chunk: int = 16384,
        autocast: str | None = None,
        projection_dtype: str | None = None,
        num_threads: int | None = None,
    ) -> None:
        for name, value in (("autocast", autocast), ("projection_dtype", projection_dtype)):
            if value not in (None, "float16", "bfloat16"):
                raise ValueError(f"{name} must be None, 'float16' or 'bfloat16', got {value!r}")
        self.model = model
        self.head = head
        self.pooling = model[1]
        self.tile_rows = int(tile_rows)
        self.vocab_chunk = int(vocab_chunk)
        self.autocast = autocast
        self.projection_dtype = projection_dtype
        self._projection: tuple[Any, Any] | None = None  # (weight, bias) cast once
        self.num_threads = num_threads
        self._max_tokens = max_tokens

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_model(cls, model: Any, *, verify: bool = True, **options: Any) -> FastSplade | None:
        """A fast forward for ``model``, or ``None`` when it is not a supported SPLADE model."""
        reason = unsupported_reason(model)
        if reason is not None:
            logger.info("fast SPLADE path not used: %s", reason)
            return None
        head = _split_mlm(model.transformers_model)
        if head is None:
            logger.info(
                "fast SPLADE path not used: unknown masked-LM %s",
                type(model.transformers_model).__name__,
            )
            return None
        fast = cls(model, head, **options)
        if verify and not fast.matches_plain():
            logger.warning(
                "fast SPLADE path disagrees with SparseEncoder on a probe for %s; using the "
                "plain path",
                type(model.transformers_model).__name__,
            )
            return None
        return fast

    def matches_plain(self, texts: Sequence[str] = _PROBE_TEXTS, atol: float = _PROBE_ATOL) -> bool:
        """Whether this path reproduces ``encode_document`` on ``texts`` within ``atol``."""
        import torch

        with torch.inference_mode():
            ref = self.model.encode_document(
                list(texts), convert_to_sparse_tensor=False, show_progress_bar=False
            )
        got = self.encode(list(texts), "document")
        ref = ref.float().cpu().numpy()
        return got.shape == ref.shape and float(np.abs(got.toarray() - ref).max()) <= atol

    # -- sizing ------------------------------------------------------------------------------

    @property
    def device(self) -> Any:
        return self.head.decoder.weight.device

    @property
    def max_tokens(self) -> int:
        """Token budget of one batch (padded tokens, all texts of the batch together)."""
        if self._max_tokens is None:
            self._max_tokens = auto_max_tokens(self.model, self.device)
        return self._max_tokens

    # -- encoding ----------------------------------------------------------------------------

    def encode(
        self,
        texts: Sequence[str],
        task: Task,
        *,
        batch_size: int = 32,
        prompt: str | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> sp.csr_matrix:
        """SPLADE vectors of ``texts`` as float32 CSR (rows in input order, zeros dropped).

        ``prompt`` None uses the model's prompt for ``task`` as ``encode_query`` /
        ``encode_document`` do. ``batch_size`` caps texts per batch (the token budget
        :attr:`max_tokens` caps them too); ``on_batch(n)`` is called after each batch of n texts.
        """
        import torch

        texts = list(texts)
        if prompt is None:
            prompt = self._task_prompt(task)
        order, batches = self._plan(texts, task, prompt, batch_size)
        rows: list[sp.csr_matrix] = []
        started, done, estimated = time.perf_counter(), 0, len(texts) < _ESTIMATE_MIN_TEXTS
        with torch_threads(self.num_threads), torch.inference_mode():
            for idx in batches:
                batch = [texts[i] for i in idx]
                pooled = self._forward(batch, task, prompt)
                rows.append(_dense_to_csr(pooled))
                done += len(batch)
                if on_batch is not None:
                    on_batch(len(batch))
                if not estimated and time.perf_counter() - started > 5.0:
                    estimated = True
                    rate = done / (time.perf_counter() - started)
                    logger.info(
                        "SPLADE %s: %d texts at %.1f texts/s so far on %s (longest texts "
                        "first, so this is an upper bound): about %.0f more minutes",
                        task,
                        len(texts),
                        rate,
                        self.device,
                        (len(texts) - done) / rate / 60,
                    )
        stacked = sp.vstack(rows, format="csr") if len(rows) > 1 else rows[0]
        inverse = np.empty_like(order)
        inverse[order] = np.arange(order.size)
        out = stacked[inverse]
        out.sort_indices()
        return out

    def _task_prompt(self, task: Task) -> str | None:
        prompts = getattr(self.model, "prompts", None) or {}
        names = ("query",) if task == "query" else ("document", "passage", "corpus")
        for name in names:
            if name in prompts:
                return prompts[name] or None
        default = getattr(self.model, "default_prompt_name", None)
        return prompts.get(default) if default else None

    def _plan(
        self, texts: list[str], task: Task, prompt: str | None, batch_size: int
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Sort texts by token length (longest first) and cut batches by count and token budget."""
        tok = self.model.tokenizer
        limit = self.model.max_seq_length
        enc = tok(
            texts,
            add_special_tokens=True,
            truncation=limit is not None,
            max_length=limit,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )
        lengths = np.fromiter((len(ids) for ids in enc["input_ids"]), dtype=np.int64)
        if prompt:
            lengths = lengths + len(tok(prompt, add_special_tokens=False)["input_ids"])
            if limit is not None:
                lengths = np.minimum(lengths, limit)
        order = np.argsort(-lengths, kind="stable")
        budget = max(self.max_tokens, int(lengths.max()) if lengths.size else 1)
        batches: list[np.ndarray] = []
        start = 0
        while start < order.size:
            longest = int(lengths[order[start]])  # sorted: the first text is the longest
            size = max(1, min(batch_size, budget // max(longest, 1)))
            batches.append(order[start : start + size])
            start += size
        return order, batches

    def _forward(self, batch: list[str], task: Task, prompt: str | None) -> Any:
        """(len(batch) x vocab) float32 SPLADE weights of one batch, on the CPU."""
        import torch

        kwargs: dict[str, Any] = {"task": task}
        features = self.model.preprocess(batch, prompt=prompt, **kwargs)
        device = self.device
        inputs = {
            k: v.to(device)
            for k, v in features.items()
            if k in ("input_ids", "attention_mask", "token_type_ids", "position_ids")
            and (k in self.head.body_params or k in ("input_ids", "attention_mask"))
            and isinstance(v, torch.Tensor)
        }
        mask = inputs["attention_mask"].bool()
        ctx: Any = contextlib.nullcontext()
        if self.autocast and device.type == "cuda":
            dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}[self.autocast]
            ctx = torch.autocast("cuda", dtype=dtype)
        with ctx:
            hidden = self.head.body(**inputs)[0]
            tokens = self.head.transform(hidden[mask])  # (real tokens, hidden)
            maxima = self._segment_max_logits(tokens, mask.sum(1))
        act = self.pooling.activation_function
        weights = maxima.float().relu_().log1p_()
        if act == "log1p_relu":
            weights = weights.log1p_()
        max_active = getattr(self.model, "max_active_dims", None)
        if max_active is not None:
            from sentence_transformers.util import select_max_active_dims

            weights = select_max_active_dims(weights, max_active_dims=max_active)
        return weights.cpu()

    def _projection_params(self) -> tuple[Any, Any]:
        """The decoder's weight and bias, cast once to ``projection_dtype`` when it is set."""
        import torch

        weight, bias = self.head.decoder.weight, self.head.decoder.bias
        if self.projection_dtype is None:
            return weight, bias
        dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}[self.projection_dtype]
        if self._projection is None or self._projection[0].dtype != dtype:
            cast_bias = None if bias is None else bias.detach().to(dtype)
            self._projection = (weight.detach().to(dtype), cast_bias)
        return self._projection

    def _segment_max_logits(self, tokens: Any, lengths: Any) -> Any:
        """Per text, the maximum over its tokens of ``tokens @ W.T + b``, tile by tile."""
        import torch

        weight, bias = self._projection_params()
        if weight.dtype != tokens.dtype:
            tokens = tokens.to(weight.dtype)
        n_texts = int(lengths.numel())
        vocab = int(weight.shape[0])
        dtype = tokens.dtype if tokens.dtype == weight.dtype else torch.result_type(tokens, weight)
        out = torch.empty((n_texts, vocab), dtype=dtype, device=tokens.device)
        bounds = [0, *torch.cumsum(lengths, 0).tolist()]
        groups = _row_groups(bounds, self.tile_rows)
        for first, last in groups:  # texts [first, last) share one tile of token rows
            r0, r1 = bounds[first], bounds[last]
            for c0 in range(0, vocab, self.vocab_chunk):
                c1 = min(c0 + self.vocab_chunk, vocab)
                w = weight[c0:c1]
                b = None if bias is None else bias[c0:c1, None]
                # (vocab slice x token rows): the max runs along contiguous memory, and the
                # reduction parallelises over vocabulary ids
                if last - first == 1:  # one text, possibly longer than a tile: running max
                    best = None
                    for s0 in range(r0, r1, self.tile_rows):
                        rows = tokens[s0 : min(s0 + self.tile_rows, r1)]
                        part = _project_t(w, rows, b).amax(1)
                        best = part if best is None else torch.maximum(best, part)
                    out[first, c0:c1] = best
                    continue
                logits_t = _project_t(w, tokens[r0:r1], b)
                for i in range(first, last):
                    out[i, c0:c1] = logits_t[:, bounds[i] - r0 : bounds[i + 1] - r0].amax(1)
        return out


def _project_t(w: Any, rows: Any, bias_col: Any) -> Any:
    """``(w @ rows.T) + bias`` as a (vocabulary slice x token rows) tile."""
    import torch

    return w @ rows.t() if bias_col is None else torch.addmm(bias_col, w, rows.t())


def _row_groups(bounds: list[int], tile_rows: int) -> list[tuple[int, int]]:
    """Consecutive texts packed into tiles of about ``tile_rows`` token rows (a long text alone)."""
    groups: list[tuple[int, int]] = []
    first = 0
    n = len(bounds) - 1
    while first < n:
        last = first + 1
        while last < n and bounds[last + 1] - bounds[first] <= tile_rows:
            last += 1
        groups.append((first, last))
        first = last
    return groups


def _dense_to_csr(weights: Any) -> sp.csr_matrix:
    """(n x vocab) float tensor on the CPU -> float32 CSR of its non-zeros."""
    return sp.csr_matrix(weights.numpy().astype(np.float32, copy=False))


def unsupported_reason(model: Any) -> str | None:
    """Why ``model`` cannot take the fast path, or None when it can."""
    try:
        from sentence_transformers.base.modules import Transformer
        from sentence_transformers.sparse_encoder.modules import SpladePooling
    except ImportError:  # pragma: no cover - very old sentence-transformers
        return "sentence-transformers without base.modules.Transformer"
    modules = list(model) if hasattr(model, "__iter__") else []
    if len(modules) != 2:
        return f"expected Transformer + SpladePooling, got {len(modules)} modules"
    first, pooling = modules
    if not isinstance(first, Transformer) or not isinstance(pooling, SpladePooling):
        return f"modules are {type(first).__name__}, {type(pooling).__name__}"
    if getattr(first, "transformer_task", "fill-mask") != "fill-mask":
        return f"transformer task {first.transformer_task!r}"
    if getattr(first, "backend", "torch") != "torch":
        return f"backend {first.backend!r}"
    if getattr(first, "query_expansion", None) is not None:
        return "query expansion is configured"
    if getattr(first, "can_flatten_inputs", False):
        return "inputs are flattened for flash attention (already unpadded)"
    if pooling.pooling_strategy != "max":
        return f"pooling strategy {pooling.pooling_strategy!r}"
    if pooling.activation_function not in ("relu", "log1p_relu"):
        return f"activation {pooling.activation_function!r}"
    if getattr(first, "query_length", None) or getattr(first, "document_length", None):
        return "per-task query/document lengths"
    return None


def auto_max_tokens(model: Any, device: Any) -> int:
    """A token budget per batch: 16,384 on CPU; on CUDA a share of the free memory."""
    import torch

    if getattr(device, "type", str(device)) != "cuda":
        return 16384
    free, _ = torch.cuda.mem_get_info(device)
    config = model.transformers_model.config
    hidden = int(getattr(config, "hidden_size", 768))
    inter = int(getattr(config, "intermediate_size", 4 * hidden))
    heads = int(getattr(config, "num_attention_heads", 12))
    limit = int(model.max_seq_length or 512)
    # activations alive at once per token: a few hidden-wide tensors, the MLP, and attention
    # scores (eager attention keeps heads x length per token); bytes at float32.
    per_token = 4 * (8 * hidden + 2 * inter + heads * min(limit, 1024))
    budget = int(0.25 * free / per_token)
    return int(min(max(budget, 2048), 1 << 20))
