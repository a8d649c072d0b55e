"""Compiling filters, without a database: what is refused and where the error points."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from taskloom.errors import Invalid
from taskloom.store.filters import MAX_DEPTH, FilterCompiler
from taskloom.store.tables import documents

DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}


@pytest.fixture(params=sorted(DIALECTS))
def compiler(request) -> FilterCompiler:
    return FilterCompiler(documents, request.param)


def sql(compiler: FilterCompiler, flt: Any) -> str:
    dialect = DIALECTS["postgresql" if compiler.pg else "sqlite"]
    return str(compiler.compile(flt).compile(dialect=dialect))


@pytest.mark.parametrize(
    ("flt", "field"),
    [
        ([], "filter"),
        ("a", "filter"),
        (3, "filter"),
        ({"a": {"$regex": "(x"}}, "filter.a.$regex"),
        ({"a": {"$match": "x"}}, "filter.a.$match"),
        ({"$nor": [{"a": 1}]}, "filter.$nor"),
        ({"$and": "x"}, "filter.$and"),
        ({"$or": []}, "filter.$or"),
        ({"$or": [{"a": 1}, []]}, "filter.$or[1]"),
        ({"a": {"$in": {"x": 1}}}, "filter.a.$in"),
        ({"a": {"$in": [1, [2]]}}, "filter.a.$in"),
        ({"a": {"$in": list(range(10_001))}}, "filter.a.$in"),
        ({"a": {"b": 1}}, "filter.a"),
        ({"a": {}}, "filter.a"),
        ({"a": {"$gt": {}}}, "filter.a.$gt"),
        ({"a": {"$lt": False}}, "filter.a.$lt"),
        ({"a": {"$exists": "true"}}, "filter.a.$exists"),
        ({"a..b": 1}, "filter.a..b"),
        ({"a.b.": 1}, "filter.a.b."),
        ({'x"y': 1}, 'filter.x"y'),
        ({"_id": 1.5}, "filter._id.$eq"),
        ({"_id": {"$nin": [1, None]}}, "filter._id.$nin"),
        ({"e_vector_": {"$in": [1]}}, "filter.e_vector_.$in"),
        ({"$and": [{"$or": [{"a": {"$bad": 1}}]}]}, "filter.$and[0].$or[0].a.$bad"),
    ],
)
def test_bad_filters(compiler, flt, field):
    with pytest.raises(Invalid) as ei:
        compiler.compile(flt)
    err = ei.value
    assert (err.code, err.field, err.status_code) == ("invalid_filter", field, 422)
    assert err.details == {"field": field}
    assert err.message


def test_the_error_names_where_it_is(compiler):
    compiler.compile({"ok": 1}, where="body.filter")
    with pytest.raises(Invalid) as ei:
        compiler.compile({"a": {"$what": 1}}, where="body.filter")
    assert ei.value.field == "body.filter.a.$what"


def test_depth_limit(compiler):
    flt: dict[str, Any] = {"a": 1}
    for _ in range(MAX_DEPTH):
        flt = {"$or": [flt]}
    compiler.compile(flt)  # exactly at the limit
    with pytest.raises(Invalid) as ei:
        compiler.compile({"$or": [flt]})
    assert "deep" in ei.value.message


@pytest.mark.parametrize(
    "flt",
    [
        None,
        {},
        {"a": 1},
        {"a.b.c": {"$gte": 1.5, "$lt": "z"}},
        {"a": None},
        {"a": {"$ne": True}},
        {"a": {"$in": []}},
        {"a": {"$nin": ["x", 1, None, False]}},
        {"a": {"$exists": False}},
        {"_id": {"$in": ["a", 1]}, "_id.x": 1},
        {"x_vector_": {"$exists": True}},
        {"meta.x_vector_": 1},  # only top-level names are vectors
        {"$and": [{"a": 1}], "$or": [{"b": 2}, {"c": {"$lt": 3}}]},
        {"tags.0": "x", "tags.-1": {"$exists": True}},
        {"ünï cödé": "✓"},
    ],
)
def test_valid_filters_compile_on_both_dialects(compiler, flt):
    assert sql(compiler, flt)


def test_values_are_bound_not_inlined(compiler):
    text = sql(compiler, {"name": "x'; DROP TABLE documents; --"})
    assert "DROP TABLE" not in text


def test_shorthand_is_eq(compiler):
    assert sql(compiler, {"a": 5}) == sql(compiler, {"a": {"$eq": 5}})
