"""The crowd services hand out typed records of the work (``services.crowd.work_records``):
assignments, operations and their log, skills, user skills, workers, aggregated results. Both
doors answer them as the JSON they answered when the services returned dicts: the native
``/v1/crowd`` answer is the record's ``to_dict()`` byte for byte, and the Toloka door's is
that object in Toloka's words (``wire``: zoneless times; its own translations where Toloka's
shape differs)."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import orjson
import pytest

from taskloom.api.dialects.toloka import ops as toloka_ops
from taskloom.api.dialects.toloka.http import wire
from taskloom.api.responses import OPTS
from taskloom.jobs.records import Job
from taskloom.services.crowd.work_records import (
    AggregatedResult,
    Assignment,
    NewWorker,
    Operation,
    OperationLogEntry,
    Skill,
    UserSkill,
    Worker,
)
from taskloom.store.records import Record

from .conftest import BASE_URL
from .crowd_helpers import open_pool_with_tasks, run_jobs, task

V1 = "/toloka/api/v1"


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=OPTS)


def native_list(records: list[Any]) -> bytes:
    """A native listing's bytes: ``{data, count, cursor}`` of the records' JSON."""
    data = [r.to_dict() for r in records]
    return dumps({"data": data, "count": len(data), "cursor": None})


def toloka_list(items: list[Any]) -> bytes:
    """A Toloka search's bytes: ``{items, has_more}`` of the objects, in Toloka's words."""
    return dumps(wire({"items": items, "has_more": False}))


@pytest.fixture
def toloka(transport: Any, admin_key: str) -> httpx.Client:
    return httpx.Client(
        base_url=BASE_URL, transport=transport, headers={"Authorization": f"OAuth {admin_key}"}
    )


def frozen(record: Record, field: str) -> None:
    """The record is a frozen typed record that reads by attribute and by key alike."""
    assert isinstance(record, Record)
    assert getattr(record, field) == record[field]
    assert record == {**record} == record.to_dict()
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(record, field, None)


def labelled(services: Any, scope: Any, http: httpx.Client) -> dict[str, Any]:
    """An open pool of two tasks (overlap 1); ann holds one SUBMITTED assignment."""
    pool = open_pool_with_tasks(http, 2, 1)
    crowd = services.crowd
    ann = crowd.workers.register(scope, {"name": "ann"})
    issued = crowd.issuing.request(scope, ann.id, pool["id"])
    assert isinstance(issued, Assignment) and issued.status == "ACTIVE"
    solutions = [{"output_values": {"label": "cat"}}]
    submitted = crowd.assignments.submit(scope, ann.id, issued.id, solutions)
    return {"pool": pool, "ann": ann, "assignment": submitted}


# -- the services' records ---------------------------------------------------------------------


def test_assignments_are_typed_records(services, scope, http) -> None:
    crowd = services.crowd
    scene = labelled(services, scope, http)
    pool_id, ann, submitted = scene["pool"]["id"], scene["ann"], scene["assignment"]
    assert isinstance(submitted, Assignment) and submitted.status == "SUBMITTED"
    assert submitted.solutions == [{"output_values": {"label": "cat"}}]
    assert submitted.user_id == ann.id and submitted.pool_id == pool_id
    assert len(submitted.tasks) == 1 and submitted.tasks[0]["input_values"]["image"]
    frozen(submitted, "status")
    got = crowd.assignments.get(scope, submitted.id)
    assert isinstance(got, Assignment) and got == submitted
    listed = crowd.assignments.list(scope, pool_id=pool_id)
    assert listed["cursor"] is None and [type(a) for a in listed["data"]] == [Assignment]
    assert listed["data"] == [got]
    reviewed = crowd.assignments.review(scope, got.id, "ACCEPTED")
    assert isinstance(reviewed, Assignment) and reviewed.status == "ACCEPTED"
    assert reviewed.accepted is not None and reviewed["accepted"] == reviewed.accepted
    bob = crowd.workers.register(scope, {"name": "bob"})
    issued = crowd.issuing.request(scope, bob.id, pool_id)
    assert isinstance(issued, Assignment)
    skipped = crowd.assignments.skip(scope, bob.id, issued.id)
    assert isinstance(skipped, Assignment) and skipped.status == "SKIPPED"
    # the fields are the keys the dicts had, in their order
    assert list(skipped) == [
        "id",
        "task_suite_id",
        "pool_id",
        "user_id",
        "status",
        "reward",
        "tasks",
        "solutions",
        "mixed",
        "automerged",
        "created",
        "expires",
        "submitted",
        "accepted",
        "rejected",
        "skipped",
        "expired",
        "public_comment",
    ]


def test_operations_and_their_log_are_typed_records(services, scope, http) -> None:
    crowd = services.crowd
    pool = open_pool_with_tasks(http, 1, 1)
    op = crowd.operations.submit_tasks(
        scope, [task(pool["id"], 7, overlap=1), {"pool_id": pool["id"]}], skip_invalid_items=True
    )
    # an operation is its job, every field in order, and then details
    assert isinstance(op, Operation) and isinstance(op, Job) and op.details is None
    assert list(op) == [f.name for f in dataclasses.fields(Job)] + ["details"]
    frozen(op, "status")
    run_jobs(services)
    done = crowd.operations.get(scope, op.id)
    assert isinstance(done, Operation) and done.status == "completed"
    assert done.result is not None and done.details == done["details"] == done.result["details"]
    assert done.details["success_count"] == 1 and done.details["not_valid_count"] == 1
    log = crowd.operations.log(scope, op.id)
    assert [type(e) for e in log] == [OperationLogEntry, OperationLogEntry]
    assert [e.success for e in log] == [True, False] and log[0].type == "TASK_CREATE"
    assert set(log[0].output) == {"task_id"} and log[1]["input"] == {"pool_id": pool["id"]}
    frozen(log[0], "success")
    suites = crowd.operations.submit_suites(
        scope, [{"pool_id": pool["id"], "tasks": [{"input_values": {"image": "https://i/1"}}]}]
    )
    assert isinstance(suites, Operation) and suites.kind == "crowd_suite_batch_create"


def test_skills_user_skills_and_workers_are_typed_records(services, scope) -> None:
    crowd = services.crowd
    skill = crowd.skills.create(
        scope, {"name": "accuracy", "private_comment": "c", "hidden": True, "zz_key": [1]}
    )
    assert isinstance(skill, Skill) and skill.name == "accuracy" and skill["name"] == "accuracy"
    assert skill.private_comment == "c" and skill.hidden is True and skill.training is None
    # the stored settings in place, not nested under "data"
    assert skill["zz_key"] == [1] and "data" not in skill and "training" not in skill
    assert list(skill) == ["id", *skill.data, "name", "created"]
    frozen(skill, "name")
    assert crowd.skills.get(scope, skill.id) == skill
    skills = crowd.skills.list(scope)
    assert [type(s) for s in skills["data"]] == [Skill] and skills["cursor"] is None

    new = crowd.workers.register(scope, {"external_id": "e-1", "name": "ann"})
    assert isinstance(new, NewWorker) and isinstance(new, Worker)
    assert new.token.startswith("tlw_") and list(new) == [
        "id",
        "external_id",
        "name",
        "created",
        "token",
    ]
    frozen(new, "token")
    worker = crowd.workers.get(scope, new.id)
    assert type(worker) is Worker and "token" not in worker
    assert worker == {k: v for k, v in new.items() if k != "token"}
    frozen(worker, "name")

    us = crowd.skills.set_user_skill(scope, skill.id, worker.id, 41.6)
    assert isinstance(us, UserSkill) and us.id == f"{skill.id}:{worker.id}"
    assert us.value == 42 and us.exact_value == 41.6 and us["value"] == 42
    frozen(us, "value")
    listed = crowd.skills.list_user_skills(scope, skill_id=skill.id)
    assert listed["data"] == [us] and isinstance(listed["data"][0], UserSkill)


def test_aggregated_results_are_typed_records(services, scope, http) -> None:
    crowd = services.crowd
    scene = labelled(services, scope, http)
    pool_id, task_id = scene["pool"]["id"], scene["assignment"].tasks[0]["id"]
    now = crowd.aggregation.aggregate_task(scope, task_id, method="majority_vote")
    assert isinstance(now, AggregatedResult) and now.output_values == {"label": "cat"}
    assert now.task_id == task_id and now["confidence"] == now.confidence
    assert list(now) == ["pool_id", "task_id", "confidence", "output_values"]
    frozen(now, "confidence")
    job = crowd.aggregation.aggregate_pool(scope, pool_id, method="majority_vote")
    assert isinstance(job, Job)
    run_jobs(services)
    results = crowd.aggregation.results(scope, job.id)
    assert results["cursor"] is None and results["data"] == [now]
    assert isinstance(results["data"][0], AggregatedResult)


# -- the native door: the record's JSON, byte for byte -----------------------------------------


def test_native_answers_are_the_records_json(services, scope, http) -> None:
    crowd = services.crowd
    scene = labelled(services, scope, http)
    pool_id, aid = scene["pool"]["id"], scene["assignment"].id

    # assignments: get, listing, review, and a worker's own answers
    record = crowd.assignments.get(scope, aid)
    assert http.get(f"/v1/crowd/assignments/{aid}").content == dumps(record.to_dict())
    r = http.get("/v1/crowd/assignments", params={"pool_id": pool_id})
    assert r.content == native_list(crowd.assignments.list(scope, pool_id=pool_id)["data"])
    r = http.patch(f"/v1/crowd/assignments/{aid}", json={"status": "ACCEPTED"})
    assert r.status_code == 200, r.text
    assert r.content == dumps(crowd.assignments.get(scope, aid).to_dict())
    bob = http.post("/v1/crowd/workers", json={"name": "bob"}).json()
    r = http.post(f"/v1/crowd/workers/{bob['id']}/assignments", json={"pool_id": pool_id})
    assert r.status_code == 201, r.text
    issued = crowd.assignments.get(scope, r.json()["id"])
    task_spec = crowd.projects.get(scope, scene["pool"]["project_id"]).task_spec
    assert r.content == dumps({**issued.to_dict(), "task_spec": task_spec})
    r = http.post(f"/v1/crowd/workers/{bob['id']}/assignments/{issued.id}/skip")
    assert r.status_code == 200, r.text
    assert r.content == dumps(crowd.assignments.get(scope, issued.id).to_dict())

    # skills and user skills
    r = http.post("/v1/crowd/skills", json={"name": "accuracy", "private_comment": "c"})
    assert r.status_code == 201, r.text
    skill = crowd.skills.get(scope, r.json()["id"])
    assert r.content == dumps(skill.to_dict()) and "data" not in r.json()
    assert http.get(f"/v1/crowd/skills/{skill.id}").content == dumps(skill.to_dict())
    assert http.get("/v1/crowd/skills").content == native_list([skill])
    body = {"skill_id": skill.id, "user_id": bob["id"], "value": 70}
    r = http.put("/v1/crowd/user-skills", json=body)
    assert r.status_code == 200, r.text
    [us] = crowd.skills.list_user_skills(scope, skill_id=skill.id)["data"]
    assert r.content == dumps(us.to_dict())
    assert http.get("/v1/crowd/user-skills").content == native_list([us])

    # workers: registration (the token shown once) and a worker's own view
    r = http.post("/v1/crowd/workers", json={"external_id": "e-9", "name": "cy"})
    assert r.status_code == 201, r.text
    cy = r.json()
    assert list(cy) == [f.name for f in dataclasses.fields(NewWorker)]
    worker = crowd.workers.get(scope, cy["id"])
    assert r.content == dumps({**worker.to_dict(), "token": cy["token"]})
    me = http.get("/v1/crowd/me", headers={"Authorization": f"Worker {cy['token']}"})
    assert me.status_code == 200, me.text
    assert me.content == dumps({"worker": worker.to_dict(), "pools": me.json()["pools"]})


def test_native_operation_and_aggregation_answers_are_the_records_json(
    services, scope, http
) -> None:
    crowd = services.crowd
    scene = labelled(services, scope, http)
    pool_id, task_id = scene["pool"]["id"], scene["assignment"].tasks[0]["id"]

    r = http.post(
        "/v1/crowd/tasks", params={"async_mode": "true"}, json=[task(pool_id, 5, overlap=1)]
    )
    assert r.status_code == 202, r.text
    op_id = r.json()["id"]
    assert r.content == dumps(crowd.operations.get(scope, op_id).to_dict())
    run_jobs(services)
    op = crowd.operations.get(scope, op_id)
    assert op.details is not None and op.details["success_count"] == 1
    assert http.get(f"/v1/crowd/operations/{op_id}").content == dumps(op.to_dict())
    log = crowd.operations.log(scope, op_id)
    assert http.get(f"/v1/crowd/operations/{op_id}/log").content == native_list(log)

    body = {"task_id": task_id, "method": "majority_vote"}
    r = http.post("/v1/crowd/aggregations", json=body)
    assert r.status_code == 200, r.text
    now = crowd.aggregation.aggregate_task(scope, task_id, method="majority_vote")
    assert r.content == dumps(now.to_dict())
    r = http.post("/v1/crowd/aggregations", json={"pool_id": pool_id, "method": "majority_vote"})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    run_jobs(services)
    results = crowd.aggregation.results(scope, job_id)["data"]
    assert results == [now]
    r = http.get(f"/v1/crowd/aggregations/{job_id}/results")
    assert r.content == native_list(results)


# -- the Toloka door: the same records in Toloka's words ----------------------------------------


def test_toloka_answers_are_the_records_in_tolokas_words(services, scope, http, toloka) -> None:
    crowd = services.crowd
    scene = labelled(services, scope, http)
    pool_id, aid = scene["pool"]["id"], scene["assignment"].id

    # assignments: get, search, review
    record = crowd.assignments.get(scope, aid)
    r = toloka.get(f"{V1}/assignments/{aid}")
    assert r.content == dumps(wire(record.to_dict())) and r.json()["id"] == aid
    r = toloka.get(f"{V1}/assignments", params={"pool_id": pool_id, "sort": "id"})
    listed = crowd.assignments.list(scope, pool_id=pool_id)["data"]
    assert r.content == toloka_list([a.to_dict() for a in sorted(listed, key=lambda a: a.id)])
    r = toloka.patch(f"{V1}/assignments/{aid}", json={"status": "ACCEPTED"})
    assert r.status_code == 200, r.text
    assert r.content == dumps(wire(crowd.assignments.get(scope, aid).to_dict()))

    # skills and user skills (Toloka's user skill id is "<skill id>.<user id>")
    r = toloka.post(f"{V1}/skills", json={"name": "accuracy", "zz_client_key": {"a": 1}})
    assert r.status_code == 201, r.text
    skill = crowd.skills.get(scope, r.json()["id"])
    assert skill["zz_client_key"] == {"a": 1}
    assert r.content == dumps(wire(skill.to_dict())) and "data" not in r.json()
    assert toloka.get(f"{V1}/skills/{skill.id}").content == dumps(wire(skill.to_dict()))
    assert toloka.get(f"{V1}/skills", params={"sort": "id"}).content == toloka_list(
        [skill.to_dict()]
    )
    ann = scene["ann"]
    body = {"skill_id": skill.id, "user_id": ann.id, "value": 55}
    r = toloka.put(f"{V1}/user-skills", json=body)
    assert r.status_code == 200, r.text
    [us] = crowd.skills.list_user_skills(scope, skill_id=skill.id)["data"]
    as_toloka = {**us.to_dict(), "id": f"{us.skill_id}.{us.user_id}"}
    assert r.content == dumps(wire(as_toloka))
    assert toloka.get(f"{V1}/user-skills", params={"skill_id": skill.id}).content == toloka_list(
        [as_toloka]
    )

    # aggregated solutions: by task now, and an aggregation's results by task id
    task_id = record.tasks[0]["id"]
    body = {"type": "MAJORITY_VOTE", "task_id": task_id}
    r = toloka.post(f"{V1}/aggregated-solutions/aggregate-by-task", json=body)
    assert r.status_code == 200, r.text
    now = crowd.aggregation.aggregate_task(scope, task_id, method="majority_vote")
    assert r.content == dumps(wire(now.to_dict()))
    r = toloka.post(
        f"{V1}/aggregated-solutions/aggregate-by-pool",
        json={"type": "MAJORITY_VOTE", "pool_id": pool_id},
    )
    assert r.status_code == 202, r.text
    agg_id = r.json()["id"]
    run_jobs(services)
    results = crowd.aggregation.results(scope, agg_id)["data"]
    r = toloka.get(f"{V1}/aggregated-solutions/{agg_id}")
    assert r.content == toloka_list([x.to_dict() for x in sorted(results, key=lambda x: x.task_id)])


def test_toloka_operations_are_the_operation_records_as_toloka_operations(
    services, scope, http, toloka
) -> None:
    crowd = services.crowd
    pool = open_pool_with_tasks(http, 1, 1)
    r = toloka.post(
        f"{V1}/tasks",
        params={"async_mode": "true", "skip_invalid_items": "true"},
        json=[task(pool["id"], 3, overlap=1), {"pool_id": pool["id"]}],
    )
    assert r.status_code == 202, r.text
    op_id = r.json()["id"]
    pending = crowd.operations.get(scope, op_id)
    assert r.content == dumps(wire(toloka_ops.operation(pending)))
    run_jobs(services)
    op = crowd.operations.get(scope, op_id)
    as_toloka = toloka_ops.operation(op)
    assert as_toloka["details"]["success_count"] == 1  # the record's details, in Toloka's shape
    assert toloka.get(f"{V1}/operations/{op_id}").content == dumps(wire(as_toloka))
    found = toloka.get(f"{V1}/operations", params={"type": "TASK.BATCH_CREATE"})
    assert found.content == toloka_list([as_toloka])
    log = crowd.operations.log(scope, op_id)
    want = [toloka_ops.log_entry(e, as_toloka["type"], i) for i, e in enumerate(log)]
    assert [e["success"] for e in want] == [True, False]
    assert toloka.get(f"{V1}/operations/{op_id}/log").content == dumps(wire(want))
