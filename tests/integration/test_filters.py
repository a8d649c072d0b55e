"""The filter language against the database, checked with a small Python reference evaluator.

Every filter below runs through the service (count, list and delete use the same compiler)
and through the reference over the same documents; the sets of matching ids must agree, on
SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from taskloom.errors import Invalid

from .conftest import error_of

# -- the reference --------------------------------------------------------------------------------

MISSING = object()


def resolve(doc: dict[str, Any], path: str) -> Any:
    node: Any = doc
    for seg in path.split("."):
        if not isinstance(node, dict) or seg not in node:
            return MISSING
        node = node[seg]
    return node


def is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def ref_scalar_eq(v: Any, x: Any) -> bool:
    if x is None:
        return v is None or v is MISSING
    if isinstance(x, bool):
        return isinstance(v, bool) and v == x
    if is_num(x):
        return is_num(v) and v == x
    return isinstance(v, str) and v == x


def ref_eq(v: Any, x: Any) -> bool:
    """MongoDB's equality: a value equal to ``x``, or an array with an element that is."""
    if isinstance(v, list):
        return any(ref_scalar_eq(e, x) for e in v)
    return ref_scalar_eq(v, x)


RE2_OPTIONS = re2.Options()
RE2_OPTIONS.dot_nl = True  # PostgreSQL's "." matches newlines


def ref_order(v: Any, op: str, x: Any) -> bool:
    same = (is_num(v) and is_num(x)) or (isinstance(v, str) and isinstance(x, str))
    if not same:
        return False
    return {"$lt": v < x, "$lte": v <= x, "$gt": v > x, "$gte": v >= x}[op]


def ref_cond(v: Any, op: str, x: Any) -> bool:
    if op == "$eq":
        return ref_eq(v, x)
    if op == "$ne":
        return not ref_eq(v, x)
    if op == "$in":
        return any(ref_eq(v, y) for y in x)
    if op == "$nin":
        return not any(ref_eq(v, y) for y in x)
    if op == "$exists":
        return (v is not MISSING) == x
    if op == "$contains":
        if isinstance(v, str) and isinstance(x, str):
            return x in v
        return isinstance(v, list) and any(ref_scalar_eq(e, x) for e in v)
    if op == "$regex":
        return isinstance(v, str) and re2.compile(x, RE2_OPTIONS).search(v) is not None
    return ref_order(v, op, x)


def ref_match(doc: dict[str, Any], flt: dict[str, Any]) -> bool:
    for key, cond in flt.items():
        if key == "$and":
            ok = all(ref_match(doc, f) for f in cond)
        elif key == "$or":
            ok = any(ref_match(doc, f) for f in cond)
        elif key == "$not":
            ok = not ref_match(doc, cond)
        else:
            ops = cond if isinstance(cond, dict) else {"$eq": cond}
            if key.endswith("_vector_") and "." not in key:
                # vectors: only $exists; a vector is there or not
                value = doc.get(key, MISSING)
            else:
                value = resolve(doc, key)
            ok = all(ref_cond(value, op, x) for op, x in ops.items())
        if not ok:
            return False
    return True


# -- the data -------------------------------------------------------------------------------------

DOCS: list[dict[str, Any]] = [
    {"_id": "a", "price": 5, "name": "apple", "meta": {"source": "web", "rank": 1}, "ok": True},
    {"_id": "B", "price": 9.5, "name": "Banana", "meta": {"source": "pdf"}, "ok": False},
    {"_id": "c", "price": "9", "name": "cherry", "meta": {"source": None}},
    {"_id": "d", "price": None, "name": "date", "meta": "web", "tags": ["x", "y"]},
    {"_id": "e", "name": "Éclair", "meta": {"source": "web", "deep": {"er": 3}}, "ok": True},
    {"_id": "f", "price": 0, "name": "", "meta": {}, "tags": [], "v_vector_": [1.0, 2.0]},
    {"_id": "g", "price": -2, "name": "fig", "ok": 1, "count": 1, "v_vector_": [3.0, 4.0]},
    {"_id": "h", "price": 1e20, "name": "zeta", "tags": {"0": "x"}, "w_vector_": [1.0]},
    {"_id": "i", "price": 2.0, "name": "ápple", "meta": {"rank": 2.5}, "count": True},
    {"_id": "j", "price": True, "name": "Zed", "meta": {"source": "Web"}, "count": 0},
    {"_id": "k", "price": [5], "name": "5", "meta": {"source": 5}},
    {"_id": "l", "price": {"value": 5}, "name": None, "meta": {"source": ["web"]}},
    {"_id": "m", "price": 5.0, "name": "apple pie", "meta": {"source": "web", "rank": 10}},
    {"_id": "n", "price": 0.1, "name": "😀", "meta": {"source": "zzz"}},
    {"_id": "o", "price": 100, "name": "banana", "x": {"y": {"z": {"w": 1}}}},
    {"_id": "p", "price": 4.999999, "name": "Apple", "ok": None, "count": -0.5},
    {"_id": "q", "price": 9007199254740993, "name": "big"},
    {"_id": "r", "price": "10", "name": "ten", "meta": {"source": "web", "rank": "1"}},
    {"_id": "s", "name": "sierra", "meta": None},
    {"_id": "t", "price": -0.0, "name": "a b", "meta": {"source": "web"}, "ok": False},
    {
        "_id": "u",
        "price": 3,
        "name": "line\nbreak",
        "tags": ["a", "b", 5, None, True, ["x"], {"k": "x"}],
        "ok": [False, 1],
    },
]

FILTERS: list[dict[str, Any]] = [
    # $eq and the scalar shorthand
    {"price": 5},
    {"price": 5.0},
    {"price": {"$eq": 9.5}},
    {"price": "9"},
    {"price": 9},
    {"price": True},
    {"price": 1},
    {"price": 0},
    {"price": 9007199254740993},
    {"price": 9007199254740992},
    {"price": None},
    {"price": {"$eq": None}},
    {"name": "apple"},
    {"name": ""},
    {"name": "😀"},
    {"ok": True},
    {"ok": False},
    {"ok": 1},
    {"count": True},
    {"count": 1},
    {"count": 0},
    # $ne
    {"price": {"$ne": 5}},
    {"price": {"$ne": None}},
    {"ok": {"$ne": True}},
    {"name": {"$ne": "apple"}},
    {"meta.source": {"$ne": "web"}},
    # ordering: numbers with numbers, strings with strings
    {"price": {"$gt": 5}},
    {"price": {"$gte": 5}},
    {"price": {"$lt": 5}},
    {"price": {"$lte": 5}},
    {"price": {"$gt": 0, "$lt": 10}},
    {"price": {"$gt": -1.5}},
    {"price": {"$gte": 1e19}},
    {"price": {"$gt": "5"}},
    {"price": {"$lt": "9"}},
    {"name": {"$gt": "apple"}},
    {"name": {"$lt": "a"}},
    {"name": {"$gte": "Z"}},
    {"name": {"$lt": "b", "$gte": "a"}},
    {"name": {"$gt": "zeta"}},
    {"name": {"$gt": "é"}},
    {"meta.rank": {"$gte": 1}},
    {"meta.rank": {"$lt": 5}},
    {"count": {"$lt": 1}},
    # $in / $nin
    {"price": {"$in": [5, "9", None]}},
    {"price": {"$in": [9.5, 100, True]}},
    {"price": {"$in": []}},
    {"price": {"$nin": [5, 0]}},
    {"price": {"$nin": []}},
    {"price": {"$nin": [None]}},
    {"name": {"$in": ["apple", "Apple", "banana"]}},
    {"meta.source": {"$nin": ["web", "pdf"]}},
    {"ok": {"$in": [True, None]}},
    # $exists
    {"price": {"$exists": True}},
    {"price": {"$exists": False}},
    {"ok": {"$exists": True}},
    {"meta.source": {"$exists": True}},
    {"meta.source": {"$exists": False}},
    {"meta": {"$exists": True}},
    {"tags": {"$exists": True}},
    {"x.y.z.w": {"$exists": True}},
    {"x.y.z": {"$exists": True}},
    {"v_vector_": {"$exists": True}},
    {"v_vector_": {"$exists": False}},
    {"w_vector_": {"$exists": True}},
    {"nothing_vector_": {"$exists": True}},
    # dotted paths
    {"meta.source": "web"},
    {"meta.source": None},
    {"meta.source": 5},
    {"meta.deep.er": 3},
    {"meta.deep.er": {"$gt": 2}},
    {"x.y.z.w": 1},
    {"meta.source": "Web"},
    # paths through things that are not objects find nothing
    {"tags.0": "x"},
    {"tags.0": {"$exists": True}},
    {"tags.1": "y"},
    {"tags.-1": "y"},
    {"tags.+0": "x"},
    {"tags. 0": "x"},
    {"meta.source.0": "web"},
    {"price.value": 5},
    {"name.first": {"$exists": False}},
    # an array is equal to a scalar when one of its elements is (MongoDB's meaning);
    # $ne / $nin: no element is; an object never is; ordering never looks into arrays
    {"tags": "x"},
    {"tags": "a"},
    {"tags": 5},
    {"tags": 5.0},
    {"tags": True},
    {"tags": 1},
    {"tags": None},
    {"tags": {"$ne": None}},
    {"tags": {"$in": ["a"]}},
    {"tags": {"$in": ["y", 7, "zz"]}},
    {"tags": {"$in": [False, None]}},
    {"tags": {"$in": [5.0, True]}},
    {"tags": {"$ne": "x"}},
    {"tags": {"$ne": "zz"}},
    {"tags": {"$nin": ["x", "a"]}},
    {"tags": {"$nin": ["b", 5]}},
    {"tags": {"$nin": []}},
    {"tags": {"$gt": "a"}},
    {"tags": {"$gte": 5}},
    {"ok": False},
    {"ok": {"$in": [1]}},
    {"ok": {"$ne": False}},
    {"price": {"$in": [5]}},
    {"price": {"$nin": [5]}},
    {"meta.source": {"$in": ["web"]}},
    {"meta.source": {"$ne": "web"}},
    {"tags.k": "x"},
    {"meta": "web"},
    # _id
    {"_id": "a"},
    {"_id": {"$ne": "a"}},
    {"_id": {"$in": ["a", "B", "zz"]}},
    {"_id": {"$nin": ["a", "B"]}},
    {"_id": {"$gt": "a"}},
    {"_id": {"$lt": "a"}},
    {"_id": {"$gte": "B", "$lte": "d"}},
    {"_id": {"$exists": True}},
    {"_id": {"$exists": False}},
    # combinators
    {"$and": [{"price": {"$gte": 1}}, {"meta.source": "web"}]},
    {"$or": [{"price": "9"}, {"name": "fig"}, {"ok": False}]},
    {"$or": [{"price": {"$exists": False}}, {"price": None}]},
    {"$and": [{"$or": [{"ok": True}, {"ok": False}]}, {"price": {"$ne": 5}}]},
    {"$or": [{"$and": [{"price": {"$gt": 1}}, {"price": {"$lt": 6}}]}, {"_id": "s"}]},
    {"price": {"$gte": 0}, "name": {"$lt": "c"}, "$or": [{"ok": True}, {"meta.rank": 10}]},
    {"$and": [{"v_vector_": {"$exists": True}}, {"price": {"$lt": 0}}]},
    # $contains: substrings of strings, elements of arrays
    {"name": {"$contains": "pple"}},
    {"name": {"$contains": ""}},
    {"name": {"$contains": "É"}},
    {"name": {"$contains": "A"}},
    {"tags": {"$contains": "x"}},
    {"tags": {"$contains": "z"}},
    {"tags": {"$contains": None}},
    {"price": {"$contains": 5}},
    {"price": {"$contains": 5.0}},
    {"price": {"$contains": "9"}},
    {"meta.source": {"$contains": "web"}},
    {"ok": {"$contains": True}},
    {"_id": {"$contains": "B"}},
    # $regex: a search in strings only
    {"name": {"$regex": "^a"}},
    {"name": {"$regex": "an+a$"}},
    {"name": {"$regex": "[A-Z]"}},
    {"name": {"$regex": "\\d"}},
    {"name": {"$regex": "(?:pp|rr)"}},
    {"name": {"$regex": "^.{4}$"}},
    {"meta.source": {"$regex": "^w"}},
    {"price": {"$regex": "9"}},
    {"_id": {"$regex": "^[a-c]$"}},
    {"name": {"$regex": "e.b"}},  # "." matches a newline, as on PostgreSQL
    {"name": {"$regex": "e$"}},
    {"name": {"$regex": "(a+)+$"}},
    {"name": {"$regex": "^(?:[a-z]+ ?)+$"}},
    {"name": {"$regex": "[[:upper:]]"}},
    {"name": {"$regex": "p{2}"}},
    {"tags": {"$regex": "a"}},
    # $not
    {"$not": {"price": {"$gt": 5}}},
    {"$not": {"$or": [{"name": {"$regex": "^a"}}, {"tags": {"$contains": "x"}}]}},
    {"price": {"$gte": 0}, "$not": {"ok": True}},
    {"$not": {"$not": {"meta.source": "web"}}},
    {},
]


@pytest.fixture
def ds(services, scope) -> str:
    services.datasets.create(scope, "flt")
    out = services.documents.insert(scope, "flt", DOCS)
    assert out == {"inserted": len(DOCS), "failed": []}
    return "flt"


def ids_of(services, scope, ds, flt) -> set[str]:
    page = services.documents.list(scope, ds, filter=flt, page_size=1000, include_vector=False)
    assert page["cursor"] is None
    return {d["_id"] for d in page["documents"]}


def test_reference_is_sane():
    """A few hand-checked answers, so that the reference itself is not wrong."""

    def ref(f):
        return {d["_id"] for d in DOCS if ref_match(d, f)}

    assert ref({"price": {"$gt": 5}}) == {"B", "h", "o", "q"}
    assert "c" not in ref({"price": {"$gt": 5}})  # the string "9"
    assert ref({"price": None}) >= {"d", "e", "s"}
    assert "j" not in ref({"price": 1})  # True is not 1
    assert ref({"v_vector_": {"$exists": True}}) == {"f", "g"}
    assert ref({"_id": {"$lt": "a"}}) == {"B"}


@pytest.mark.parametrize("chunk", range(4))
def test_filters_match_the_reference(services, scope, ds, chunk):
    mismatches = []
    part = FILTERS[chunk::4]
    for flt in part:
        want = {d["_id"] for d in DOCS if ref_match(d, flt)}
        got = ids_of(services, scope, ds, flt)
        count = services.documents.count(scope, ds, flt)
        if got != want or count != len(want):
            mismatches.append(
                f"{flt}: extra {sorted(got - want)}, missing {sorted(want - got)}, count {count}"
            )
    assert not mismatches, "\n".join(mismatches)


def test_type_guarded_comparison_does_not_match_numeric_strings(services, scope, ds):
    """The issue's own example: a number filter never matches a string that looks like one."""
    got = ids_of(services, scope, ds, {"price": {"$gt": 5}})
    assert "c" not in got and "r" not in got
    assert {"B", "o"} <= got
    assert ids_of(services, scope, ds, {"price": {"$gt": "5"}}) == {"c"}


def test_ne_and_nin_match_documents_without_the_field(services, scope, ds):
    without_price = {d["_id"] for d in DOCS if "price" not in d}
    assert without_price == {"e", "s"}
    assert without_price <= ids_of(services, scope, ds, {"price": {"$ne": 5}})
    assert without_price <= ids_of(services, scope, ds, {"price": {"$nin": [5, 9.5]}})


@pytest.mark.skipif(
    not os.environ.get("TASKLOOM_TEST_DATABASE_URL"), reason="PostgreSQL collations"
)
def test_id_order_is_code_point_order_whatever_the_database_collation(services, scope, ds):
    """A database created with a natural-language collation (en_US.UTF-8 and the like) must
    not change what ``$lt``/``$gt`` on ``_id`` mean."""
    store = services.datasets.store
    with store.write() as conn:
        conn.execute(
            text('ALTER TABLE documents ALTER COLUMN doc_id TYPE varchar(255) COLLATE "und-x-icu"')
        )
    for flt in (
        {"_id": {"$lt": "a"}},
        {"_id": {"$gt": "B", "$lt": "c"}},
        {"_id": {"$gte": "B", "$lte": "d"}},
    ):
        want = {d["_id"] for d in DOCS if ref_match(d, flt)}
        assert ids_of(services, scope, ds, flt) == want, flt


def test_delete_by_filter_uses_the_same_language(services, scope, ds):
    flt = {"$or": [{"price": {"$lt": 1}}, {"meta.source": None}]}
    want = {d["_id"] for d in DOCS if ref_match(d, flt)}
    assert services.documents.delete(scope, ds, filter=flt) == {"deleted": len(want)}
    left = ids_of(services, scope, ds, None)
    assert left == {d["_id"] for d in DOCS} - want


def test_filters_through_the_api(http, ds):
    for flt in [{"price": {"$gt": 5}}, {"meta.source": {"$ne": "web"}}, {"_id": {"$in": ["a"]}}]:
        want = {d["_id"] for d in DOCS if ref_match(d, flt)}
        r = http.post(
            "/v1/datasets/flt/documents/query",
            json={"filter": flt, "page_size": 100, "include_vector": False},
        )
        assert r.status_code == 200, r.text
        assert {d["_id"] for d in r.json()["data"]} == want
        r = http.post("/v1/datasets/flt/documents/count", json={"filter": flt})
        assert r.json() == {"count": len(want)}


# -- bad filters ----------------------------------------------------------------------------------

BAD_FILTERS = [
    ({"price": {"$foo": 1}}, "filter.price.$foo"),
    ({"$foo": [{"a": 1}]}, "filter.$foo"),
    ({"$not": [{"a": 1}]}, "filter.$not"),
    ({"$not": {"a": {"$foo": 1}}}, "filter.$not.a.$foo"),
    ({"name": {"$contains": ["a"]}}, "filter.name.$contains"),
    ({"name": {"$contains": {"a": 1}}}, "filter.name.$contains"),
    ({"_id": {"$contains": 5}}, "filter._id.$contains"),
    ({"name": {"$regex": "("}}, "filter.name.$regex"),
    ({"name": {"$regex": ""}}, "filter.name.$regex"),
    ({"name": {"$regex": 5}}, "filter.name.$regex"),
    ({"name": {"$regex": "(?P<x>a)"}}, "filter.name.$regex"),
    ({"name": {"$regex": "\\bword"}}, "filter.name.$regex"),
    ({"name": {"$regex": "a" * 300}}, "filter.name.$regex"),
    ({"_id": {"$regex": "(?i)a"}}, "filter._id.$regex"),
    # lookaround and back-references: no linear-time engine has them
    ({"name": {"$regex": "a(?=b)"}}, "filter.name.$regex"),
    ({"name": {"$regex": "a(?!b)"}}, "filter.name.$regex"),
    ({"name": {"$regex": "(?<=a)b"}}, "filter.name.$regex"),
    ({"name": {"$regex": "(a)\\1"}}, "filter.name.$regex"),
    ({"name": {"$regex": "a{256}"}}, "filter.name.$regex"),
    ({"name": {"$regex": "a{1,300}"}}, "filter.name.$regex"),
    # integers beyond 64 bits
    ({"price": 2**63}, "filter.price.$eq"),
    ({"price": {"$gt": 2**64}}, "filter.price.$gt"),
    ({"price": {"$lte": -(2**63) - 1}}, "filter.price.$lte"),
    ({"price": {"$in": [1, 2**70]}}, "filter.price.$in"),
    ({"price": {"$nin": [2**63]}}, "filter.price.$nin"),
    ({"tags": {"$contains": 2**64}}, "filter.tags.$contains"),
    ({"_id": 2**64}, "filter._id.$eq"),
    # lone surrogates
    ({"name": "\ud800"}, "filter.name.$eq"),
    ({"name": {"$regex": "a\udfff"}}, "filter.name.$regex"),
    ({"name": {"$in": ["a", "\ud800"]}}, "filter.name.$in"),
    ({"name": {"$gt": "\ud800"}}, "filter.name.$gt"),
    ({"name": {"$contains": "\ud800"}}, "filter.name.$contains"),
    ({"_id": "\ud800"}, "filter._id.$eq"),
    ({"_id": {"$regex": "\ud800"}}, "filter._id.$regex"),
    ({"\ud800": 1}, "filter"),
    ({"meta": {"$\ud800": 1}}, "filter.meta"),
    ({"v_vector_": {"$contains": 1.0}}, "filter.v_vector_.$contains"),
    ({"price": {"$in": 5}}, "filter.price.$in"),
    ({"price": {"$nin": "abc"}}, "filter.price.$nin"),
    ({"price": {"$in": [[1]]}}, "filter.price.$in"),
    ({"price": {"$in": [{"a": 1}]}}, "filter.price.$in"),
    ({"_id": {"$in": [None]}}, "filter._id.$in"),
    ({"_id": True}, "filter._id.$eq"),
    ({"_id": {"$in": "a"}}, "filter._id.$in"),
    ({"$and": []}, "filter.$and"),
    ({"$or": {"a": 1}}, "filter.$or"),
    ({"$and": [{"a": 1}, 5]}, "filter.$and[1]"),
    ({"$or": [{"a": {"$gt": [1]}}]}, "filter.$or[0].a.$gt"),
    ({"meta": {"source": "web"}}, "filter.meta"),
    ({"meta": {"$eq": 1, "source": "web"}}, "filter.meta"),
    ({"price": {}}, "filter.price"),
    ({"price": {"$eq": {"a": 1}}}, "filter.price.$eq"),
    ({"price": [1, 2]}, "filter.price.$eq"),
    ({"price": {"$gt": None}}, "filter.price.$gt"),
    ({"price": {"$gt": True}}, "filter.price.$gt"),
    ({"price": {"$lte": [1]}}, "filter.price.$lte"),
    ({"price": {"$exists": 1}}, "filter.price.$exists"),
    ({"price": {"$exists": "yes"}}, "filter.price.$exists"),
    ({"_id": {"$exists": None}}, "filter._id.$exists"),
    ({"a..b": 1}, "filter.a..b"),
    ({".a": 1}, "filter..a"),
    ({"a.": 1}, "filter.a."),
    ({"": 1}, "filter."),
    ({'a"b': 1}, 'filter.a"b'),
    ({"a\\b": 1}, "filter.a\\b"),
    ({"v_vector_": {"$gt": 1}}, "filter.v_vector_.$gt"),
    ({"v_vector_": [1.0, 2.0]}, "filter.v_vector_.$eq"),
    ({"v_vector_": {"$exists": "no"}}, "filter.v_vector_.$exists"),
]


@pytest.mark.parametrize(("flt", "field"), BAD_FILTERS)
def test_bad_filters_are_invalid_filter_with_a_field(services, scope, ds, flt, field):
    for call in (
        lambda: services.documents.count(scope, ds, flt),
        lambda: services.documents.list(scope, ds, filter=flt),
        lambda: services.documents.delete(scope, ds, filter=flt),
    ):
        with pytest.raises(Invalid) as ei:
            call()
        assert (ei.value.code, ei.value.field, ei.value.status_code) == (
            "invalid_filter",
            field,
            422,
        )
    assert services.documents.count(scope, ds) == len(DOCS)


@pytest.mark.parametrize("flt", [[1], "price", 5, True, [{"a": 1}]])
def test_a_filter_that_is_not_an_object(services, scope, ds, http, flt):
    with pytest.raises(Invalid) as ei:
        services.documents.count(scope, ds, flt)
    assert (ei.value.code, ei.value.field) == ("invalid_filter", "filter")
    for path in ("query", "count", "delete"):
        r = http.post(f"/v1/datasets/flt/documents/{path}", json={"filter": flt})
        err = error_of(r, 422, "invalid_filter")
        assert err["details"]["field"] == "filter"
    assert services.documents.count(scope, ds) == len(DOCS)


def test_a_filter_nested_too_deeply(services, scope, ds):
    flt: dict[str, Any] = {"a": 1}
    for _ in range(20):
        flt = {"$and": [flt]}
    with pytest.raises(Invalid) as ei:
        services.documents.count(scope, ds, flt)
    assert ei.value.code == "invalid_filter"
    assert ei.value.field.startswith("filter.$and[0]")


@pytest.mark.parametrize(
    ("flt", "field"),
    [
        ({"price": {"$foo": 1}}, "filter.price.$foo"),
        ({"meta": {"source": "web"}}, "filter.meta"),
        ({"a..b": 1}, "filter.a..b"),
        ({"price": {"$in": 5}}, "filter.price.$in"),
    ],
)
def test_bad_filters_over_http(http, ds, flt, field):
    for path in ("query", "count", "delete"):
        r = http.post(f"/v1/datasets/flt/documents/{path}", json={"filter": flt})
        err = error_of(r, 422, "invalid_filter")
        assert err["details"]["field"] == field
    import json

    r = http.get("/v1/datasets/flt/documents", params={"filter": json.dumps(flt)})
    assert error_of(r, 422, "invalid_filter")["details"]["field"] == field
    r = http.get("/v1/datasets/flt/documents", params={"filter": "{not json"})
    assert error_of(r, 422, "invalid_filter")["details"]["field"] == "filter"
    assert http.post("/v1/datasets/flt/documents/count", json={}).json() == {"count": len(DOCS)}


# -- values the databases cannot hold, over HTTP (each was a 500) ---------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"filter": {"name": "\\ud800"}}', "filter.name.$eq"),
        ('{"filter": {"name": {"$regex": "\\ud800+"}}}', "filter.name.$regex"),
        ('{"filter": {"\\udfff": 1}}', "filter"),
        ('{"filter": {"price": {"$gt": 9223372036854775808}}}', "filter.price.$gt"),
        ('{"filter": {"price": 9223372036854775808}}', "filter.price.$eq"),
        ('{"filter": {"price": {"$in": [1, 99999999999999999999999]}}}', "filter.price.$in"),
    ],
)
def test_unstorable_filter_values_are_4xx_over_http(http, ds, raw, field):
    headers = {"content-type": "application/json"}
    for path in ("query", "count", "delete"):
        r = http.post(f"/v1/datasets/flt/documents/{path}", content=raw, headers=headers)
        err = error_of(r, 422, "invalid_filter")
        assert err["details"]["field"] == field
    assert http.post("/v1/datasets/flt/documents/count", json={}).json() == {"count": len(DOCS)}


def test_search_filters_refuse_unstorable_values(http):
    http.post("/v1/datasets", json={"name": "sv"}).raise_for_status()
    docs = [{"_id": str(i), "n": i, "v_vector_": [1.0, float(i)]} for i in range(3)]
    r = http.post("/v1/datasets/sv/documents", json={"documents": docs})
    assert r.status_code == 200, r.text
    headers = {"content-type": "application/json"}
    for flt, field in (
        ('{"n": {"$gte": 18446744073709551616}}', "filter.n.$gte"),
        ('{"n": "\\ud800"}', "filter.n.$eq"),
    ):
        raw = '{"vector": [1.0, 0.0], "vector_field": "v_vector_", "filter": ' + flt + "}"
        r = http.post("/v1/datasets/sv/search", content=raw, headers=headers)
        assert error_of(r, 422, "invalid_filter")["details"]["field"] == field
    r = http.post(
        "/v1/datasets/sv/search",
        json={
            "vector": [1.0, 0.0],
            "vector_field": "v_vector_",
            "top_k": 3,
            "filter": {"n": {"$gte": 2**62}},
        },
    )
    assert r.status_code == 200, r.text


def test_array_fields_match_their_elements_over_http(http, ds):
    """The issue's example: ``{"tags": "a"}`` and ``$in`` find the document tagged a and b."""
    for flt, want in (
        ({"tags": "a"}, {"u"}),
        ({"tags": {"$in": ["a"]}}, {"u"}),
        ({"tags": {"$in": ["y", "b"]}}, {"d", "u"}),
        ({"tags": {"$contains": "a"}}, {"u"}),
    ):
        r = http.post("/v1/datasets/flt/documents/query", json={"filter": flt})
        assert r.status_code == 200, r.text
        assert {d["_id"] for d in r.json()["data"]} == want, flt
    r = http.post("/v1/datasets/flt/documents/count", json={"filter": {"tags": {"$ne": "a"}}})
    assert r.json() == {"count": len(DOCS) - 1}
    r = http.post(
        "/v1/datasets/flt/documents/count", json={"filter": {"tags": {"$nin": ["a", "x"]}}}
    )
    assert r.json() == {"count": len(DOCS) - 2}


# -- arrays, property-based: random filters over random documents, against the reference ------

ARRAY_SCALARS = ["a", "b", "", 0, 1, 1.5, -2, True, False, None]


def _array_docs() -> list[dict[str, Any]]:
    import random

    rnd = random.Random(11)
    docs: list[dict[str, Any]] = []
    for i in range(40):
        doc: dict[str, Any] = {"_id": f"r{i}"}
        shape = rnd.randrange(4)
        if shape == 0:
            doc["v"] = rnd.choice(ARRAY_SCALARS)
        elif shape == 1:
            doc["v"] = [rnd.choice(ARRAY_SCALARS) for _ in range(rnd.randrange(4))]
        elif shape == 2:
            doc["v"] = [[rnd.choice(ARRAY_SCALARS)], rnd.choice(ARRAY_SCALARS)]
        docs.append(doc)  # shape 3: no field at all
    return docs


ARRAY_DOCS = _array_docs()


@pytest.fixture
def array_ds(services, scope) -> str:
    services.datasets.create(scope, "arr")
    assert services.documents.insert(scope, "arr", ARRAY_DOCS)["failed"] == []
    return "arr"


def test_array_semantics_match_the_reference_for_random_filters(services, scope, array_ds):
    scalar = st.sampled_from(ARRAY_SCALARS + [2, "c"])
    cond = st.one_of(
        scalar,
        st.builds(lambda op, v: {op: v}, st.sampled_from(["$eq", "$ne"]), scalar),
        st.builds(
            lambda op, vs: {op: vs},
            st.sampled_from(["$in", "$nin"]),
            st.lists(scalar, max_size=4),
        ),
    )
    flt = st.one_of(
        st.builds(lambda c: {"v": c}, cond),
        st.builds(lambda a, b: {"$or": [{"v": a}, {"v": b}]}, cond, cond),
        st.builds(lambda c: {"$not": {"v": c}}, cond),
    )

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(flt)
    def check(f: dict[str, Any]) -> None:
        want = {d["_id"] for d in ARRAY_DOCS if ref_match(d, f)}
        assert ids_of(services, scope, array_ds, f) == want, f

    check()
