"""Crowd projects: a task spec (input, output and view) and the pools that use it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, or_, select, update

from taskloom.crowd.spec import Spec
from taskloom.errors import Conflict, Invalid
from taskloom.scope import Scope
from taskloom.services.crowd.bodies import ProjectCreate, ProjectUpdate, parse_body
from taskloom.services.crowd.common import body_dict, json_safe, new_id, project_row
from taskloom.services.crowd.records import Project
from taskloom.store.crowd_tables import crowd_pools, crowd_projects
from taskloom.store.paging import CursorFormat, check_limit, page
from taskloom.store.records import Page
from taskloom.store.types import utcnow

if TYPE_CHECKING:
    from taskloom.store.engine import Store

PROJECT_STATUSES = ("ACTIVE", "ARCHIVED")
# set by taskloom, never taken from a body
_READ_ONLY = frozenset({"id", "status", "created"})
CURSOR = CursorFormat("crowd_projects", datetime, str)


def parse_task_spec(raw: Any) -> dict[str, Any]:
    """The task spec normalised for storage; raises SpecError / Invalid naming the path."""
    raw = body_dict(raw, "task_spec")
    inp = Spec.parse(raw.get("input_spec"), where="task_spec.input_spec")
    out = Spec.parse(raw.get("output_spec"), where="task_spec.output_spec")
    if not out.fields:
        raise Invalid(
            "the output spec needs at least one field",
            code="invalid_spec",
            field="task_spec.output_spec",
        )
    spec: dict[str, Any] = {"input_spec": inp.to_json(), "output_spec": out.to_json()}
    view = raw.get("view_spec")
    if view is not None:
        if not isinstance(view, dict):
            raise Invalid(
                "view_spec is an object", code="object_expected", field="task_spec.view_spec"
            )
        spec["view_spec"] = json_safe(view, "task_spec.view_spec")
    return spec


def project_public(row: Any) -> Project:
    """A ``crowd_projects`` row as the API shows it."""
    return Project.from_row(row)


class Specs:
    """The compiled (input spec, output spec) of project rows, once per project version."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, Any], tuple[Spec, Spec]] = {}

    def of(self, project: Any) -> tuple[Spec, Spec]:
        """(input spec, output spec) of a project row (anything with id, data, updated_at)."""
        cache = self._cache
        key = (project.id, project.updated_at)
        hit = cache.get(key)
        if hit is None:
            ts = project.data["task_spec"]
            hit = (
                Spec.parse(ts["input_spec"], where="task_spec.input_spec"),
                Spec.parse(ts["output_spec"], where="task_spec.output_spec"),
            )
            if len(cache) > 1000:
                cache.clear()
            cache[key] = hit
        return hit


class Projects:
    """Projects: create, read, list, update, archive."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _project_data(self, body: ProjectUpdate, old: dict[str, Any] | None) -> dict[str, Any]:
        sent = body.sent()  # with the fields a Toloka client sent that taskloom keeps as given
        data = dict(old or {})
        for key, value in sent.items():
            if key in _READ_ONLY:
                continue
            data[key] = json_safe(value, key)
        if "public_name" in sent and sent["public_name"] is None:
            raise Invalid("public_name is required", code="value_required", field="public_name")
        if old is None or "task_spec" in sent:
            data["task_spec"] = parse_task_spec(sent.get("task_spec"))
        data.setdefault("assignments_issuing_type", "AUTOMATED")
        return {k: v for k, v in data.items() if v is not None}

    def create(self, scope: Scope, body: ProjectCreate | Mapping[str, Any]) -> Project:
        """A new ACTIVE project; the specs are checked and stored normalised."""
        data = self._project_data(parse_body(ProjectCreate, body, keep_unknown=True), None)
        now = utcnow()
        values = {
            "id": new_id(),
            "app_id": scope.app_id,
            "status": "ACTIVE",
            "data": data,
            "created_at": now,
            "updated_at": now,
        }
        with self.store.write() as conn:
            conn.execute(insert(crowd_projects), values)
            return project_public(project_row(conn, scope, values["id"]))

    def get(self, scope: Scope, project_id: str) -> Project:
        with self.store.read() as conn:
            return project_public(project_row(conn, scope, project_id))

    def list(
        self,
        scope: Scope,
        *,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Project]:
        """Oldest first, paged with a cursor: ``{data, cursor}``."""
        check_limit(limit)
        t = crowd_projects
        q = select(t).where(t.c.app_id == scope.app_id)
        if status is not None:
            if status not in PROJECT_STATUSES:
                raise Invalid(f"unknown status {status!r}", code="invalid_status", field="status")
            q = q.where(t.c.status == status)
        key = CURSOR.decode(cursor)
        if key is not None:
            at, last = key
            q = q.where(or_(t.c.created_at > at, and_(t.c.created_at == at, t.c.id > last)))
        q = q.order_by(t.c.created_at, t.c.id).limit(limit + 1)
        with self.store.read() as conn:
            rows, nxt = page(conn.execute(q).all(), limit, CURSOR, lambda r: (r.created_at, r.id))
        return {"data": [project_public(r) for r in rows], "cursor": nxt}

    def update(
        self, scope: Scope, project_id: str, body: ProjectUpdate | Mapping[str, Any]
    ) -> Project:
        """Replace the fields given (``task_spec`` is checked again)."""
        body = parse_body(ProjectUpdate, body, keep_unknown=True)
        with self.store.write() as conn:
            row = project_row(conn, scope, project_id, lock=True)
            if row.status == "ARCHIVED":
                raise Conflict("an archived project cannot change", code="project_archived")
            data = self._project_data(body, row.data)
            conn.execute(
                update(crowd_projects)
                .where(crowd_projects.c.id == row.id)
                .values(data=data, updated_at=utcnow())
            )
            return project_public(project_row(conn, scope, project_id))

    def archive(self, scope: Scope, project_id: str) -> Project:
        """ARCHIVED; every pool of the project must be closed or archived first."""
        with self.store.write() as conn:
            row = project_row(conn, scope, project_id, lock=True)
            if row.status != "ARCHIVED":
                open_pool = conn.execute(
                    select(crowd_pools.c.id).where(
                        crowd_pools.c.project_id == row.id, crowd_pools.c.status == "OPEN"
                    )
                ).first()
                if open_pool is not None:
                    raise Conflict(
                        f"pool {open_pool.id} of this project is open: close it first",
                        code="project_has_open_pools",
                        field="project_id",
                    )
                conn.execute(
                    update(crowd_projects)
                    .where(crowd_projects.c.id == row.id, crowd_projects.c.status == "ACTIVE")
                    .values(status="ARCHIVED", updated_at=utcnow())
                )
            return project_public(project_row(conn, scope, project_id))
