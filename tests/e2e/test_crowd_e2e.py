"""End to end: crowd labelling on a real ``taskloom serve`` process, driven by the SDK.

A requester makes a project and a pool, puts tasks in it (one, a batch with an invalid
item, an asynchronous batch), opens it; two workers label (one through the requester's key,
one with its own token, as the labelling page does); the requester accepts and rejects, a
third worker redoes the rejected task, and a Dawid-Skene job aggregates the answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conftest import ServerProcess
from taskloom.errors import Invalid
from taskloom.sdk.client import Client
from taskloom.sdk.crowd import Worker

pytestmark = pytest.mark.e2e

SPEC = {
    "input_spec": {"text": {"type": "string", "max_length": 200}},
    "output_spec": {"sentiment": {"type": "string", "allowed_values": ["pos", "neg"]}},
}
TEXTS = {
    "what a lovely day": "pos",
    "this is awful": "neg",
    "I love it": "pos",
    "never again": "neg",
    "great service": "pos",
}


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with Client(url=server.url, api_key=server.api_key) as c:
        yield c


def label(worker: Worker, pool_id: str, answer: Any) -> list[str]:
    """The worker labels until nothing is left for them; the task ids they labelled."""
    done = []
    while (a := worker.request_assignment(pool_id)) is not None:
        assert a.status == "ACTIVE" and len(a.tasks) == 1
        out = worker.submit(a.id, [{"sentiment": answer(t)} for t in a.tasks])
        assert out.status == "SUBMITTED"
        done += [t["id"] for t in a.tasks]
        assert len(done) <= len(TEXTS)
    return done


def test_a_pool_is_labelled_reviewed_and_aggregated(client: Client) -> None:
    crowd = client.crowd
    project = crowd.create_project("Sentiment", task_spec=SPEC)
    pool = crowd.create_pool(
        project.id,
        private_name="reviews",
        reward_per_assignment=0.02,
        assignment_max_duration_seconds=300,
        will_expire="2035-01-01T00:00:00Z",
        defaults={"default_overlap_for_new_tasks": 2},
    )
    assert pool.status == "CLOSED"
    texts = list(TEXTS)

    # one task, a batch with an invalid item, an asynchronous batch
    first = crowd.create_task(
        {"pool_id": pool.id, "input_values": {"text": texts[0]}, "overlap": 2}
    )
    items = [{"pool_id": pool.id, "input_values": {"text": t}} for t in texts[1:3]]
    items.insert(1, {"pool_id": pool.id, "input_values": {"text": "x" * 300}})
    with pytest.raises(Invalid) as ei:
        crowd.create_tasks(items, allow_defaults=True)
    assert ei.value.details["validation_errors"]["1"]["input_values.text"]["code"] == (
        "STRING_LENGTH_GREATER_THAN_MAX"
    )
    batch = crowd.create_tasks(items, allow_defaults=True, skip_invalid_items=True)
    assert sorted(batch.items) == [0, 2] and list(batch.validation_errors) == [1]
    op = crowd.create_tasks_async(
        [{"pool_id": pool.id, "input_values": {"text": t}} for t in texts[3:]],
        allow_defaults=True,
        open_pool=True,
    )
    op = op.wait(timeout=60)
    assert op.status == "completed", op.data
    assert op.details["success_count"] == 2 and op.details["failed_count"] == 0
    assert [e["input"]["input_values"]["text"] for e in op.log()] == texts[3:]
    tasks = list(crowd.list_tasks(pool_id=pool.id))
    assert [t.input_values["text"] for t in tasks] == texts
    assert tasks[0].id == first.id
    assert crowd.get_pool(pool.id).status == "OPEN"  # open_pool opened it

    truth = {t.id: TEXTS[t.input_values["text"]] for t in tasks}
    ann = crowd.register_worker(name="ann")
    cid_info = crowd.register_worker(name="cid")
    cid = crowd.worker(token=cid_info.token)  # the worker's own token, no API key involved
    assert cid.me()["worker"]["id"] == cid_info.id
    assert sorted(label(crowd.worker(ann.id), pool.id, lambda t: truth[t["id"]])) == sorted(truth)
    wrong = texts.index("never again")
    cid_done = label(
        cid, pool.id, lambda t: truth[t["id"]] if t["id"] != tasks[wrong].id else "pos"
    )
    assert sorted(cid_done) == sorted(truth)

    submitted = list(crowd.list_assignments(pool_id=pool.id, status="SUBMITTED"))
    assert len(submitted) == 2 * len(TEXTS)
    for a in submitted:
        answer = a.solutions[0]["output_values"]["sentiment"]
        if answer == truth[a.tasks[0]["id"]]:
            a.accept()
        else:
            a.reject("read the text again")
    rejected = list(crowd.list_assignments(pool_id=pool.id, status="REJECTED"))
    assert [(a.user_id, a.tasks[0]["id"]) for a in rejected] == [(cid_info.id, tasks[wrong].id)]

    # the rejected answer's overlap came back: a third worker is given that task only
    eve = crowd.register_worker(name="eve")
    assert label(crowd.worker(eve.id), pool.id, lambda t: truth[t["id"]]) == [tasks[wrong].id]
    assert crowd.worker(ann.id).request_assignment(pool.id) is None

    results = crowd.aggregate_pool(pool.id, method="dawid_skene").wait(timeout=60).results()
    assert {r["task_id"]: r["output_values"]["sentiment"] for r in results} == truth
    assert all(0.5 < r["confidence"] <= 1.0 for r in results)

    assert crowd.close_pool(pool.id).status == "CLOSED"
    assert crowd.get_pool(pool.id).archive().status == "ARCHIVED"
