"""The crowd services hand out typed records (``services.crowd.records``); both doors answer
them as the JSON they answered when the services returned dicts: every stored key, in order."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import orjson
import pytest

from taskloom.api.responses import OPTS
from taskloom.services.crowd.records import Project

from .conftest import BASE_URL
from .crowd_helpers import SPEC

V1 = "/toloka/api/v1"


@pytest.fixture
def toloka(transport: Any, admin_key: str) -> httpx.Client:
    return httpx.Client(
        base_url=BASE_URL, transport=transport, headers={"Authorization": f"OAuth {admin_key}"}
    )


def test_a_project_is_a_typed_record(services, scope) -> None:
    crowd = services.crowd
    project = crowd.projects.create(scope, {"public_name": "Cats", "task_spec": SPEC})
    assert isinstance(project, Project)
    assert project.public_name == "Cats" and project.status == "ACTIVE"
    assert set(project.task_spec["input_spec"]) == {"image", "n"}
    assert project.assignments_issuing_type == "AUTOMATED"
    assert project.public_description is None and "public_description" not in project
    with pytest.raises(dataclasses.FrozenInstanceError):
        project.status = "ARCHIVED"  # type: ignore[misc]
    changed = crowd.projects.update(scope, project.id, {"public_description": "d"})
    assert changed.public_description == "d" and changed["public_description"] == "d"
    # reads as the dict it replaced, and equals it
    assert changed == {**changed} and crowd.projects.get(scope, project.id) == changed
    page = crowd.projects.list(scope)
    assert [p.id for p in page["data"]] == [project.id] and page["cursor"] is None
    assert crowd.projects.archive(scope, project.id).status == "ARCHIVED"


def test_the_native_answer_is_the_project_records_json(services, scope, http) -> None:
    r = http.post("/v1/crowd/projects", json={"public_name": "Cats", "task_spec": SPEC})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    record = services.crowd.projects.get(scope, pid)
    # the settings in place, not nested under "data"
    assert list(r.json()) == ["id", *record.data, "status", "created"]
    want = orjson.dumps(record.to_dict(), option=OPTS)
    assert http.get(f"/v1/crowd/projects/{pid}").content == want
    listed = http.get("/v1/crowd/projects").content
    assert listed == orjson.dumps(
        {"data": [record.to_dict()], "count": 1, "cursor": None}, option=OPTS
    )


def test_the_toloka_door_keeps_a_projects_unknown_keys_in_place(services, scope, toloka) -> None:
    body = {"public_name": "Cats", "task_spec": SPEC, "zz_client_key": {"a": [1, 2]}}
    r = toloka.post(f"{V1}/projects", json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["zz_client_key"] == {"a": [1, 2]} and "data" not in created
    record = services.crowd.projects.get(scope, created["id"])
    assert record["zz_client_key"] == {"a": [1, 2]}
    assert list(created) == list(record)
    got = toloka.get(f"{V1}/projects/{created['id']}").json()
    assert got == created
    found = toloka.get(f"{V1}/projects", params={"sort": "id"}).json()
    assert found["items"] == [created] and found["has_more"] is False
