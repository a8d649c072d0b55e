"""Crowd services on the real database: batches, operations, rate limits, issuing rules,
review, quality control, dynamic overlap, aggregation and tenancy."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from taskloom.errors import Conflict, Invalid, NotFound, RateLimited
from taskloom.jobs.worker import Worker
from taskloom.runtime import Platform
from taskloom.scope import Scope
from taskloom.services.crowd import assignments as assignments_module
from taskloom.services.crowd import issuing as issuing_module
from taskloom.services.crowd import operations as operations_module
from taskloom.services.crowd import tasks as tasks_module
from taskloom.store.crowd_tables import crowd_operation_items, crowd_tasks

INPUT = {
    "image": {"type": "url"},
    "note": {"type": "string", "required": False, "max_length": 20},
    "secret": {"type": "string", "required": False, "hidden": True},
}
OUTPUT = {"label": {"type": "string", "allowed_values": ["cat", "dog"]}}
REQUIRED = "Value must be present and not equal to null"


@pytest.fixture
def crowd(services):
    return services.crowd


@pytest.fixture
def project(crowd, scope) -> dict[str, Any]:
    return crowd.projects.create(
        scope,
        {
            "public_name": "Cats or dogs",
            "task_spec": {"input_spec": INPUT, "output_spec": OUTPUT, "view_spec": {"x": 1}},
        },
    )


def make_pool(crowd, scope, project, **extra: Any) -> dict[str, Any]:
    body = {
        "project_id": project["id"],
        "private_name": "pool",
        "reward_per_assignment": 0.05,
        "assignment_max_duration_seconds": 600,
        "will_expire": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "defaults": {"default_overlap_for_new_tasks": 2},
        "mixer_config": {"real_tasks_count": 1},
        **extra,
    }
    return crowd.pools.create(scope, body)


@pytest.fixture
def pool(crowd, scope, project) -> dict[str, Any]:
    return make_pool(crowd, scope, project)


def task(pool: dict, n: int = 0, **extra: Any) -> dict[str, Any]:
    return {"pool_id": pool["id"], "input_values": {"image": f"https://img.test/{n}.png"}, **extra}


def add_tasks(crowd, scope, pool, *items: dict) -> list[str]:
    out = crowd.tasks.create_many(scope, list(items), open_pool=True)
    assert out["validation_errors"] == {}
    return [out["items"][str(i)]["id"] for i in range(len(items))]


def workers(crowd, scope, n: int) -> list[str]:
    return [crowd.workers.register(scope, {"name": f"w{i}"})["id"] for i in range(n)]


def answer(crowd, scope, worker: str, pool: dict, labels: dict[str, str] | str) -> dict | None:
    """Take the worker's next assignment and answer it (one label for all, or per task id)."""
    a = crowd.issuing.request(scope, worker, pool["id"])
    if a is None:
        return None
    sols = [
        {"output_values": {"label": labels if isinstance(labels, str) else labels[t["id"]]}}
        for t in a["tasks"]
    ]
    return crowd.assignments.submit(scope, worker, a["id"], sols)


def count_tasks(crowd, scope, pool) -> int:
    return len(crowd.tasks.list(scope, pool_id=pool["id"], limit=1000)["data"])


def run_jobs(services) -> None:
    worker = Worker(services.jobs, services=services)
    while worker.run_one():
        pass


# -- projects, pools ---------------------------------------------------------------------------


def test_project_spec_is_parsed_and_pool_moves_between_states(crowd, scope, project, pool):
    assert project["status"] == "ACTIVE"
    assert project["task_spec"]["view_spec"] == {"x": 1}
    assert project["task_spec"]["output_spec"]["label"]["allowed_values"] == ["cat", "dog"]
    with pytest.raises(Invalid) as exc:
        crowd.projects.create(
            scope,
            {
                "public_name": "x",
                "task_spec": {"input_spec": {"a": {"type": "nope"}}, "output_spec": OUTPUT},
            },
        )
    assert exc.value.field.startswith("task_spec.input_spec.a")
    assert pool["status"] == "CLOSED"
    assert crowd.pools.open(scope, pool["id"])[1] is True
    assert crowd.pools.open(scope, pool["id"])[1] is False
    with pytest.raises(Conflict):
        crowd.pools.archive(scope, pool["id"])  # open: close first
    with pytest.raises(Conflict):
        crowd.projects.archive(scope, project["id"])
    assert crowd.pools.close(scope, pool["id"])[1] is True
    archived, changed = crowd.pools.archive(scope, pool["id"])
    assert archived["status"] == "ARCHIVED" and changed
    assert crowd.pools.archive(scope, pool["id"])[1] is False
    with pytest.raises(Conflict):
        crowd.pools.open(scope, pool["id"])
    out = crowd.tasks.create_many(scope, [task(pool, overlap=1)])
    assert out["validation_errors"]["0"]["pool_id"]["code"] == "POOL_ARCHIVED"
    assert crowd.projects.archive(scope, project["id"])["status"] == "ARCHIVED"


def test_pool_settings_are_checked(crowd, scope, project):
    with pytest.raises(Invalid) as exc:
        make_pool(
            crowd,
            scope,
            project,
            dynamic_overlap_config={
                "type": "BASIC",
                "max_overlap": 3,
                "min_confidence": 0.8,
                "fields": [{"name": "nope"}],
            },
        )
    assert exc.value.field == "dynamic_overlap_config.fields.0.name"
    with pytest.raises(NotFound):
        make_pool(
            crowd,
            scope,
            project,
            quality_control={
                "configs": [
                    {
                        "collector_config": {"type": "GOLDEN_SET"},
                        "rules": [
                            {
                                "conditions": [
                                    {"key": "total_answers_count", "operator": "GTE", "value": 1}
                                ],
                                "action": {
                                    "type": "SET_SKILL",
                                    "parameters": {"skill_id": "missing", "skill_value": 1},
                                },
                            }
                        ],
                    }
                ]
            },
        )
    with pytest.raises(Invalid) as exc:
        make_pool(crowd, scope, project, mixer_config={"real_tasks_count": 0})
    assert exc.value.field == "mixer_config.real_tasks_count"


# -- synchronous batches -----------------------------------------------------------------------


def test_a_batch_with_an_invalid_item_creates_nothing_unless_skipping(crowd, scope, pool):
    items = [
        task(pool, 0, overlap=1),
        {"pool_id": pool["id"], "input_values": {}, "overlap": 1},
        {"pool_id": pool["id"], "input_values": {"image": "not a url", "note": 5}, "overlap": 1},
    ]
    out = crowd.tasks.create_many(scope, items)
    assert out["items"] == {}
    errors = out["validation_errors"]
    assert errors["1"] == {"input_values.image": {"code": "VALUE_REQUIRED", "message": REQUIRED}}
    assert errors["2"]["input_values.image"]["code"] == "INVALID_URL_SYNTAX"
    assert errors["2"]["input_values.note"]["code"] == "STRING_EXPECTED"
    assert count_tasks(crowd, scope, pool) == 0

    out = crowd.tasks.create_many(scope, items, skip_invalid_items=True)
    assert set(out["items"]) == {"0"} and set(out["validation_errors"]) == {"1", "2"}
    created = out["items"]["0"]
    assert created["overlap"] == 1 and created["remaining_overlap"] == 1
    assert crowd.tasks.get(scope, created["id"])["input_values"] == items[0]["input_values"]
    assert count_tasks(crowd, scope, pool) == 1


def test_every_task_field_and_the_defaults(crowd, scope, pool):
    with pytest.raises(Invalid) as exc:
        crowd.tasks.create(scope, task(pool))
    assert exc.value.field == "overlap" and exc.value.code == "VALUE_REQUIRED"
    full = task(
        pool,
        1,
        known_solutions=[
            {"output_values": {"label": "cat"}, "correctness_weight": 0.5},
            {"output_values": {"label": "dog"}},
        ],
        baseline_solutions=[{"output_values": {"label": "cat"}, "confidence_weight": 0.8}],
        message_on_unknown_solution="look at the ears",
        infinite_overlap=False,
        origin_task_id="elsewhere-1",
        reserved_for=["w1", 7],
        unavailable_for=["w2"],
    )
    created = crowd.tasks.create(scope, full, allow_defaults=True, open_pool=True)
    assert created["overlap"] == 2 and created["remaining_overlap"] == 2
    assert created["known_solutions"][1]["correctness_weight"] == 1.0
    assert created["baseline_solutions"][0]["confidence_weight"] == 0.8
    assert created["reserved_for"] == ["w1", "7"] and created["unavailable_for"] == ["w2"]
    assert created["origin_task_id"] == "elsewhere-1"
    assert isinstance(created["created"], datetime)
    got = crowd.tasks.get(scope, created["id"])
    assert {k: got[k] for k in created} == created
    assert crowd.pools.get(scope, pool["id"])["status"] == "OPEN"
    bad = crowd.tasks.create_many(
        scope,
        [task(pool, overlap=0, known_solutions=[{"output_values": {"label": "cow"}}], extra=1)],
    )["validation_errors"]["0"]
    assert bad["overlap"]["code"] == "VALUE_LESS_THAN_MIN"
    assert bad["known_solutions.0.output_values.label"]["code"] == "VALUE_NOT_ALLOWED"
    assert bad["extra"]["code"] == "VALUE_NOT_ALLOWED"
    updated = crowd.tasks.set_overlap_or_min(scope, created["id"], 0)
    assert updated["overlap"] == 0 and updated["remaining_overlap"] == 0


def test_task_suites_are_issued_whole(crowd, scope, pool):
    out = crowd.suites.create_many(
        scope,
        [
            {
                "pool_id": pool["id"],
                "overlap": 1,
                "tasks": [
                    {"input_values": {"image": "https://a.test/1"}},
                    {"input_values": {"image": "https://a.test/2"}},
                ],
            },
            {
                "pool_id": pool["id"],
                "overlap": 1,
                "tasks": [
                    {
                        "input_values": {"image": "https://a.test/3"},
                        "baseline_solutions": [{"output_values": {"label": "cat"}}],
                    }
                ],
            },
        ],
        skip_invalid_items=True,
        open_pool=True,
    )
    assert (
        out["validation_errors"]["1"]["tasks.0.baseline_solutions"]["code"] == "VALUE_NOT_ALLOWED"
    )
    suite = out["items"]["0"]
    assert len(suite["tasks"]) == 2 and crowd.suites.get(scope, suite["id"]) == suite
    w1, w2 = workers(crowd, scope, 2)
    a = crowd.issuing.request(scope, w1, pool["id"])
    assert a["task_suite_id"] == suite["id"] and a["mixed"] is False
    assert [t["id"] for t in a["tasks"]] == [t["id"] for t in suite["tasks"]]
    assert crowd.issuing.request(scope, w2, pool["id"]) is None  # overlap 1, taken


# -- operations --------------------------------------------------------------------------------


def test_async_batch_operation_log_and_idempotency(crowd, services, scope, pool):
    items = [
        task(pool, 0, overlap=1),
        {"pool_id": pool["id"], "input_values": {}},
        task(pool, 2, overlap=1),
    ]
    op = crowd.operations.submit_tasks(scope, items, skip_invalid_items=True, operation_id="op-1")
    assert op["kind"] == "crowd_batch_create" and op["status"] == "pending"
    with services.jobs.store.read() as conn:  # the items are stored before the job runs
        staged = conn.execute(
            select(func.count()).where(crowd_operation_items.c.job_id == op["id"])
        ).scalar_one()
    assert staged == 3
    run_jobs(services)
    done = crowd.operations.get(scope, "op-1")
    assert done["id"] == op["id"] and done["status"] == "completed"
    assert done["details"] == {
        "total_count": 3,
        "valid_count": 2,
        "not_valid_count": 1,
        "success_count": 2,
        "failed_count": 1,
    }
    log = crowd.operations.log(scope, op["id"])
    assert [e["input"] for e in log] == items
    assert [e["success"] for e in log] == [True, False, True]
    assert log[1]["output"]["input_values.image"]["code"] == "VALUE_REQUIRED"
    ids = {e["output"]["task_id"] for e in log if e["success"]}
    assert {t["id"] for t in crowd.tasks.list(scope, pool_id=pool["id"])["data"]} == ids

    again = crowd.operations.submit_tasks(
        scope, items, skip_invalid_items=True, operation_id="op-1"
    )
    assert again["id"] == op["id"]
    run_jobs(services)
    assert count_tasks(crowd, scope, pool) == 2
    assert len(services.jobs.list(scope, kind="crowd_batch_create")["data"]) == 1

    failed = crowd.operations.submit_tasks(scope, items[:2], operation_id="op-2")
    run_jobs(services)
    failed = crowd.operations.get(scope, failed["id"])
    assert failed["status"] == "failed"
    assert failed["details"] == {
        "total_count": 2,
        "valid_count": 1,
        "not_valid_count": 1,
        "success_count": 0,
        "failed_count": 2,
    }
    assert count_tasks(crowd, scope, pool) == 2


def test_an_async_batch_survives_a_lost_worker(crowd, services, scope, pool):
    op = crowd.operations.submit_tasks(scope, [task(pool, i, overlap=1) for i in range(3)])
    claimed = services.jobs.claim("doomed-worker")  # takes the job, then "dies"
    assert claimed["id"] == op["id"]
    deadline = time.monotonic() + 20
    while services.jobs.reap() == 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    run_jobs(services)
    assert crowd.operations.get(scope, op["id"])["status"] == "completed"
    assert count_tasks(crowd, scope, pool) == 3


# -- rate limits -------------------------------------------------------------------------------


def test_rate_limit_refuses_and_survives_a_restart(settings, monkeypatch):
    fixed = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    for module in (tasks_module, operations_module):
        monkeypatch.setattr(module, "utcnow", lambda: fixed)
    settings = settings.model_copy(update={"crowd_tasks_per_minute": 5, "crowd_tasks_per_day": 7})
    with Platform(settings, workers=0, lock=None) as p:
        crowd = p.services.crowd
        scope = p.services.auth.scope(p.services.auth.authenticate(settings.bootstrap_api_key))
        proj = crowd.projects.create(
            scope, {"public_name": "p", "task_spec": {"input_spec": INPUT, "output_spec": OUTPUT}}
        )
        pool = make_pool(crowd, scope, proj)
        crowd.tasks.create_many(scope, [task(pool, i, overlap=1) for i in range(4)])
        with pytest.raises(RateLimited) as exc:
            crowd.tasks.create_many(scope, [task(pool, i, overlap=1) for i in range(2)])
        assert exc.value.status_code == 429 and exc.value.details["period"] == "minute"
        with pytest.raises(RateLimited):
            crowd.operations.submit_tasks(scope, [task(pool, i, overlap=1) for i in range(2)])
        assert count_tasks(crowd, scope, pool) == 4
        assert p.services.jobs.list(scope, kind="crowd_batch_create")["data"] == []
    with Platform(settings, workers=0, lock=None) as p:  # the count is in the database
        crowd = p.services.crowd
        with pytest.raises(RateLimited):
            crowd.tasks.create_many(scope, [task(pool, i, overlap=1) for i in range(2)])
        crowd.tasks.create_many(scope, [task(pool, 9, overlap=1)])
        later = fixed + timedelta(minutes=1)
        for module in (tasks_module, operations_module):
            monkeypatch.setattr(module, "utcnow", lambda: later)
        crowd.tasks.create_many(scope, [task(pool, i, overlap=1) for i in range(2)])  # new minute
        with pytest.raises(RateLimited) as exc:
            crowd.tasks.create_many(scope, [task(pool, 1, overlap=1)])  # 8 > 7 a day
        assert exc.value.details["period"] == "day"
        assert count_tasks(crowd, scope, pool) == 7


# -- issuing -----------------------------------------------------------------------------------


def test_issuing_respects_reservations_overlap_and_one_copy_per_worker(crowd, scope, pool):
    w1, w2, w3 = workers(crowd, scope, 3)
    with pytest.raises(Conflict):  # closed
        crowd.issuing.request(scope, w1, pool["id"])
    reserved, unavailable, plain = add_tasks(
        crowd,
        scope,
        pool,
        task(pool, 0, overlap=2, reserved_for=[w1]),
        task(pool, 1, overlap=2, unavailable_for=[w1]),
        task(pool, 2, overlap=2),
    )
    first = crowd.issuing.request(scope, w1, pool["id"])
    assert [t["id"] for t in first["tasks"]] == [reserved]
    assert first["status"] == "ACTIVE" and first["reward"] == 0.05
    assert "secret" not in first["tasks"][0]["input_values"]
    assert crowd.issuing.request(scope, w1, pool["id"])["id"] == first["id"]  # still active
    crowd.assignments.submit(scope, w1, first["id"], [{"output_values": {"label": "cat"}}])
    got = [answer(crowd, scope, w1, pool, "cat")["tasks"][0]["id"]]
    assert got == [plain] and answer(crowd, scope, w1, pool, "cat") is None
    got = [answer(crowd, scope, w2, pool, "dog")["tasks"][0]["id"] for _ in range(2)]
    assert got == [unavailable, plain] and answer(crowd, scope, w2, pool, "dog") is None
    assert answer(crowd, scope, w3, pool, "dog")["tasks"][0]["id"] == unavailable
    assert answer(crowd, scope, w3, pool, "dog") is None  # plain: overlap 2 used up
    assert crowd.tasks.get(scope, plain)["remaining_overlap"] == 0


def test_an_expired_assignment_gives_its_overlap_back(crowd, scope, pool, monkeypatch):
    (tid,) = add_tasks(crowd, scope, pool, task(pool, overlap=1))
    w1, w2 = workers(crowd, scope, 2)
    a = crowd.issuing.request(scope, w1, pool["id"])
    assert crowd.issuing.request(scope, w2, pool["id"]) is None
    later = datetime.now(UTC) + timedelta(seconds=601)
    monkeypatch.setattr(issuing_module, "utcnow", lambda: later)
    b = crowd.issuing.request(scope, w2, pool["id"])
    assert b["tasks"][0]["id"] == tid
    expired = crowd.assignments.get(scope, a["id"])
    assert expired["status"] == "EXPIRED" and expired["expired"] == later
    with pytest.raises(Conflict):
        crowd.assignments.submit(scope, w1, a["id"], [{"output_values": {"label": "cat"}}])
    assert crowd.issuing.request(scope, w1, pool["id"]) is None  # had it once


def test_reading_an_assignment_past_its_time_shows_it_expired(crowd, scope, pool, monkeypatch):
    """Nobody sees ACTIVE an assignment that can no longer be submitted, even before the
    pool's next request; and reading it gives its overlap back at once."""
    (tid,) = add_tasks(crowd, scope, pool, task(pool, overlap=1))
    (w1,) = workers(crowd, scope, 1)
    a = crowd.issuing.request(scope, w1, pool["id"])
    assert crowd.tasks.get(scope, tid)["remaining_overlap"] == 0
    listed = crowd.assignments.list(scope, pool_id=pool["id"], status="ACTIVE")["data"]
    assert [x["id"] for x in listed] == [a["id"]]  # within its time: still ACTIVE
    later = datetime.now(UTC) + timedelta(seconds=601)
    monkeypatch.setattr(assignments_module, "utcnow", lambda: later)
    got = crowd.assignments.get(scope, a["id"])
    assert got["status"] == "EXPIRED" and got["expired"] == later
    assert crowd.tasks.get(scope, tid)["remaining_overlap"] == 1
    assert crowd.assignments.list(scope, pool_id=pool["id"], status="ACTIVE")["data"] == []


def test_listing_assignments_expires_those_past_their_time(crowd, scope, project, monkeypatch):
    pools = [make_pool(crowd, scope, project) for _ in range(2)]
    ids = []
    for p in pools:
        add_tasks(crowd, scope, p, task(p, overlap=1))
        (w,) = workers(crowd, scope, 1)
        ids.append(crowd.issuing.request(scope, w, p["id"])["id"])
    later = datetime.now(UTC) + timedelta(seconds=601)
    monkeypatch.setattr(assignments_module, "utcnow", lambda: later)
    one = crowd.assignments.list(scope, pool_id=pools[0]["id"])["data"]
    assert [(x["id"], x["status"]) for x in one] == [(ids[0], "EXPIRED")]
    everything = crowd.assignments.list(scope, status="EXPIRED")["data"]  # the whole app
    assert sorted(x["id"] for x in everything) == sorted(ids)
    assert all(x["expired"] == later for x in everything)


def test_concurrent_requests_never_share_the_last_slot(crowd, scope, pool):
    add_tasks(crowd, scope, pool, task(pool, overlap=3))
    ids = workers(crowd, scope, 8)
    got: list[Any] = []
    barrier = threading.Barrier(len(ids))

    def take(w: str) -> None:
        barrier.wait()
        got.append(crowd.issuing.request(scope, w, pool["id"]))

    threads = [threading.Thread(target=take, args=(w,)) for w in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(a is not None for a in got) == 3


def test_submit_skip_accept_and_reject(crowd, scope, pool):
    (tid,) = add_tasks(crowd, scope, pool, task(pool, overlap=1))
    w1, w2, w3 = workers(crowd, scope, 3)
    a = crowd.issuing.request(scope, w1, pool["id"])
    with pytest.raises(Invalid) as exc:
        crowd.assignments.submit(scope, w1, a["id"], [{"output_values": {"label": "cow"}}])
    assert exc.value.field == "solutions.0.output_values.label"
    with pytest.raises(Invalid):
        crowd.assignments.submit(scope, w1, a["id"], [])
    with pytest.raises(NotFound):  # not theirs
        crowd.assignments.submit(scope, w2, a["id"], [{"output_values": {"label": "cat"}}])
    assert crowd.assignments.get(scope, a["id"])["status"] == "ACTIVE"
    assert crowd.assignments.skip(scope, w1, a["id"])["status"] == "SKIPPED"
    assert crowd.issuing.request(scope, w1, pool["id"]) is None
    done = answer(crowd, scope, w2, pool, "cat")
    assert done["status"] == "SUBMITTED" and done["solutions"] == [
        {"output_values": {"label": "cat"}}
    ]
    assert crowd.issuing.request(scope, w3, pool["id"]) is None
    with pytest.raises(Invalid):
        crowd.assignments.review(scope, done["id"], "REJECTED", None)
    rejected = crowd.assignments.review(scope, done["id"], "REJECTED", "not a cat")
    assert rejected["status"] == "REJECTED" and rejected["public_comment"] == "not a cat"
    assert crowd.tasks.get(scope, tid)["remaining_overlap"] == 1
    redo = answer(crowd, scope, w3, pool, "dog")
    accepted = crowd.assignments.review(scope, redo["id"], "ACCEPTED", None)
    assert accepted["status"] == "ACCEPTED" and accepted["accepted"] is not None
    with pytest.raises(Conflict):
        crowd.assignments.review(scope, redo["id"], "REJECTED", "changed my mind")
    listed = crowd.assignments.list(scope, pool_id=pool["id"], task_id=tid)["data"]
    assert [x["status"] for x in listed] == ["SKIPPED", "REJECTED", "ACCEPTED"]


# -- quality control ---------------------------------------------------------------------------


def test_control_tasks_give_partial_credit_set_a_skill_and_ban(crowd, scope, project):
    skill = crowd.skills.create(scope, {"name": "accuracy"})
    pool = make_pool(
        crowd,
        scope,
        project,
        mixer_config={"real_tasks_count": 1, "golden_tasks_count": 1},
        quality_control={
            "configs": [
                {
                    "collector_config": {"type": "GOLDEN_SET", "parameters": {"history_size": 10}},
                    "rules": [
                        {
                            "conditions": [
                                {"key": "total_answers_count", "operator": "GTE", "value": 2},
                                {"key": "correct_answers_rate", "operator": "LT", "value": 60},
                            ],
                            "action": {"type": "RESTRICTION_V2", "parameters": {"scope": "POOL"}},
                        },
                        {
                            "conditions": [
                                {"key": "total_answers_count", "operator": "GTE", "value": 1}
                            ],
                            "action": {
                                "type": "SET_SKILL_FROM_OUTPUT_FIELD",
                                "parameters": {
                                    "skill_id": skill["id"],
                                    "from_field": "correct_answers_rate",
                                },
                            },
                        },
                    ],
                }
            ]
        },
    )
    golden = [
        task(
            pool,
            100,
            infinite_overlap=True,
            known_solutions=[
                {"output_values": {"label": "cat"}},
                {"output_values": {"label": "dog"}, "correctness_weight": 0.5},
            ],
        ),
        task(
            pool, 101, infinite_overlap=True, known_solutions=[{"output_values": {"label": "cat"}}]
        ),
    ]
    g1, g2 = add_tasks(crowd, scope, pool, *golden)
    add_tasks(crowd, scope, pool, *[task(pool, i, overlap=1) for i in range(4)])
    w, other = workers(crowd, scope, 2)

    def label(a: dict) -> dict[str, str]:
        return {t["id"]: "dog" for t in a["tasks"]}

    a1 = crowd.issuing.request(scope, w, pool["id"])
    assert g1 in {t["id"] for t in a1["tasks"]} and len(a1["tasks"]) == 2 and a1["mixed"]
    crowd.assignments.submit(scope, w, a1["id"], [{"output_values": {"label": "dog"}}] * 2)
    skills = crowd.skills.list_user_skills(scope, skill_id=skill["id"], user_id=w)["data"]
    assert skills[0]["exact_value"] == pytest.approx(50.0)  # 0.5 credit of 1
    assert not crowd.issuing.is_banned(scope, w, pool["id"])
    a2 = crowd.issuing.request(scope, w, pool["id"])
    assert g2 in {t["id"] for t in a2["tasks"]}
    crowd.assignments.submit(scope, w, a2["id"], [{"output_values": {"label": "dog"}}] * 2)
    skills = crowd.skills.list_user_skills(scope, skill_id=skill["id"], user_id=w)["data"]
    assert skills[0]["exact_value"] == pytest.approx(25.0)  # 0.5 of 2
    assert crowd.issuing.is_banned(scope, w, pool["id"])
    assert crowd.issuing.request(scope, w, pool["id"]) is None  # real tasks are left
    assert crowd.issuing.request(scope, other, pool["id"]) is not None


# -- dynamic overlap ---------------------------------------------------------------------------


@pytest.fixture
def dyn(crowd, scope, project):
    skill = crowd.skills.create(scope, {"name": "trust"})
    pool = make_pool(
        crowd,
        scope,
        project,
        dynamic_overlap_config={
            "type": "BASIC",
            "max_overlap": 4,
            "min_confidence": 0.99,
            "answer_weight": {"skill_id": skill["id"]},
            "fields": [{"name": "label"}],
        },
    )
    ws = workers(crowd, scope, 5)
    for w in ws:
        crowd.skills.set_user_skill(scope, skill["id"], w, 95)
    (tid,) = add_tasks(crowd, scope, pool, task(pool, overlap=2))
    return pool, skill, ws, tid


def test_dynamic_overlap_stops_at_the_minimum_when_answers_agree(crowd, scope, dyn):
    pool, _, ws, tid = dyn
    answer(crowd, scope, ws[0], pool, "cat")
    answer(crowd, scope, ws[1], pool, "cat")
    # q = 0.95, Y = 2: P(cat) = .95^2 / (.95^2 + .05^2) = 0.99723 >= 0.99
    assert crowd.issuing.request(scope, ws[2], pool["id"]) is None
    got = crowd.tasks.get(scope, tid)
    assert (got["overlap"], got["remaining_overlap"]) == (2, 0)


def test_dynamic_overlap_grows_on_disagreement_up_to_max(crowd, scope, dyn):
    pool, skill, ws, tid = dyn
    answer(crowd, scope, ws[0], pool, "cat")
    answer(crowd, scope, ws[1], pool, "dog")  # P = 0.5: one more
    assert crowd.tasks.get(scope, tid)["overlap"] == 3
    answer(crowd, scope, ws[2], pool, "cat")
    res = crowd.aggregation.aggregate_task(
        scope, tid, method="skill_weighted", answer_weight_skill_id=skill["id"]
    )
    # cat: .95 * .05 * .95, dog: .05 * .95 * .05 -> P(cat) = .95 / (.95 + .05)
    assert res["output_values"] == {"label": "cat"}
    assert res["confidence"] == pytest.approx(0.95)
    assert crowd.tasks.get(scope, tid)["overlap"] == 4  # 0.95 < 0.99
    answer(crowd, scope, ws[3], pool, "dog")
    got = crowd.tasks.get(scope, tid)
    assert (got["overlap"], got["remaining_overlap"]) == (4, 0)  # max_overlap reached
    assert crowd.issuing.request(scope, ws[4], pool["id"]) is None


# -- aggregation -------------------------------------------------------------------------------


def test_dawid_skene_job_results(crowd, services, scope, pool):
    truth = ["cat", "dog", "cat", "cat", "dog", "dog"]
    ids = add_tasks(crowd, scope, pool, *[task(pool, i, overlap=3) for i in range(len(truth))])
    good1, good2, bad = workers(crowd, scope, 3)
    flip = {"cat": "dog", "dog": "cat"}
    for w in (good1, good2, bad):
        while True:
            a = crowd.issuing.request(scope, w, pool["id"])
            if a is None:
                break
            want = truth[ids.index(a["tasks"][0]["id"])]
            crowd.assignments.submit(
                scope, w, a["id"], [{"output_values": {"label": flip[want] if w == bad else want}}]
            )
    job = crowd.aggregation.aggregate_pool(
        scope, pool["id"], method="dawid_skene", fields=["label"]
    )
    assert job["kind"] == "crowd_aggregate"
    run_jobs(services)
    assert services.jobs.get(scope, job["id"])["status"] == "completed"
    first = crowd.aggregation.results(scope, job["id"], limit=4)
    rest = crowd.aggregation.results(scope, job["id"], limit=4, cursor=first["cursor"])
    results = first["data"] + rest["data"]
    assert rest["cursor"] is None
    assert [r["task_id"] for r in results] == ids
    assert [r["output_values"]["label"] for r in results] == truth
    assert all(0.5 < r["confidence"] <= 1.0 and r["pool_id"] == pool["id"] for r in results)
    mv = crowd.aggregation.aggregate_task(scope, ids[1], method="majority_vote")
    assert mv["output_values"] == {"label": "dog"} and mv["confidence"] == pytest.approx(2 / 3)


# -- tenancy -----------------------------------------------------------------------------------


def test_another_app_sees_nothing(crowd, services, admin, scope, project, pool):
    other = Scope(app_id=services.auth.create_app(admin, "other")["id"], user_id=scope.user_id)
    (tid,) = add_tasks(crowd, scope, pool, task(pool, overlap=1))
    (w,) = workers(crowd, scope, 1)
    a = crowd.issuing.request(scope, w, pool["id"])
    op = crowd.operations.submit_tasks(scope, [task(pool, overlap=1)])
    for call in (
        lambda: crowd.projects.get(other, project["id"]),
        lambda: crowd.pools.get(other, pool["id"]),
        lambda: crowd.pools.open(other, pool["id"]),
        lambda: crowd.tasks.get(other, tid),
        lambda: crowd.assignments.get(other, a["id"]),
        lambda: crowd.issuing.request(other, w, pool["id"]),
        lambda: crowd.operations.get(other, op["id"]),
        lambda: crowd.operations.log(other, op["id"]),
        lambda: crowd.aggregation.aggregate_pool(other, pool["id"]),
        lambda: crowd.assignments.review(other, a["id"], "ACCEPTED"),
    ):
        with pytest.raises(NotFound):
            call()
    out = crowd.tasks.create_many(other, [task(pool, overlap=1)])
    assert out["validation_errors"]["0"]["pool_id"]["code"] == "OBJECT_NOT_FOUND"
    assert crowd.projects.list(other)["data"] == [] and crowd.tasks.list(other)["data"] == []
    with services.jobs.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(crowd_tasks)).scalar_one() == 1
