"""Crowd tasks: batch creation (one transaction, driver ``executemany``), reads, overlap.

A batch is checked first (no database work per item), then written in one write
transaction together with the requester's rate-limit count and, with ``open_pool``, the
opening of the pools it filled. ``skip_invalid_items=false`` and one invalid item: nothing
is written and the answer is ``{"items": {}, "validation_errors": {...}}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update

from taskloom.errors import Conflict, Invalid
from taskloom.scope import Scope
from taskloom.services.crowd.bodies import OverlapSet, TaskUpdate, parse_body
from taskloom.services.crowd.common import (
    body_dict,
    check_int64,
    driver_ts,
    new_id,
    placeholders,
    task_row,
)
from taskloom.services.crowd.validate import Errors, PoolInfo, check_task
from taskloom.store.crowd_tables import crowd_pools, crowd_projects, crowd_tasks
from taskloom.store.paging import CursorFormat, check_limit, page
from taskloom.store.types import utcnow

if TYPE_CHECKING:
    from taskloom.services.crowd.projects import Specs
    from taskloom.services.crowd.ratelimit import RateLimit
    from taskloom.store.engine import Store

MAX_ITEMS = 100_000
_CHUNK = 900  # ids per IN (...) list
TASK_COLUMNS = (
    "id, app_id, pool_id, suite_id, kind, input_values, known_solutions, baseline_solutions, "
    "message_on_unknown_solution, overlap, remaining_overlap, infinite_overlap, "
    "origin_task_id, reserved_for, unavailable_for, created_at"
)
_SORTS = {"id": "id", "-id": "id", "created": "seq", "-created": "seq", None: "seq"}
# a page of tasks resumes after a seq (sorted by creation) or an id
_BY_SEQ = CursorFormat("crowd_tasks", int)
_BY_ID = CursorFormat("crowd_tasks_by_id", str)


def task_public(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "pool_id": row.pool_id,
        "input_values": row.input_values,
        "overlap": row.overlap,
        "remaining_overlap": row.remaining_overlap,
        "infinite_overlap": row.infinite_overlap,
        "created": row.created_at,
    }
    for key in (
        "known_solutions",
        "baseline_solutions",
        "message_on_unknown_solution",
        "origin_task_id",
        "reserved_for",
        "unavailable_for",
    ):
        value = getattr(row, key)
        if value is not None:
            out[key] = value
    if row.suite_id is not None:
        out["task_suite_id"] = row.suite_id
    return out


def check_items(items: Any, what: str = "tasks") -> list[Any]:
    if not isinstance(items, list) or not items:
        raise Invalid(f"a non-empty list of {what} is required", code="empty_batch", field="items")
    if len(items) > MAX_ITEMS:
        raise Invalid(
            f"at most {MAX_ITEMS} {what} per request", code="batch_too_large", field="items"
        )
    return items


def overlap_body(value: OverlapSet | Mapping[str, Any] | int | Any) -> OverlapSet:
    """The ``set-overlap-or-min`` body: parsed, a mapping or the bare overlap."""
    if isinstance(value, OverlapSet | Mapping):
        return parse_body(OverlapSet, value)
    return parse_body(OverlapSet, {"overlap": value})


def overlap_values(row: Any, overlap: int, *, exact: bool) -> dict[str, Any]:
    """The overlap columns of a task or suite row set to ``overlap`` (parsed: 0 to the
    bound); not below the copies issued (``exact``: refused, else raised to them)."""
    issued = (row.overlap or 0) - row.remaining_overlap
    if overlap < issued:
        if exact:
            raise Conflict(
                f"{issued} assignments of this task were issued already: the overlap "
                "cannot be lower (set-overlap-or-min sets the lowest possible)",
                code="overlap_below_issued",
                field="overlap",
            )
        overlap = issued
    if exact and overlap < 1:
        raise Invalid("overlap is at least 1", code="value_out_of_range", field="overlap")
    return {"overlap": overlap, "remaining_overlap": overlap - issued}


class Tasks:
    """Crowd tasks (outside suites) and what every batch does with its pools."""

    def __init__(self, store: Store, specs: Specs, rates: RateLimit) -> None:
        self.store = store
        self.specs = specs
        self.rates = rates
        self._pg = store.dialect == "postgresql"
        self._ph, self._json_ph = placeholders(store)

    # -- pools of a batch --------------------------------------------------------------------

    def pool_infos(
        self, conn: Connection, scope: Scope, items: Iterable[Any]
    ) -> dict[str, PoolInfo]:
        """The pools (of this app) that the items name, with their compiled specs."""
        # only string ids are looked up: any other JSON value (a list, an object) is the
        # item's own error, named by its check
        ids = sorted(
            {p for i in items if isinstance(i, dict) and isinstance(p := i.get("pool_id"), str)}
        )
        out: dict[str, PoolInfo] = {}
        for start in range(0, len(ids), _CHUNK):
            q = (
                select(
                    crowd_pools,
                    crowd_projects.c.data.label("project_data"),
                    crowd_projects.c.updated_at.label("project_updated_at"),
                )
                .join(crowd_projects, crowd_projects.c.id == crowd_pools.c.project_id)
                .where(
                    crowd_pools.c.app_id == scope.app_id,
                    crowd_pools.c.id.in_(ids[start : start + _CHUNK]),
                )
            )
            for r in conn.execute(q):
                inp, outp = self.specs.of(
                    _Project(r.project_id, r.project_data, r.project_updated_at)
                )
                defaults = r.data.get("defaults") or {}
                out[r.id] = PoolInfo(
                    id=r.id,
                    status=r.status,
                    input_spec=inp,
                    output_spec=outp,
                    default_overlap=defaults.get("default_overlap_for_new_tasks"),
                    # 0 (as Toloka's tutorials write it) is no default: bodies.PoolDefaults
                    default_suite_overlap=defaults.get("default_overlap_for_new_task_suites")
                    or None,
                )
        return out

    def recheck_pools(self, conn: Connection, scope: Scope, pool_ids: Iterable[str]) -> None:
        """Inside the write: a pool archived since the check refuses the batch."""
        ids = list(pool_ids)
        q = select(crowd_pools.c.id, crowd_pools.c.status).where(crowd_pools.c.id.in_(ids))
        if self._pg:
            q = q.with_for_update()
        for r in conn.execute(q):
            if r.status == "ARCHIVED":
                raise Conflict(
                    f"pool {r.id} was archived meanwhile", code="pool_archived", field="pool_id"
                )

    def open_closed_pools(self, conn: Connection, pool_ids: Iterable[str]) -> None:
        now = utcnow()
        for r in conn.execute(
            select(crowd_pools).where(
                crowd_pools.c.id.in_(list(pool_ids)), crowd_pools.c.status == "CLOSED"
            )
        ):
            data = {**r.data, "last_started": now.isoformat()}
            conn.execute(
                update(crowd_pools)
                .where(crowd_pools.c.id == r.id, crowd_pools.c.status == "CLOSED")
                .values(status="OPEN", data=data, updated_at=now)
            )

    # -- creation ----------------------------------------------------------------------------

    def prepare(
        self,
        scope: Scope,
        items: list[Any],
        pools: dict[str, PoolInfo],
        allow_defaults: bool,
        now: datetime,
        start: int = 0,
    ) -> tuple[list[tuple[Any, ...]], dict[str, dict[str, Any]], dict[str, Errors]]:
        """Check items; (rows, public tasks by index, errors by index). No database work."""
        rows: list[tuple[Any, ...]] = []
        created: dict[str, dict[str, Any]] = {}
        errors: dict[str, Errors] = {}
        ts = driver_ts(self.store, now)
        app_id = scope.app_id
        for i, item in enumerate(items, start):
            row, public, errs = check_task(item, pools, allow_defaults, app_id, new_id(), ts, now)
            if row is None or public is None:
                errors[str(i)] = errs
            else:
                rows.append(row)
                created[str(i)] = public
        return rows, created, errors

    def insert_rows(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        ph, jp = self._ph, self._json_ph
        conn.exec_driver_sql(
            f"INSERT INTO crowd_tasks ({TASK_COLUMNS}) VALUES ({ph}, {ph}, {ph}, {ph}, {ph}, "
            f"{jp}, {jp}, {jp}, {ph}, {ph}, {ph}, {ph}, {ph}, {jp}, {jp}, {ph})",
            rows,
        )

    def create_many(
        self,
        scope: Scope,
        items: Any,
        *,
        allow_defaults: bool = False,
        skip_invalid_items: bool = False,
        open_pool: bool = False,
    ) -> dict[str, Any]:
        """Create a batch: ``{"items": {"0": task}, "validation_errors": {"1": {path: err}}}``."""
        items = check_items(items)
        with self.store.read() as conn:
            pools = self.pool_infos(conn, scope, items)
        now = utcnow()
        rows, created, errors = self.prepare(scope, items, pools, allow_defaults, now)
        if errors and not skip_invalid_items:
            return {"items": {}, "validation_errors": errors}
        if rows:
            used = {r[2] for r in rows}
            with self.store.write() as conn:
                self.recheck_pools(conn, scope, used)
                self.rates.consume(conn, scope, len(rows), now)
                self.insert_rows(conn, rows)
                if open_pool:
                    self.open_closed_pools(conn, used)
        return {"items": created, "validation_errors": errors}

    def create(
        self, scope: Scope, item: Any, *, allow_defaults: bool = False, open_pool: bool = False
    ) -> dict[str, Any]:
        """One task; Invalid names the first bad field (all of them in details)."""
        out = self.create_many(
            scope, [body_dict(item, "task")], allow_defaults=allow_defaults, open_pool=open_pool
        )
        errors = out["validation_errors"].get("0")
        if errors:
            path, err = next(iter(errors.items()))
            raise Invalid(
                f"{path}: {err['message']}",
                code=err["code"],
                field=path,
                details={"validation_errors": errors},
            )
        return out["items"]["0"]

    # -- reads and changes ---------------------------------------------------------------------

    def get(self, scope: Scope, task_id: str) -> dict[str, Any]:
        with self.store.read() as conn:
            return task_public(task_row(conn, scope, task_id))

    def list(
        self,
        scope: Scope,
        *,
        pool_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        sort: str | None = None,
        overlap: int | None = None,
        created_gt: datetime | None = None,
        created_lt: datetime | None = None,
    ) -> dict[str, Any]:
        """Tasks in creation order (``sort``: created, -created, id, -id), paged."""
        limit = check_limit(limit, most=100_000)
        if sort not in _SORTS:
            raise Invalid("sort is one of id, -id, created, -created", field="sort")
        t = crowd_tasks
        col = t.c.seq if _SORTS[sort] == "seq" else t.c.id
        desc = bool(sort and sort.startswith("-"))
        q = select(t).where(t.c.app_id == scope.app_id)
        if pool_id is not None:
            q = q.where(t.c.pool_id == pool_id)
        if overlap is not None:
            q = q.where(t.c.overlap == check_int64(overlap, "overlap"))
        if created_gt is not None:
            q = q.where(t.c.created_at > created_gt)
        if created_lt is not None:
            q = q.where(t.c.created_at < created_lt)
        by_seq = _SORTS[sort] == "seq"
        fmt = _BY_SEQ if by_seq else _BY_ID
        key = fmt.decode(cursor)
        if key is not None:
            (last,) = key
            q = q.where(col < last if desc else col > last)
        q = q.order_by(col.desc() if desc else col).limit(limit + 1)
        with self.store.read() as conn:
            rows, nxt = page(
                conn.execute(q).all(), limit, fmt, lambda r: (r.seq if by_seq else r.id,)
            )
        return {"data": [task_public(r) for r in rows], "cursor": nxt}

    def update(
        self, scope: Scope, task_id: str, body: TaskUpdate | Mapping[str, Any]
    ) -> dict[str, Any]:
        """Change ``overlap``, ``infinite_overlap`` or ``baseline_solutions`` (those sent)."""
        from taskloom.crowd.spec import validate_solutions

        patch = parse_body(TaskUpdate, body)
        sent = patch.model_fields_set
        with self.store.write() as conn:
            row = task_row(conn, scope, task_id, lock=True)
            values: dict[str, Any] = {}
            if patch.infinite_overlap is not None:
                values["infinite_overlap"] = patch.infinite_overlap
            if patch.overlap is not None:
                values.update(overlap_values(row, patch.overlap, exact=True))
            if "baseline_solutions" in sent:
                baseline = patch.baseline_solutions
                if baseline is not None:
                    pool = conn.execute(
                        select(crowd_pools.c.project_id).where(crowd_pools.c.id == row.pool_id)
                    ).one()
                    project = conn.execute(
                        select(crowd_projects).where(crowd_projects.c.id == pool.project_id)
                    ).one()
                    _, out = self.specs.of(project)
                    errs = validate_solutions(
                        out, baseline, prefix="baseline_solutions", weight_key="confidence_weight"
                    )
                    if errs:
                        raise Invalid(
                            f"{errs[0].path}: {errs[0].message}",
                            code=errs[0].code,
                            field=errs[0].path,
                        )
                    baseline = [
                        {
                            "output_values": s["output_values"],
                            "confidence_weight": float(s.get("confidence_weight", 1.0)),
                        }
                        for s in baseline
                    ] or None
                values["baseline_solutions"] = baseline
            if values:
                conn.execute(update(crowd_tasks).where(crowd_tasks.c.id == row.id).values(**values))
            return task_public(task_row(conn, scope, task_id))

    def set_overlap_or_min(
        self, scope: Scope, task_id: str, overlap: OverlapSet | Mapping[str, Any] | int
    ) -> dict[str, Any]:
        """Set the overlap, or the lowest one possible (the assignments issued so far)."""
        wanted = overlap_body(overlap).overlap
        with self.store.write() as conn:
            row = task_row(conn, scope, task_id, lock=True)
            values = overlap_values(row, wanted, exact=False)
            values["infinite_overlap"] = False
            conn.execute(update(crowd_tasks).where(crowd_tasks.c.id == row.id).values(**values))
            return task_public(task_row(conn, scope, task_id))


class _Project:
    """The bits of a project row that ``Specs.of`` reads."""

    def __init__(self, pid: str, data: dict[str, Any], updated_at: Any) -> None:
        self.id = pid
        self.data = data
        self.updated_at = updated_at
