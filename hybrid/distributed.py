"""Old import path of :mod:`hybrid.backends.distributed` (kept so existing imports work)."""

from hybrid.backends.distributed import (  # noqa: F401
    DEFAULT_BATCH_SIZE,
    encode_engine_documents,
    encode_with_ray,
    encoder_from_spec,
    index_with_ray,
    plan_batches,
)
