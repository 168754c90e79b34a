"""Framework filters -> the engine's filter language: hand-worked translations (no engine)."""

from __future__ import annotations

import pytest

from hybrid.integrations.filters import FilterTranslationError, from_haystack, from_llama_index

# ------------------------------------------------------------------------------------ Haystack


def cmp(field, op, value):
    return {"field": field, "operator": op, "value": value}


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("==", "ko", {"lang": {"$eq": "ko"}}),
        ("!=", "ko", {"lang": {"$ne": "ko"}}),
        (">", 2020, {"lang": {"$gt": 2020}}),
        (">=", 2020, {"lang": {"$gte": 2020}}),
        ("<", 2.5, {"lang": {"$lt": 2.5}}),
        ("<=", "2024-01-01", {"lang": {"$lte": "2024-01-01"}}),
        ("in", ["ko", "en"], {"lang": {"$in": ["ko", "en"]}}),
        ("not in", ["ko"], {"lang": {"$nin": ["ko"]}}),
        ("==", None, {"lang": {"$exists": False}}),
        ("!=", None, {"lang": {"$exists": True}}),
    ],
)
def test_haystack_comparisons(op, value, expected):
    assert from_haystack(cmp("meta.lang", op, value)) == expected


def test_haystack_logical_nesting_and_dotted_fields():
    filters = {
        "operator": "AND",
        "conditions": [
            cmp("meta.lang", "==", "ko"),
            {
                "operator": "OR",
                "conditions": [cmp("meta.year", ">=", 2020), cmp("meta.source.site", "==", "wiki")],
            },
            {"operator": "NOT", "conditions": [cmp("meta.tags", "in", ["ads", "spam"])]},
        ],
    }
    assert from_haystack(filters) == {
        "$and": [
            {"lang": {"$eq": "ko"}},
            {"$or": [{"year": {"$gte": 2020}}, {"source.site": {"$eq": "wiki"}}]},
            {"$not": {"tags": {"$in": ["ads", "spam"]}}},
        ]
    }


def test_haystack_not_means_not_all_and_single_conditions_unwrap():
    two = {"operator": "NOT", "conditions": [cmp("meta.a", "==", 1), cmp("meta.b", "==", 2)]}
    assert from_haystack(two) == {"$not": {"$and": [{"a": {"$eq": 1}}, {"b": {"$eq": 2}}]}}
    one = {"operator": "OR", "conditions": [cmp("meta.a", "==", 1)]}
    assert from_haystack(one) == {"a": {"$eq": 1}}
    assert from_haystack(None) is None and from_haystack({}) is None


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (cmp("content", "==", "x"), "field 'content' cannot be filtered"),
        (cmp("meta.", "==", "x"), "field 'meta.' cannot be filtered"),
        (cmp("meta.lang", "like", "x"), "unknown comparison operator 'like'"),
        (cmp("meta.lang", "in", "ko"), "needs a list value"),
        (cmp("meta.year", ">", None), "cannot compare with None"),
        ({"operator": "XOR", "conditions": [cmp("meta.a", "==", 1)]}, "unknown logical"),
        ({"operator": "AND", "conditions": []}, "non-empty list of conditions"),
        ({"field": "meta.a", "value": 1}, "has no 'operator'"),
        ({"operator": "=="}, "must be a comparison"),
        ({"operator": "AND", "conditions": ["x"]}, r"filters.conditions\[0\] must be a dict"),
    ],
)
def test_haystack_errors_name_the_problem(filters, message):
    with pytest.raises(FilterTranslationError, match=message):
        from_haystack(filters)


# ---------------------------------------------------------------------------------- LlamaIndex


@pytest.fixture(scope="module")
def li():
    return pytest.importorskip(
        "llama_index.core.vector_stores.types", reason="needs llama-index-core (extra llamaindex)"
    )


def mf(li, key, value, op="=="):
    return li.MetadataFilter(key=key, value=value, operator=op)


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("==", "ko", {"k": {"$eq": "ko"}}),
        ("!=", "ko", {"k": {"$ne": "ko"}}),
        (">", 1, {"k": {"$gt": 1}}),
        (">=", 1.5, {"k": {"$gte": 1.5}}),
        ("<", 3, {"k": {"$lt": 3}}),
        ("<=", 3, {"k": {"$lte": 3}}),
        ("in", ["a", "b"], {"k": {"$in": ["a", "b"]}}),
        ("nin", ["a"], {"k": {"$nin": ["a"]}}),
        ("any", ["a", "b"], {"k": {"$in": ["a", "b"]}}),
        ("all", ["a", "b"], {"$and": [{"k": {"$eq": "a"}}, {"k": {"$eq": "b"}}]}),
        ("contains", "a", {"k": {"$eq": "a"}}),
        ("is_empty", None, {"$or": [{"k": {"$exists": False}}, {"k": {"$eq": ""}}]}),
        ("==", None, {"k": {"$exists": False}}),
        ("!=", None, {"k": {"$exists": True}}),
    ],
)
def test_llama_index_operators(li, op, value, expected):
    assert from_llama_index(li.MetadataFilters(filters=[mf(li, "k", value, op)])) == expected
    assert from_llama_index(mf(li, "k", value, op)) == expected  # a lone MetadataFilter


def test_llama_index_conditions_and_nesting(li):
    inner = li.MetadataFilters(
        filters=[mf(li, "year", 2020, ">="), mf(li, "source.site", "wiki")], condition="or"
    )
    outer = li.MetadataFilters(filters=[mf(li, "lang", "ko"), inner], condition="and")
    assert from_llama_index(outer) == {
        "$and": [
            {"lang": {"$eq": "ko"}},
            {"$or": [{"year": {"$gte": 2020}}, {"source.site": {"$eq": "wiki"}}]},
        ]
    }
    # NOT in LlamaIndex: none of the filters matches
    none = li.MetadataFilters(filters=[mf(li, "a", 1), mf(li, "b", 2)], condition="not")
    assert from_llama_index(none) == {"$not": {"$or": [{"a": {"$eq": 1}}, {"b": {"$eq": 2}}]}}
    legacy = li.MetadataFilters(filters=[li.ExactMatchFilter(key="lang", value="en")])
    assert from_llama_index(legacy) == {"lang": {"$eq": "en"}}
    assert from_llama_index(None) is None
    assert from_llama_index(li.MetadataFilters(filters=[])) is None


def test_llama_index_errors_name_the_operator(li):
    for op in ("text_match", "text_match_insensitive"):
        with pytest.raises(FilterTranslationError, match=f"{op.upper()} \\(on 'title'\\)"):
            from_llama_index(li.MetadataFilters(filters=[mf(li, "title", "sat", op)]))
    with pytest.raises(FilterTranslationError, match="IN on 'k' needs a list value"):
        from_llama_index(mf(li, "k", "a", "in"))
    nested_empty = li.MetadataFilters(filters=[li.MetadataFilters(filters=[])])
    with pytest.raises(FilterTranslationError, match="nested MetadataFilters has no filters"):
        from_llama_index(nested_empty)
