"""What the crowd services share: ids, raw SQL placeholders, value checks, row lookups
(bodies are parsed by ``bodies.py``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Select, Table, bindparam, select

from taskloom.errors import Invalid, NotFound
from taskloom.scope import Scope
from taskloom.store.crowd_tables import (
    crowd_assignments,
    crowd_pools,
    crowd_projects,
    crowd_skills,
    crowd_task_suites,
    crowd_tasks,
    crowd_workers,
)

if TYPE_CHECKING:
    from taskloom.store.engine import Store

MAX_TEXT = 100_000


def placeholders(store: Store) -> tuple[str, str]:
    """(value, JSON value) placeholders of raw driver statements on this store's dialect."""
    if store.dialect == "postgresql":
        return "%s", "%s::jsonb"
    return "?", "?"


def driver_ts(store: Store, now: datetime) -> Any:
    """A timestamp as the driver takes it in raw ``executemany`` (see UTCDateTime)."""
    if store.dialect == "postgresql":
        return now
    return now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def new_id() -> str:
    return str(uuid.uuid4())


# -- body checks -------------------------------------------------------------------------------

# the databases' BIGINT: a whole number past it is the caller's error, not an OverflowError
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def check_int64(value: int, field: str) -> int:
    """``value`` if a 64-bit column can hold it, else Invalid naming ``field``."""
    if value > INT64_MAX:
        raise Invalid(f"{field} is at most {INT64_MAX}", code="value_greater_than_max", field=field)
    if value < INT64_MIN:
        raise Invalid(f"{field} is at least {INT64_MIN}", code="value_less_than_min", field=field)
    return value


def body_dict(body: Any, field: str = "body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Invalid("a JSON object is required", code="object_expected", field=field)
    return body


def parse_time(value: Any, field: str) -> datetime:
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise Invalid(
                f"{field} is an ISO 8601 date and time", code="invalid_datetime", field=field
            ) from exc
    else:
        raise Invalid(f"{field} is an ISO 8601 date and time", code="invalid_datetime", field=field)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def json_safe(value: Any, field: str) -> Any:
    """``value`` if it is JSON (stored as given), else Invalid."""
    try:
        orjson.dumps(value)
    except TypeError as exc:
        raise Invalid(f"{field} is not JSON", code="invalid_json", field=field) from exc
    return value


# -- lookups inside the app --------------------------------------------------------------------

_ROW_QUERIES: dict[tuple[str, bool], Select[Any]] = {}


def _row(
    conn: Connection,
    table: Table,
    scope: Scope,
    obj_id: Any,
    what: str,
    *,
    lock: bool = False,
    field: str | None = None,
) -> Any:
    if not isinstance(obj_id, str) or not obj_id:
        raise NotFound(f"{what} not found", code=f"{what}_not_found", field=field or f"{what}_id")
    lock = lock and conn.dialect.name == "postgresql"
    q = _ROW_QUERIES.get((table.name, lock))
    if q is None:  # built once: these run several times in every request and submit
        q = select(table).where(
            table.c.id == bindparam("obj_id"), table.c.app_id == bindparam("app_id")
        )
        if lock:
            q = q.with_for_update()
        _ROW_QUERIES[(table.name, lock)] = q
    row = conn.execute(q, {"obj_id": obj_id, "app_id": scope.app_id}).first()
    if row is None:
        raise NotFound(
            f"{what} {obj_id!r} not found", code=f"{what}_not_found", field=field or f"{what}_id"
        )
    return row


def project_row(conn: Connection, scope: Scope, pid: Any, **kw: Any) -> Any:
    return _row(conn, crowd_projects, scope, pid, "project", **kw)


def pool_row(conn: Connection, scope: Scope, pid: Any, **kw: Any) -> Any:
    return _row(conn, crowd_pools, scope, pid, "pool", **kw)


def skill_row(conn: Connection, scope: Scope, sid: Any, **kw: Any) -> Any:
    return _row(conn, crowd_skills, scope, sid, "skill", **kw)


def task_row(conn: Connection, scope: Scope, tid: Any, **kw: Any) -> Any:
    return _row(conn, crowd_tasks, scope, tid, "task", **kw)


def suite_row(conn: Connection, scope: Scope, sid: Any, **kw: Any) -> Any:
    return _row(conn, crowd_task_suites, scope, sid, "task_suite", **kw)


def worker_row(conn: Connection, scope: Scope, wid: Any, **kw: Any) -> Any:
    return _row(conn, crowd_workers, scope, wid, "worker", **kw)


def assignment_row(conn: Connection, scope: Scope, aid: Any, **kw: Any) -> Any:
    return _row(conn, crowd_assignments, scope, aid, "assignment", **kw)
