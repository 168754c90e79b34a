"""The documents an engine holds: external ids, texts and metadata, by internal id."""

from __future__ import annotations

import json
import math
import reprlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

DocId = str | int


def _check_id_types(ids: Sequence[Any], name: str) -> None:
    """``TypeError`` naming the first item of ``ids`` that is not a str or int id."""
    for i, doc_id in enumerate(ids):
        if not _is_doc_id(doc_id):
            raise TypeError(
                f"{name}[{i}] is {type(doc_id).__name__} {reprlib.repr(doc_id)}; "
                "ids must be str or int"
            )


def _is_doc_id(value: object) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def check_storable(value: Any, where: str) -> None:
    """Raise ``ValueError`` unless ``value`` is plain JSON (dict with str keys, list, str, int,
    finite float, bool, None) whose strings are valid UTF-8 (no lone surrogates), so that it
    is stored and read back exactly. ``where`` names the value in the message."""
    if value is None or isinstance(value, bool):
        return
    kind = type(value)
    if kind is str:
        _check_text(value, where)
    elif kind is int:
        return
    elif kind is float:
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value!r}; metadata numbers must be finite")
    elif kind is list:
        for i, item in enumerate(value):
            check_storable(item, f"{where}[{i}]")
    elif kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise ValueError(
                    f"{where} has the key {key!r} ({type(key).__name__}); metadata keys must be str"
                )
            _check_text(key, f"{where} key {key!r}")
            check_storable(item, f"{where}[{key!r}]")
    else:
        raise ValueError(
            f"{where} is a {kind.__name__} ({value!r:.60}); metadata must be JSON: dict with str "
            "keys, list, str, int, float, bool or None (convert dates to str, sets to lists)"
        )


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{where} holds a lone surrogate ({text[exc.start]!r} at {exc.start}) and cannot be "
            "stored as UTF-8"
        ) from None


class DocumentStore:
    """Append-only rows of (id, text, metadata); deleted rows keep their slot as tombstones.

    Row numbers are the internal ids every index assigns, so they are never reused.
    """

    def __init__(self) -> None:
        self.ids: list[DocId] = []
        self.texts: list[str] = []
        self.metadata: list[dict[str, Any]] = []
        self.live: list[bool] = []
        self._row: dict[DocId, int] = {}

    def __len__(self) -> int:
        return len(self._row)

    @property
    def n_rows(self) -> int:
        return len(self.ids)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._row

    def check_new(
        self,
        texts: Sequence[str],
        ids: Sequence[DocId] | None,
        metadata: Sequence[Mapping[str, Any] | None] | None,
        replacing: bool = False,
    ) -> tuple[list[DocId], list[dict[str, Any]]]:
        """Validate a batch before anything is encoded; returns its ids and metadata.

        ``replacing`` (an upsert) lets ids that are already in the store through."""
        n = len(texts)
        if ids is None:
            ids = [str(self.n_rows + i) for i in range(n)]
            clash = [i for i in ids if i in self._row]
            if clash:
                raise ValueError(
                    f"automatic id {clash[0]!r} is already taken by a document; pass ids="
                )
        else:
            if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
                raise TypeError("ids must be a list of str or int, one per document")
            ids = list(ids)
            if len(ids) != n:
                raise ValueError(f"got {n} documents but {len(ids)} ids")
            _check_id_types(ids, "ids")
            seen: set[DocId] = set()
            for i, doc_id in enumerate(ids):
                if isinstance(doc_id, str):
                    _check_text(doc_id, f"ids[{i}]")
                elif not -(2**63) <= doc_id < 2**63:
                    raise ValueError(f"ids[{i}] = {doc_id} does not fit in 64 bits")
                if doc_id in seen:
                    raise ValueError(f"duplicate id {doc_id!r} in this batch")
                if doc_id in self._row and not replacing:
                    raise ValueError(f"id {doc_id!r} is already in the index")
                seen.add(doc_id)
        if metadata is None:
            meta = [{} for _ in range(n)]
        else:
            if isinstance(metadata, (str, bytes, Mapping)) or not isinstance(metadata, Sequence):
                raise TypeError(
                    "metadata must be a list with one dict (or None) per document, got "
                    f"{type(metadata).__name__} {reprlib.repr(metadata)}"
                )
            meta = list(metadata)
            if len(meta) != n:
                raise ValueError(f"got {n} documents but {len(meta)} metadata entries")
            for i, m in enumerate(meta):
                if m is not None and not isinstance(m, Mapping):
                    raise TypeError(
                        f"metadata[{i}] must be a dict or None, got {type(m).__name__} "
                        f"{reprlib.repr(m)}"
                    )
            meta = [dict(m) if m else {} for m in meta]
        for doc_id, text, m in zip(ids, texts, meta, strict=True):
            _check_text(text, f"the text of document {doc_id!r}")
            check_storable(m, f"metadata of document {doc_id!r}")
        return ids, meta

    def set_metadata(self, updates: Mapping[int, dict[str, Any]]) -> None:
        """Replace the metadata of live rows (row -> new metadata dict)."""
        for row, meta in updates.items():
            self.metadata[row] = meta

    def append(self, texts: Sequence[str], ids: list[DocId], meta: list[dict[str, Any]]) -> None:
        for doc_id, text, m in zip(ids, texts, meta, strict=True):
            self._row[doc_id] = len(self.ids)
            self.ids.append(doc_id)
            self.texts.append(text)
            self.metadata.append(m)
            self.live.append(True)

    @staticmethod
    def check_ids(ids: object, name: str = "ids") -> list[DocId]:
        """External ids as a list: one id (str or int) or a list of them, each at most once.

        ``TypeError`` for anything else (bytes, floats, bools, None), naming the position;
        ``ValueError`` for an id given twice, naming it.
        """
        if _is_doc_id(ids):
            return [ids]  # type: ignore[list-item]
        if (
            ids is None
            or isinstance(ids, (bytes, bytearray, Mapping))
            or not isinstance(ids, Iterable)
        ):
            raise TypeError(
                f"{name} must be an id (str or int) or a list of them, got "
                f"{type(ids).__name__} {reprlib.repr(ids)}"
            )
        try:
            out = list(ids)
        except TypeError:  # e.g. a 0-d numpy array
            raise TypeError(
                f"{name} must be an id (str or int) or a list of them, got {reprlib.repr(ids)}"
            ) from None
        _check_id_types(out, name)
        seen: set[DocId] = set()
        for doc_id in out:
            if doc_id in seen:
                raise ValueError(f"{name} holds id {doc_id!r} more than once; give each id once")
            seen.add(doc_id)
        return out

    def rows_of(self, ids: Iterable[DocId]) -> np.ndarray:
        """Internal ids of external ids; unknown ids raise ``KeyError`` naming them."""
        ids = list(ids)
        missing = [i for i in ids if i not in self._row]
        if missing:
            raise KeyError(
                f"unknown document ids: {reprlib.repr(missing)} ({len(missing)} of {len(ids)}); "
                "nothing was deleted"
            )
        return np.array([self._row[i] for i in ids], dtype=np.int64)

    def remove(self, rows: np.ndarray) -> None:
        for row in rows:
            self.live[row] = False
            if self._row.get(self.ids[row]) == row:
                del self._row[self.ids[row]]

    def update_metadata(self, updates: Mapping[int, dict[str, Any]]) -> None:
        """Replace the metadata of live rows (row -> new metadata)."""
        for row, m in updates.items():
            self.metadata[row] = m

    def undo(self, n_rows: int, removed: np.ndarray, old_metadata: Mapping[int, Any]) -> None:
        """Undo an :meth:`append` back to ``n_rows``, a :meth:`remove` of ``removed`` and a
        :meth:`update_metadata` whose previous values were ``old_metadata``."""
        for row in range(n_rows, self.n_rows):
            self._row.pop(self.ids[row], None)
        del self.ids[n_rows:], self.texts[n_rows:], self.metadata[n_rows:], self.live[n_rows:]
        for row in removed.tolist():
            if row < n_rows:
                self.live[row] = True
                self._row[self.ids[row]] = row
        for row, m in old_metadata.items():
            self.metadata[row] = m

    def iter_metadata(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(row, metadata)`` of every live row, in row order."""
        for row, (m, live) in enumerate(zip(self.metadata, self.live, strict=True)):
            if live:
                yield row, m

    def save(self, path: Path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            for doc_id, text, m, live in zip(
                self.ids, self.texts, self.metadata, self.live, strict=True
            ):
                row = {"id": doc_id, "text": text, "metadata": m, "live": live}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: Path) -> DocumentStore:
        store = cls()
        with open(path, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                store.ids.append(row["id"])
                store.texts.append(row["text"])
                store.metadata.append(row["metadata"])
                store.live.append(row["live"])
                if row["live"]:
                    store._row[row["id"]] = len(store.ids) - 1
        return store
