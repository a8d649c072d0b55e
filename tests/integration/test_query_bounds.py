"""No filter can stall the server (issue 11).

A ``$regex`` runs in time linear in the text (RE2 on SQLite, the same meaning as PostgreSQL's
``~``); every statement that holds a filter runs under ``query_timeout`` and answers 422
``query_timeout`` past it; while one heavy query runs, ``/v1/health`` and another tenant's
requests are answered. Timings are only compared with each other, never with a wall clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import TEST_KEY, make_settings
from taskloom.api.app import create_app
from taskloom.config import Settings
from taskloom.runtime import Platform
from taskloom.sdk.transport import EmbeddedTransport

from .conftest import BASE_URL, error_of

TIMEOUT = 1.0  # seconds: the bound of these tests' platform


@pytest.fixture
def bounded(tmp_path: Path) -> Iterator[Platform]:
    """A platform whose filter queries stop after ``TIMEOUT`` seconds."""
    p = Platform(make_settings(tmp_path / "data", query_timeout=TIMEOUT), workers=0, lock=None)
    p.start()
    yield p
    p.stop()


@pytest.fixture
def bounded_http(bounded: Platform) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """The admin's client and another tenant's (bob, his own app) on one in-process app."""
    transport = EmbeddedTransport(create_app(bounded))
    admin = httpx.Client(
        base_url=BASE_URL,
        transport=transport,
        headers={"Authorization": f"Bearer {TEST_KEY}"},
        timeout=120,
    )
    r = admin.post("/v1/users", json={"name": "bob", "app_name": "bobs-app"})
    assert r.status_code == 201, r.text
    bob = httpx.Client(
        base_url=BASE_URL,
        transport=transport,
        headers={"Authorization": f"Bearer {r.json()['api_key']}"},
        timeout=120,
    )
    yield admin, bob
    admin.close()
    bob.close()
    transport.close()


def insert(http: httpx.Client, dataset: str, docs: list[dict[str, Any]]) -> None:
    r = http.post("/v1/datasets", json={"name": dataset})
    assert r.status_code in (200, 201), r.text
    for i in range(0, len(docs), 2000):
        r = http.post(f"/v1/datasets/{dataset}/documents", json={"documents": docs[i : i + 2000]})
        assert r.status_code == 200, r.text
        assert not r.json()["failed"]


N_HEAVY_DOCS = 5000


def heavy_docs() -> list[dict[str, Any]]:
    return [
        {"_id": str(i), "text": f"the quick brown fox {i} jumps over the lazy dog " * 4}
        for i in range(N_HEAVY_DOCS)
    ]


# 300 patterns that match no document, each tried on every one: far more than TIMEOUT
# of work on either database
HEAVY = {"$or": [{"text": {"$regex": f"fox {i}[0-9]*x jumps.*dog $"}} for i in range(300)]}


def count(http: httpx.Client, dataset: str, flt: Any) -> httpx.Response:
    return http.post(f"/v1/datasets/{dataset}/documents/count", json={"filter": flt})


def best_of(n: int, call: Any) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return min(times)


def test_a_backtracking_regex_costs_what_a_plain_one_does(http):
    """``(a+)+$`` over a 26-character string took seconds (Python's re backtracks, ×4 for
    every two characters more) and held the GIL all along; with RE2 it costs what ``a+$``
    costs, and means the same."""
    docs = [{"_id": "long", "name": "a" * 26 + "b"}, {"_id": "match", "name": "aaaa"}]
    docs += [{"_id": f"d{i}", "name": f"name {i}"} for i in range(50)]
    insert(http, "rx", docs)

    def ask(pattern: str) -> None:
        r = count(http, "rx", {"name": {"$regex": pattern}})
        assert r.json() == {"count": 1}, r.text

    plain = best_of(3, lambda: ask("a+$"))
    evil = best_of(3, lambda: ask("(a+)+$"))
    assert evil < 20 * plain, (evil, plain)
    r = http.post(
        "/v1/datasets/rx/documents/query", json={"filter": {"name": {"$regex": "^(a|aa)+$"}}}
    )
    assert [d["_id"] for d in r.json()["data"]] == ["match"]


def test_a_heavy_filter_stops_with_query_timeout_and_others_are_served_meanwhile(bounded_http):
    admin, bob = bounded_http
    insert(admin, "heavy", heavy_docs())
    insert(bob, "small", [{"_id": "x", "n": 1}])
    answer: dict[str, httpx.Response] = {}
    done = threading.Event()

    def heavy() -> None:
        try:
            answer["heavy"] = count(admin, "heavy", HEAVY)
        finally:
            done.set()

    thread = threading.Thread(target=heavy)
    thread.start()
    health_meanwhile = small_meanwhile = 0
    while not done.is_set():
        r = admin.get("/v1/health")
        assert r.status_code == 200
        s = count(bob, "small", {"n": 1})
        assert s.json() == {"count": 1}
        if not done.is_set():  # both were answered while the heavy one still ran
            health_meanwhile += 1
            small_meanwhile += 1
    thread.join()
    err = error_of(answer["heavy"], 422, "query_timeout")
    assert err["details"]["field"] == "filter"
    assert err["details"]["timeout_seconds"] == TIMEOUT
    assert health_meanwhile >= 3 and small_meanwhile >= 3, (health_meanwhile, small_meanwhile)
    # the connection that was stopped serves the next queries as usual
    assert count(admin, "heavy", {"text": {"$regex": "fox 17 "}}).json() == {"count": 1}


@pytest.mark.parametrize("how", ["query", "delete", "get", "search"])
def test_every_filtered_route_is_bounded(bounded_http, how):
    admin, _ = bounded_http
    docs = heavy_docs()
    for d in docs:
        d["v_vector_"] = [1.0, float(d["_id"])]
    insert(admin, "heavy", docs)
    if how == "query":
        r = admin.post("/v1/datasets/heavy/documents/query", json={"filter": HEAVY})
    elif how == "delete":
        r = admin.post("/v1/datasets/heavy/documents/delete", json={"filter": HEAVY})
    elif how == "get":
        import json

        r = admin.get("/v1/datasets/heavy/documents", params={"filter": json.dumps(HEAVY)})
    else:
        r = admin.post(
            "/v1/datasets/heavy/search",
            json={"vector": [1.0, 0.0], "vector_field": "v_vector_", "filter": HEAVY},
        )
    error_of(r, 422, "query_timeout")
    # nothing was deleted, and the write lock is free again
    assert count(admin, "heavy", None).json() == {"count": N_HEAVY_DOCS}
    r = admin.post("/v1/datasets/heavy/documents/delete", json={"filter": {"_id": "1"}})
    assert r.json() == {"deleted": 1}


def test_unfiltered_work_is_not_bounded(bounded_http):
    """Only statements that hold a filter are bounded: reading a whole dataset is not."""
    admin, _ = bounded_http
    insert(admin, "heavy", heavy_docs())
    r = admin.get("/v1/datasets/heavy/documents", params={"page_size": 10_000})
    assert r.status_code == 200, r.text
    assert len(r.json()["data"]) == N_HEAVY_DOCS


def test_the_bound_is_a_setting(monkeypatch):
    assert Settings().query_timeout == 10.0
    monkeypatch.setenv("TASKLOOM_QUERY_TIMEOUT", "2.5")
    assert Settings().query_timeout == 2.5


def test_long_in_and_or_lists_are_not_a_server_error(http):
    """10,000 ``$in`` values (the limit) and a 1,100-way ``$or`` were one chain of ORs deeper
    than SQLite parses (500 "Expression tree is too large")."""
    insert(http, "many", [{"_id": str(i), "n": i, "s": f"s{i}"} for i in range(100)])
    values: list[Any] = [f"s{i}" for i in range(5000)] + list(range(50, 5050))
    r = count(http, "many", {"s": {"$in": values}})
    assert r.json() == {"count": 100}, r.text
    r = count(http, "many", {"n": {"$nin": list(range(10_000))}})
    assert r.json() == {"count": 0}, r.text
    r = count(http, "many", {"n": {"$in": [0.5, 1.0, 2, 2**53 + 1]}})
    assert r.json() == {"count": 2}, r.text
    r = count(http, "many", {"$or": [{"n": i} for i in range(1100)]})
    assert r.json() == {"count": 100}, r.text
    r = count(http, "many", {"$and": [{"n": {"$gte": i - 1100}} for i in range(1100)]})
    assert r.json() == {"count": 100}, r.text
