"""The job engine on a real database, with workers driven by the test."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from taskloom.errors import Invalid, InvalidTransition, JobFailed, NotFound
from taskloom.jobs.registry import JobKind
from taskloom.jobs.worker import Worker

from .conftest import error_of


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def worker(services, name: str | None = None) -> Worker:
    return Worker(services.jobs, services=services, name=name)


def transitions(services, scope, job_id: str) -> list[str]:
    return [e["status"] for e in services.jobs.events(scope, job_id) if e["type"] == "transition"]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(interval)


def run_until_done(services, scope, job_id: str, timeout: float = 15.0) -> dict[str, Any]:
    """Run a worker (in this thread) until the job is terminal; retries wait for their delay."""
    w = worker(services)

    def done():
        w.run_one()
        job = services.jobs.get(scope, job_id)
        return job if job["status"] in ("completed", "failed", "cancelled") else None

    return wait_for(done, timeout, interval=0.05)


# -- the life of a job ----------------------------------------------------------------------------


def test_a_job_runs_to_completion_with_events_and_progress(services, scope):
    job, created = services.jobs.submit(scope, "sleep", {"seconds": 0.06, "steps": 3})
    assert created
    assert job["status"] == "pending"
    assert (job["progress"], job["attempts"], job["max_attempts"]) == (0.0, 0, 3)
    assert job["started_at"] is None and job["finished_at"] is None
    assert transitions(services, scope, job["id"]) == ["pending"]

    assert worker(services, "w1").run_one() is True
    done = services.jobs.get(scope, job["id"])
    assert done["status"] == "completed"
    assert done["result"] == {"slept": 0.06}
    assert done["progress"] == 100.0
    assert done["attempts"] == 1
    assert done["error"] is None
    assert done["started_at"] is not None
    assert done["finished_at"] >= done["started_at"] >= done["created_at"]

    events = services.jobs.events(scope, job["id"])
    assert [e["status"] for e in events if e["type"] == "transition"] == [
        "pending",
        "in_progress",
        "completed",
    ]
    progress = [e for e in events if e["type"] == "progress"]
    assert [round(e["progress"], 1) for e in progress] == [33.3, 66.7, 100.0]
    assert all(e["message"].startswith("slept") for e in progress)
    claimed = next(e for e in events if e["status"] == "in_progress")
    assert claimed["data"] == {"worker": "w1", "attempt": 1}
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)
    # events after a given id
    assert services.jobs.events(scope, job["id"], after=ids[-2]) == events[-1:]
    assert worker(services).run_one() is False  # nothing left


def test_progress_and_logs_from_a_kind(services, scope):
    def run(ctx, params):
        ctx.progress(10, "loading")
        ctx.log("halfway there", rows=5)
        ctx.progress(150)  # clamped
        return None

    services.jobs.registry.register(JobKind("steps", NoParams, run))
    job, _ = services.jobs.submit(scope, "steps")
    worker(services).run_one()
    done = services.jobs.get(scope, job["id"])
    assert done["status"] == "completed" and done["result"] == {}
    events = services.jobs.events(scope, job["id"])
    others = [e for e in events if e["type"] != "transition"]
    assert [(e["type"], e["progress"], e["message"]) for e in others] == [
        ("progress", 10.0, "loading"),
        ("log", None, "halfway there"),
        ("progress", 100.0, None),
    ]
    assert next(e for e in events if e["type"] == "log")["data"] == {"rows": 5}


# -- guarded transitions --------------------------------------------------------------------------


def test_illegal_transitions_are_refused_and_write_no_event(services, scope, http):
    job, _ = services.jobs.submit(scope, "noop")
    worker(services).run_one()
    before = services.jobs.events(scope, job["id"])
    with pytest.raises(InvalidTransition) as ei:
        services.jobs.cancel(scope, job["id"])
    assert (ei.value.status_code, ei.value.code) == (409, "invalid_transition")
    with pytest.raises(InvalidTransition):
        services.jobs.enqueue(scope, job["id"])
    err = error_of(http.post(f"/v1/jobs/{job['id']}/cancel"), 409, "invalid_transition")
    assert err["details"]["status"] == "completed"
    error_of(http.post(f"/v1/jobs/{job['id']}/start"), 409, "invalid_transition")
    assert services.jobs.get(scope, job["id"])["status"] == "completed"
    assert services.jobs.events(scope, job["id"]) == before

    pending, _ = services.jobs.submit(scope, "noop")
    with pytest.raises(InvalidTransition):
        services.jobs.enqueue(scope, pending["id"])
    assert services.jobs.get(scope, pending["id"])["status"] == "pending"


def test_worker_side_transitions_need_the_lease(services, scope):
    job, _ = services.jobs.submit(scope, "noop")
    engine = services.jobs
    # not claimed by anyone: a worker cannot move it
    assert engine.complete(job["id"], "w", {}) is False
    err = {"code": "X"}
    assert engine.fail(job["id"], "w", err, retry=False, attempts=1, max_attempts=1) is None
    assert engine.mark_cancelled(job["id"], "w") is False
    assert engine.progress(job["id"], "w", 50, None) is False
    assert engine.heartbeat(job["id"], "w") == (False, False)
    assert engine.get(scope, job["id"])["status"] == "pending"
    assert transitions(services, scope, job["id"]) == ["pending"]
    # claimed by w1: w2 cannot touch it
    claimed = engine.claim("w1")
    assert claimed["id"] == job["id"] and claimed["status"] == "in_progress"
    assert engine.complete(job["id"], "w2", {}) is False
    assert engine.progress(job["id"], "w2", 50, None) is False
    assert engine.heartbeat(job["id"], "w1") == (True, False)
    assert engine.complete(job["id"], "w1", {"x": 1}) is True
    assert engine.complete(job["id"], "w1", {"x": 2}) is False  # only once
    assert engine.get(scope, job["id"])["result"] == {"x": 1}


# -- idempotency ----------------------------------------------------------------------------------


def test_the_same_idempotency_key_gives_one_job(services, scope, http):
    first, created = services.jobs.submit(scope, "noop", idempotency_key="k-1")
    again, created_again = services.jobs.submit(scope, "noop", idempotency_key="k-1")
    assert created and not created_again
    assert again["id"] == first["id"]
    r = http.post("/v1/jobs", json={"kind": "noop", "idempotency_key": "k-2"})
    assert r.status_code == 201
    r2 = http.post("/v1/jobs", json={"kind": "noop", "idempotency_key": "k-2"})
    assert r2.status_code == 200 and r2.json()["id"] == r.json()["id"]
    assert len(services.jobs.list(scope)["data"]) == 2


def test_concurrent_submits_with_one_key_make_one_job(services, scope):
    n = 8
    barrier = threading.Barrier(n)
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def submit():
        try:
            barrier.wait()
            job, created = services.jobs.submit(
                scope, "sleep", {"seconds": 0}, idempotency_key="same"
            )
            results.append((job["id"], created))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert len(results) == n
    assert len({job_id for job_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    listed = services.jobs.list(scope)["data"]
    assert len(listed) == 1
    assert transitions(services, scope, listed[0]["id"]) == ["pending"]


# -- cancelling -----------------------------------------------------------------------------------


def test_cancel_of_registered_and_pending_jobs_is_immediate(services, scope):
    registered, _ = services.jobs.submit(scope, "noop", queue=False)
    pending, _ = services.jobs.submit(scope, "noop")
    for job in (registered, pending):
        out = services.jobs.cancel(scope, job["id"])
        assert out["status"] == "cancelled"
        assert out["finished_at"] is not None
    assert transitions(services, scope, registered["id"]) == ["registered", "cancelled"]
    assert transitions(services, scope, pending["id"]) == ["pending", "cancelled"]
    assert worker(services).run_one() is False  # nothing to run
    with pytest.raises(InvalidTransition):
        services.jobs.cancel(scope, pending["id"])


def test_cancel_of_a_running_job_is_cooperative(services, scope, http):
    job, _ = services.jobs.submit(scope, "sleep", {"seconds": 30, "steps": 300})
    w = worker(services, "sleeper")
    thread = threading.Thread(target=w.run_one)
    thread.start()
    try:
        wait_for(lambda: services.jobs.get(scope, job["id"])["status"] == "in_progress")
        r = http.post(f"/v1/jobs/{job['id']}/cancel")
        assert r.status_code == 200
        asked = r.json()
        # the worker has not seen it yet: still running, with the request recorded
        assert asked["status"] == "in_progress"
        assert asked["cancel_requested"] is True
        started = time.monotonic()
        thread.join(10)
        assert not thread.is_alive()
        assert time.monotonic() - started < 5
    finally:
        thread.join(30)
    done = services.jobs.get(scope, job["id"])
    assert done["status"] == "cancelled"
    assert done["progress"] < 100
    assert done["result"] is None
    events = services.jobs.events(scope, job["id"])
    assert [e["status"] for e in events if e["type"] == "transition"] == [
        "pending",
        "in_progress",
        "cancelled",
    ]
    assert any(e["type"] == "log" and e["message"] == "cancel requested" for e in events)
    error_of(http.post(f"/v1/jobs/{job['id']}/cancel"), 409, "invalid_transition")


# -- failures and retries -------------------------------------------------------------------------


def test_an_exception_is_retried_until_max_attempts_then_fails(services, scope):
    calls: list[int] = []

    def run(ctx, params):
        calls.append(ctx.attempt)
        raise ValueError(f"broken on attempt {ctx.attempt}")

    services.jobs.registry.register(JobKind("broken", NoParams, run))
    job, _ = services.jobs.submit(scope, "broken", max_attempts=3)
    done = run_until_done(services, scope, job["id"])
    assert calls == [1, 2, 3]
    assert done["status"] == "failed"
    assert done["attempts"] == 3
    assert done["error"]["code"] == "JOB_ERROR"
    assert "ValueError: broken on attempt 3" in done["error"]["message"]
    assert "Traceback" in done["error"]["details"]["traceback"]
    assert transitions(services, scope, job["id"]) == [
        "pending",
        "in_progress",
        "pending",
        "in_progress",
        "pending",
        "in_progress",
        "failed",
    ]


def test_a_retried_job_can_succeed(services, scope):
    def run(ctx, params):
        if ctx.attempt == 1:
            raise RuntimeError("transient")
        return {"attempt": ctx.attempt}

    services.jobs.registry.register(JobKind("flaky", NoParams, run))
    job, _ = services.jobs.submit(scope, "flaky")
    w = worker(services)
    assert w.run_one() is True
    retrying = services.jobs.get(scope, job["id"])
    assert retrying["status"] == "pending"
    assert retrying["error"]["code"] == "JOB_ERROR"
    assert w.run_one() is False  # the retry waits for its back-off
    done = run_until_done(services, scope, job["id"])
    assert (done["status"], done["result"], done["attempts"]) == ("completed", {"attempt": 2}, 2)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (JobFailed("the input is unusable"), "JOB_FAILED"),
        (JobFailed("no such column", code="bad_column", details={"column": "x"}), "BAD_COLUMN"),
        (Invalid("bad value", field="params.x"), "INVALID"),
        (NotFound("gone"), "NOT_FOUND"),
    ],
)
def test_job_failed_fails_at_once_without_retry(services, scope, exc, code):
    calls: list[int] = []

    def run(ctx, params):
        calls.append(ctx.attempt)
        ctx.progress(40, "working")
        raise exc

    services.jobs.registry.register(JobKind("doomed", NoParams, run))
    job, _ = services.jobs.submit(scope, "doomed", max_attempts=5)
    worker(services).run_one()
    done = services.jobs.get(scope, job["id"])
    assert calls == [1]
    assert done["status"] == "failed"
    assert done["attempts"] == 1
    assert done["error"]["code"] == code
    assert done["error"]["message"] == exc.message
    assert done["error"]["details"] == exc.details
    assert done["progress"] == 40.0  # the progress it had reached stays visible
    assert done["finished_at"] is not None
    assert transitions(services, scope, job["id"]) == ["pending", "in_progress", "failed"]


# -- leases and the reaper ------------------------------------------------------------------------


def test_expired_leases_are_reaped(services, scope, settings):
    engine = services.jobs
    assert engine.lease_seconds == settings.lease_seconds == 2.0
    retry, _ = engine.submit(scope, "noop", max_attempts=2)
    last, _ = engine.submit(scope, "noop", max_attempts=1)
    cancelled, _ = engine.submit(scope, "noop", max_attempts=3)
    claimed_at = time.monotonic()
    claimed = {engine.claim("ghost")["id"] for _ in range(3)}
    assert claimed == {retry["id"], last["id"], cancelled["id"]}
    engine.cancel(scope, cancelled["id"])  # asked while running: the ghost never sees it
    reaped = engine.reap()
    if time.monotonic() - claimed_at < settings.lease_seconds:  # (unless the host stalled)
        assert reaped == 0  # the leases have not expired yet
    time.sleep(settings.lease_seconds + 0.3)

    assert engine.reap() == 3
    assert engine.reap() == 0

    again = engine.get(scope, retry["id"])
    assert again["status"] == "pending"
    assert again["attempts"] == 1
    assert transitions(services, scope, retry["id"]) == ["pending", "in_progress", "pending"]
    lost_event = services.jobs.events(scope, retry["id"])[-1]
    assert lost_event["data"] == {"worker": "ghost"}

    failed = engine.get(scope, last["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "WORKER_LOST"
    assert failed["finished_at"] is not None

    assert engine.get(scope, cancelled["id"])["status"] == "cancelled"

    # the ghost comes back: it lost the job and cannot write to it any more
    assert engine.complete(retry["id"], "ghost", {"by": "ghost"}) is False
    assert engine.progress(retry["id"], "ghost", 50, None) is False
    assert engine.heartbeat(retry["id"], "ghost") == (False, False)
    assert engine.complete(last["id"], "ghost", {"by": "ghost"}) is False

    # another worker picks the re-queued job up and finishes it
    assert worker(services, "alive").run_one() is True
    assert engine.complete(retry["id"], "ghost", {"by": "ghost"}) is False
    done = engine.get(scope, retry["id"])
    assert (done["status"], done["result"], done["attempts"]) == ("completed", {"ok": True}, 2)
    assert engine.get(scope, last["id"])["status"] == "failed"


def test_a_heartbeating_worker_keeps_its_lease(services, scope, settings, monkeypatch):
    """A job that runs longer than the lease is not taken away while its worker lives."""
    # a little longer than the fixture's 2 s, so that a busy test host does not lose it
    monkeypatch.setattr(services.jobs, "lease_seconds", 3.0)
    job, _ = services.jobs.submit(scope, "sleep", {"seconds": 3.8})
    thread = threading.Thread(target=worker(services, "steady").run_one)
    thread.start()
    try:
        wait_for(lambda: services.jobs.get(scope, job["id"])["status"] == "in_progress")
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:
            assert services.jobs.reap() == 0
            time.sleep(0.2)
    finally:
        thread.join(30)
    done = services.jobs.get(scope, job["id"])
    assert (done["status"], done["attempts"]) == ("completed", 1)


# -- registering, starting, deleting --------------------------------------------------------------


def test_queue_false_registers_and_enqueue_starts(services, scope, http):
    job, _ = services.jobs.submit(scope, "noop", queue=False)
    assert job["status"] == "registered"
    assert worker(services).run_one() is False
    started = services.jobs.enqueue(scope, job["id"])
    assert started["status"] == "pending"
    assert worker(services).run_one() is True
    assert services.jobs.get(scope, job["id"])["status"] == "completed"
    assert transitions(services, scope, job["id"]) == [
        "registered",
        "pending",
        "in_progress",
        "completed",
    ]
    r = http.post("/v1/jobs", json={"kind": "noop", "queue": False})
    assert r.status_code == 201 and r.json()["status"] == "registered"
    r = http.post(f"/v1/jobs/{r.json()['id']}/start")
    assert r.status_code == 200 and r.json()["status"] == "pending"


def test_delete_rules(services, scope, http):
    engine = services.jobs
    registered, _ = engine.submit(scope, "noop", queue=False)
    pending, _ = engine.submit(scope, "noop")
    running, _ = engine.submit(scope, "noop")
    finished, _ = engine.submit(scope, "noop")
    cancelled, _ = engine.submit(scope, "noop", queue=False)
    engine.cancel(scope, cancelled["id"])
    # claim in creation order: 'pending' first; put it back so only 'running' stays claimed
    assert engine.claim("w1")["id"] == pending["id"]
    assert engine.fail(pending["id"], "w1", {"code": "X"}, retry=True, attempts=1, max_attempts=3)
    assert engine.claim("w1")["id"] == running["id"]
    assert engine.claim("w1")["id"] == finished["id"]
    assert engine.complete(finished["id"], "w1", {})
    assert engine.get(scope, pending["id"])["status"] == "pending"

    for job in (pending, running):
        with pytest.raises(InvalidTransition):
            engine.delete(scope, job["id"])
        err = error_of(http.delete(f"/v1/jobs/{job['id']}"), 409, "invalid_transition")
        assert err["details"]["field"] == "status"
        assert engine.get(scope, job["id"])["id"] == job["id"]

    engine.delete(scope, registered["id"])
    assert http.delete(f"/v1/jobs/{finished['id']}").json() == {"deleted": finished["id"]}
    assert http.delete(f"/v1/jobs/{cancelled['id']}").status_code == 200
    for job in (registered, finished, cancelled):
        with pytest.raises(NotFound):
            engine.get(scope, job["id"])
        with pytest.raises(NotFound):
            engine.events(scope, job["id"])
        error_of(http.get(f"/v1/jobs/{job['id']}"), 404, "job_not_found")
        error_of(http.delete(f"/v1/jobs/{job['id']}"), 404, "job_not_found")
    assert {j["id"] for j in engine.list(scope)["data"]} == {pending["id"], running["id"]}


# -- listing --------------------------------------------------------------------------------------


def test_listing_filters_and_pages(services, scope, http):
    engine = services.jobs
    services.datasets.create(scope, "alpha")
    services.datasets.create(scope, "beta")
    made: list[str] = []
    for i in range(7):
        made.append(engine.submit(scope, "noop", dataset="alpha", queue=i % 2 == 1)[0]["id"])
    for _ in range(4):
        made.append(engine.submit(scope, "noop", dataset="beta")[0]["id"])
    for _ in range(3):
        made.append(engine.submit(scope, "sleep", {"seconds": 0})[0]["id"])
    w = worker(services)
    for _ in range(3):
        assert w.run_one()  # the three oldest pending jobs (alpha 1, 3, 5) complete
    engine.cancel(scope, made[0])  # a registered one

    everything = engine.list(scope, limit=1000)["data"]
    assert [j["id"] for j in everything] == list(reversed(made))  # newest first

    def ids(**kw) -> set[str]:
        return {j["id"] for j in engine.list(scope, limit=1000, **kw)["data"]}

    assert ids(dataset="alpha") == set(made[:7])
    assert ids(dataset="beta") == set(made[7:11])
    assert ids(dataset="gamma") == set()
    assert ids(kind="sleep") == set(made[11:])
    assert ids(status=["completed"]) == {made[1], made[3], made[5]}
    assert ids(status=["cancelled"]) == {made[0]}
    assert ids(status=["registered", "cancelled"]) == {made[0], made[2], made[4], made[6]}
    assert ids(status=["pending"]) == set(made[7:])
    assert ids(active_only=True) == set(made) - {made[0], made[1], made[3], made[5]}
    assert ids(dataset="alpha", active_only=True) == {made[2], made[4], made[6]}

    # paging visits each job once, in order
    seen: list[str] = []
    cursor = None
    while True:
        page = engine.list(scope, limit=4, cursor=cursor)
        assert len(page["data"]) <= 4
        seen.extend(j["id"] for j in page["data"])
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))

    # the same over HTTP, with a status filter given twice
    seen = []
    params: dict[str, Any] = {"limit": 3, "status": ["pending", "completed"]}
    while True:
        r = http.get("/v1/jobs", params=params)
        assert r.status_code == 200
        seen.extend(j["id"] for j in r.json()["data"])
        if r.json()["cursor"] is None:
            break
        params["cursor"] = r.json()["cursor"]
    assert set(seen) == ids(status=["pending", "completed"]) and len(seen) == len(set(seen))

    with pytest.raises(Invalid) as ei:
        engine.list(scope, status=["done"])
    assert (ei.value.code, ei.value.field) == ("invalid_status", "status")
    with pytest.raises(Invalid) as ei:
        engine.list(scope, limit=0)
    assert ei.value.field == "limit"
    with pytest.raises(Invalid) as ei:
        engine.list(scope, cursor="bm9wZQ")
    assert (ei.value.code, ei.value.field) == ("invalid_cursor", "cursor")


# -- what submit accepts --------------------------------------------------------------------------


def test_unknown_kinds_and_bad_params_are_invalid_with_a_field(services, scope, http):
    cases = [
        (("nope", {}), {}, "unknown_job_kind", "kind"),
        ((None, {}), {}, "unknown_job_kind", "kind"),
        (("sleep", {}), {}, "invalid_params", "params.seconds"),
        (("sleep", {"seconds": "soon"}), {}, "invalid_params", "params.seconds"),
        (("sleep", {"seconds": -1}), {}, "invalid_params", "params.seconds"),
        (("sleep", {"seconds": 1, "steps": 0}), {}, "invalid_params", "params.steps"),
        (("sleep", {"seconds": 1, "extra": 1}), {}, "invalid_params", "params.extra"),
        (("noop", [1, 2]), {}, "invalid_params", "params"),
        (("noop", {}), {"max_attempts": 0}, "invalid_max_attempts", "max_attempts"),
        (("noop", {}), {"idempotency_key": ""}, "invalid_idempotency_key", "idempotency_key"),
        (
            ("noop", {}),
            {"idempotency_key": "k" * 256},
            "invalid_idempotency_key",
            "idempotency_key",
        ),  # noqa: E501
    ]
    for (kind, params), kw, code, field in cases:
        with pytest.raises(Invalid) as ei:
            services.jobs.submit(scope, kind, params, **kw)
        assert (ei.value.status_code, ei.value.code, ei.value.field) == (422, code, field), kind

    err = error_of(http.post("/v1/jobs", json={"kind": "nope"}), 422, "unknown_job_kind")
    assert err["details"]["field"] == "kind"
    assert "noop" in err["message"] and "sleep" in err["message"]
    r = http.post("/v1/jobs", json={"kind": "sleep", "params": {"seconds": "soon"}})
    err = error_of(r, 422, "invalid_params")
    assert err["details"]["field"] == "params.seconds"
    assert err["details"]["errors"][0]["field"] == "params.seconds"
    r = http.post("/v1/jobs", json={"kind": "noop", "params": [1]})
    assert error_of(r, 422)["details"]["field"] == "params"
    r = http.post("/v1/jobs", json={"kind": "noop", "max_attempts": 1000})
    assert error_of(r, 422)["details"]["field"] == "max_attempts"
    r = http.post("/v1/jobs", json={"kind": "noop", "dataset": "missing"})
    assert error_of(r, 404, "dataset_not_found")["details"]["field"] == "dataset"
    r = http.post("/v1/jobs", json={"kind": "noop", "parent_id": "missing"})
    assert error_of(r, 404, "job_not_found")["details"]["field"] == "parent_id"
    assert services.jobs.list(scope)["data"] == []


def test_a_kind_that_needs_a_dataset(services, scope):
    seen: list[str | None] = []

    def run(ctx, params):
        seen.append(ctx.dataset)
        return {"count": ctx.services.documents.count(ctx.scope, ctx.dataset)}

    services.jobs.registry.register(JobKind("count", NoParams, run, needs_dataset=True))
    with pytest.raises(Invalid) as ei:
        services.jobs.submit(scope, "count")
    assert (ei.value.code, ei.value.field) == ("dataset_required", "dataset")
    services.datasets.create(scope, "d")
    services.documents.insert(scope, "d", [{"x": i} for i in range(4)])
    job, _ = services.jobs.submit(scope, "count", dataset="d")
    assert job["dataset"] == "d"
    worker(services).run_one()
    assert services.jobs.get(scope, job["id"])["result"] == {"count": 4}
    assert seen == ["d"]
    # a deleted dataset leaves its jobs listed under its name
    services.datasets.delete(scope, "d")
    assert services.jobs.get(scope, job["id"])["dataset"] == "d"


def test_the_sdk_waits_for_a_job(services, sdk):
    thread = threading.Thread(target=worker(services).run_one)
    job = sdk.jobs.submit("sleep", params={"seconds": 0.2, "steps": 2})
    assert job.status == "pending"
    thread.start()
    try:
        job.wait(timeout=20)
    finally:
        thread.join(30)
    assert job.status == "completed" and job.result == {"slept": 0.2}
    assert [e["status"] for e in job.events() if e["type"] == "transition"][-1] == "completed"
    assert sdk.jobs.get(job.id).progress == 100.0
    assert [j.id for j in sdk.jobs.list(status="completed")] == [job.id]
    assert {k["name"] for k in sdk.jobs.kinds()} >= {"noop", "sleep"}


def test_concurrent_workers_claim_each_job_once(services, scope):
    engine = services.jobs
    made = {engine.submit(scope, "noop")[0]["id"] for _ in range(30)}
    claimed: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def claim_all(name: str) -> None:
        try:
            barrier.wait()
            while (job := engine.claim(name)) is not None:
                claimed.append((job["id"], name))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claim_all, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    ids = [job_id for job_id, _ in claimed]
    assert len(ids) == len(set(ids)) == 30
    assert set(ids) == made
    for job_id, name in claimed:
        job = engine.get(scope, job_id)
        assert (job["status"], job["attempts"]) == ("in_progress", 1)
        assert transitions(services, scope, job_id) == ["pending", "in_progress"]
        assert engine.complete(job_id, name, {}) is True


class DeafWorker(Worker):
    """A worker whose heartbeat has stopped (a paused or partitioned process)."""

    def _beat(self, ctx):
        pass


def test_a_worker_that_lost_its_lease_stops_without_writing(services, scope, settings):
    resume = threading.Event()
    runs: list[tuple[int, str]] = []

    def run(ctx, params):
        runs.append((ctx.attempt, ctx.worker_id))
        if ctx.attempt == 1:
            resume.wait(15)
            ctx.progress(50, "late")  # the lease is gone: this must not write
            return {"by": "first"}
        return {"by": "second"}

    services.jobs.registry.register(JobKind("slow", NoParams, run))
    job, _ = services.jobs.submit(scope, "slow")
    first = DeafWorker(services.jobs, services=services, name="deaf")
    thread = threading.Thread(target=first.run_one)
    thread.start()
    try:
        wait_for(lambda: runs)
        time.sleep(settings.lease_seconds + 0.3)
        assert services.jobs.reap() == 1
        assert worker(services, "second").run_one() is True
        resume.set()
    finally:
        resume.set()
        thread.join(30)
    done = services.jobs.get(scope, job["id"])
    assert runs == [(1, "deaf"), (2, "second")]
    assert (done["status"], done["result"], done["attempts"]) == (
        "completed",
        {"by": "second"},
        2,
    )
    events = services.jobs.events(scope, job["id"])
    assert not any(e["message"] == "late" for e in events)
    assert transitions(services, scope, job["id"]) == [
        "pending",
        "in_progress",
        "pending",
        "in_progress",
        "completed",
    ]


def test_the_sdk_iterates_jobs_page_by_page(services, sdk):
    ids = [sdk.jobs.submit("noop", queue=False).id for _ in range(5)]
    newest_first = list(reversed(ids))
    jobs = sdk.jobs.iter(kind="noop", page_size=2)
    assert next(jobs).id == newest_first[0]  # a generator: the first page is enough
    assert [j.id for j in jobs] == newest_first[1:]
    assert [j.id for j in sdk.jobs.list(kind="noop", limit=3)] == newest_first[:3]
    assert list(sdk.jobs.iter(kind="sleep")) == []
