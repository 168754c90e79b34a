"""Framework filters translated into the engine's filter language (pure functions).

The engine's language (see ``search(filter=...)``) is a MongoDB/Chroma-style dict:
``{"lang": "ko"}``, ``{"year": {"$gte": 2020}}``, ``$eq $ne $gt $gte $lt $lte $in $nin
$exists``, ``{"$and": [...]}``, ``{"$or": [...]}``, ``{"$not": {...}}``, dotted keys for nested
fields, and a list-valued field matches when any element does. LangChain users write that
language directly; LlamaIndex ``MetadataFilters`` and Haystack filter dicts are translated here.

Translation checks structure and operators (clear errors naming what is not supported); the
values themselves are checked by the engine when it parses the filter. Every comparison comes
out in the explicit form ``{field: {"$op": value}}``.

==========================  =================================  ===============================
engine                      LlamaIndex ``FilterOperator``      Haystack ``operator``
==========================  =================================  ===============================
``$eq``                     ``EQ``                             ``==`` (field ``meta.<key>``)
``$ne``                     ``NE``                             ``!=``
``$gt $gte $lt $lte``       ``GT GTE LT LTE``                  ``> >= < <=``
``$in``                     ``IN``; ``ANY`` (list fields)      ``in``
``$nin``                    ``NIN``                            ``not in``
``$eq`` (list membership)   ``CONTAINS``                       -
``$and`` of ``$eq``         ``ALL``                            -
``$exists: false``          ``EQ None``; ``IS_EMPTY`` (or "")  ``== None``
``$exists: true``           ``NE None``                        ``!= None``
``$and`` / ``$or``          ``AND`` / ``OR``, nesting          ``AND`` / ``OR``
``$not``                    ``NOT``: none matches              ``NOT``: not all match
error                       ``TEXT_MATCH*``                    fields other than ``meta.*``
==========================  =================================  ===============================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Filter = dict[str, Any]


class FilterTranslationError(ValueError):
    """A framework filter that has no equivalent in the engine's filter language."""


# --------------------------------------------------------------------------------- LlamaIndex

_LLAMA_OPERATORS = {
    "==": "$eq",
    "!=": "$ne",
    ">": "$gt",
    ">=": "$gte",
    "<": "$lt",
    "<=": "$lte",
    "in": "$in",
    "nin": "$nin",
    "any": "$in",
}
_LLAMA_LISTS = ("in", "nin", "any", "all")
_LLAMA_UNSUPPORTED = ("text_match", "text_match_insensitive")


def from_llama_index(filters: Any) -> Filter | None:
    """LlamaIndex ``MetadataFilters`` (or one ``MetadataFilter``) as an engine filter.

    ``None`` or ``MetadataFilters(filters=[])`` mean no filter (``None``). Conditions: ``AND``
    -> ``$and``, ``OR`` -> ``$or``, ``NOT`` -> ``{"$not": {"$or": [...]}}`` (LlamaIndex's
    meaning: none of the filters matches); nested ``MetadataFilters`` nest. Operators as in
    the module's table: ``ANY`` is ``$in`` (a list field matches when any element is among
    the values), ``ALL`` an ``$and`` of equalities, ``CONTAINS`` an equality (on a list field:
    the list holds the value; on a string field it is *not* a substring test), ``IS_EMPTY``
    "missing (absent, None, empty list) or ``""``". ``EQ``/``NE`` with value ``None`` mean
    ``$exists: false`` / ``$exists: true``. ``TEXT_MATCH`` and ``TEXT_MATCH_INSENSITIVE``
    (substring search) raise :class:`FilterTranslationError`.
    """
    if filters is None:
        return None
    if hasattr(filters, "filters"):
        if not filters.filters:
            return None
        return _llama_group(filters)
    return _llama_one(filters)


def _enum_value(value: Any) -> str:
    return str(getattr(value, "value", value)).lower()


def _llama_group(group: Any) -> Filter:
    parts = []
    for item in group.filters:
        if hasattr(item, "filters"):
            if not item.filters:
                raise FilterTranslationError(
                    "a nested MetadataFilters has no filters; drop it or give it some"
                )
            parts.append(_llama_group(item))
        else:
            parts.append(_llama_one(item))
    condition = "and" if group.condition is None else _enum_value(group.condition)
    if condition == "and":
        return _all_of(parts)
    if condition == "or":
        return parts[0] if len(parts) == 1 else {"$or": parts}
    if condition == "not":
        return {"$not": parts[0] if len(parts) == 1 else {"$or": parts}}
    raise FilterTranslationError(
        f"unknown MetadataFilters condition {condition!r}; supported: and, or, not"
    )


def _llama_one(item: Any) -> Filter:
    key, value = item.key, item.value
    op = _enum_value(getattr(item, "operator", "=="))  # ExactMatchFilter: equality
    if op in _LLAMA_UNSUPPORTED:
        raise FilterTranslationError(
            f"LlamaIndex operator {op.upper()} (on {key!r}) is a substring search, which the "
            "engine's filters do not support; use EQ, IN or CONTAINS (exact values)"
        )
    if op in _LLAMA_LISTS and not isinstance(value, list):
        raise FilterTranslationError(
            f"LlamaIndex operator {op.upper()} on {key!r} needs a list value, got {value!r}"
        )
    if op == "is_empty":
        return {"$or": [{key: {"$exists": False}}, {key: {"$eq": ""}}]}
    if op == "contains":
        return {key: {"$eq": value}}
    if op == "all":
        if not value:
            raise FilterTranslationError(f"LlamaIndex operator ALL on {key!r} needs values")
        return _all_of([{key: {"$eq": v}} for v in value])
    if value is None and op in ("==", "!="):
        return {key: {"$exists": op == "!="}}
    if op not in _LLAMA_OPERATORS:
        raise FilterTranslationError(
            f"unknown LlamaIndex operator {op!r} on {key!r}; supported: "
            f"{', '.join([*_LLAMA_OPERATORS, 'contains', 'all', 'is_empty'])}"
        )
    return {key: {_LLAMA_OPERATORS[op]: value}}


# ----------------------------------------------------------------------------------- Haystack

_HAYSTACK_OPERATORS = {
    "==": "$eq",
    "!=": "$ne",
    ">": "$gt",
    ">=": "$gte",
    "<": "$lt",
    "<=": "$lte",
    "in": "$in",
    "not in": "$nin",
}
_HAYSTACK_LOGICAL = ("AND", "OR", "NOT")


def from_haystack(filters: Mapping[str, Any] | None) -> Filter | None:
    """A Haystack 2 filter dict as an engine filter (``None`` or ``{}``: no filter).

    A comparison is ``{"field": "meta.<key>", "operator": op, "value": v}`` (``op`` one of
    ``== != > >= < <= in "not in"``); a logical node ``{"operator": "AND" | "OR" | "NOT",
    "conditions": [...]}``, where ``NOT`` means "not all conditions hold" (Haystack's meaning).
    Only metadata fields (``meta.`` prefix) can be filtered: ``content``, ``id`` and the like
    raise :class:`FilterTranslationError`. ``== None`` / ``!= None`` become ``$exists``.
    Differences from Haystack's in-memory store, by the engine's design: a list-valued field
    matches ``==`` when any element does, and strings compare as strings (ISO dates in one
    format order correctly; Haystack parses them as dates).
    """
    if filters is None or (isinstance(filters, Mapping) and not filters):
        return None
    return _haystack_node(filters, "filters")


def _haystack_node(node: Any, where: str) -> Filter:
    if not isinstance(node, Mapping):
        raise FilterTranslationError(f"{where} must be a dict, got {type(node).__name__}")
    if "operator" not in node:
        raise FilterTranslationError(f"{where} has no 'operator': {dict(node)!r}")
    op = node["operator"]
    if "conditions" in node:
        return _haystack_logical(op, node["conditions"], where)
    if "field" not in node or "value" not in node:
        raise FilterTranslationError(
            f"{where} must be a comparison (keys field, operator, value) or a logical node "
            f"(keys operator, conditions); got keys {sorted(node)}"
        )
    return _haystack_comparison(node["field"], op, node["value"], where)


def _haystack_logical(op: Any, conditions: Any, where: str) -> Filter:
    if op not in _HAYSTACK_LOGICAL:
        raise FilterTranslationError(
            f"{where}: unknown logical operator {op!r}; supported: {', '.join(_HAYSTACK_LOGICAL)}"
        )
    if not isinstance(conditions, list) or not conditions:
        raise FilterTranslationError(f"{where}: {op} needs a non-empty list of conditions")
    parts = [_haystack_node(c, f"{where}.conditions[{i}]") for i, c in enumerate(conditions)]
    if op == "AND":
        return _all_of(parts)
    if op == "OR":
        return parts[0] if len(parts) == 1 else {"$or": parts}
    return {"$not": _all_of(parts)}


def _haystack_comparison(field: Any, op: Any, value: Any, where: str) -> Filter:
    if not isinstance(field, str) or not field.startswith("meta.") or field == "meta.":
        raise FilterTranslationError(
            f"{where}: field {field!r} cannot be filtered; the engine filters document metadata "
            "only, written 'meta.<key>' (e.g. 'meta.lang')"
        )
    key = field[len("meta.") :]
    if op not in _HAYSTACK_OPERATORS:
        raise FilterTranslationError(
            f"{where}: unknown comparison operator {op!r} on {field!r}; supported: "
            f"{', '.join(_HAYSTACK_OPERATORS)}"
        )
    if op in ("in", "not in") and not isinstance(value, list):
        raise FilterTranslationError(
            f"{where}: operator {op!r} on {field!r} needs a list value, got {value!r}"
        )
    if value is None:
        if op in ("==", "!="):
            return {key: {"$exists": op == "!="}}
        raise FilterTranslationError(
            f"{where}: operator {op!r} on {field!r} cannot compare with None"
        )
    return {key: {_HAYSTACK_OPERATORS[op]: value}}


def _all_of(parts: list[Filter]) -> Filter:
    return parts[0] if len(parts) == 1 else {"$and": parts}
