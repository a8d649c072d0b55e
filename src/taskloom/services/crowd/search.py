"""Toloka-style searches over the crowd tables: equality filters, ranges, sort keys, a limit.

Toloka's clients page by filtering rather than with cursors: they sort by ``id`` and ask for
``id_gt=<the last id seen>`` (``task_id_gt`` for aggregated solutions), and they ask for an
id range (``id_gte``/``id_lte``, compared as strings) to find the objects of a batch. The
native ``list_*`` methods of ``services.crowd`` page with opaque cursors in creation order,
so this module answers the Toloka form. It reads only, always inside the caller's app, in one
read transaction: one query for the page and, for task suites and assignments, one more for
their tasks. The objects are the ones ``get_*`` answers (the same row-to-object functions).

Searchable: ``projects pools skills user_skills tasks task_suites assignments operations``
and ``aggregated`` (the results of one aggregation job). An operation's ``id`` is the
``operation_id`` it was submitted with, else its job id (what ``get_operation`` accepts); a
user skill's is ``<skill id>.<user id>``, compared as the pair (skill id, user id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, FromClause, Table, and_, exists, func, or_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator

from taskloom.errors import Invalid
from taskloom.jobs.engine import JobEngine
from taskloom.jobs.engine import public as job_public
from taskloom.scope import Scope
from taskloom.services.crowd.common import check_int64
from taskloom.services.crowd.operations import CROWD_KINDS, details_of
from taskloom.services.crowd.pools import pool_public
from taskloom.services.crowd.projects import project_public
from taskloom.services.crowd.tasks import task_public
from taskloom.services.crowd.work_records import AggregatedResult, Operation
from taskloom.services.crowd.workers import skill_public, user_skill_public
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
from taskloom.store.paging import check_limit
from taskloom.store.types import utcnow

if TYPE_CHECKING:
    from taskloom.services.crowd.issuing import Issuing
    from taskloom.services.crowd.suites import Suites
    from taskloom.store.engine import Store

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
    # "id" is the operation id (an expression, see _column)
    "operations": {
        "kind": "kind",
        "status": "status",
        "created": "created_at",
        "finished": "finished_at",
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

_TIEBREAK = {"user_skills": ("skill_id", "user_id"), "aggregated": ("task_id",)}


def operation_id_column(t: FromClause) -> ColumnElement[Any]:
    """An operation's id: the operation_id it was submitted with, else the job id."""
    return func.coalesce(t.c.idempotency_key, t.c.id)


def _compare(col: Any, op: str, value: Any) -> Any:
    if op == "lt":
        return col < value
    if op == "lte":
        return col <= value
    if op == "gt":
        return col > value
    return col >= value


def _user_skill_range(t: FromClause, op: str, value: Any) -> Any:
    """``id <op> value`` for ids ``<skill id>.<user id>``, as the pair they are sorted by."""
    skill, _, user = str(value).partition(".")
    first = _compare(t.c.skill_id, op.rstrip("e"), skill)  # strictly before/after the skill
    return or_(first, and_(t.c.skill_id == skill, _compare(t.c.user_id, op, user)))


def _column(what: str, t: FromClause, name: str) -> Any:
    if what == "operations" and name == "id":
        return operation_id_column(t)
    cols = _COLUMNS[what]
    if name not in cols:
        return None
    return t.c[cols[name]]


class Search:
    """``page(scope, what, query)``: one page of Toloka-style search results."""

    def __init__(self, store: Store, suites: Suites, issuing: Issuing) -> None:
        self.store = store
        self.suites = suites
        self.issuing = issuing

    def page(
        self, scope: Scope, what: str, query: Query, *, job_id: str | None = None
    ) -> tuple[list[Mapping[str, Any]], bool]:
        """``(objects, has_more)`` of one page of ``what``."""
        if what == "assignments":
            # as get/list_assignments do: none shows ACTIVE past its time
            self.issuing.expire_due(scope, None, utcnow())
        stmt = self._search_statement(scope, what, query, job_id)
        with self.store.read() as conn:
            rows = conn.execute(stmt).all()
            more = len(rows) > query.limit
            return self._objects(conn, what, list(rows[: query.limit])), more

    def _objects(self, conn: Connection, what: str, rows: list[Any]) -> list[Mapping[str, Any]]:
        """Rows to the objects ``get_*`` answers; at most one more query."""
        if what == "task_suites":
            return list(self.suites.publics(conn, rows))
        if what == "assignments":
            return list(self.issuing.publics(conn, rows))
        if what == "operations":
            out: list[Mapping[str, Any]] = []
            for r in rows:
                job = job_public(r)
                out.append(Operation.of(job, details_of(job)))
            return out
        convert = _CONVERT[what]
        return [convert(r) for r in rows]

    @staticmethod
    def _search_statement(scope: Scope, what: str, query: Query, job_id: str | None) -> Any:
        check_limit(query.limit, most=MAX_LIMIT)
        t: FromClause
        if what == "operations":
            # the engine's view of this app's crowd jobs
            t = JobEngine.owned(scope, CROWD_KINDS)
            q = select(t)
        elif what == "aggregated":
            # results hang off their job, and the job off the app
            t = _TABLES[what]
            owned = JobEngine.owned(scope)
            q = select(t).where(t.c.job_id == job_id, exists().where(owned.c.id == t.c.job_id))
        else:
            t = _TABLES[what]
            q = select(t).where(t.c.app_id == scope.app_id)
        for name, value in query.equals.items():
            if name == "task_id" and what in ("assignments", "task_suites"):
                q = q.where(_holds_task(what, t, str(value)))
                continue
            col = _column(what, t, name)
            if col is None:
                raise Invalid(f"cannot filter by {name}", code="invalid_filter", field=name)
            if isinstance(value, list):
                q = q.where(col.in_([_value(col, v, name) for v in value]))
            else:
                q = q.where(col == _value(col, value, name))
        for name, op, value in query.ranges:
            if op not in OPS:
                raise Invalid(f"cannot filter by {name}_{op}", code="invalid_filter", field=name)
            if what == "user_skills" and name == "id":
                q = q.where(_user_skill_range(t, op, value))
                continue
            col = _column(what, t, name)
            if col is None:
                raise Invalid(f"cannot filter by {name}_{op}", code="invalid_filter", field=name)
            q = q.where(col.is_not(None), _compare(col, op, _value(col, value, name)))
        order = []
        for name, desc in query.sort:
            if what == "user_skills" and name == "id":
                # a user skill's id is "<skill id>.<user id>"
                order += [t.c.skill_id.asc(), t.c.user_id.asc()]
                continue
            col = _column(what, t, name)
            if col is None:
                raise Invalid(f"cannot sort by {name}", code="invalid_sort", field="sort")
            order.append(col.desc() if desc else col.asc())
        order += [t.c[name].asc() for name in _TIEBREAK.get(what, ("id",))]
        return q.order_by(*order).limit(query.limit + 1)


def _aggregated_public(row: Any) -> AggregatedResult:
    return AggregatedResult.from_row(row)


_CONVERT = {
    "projects": project_public,
    "pools": pool_public,
    "skills": skill_public,
    "user_skills": user_skill_public,
    "tasks": task_public,
    "aggregated": _aggregated_public,
}


def _holds_task(what: str, t: FromClause, task_id: str) -> Any:
    if what == "task_suites":
        return exists().where(crowd_tasks.c.id == task_id, crowd_tasks.c.suite_id == t.c.id)
    return exists().where(
        crowd_answers.c.assignment_id == t.c.id, crowd_answers.c.task_id == task_id
    )


def _value(col: Any, value: Any, name: str) -> Any:
    python_type: Any
    kind = col.type
    if isinstance(kind, TypeDecorator):  # UTCDateTime: its python_type is only "object"
        kind = kind.impl
    try:
        python_type = kind.python_type
    except NotImplementedError:
        # SQLAlchemy's answer for a type with no Python counterpart (JSON columns): the
        # value is compared as given, and the database reports a mismatch as no match
        return value
    if python_type is datetime:
        if not isinstance(value, datetime):
            raise Invalid(f"{name} is a date and time", code="invalid_datetime", field=name)
        return value
    if python_type is int:
        try:
            number = int(value)
        except (TypeError, ValueError) as exc:
            raise Invalid(f"{name} is an integer", code="integer_expected", field=name) from exc
        return check_int64(number, name)
    return str(value)
