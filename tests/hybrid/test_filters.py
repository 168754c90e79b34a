"""The filter language (hybrid.engine.filters): hand-worked matches, errors, and the metadata index
(masks equal the reference semantics; incremental upkeep equals a rebuild; the cache)."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid.engine.filters import FilterError, MetadataIndex, matches, parse

DOCS = [
    {"lang": "ko", "year": 2020, "tags": ["news", "sport"], "src": {"site": "wiki", "rank": 3}},
    {"lang": "en", "year": 2021.0, "tags": ["news"], "src": {"site": "blog"}},
    {"lang": "en", "year": "2022", "tags": [], "draft": True},
    {"lang": "ko", "year": 2023, "tags": "sport", "draft": False, "src": None},
    {"year": 1, "authors": [{"name": "kim"}, {"name": "lee"}]},
    {},
]


def _index(docs=DOCS) -> MetadataIndex:
    index = MetadataIndex()
    index.append(docs)
    return index


def _rows(spec) -> list[int]:
    """Rows matching ``spec`` by the index; checked against the per-document reference."""
    got = np.flatnonzero(_index().mask(spec)).tolist()
    node = parse(spec)
    assert got == [i for i, d in enumerate(DOCS) if matches(node, d)], spec
    return got


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"lang": "ko"}, [0, 3]),
        ({"lang": {"$eq": "en"}}, [1, 2]),
        ({"lang": {"$ne": "en"}}, [0, 3, 4, 5]),  # $ne matches documents without the field
        ({"year": 2021}, [1]),  # int 2021 equals float 2021.0
        ({"year": "2022"}, [2]),  # strings and numbers are different values
        ({"year": {"$gt": 2020}}, [1, 3]),  # the string "2022" is not a number
        ({"year": {"$gte": 2020}}, [0, 1, 3]),
        ({"year": {"$lt": 2021}}, [0, 4]),
        ({"year": {"$lte": 2021, "$gt": 1}}, [0, 1]),
        ({"year": {"$gte": "2000"}}, [2]),  # string comparison only meets strings
        ({"lang": {"$in": ["ko", "fr"]}}, [0, 3]),
        ({"lang": {"$in": []}}, []),
        ({"lang": {"$nin": ["ko"]}}, [1, 2, 4, 5]),
        ({"lang": {"$nin": []}}, [0, 1, 2, 3, 4, 5]),
        ({"tags": "sport"}, [0, 3]),  # a list matches when any element does; a scalar too
        ({"tags": {"$ne": "news"}}, [2, 3, 4, 5]),  # no element equals "news"
        ({"tags": {"$exists": True}}, [0, 1, 3]),  # an empty list is missing
        ({"tags": {"$exists": False}}, [2, 4, 5]),
        ({"draft": False}, [3]),  # bools are their own type
        ({"draft": 0}, []),
        ({"src.site": "wiki"}, [0]),  # dotted keys read nested dicts
        ({"src.rank": {"$gte": 3}}, [0]),
        ({"src": {"$exists": True}}, [0, 1]),  # values lie under it (None is missing)
        ({"authors": {"$exists": True}}, [4]),
        ({"src.site": {"$exists": True}}, [0, 1]),
        ({"authors.name": "lee"}, [4]),  # dicts inside lists extend the path
        ({"nope": 1}, []),  # a field no document has matches nothing ...
        ({"nope": {"$exists": False}}, [0, 1, 2, 3, 4, 5]),  # ... and its absence everything
        ({"nope": {"$ne": 1}}, [0, 1, 2, 3, 4, 5]),
        ({"lang": "ko", "year": 2023}, [3]),  # several keys: all must hold
        ({"$and": [{"lang": "en"}, {"tags": "news"}]}, [1]),
        ({"$or": [{"lang": "en"}, {"tags": "sport"}]}, [0, 1, 2, 3]),
        ({"$not": {"lang": "en"}}, [0, 3, 4, 5]),
        ({"$or": [{"$and": [{"lang": "ko"}, {"year": {"$lt": 2021}}]}, {"draft": True}]}, [0, 2]),
        ({"$not": {"$or": [{"lang": "ko"}, {"year": {"$lte": 1}}]}}, [1, 2, 5]),
    ],
)
def test_hand_worked_matches(spec, expected):
    assert _rows(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"lang": {"$like": "k%"}}, r"unknown operator '\$like'; valid operators: \$eq, \$ne"),
        ({"$xor": []}, r"unknown operator '\$xor'; valid operators"),
        ({"year": {"$gt": [1, 2]}}, r"field 'year', \$gt: the value must be a number or a str"),
        ({"year": {"$gt": True}}, r"\$gt: the value must be a number or a string"),
        ({"year": {"$gt": None}}, r"\$gt: the value must be a number"),
        ({"lang": None}, r"field 'lang', \$eq: the value must be a str, int, float or bool"),
        ({"lang": float("nan")}, r"\$eq: the value must be"),
        ({"lang": ["ko", "en"]}, r"a list is not a value.*\$in"),
        ({"lang": {"$in": "ko"}}, r"\$in: the value must be a list"),
        ({"lang": {"$nin": [["ko"]]}}, r"\$nin: the value must be a list of"),
        ({"lang": {"$exists": 1}}, r"\$exists: the value must be true or false"),
        ({"src": {"site": "wiki"}}, r"dict value must hold operators.*'src.site'"),
        ({"lang": {}}, r"empty operator dict"),
        ({}, r"empty filter"),
        ({"$and": {"lang": "ko"}}, r"\$and takes a non-empty list"),
        ({"$or": []}, r"\$or takes a non-empty list"),
        ({"$not": "ko"}, r"a filter must be a dict"),
        ({"lang": {"$or": ["ko"]}}, r"\$or goes at the top level"),
        ({"$eq": 1}, r"operator \$eq needs a field"),
        ({1: "x"}, r"filter keys must be non-empty strings"),
    ],
)
def test_errors_name_the_problem(spec, message):
    with pytest.raises(FilterError, match=message):
        parse(spec)
    with pytest.raises(ValueError, match=message):  # FilterError is a ValueError
        _index().mask(spec)


def test_not_a_dict():
    with pytest.raises(FilterError, match="a filter must be a dict, got str"):
        parse("lang = ko")


def test_deleted_rows_never_match_and_masks_are_cached_until_a_write():
    index = _index()
    first = index.mask({"lang": "ko"})
    assert index.mask({"lang": "ko"}) is first  # evaluated once
    assert not first.flags.writeable
    index.delete(np.array([0]))
    assert np.flatnonzero(index.mask({"lang": "ko"})).tolist() == [3]
    assert np.flatnonzero(index.mask({"nope": {"$exists": False}})).tolist() == [1, 2, 3, 4, 5]
    index.append([{"lang": "ko"}])
    assert np.flatnonzero(index.mask({"lang": "ko"})).tolist() == [3, 6]
    index.update({3: {"lang": "en", "year": 5}})
    assert np.flatnonzero(index.mask({"lang": "ko"})).tolist() == [6]
    assert np.flatnonzero(index.mask({"year": {"$lt": 10}})).tolist() == [3, 4]
    assert np.flatnonzero(index.mask({"tags": "sport"})).tolist() == []


# ------------------------------------------------------------------- randomized: reference, upkeep

_FIELDS = ["a", "b", "c.d"]
_QUERY_FIELDS = [*_FIELDS, "c"]
_VALUES = [0, 1, 2, 2.5, "x", "y", True, False]


def _random_meta(rng) -> dict:
    meta: dict = {}
    for f in _FIELDS:
        roll = rng.random()
        if roll < 0.3:
            continue
        if roll < 0.5:
            value = [_VALUES[i] for i in rng.integers(0, len(_VALUES), rng.integers(0, 3))]
        else:
            value = _VALUES[rng.integers(0, len(_VALUES))]
        if f == "c.d":
            meta["c"] = {"d": value}
        else:
            meta[f] = value
    return meta


def _random_filter(rng, depth=0) -> dict:
    roll = rng.random()
    if depth < 2 and roll < 0.3:
        op = ["$and", "$or"][rng.integers(0, 2)]
        return {op: [_random_filter(rng, depth + 1) for _ in range(rng.integers(1, 4))]}
    if depth < 2 and roll < 0.4:
        return {"$not": _random_filter(rng, depth + 1)}
    field = _QUERY_FIELDS[rng.integers(0, 4)] if rng.random() < 0.9 else "missing"
    op = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"][rng.integers(0, 9)]
    if op in ("$in", "$nin"):
        value = [_VALUES[i] for i in rng.integers(0, len(_VALUES), rng.integers(0, 3))]
    elif op == "$exists":
        value = bool(rng.integers(0, 2))
    elif op.startswith(("$g", "$l")):
        value = [0, 1, 2.5, "x", "w"][rng.integers(0, 5)]
    else:
        value = _VALUES[rng.integers(0, len(_VALUES))]
    return {field: {op: value}}


def test_masks_equal_the_reference_on_random_metadata_and_filters():
    rng = np.random.default_rng(7)
    docs = [_random_meta(rng) for _ in range(300)]
    index = _index(docs)
    for _ in range(300):
        spec = _random_filter(rng)
        node = parse(spec)
        expected = [i for i, d in enumerate(docs) if matches(node, d)]
        assert np.flatnonzero(index.mask(spec)).tolist() == expected, spec


def test_incremental_upkeep_equals_a_rebuild_after_random_writes():
    rng = np.random.default_rng(11)
    index = MetadataIndex()
    current: dict[int, dict] = {}
    n_rows = 0
    for _ in range(40):
        action = rng.random()
        live = sorted(current)
        if action < 0.5 or not live:
            batch = [_random_meta(rng) for _ in range(rng.integers(1, 20))]
            index.append(batch)
            current.update({n_rows + i: m for i, m in enumerate(batch)})
            n_rows += len(batch)
        elif action < 0.75:
            rows = rng.choice(live, size=min(len(live), rng.integers(1, 6)), replace=False)
            index.delete(rows)
            for r in rows.tolist():
                del current[r]
        else:
            rows = rng.choice(live, size=min(len(live), rng.integers(1, 6)), replace=False)
            updates = {int(r): _random_meta(rng) for r in rows}
            index.update(updates)
            current.update(updates)
        fresh = MetadataIndex()
        fresh.rebuild(n_rows, sorted(current.items()))
        for _ in range(10):
            spec = _random_filter(rng)
            np.testing.assert_array_equal(index.mask(spec), fresh.mask(spec), err_msg=str(spec))
            node = parse(spec)
            expected = [r for r in sorted(current) if matches(node, current[r])]
            assert np.flatnonzero(fresh.mask(spec)).tolist() == expected
