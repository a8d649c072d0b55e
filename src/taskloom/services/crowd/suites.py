"""Task suites: tasks a requester groups into one page; a suite is issued whole."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, select, update

from taskloom.errors import Invalid
from taskloom.scope import Scope
from taskloom.services.crowd.bodies import OverlapSet, TaskSuiteUpdate, parse_body
from taskloom.services.crowd.common import driver_ts, new_id
from taskloom.services.crowd.common import suite_row as _suite_row
from taskloom.services.crowd.tasks import check_items, overlap_body, overlap_values
from taskloom.services.crowd.validate import Errors, PoolInfo, check_suite, kind_of
from taskloom.store.crowd_tables import crowd_task_suites, crowd_tasks
from taskloom.store.paging import CursorFormat, check_limit, page
from taskloom.store.types import utcnow

if TYPE_CHECKING:
    from taskloom.services.crowd.ratelimit import RateLimit
    from taskloom.services.crowd.tasks import Tasks
    from taskloom.store.engine import Store

_CHUNK = 900
_OVERLAP_KEYS = ("overlap", "remaining_overlap", "infinite_overlap")
CURSOR = CursorFormat("crowd_task_suites", int)


def suite_public(row: Any, tasks: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "pool_id": row.pool_id,
        "tasks": [_suite_task(t) for t in tasks],
        "overlap": row.overlap,
        "remaining_overlap": row.remaining_overlap,
        "infinite_overlap": row.infinite_overlap,
        "created": row.created_at,
        **(row.data or {}),
    }
    if row.reserved_for is not None:
        out["reserved_for"] = row.reserved_for
    if row.unavailable_for is not None:
        out["unavailable_for"] = row.unavailable_for
    return out


def _suite_task(t: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": t.id, "input_values": t.input_values}
    if t.known_solutions is not None:
        out["known_solutions"] = t.known_solutions
    if t.message_on_unknown_solution is not None:
        out["message_on_unknown_solution"] = t.message_on_unknown_solution
    if t.origin_task_id is not None:
        out["origin_task_id"] = t.origin_task_id
    return out


class Suites:
    """Task suites; their pools and tasks go through :class:`Tasks`."""

    def __init__(self, store: Store, tasks: Tasks, rates: RateLimit) -> None:
        self.store = store
        self.tasks = tasks
        self.rates = rates

    def prepare(
        self,
        scope: Scope,
        items: list[Any],
        pools: dict[str, PoolInfo],
        allow_defaults: bool,
        now: datetime,
    ) -> tuple[list[tuple[str, dict[str, Any], list[tuple[Any, ...]]]], dict[str, Errors]]:
        """Check suite items: ``([(index, suite row, its task rows)], errors by index)``.
        No database work; the rows are ready for :meth:`insert`."""
        ready: list[tuple[str, dict[str, Any], list[tuple[Any, ...]]]] = []
        errors: dict[str, Errors] = {}
        ts = driver_ts(self.store, now)
        dumps = orjson.dumps
        for i, item in enumerate(items):
            s, errs = check_suite(item, pools, allow_defaults)
            if s is None:
                errors[str(i)] = errs
                continue
            sid = new_id()
            remaining = s["overlap"] or 0
            suite = {
                "id": sid,
                "app_id": scope.app_id,
                "pool_id": s["pool"].id,
                "overlap": s["overlap"],
                "remaining_overlap": remaining,
                "infinite_overlap": s["infinite_overlap"],
                "reserved_for": s["reserved_for"],
                "unavailable_for": s["unavailable_for"],
                "data": s["data"],
                "created_at": now,
            }
            task_rows = [
                (
                    new_id(),
                    scope.app_id,
                    s["pool"].id,
                    sid,
                    kind_of(known, message),
                    dumps(values).decode(),
                    None if known is None else dumps(known).decode(),
                    None,
                    message,
                    s["overlap"],
                    remaining,
                    s["infinite_overlap"],
                    origin,
                    None,
                    None,
                    ts,
                )
                for values, known, message, origin in s["tasks"]
            ]
            ready.append((str(i), suite, task_rows))
        return ready, errors

    def insert(
        self, conn: Connection, suites: list[dict[str, Any]], task_rows: list[tuple[Any, ...]]
    ) -> None:
        if suites:
            conn.execute(crowd_task_suites.insert(), suites)
        if task_rows:
            self.tasks.insert_rows(conn, task_rows)

    def create_many(
        self,
        scope: Scope,
        items: Any,
        *,
        allow_defaults: bool = False,
        skip_invalid_items: bool = False,
        open_pool: bool = False,
    ) -> dict[str, Any]:
        """Create task suites; the same answer shape as ``Tasks.create_many``."""
        items = check_items(items, "task suites")
        with self.store.read() as conn:
            pools = self.tasks.pool_infos(conn, scope, items)
        now = utcnow()
        ready, errors = self.prepare(scope, items, pools, allow_defaults, now)
        if errors and not skip_invalid_items:
            return {"items": {}, "validation_errors": errors}
        created: dict[str, dict[str, Any]] = {}
        if not ready:
            return {"items": created, "validation_errors": errors}
        suites = [suite for _, suite, _ in ready]
        task_rows = [row for _, _, rows in ready for row in rows]
        used = {s["pool_id"] for s in suites}
        with self.store.write() as conn:
            self.tasks.recheck_pools(conn, scope, used)
            self.rates.consume(conn, scope, len(task_rows), now)
            self.insert(conn, suites, task_rows)
            if open_pool:
                self.tasks.open_closed_pools(conn, used)
            by_id = self._suites_with_tasks(conn, [s["id"] for s in suites])
        for index, suite, _ in ready:
            created[index] = by_id[suite["id"]]
        return {"items": created, "validation_errors": errors}

    def _suites_with_tasks(self, conn: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
        rows: list[Any] = []
        for start in range(0, len(ids), _CHUNK):
            rows += conn.execute(
                select(crowd_task_suites).where(
                    crowd_task_suites.c.id.in_(ids[start : start + _CHUNK])
                )
            ).all()
        return {s["id"]: s for s in self.publics(conn, rows)}

    def publics(self, conn: Connection, rows: list[Any]) -> list[dict[str, Any]]:
        """Suite rows as objects, in the same order, with their tasks (one query a chunk)."""
        tasks: dict[str, list[Any]] = defaultdict(list)
        ids = [r.id for r in rows]
        for start in range(0, len(ids), _CHUNK):
            for t in conn.execute(
                select(crowd_tasks)
                .where(crowd_tasks.c.suite_id.in_(ids[start : start + _CHUNK]))
                .order_by(crowd_tasks.c.seq)
            ):
                tasks[t.suite_id].append(t)
        return [suite_public(r, tasks[r.id]) for r in rows]

    def get(self, scope: Scope, suite_id: str) -> dict[str, Any]:
        with self.store.read() as conn:
            row = _suite_row(conn, scope, suite_id)
            return self._suites_with_tasks(conn, [row.id])[row.id]

    def list(
        self,
        scope: Scope,
        *,
        pool_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        check_limit(limit)
        t = crowd_task_suites
        q = select(t.c.id, t.c.seq).where(t.c.app_id == scope.app_id)
        if pool_id is not None:
            q = q.where(t.c.pool_id == pool_id)
        key = CURSOR.decode(cursor)
        if key is not None:
            q = q.where(t.c.seq > key[0])
        q = q.order_by(t.c.seq).limit(limit + 1)
        with self.store.read() as conn:
            rows, nxt = page(conn.execute(q).all(), limit, CURSOR, lambda r: (r.seq,))
            by_id = self._suites_with_tasks(conn, [r.id for r in rows])
        return {"data": [by_id[r.id] for r in rows], "cursor": nxt}

    def update(
        self,
        scope: Scope,
        suite_id: str,
        body: TaskSuiteUpdate | Mapping[str, Any],
        *,
        open_pool: bool = False,
    ) -> dict[str, Any]:
        """Change ``overlap``, ``infinite_overlap`` or ``issuing_order_override`` (Toloka's
        TaskSuitePatch); the suite's tasks follow its overlap. ``open_pool`` opens its pool
        when it is CLOSED."""
        patch = parse_body(TaskSuiteUpdate, body)
        infinite = patch.infinite_overlap
        with self.store.write() as conn:
            row = _suite_row(conn, scope, suite_id, lock=True)
            values: dict[str, Any] = {}
            if infinite is not None:
                values["infinite_overlap"] = infinite
            if patch.overlap is not None:
                if infinite:
                    raise Invalid(
                        "an infinite overlap has no overlap value",
                        code="value_not_allowed",
                        field="overlap",
                    )
                values.update(overlap_values(row, patch.overlap, exact=True))
                values["infinite_overlap"] = False
            elif infinite is False and row.overlap is None:
                raise Invalid(
                    "a finite overlap needs an overlap value",
                    code="value_required",
                    field="overlap",
                )
            if patch.issuing_order_override is not None:
                order = patch.issuing_order_override
                values["data"] = {**(row.data or {}), "issuing_order_override": order}
            self._write_suite(conn, row, values)
            if open_pool:
                self.tasks.open_closed_pools(conn, [row.pool_id])
            return self._suites_with_tasks(conn, [row.id])[row.id]

    def set_overlap_or_min(
        self, scope: Scope, suite_id: str, overlap: OverlapSet | Mapping[str, Any] | int
    ) -> dict[str, Any]:
        """Set the suite's overlap, or the lowest one possible (the copies issued so far)."""
        wanted = overlap_body(overlap).overlap
        with self.store.write() as conn:
            row = _suite_row(conn, scope, suite_id, lock=True)
            values = overlap_values(row, wanted, exact=False)
            values["infinite_overlap"] = False
            self._write_suite(conn, row, values)
            return self._suites_with_tasks(conn, [row.id])[row.id]

    @staticmethod
    def _write_suite(conn: Connection, row: Any, values: dict[str, Any]) -> None:
        """The suite row and, for the overlap fields, its tasks (issued with it, in step)."""
        if not values:
            return
        conn.execute(
            update(crowd_task_suites).where(crowd_task_suites.c.id == row.id).values(**values)
        )
        shared = {k: v for k, v in values.items() if k in _OVERLAP_KEYS}
        if shared:
            conn.execute(
                update(crowd_tasks).where(crowd_tasks.c.suite_id == row.id).values(**shared)
            )
