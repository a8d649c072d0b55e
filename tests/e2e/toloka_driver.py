"""Drives taskloom's Toloka front door with the official client, toloka-kit 1.2.3.

Runs under ``.venv-toloka/bin/python`` (toloka-kit needs httpx<0.28 and cattrs<26, so it
lives apart from taskloom's own environment); ``tests/e2e/test_toloka_kit.py`` calls it in
phases and checks what it reports::

    python toloka_driver.py PHASE URL TOKEN STATE.json

Each phase reads the state file, talks to the server only through ``TolokaClient``, and
writes what it saw back into the state file (JSON). An assertion that fails here exits
non-zero with the traceback on stderr.
"""

from __future__ import annotations

import datetime
import json
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import toloka.client as toloka
from toloka.client.aggregation import AggregatedSolutionType, PoolAggregatedSolutionRequest
from toloka.client.exceptions import (
    AuthenticationApiError,
    DoesNotExistApiError,
    TooManyRequestsApiError,
    ValidationApiError,
)
from toloka.client.project.field_spec import StringSpec, UrlSpec
from toloka.client.project.task_spec import TaskSpec
from toloka.client.project.view_spec import ClassicViewSpec

LABELS = ["cat", "dog"]


def client(url: str, token: str, **kw: Any) -> toloka.TolokaClient:
    return toloka.TolokaClient(token, url=f"{url}/toloka", timeout=30.0, **kw)


def task(pool_id: str, n: int, **kw: Any) -> toloka.Task:
    return toloka.Task(
        pool_id=pool_id,
        input_values={"image": f"https://example.com/img/{n}.png", "note": f"item {n}"},
        **kw,
    )


def new_project(tc: toloka.TolokaClient) -> toloka.Project:
    project = toloka.Project(
        public_name="Cats and dogs",
        public_description="Say what the picture shows",
        task_spec=TaskSpec(
            input_spec={
                "image": UrlSpec(),
                "note": StringSpec(required=False, max_length=100),
            },
            output_spec={"label": StringSpec(allowed_values=LABELS)},
            view_spec=ClassicViewSpec(markup="{{img src=image}}", script="", styles=""),
        ),
    )
    return tc.create_project(project)


def new_pool(tc: toloka.TolokaClient, project_id: str, overlap: int = 3) -> toloka.Pool:
    pool = toloka.Pool(
        project_id=project_id,
        private_name="e2e pool",
        may_contain_adult_content=False,
        will_expire=datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1),
        reward_per_assignment=0.01,
        assignment_max_duration_seconds=600,
        defaults=toloka.Pool.Defaults(
            default_overlap_for_new_tasks=overlap, default_overlap_for_new_task_suites=overlap
        ),
    )
    pool.set_mixer_config(real_tasks_count=1, golden_tasks_count=0, training_tasks_count=0)
    return tc.create_pool(pool)


def count_tasks(tc: toloka.TolokaClient, pool_id: str) -> int:
    return sum(1 for _ in tc.get_tasks(pool_id=pool_id, batch_size=7))


# -- phases ------------------------------------------------------------------------------------


def setup(tc: toloka.TolokaClient, state: dict[str, Any]) -> None:
    """project → pool → tasks in every way the client makes them → open the pool."""
    project = new_project(tc)
    assert project.id and project.status == toloka.Project.ProjectStatus.ACTIVE
    assert tc.get_project(project.id).public_name == "Cats and dogs"
    pool = new_pool(tc, project.id)
    assert pool.status == toloka.Pool.Status.CLOSED, pool.status
    state.update(project_id=project.id, pool_id=pool.id)
    created: list[str] = []

    # one task, synchronously
    one = tc.create_task(task(pool.id, 0, overlap=3), async_mode=False)
    assert one.id and one.pool_id == pool.id and one.created is not None
    assert one.input_values["image"].endswith("/0.png")
    created.append(one.id)

    # a synchronous batch with one invalid item, skipping it
    batch = tc.create_tasks(
        [
            task(pool.id, 1),
            toloka.Task(pool_id=pool.id, input_values={"note": 5}),
            task(pool.id, 2),
        ],
        async_mode=False,
        allow_defaults=True,
        skip_invalid_items=True,
    )
    assert sorted(batch.items) == ["0", "2"], batch.items
    errors = batch.validation_errors["1"]
    state["sync_errors"] = {k: {"code": v.code, "message": v.message} for k, v in errors.items()}
    created += [batch.items["0"].id, batch.items["2"].id]
    assert batch.items["0"].overlap == 3  # the pool's default (allow_defaults)

    # the same without skip_invalid_items creates nothing
    before = count_tasks(tc, pool.id)
    try:
        tc.create_tasks(
            [task(pool.id, 3), toloka.Task(pool_id=pool.id, input_values={"image": "nope"})],
            async_mode=False,
            allow_defaults=True,
        )
    except ValidationApiError as exc:
        state["refused"] = {"status": exc.status_code, "code": exc.code, "payload": exc.payload}
    else:
        raise AssertionError("an invalid item without skip_invalid_items must be refused")
    assert count_tasks(tc, pool.id) == before

    # an asynchronous batch, followed with wait_operation
    op_id = str(uuid.uuid4())
    async_tasks = [task(pool.id, n) for n in (4, 5, 6)]
    op = tc.create_tasks_async(async_tasks, allow_defaults=True, operation_id=op_id)
    assert op.status.value in ("PENDING", "RUNNING", "SUCCESS"), op.status
    op = tc.wait_operation(op, disable_progress=True)
    state["async_op"] = {
        "id": op.id,
        "type": op.type.value,
        "status": op.status.value,
        "details": op.details,
        "submitted": op.submitted.isoformat(),
        "finished": op.finished.isoformat() if op.finished else None,
    }
    log = tc.get_operation_log(op.id)
    state["async_log"] = [
        {"type": i.type, "success": i.success, "input": i.input, "output": i.output} for i in log
    ]
    created += [i.output["task_id"] for i in log if i.success]

    # the same operation_id again: nothing new, the first operation comes back
    n_before = count_tasks(tc, pool.id)
    again = tc.create_tasks_async(async_tasks, allow_defaults=True, operation_id=op_id)
    state["idempotent"] = {
        "first_id": op.id,
        "again_id": again.id,
        "again_status": again.status.value,
        "tasks_before": n_before,
        "tasks_after": count_tasks(tc, pool.id),
    }

    # the client's default path: async_mode with operation polling, items found by index
    default = tc.create_tasks(
        [task(pool.id, 7), toloka.Task(pool_id=pool.id, input_values={}), task(pool.id, 8)],
        allow_defaults=True,
        skip_invalid_items=True,
    )
    assert sorted(default.items) == ["0", "2"], default.items
    assert default.items["0"].input_values["image"].endswith("/7.png")
    assert default.items["2"].input_values["image"].endswith("/8.png")
    state["default_errors"] = {
        k: {f: e.code for f, e in v.items()} for k, v in (default.validation_errors or {}).items()
    }
    created += [default.items["0"].id, default.items["2"].id]
    single_default = tc.create_task(task(pool.id, 9), allow_defaults=True)
    assert single_default.id and single_default.pool_id == pool.id
    created.append(single_default.id)

    # paging: small pages through has_more cover every task once
    paged = [t.id for t in tc.get_tasks(pool_id=pool.id, batch_size=3)]
    assert len(paged) == len(set(paged)), "a page repeated a task"
    state["paged"] = paged
    state["created"] = created
    newest = tc.find_tasks(pool_id=pool.id, sort=["-created"], limit=2)
    state["newest_two"] = [t.id for t in newest.items]
    state["newest_has_more"] = newest.has_more

    # patches
    patched = tc.patch_task_overlap_or_min(one.id, overlap=2)
    state["patched_overlap"] = patched.overlap

    # open the pool; opening it again is the 204 path (no operation)
    opened = tc.open_pool(pool.id)
    assert opened.status == toloka.Pool.Status.OPEN, opened.status
    assert tc.open_pool_async(pool.id) is None
    state["pool_status"] = opened.status.value

    # errors in Toloka's envelope
    try:
        tc.get_task("no-such-task")
    except DoesNotExistApiError as exc:
        state["not_found"] = {"status": exc.status_code, "code": exc.code}


def review(tc: toloka.TolokaClient, state: dict[str, Any]) -> None:
    """Accept and reject submitted assignments, then aggregate with Dawid-Skene."""
    pool_id = state["pool_id"]
    submitted = list(tc.get_assignments(pool_id=pool_id, status="SUBMITTED", batch_size=4))
    state["submitted"] = [
        {
            "id": a.id,
            "user_id": a.user_id,
            "task_ids": [t.id for t in a.tasks],
            "labels": [s.output_values["label"] for s in a.solutions],
            "reward": str(a.reward),
        }
        for a in submitted
    ]
    reject_user = state["reject_user"]
    accepted, rejected = [], []
    for a in submitted:
        if a.user_id == reject_user and not rejected:
            r = tc.reject_assignment(a.id, "Wrong label")
            assert r.status == toloka.Assignment.REJECTED and r.public_comment == "Wrong label"
            rejected.append(a.id)
        else:
            r = tc.accept_assignment(a.id, "Well done")
            assert r.status == toloka.Assignment.ACCEPTED, r.status
            accepted.append(a.id)
    state.update(accepted=accepted, rejected=rejected)
    state["rejected_back"] = [
        a.id for a in tc.get_assignments(pool_id=pool_id, status=["REJECTED"])
    ]

    op = tc.aggregate_solutions_by_pool(
        type=AggregatedSolutionType.DAWID_SKENE,
        pool_id=pool_id,
        fields=[PoolAggregatedSolutionRequest.Field(name="label")],
    )
    assert op.type.value == "SOLUTION.AGGREGATE", op.type
    op = tc.wait_operation(op, disable_progress=True)
    state["aggregation_op"] = {"id": op.id, "status": op.status.value}
    page = tc.find_aggregated_solutions(op.id, limit=2)
    state["aggregation_first_page"] = {"n": len(page.items), "has_more": page.has_more}
    state["aggregated"] = {
        s.task_id: {"label": s.output_values["label"], "confidence": float(s.confidence)}
        for s in tc.get_aggregated_solutions(op.id, batch_size=3)
    }

    # skills: a skill, a value per worker, skill-weighted aggregation of one task
    skill = tc.create_skill(name="accuracy", hidden=True)
    for user, value in state["skills"].items():
        us = tc.set_user_skill(skill_id=skill.id, user_id=user, value=Decimal(value))
        assert us.user_id == user and us.value == round(value), us
    one = tc.aggregate_solutions_by_task(  # a WEIGHTED_DYNAMIC_OVERLAP request
        pool_id=pool_id,
        task_id=state["weighted_task"],
        answer_weight_skill_id=skill.id,
        fields=[PoolAggregatedSolutionRequest.Field(name="label")],
    )
    state["weighted"] = {"label": one.output_values["label"], "confidence": float(one.confidence)}

    # close, archive, archive the project
    closed = tc.close_pool(pool_id)
    assert closed.status == toloka.Pool.Status.CLOSED
    assert tc.close_pool_async(pool_id) is None
    archived = tc.archive_pool(pool_id)
    assert archived.status == toloka.Pool.Status.ARCHIVED
    project = tc.archive_project(state["project_id"])
    state["project_status"] = project.status.value


def rate_limit(tc: toloka.TolokaClient, state: dict[str, Any]) -> None:
    """Create tasks past a small per-minute limit: TOO_MANY_REQUESTS (429)."""
    project = new_project(tc)
    pool = new_pool(tc, project.id, overlap=1)
    state["pool_id"] = pool.id
    allowed = state["limit"]
    first = tc.create_tasks(
        [task(pool.id, n) for n in range(allowed)], async_mode=False, allow_defaults=True
    )
    state["first_batch"] = len(first.items)
    try:
        tc.create_tasks([task(pool.id, 99)], async_mode=False, allow_defaults=True)
    except TooManyRequestsApiError as exc:
        state["limited"] = {"status": exc.status_code, "code": exc.code, "payload": exc.payload}
    state["tasks_after"] = count_tasks(tc, pool.id)


def suite(pool_id: str, n: int, size: int = 2, **kw: Any) -> toloka.TaskSuite:
    return toloka.TaskSuite(
        pool_id=pool_id,
        tasks=[
            toloka.Task(input_values={"image": f"https://example.com/s/{n}-{i}.png"})
            for i in range(size)
        ],
        **kw,
    )


def suites_and_more(tc: toloka.TolokaClient, state: dict[str, Any]) -> None:
    """Task suites through the client's default (asynchronous) path and create_task_suites_async,
    find_operations / get_operations, patch_task_suite, user skills paged and deleted."""
    project = new_project(tc)
    pool = new_pool(tc, project.id, overlap=2)
    state["pool_id"] = pool.id

    # the default path: async_mode, operation polling, suites found again by index
    made = tc.create_task_suites(
        [suite(pool.id, 0), toloka.TaskSuite(pool_id=pool.id, tasks=[]), suite(pool.id, 2, 3)],
        allow_defaults=True,
        skip_invalid_items=True,
    )
    assert sorted(made.items) == ["0", "2"], made.items
    assert [len(made.items[i].tasks) for i in ("0", "2")] == [2, 3]
    assert made.items["2"].tasks[2].input_values["image"].endswith("/2-2.png")
    state["default_suites"] = {i: s.id for i, s in made.items.items()}
    state["default_suite_overlap"] = made.items["0"].overlap
    state["default_suite_errors"] = {
        k: {f: e.code for f, e in v.items()} for k, v in (made.validation_errors or {}).items()
    }
    one = tc.create_task_suite(suite(pool.id, 3, overlap=1))  # one suite, also asynchronous
    assert one.id and len(one.tasks) == 2 and one.overlap == 1

    # create_task_suites_async + wait_operation, and the same operation_id again
    op_id = str(uuid.uuid4())
    async_suites = [suite(pool.id, n, overlap=1) for n in (4, 5)]
    op = tc.create_task_suites_async(async_suites, operation_id=op_id)
    op = tc.wait_operation(op, disable_progress=True)
    log = tc.get_operation_log(op.id)
    state["suite_op"] = {
        "id": op.id,
        "type": op.type.value,
        "status": op.status.value,
        "class": type(op).__name__,
        "details": op.details,
        "log_outputs": [sorted(i.output) for i in log],
    }
    n_before = sum(1 for _ in tc.get_task_suites(pool_id=pool.id))
    again = tc.create_task_suites_async(async_suites, operation_id=op_id)
    state["suite_idempotent"] = {
        "same_id": again.id == op.id,
        "before": n_before,
        "after": sum(1 for _ in tc.get_task_suites(pool_id=pool.id, batch_size=2)),
    }

    # operations: filters, sort, has_more paging (get_operations pages by id_gt)
    found = tc.find_operations(type="TASK_SUITE.BATCH_CREATE", status="SUCCESS", limit=100)
    paged = [o.id for o in tc.get_operations(batch_size=1)]
    newest = tc.find_operations(sort=["-submitted"], limit=1)
    state["operations"] = {
        "suite_success": sorted(o.id for o in found.items),
        "types": sorted({type(o).__name__ for o in found.items}),
        "paged": paged,
        "newest": [o.id for o in newest.items],
        "newest_has_more": newest.has_more,
        "pool_open": [o.id for o in tc.find_operations(type="POOL.OPEN").items],
    }

    # patch_task_suite (TaskSuitePatch) and patch_task_suite_overlap_or_min
    sid = made.items["0"].id
    patched = tc.patch_task_suite(sid, overlap=4, issuing_order_override=7.5, open_pool=True)
    state["patched_suite"] = {
        "overlap": patched.overlap,
        "issuing_order_override": float(patched.issuing_order_override),
        "pool_status": tc.get_pool(pool.id).status.value,
        "task_overlap": tc.get_task(patched.tasks[0].id).overlap,
    }
    lowered = tc.patch_task_suite_overlap_or_min(sid, overlap=1)
    state["patched_suite"]["lowered"] = lowered.overlap

    # user skills: set, page by id, delete
    skill = tc.create_skill(name="speed")
    set_ids = [
        tc.set_user_skill(skill_id=skill.id, user_id=w, value=Decimal(50)).id
        for w in state["workers"]
    ]
    paged_skills = [us.id for us in tc.get_user_skills(skill_id=skill.id, batch_size=1)]
    tc.delete_user_skill(set_ids[0])
    state["user_skills"] = {
        "set": set_ids,
        "paged": paged_skills,
        "after_delete": [us.id for us in tc.get_user_skills(skill_id=skill.id)],
    }
    try:
        tc.delete_user_skill(set_ids[0])
    except DoesNotExistApiError as exc:
        state["user_skills"]["deleted_again"] = exc.code


def bad_token(url: str, state: dict[str, Any]) -> None:
    try:
        client(url, "tlk_not_a_key", retries=0).get_project("x")
    except AuthenticationApiError as exc:
        state["bad_token"] = {"status": exc.status_code, "code": exc.code}


def main() -> None:
    phase, url, token, state_path = sys.argv[1:5]
    path = Path(state_path)
    state = json.loads(path.read_text()) if path.exists() else {}
    # retries=0: a 429 must reach the caller rather than be waited out for a minute
    tc = client(url, token, retries=0 if phase == "rate_limit" else 3)
    if phase == "setup":
        setup(tc, state)
        bad_token(url, state)
    elif phase == "review":
        review(tc, state)
    elif phase == "rate_limit":
        rate_limit(tc, state)
    elif phase == "suites":
        suites_and_more(tc, state)
    else:
        raise SystemExit(f"unknown phase {phase!r}")
    path.write_text(json.dumps(state, indent=2, default=str))


if __name__ == "__main__":
    main()
