"""Toloka-style searches over the crowd tables: equality filters, ranges, sort keys, a limit.

Toloka's clients page by filtering rather than with cursors: they sort by ``id`` and ask for
``id_gt=<the last id seen>`` (``task_id_gt`` for aggregated solutions), and they ask for an
id range (``id_gte``/``id_lte``, compared as strings) to find the objects of a batch. The
native ``list_*`` methods of ``services.crowd`` page with opaque cursors in creation order,
so this module answers the Toloka form. It reads only, always inside the caller's app, and
returns ``(rows, has_more)``; turning rows into objects stays with ``services.crowd``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Table, exists, select

from taskloom.errors import Invalid
from taskloom.services.auth import Scope
from taskloom.store.crowd_tables import (
    crowd_aggregated,
    crowd_answers,
    crowd_assignments,
    crowd_pools,
    crowd_projects,
    crowd_skills,
    crowd_task_suites,
    crowd_tasks,
    crowd_user_skills,
)
from taskloom.store.engine import Store
from taskloom.store.tables import jobs

MAX_LIMIT = 100_000
OPS = ("lt", "lte", "gt", "gte")


@dataclass(frozen=True)
class Query:
    """``equals``: field -> value (a list: any of them); ``ranges``: (field, op, value);
    ``sort``: (field, descending); ``limit``: page size."""

    equals: dict[str, Any]
    ranges: Sequence[tuple[str, str, Any]]
    sort: Sequence[tuple[str, bool]]
    limit: int


# Toloka's field names -> columns, per searchable object.
_COLUMNS: dict[str, dict[str, str]] = {
    "projects": {"id": "id", "created": "created_at", "status": "status"},
    "pools": {
        "id": "id",
        "created": "created_at",
        "status": "status",
        "project_id": "project_id",
    },
    "skills": {"id": "id", "created": "created_at", "name": "name"},
    "user_skills": {
        "user_id": "user_id",
        "skill_id": "skill_id",
        "created": "created_at",
        "modified": "updated_at",
    },
    "tasks": {"id": "id", "created": "created_at", "pool_id": "pool_id", "overlap": "overlap"},
    "task_suites": {
        "id": "id",
        "created": "created_at",
        "pool_id": "pool_id",
        "overlap": "overlap",
    },
    "assignments": {
        "id": "id",
        "pool_id": "pool_id",
        "user_id": "user_id",
        "status": "status",
        "task_suite_id": "suite_id",
        "created": "created_at",
        "submitted": "submitted_at",
        "accepted": "accepted_at",
        "rejected": "rejected_at",
        "skipped": "skipped_at",
        "expired": "expired_at",
    },
    "aggregated": {"task_id": "task_id", "pool_id": "pool_id"},
}

_TABLES: dict[str, Table] = {
    "projects": crowd_projects,
    "pools": crowd_pools,
    "skills": crowd_skills,
    "user_skills": crowd_user_skills,
    "tasks": crowd_tasks,
    "task_suites": crowd_task_suites,
    "assignments": crowd_assignments,
    "aggregated": crowd_aggregated,
}


def _compare(col: Column, op: str, value: Any) -> Any:
    if op == "lt":
        return col < value
    if op == "lte":
        return col <= value
    if op == "gt":
        return col > value
    return col >= value


class CrowdSearch:
    """Searches in Toloka's form; one read transaction each."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def search(
        self, scope: Scope, what: str, query: Query, *, job_id: str | None = None
    ) -> tuple[list[Any], bool]:
        """``(rows, has_more)`` of one page of ``what`` (a key of the table map)."""
        if not 1 <= query.limit <= MAX_LIMIT:
            raise Invalid(f"limit is 1 to {MAX_LIMIT}", code="invalid_limit", field="limit")
        t = _TABLES[what]
        cols = _COLUMNS[what]
        if what == "aggregated":
            # results hang off their job, and the job off the app
            q = select(t).where(
                t.c.job_id == job_id,
                exists().where(jobs.c.id == t.c.job_id, jobs.c.app_id == scope.app_id),
            )
        else:
            q = select(t).where(t.c.app_id == scope.app_id)
        for name, value in query.equals.items():
            if name == "task_id" and what in ("assignments", "task_suites"):
                q = q.where(self._holds_task(what, t, str(value)))
                continue
            if name not in cols:
                raise Invalid(f"cannot filter by {name}", code="invalid_filter", field=name)
            col = t.c[cols[name]]
            if isinstance(value, list):
                q = q.where(col.in_([self._value(col, v, name) for v in value]))
            else:
                q = q.where(col == self._value(col, value, name))
        for name, op, value in query.ranges:
            if name not in cols or op not in OPS:
                raise Invalid(f"cannot filter by {name}_{op}", code="invalid_filter", field=name)
            col = t.c[cols[name]]
            q = q.where(col.is_not(None), _compare(col, op, self._value(col, value, name)))
        order = []
        for name, desc in query.sort:
            if what == "user_skills" and name == "id":
                # a user skill's id is "<skill id>.<user id>"
                order += [t.c.skill_id.asc(), t.c.user_id.asc()]
                continue
            if name not in cols:
                raise Invalid(f"cannot sort by {name}", code="invalid_sort", field="sort")
            col = t.c[cols[name]]
            order.append(col.desc() if desc else col.asc())
        tiebreak = ("skill_id", "user_id") if what == "user_skills" else ("task_id",)
        if what not in ("user_skills", "aggregated"):
            tiebreak = ("id",)
        order += [t.c[name].asc() for name in tiebreak]
        q = q.order_by(*order).limit(query.limit + 1)
        with self.store.read() as conn:
            rows = conn.execute(q).all()
        return list(rows[: query.limit]), len(rows) > query.limit

    @staticmethod
    def _holds_task(what: str, t: Table, task_id: str) -> Any:
        if what == "task_suites":
            return exists().where(crowd_tasks.c.id == task_id, crowd_tasks.c.suite_id == t.c.id)
        return exists().where(
            crowd_answers.c.assignment_id == t.c.id, crowd_answers.c.task_id == task_id
        )

    @staticmethod
    def _value(col: Column, value: Any, name: str) -> Any:
        python_type: Any
        try:
            python_type = col.type.python_type
        except NotImplementedError:
            return value
        if python_type is datetime:
            if not isinstance(value, datetime):
                raise Invalid(f"{name} is a date and time", code="invalid_datetime", field=name)
            return value
        if python_type is int:
            try:
                return int(value)
            except (TypeError, ValueError) as exc:
                raise Invalid(f"{name} is an integer", code="integer_expected", field=name) from exc
        return str(value)
