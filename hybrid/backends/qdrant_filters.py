"""The filter language of :mod:`hybrid.engine.filters` as Qdrant payload filters.

Documents' metadata sits in each point's payload under ``metadata`` (see
:mod:`hybrid.backends.qdrant`), so field ``lang`` is payload key ``metadata.lang``. The translation
keeps
the language's semantics: numbers compare as numbers (``1 == 1.0``: equality on a number is a
``Range(gte=x, lte=x)``), ``$ne``/``$nin``/``$not`` are ``must_not`` (so they match documents
missing the field), a list matches when any element does, ``$exists`` is ``must_not IsEmpty``.
Two things Qdrant cannot express raise :class:`~hybrid.engine.filters.FilterError`: ``$gt``-style
comparisons with a string, and paths through lists of objects are not translated (Qdrant
writes them ``a[].b``; a dotted key here reads nested dicts only).

:func:`payload_schemas` infers, from a batch of metadata, the payload index type of each
field (keyword, integer, float, bool) so the engine can index the fields filters use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hybrid.engine.filters import And, Cond, FilterError, Node, Not, Or, flatten, parse

PREFIX = "metadata."


def to_qdrant(spec: Mapping[str, Any] | Node, models: Any, prefix: str = PREFIX) -> Any:
    """A ``qdrant_client.models.Filter`` equivalent to filter ``spec`` (a dict or parsed)."""
    node = spec if isinstance(spec, (Cond, And, Or, Not)) else parse(spec)
    return _filter(node, models, prefix)


def _filter(node: Node, models: Any, prefix: str) -> Any:
    if isinstance(node, And):
        return models.Filter(must=[_filter(p, models, prefix) for p in node.parts])
    if isinstance(node, Or):
        return models.Filter(should=[_filter(p, models, prefix) for p in node.parts])
    if isinstance(node, Not):
        return models.Filter(must_not=[_filter(node.part, models, prefix)])
    key = prefix + node.field
    if node.op == "$exists":
        empty = models.IsEmptyCondition(is_empty=models.PayloadField(key=key))
        return models.Filter(must_not=[empty])
    if node.op in ("$eq", "$in"):
        values = (node.value,) if node.op == "$eq" else node.value
        if not values:  # nothing is equal to no value
            return models.Filter(must=[models.HasIdCondition(has_id=[])])
        return models.Filter(should=[_equals(key, v, models) for v in values])
    if isinstance(node.value, str):
        raise FilterError(
            f"field {node.field!r}, {node.op}: the Qdrant backend compares numbers only, "
            f"not strings ({node.value!r})"
        )
    bound = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}[node.op]
    rng = models.Range(**{bound: float(node.value)})
    return models.Filter(must=[models.FieldCondition(key=key, range=rng)])


def _equals(key: str, value: Any, models: Any) -> Any:
    if isinstance(value, bool) or isinstance(value, str):
        return models.FieldCondition(key=key, match=models.MatchValue(value=value))
    x = float(value)
    return models.FieldCondition(key=key, range=models.Range(gte=x, lte=x))


def payload_schemas(metadata: Iterable[Mapping[str, Any] | None]) -> dict[str, str]:
    """Dotted field -> Qdrant payload index type (``"keyword"``, ``"integer"``, ``"float"``,
    ``"bool"``) for the fields whose values in ``metadata`` all have one kind; fields mixing
    kinds (or reached through lists of objects, which need ``[]`` in Qdrant) are left out."""
    kinds: dict[str, set[str]] = {}
    for meta in metadata:
        for path, value in flatten(meta or {}):
            if isinstance(value, bool):
                kind = "bool"
            elif isinstance(value, int):
                kind = "integer"
            elif isinstance(value, float):
                kind = "float"
            else:
                kind = "keyword"
            kinds.setdefault(path, set()).add(kind)
    out = {}
    for path, ks in kinds.items():
        if ks <= {"integer", "float"}:
            out[path] = "float" if "float" in ks else "integer"
        elif len(ks) == 1:
            out[path] = next(iter(ks))
    return out
