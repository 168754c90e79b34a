"""A commit's index input as bytes: the delete rows and each retriever's document encodings.

Encodings are stored as ``.npz`` entries (never pickled): a scipy sparse matrix (SPLADE) as
its CSR arrays, a numeric matrix (dense) as an array, token lists (BM25) as UTF-8 JSON.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np

from indexes._base import IndexCorruptedError


def pack(delete_rows: np.ndarray, encoded: dict[str, Any], names: list[str]) -> bytes:
    """Bytes of one commit's delete rows and the encodings of its appended documents."""
    arrays: dict[str, np.ndarray] = {"delete_rows": np.asarray(delete_rows, dtype=np.int64)}
    for i, name in enumerate(names):
        if name not in encoded:
            continue
        value = encoded[name]
        key = f"r{i}"
        arrays[f"{key}_name"] = np.array(name)
        if hasattr(value, "tocsr"):
            m = value.tocsr()
            arrays[f"{key}_kind"] = np.array("csr")
            arrays[f"{key}_data"] = np.asarray(m.data)
            arrays[f"{key}_indices"] = np.asarray(m.indices)
            arrays[f"{key}_indptr"] = np.asarray(m.indptr)
            arrays[f"{key}_shape"] = np.array(m.shape, dtype=np.int64)
        elif _is_token_lists(value):
            try:
                text = json.dumps([list(t) for t in value], ensure_ascii=False).encode("utf-8")
            except (TypeError, UnicodeEncodeError) as exc:
                raise ValueError(f"retriever {name!r}: its tokens cannot be stored: {exc}") from exc
            arrays[f"{key}_kind"] = np.array("tokens")
            arrays[f"{key}_data"] = np.frombuffer(text, dtype=np.uint8)
        else:
            try:
                arr = np.asarray(value, dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"retriever {name!r}: encodings of type {type(value).__name__} cannot be "
                    "stored (expected a sparse matrix, a numeric array or token lists)"
                ) from exc
            arrays[f"{key}_kind"] = np.array("array")
            arrays[f"{key}_data"] = arr
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def unpack(blob: bytes, where: str) -> tuple[np.ndarray, dict[str, Any]]:
    """``(delete_rows, encoded)`` from :func:`pack`'s bytes; damage raises
    ``IndexCorruptedError`` naming ``where``."""
    import scipy.sparse as sp

    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        encoded: dict[str, Any] = {}
        keys = sorted((k[:-5] for k in arrays if k.endswith("_name")), key=lambda k: int(k[1:]))
        for key in keys:
            name, kind = str(arrays[f"{key}_name"]), str(arrays[f"{key}_kind"])
            if kind == "csr":
                shape = tuple(int(v) for v in arrays[f"{key}_shape"])
                encoded[name] = sp.csr_matrix(
                    (arrays[f"{key}_data"], arrays[f"{key}_indices"], arrays[f"{key}_indptr"]),
                    shape=shape,
                )
            elif kind == "tokens":
                encoded[name] = json.loads(arrays[f"{key}_data"].tobytes().decode("utf-8"))
            elif kind == "array":
                encoded[name] = arrays[f"{key}_data"]
            else:
                raise ValueError(f"unknown encoding kind {kind!r}")
        return arrays["delete_rows"].astype(np.int64), encoded
    except (KeyError, OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise IndexCorruptedError(f"{where}: damaged commit record ({exc})") from exc


def _is_token_lists(value: Any) -> bool:
    if isinstance(value, np.ndarray) or not isinstance(value, (list, tuple)):
        return False
    for row in value:
        if isinstance(row, (list, tuple)):
            if row:
                return isinstance(row[0], str)
        else:
            return False
    return True  # all rows empty
