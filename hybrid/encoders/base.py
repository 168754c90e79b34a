"""Public helpers the encoders share with the rest of :mod:`hybrid` (the engine checks its
input texts the same way the encoders do): re-exported from :mod:`hybrid.encoders._common`."""

from hybrid.encoders._common import auto_device, require, validate_texts

__all__ = ["auto_device", "require", "validate_texts"]
