"""Metadata filters: one documented language (a plain dict), parsed once, evaluated to row masks.

The language is the one LangChain, LlamaIndex and Chroma users already write (MongoDB-style):

- ``{"lang": "ko"}``: equality; several keys in one dict must all hold (an implicit ``$and``).
- ``{"year": {"$gte": 2020, "$lt": 2024}}``: operators on a field, all of which must hold:
  ``$eq $ne $gt $gte $lt $lte $in $nin $exists``.
- ``{"$and": [f, ...]}``, ``{"$or": [f, ...]}`` (non-empty lists of filters), ``{"$not": f}``.
- ``{"source.site": "wiki"}``: a dotted key reads nested dicts (also dicts inside lists).
- A document whose field is a list matches when *any* element does
  (``{"tags": "news"}`` matches ``{"tags": ["news", "sport"]}``).
- ``$exists`` on a dotted prefix holds when any value lies under it (``{"src": {"$exists":
  True}}`` for ``{"src": {"site": "wiki"}}``).

Values and types (decided here, tested in ``tests/hybrid/test_filters.py``):

- Filter values are ``str``, ``int``, ``float`` or ``bool``; ``$in``/``$nin`` take a list of
  them (an empty ``$in`` matches nothing, an empty ``$nin`` everything); ``$exists`` takes a bool.
  Anything else (``None``, a list for ``$eq``/``$gt``, a dict value without operators) is a
  :class:`FilterError` (a ``ValueError``) naming the field, the operator and what is accepted.
  Unknown operators are a ``FilterError`` listing the valid ones.
- ``int`` and ``float`` compare as numbers (``1 == 1.0``); ``bool`` is its own type
  (``True`` does not equal ``1``). ``$gt $gte $lt $lte`` take a number or a string (strings
  compare lexicographically, e.g. ISO dates) and match only document values of the same kind:
  ``{"year": {"$gt": 2020}}`` never matches ``"year": "2021"``; no error, as documents may mix.
- A field that is absent, ``None`` or an empty list is *missing*: equality, ``$in`` and
  comparisons do not match it, ``$exists: false`` does. ``$ne`` and ``$nin`` are the exact
  complements of ``$eq`` and ``$in`` (as in MongoDB): they match documents missing the field,
  and a list field matches ``$ne: x`` only when no element equals ``x``. A field no document
  has is not an error: ``{"nope": 1}`` matches nothing and ``{"nope": {"$exists": False}}``
  matches every document.

:func:`parse` validates a filter into a small tree of nodes; :class:`MetadataIndex` holds, per
dotted field, value -> rows postings and a numeric column, kept up to date from the engine's
writes, and turns a parsed filter into a boolean mask over internal rows (cached per filter
until the next write).
"""

from __future__ import annotations

import json
import operator
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")
LOGICAL = ("$and", "$or", "$not")
OPERATORS = COMPARISONS + LOGICAL
_RANGES = ("$gt", "$gte", "$lt", "$lte")
_OPS = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}
_SCALARS = "a str, int, float or bool"


class FilterError(ValueError):
    """A filter that is not valid in the filter language (see :mod:`hybrid.engine.filters`)."""


# ---------------------------------------------------------------------------------------------
# the parsed tree


@dataclass(frozen=True)
class Cond:
    """One test on one field: ``op`` is ``$eq $gt $gte $lt $lte $in $exists`` (``$ne``/``$nin``
    are parsed as ``Not(Cond($eq/$in))``); ``value`` a scalar, a tuple of scalars or a bool."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    part: Node


Node = Cond | And | Or | Not


def _is_scalar(v: Any) -> bool:
    return isinstance(v, (str, bool, int, float)) and not (
        isinstance(v, float) and not np.isfinite(v)
    )


def _key(v: Any) -> tuple[str, Any]:
    """The equality key of a scalar: numbers as floats (1 == 1.0), bools and strings apart."""
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, (int, float)):
        return ("n", float(v))
    return ("s", v)


def parse(spec: Mapping[str, Any]) -> Node:
    """Validate a filter dict (the language of :mod:`hybrid.engine.filters`) into a tree of
    nodes."""
    if not isinstance(spec, Mapping):
        raise FilterError(f"a filter must be a dict, got {type(spec).__name__}: {spec!r}")
    if not spec:
        raise FilterError("an empty filter {} is not allowed; pass filter=None for no filter")
    parts: list[Node] = []
    for key, value in spec.items():
        if not isinstance(key, str) or not key:
            raise FilterError(f"filter keys must be non-empty strings, got {key!r}")
        if key.startswith("$"):
            parts.append(_logical(key, value))
        else:
            parts.append(_field(key, value))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _logical(op: str, value: Any) -> Node:
    if op == "$not":
        return Not(parse(value))
    if op in ("$and", "$or"):
        if not isinstance(value, (list, tuple)) or not value:
            raise FilterError(f"{op} takes a non-empty list of filters, got {value!r}")
        nodes = tuple(parse(v) for v in value)
        return nodes[0] if len(nodes) == 1 else (And(nodes) if op == "$and" else Or(nodes))
    if op in COMPARISONS:
        raise FilterError(f"operator {op} needs a field: write {{'field': {{{op!r}: ...}}}}")
    raise FilterError(f"unknown operator {op!r}; valid operators: {', '.join(OPERATORS)}")


def _field(name: str, value: Any) -> Node:
    if not isinstance(value, Mapping):
        if isinstance(value, (list, tuple)):
            raise FilterError(
                f"field {name!r}: a list is not a value; to match any of several values write "
                f"{{{name!r}: {{'$in': [...]}}}}"
            )
        return _cond(name, "$eq", value)
    if not value:
        raise FilterError(f"field {name!r}: empty operator dict {{}}")
    ops = list(value)
    if not all(isinstance(o, str) and o.startswith("$") for o in ops):
        raise FilterError(
            f"field {name!r}: a dict value must hold operators ({', '.join(COMPARISONS)}); "
            f"for nested fields use dotted keys such as {name + '.' + str(ops[0])!r}"
        )
    nodes = tuple(_cond(name, op, v) for op, v in value.items())
    return nodes[0] if len(nodes) == 1 else And(nodes)


def _cond(name: str, op: str, value: Any) -> Node:
    where = f"field {name!r}, {op}"
    if op in ("$eq", "$ne"):
        if not _is_scalar(value):
            raise FilterError(f"{where}: the value must be {_SCALARS} (finite), got {value!r}")
        node: Node = Cond(name, "$eq", value)
        return Not(node) if op == "$ne" else node
    if op in _RANGES:
        if isinstance(value, bool) or not _is_scalar(value):
            raise FilterError(f"{where}: the value must be a number or a string, got {value!r}")
        return Cond(name, op, value)
    if op in ("$in", "$nin"):
        if not isinstance(value, (list, tuple)) or not all(_is_scalar(v) for v in value):
            raise FilterError(f"{where}: the value must be a list of {_SCALARS}, got {value!r}")
        node = Cond(name, "$in", tuple(value))
        return Not(node) if op == "$nin" else node
    if op == "$exists":
        if not isinstance(value, bool):
            raise FilterError(f"{where}: the value must be true or false, got {value!r}")
        node = Cond(name, "$exists", True)
        return node if value else Not(node)
    if op in LOGICAL:
        raise FilterError(f"{where}: {op} goes at the top level of a filter, not on a field")
    raise FilterError(f"{where}: unknown operator {op!r}; valid operators: {', '.join(OPERATORS)}")


def canonical(spec: Mapping[str, Any]) -> str:
    """A JSON text that is the same for equal filters (the cache key)."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), default=repr)


def matches(node: Node, metadata: Mapping[str, Any]) -> bool:
    """Whether one document's metadata matches a parsed filter (the reference semantics: the
    index's masks equal this applied to every document; used in tests, not on the hot path)."""
    if isinstance(node, And):
        return all(matches(p, metadata) for p in node.parts)
    if isinstance(node, Or):
        return any(matches(p, metadata) for p in node.parts)
    if isinstance(node, Not):
        return not matches(node.part, metadata)
    pairs = list(flatten(metadata))
    if node.op == "$exists":
        return node.field in _with_parents(p for p, _ in pairs)
    values = [v for path, v in pairs if path == node.field]
    if node.op == "$eq":
        return _key(node.value) in {_key(v) for v in values}
    if node.op == "$in":
        return bool({_key(v) for v in node.value} & {_key(v) for v in values})
    return any(_compare(node.op, v, node.value) for v in values)


def _compare(op: str, v: Any, x: Any) -> bool:
    if isinstance(v, bool) or isinstance(x, str) != isinstance(v, str):
        return False
    return bool(_OPS[op](v, x))


def _with_parents(paths: Iterable[str]) -> set[str]:
    """The paths and every dotted prefix of them (``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``)."""
    out: set[str] = set()
    for path in paths:
        out.add(path)
        while "." in path:
            path = path.rsplit(".", 1)[0]
            out.add(path)
    return out


def flatten(metadata: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, scalar value) of a metadata dict; lists give one pair per element,
    dicts inside lists extend the path; ``None`` and values of other types are skipped."""
    for key, value in metadata.items():
        path = f"{prefix}{key}"
        yield from _values(path, value)


def _values(path: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        yield from flatten(value, path + ".")
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _values(path, v)
    elif _is_scalar(value):
        yield path, value


# ---------------------------------------------------------------------------------------------
# the index


class _Rows:
    """A growable int64 array of rows (amortised appends)."""

    __slots__ = ("buf", "n")

    def __init__(self) -> None:
        self.buf = np.empty(4, dtype=np.int64)
        self.n = 0

    def extend(self, rows: np.ndarray) -> None:
        need = self.n + rows.shape[0]
        if need > self.buf.shape[0]:
            grown = np.empty(max(need, 2 * self.buf.shape[0]), dtype=np.int64)
            grown[: self.n] = self.buf[: self.n]
            self.buf = grown
        self.buf[self.n : need] = rows
        self.n = need

    def view(self) -> np.ndarray:
        return self.buf[: self.n]

    def drop(self, rows: np.ndarray) -> None:
        keep = self.view()[~np.isin(self.view(), rows)]
        self.buf = keep.copy() if keep.shape[0] else np.empty(4, dtype=np.int64)
        self.n = keep.shape[0]


class _Field:
    """One dotted field: value key -> rows, rows having it, and (row, value) of numbers."""

    __slots__ = ("_num", "has", "num_rows", "num_vals", "postings")

    def __init__(self) -> None:
        self.postings: dict[tuple[str, Any], _Rows] = {}
        self.has = _Rows()
        self.num_rows = _Rows()
        self.num_vals: list[np.ndarray] = []  # appended chunks, joined on demand
        self._num: np.ndarray | None = None

    def numbers(self) -> np.ndarray:
        if self._num is None or self._num.shape[0] != self.num_rows.n:
            self._num = np.concatenate(self.num_vals) if self.num_vals else np.empty(0, np.float64)
            self.num_vals = [self._num]
        return self._num


class MetadataIndex:
    """Metadata of every row, indexed for filters: per dotted field, value -> rows postings and
    numeric columns (for ranges), plus the live-row mask.

    Kept up to date by :meth:`append`, :meth:`delete` and :meth:`update` (the engine calls
    them from its write path); :meth:`rebuild` fills it from ``(row, metadata)`` pairs of live
    rows when an engine is loaded. :meth:`mask` turns a parsed filter into a boolean array over
    rows (True: live and matching), cached by the filter's canonical JSON until the next write.
    """

    def __init__(self, cache_size: int = 64) -> None:
        self.fields: dict[str, _Field] = {}
        self.live = np.zeros(0, dtype=bool)
        self._meta: list[Mapping[str, Any] | None] = []  # what each row was indexed with
        self.version = 0  # bumped by every write
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_version = 0
        self.cache_size = cache_size
        self._cache_lock = threading.Lock()  # searches share the cache

    @property
    def n_rows(self) -> int:
        return int(self.live.shape[0])

    # -- writes ---------------------------------------------------------------------------------

    def _changed(self) -> None:
        self.version += 1

    def append(self, metadata: Iterable[Mapping[str, Any] | None]) -> None:
        """Index new rows (numbered from :attr:`n_rows` on), one metadata dict each."""
        metas = list(metadata)
        start = self.n_rows
        self._index(range(start, start + len(metas)), metas)
        self._meta.extend(metas)
        self.live = np.concatenate([self.live, np.ones(len(metas), dtype=bool)])
        self._changed()

    def _index(self, rows: Iterable[int], metas: list[Mapping[str, Any] | None]) -> None:
        """Add the postings of ``rows`` (whose metadata is ``metas``), grouped per key."""
        groups: dict[str, dict[tuple[str, Any], list[int]]] = {}
        has: dict[str, list[int]] = {}
        nums: dict[str, tuple[list[int], list[float]]] = {}
        for row, meta in zip(rows, metas, strict=True):
            if not meta:
                continue
            seen: set[tuple[str, tuple[str, Any]]] = set()
            for path, value in flatten(meta):
                key = _key(value)
                if (path, key) in seen:
                    continue
                seen.add((path, key))
                groups.setdefault(path, {}).setdefault(key, []).append(row)
                if key[0] == "n":
                    r, v = nums.setdefault(path, ([], []))
                    r.append(row)
                    v.append(key[1])
            for path in _with_parents(p for p, _ in seen):
                has.setdefault(path, []).append(row)
        for path, rs in has.items():
            f = self.fields.get(path)
            if f is None:
                f = self.fields[path] = _Field()
            f.has.extend(np.asarray(rs, dtype=np.int64))
        for path, per in groups.items():
            f = self.fields[path]
            for key, rs in per.items():
                post = f.postings.get(key)
                if post is None:
                    post = f.postings[key] = _Rows()
                post.extend(np.asarray(rs, dtype=np.int64))
            if path in nums:
                r, v = nums[path]
                f.num_rows.extend(np.asarray(r, dtype=np.int64))
                f.num_vals.append(np.asarray(v, dtype=np.float64))

    def delete(self, rows: np.ndarray) -> None:
        """Mark rows deleted (their postings stay; masks are cut by the live mask)."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size:
            self.live[rows] = False
            for r in rows.tolist():
                self._meta[r] = None
            self._changed()

    def update(self, updates: Mapping[int, Mapping[str, Any] | None]) -> None:
        """Replace the metadata of live rows (``row -> new metadata``)."""
        if not updates:
            return
        rows = np.fromiter(updates, dtype=np.int64, count=len(updates))
        old: dict[str, dict[tuple[str, Any], list[int]]] = {}
        old_has: dict[str, list[int]] = {}
        for r in rows.tolist():
            pairs = list(flatten(self._meta[r] or {}))
            for path, value in pairs:
                old.setdefault(path, {}).setdefault(_key(value), []).append(r)
            for path in _with_parents(p for p, _ in pairs):
                old_has.setdefault(path, []).append(r)
        for path, rs in old_has.items():
            self.fields[path].has.drop(np.asarray(rs, dtype=np.int64))
        for path, per in old.items():
            f = self.fields[path]
            gone = np.unique(
                np.concatenate([np.asarray(rs, dtype=np.int64) for rs in per.values()])
            )
            for key, rs in per.items():
                post = f.postings[key]
                post.drop(np.asarray(rs, dtype=np.int64))
                if not post.n:
                    del f.postings[key]
            if f.num_rows.n:
                keep = ~np.isin(f.num_rows.view(), gone)
                vals = f.numbers()[keep]
                f.num_rows.drop(gone)
                f.num_vals, f._num = [vals], vals
        metas = [updates[r] for r in rows.tolist()]
        self._index(rows.tolist(), metas)
        for r, m in zip(rows.tolist(), metas, strict=True):
            self._meta[r] = m
        self._changed()

    def rebuild(self, n_rows: int, rows_meta: Iterable[tuple[int, Mapping[str, Any] | None]]):
        """Start again from ``(row, metadata)`` of the live rows of a collection of ``n_rows``."""
        self.fields = {}
        self.live = np.zeros(n_rows, dtype=bool)
        self._meta = [None] * n_rows
        rows, metas = [], []
        for row, meta in rows_meta:
            rows.append(row)
            metas.append(meta)
        self._index(rows, metas)
        for r, m in zip(rows, metas, strict=True):
            self._meta[r] = m
        self.live[np.asarray(rows, dtype=np.int64)] = True
        self._changed()

    # -- reads ----------------------------------------------------------------------------------

    def mask(self, spec: Mapping[str, Any] | Node) -> np.ndarray:
        """Boolean mask over rows: live and matching ``spec`` (a filter dict or parsed node).

        Dict filters are cached by their canonical JSON until the next write. The returned
        array is shared with the cache: do not modify it.
        """
        if isinstance(spec, (Cond, And, Or, Not)):
            return self._eval(spec) & self.live
        key = canonical(spec)
        with self._cache_lock:
            if self._cache_version != self.version:
                self._cache.clear()
                self._cache_version = self.version
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        out = self._eval(parse(spec)) & self.live
        out.flags.writeable = False
        with self._cache_lock:
            if self._cache_version == self.version:
                self._cache[key] = out
                if len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return out

    def _eval(self, node: Node) -> np.ndarray:
        if isinstance(node, And):
            out = self._eval(node.parts[0])
            for p in node.parts[1:]:
                out &= self._eval(p)
            return out
        if isinstance(node, Or):
            out = self._eval(node.parts[0])
            for p in node.parts[1:]:
                out |= self._eval(p)
            return out
        if isinstance(node, Not):
            return ~self._eval(node.part)
        out = np.zeros(self.n_rows, dtype=bool)
        f = self.fields.get(node.field)
        if f is None:
            return out
        if node.op == "$exists":
            out[f.has.view()] = True
        elif node.op in ("$eq", "$in"):
            values = (node.value,) if node.op == "$eq" else node.value
            for v in values:
                post = f.postings.get(_key(v))
                if post is not None:
                    out[post.view()] = True
        elif isinstance(node.value, str):  # string range: over the distinct strings
            for key, post in f.postings.items():
                if key[0] == "s" and _compare(node.op, key[1], node.value):
                    out[post.view()] = True
        else:
            vals = f.numbers()
            x = float(node.value)
            out[f.num_rows.view()[_OPS[node.op](vals, x)]] = True
        return out
