"""Apps: a user's workspaces and taskloom's tenant boundary (everything else belongs to one).

An app has a name unique per user (the Clarifai door's app id), an optional description, the
base workflow that indexes its new inputs (:data:`BASE_WORKFLOWS`; none is ``Empty``) and
``meta``: what a client gave that taskloom keeps without reading it (Clarifai's display
name, default language and metadata). Deleting an app deletes everything in it: its
datasets with their documents and vectors, jobs, crowd projects, models, features and keys
limited to it (the database's ``ON DELETE CASCADE``), and its blobs. A key limited to one
app sees only that app and can neither create nor delete apps.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update

from taskloom.errors import Conflict, Forbidden, Invalid, NotFound
from taskloom.store.paging import CursorFormat, check_limit, page
from taskloom.store.records import Page, Record
from taskloom.store.tables import apps
from taskloom.store.types import utcnow
from taskloom.validation import check_display_name

if TYPE_CHECKING:
    from taskloom.blobs import BlobStore
    from taskloom.services.auth import AuthService, Principal
    from taskloom.store.engine import Store

# the workflows an app's new inputs go through: text inputs get the MiniLM embedding under
# Language-Understanding, Universal and General; image inputs the CLIP one where configured
BASE_WORKFLOWS = ("Empty", "Language-Understanding", "Universal", "General")
CURSOR = CursorFormat("apps", datetime, str)


@dataclass(frozen=True, slots=True, eq=False)
class App(Record):
    id: str
    name: str
    user_id: str
    created_at: datetime
    description: str | None
    base_workflow: str
    meta: dict[str, Any]
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> App:
        return cls(
            id=row.id,
            name=row.name,
            user_id=row.user_id,
            created_at=row.created_at,
            description=row.description,
            base_workflow=row.base_workflow or "Empty",
            meta=row.meta or {},
            updated_at=row.updated_at or row.created_at,
        )


def check_base_workflow(value: Any, field: str = "base_workflow") -> str:
    if value is None or value == "":
        return "Empty"
    if value not in BASE_WORKFLOWS:
        raise Invalid(
            f"unknown base workflow {value!r}: one of {', '.join(BASE_WORKFLOWS)}",
            code="unknown_base_workflow",
            field=field,
        )
    return str(value)


def _check_description(value: Any, field: str = "description") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 10_000 or "\x00" in value:
        raise Invalid(
            "a description is text of at most 10,000 characters",
            code="invalid_description",
            field=field,
        )
    return value


def _check_meta(value: Any, field: str = "meta") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid("meta is a JSON object", code="wrong_type", field=field)
    return value


class AppService:
    def __init__(self, store: Store, blobs: BlobStore, auth: AuthService) -> None:
        self.store = store
        self.blobs = blobs
        self.auth = auth

    def _row(self, conn: Connection, principal: Principal, name: str, *, lock: bool = False) -> Any:
        q = select(apps).where(apps.c.user_id == principal.user_id, apps.c.name == name)
        if principal.key_app_id is not None:
            q = q.where(apps.c.id == principal.key_app_id)
        if lock:
            q = q.with_for_update()
        row = conn.execute(q).first()
        if row is None:
            raise NotFound(f"app {name!r} not found", code="app_not_found", field="app_id")
        return row

    def create(
        self,
        principal: Principal,
        name: str,
        *,
        description: str | None = None,
        base_workflow: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> App:
        settings = {"description": description, "base_workflow": base_workflow, "meta": meta}
        return self.create_many(principal, [(name, settings)])[0]

    def create_many(
        self, principal: Principal, specs: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[App]:
        """Apps ``(name, {description, base_workflow, meta})`` in one transaction: all of
        them or, when one is refused, none."""
        if principal.key_app_id is not None:
            raise Forbidden("this key is limited to one app and cannot create apps")
        now = utcnow()
        rows: list[dict[str, Any]] = []
        for i, (name, settings) in enumerate(specs):
            where = "name" if len(specs) == 1 else f"apps[{i}]"
            check_display_name(name, "name" if len(specs) == 1 else f"{where}.id")
            if any(r["name"] == name for r in rows):
                raise Conflict(f"app {name!r} is given twice", code="app_exists", field=where)
            rows.append(
                {
                    "id": uuid.uuid4().hex,
                    "user_id": principal.user_id,
                    "name": name,
                    # apps made together list in the order given
                    "created_at": now + timedelta(microseconds=i),
                    "updated_at": now + timedelta(microseconds=i),
                    "description": _check_description(settings.get("description")),
                    "base_workflow": check_base_workflow(settings.get("base_workflow")),
                    "meta": _check_meta(settings.get("meta")),
                }
            )
        if not rows:
            return []
        with self.store.write() as conn:
            taken = {
                r.name
                for r in conn.execute(
                    select(apps.c.name).where(
                        apps.c.user_id == principal.user_id,
                        apps.c.name.in_([r["name"] for r in rows]),
                    )
                )
            }
            for r in rows:
                if r["name"] in taken:
                    raise Conflict(f"app {r['name']!r} exists", code="app_exists", field="name")
            conn.execute(insert(apps), rows)
            return [App.from_row(self._row(conn, principal, r["name"])) for r in rows]

    def get(self, principal: Principal, name: str) -> App:
        with self.store.read() as conn:
            return App.from_row(self._row(conn, principal, name))

    def list(
        self,
        principal: Principal,
        *,
        limit: int = 100,
        cursor: str | None = None,
        offset: int = 0,
    ) -> Page[App]:
        """Oldest first: ``{data, cursor}``; ``offset`` skips that many first (page numbers)."""
        check_limit(limit)
        after = CURSOR.decode(cursor)
        q = select(apps).where(apps.c.user_id == principal.user_id)
        if principal.key_app_id is not None:
            q = q.where(apps.c.id == principal.key_app_id)
        if after is not None:
            at, aid = after
            q = q.where(or_(apps.c.created_at > at, and_(apps.c.created_at == at, apps.c.id > aid)))
        q = q.order_by(apps.c.created_at, apps.c.id).offset(max(0, offset)).limit(limit + 1)
        with self.store.read() as conn:
            rows = conn.execute(q).all()
        out, nxt = page(rows, limit, CURSOR, lambda r: (r.created_at, r.id))
        return {"data": [App.from_row(r) for r in out], "cursor": nxt}

    def update(
        self,
        principal: Principal,
        name: str,
        *,
        description: str | None = None,
        base_workflow: str | None = None,
        meta: dict[str, Any] | None = None,
        replace_meta: bool = False,
    ) -> App:
        """Change the fields given (None: unchanged); ``meta`` keys are merged into the
        app's (``replace_meta``: ``meta`` replaces those keys whole)."""
        changes: dict[str, Any] = {}
        if description is not None:
            changes["description"] = _check_description(description)
        if base_workflow is not None:
            changes["base_workflow"] = check_base_workflow(base_workflow)
        with self.store.write() as conn:
            row = self._row(conn, principal, name, lock=True)
            if meta is not None:
                given = _check_meta(meta)
                if not replace_meta and isinstance(given.get("metadata"), dict):
                    old = (row.meta or {}).get("metadata") or {}
                    given = {**given, "metadata": {**old, **given["metadata"]}}
                changes["meta"] = {**(row.meta or {}), **given}
            if changes:
                changes["updated_at"] = utcnow()
                conn.execute(update(apps).where(apps.c.id == row.id).values(**changes))
            return App.from_row(self._row(conn, principal, name))

    def delete(self, principal: Principal, name: str) -> None:
        """The app and everything in it, in one transaction. A worker running one of its
        jobs finds the job gone at its next progress report or heartbeat and stops (its
        lease is lost), writing nothing."""
        if principal.key_app_id is not None:
            raise Forbidden("this key is limited to one app and cannot delete apps")
        with self.store.write() as conn:
            row = self._row(conn, principal, name, lock=True)
            conn.execute(delete(apps).where(apps.c.id == row.id))
        self.auth.forget_app(row.id)
        self.blobs.drop_app(row.id)
