"""Documents through the service and the API: writes, reads, paging, schema."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from sqlalchemy import event, func, select

from taskloom.errors import Invalid, NotFound
from taskloom.store.tables import documents, vectors


@pytest.fixture
def ds(services, scope) -> str:
    services.datasets.create(scope, "docs")
    return "docs"


def vector_rows(services) -> int:
    with services.datasets.store.read() as conn:
        return conn.execute(select(func.count()).select_from(vectors)).scalar_one()


def document_rows(services) -> int:
    with services.datasets.store.read() as conn:
        return conn.execute(select(func.count()).select_from(documents)).scalar_one()


def f32(values: list[float]) -> dict[str, str]:
    return {"$f32": base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode()}


# -- insert -------------------------------------------------------------------------------------


def test_insert_reports_inserted_and_generates_missing_ids(services, scope, ds):
    docs = [{"_id": "a", "x": 1}, {"x": 2}, {"x": 3, "v_vector_": [1.0, 2.0]}]
    out = services.documents.insert(scope, ds, docs)
    assert out == {"inserted": 3, "failed": []}
    page = services.documents.list(scope, ds, page_size=10)["documents"]
    ids = [d["_id"] for d in page]
    assert ids[0] == "a"
    assert len(set(ids)) == 3 and all(isinstance(i, str) and i for i in ids)
    assert [d["x"] for d in page] == [1, 2, 3]
    np.testing.assert_array_equal(page[2]["v_vector_"], np.float32([1, 2]))


def test_integer_ids_are_strings(services, scope, ds):
    services.documents.insert(scope, ds, [{"_id": 7, "x": 1}])
    assert services.documents.get(scope, ds, "7")["_id"] == "7"


def test_skip_invalid_writes_valid_and_reports_each_failure(services, scope, ds):
    docs = [
        {"_id": "ok1", "x": 1},
        {"_id": "bad-vec", "v_vector_": ["a", "b"]},
        "not a document",
        {"_id": "ok2", "x": 2},
        {"_id": "ok1", "x": 3},  # duplicate in the batch
        {"_id": True},
        {"_id": "dotted", "a.b": 1},
        {"_id": "dollar", "$x": 1},
    ]
    out = services.documents.insert(scope, ds, docs, skip_invalid=True)
    assert out["inserted"] == 2
    failed = {f["index"]: f for f in out["failed"]}
    assert sorted(failed) == [1, 2, 4, 5, 6, 7]
    assert failed[1] == {
        "index": 1,
        "_id": "bad-vec",
        "field": "v_vector_",
        "code": "vector_not_numeric",
        "message": failed[1]["message"],
    }
    assert failed[2]["code"] == "not_an_object" and failed[2]["_id"] is None
    assert (failed[4]["code"], failed[4]["field"]) == ("duplicate_id", "_id")
    assert failed[4]["_id"] == "ok1"
    assert (failed[5]["code"], failed[5]["field"]) == ("invalid_id", "_id")
    assert (failed[6]["code"], failed[6]["field"]) == ("invalid_field_name", "a.b")
    assert failed[7]["code"] == "invalid_field_name"
    got = services.documents.bulk_get(scope, ds, ["ok1", "ok2", "bad-vec", "dotted"])
    assert [(d["_id"], d["x"]) for d in got] == [("ok1", 1), ("ok2", 2)]


def test_one_invalid_document_without_skip_invalid_writes_nothing(services, scope, ds):
    docs = [{"_id": str(i), "x": i} for i in range(50)]
    docs[30] = {"_id": "30", "v_vector_": []}
    with pytest.raises(Invalid) as ei:
        services.documents.insert(scope, ds, docs)
    err = ei.value
    assert err.code == "invalid_documents"
    assert err.field == "documents[30].v_vector_"
    assert err.details["failed"] == [
        {
            "index": 30,
            "_id": "30",
            "field": "v_vector_",
            "code": "empty_vector",
            "message": err.details["failed"][0]["message"],
        }
    ]
    assert services.documents.count(scope, ds) == 0
    assert document_rows(services) == 0
    assert vector_rows(services) == 0


def test_overwrite_replaces_the_whole_document_and_its_vectors(services, scope, ds):
    services.documents.insert(
        scope, ds, [{"_id": "a", "x": 1, "keep": "old", "v_vector_": [1, 2], "w_vector_": [3]}]
    )
    out = services.documents.insert(scope, ds, [{"_id": "a", "x": 2, "v_vector_": [5, 6]}])
    assert out == {"inserted": 1, "failed": []}
    doc = services.documents.get(scope, ds, "a")
    assert set(doc) == {"_id", "x", "v_vector_"}
    assert doc["x"] == 2
    np.testing.assert_array_equal(doc["v_vector_"], np.float32([5, 6]))
    assert vector_rows(services) == 1
    assert services.documents.count(scope, ds) == 1
    # a replacement without vectors drops them all
    services.documents.insert(scope, ds, [{"_id": "a", "x": 3}])
    assert services.documents.get(scope, ds, "a") == {"_id": "a", "x": 3}
    assert vector_rows(services) == 0


def test_overwrite_false_reports_already_exists_and_keeps_the_stored_document(services, scope, ds):
    services.documents.insert(scope, ds, [{"_id": "a", "x": 1, "v_vector_": [1, 1]}])
    with pytest.raises(Invalid) as ei:
        services.documents.insert(
            scope, ds, [{"_id": "b", "x": 0}, {"_id": "a", "x": 2}], overwrite=False
        )
    assert ei.value.details["failed"][0]["code"] == "already_exists"
    assert services.documents.count(scope, ds) == 1  # b was rolled back with the batch

    out = services.documents.insert(
        scope,
        ds,
        [{"_id": "b", "x": 0}, {"_id": "a", "x": 2, "v_vector_": [9, 9], "extra": "t"}],
        overwrite=False,
        skip_invalid=True,
    )
    assert out["inserted"] == 1
    assert out["failed"] == [
        {
            "index": 1,
            "_id": "a",
            "field": "_id",
            "code": "already_exists",
            "message": out["failed"][0]["message"],
        }
    ]
    a = services.documents.get(scope, ds, "a")
    assert a["x"] == 1
    np.testing.assert_array_equal(a["v_vector_"], np.float32([1, 1]))
    assert services.documents.get(scope, ds, "b")["x"] == 0
    # the refused document taught the schema nothing
    assert "extra" not in services.datasets.schema(scope, ds)


def test_batch_too_large(platform, services, scope, ds):
    services.documents.max_batch = 5
    with pytest.raises(Invalid) as ei:
        services.documents.insert(scope, ds, [{"x": i} for i in range(6)])
    assert (ei.value.code, ei.value.field) == ("batch_too_large", "documents")


def test_insert_into_missing_dataset(services, scope):
    with pytest.raises(NotFound) as ei:
        services.documents.insert(scope, "nope", [{"x": 1}])
    assert ei.value.code == "dataset_not_found"


# -- a batch is one transaction -----------------------------------------------------------------


class Boom(RuntimeError):
    pass


@contextmanager
def failing_statement(store, prefix: str) -> Iterator[list[str]]:
    """Make the database driver fail on the first statement that starts with ``prefix``
    (whichever way the service builds it); yields the statements that ran before it."""
    ran: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        text = " ".join(statement.split()).upper()
        if text.startswith(prefix.upper()):
            raise Boom(f"injected failure on: {text[:60]}")
        ran.append(text)

    event.listen(store.engine, "before_cursor_execute", before)
    try:
        yield ran
    finally:
        event.remove(store.engine, "before_cursor_execute", before)


def test_an_insert_batch_that_fails_halfway_leaves_no_rows(services, scope, ds):
    """The documents are written, then writing their vectors fails: nothing stays."""
    store = services.datasets.store
    batch = [{"_id": f"d{i}", "x": i, "v_vector_": [i, i]} for i in range(100)]
    with failing_statement(store, "INSERT INTO vectors") as ran, pytest.raises(Boom):
        services.documents.insert(scope, ds, batch)
    # the failure really was halfway: the documents had been inserted in that transaction
    assert any(s.startswith("INSERT INTO DOCUMENTS") for s in ran)
    assert services.documents.count(scope, ds) == 0
    assert document_rows(services) == 0
    assert vector_rows(services) == 0
    assert services.datasets.schema(scope, ds) == {}
    # and the service still works afterwards
    assert services.documents.insert(scope, ds, batch)["inserted"] == 100
    assert vector_rows(services) == 100


def test_a_replacing_batch_that_fails_halfway_keeps_the_old_documents(services, scope, ds):
    """Replacing documents deletes their old vectors first; a failure after that restores
    them with everything else."""
    store = services.datasets.store
    services.documents.insert(
        scope, ds, [{"_id": f"d{i}", "x": i, "v_vector_": [i, 0]} for i in range(10)]
    )
    batch = [{"_id": f"d{i}", "x": -i, "v_vector_": [0, i]} for i in range(5, 15)]
    with failing_statement(store, "INSERT INTO vectors") as ran, pytest.raises(Boom):
        services.documents.insert(scope, ds, batch)
    assert any(s.startswith("DELETE FROM VECTORS") for s in ran)
    assert services.documents.count(scope, ds) == 10
    assert vector_rows(services) == 10
    for doc in services.documents.list(scope, ds)["documents"]:
        i = int(doc["_id"][1:])
        assert doc["x"] == i
        np.testing.assert_array_equal(doc["v_vector_"], np.float32([i, 0]))


def test_an_update_batch_that_fails_halfway_leaves_documents_unchanged(services, scope, ds):
    services.documents.insert(scope, ds, [{"_id": "a", "x": 1, "v_vector_": [1, 1]}])
    with failing_statement(services.datasets.store, "INSERT INTO vectors"), pytest.raises(Boom):
        services.documents.update(scope, ds, [{"_id": "a", "x": 2, "v_vector_": [2, 2]}])
    doc = services.documents.get(scope, ds, "a")
    assert doc["x"] == 1
    np.testing.assert_array_equal(doc["v_vector_"], np.float32([1, 1]))


# -- partial update -----------------------------------------------------------------------------


def test_update_merges_fields_dotted_keys_and_vectors(services, scope, ds):
    services.documents.insert(
        scope,
        ds,
        [
            {
                "_id": "a",
                "title": "t",
                "meta": {"source": "web", "lang": "en"},
                "v_vector_": [1, 2],
                "w_vector_": [1, 2, 3],
            },
            {"_id": "b", "title": "u"},
        ],
    )
    out = services.documents.update(
        scope,
        ds,
        [
            {
                "_id": "a",
                "meta.source": "pdf",
                "meta.pages.count": 3,
                "extra": [1, 2],
                "v_vector_": [7, 8],
                "w_vector_": None,
            },
            {"_id": "b", "meta": {"lang": "fr"}, "u_vector_": [0.5]},
        ],
    )
    assert out == {"updated": 2, "failed": []}
    a = services.documents.get(scope, ds, "a")
    assert {k: v for k, v in a.items() if not k.endswith("_vector_")} == {
        "_id": "a",
        "title": "t",
        "meta": {"source": "pdf", "lang": "en", "pages": {"count": 3}},
        "extra": [1, 2],
    }
    assert set(a) - {"_id", "title", "meta", "extra"} == {"v_vector_"}
    np.testing.assert_array_equal(a["v_vector_"], np.float32([7, 8]))
    b = services.documents.get(scope, ds, "b")
    assert b["meta"] == {"lang": "fr"} and b["title"] == "u"
    np.testing.assert_array_equal(b["u_vector_"], np.float32([0.5]))
    assert vector_rows(services) == 2
    assert services.documents.count(scope, ds, {"w_vector_": {"$exists": True}}) == 0
    schema = services.datasets.schema(scope, ds)
    assert schema["meta.pages.count"] == {"type": "number"}
    assert schema["u_vector_"] == {"type": "vector", "dim": 1}


def test_update_of_unknown_ids(services, scope, ds):
    services.documents.insert(scope, ds, [{"_id": "a", "x": 1}])
    with pytest.raises(Invalid) as ei:
        services.documents.update(scope, ds, [{"_id": "a", "x": 2}, {"_id": "zz", "x": 3}])
    assert ei.value.details["failed"][0]["code"] == "not_found"
    assert services.documents.get(scope, ds, "a")["x"] == 1  # nothing written
    out = services.documents.update(
        scope,
        ds,
        [{"_id": "a", "x": 2}, {"_id": "zz", "x": 3, "ghost": 1, "g_vector_": [1]}, {"x": 4}],
        skip_invalid=True,
    )
    assert out["updated"] == 1
    assert [(f["index"], f["_id"], f["field"], f["code"]) for f in out["failed"]] == [
        (1, "zz", "_id", "not_found"),
        (2, None, "_id", "missing_id"),
    ]
    assert services.documents.get(scope, ds, "a")["x"] == 2
    assert services.documents.count(scope, ds) == 1
    assert set(services.datasets.schema(scope, ds)) == {"x"}


def test_update_checks_vector_dimension(services, scope, ds):
    services.documents.insert(scope, ds, [{"_id": "a", "v_vector_": [1, 2]}])
    with pytest.raises(Invalid) as ei:
        services.documents.update(scope, ds, [{"_id": "a", "v_vector_": [1, 2, 3]}])
    assert ei.value.details["failed"][0]["code"] == "dimension_mismatch"
    assert ei.value.details["failed"][0]["field"] == "v_vector_"


# -- reads --------------------------------------------------------------------------------------


def test_get_and_bulk_get(services, scope, ds):
    services.documents.insert(
        scope, ds, [{"_id": f"d{i}", "i": i, "v_vector_": [i, -i]} for i in range(10)]
    )
    d3 = services.documents.get(scope, ds, "d3")
    assert d3["i"] == 3
    np.testing.assert_array_equal(d3["v_vector_"], np.float32([3, -3]))
    assert services.documents.get(scope, ds, "d3", include_vector=False) == {"_id": "d3", "i": 3}
    with pytest.raises(NotFound) as ei:
        services.documents.get(scope, ds, "nope")
    assert (ei.value.code, ei.value.field) == ("document_not_found", "_id")

    got = services.documents.bulk_get(scope, ds, ["d7", "missing", "d1", "d4"])
    assert [d["_id"] for d in got] == ["d7", "d1", "d4"]
    assert all("v_vector_" in d for d in got)
    got = services.documents.bulk_get(
        scope, ds, ["d2", "d0"], include_vector=False, select_fields=["i", "nothing"]
    )
    assert got == [{"_id": "d2", "i": 2}, {"_id": "d0", "i": 0}]


def test_select_fields_projects_nested_paths(services, scope, ds):
    services.documents.insert(
        scope,
        ds,
        [{"_id": "a", "meta": {"source": "web", "lang": "en"}, "x": 1, "v_vector_": [1]}],
    )
    page = services.documents.list(scope, ds, select_fields=["meta.source", "v_vector_"])
    [doc] = page["documents"]
    assert set(doc) == {"_id", "meta", "v_vector_"}
    assert doc["meta"] == {"source": "web"}


def test_delete_by_ids_and_by_filter(services, scope, ds):
    services.documents.insert(
        scope, ds, [{"_id": f"d{i}", "i": i, "v_vector_": [i]} for i in range(20)]
    )
    assert services.documents.delete(scope, ds, ["d0", "d1", "nope"]) == {"deleted": 2}
    assert services.documents.delete(scope, ds, filter={"i": {"$gte": 15}}) == {"deleted": 5}
    assert services.documents.count(scope, ds) == 13
    assert services.documents.count(scope, ds, {"i": {"$lt": 2}}) == 0
    assert vector_rows(services) == 13  # vectors go with their documents
    with pytest.raises(Invalid) as ei:
        services.documents.delete(scope, ds)
    assert ei.value.field == "ids"
    with pytest.raises(Invalid) as ei:
        services.documents.delete(scope, ds, filter={"i": {"$bogus": 1}})
    assert ei.value.code == "invalid_filter"
    assert services.documents.count(scope, ds) == 13


def test_count_with_filter(services, scope, ds):
    services.documents.insert(
        scope, ds, [{"_id": str(i), "even": i % 2 == 0, "i": i} for i in range(30)]
    )
    assert services.documents.count(scope, ds) == 30
    assert services.documents.count(scope, ds, {"even": True}) == 15
    assert services.documents.count(scope, ds, {"even": True, "i": {"$lt": 10}}) == 5


def test_cursor_paging_visits_every_document_exactly_once(services, scope, ds):
    n = 2500
    for start in range(0, n, 1000):
        batch = range(start, min(n, start + 1000))
        services.documents.insert(
            scope, ds, [{"_id": f"doc-{i:05d}", "i": i, "v_vector_": [i, 1]} for i in batch]
        )
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = services.documents.list(scope, ds, page_size=333, cursor=cursor)
        docs = page["documents"]
        assert len(docs) <= 333
        seen.extend(d["i"] for d in docs)
        assert all(d["v_vector_"][0] == d["i"] for d in docs)
        pages += 1
        cursor = page["cursor"]
        if cursor is None:
            break
    assert pages == 8  # 7 full pages and 169 left
    assert seen == list(range(n))

    # with a filter, without vectors
    seen = []
    cursor = None
    while True:
        page = services.documents.list(
            scope,
            ds,
            filter={"i": {"$gte": 1000}},
            page_size=333,
            cursor=cursor,
            include_vector=False,
        )
        seen.extend(d["i"] for d in page["documents"])
        assert all("v_vector_" not in d for d in page["documents"])
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == list(range(1000, n))


def test_an_exact_last_page_ends_with_no_cursor(services, scope, ds):
    services.documents.insert(scope, ds, [{"i": i} for i in range(6)])
    first = services.documents.list(scope, ds, page_size=3)
    assert first["cursor"] is not None
    second = services.documents.list(scope, ds, page_size=3, cursor=first["cursor"])
    assert [d["i"] for d in second["documents"]] == [3, 4, 5]
    assert second["cursor"] is None


def test_paging_arguments_are_checked(services, scope, ds):
    with pytest.raises(Invalid) as ei:
        services.documents.list(scope, ds, page_size=0)
    assert ei.value.field == "page_size"
    with pytest.raises(Invalid) as ei:
        services.documents.list(scope, ds, cursor="!!not-a-cursor")
    assert (ei.value.code, ei.value.field) == ("invalid_cursor", "cursor")


# -- schema -------------------------------------------------------------------------------------


def test_schema_inference(services, scope, ds):
    services.documents.insert(
        scope,
        ds,
        [
            {
                "title": "a",
                "price": 3,
                "ok": True,
                "tags": ["x"],
                "meta": {"source": "web", "empty": {}},
                "nothing": None,
                "v_vector_": [1, 2, 3],
            },
            {"title": "b", "price": 2.5, "ok": False, "w_vector_": f32([1, 2])},
        ],
    )
    assert services.datasets.schema(scope, ds) == {
        "title": {"type": "text"},
        "price": {"type": "number"},
        "ok": {"type": "bool"},
        "tags": {"type": "array"},
        "meta.source": {"type": "text"},
        "meta.empty": {"type": "object"},
        "v_vector_": {"type": "vector", "dim": 3},
        "w_vector_": {"type": "vector", "dim": 2},
    }
    services.documents.insert(scope, ds, [{"price": "cheap"}])
    assert services.datasets.schema(scope, ds)["price"] == {"type": "mixed"}
    info = services.datasets.get(scope, ds)
    assert info["document_count"] == 3
    assert info["fields"]["v_vector_"] == {"type": "vector", "dim": 3}


def test_deleting_a_dataset_removes_its_documents_and_vectors(services, scope, ds):
    services.documents.insert(scope, ds, [{"v_vector_": [1, 2]} for _ in range(5)])
    services.datasets.delete(scope, ds)
    assert document_rows(services) == 0
    assert vector_rows(services) == 0
    with pytest.raises(NotFound):
        services.datasets.get(scope, ds)


# -- through the SDK (HTTP, in-process) ---------------------------------------------------------


def test_sdk_round_trip(sdk):
    d = sdk.create_dataset("web")
    res = d.insert(
        [{"_id": f"d{i}", "i": i, "v_vector_": np.float32([i, i + 1])} for i in range(25)]
        + [{"_id": "bad", "v_vector_": [1, 2, 3]}],
        batch_size=10,
        skip_invalid=True,
    )
    assert res.inserted == 25
    # the failure's index counts from the start of the whole stream, not the batch
    assert [(f["index"], f["_id"], f["code"]) for f in res.failed] == [
        (25, "bad", "dimension_mismatch")
    ]
    assert d.count() == 25
    assert d.count({"i": {"$gte": 20}}) == 5
    # (the SDK sends batches concurrently: the stored order across batches may differ)
    assert sorted(doc["i"] for doc in d.iter(page_size=7)) == list(range(25))
    got = d.get("d3")
    assert got["v_vector_"] == [3.0, 4.0]
    assert d.get("d3", include_vector=False) == {"_id": "d3", "i": 3}
    assert [x["_id"] for x in d.bulk_get(["d9", "zz", "d2"])] == ["d9", "d2"]
    assert d.update([{"_id": "d3", "meta.k": "v"}]).updated == 1
    assert d.get("d3", include_vector=False) == {"_id": "d3", "i": 3, "meta": {"k": "v"}}
    assert d.delete(filter={"i": {"$lt": 5}}) == 5
    assert d.delete(["d5", "d6"]) == 2
    assert d.count() == 18
    assert d.schema()["v_vector_"] == {"type": "vector", "dim": 2}
    assert {x["name"]: x["document_count"] for x in sdk.list_datasets()} == {"web": 18}


def test_http_document_routes(http):
    assert http.post("/v1/datasets", json={"name": "h"}).status_code == 201
    r = http.post(
        "/v1/datasets/h/documents",
        json={"documents": [{"_id": "a", "x": 1, "v_vector_": [1, 2]}, {"_id": "b", "x": 2}]},
    )
    assert r.status_code == 200 and r.json() == {"inserted": 2, "failed": []}
    r = http.get("/v1/datasets/h/documents/a", params={"include_vector": "false"})
    assert r.json() == {"_id": "a", "x": 1}
    r = http.get("/v1/datasets/h/documents", params={"filter": '{"x": {"$gt": 1}}'})
    assert [d["_id"] for d in r.json()["data"]] == ["b"]
    r = http.get("/v1/datasets/h/documents/count", params={"filter": '{"x": 1}'})
    assert r.json() == {"count": 1}
    assert http.delete("/v1/datasets/h/documents/a").json() == {"deleted": 1}
    r = http.delete("/v1/datasets/h/documents/a")
    assert r.status_code == 404 and r.json()["error"]["code"] == "document_not_found"
    r = http.get("/v1/datasets/h/documents/a")
    assert r.status_code == 404
    r = http.post("/v1/datasets", json={"name": "h"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "dataset_exists"
    assert http.delete("/v1/datasets/h").json() == {"deleted": "h"}
    assert http.get("/v1/datasets/h").status_code == 404
