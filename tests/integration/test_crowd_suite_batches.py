"""Asynchronous task-suite batches (``submit_suite_batch``, kind ``crowd_suite_batch_create``),
suite patches, deleting user skills, and the Toloka-style searches (one or two queries a page,
the same objects as ``get_*``), on the real database."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from taskloom.errors import Conflict, Invalid, NotFound, RateLimited
from taskloom.jobs.context import JobContext
from taskloom.kinds.crowd import BatchCreateParams
from taskloom.runtime import Platform
from taskloom.services.crowd import operations as operations_module
from taskloom.services.crowd.search import Query
from taskloom.store.crowd_tables import crowd_operation_items, crowd_task_suites, crowd_tasks

from .test_crowd_services import INPUT, OUTPUT, make_pool, run_jobs, workers

KIND = "crowd_suite_batch_create"


@pytest.fixture
def crowd(services):
    return services.crowd


@pytest.fixture
def pool(crowd, scope) -> dict[str, Any]:
    project = crowd.projects.create(
        scope,
        {"public_name": "Cats", "task_spec": {"input_spec": INPUT, "output_spec": OUTPUT}},
    )
    return make_pool(crowd, scope, project)


def suite(pool: dict, n: int, size: int = 2, **extra: Any) -> dict[str, Any]:
    tasks = [{"input_values": {"image": f"https://img.test/{n}-{i}.png"}} for i in range(size)]
    return {"pool_id": pool["id"], "overlap": 1, "tasks": tasks, **extra}


def count(services, table, **where: Any) -> int:
    with services.crowd.store.read() as conn:
        q = select(func.count()).select_from(table)
        for k, v in where.items():
            q = q.where(table.c[k] == v)
        return int(conn.execute(q).scalar_one())


# -- asynchronous suite batches ----------------------------------------------------------------


def test_async_suite_batch_log_details_and_idempotency(crowd, services, scope, pool):
    items = [suite(pool, 0), {"pool_id": pool["id"], "overlap": 1, "tasks": []}, suite(pool, 2)]
    op = crowd.operations.submit_suites(scope, items, skip_invalid_items=True, operation_id="sop-1")
    assert op["kind"] == KIND and op["status"] == "pending" and op["details"] is None
    assert count(services, crowd_operation_items, job_id=op["id"]) == 3  # stored before it runs
    assert crowd.operations.log(scope, op["id"]) == []
    run_jobs(services)

    done = crowd.operations.get(scope, "sop-1")
    assert done["id"] == op["id"] and done["status"] == "completed"
    assert done["details"] == {
        "total_count": 3,
        "valid_count": 2,
        "not_valid_count": 1,
        "success_count": 2,
        "failed_count": 1,
    }
    log = crowd.operations.log(scope, "sop-1")
    assert [e["type"] for e in log] == ["TASK_SUITE_CREATE"] * 3
    assert [e["input"] for e in log] == items
    assert [e["success"] for e in log] == [True, False, True]
    assert log[1]["output"] == {
        "tasks": {"code": "ARRAY_EXPECTED", "message": "An array is expected"}
    }
    made = [crowd.suites.get(scope, e["output"]["task_suite_id"]) for e in (log[0], log[2])]
    assert [[t["input_values"] for t in s["tasks"]] for s in made] == [
        [t["input_values"] for t in items[0]["tasks"]],
        [t["input_values"] for t in items[2]["tasks"]],
    ]
    assert count(services, crowd_task_suites, pool_id=pool["id"]) == 2
    assert count(services, crowd_tasks, pool_id=pool["id"]) == 4

    # the same operation_id: the first operation, nothing new
    again = crowd.operations.submit_suites(
        scope, items, skip_invalid_items=True, operation_id="sop-1"
    )
    assert again["id"] == op["id"] and again["status"] == "completed"
    run_jobs(services)
    assert count(services, crowd_task_suites, pool_id=pool["id"]) == 2
    assert len(services.jobs.list(scope, kind=KIND)["data"]) == 1
    # ... and a task batch may not reuse it
    with pytest.raises(Conflict) as exc:
        crowd.operations.submit_tasks(scope, [{"pool_id": pool["id"]}], operation_id="sop-1")
    assert exc.value.code == "operation_id_in_use"

    # without skip_invalid_items one invalid suite fails the operation and creates nothing
    failed = crowd.operations.submit_suites(scope, items[:2], operation_id="sop-2")
    run_jobs(services)
    failed = crowd.operations.get(scope, failed["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "VALIDATION_FAILED"
    assert failed["details"]["success_count"] == 0 and failed["details"]["not_valid_count"] == 1
    assert [e["output"] for e in crowd.operations.log(scope, "sop-2")][0] == {}
    assert count(services, crowd_task_suites, pool_id=pool["id"]) == 2


def test_async_suite_batch_opens_the_pool_and_issues_whole_suites(crowd, services, scope, pool):
    op = crowd.operations.submit_suites(scope, [suite(pool, 0, size=3)], open_pool=True)
    run_jobs(services)
    assert crowd.operations.get(scope, op["id"])["status"] == "completed"
    assert crowd.pools.get(scope, pool["id"])["status"] == "OPEN"
    (w,) = workers(crowd, scope, 1)
    a = crowd.issuing.request(scope, w, pool["id"])
    suite_id = crowd.operations.log(scope, op["id"])[0]["output"]["task_suite_id"]
    assert a["task_suite_id"] == suite_id and len(a["tasks"]) == 3


def test_async_suite_batch_survives_a_lost_worker(crowd, services, scope, pool):
    op = crowd.operations.submit_suites(scope, [suite(pool, i) for i in range(3)])
    claimed = services.jobs.claim("doomed-worker")  # takes the job, then "dies"
    assert claimed["id"] == op["id"]
    deadline = time.monotonic() + 20
    while services.jobs.reap() == 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    run_jobs(services)
    assert crowd.operations.get(scope, op["id"])["status"] == "completed"
    assert count(services, crowd_task_suites, pool_id=pool["id"]) == 3


class _Died(Exception):
    """The worker process vanished (here: stops in the middle of the job)."""


def test_a_worker_lost_mid_batch_creates_each_suite_once(crowd, services, scope, pool, monkeypatch):
    monkeypatch.setattr(operations_module, "CHUNK", 2)  # one two-task suite a transaction
    op = crowd.operations.submit_suites(scope, [suite(pool, i) for i in range(3)])
    claimed = services.jobs.claim("doomed-worker")
    ctx = JobContext(services.jobs, claimed, "doomed-worker", services)
    calls = []

    def progress(pct: float, message: str | None = None) -> None:
        calls.append(message)
        if len(calls) == 3:  # "checking", first chunk written, then it dies
            raise _Died

    monkeypatch.setattr(ctx, "progress", progress)
    with pytest.raises(_Died):
        crowd.operations.run_suite_batch_create(
            ctx.scope, ctx.job_id, ctx, BatchCreateParams.model_validate(claimed["params"])
        )
    assert count(services, crowd_task_suites, pool_id=pool["id"]) == 1
    deadline = time.monotonic() + 20
    while services.jobs.reap() == 0:  # its lease runs out; the reaper queues it again
        assert time.monotonic() < deadline
        time.sleep(0.2)
    run_jobs(services)
    done = crowd.operations.get(scope, op["id"])
    assert done["status"] == "completed" and done["attempts"] == 2
    assert done["details"]["success_count"] == 3
    log = crowd.operations.log(scope, op["id"])
    ids = [e["output"]["task_suite_id"] for e in log]
    assert len(set(ids)) == 3 and count(services, crowd_task_suites, pool_id=pool["id"]) == 3
    assert count(services, crowd_tasks, pool_id=pool["id"]) == 6


def test_suite_batches_count_their_tasks_against_the_rate_limit(settings):
    settings = settings.model_copy(update={"crowd_tasks_per_minute": 5})
    with Platform(settings, workers=0, lock=None) as p:
        crowd = p.services.crowd
        scope = p.services.auth.scope(p.services.auth.authenticate(settings.bootstrap_api_key))
        project = crowd.projects.create(
            scope, {"public_name": "p", "task_spec": {"input_spec": INPUT, "output_spec": OUTPUT}}
        )
        pool = make_pool(crowd, scope, project)
        with pytest.raises(RateLimited):  # 2 suites of 3 tasks: 6 > 5
            crowd.operations.submit_suites(scope, [suite(pool, 0, 3), suite(pool, 1, 3)])
        assert p.services.jobs.list(scope, kind=KIND)["data"] == []
        crowd.operations.submit_suites(scope, [suite(pool, 0, 3)], operation_id="r-1")
        crowd.operations.submit_suites(
            scope, [suite(pool, 0, 3)], operation_id="r-1"
        )  # counts nothing
        with pytest.raises(RateLimited):
            crowd.operations.submit_suites(scope, [suite(pool, 1, 3)])


def test_suite_batch_input_is_checked(crowd, scope, pool):
    with pytest.raises(Invalid) as exc:
        crowd.operations.submit_suites(scope, [])
    assert exc.value.code == "empty_batch"
    with pytest.raises(Invalid):
        crowd.operations.submit_suites(scope, [suite(pool, 0)], operation_id="")


# -- suite patches, user skills ----------------------------------------------------------------


def test_patch_a_suite_and_its_tasks_follow(crowd, services, scope, pool):
    made = crowd.suites.create_many(scope, [suite(pool, 0, overlap=3)])["items"]["0"]
    (w,) = workers(crowd, scope, 1)
    crowd.pools.open(scope, pool["id"])
    assert crowd.issuing.request(scope, w, pool["id"])["task_suite_id"] == made["id"]

    out = crowd.suites.update(scope, made["id"], {"overlap": 2, "issuing_order_override": 7.5})
    assert (out["overlap"], out["remaining_overlap"]) == (2, 1)
    assert out["issuing_order_override"] == 7.5 and out == crowd.suites.get(scope, made["id"])
    for t in out["tasks"]:
        task = crowd.tasks.get(scope, t["id"])
        assert (task["overlap"], task["remaining_overlap"]) == (2, 1)
    with pytest.raises(Conflict):  # one copy is out already
        crowd.suites.update(scope, made["id"], {"overlap": 0})
    low = crowd.suites.set_overlap_or_min(scope, made["id"], 0)
    assert (low["overlap"], low["remaining_overlap"]) == (1, 0)
    inf = crowd.suites.update(scope, made["id"], {"infinite_overlap": True})
    assert inf["infinite_overlap"] is True
    for body, field in (
        ({"pool_id": "x"}, "pool_id"),
        ({"overlap": "2"}, "overlap"),
        ({"infinite_overlap": "yes"}, "infinite_overlap"),
        ({"issuing_order_override": 1e9}, "issuing_order_override"),
        ({"overlap": 2, "infinite_overlap": True}, "overlap"),
    ):
        with pytest.raises(Invalid) as exc:
            crowd.suites.update(scope, made["id"], body)
        assert exc.value.field == field, body
    with pytest.raises(NotFound):
        crowd.suites.update(scope, "no-such-suite", {"overlap": 2})


def test_patch_a_suite_can_open_its_pool(crowd, scope, pool):
    made = crowd.suites.create_many(scope, [suite(pool, 0)])["items"]["0"]
    crowd.suites.update(scope, made["id"], {}, open_pool=True)
    assert crowd.pools.get(scope, pool["id"])["status"] == "OPEN"


def test_delete_user_skill(crowd, services, admin, scope):
    skill = crowd.skills.create(scope, {"name": "accuracy"})
    w1, w2 = workers(crowd, scope, 2)
    crowd.skills.set_user_skill(scope, skill["id"], w1, 80)
    crowd.skills.set_user_skill(scope, skill["id"], w2, 60)
    crowd.skills.delete_user_skill(scope, skill["id"], w1)
    left = crowd.skills.list_user_skills(scope, skill_id=skill["id"])["data"]
    assert [s["user_id"] for s in left] == [w2]
    with pytest.raises(NotFound):
        crowd.skills.delete_user_skill(scope, skill["id"], w1)
    other = services.auth.create_user(admin, "stranger")
    stranger = services.auth.scope(services.auth.authenticate(other["api_key"]))
    with pytest.raises(NotFound):  # another tenant's skill value
        crowd.skills.delete_user_skill(stranger, skill["id"], w2)
    assert len(crowd.skills.list_user_skills(scope, skill_id=skill["id"])["data"]) == 1


# -- searches ----------------------------------------------------------------------------------


def _statements(services) -> list[str]:
    seen: list[str] = []
    engine = services.crowd.store.engine

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    return seen


def test_search_pages_are_one_or_two_queries_and_match_get(crowd, services, scope, pool):
    suites = crowd.suites.create_many(scope, [suite(pool, i, overlap=1) for i in range(4)])
    tasks = crowd.tasks.create_many(
        scope,
        [
            {"pool_id": pool["id"], "input_values": {"image": f"https://t.test/{i}"}, "overlap": 2}
            for i in range(6)
        ],
    )
    crowd.pools.open(scope, pool["id"])
    for w in workers(crowd, scope, 3):
        while (a := crowd.issuing.request(scope, w, pool["id"])) is not None:
            sols = [{"output_values": {"label": "cat"}} for _ in a["tasks"]]
            crowd.assignments.submit(scope, w, a["id"], sols)
    skill = crowd.skills.create(scope, {"name": "s"})
    for w in workers(crowd, scope, 2):
        crowd.skills.set_user_skill(scope, skill["id"], w, 50)
    assert len(tasks["items"]) == 6 and len(suites["items"]) == 4

    getters = {
        "tasks": crowd.tasks.get,
        "task_suites": crowd.suites.get,
        "assignments": crowd.assignments.get,
        "skills": crowd.skills.get,
        "pools": crowd.pools.get,
    }
    page = Query(equals={}, ranges=[], sort=[("id", False)], limit=100)
    for what, get in getters.items():
        seen = _statements(services)
        items, more = crowd.search.page(scope, what, page)
        n_queries = len(seen)
        seen.clear()
        assert items and more is False, what
        assert items == [get(scope, o["id"]) for o in items], what
        assert [o["id"] for o in items] == sorted(o["id"] for o in items)
        # assignments: one more, the indexed look for expired ACTIVE ones (none here)
        most = {"task_suites": 2, "assignments": 3}.get(what, 1)
        assert n_queries <= most, (what, n_queries)
    # has_more and id paging
    first, more = crowd.search.page(scope, "tasks", Query({}, [], [("id", False)], 4))
    rest, more2 = crowd.search.page(
        scope, "tasks", Query({}, [("id", "gt", first[-1]["id"])], [("id", False)], 100)
    )
    assert more is True and more2 is False and len(first) + len(rest) == 14  # 6 + 4 suites x 2


def test_user_skill_id_ranges_page_in_id_order(crowd, scope):
    skills = [crowd.skills.create(scope, {"name": f"s{i}"}) for i in range(2)]
    ws = workers(crowd, scope, 3)
    for s in skills:
        for w in ws:
            crowd.skills.set_user_skill(scope, s["id"], w, 10)
    ids = sorted(f"{s['id']}.{w}" for s in skills for w in ws)
    sort = [("id", False)]
    page, more = crowd.search.page(scope, "user_skills", Query({}, [], sort, 2))
    got = [f"{s['skill_id']}.{s['user_id']}" for s in page]
    while more:
        page, more = crowd.search.page(
            scope, "user_skills", Query({}, [("id", "gt", got[-1])], sort, 2)
        )
        got += [f"{s['skill_id']}.{s['user_id']}" for s in page]
    assert got == ids
    for op, expect in (
        ("gte", ids[2:]),
        ("gt", ids[3:]),
        ("lte", ids[:3]),
        ("lt", ids[:2]),
    ):
        page, _ = crowd.search.page(
            scope, "user_skills", Query({}, [("id", op, ids[2])], sort, 100)
        )
        assert [f"{s['skill_id']}.{s['user_id']}" for s in page] == expect, op


def test_operation_search_filters_and_sorts(crowd, services, scope, pool):
    a = crowd.operations.submit_tasks(
        scope,
        [{"pool_id": pool["id"], "input_values": {"image": "https://a.test/1"}, "overlap": 1}],
        operation_id="op-a",
    )
    b = crowd.operations.submit_suites(scope, [suite(pool, 0)])
    run_jobs(services)
    c = crowd.operations.submit_suites(
        scope, [suite(pool, 1)], operation_id="op-c"
    )  # still pending
    page = [("id", False)]
    everything, _ = crowd.search.page(scope, "operations", Query({}, [], page, 100))
    names = sorted(["op-a", b["id"], "op-c"])
    assert sorted(op.get("idempotency_key") or op["id"] for op in everything) == names
    assert {op["id"] for op in everything} == {a["id"], b["id"], c["id"]}
    assert everything[0]["details"] is not None or everything[0]["status"] == "pending"
    suites_done, _ = crowd.search.page(
        scope, "operations", Query({"kind": [KIND], "status": ["completed"]}, [], page, 100)
    )
    assert [o["id"] for o in suites_done] == [b["id"]]
    assert suites_done[0]["details"]["success_count"] == 1
    later = datetime.now(UTC) + timedelta(hours=1)
    none, _ = crowd.search.page(
        scope, "operations", Query({}, [("created", "gt", later)], page, 100)
    )
    assert none == []
    finished, _ = crowd.search.page(
        scope, "operations", Query({}, [("finished", "lt", later)], [("finished", True)], 100)
    )
    assert {o["id"] for o in finished} == {a["id"], b["id"]}
    gt, _ = crowd.search.page(scope, "operations", Query({}, [("id", "gt", names[0])], page, 100))
    assert len(gt) == 2
    with pytest.raises(Invalid):
        crowd.search.page(scope, "operations", Query({"nope": 1}, [], page, 10))
