"""Task suites: tasks a requester groups into one page; a suite is issued whole."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
from sqlalchemy import Connection, select

from taskloom.services.auth import Scope
from taskloom.services.crowd.common import Base, check_limit, decode_cursor, encode_cursor, new_id
from taskloom.services.crowd.common import suite_row as _suite_row
from taskloom.services.crowd.tasks import check_items
from taskloom.services.crowd.validate import Errors, check_suite, kind_of
from taskloom.store.crowd_tables import crowd_task_suites, crowd_tasks
from taskloom.store.types import utcnow

_CHUNK = 900


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


class SuitesMixin(Base):
    def create_task_suites(
        self,
        scope: Scope,
        items: Any,
        *,
        allow_defaults: bool = False,
        skip_invalid_items: bool = False,
        open_pool: bool = False,
    ) -> dict[str, Any]:
        """Create task suites; the same answer shape as ``create_tasks``."""
        items = check_items(items, "task suites")
        with self.store.read() as conn:
            pools = self.pool_infos(conn, scope, items)  # type: ignore[attr-defined]
        checked: list[tuple[int, dict[str, Any]]] = []
        errors: dict[str, Errors] = {}
        for i, item in enumerate(items):
            suite, errs = check_suite(item, pools, allow_defaults)
            if suite is None:
                errors[str(i)] = errs
            else:
                checked.append((i, suite))
        if errors and not skip_invalid_items:
            return {"items": {}, "validation_errors": errors}
        created: dict[str, dict[str, Any]] = {}
        if not checked:
            return {"items": created, "validation_errors": errors}
        now = utcnow()
        ts = self._ts(now)
        dumps = orjson.dumps
        suite_rows = []
        task_rows = []
        for _, s in checked:
            sid = new_id()
            s["id"] = sid
            remaining = s["overlap"] or 0
            suite_rows.append(
                {
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
            )
            for values, known, message, origin in s["tasks"]:
                task_rows.append(
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
                )
        used = {s["pool"].id for _, s in checked}
        with self.store.write() as conn:
            self.recheck_pools(conn, scope, used)  # type: ignore[attr-defined]
            self.consume_rate(conn, scope, len(task_rows), now)  # type: ignore[attr-defined]
            conn.execute(crowd_task_suites.insert(), suite_rows)
            self.insert_task_rows(conn, task_rows)  # type: ignore[attr-defined]
            if open_pool:
                self.open_closed_pools(conn, used)  # type: ignore[attr-defined]
            by_id = self._suites_with_tasks(conn, [s["id"] for _, s in checked])
        for i, s in checked:
            created[str(i)] = by_id[s["id"]]
        return {"items": created, "validation_errors": errors}

    def _suites_with_tasks(self, conn: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
        suites: dict[str, Any] = {}
        tasks: dict[str, list[Any]] = defaultdict(list)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            for r in conn.execute(
                select(crowd_task_suites).where(crowd_task_suites.c.id.in_(chunk))
            ):
                suites[r.id] = r
            for t in conn.execute(
                select(crowd_tasks)
                .where(crowd_tasks.c.suite_id.in_(chunk))
                .order_by(crowd_tasks.c.seq)
            ):
                tasks[t.suite_id].append(t)
        return {sid: suite_public(r, tasks[sid]) for sid, r in suites.items()}

    def get_task_suite(self, scope: Scope, suite_id: str) -> dict[str, Any]:
        with self.store.read() as conn:
            row = _suite_row(conn, scope, suite_id)
            return self._suites_with_tasks(conn, [row.id])[row.id]

    def list_task_suites(
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
        if cursor:
            (last,) = decode_cursor(cursor, 1)
            q = q.where(t.c.seq > last)
        q = q.order_by(t.c.seq).limit(limit + 1)
        with self.store.read() as conn:
            rows = conn.execute(q).all()
            more = len(rows) > limit
            rows = rows[:limit]
            by_id = self._suites_with_tasks(conn, [r.id for r in rows])
        nxt = encode_cursor(rows[-1].seq) if more else None
        return {"data": [by_id[r.id] for r in rows], "cursor": nxt}
