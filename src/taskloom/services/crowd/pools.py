"""Pools: where a project's tasks are issued. CLOSED -> OPEN -> CLOSED ... -> ARCHIVED.

Settings are Toloka's: ``reward_per_assignment``, ``assignment_max_duration_seconds``,
``will_expire``, ``auto_accept_solutions``, ``defaults``, ``mixer_config``,
``quality_control`` and ``dynamic_overlap_config`` (parsed into ``bodies.PoolCreate`` /
``PoolUpdate``; what needs the database or the project's spec is checked here, see
``quality.py`` and ``overlap.py`` for what they do). Other keys a Toloka client sends are
stored as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, insert, or_, select, update

from taskloom.errors import Conflict, Invalid
from taskloom.scope import Scope
from taskloom.services.crowd.bodies import DynamicOverlap, PoolCreate, PoolUpdate, parse_body
from taskloom.services.crowd.common import (
    json_safe,
    new_id,
    parse_time,
    pool_row,
    project_row,
    skill_row,
)
from taskloom.services.crowd.quality import check_quality_control
from taskloom.store.crowd_tables import crowd_pools
from taskloom.store.paging import CursorFormat, check_limit, page
from taskloom.store.types import utcnow

if TYPE_CHECKING:
    from taskloom.services.crowd.projects import Specs
    from taskloom.store.engine import Store

POOL_STATUSES = ("OPEN", "CLOSED", "ARCHIVED")
_READ_ONLY = frozenset(
    {"id", "status", "created", "last_started", "last_stopped", "last_close_reason", "type"}
)
CURSOR = CursorFormat("crowd_pools", datetime, str)
# a PUT or PATCH may leave these out, not clear them
_REQUIRED = ("private_name", "reward_per_assignment", "assignment_max_duration_seconds")


def pool_public(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "project_id": row.project_id,
        **row.data,
        "status": row.status,
        "created": row.created_at,
    }


def mixer_counts(data: dict[str, Any]) -> tuple[int, int, int]:
    """(real, golden, training) tasks per suite; one real task when no mixer is set."""
    mixer = data.get("mixer_config") or {}
    if not mixer:
        return 1, 0, 0
    return (
        int(mixer.get("real_tasks_count") or 0),
        int(mixer.get("golden_tasks_count") or 0),
        int(mixer.get("training_tasks_count") or 0),
    )


def _check_mixer(mixer: dict[str, Any] | None) -> None:
    """The pool's mixer (as it will be stored) puts at least one task on a page."""
    if mixer and sum(int(mixer.get(k) or 0) for k in _MIXER_COUNTS) == 0:
        raise Invalid(
            "a suite needs at least one task: set real_tasks_count",
            code="value_out_of_range",
            field="mixer_config.real_tasks_count",
        )


_MIXER_COUNTS = ("real_tasks_count", "golden_tasks_count", "training_tasks_count")


class Pools:
    """Pools of a project and their states; settings checked against the project's spec."""

    def __init__(self, store: Store, specs: Specs) -> None:
        self.store = store
        self.specs = specs

    @staticmethod
    def _check_dynamic_overlap(
        conn: Connection, scope: Scope, config: DynamicOverlap, output_fields: set[str]
    ) -> None:
        """What the body's model cannot know: the skill exists, the fields are outputs."""
        p = "dynamic_overlap_config"
        if config.answer_weight is not None:
            skill_row(
                conn, scope, config.answer_weight.skill_id, field=f"{p}.answer_weight.skill_id"
            )
        for i, f in enumerate(config.fields):
            if f.name not in output_fields:
                raise Invalid(
                    f"{f.name!r} is not a field of the output spec",
                    code="value_not_allowed",
                    field=f"{p}.fields.{i}.name",
                )

    def _pool_data(
        self,
        conn: Connection,
        scope: Scope,
        body: PoolUpdate,
        old: dict[str, Any] | None,
        project: Any,
    ) -> dict[str, Any]:
        sent = body.sent()  # with the fields a Toloka client sent that taskloom keeps as given
        data = dict(old or {})
        for key, value in sent.items():
            if key in _READ_ONLY or key == "project_id":
                continue
            data[key] = json_safe(value, key)
        for key in _REQUIRED:
            if key in sent and sent[key] is None:
                raise Invalid(f"{key} is required", code="value_required", field=key)
        if "will_expire" in sent:
            data["will_expire"] = parse_time(sent["will_expire"], "will_expire").isoformat()
        _check_mixer(data.get("mixer_config"))
        _, out = self.specs.of(project)
        if "quality_control" in sent:
            check_quality_control(
                sent.get("quality_control"),
                lambda sid, field: skill_row(conn, scope, sid, field=field),
            )
        if body.dynamic_overlap_config is not None:
            self._check_dynamic_overlap(conn, scope, body.dynamic_overlap_config, set(out.fields))
        return {k: v for k, v in data.items() if v is not None}

    def create(self, scope: Scope, body: PoolCreate | Mapping[str, Any]) -> dict[str, Any]:
        """A new CLOSED pool of an ACTIVE project."""
        pool = parse_body(PoolCreate, body, keep_unknown=True)
        now = utcnow()
        with self.store.write() as conn:
            project = project_row(conn, scope, pool.project_id)
            if project.status != "ACTIVE":
                raise Conflict(
                    "the project is archived", code="project_archived", field="project_id"
                )
            data = self._pool_data(conn, scope, pool, None, project)
            values = {
                "id": new_id(),
                "app_id": scope.app_id,
                "project_id": project.id,
                "status": "CLOSED",
                "data": data,
                "created_at": now,
                "updated_at": now,
            }
            conn.execute(insert(crowd_pools), values)
            return pool_public(pool_row(conn, scope, values["id"]))

    def get(self, scope: Scope, pool_id: str) -> dict[str, Any]:
        with self.store.read() as conn:
            return pool_public(pool_row(conn, scope, pool_id))

    def list(
        self,
        scope: Scope,
        *,
        project_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        check_limit(limit)
        t = crowd_pools
        q = select(t).where(t.c.app_id == scope.app_id)
        if project_id is not None:
            q = q.where(t.c.project_id == project_id)
        if status is not None:
            if status not in POOL_STATUSES:
                raise Invalid(f"unknown status {status!r}", code="invalid_status", field="status")
            q = q.where(t.c.status == status)
        key = CURSOR.decode(cursor)
        if key is not None:
            at, last = key
            q = q.where(or_(t.c.created_at > at, and_(t.c.created_at == at, t.c.id > last)))
        q = q.order_by(t.c.created_at, t.c.id).limit(limit + 1)
        with self.store.read() as conn:
            rows, nxt = page(conn.execute(q).all(), limit, CURSOR, lambda r: (r.created_at, r.id))
        return {"data": [pool_public(r) for r in rows], "cursor": nxt}

    def update(
        self, scope: Scope, pool_id: str, body: PoolUpdate | Mapping[str, Any]
    ) -> dict[str, Any]:
        """Replace the fields given (a Toloka PUT echoes ``project_id``: it must not change)."""
        patch = parse_body(PoolUpdate, body, keep_unknown=True)
        with self.store.write() as conn:
            row = pool_row(conn, scope, pool_id, lock=True)
            if row.status == "ARCHIVED":
                raise Conflict("an archived pool cannot change", code="pool_archived")
            if (patch.model_extra or {}).get("project_id") not in (None, row.project_id):
                raise Invalid("a pool cannot move to another project", field="project_id")
            project = project_row(conn, scope, row.project_id)
            data = self._pool_data(conn, scope, patch, row.data, project)
            conn.execute(
                update(crowd_pools)
                .where(crowd_pools.c.id == row.id)
                .values(data=data, updated_at=utcnow())
            )
            return pool_public(pool_row(conn, scope, pool_id))

    # -- states ----------------------------------------------------------------------------

    def _move(
        self, scope: Scope, pool_id: str, to: str, allowed: tuple[str, ...], stamp: str | None
    ) -> tuple[dict[str, Any], bool]:
        with self.store.write() as conn:
            row = pool_row(conn, scope, pool_id, lock=True)
            if row.status == to:
                return pool_public(row), False
            if row.status not in allowed:
                raise Conflict(
                    f"a {row.status} pool cannot become {to}",
                    code="invalid_pool_transition",
                    field="status",
                )
            if to == "OPEN":
                project = project_row(conn, scope, row.project_id)
                if project.status != "ACTIVE":
                    raise Conflict("the project is archived", code="project_archived")
            self._set_status(conn, row, to, allowed, stamp)
            return pool_public(pool_row(conn, scope, pool_id)), True

    def _set_status(
        self, conn: Connection, row: Any, to: str, allowed: tuple[str, ...], stamp: str | None
    ) -> bool:
        now = utcnow()
        data = dict(row.data)
        if stamp:
            data[stamp] = now.isoformat()
        res = conn.execute(
            update(crowd_pools)
            .where(crowd_pools.c.id == row.id, crowd_pools.c.status.in_(allowed))
            .values(status=to, data=data, updated_at=now)
        )
        return bool(res.rowcount)

    def open(self, scope: Scope, pool_id: str) -> tuple[dict[str, Any], bool]:
        """(pool, changed): CLOSED -> OPEN; changed is False when it already was open."""
        return self._move(scope, pool_id, "OPEN", ("CLOSED",), "last_started")

    def close(self, scope: Scope, pool_id: str) -> tuple[dict[str, Any], bool]:
        """(pool, changed): OPEN -> CLOSED."""
        return self._move(scope, pool_id, "CLOSED", ("OPEN",), "last_stopped")

    def archive(self, scope: Scope, pool_id: str) -> tuple[dict[str, Any], bool]:
        """(pool, changed): CLOSED -> ARCHIVED (an open pool is closed first by the caller)."""
        return self._move(scope, pool_id, "ARCHIVED", ("CLOSED",), None)
