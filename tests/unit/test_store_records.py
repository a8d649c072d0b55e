"""store.records.Record: a frozen record reads as the dict it replaced and renders the same JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
import pytest

from taskloom.jobs.records import Job
from taskloom.store.records import Record

T = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass(frozen=True, slots=True, eq=False)
class Plain(Record):
    id: str
    note: str | None
    at: datetime


@dataclass(frozen=True, slots=True, eq=False)
class Spread(Record):
    _spread: ClassVar[str] = "data"
    id: str
    data: dict[str, Any]
    status: str
    created: datetime


def test_a_plain_record_reads_by_key_and_attribute_and_renders_its_fields() -> None:
    rec = Plain("a", None, T)
    assert rec.id == "a" and rec["id"] == "a" and rec.get("note") is None
    assert list(rec) == ["id", "note", "at"] and len(rec) == 3
    assert {**rec} == {"id": "a", "note": None, "at": T}
    assert rec.get("nope") is None
    with pytest.raises(KeyError):
        rec["nope"]
    # orjson's native dataclass output is the record's JSON, byte for byte
    assert orjson.dumps(rec) == orjson.dumps(rec.to_dict())


def test_a_spread_record_reads_as_the_dict_with_the_stored_object_in_place() -> None:
    data = {"public_name": "Cats", "zz_kept": [1, 2], "task_spec": {"a": 1}}
    rec = Spread("p1", data, "ACTIVE", T)
    as_dict = {"id": "p1", **data, "status": "ACTIVE", "created": T}
    assert list(rec) == list(as_dict)  # the same keys, in the same order
    assert rec.to_dict() == as_dict and dict(rec) == as_dict
    assert orjson.dumps(rec.to_dict()) == orjson.dumps(as_dict)
    assert rec["public_name"] == "Cats" and rec["status"] == "ACTIVE"
    assert rec.get("public_description") is None and "data" not in rec
    with pytest.raises(KeyError):
        rec["data"]
    assert {**rec, "changed": True} == {**as_dict, "changed": True}


def test_records_equal_a_mapping_with_the_same_items() -> None:
    rec = Plain("a", "n", T)
    assert rec == {"id": "a", "note": "n", "at": T}
    expected = {"id": "a", "note": "n", "at": T}
    assert expected == rec  # noqa: SIM300 (the dict on the left: its __eq__ defers to ours)
    assert rec != {"id": "a", "note": "other", "at": T}
    assert rec == Plain("a", "n", T) and rec != Plain("b", "n", T)
    assert rec != "a"
    with pytest.raises(TypeError):
        hash(rec)


def test_records_are_frozen() -> None:
    rec = Spread("p1", {}, "ACTIVE", T)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.status = "ARCHIVED"  # type: ignore[misc]
    assert dataclasses.replace(rec, status="ARCHIVED")["status"] == "ARCHIVED"


def test_a_job_is_a_record() -> None:
    values = {
        "id": "j1",
        "app_id": "app",
        "dataset_name": None,
        "kind": "noop",
        "params": {},
        "status": "queued",
        "progress": 0.0,
        "message": None,
        "result": None,
        "error": None,
        "attempts": 0,
        "max_attempts": 3,
        "idempotency_key": None,
        "cancel_requested": False,
        "parent_id": None,
        "created_at": T,
        "started_at": None,
        "finished_at": None,
        "updated_at": T,
    }
    job = Job.from_values(values)
    assert isinstance(job, Record) and job["dataset"] is None and job.status == "queued"
    assert orjson.dumps(job) == orjson.dumps(job.to_dict())
    assert job == {**job}
