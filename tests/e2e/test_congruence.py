"""Congruence: the embedded client and a remote client give the same answers.

One scenario (datasets, documents with vectors, filters, paging, updates, deletes, jobs and
errors) runs against ``Client(path=...)`` and against ``Client(url=...)`` talking to a real
``taskloom serve`` process; the transcripts must be equal once volatile values (timestamps,
job and app ids, worker names) are taken out. The embedded client always uses SQLite in its
folder; the server uses PostgreSQL when ``TASKLOOM_TEST_DATABASE_URL`` is set, so on that run
the comparison also holds the two databases to the same answers.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import taskloom
from conftest import PG_URL, ServerProcess, reset_postgres
from taskloom import Client, Conflict, Invalid, InvalidTransition, NotFound
from taskloom.sdk.jobs import Job

pytestmark = pytest.mark.e2e

VOLATILE = {"created_at", "updated_at", "started_at", "finished_at", "at", "app_id"}


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    if PG_URL:
        reset_postgres(PG_URL)
    server = ServerProcess(
        tmp_path_factory.mktemp("remote") / "data",
        env={"TASKLOOM_LEASE_SECONDS": "2", "TASKLOOM_REAPER_INTERVAL": "0.5"},
    )
    try:
        with Client(url=server.url, api_key=server.api_key) as c:
            yield c
    finally:
        server.stop()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    # Deliberately SQLite in the folder, whatever database the environment points at.
    saved = os.environ.pop("TASKLOOM_DATABASE_URL", None)
    try:
        c = Client(path=tmp_path_factory.mktemp("embedded") / "emb")
    finally:
        if saved is not None:
            os.environ["TASKLOOM_DATABASE_URL"] = saved
    assert c._platform is not None and c._platform.store.dialect == "sqlite"
    with c:
        yield c


@pytest.fixture(params=["embedded", "remote"])
def client(request: pytest.FixtureRequest) -> Client:
    return request.getfixturevalue(request.param)


# -- normalising -------------------------------------------------------------------------------


def scrub(value: Any) -> Any:
    """Drop timestamps and app ids; numpy values become plain Python."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def job_view(job: Job) -> dict[str, Any]:
    keep = ("kind", "dataset", "params", "status", "progress", "message", "result", "error")
    out = {k: job.data[k] for k in keep}
    out.update(attempts=job.attempts, max_attempts=job.max_attempts)
    return out


def events_view(job: Job) -> list[tuple[Any, ...]]:
    return [
        (
            e["type"],
            e["status"],
            e["progress"],
            re.sub(r"claimed by \S+", "claimed by <worker>", e["message"] or ""),
        )
        for e in job.events()
    ]


def error_view(call: Callable[[], Any]) -> dict[str, Any]:
    try:
        call()
    except taskloom.TaskloomError as exc:
        return {
            "type": type(exc).__name__,
            "status": exc.status_code,
            "code": exc.code,
            "field": exc.field,
            "message": exc.message,
            "details": scrub(exc.details),
        }
    raise AssertionError("no error was raised")


# -- the scenario ------------------------------------------------------------------------------

TAGS = ["red", "green", "blue"]


def good_doc(i: int) -> dict[str, Any]:
    return {
        "_id": f"d{i:02d}",
        "price": i * 1.5,
        "qty": i,
        "tag": TAGS[i % 3],
        "meta": {"source": "web" if i % 2 else "app", "rank": i % 5},
        "flag": i % 4 == 0,
        "emb_vector_": [i / 10, 1 - i / 10, (i % 3) / 3, 0.5],
    }


def documents() -> tuple[list[Any], list[tuple[str | None, str]]]:
    """24 good documents with invalid ones in between; returns them and the expected
    failures (``_id``, code) in order."""
    docs: list[Any] = [good_doc(i) for i in range(23)]
    bad = {
        3: {"_id": "bad-str", "emb_vector_": [1, "x", 3, 4]},
        7: {"_id": "bad-dim", "emb_vector_": [1.0, 2.0, 3.0], "dim_only": "x"},
        12: {"_id": "bad-nan", "emb_vector_": [math.nan, 0.0, 0.0, 0.0]},
        5: {"_id": "d01", "price": 0},  # the same batch (of 10) has d01 already
        15: {"_id": "bad-key", "a.b": 1},
        18: {"_id": True},
        21: "not a document",
    }
    for index in sorted(bad):
        docs.insert(index, bad[index])
    docs.append({"_id": "plain", "price": None, "tag": "red", "note": "no vector"})
    failures = [
        ("bad-str", "vector_not_numeric"),
        ("d01", "duplicate_id"),
        ("bad-dim", "dimension_mismatch"),
        ("bad-nan", "vector_not_finite"),
        ("bad-key", "invalid_field_name"),
        (None, "invalid_id"),
        (None, "not_an_object"),
    ]
    return docs, failures


COUNT_FILTERS: list[dict[str, Any] | None] = [
    None,
    {"price": {"$gte": 10}},
    {"price": {"$lt": 3}},
    {"price": None},
    {"tag": {"$in": ["red", "blue"]}},
    {"tag": {"$nin": ["red"]}},
    {"meta.source": "web"},
    {"meta.rank": {"$gt": 2}, "flag": True},
    {"$or": [{"qty": {"$lte": 2}}, {"tag": "green"}]},
    {"$and": [{"qty": {"$gte": 5}}, {"qty": {"$ne": 7}}]},
    {"emb_vector_": {"$exists": True}},
    {"emb_vector_": {"$exists": False}},
    {"note": {"$exists": True}},
    {"_id": {"$in": ["d01", "d02", "nope"]}},
    {"_id": {"$gte": "d20"}},
]


def scenario(c: Client, name: str) -> list[tuple[str, Any]]:
    """Every step's outcome, in order, with volatile values taken out."""
    out: list[tuple[str, Any]] = []

    def step(label: str, value: Any) -> None:
        out.append((label, scrub(value)))

    ds = c.create_dataset(name)
    step("create_dataset", ds.info())
    step("create_dataset again", error_view(lambda: c.create_dataset(name)))
    step("bad dataset name", error_view(lambda: c.create_dataset("-no spaces-")))

    docs, _ = documents()
    res = ds.insert(docs, batch_size=10, skip_invalid=True)
    step("insert skip_invalid", {"inserted": res.inserted, "failed": res.failed})
    step(
        "insert all-or-nothing",
        error_view(lambda: ds.insert([good_doc(40), {"_id": "v", "emb_vector_": [1, 2]}])),
    )
    step("count after refused batch", ds.count())
    res = ds.insert([{"_id": "d03", "kept_out": 1}], overwrite=False, skip_invalid=True)
    step("insert without overwrite", {"inserted": res.inserted, "failed": res.failed})

    step("get", ds.get("d03"))
    step("get without vector", ds.get("d04", include_vector=False))
    step("get missing", error_view(lambda: ds.get("missing")))
    step("bulk_get", ds.bulk_get(["d05", "missing", "d01", "plain"]))
    step("bulk_get select", ds.bulk_get(["d06", "d02"], select=["price", "meta.source"]))

    upd = ds.update(
        [
            {"_id": "d02", "price": 99, "meta.source": "edited"},
            {"_id": "nope", "x": 1},
            {"_id": "d04", "emb_vector_": [0.0, 0.0, 0.0, 1.0], "extra": {"k": [1, 2]}},
        ],
        skip_invalid=True,
    )
    step("update", {"updated": upd.updated, "failed": upd.failed})
    step("after update", ds.bulk_get(["d02", "d04"]))

    for flt in COUNT_FILTERS:
        step(f"count {flt}", ds.count(flt))

    # The SDK sends batches concurrently, so the stored order of documents from different
    # batches is not the input order: compare what is listed, and that pages add up.
    listed = [d["_id"] for d in ds.iter(page_size=4, include_vector=False)]
    step("iter", (sorted(listed), len(listed) == len(set(listed))))
    step(
        "iter filtered",
        sorted(
            (d["_id"], d.get("qty"))
            for d in ds.iter(filter={"qty": {"$gte": 3}, "tag": "red"}, page_size=2, select=["qty"])
        ),
    )
    first, cursor = ds.page(page_size=5, include_vector=False)
    second, cursor2 = ds.page(page_size=5, cursor=cursor, include_vector=False)
    step(
        "pages",
        ([d["_id"] for d in first + second] == listed[:10], cursor is None, cursor2 is None),
    )
    step("bad cursor", error_view(lambda: ds.page(cursor="not-a-cursor")))

    step("delete ids", ds.delete(["d00", "d01", "nope"]))
    step("delete filter", ds.delete(filter={"tag": "blue"}))
    step("count after delete", ds.count())
    step("schema", ds.schema())
    step("info", ds.info())
    step("listed", [d for d in c.list_datasets() if d["name"] == name])

    # jobs
    noop = c.jobs.submit("noop", dataset=name).wait(timeout=30)
    step("noop", job_view(noop))
    step("noop events", events_view(noop))
    sleep = c.jobs.submit("sleep", dataset=name, params={"seconds": 0.3, "steps": 3})
    step("sleep submitted", job_view(sleep))
    sleep.wait(timeout=30)
    step("sleep", job_view(sleep))
    step("sleep events", events_view(sleep))
    again = c.jobs.submit("noop", dataset=name, idempotency_key=f"{name}-key")
    same = c.jobs.submit("noop", dataset=name, idempotency_key=f"{name}-key")
    step("idempotent submit", same.id == again.id)
    again.wait(timeout=30)

    held = c.jobs.submit("sleep", dataset=name, params={"seconds": 60}, queue=False)
    active = c.jobs.list(dataset=name, active_only=True)
    step("active_only", [(j.id == held.id, j.status) for j in active])
    step("cancel", job_view(held.cancel()))
    step("cancel again", error_view(held.cancel))
    step("active_only after cancel", c.jobs.list(dataset=name, active_only=True))
    step("list", [(j.kind, j.status) for j in c.jobs.list(dataset=name)])
    step("list completed", len(c.jobs.list(dataset=name, status="completed")))
    step("cancelled events", events_view(held))

    # errors
    step("unknown dataset", error_view(lambda: c.dataset(f"{name}-nope").count()))
    step("bad filter", error_view(lambda: ds.count({"price": {"$foo": 1}})))
    step("bad filter value", error_view(lambda: ds.count({"price": {"$gt": [1]}})))
    step("unknown kind", error_view(lambda: c.jobs.submit("no-such-kind")))
    step("bad params", error_view(lambda: c.jobs.submit("sleep", params={"seconds": -1})))
    step("unknown job", error_view(lambda: c.jobs.get("0" * 32)))
    step("unknown dataset job", error_view(lambda: c.jobs.submit("noop", dataset="nope-ds")))

    c.delete_dataset(name)
    step("deleted", error_view(ds.info))
    return out


def test_embedded_and_remote_give_the_same_results(embedded: Client, remote: Client) -> None:
    here = scenario(embedded, "congruence")
    there = scenario(remote, "congruence")
    assert [label for label, _ in here] == [label for label, _ in there]
    for (label, mine), (_, theirs) in zip(here, there, strict=True):
        assert mine == theirs, f"step {label!r} differs"

    # and the shared answers are the right ones
    got = dict(here)
    _, expected_failures = documents()
    failed = got["insert skip_invalid"]["failed"]
    assert got["insert skip_invalid"]["inserted"] == 24
    assert [(f["_id"], f["code"]) for f in failed] == expected_failures
    assert [f["index"] for f in failed] == [3, 5, 7, 12, 15, 18, 21]
    assert got["insert all-or-nothing"]["code"] == "invalid_documents"
    assert got["count after refused batch"] == 24
    assert got["get"]["emb_vector_"] == pytest.approx([0.3, 0.7, 0.0, 0.5])
    assert "emb_vector_" not in got["get without vector"]
    assert [d["_id"] for d in got["bulk_get"]] == ["d05", "d01", "plain"]
    assert got["bulk_get select"] == [
        {"_id": "d06", "price": 9.0, "meta": {"source": "app"}},
        {"_id": "d02", "price": 3.0, "meta": {"source": "app"}},
    ]
    assert got["update"]["updated"] == 2
    d02, d04 = got["after update"]
    assert d02["price"] == 99 and d02["meta"] == {"source": "edited", "rank": 2}
    assert d04["emb_vector_"] == [0.0, 0.0, 0.0, 1.0] and d04["extra"] == {"k": [1, 2]}
    assert got["count None"] == 24
    assert got["count {'price': None}"] == 1
    assert got["count {'emb_vector_': {'$exists': False}}"] == 1
    assert got["count {'_id': {'$in': ['d01', 'd02', 'nope']}}"] == 2
    # (scrub turned tuples into lists)
    assert got["iter"] == [[f"d{i:02d}" for i in range(23)] + ["plain"], True]
    assert got["iter filtered"] == [[f"d{i:02d}", i] for i in (3, 6, 9, 12, 15, 18, 21)]
    assert got["pages"] == [True, False, False]
    assert got["delete ids"] == 2
    assert got["delete filter"] == 7  # d02 d05 d08 d11 d14 d17 d20
    assert got["count after delete"] == 15
    assert got["insert without overwrite"]["failed"][0]["code"] == "already_exists"
    # the schema describes stored documents, not the fields of ones that were refused
    assert got["schema"] == {
        "price": {"type": "number"},
        "qty": {"type": "number"},
        "tag": {"type": "text"},
        "meta.source": {"type": "text"},
        "meta.rank": {"type": "number"},
        "flag": {"type": "bool"},
        "emb_vector_": {"type": "vector", "dim": 4},
        "note": {"type": "text"},
        "extra.k": {"type": "array"},
    }
    assert got["info"]["document_count"] == 15
    assert got["noop"]["status"] == "completed" and got["noop"]["result"] == {"ok": True}
    assert got["sleep"]["status"] == "completed" and got["sleep"]["progress"] == 100
    assert got["idempotent submit"] is True
    assert got["active_only"] == [[True, "registered"]]
    assert got["cancel"]["status"] == "cancelled"
    assert got["cancel again"]["type"] == "InvalidTransition"
    assert got["active_only after cancel"] == []
    assert got["list"] == [
        ["sleep", "cancelled"],
        ["noop", "completed"],
        ["sleep", "completed"],
        ["noop", "completed"],
    ]
    assert got["list completed"] == 3
    assert got["deleted"]["type"] == "NotFound"


# -- the same checks, one client at a time ------------------------------------------------------


def test_errors_are_typed(client: Client) -> None:
    with pytest.raises(NotFound) as nf:
        client.dataset("never-made").count()
    assert (nf.value.code, nf.value.field, nf.value.status_code) == (
        "dataset_not_found",
        "dataset",
        404,
    )

    ds = client.create_dataset(f"errors-{id(client)}")
    try:
        with pytest.raises(Invalid) as bad:
            ds.count({"price": {"$regex": "(x"}})
        assert (bad.value.code, bad.value.field) == ("invalid_filter", "filter.price.$regex")
        with pytest.raises(Invalid) as bad_or:
            ds.count({"$or": []})
        assert (bad_or.value.code, bad_or.value.field) == ("invalid_filter", "filter.$or")
        with pytest.raises(Conflict) as dup:
            client.create_dataset(ds.name)
        assert dup.value.code == "dataset_exists"
        with pytest.raises(Invalid) as docs:
            ds.insert([{"_id": "a", "v_vector_": [1, 2]}, {"_id": "b", "v_vector_": "x"}])
        assert docs.value.field == "documents[1].v_vector_"
        assert [f["_id"] for f in docs.value.details["failed"]] == ["b"]
        assert ds.count() == 0
    finally:
        client.delete_dataset(ds.name)


def test_wait_with_progress_streams_remotely_and_polls_embedded(
    client: Client, remote: Client, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    refreshes = 0
    real_refresh = Job.refresh

    def counting_refresh(self: Job) -> Job:
        nonlocal refreshes
        refreshes += 1
        return real_refresh(self)

    monkeypatch.setattr(Job, "refresh", counting_refresh)
    job = client.jobs.submit("sleep", params={"seconds": 0.6, "steps": 4})
    assert job.status == "pending"
    job.wait(timeout=30, progress=True)
    assert job.status == "completed"
    assert job.progress == 100
    assert job.result == {"slept": 0.6}
    if client is remote:
        assert client._can_stream
        assert refreshes == 0, "the event stream should have delivered the final job"
    else:
        assert not client._can_stream
        assert refreshes > 0
    shown = capsys.readouterr().out
    assert f"sleep {job.id[:8]}" in shown
    assert "100%" in shown and "completed" in shown


def test_wait_timeout_raises_timeout_error(client: Client) -> None:
    job = client.jobs.submit("sleep", params={"seconds": 30, "steps": 30})
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        job.wait(timeout=1.0)
    waited = time.monotonic() - started
    assert 0.9 <= waited < 10
    assert job.refresh().status in ("pending", "in_progress")

    job.cancel()
    assert job.wait(timeout=30).status == "cancelled"
    with pytest.raises(InvalidTransition):
        job.cancel()
