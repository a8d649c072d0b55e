"""Skills, the skill values of workers, and workers themselves (people who label)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from taskloom.errors import Conflict, NotFound, Unauthorized
from taskloom.scope import Scope
from taskloom.services.auth import hash_key
from taskloom.services.crowd.bodies import SkillCreate, UserSkillSet, WorkerCreate, parse_body
from taskloom.services.crowd.common import (
    json_safe,
    new_id,
    skill_row,
    worker_row,
)
from taskloom.services.crowd.work_records import NewWorker, Skill, UserSkill, Worker
from taskloom.store.crowd_tables import crowd_skills, crowd_user_skills, crowd_workers
from taskloom.store.paging import CursorFormat, check_limit, page
from taskloom.store.records import Page
from taskloom.store.tables import apps
from taskloom.store.types import utcnow

if TYPE_CHECKING:
    from taskloom.store.engine import Store

WORKER_TOKEN_PREFIX = "tlw_"
SKILL_CURSOR = CursorFormat("crowd_skills", datetime, str)
USER_SKILL_CURSOR = CursorFormat("crowd_user_skills", str, str)


def skill_public(row: Any) -> Skill:
    """A ``crowd_skills`` row as the API shows it."""
    return Skill.from_row(row)


def user_skill_public(row: Any) -> UserSkill:
    """A ``crowd_user_skills`` row as the API shows it."""
    return UserSkill.from_row(row)


def worker_public(row: Any) -> Worker:
    """A ``crowd_workers`` row as the API shows it."""
    return Worker.from_row(row)


def _without_read_only(body: Any) -> Any:
    """A client may echo a skill's ``id`` and ``created`` back (toloka-kit's objects carry
    them); the service owns them."""
    if isinstance(body, Mapping) and ("id" in body or "created" in body):
        return {k: v for k, v in body.items() if k not in ("id", "created")}
    return body


class Skills:
    """Skills and the skill values of workers."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, scope: Scope, body: SkillCreate | Mapping[str, Any]) -> Skill:
        """A new skill; fields taskloom does not know (a Toloka client's) are stored as given."""
        skill = parse_body(SkillCreate, _without_read_only(body), keep_unknown=True)
        data = {
            k: json_safe(v, k)
            for k, v in skill.sent().items()
            if k not in ("id", "name", "created") and v is not None
        }
        values = {
            "id": new_id(),
            "app_id": scope.app_id,
            "name": skill.name,
            "data": data,
            "created_at": utcnow(),
        }
        with self.store.write() as conn:
            conn.execute(insert(crowd_skills), values)
            return skill_public(skill_row(conn, scope, values["id"]))

    def get(self, scope: Scope, skill_id: str) -> Skill:
        with self.store.read() as conn:
            return skill_public(skill_row(conn, scope, skill_id))

    def list(
        self, scope: Scope, *, name: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[Skill]:
        check_limit(limit)
        t = crowd_skills
        q = select(t).where(t.c.app_id == scope.app_id)
        if name is not None:
            q = q.where(t.c.name == name)
        key = SKILL_CURSOR.decode(cursor)
        if key is not None:
            at, last = key
            q = q.where(or_(t.c.created_at > at, and_(t.c.created_at == at, t.c.id > last)))
        q = q.order_by(t.c.created_at, t.c.id).limit(limit + 1)
        with self.store.read() as conn:
            rows, nxt = page(
                conn.execute(q).all(), limit, SKILL_CURSOR, lambda r: (r.created_at, r.id)
            )
        return {"data": [skill_public(r) for r in rows], "cursor": nxt}

    def set_user_skill(self, scope: Scope, skill_id: str, user_id: str, value: Any) -> UserSkill:
        """Set a worker's value (0 to 100) of a skill (parsed into ``bodies.UserSkillSet``)."""
        body = {"skill_id": skill_id, "user_id": user_id, "value": value}
        value = parse_body(UserSkillSet, body).value
        with self.store.write() as conn:
            skill_row(conn, scope, skill_id)
            worker_row(conn, scope, user_id, field="user_id")
            self.put_user_skill(conn, scope, skill_id, user_id, float(value))
            row = conn.execute(
                select(crowd_user_skills).where(
                    crowd_user_skills.c.skill_id == skill_id, crowd_user_skills.c.user_id == user_id
                )
            ).one()
            return user_skill_public(row)

    def put_user_skill(
        self, conn: Connection, scope: Scope, skill_id: str, user_id: str, value: float
    ) -> None:
        now = utcnow()
        t = crowd_user_skills
        res = conn.execute(
            update(t)
            .where(t.c.skill_id == skill_id, t.c.user_id == user_id)
            .values(value=value, updated_at=now)
        )
        if res.rowcount == 0:
            conn.execute(
                insert(t),
                {
                    "skill_id": skill_id,
                    "user_id": user_id,
                    "app_id": scope.app_id,
                    "value": value,
                    "created_at": now,
                    "updated_at": now,
                },
            )

    def delete_user_skill(self, scope: Scope, skill_id: Any, user_id: Any) -> None:
        """Take a skill's value away from a worker; NotFound when they have none here."""
        t = crowd_user_skills
        with self.store.write() as conn:
            res = conn.execute(
                delete(t).where(
                    t.c.app_id == scope.app_id,
                    t.c.skill_id == str(skill_id),
                    t.c.user_id == str(user_id),
                )
            )
        if not res.rowcount:
            raise NotFound(
                f"worker {user_id!r} has no value of skill {skill_id!r}",
                code="user_skill_not_found",
                field="user_skill_id",
            )

    def user_skill_values(self, conn: Connection, skill_id: str) -> dict[str, float]:
        t = crowd_user_skills
        return {
            r.user_id: r.value
            for r in conn.execute(select(t.c.user_id, t.c.value).where(t.c.skill_id == skill_id))
        }

    def list_user_skills(
        self,
        scope: Scope,
        *,
        skill_id: str | None = None,
        user_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[UserSkill]:
        check_limit(limit)
        t = crowd_user_skills
        q = select(t).where(t.c.app_id == scope.app_id)
        if skill_id is not None:
            q = q.where(t.c.skill_id == skill_id)
        if user_id is not None:
            q = q.where(t.c.user_id == user_id)
        key = USER_SKILL_CURSOR.decode(cursor)
        if key is not None:
            s, u = key
            q = q.where(or_(t.c.skill_id > s, and_(t.c.skill_id == s, t.c.user_id > u)))
        q = q.order_by(t.c.skill_id, t.c.user_id).limit(limit + 1)
        with self.store.read() as conn:
            rows, nxt = page(
                conn.execute(q).all(), limit, USER_SKILL_CURSOR, lambda r: (r.skill_id, r.user_id)
            )
        return {"data": [user_skill_public(r) for r in rows], "cursor": nxt}


class Workers:
    """Workers (the people who label) and their tokens."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def register(
        self, scope: Scope, body: WorkerCreate | Mapping[str, Any] | None = None
    ) -> NewWorker:
        """A new worker of this app; the answer holds its token, shown this once."""
        worker = parse_body(WorkerCreate, body if body is not None else {})
        external_id, name = worker.external_id, worker.name
        token = WORKER_TOKEN_PREFIX + secrets.token_urlsafe(24)
        values = {
            "id": new_id(),
            "app_id": scope.app_id,
            "external_id": external_id,
            "name": name,
            "token_hash": hash_key(token),
            "created_at": utcnow(),
        }
        try:
            with self.store.write() as conn:
                if (
                    external_id is not None
                    and conn.execute(
                        select(crowd_workers.c.id).where(
                            crowd_workers.c.app_id == scope.app_id,
                            crowd_workers.c.external_id == external_id,
                        )
                    ).first()
                ):
                    raise Conflict(
                        f"a worker with external_id {external_id!r} exists",
                        code="worker_exists",
                        field="external_id",
                    )
                conn.execute(insert(crowd_workers), values)
        except IntegrityError as exc:  # a concurrent registration of the same external id
            raise Conflict("that worker exists", code="worker_exists", field="external_id") from exc
        return NewWorker.of(worker_public(_Obj(values)), token)

    def get(self, scope: Scope, worker_id: str) -> Worker:
        with self.store.read() as conn:
            return worker_public(worker_row(conn, scope, worker_id))

    def scope_of(self, token: str | None) -> tuple[Scope, str]:
        """(the app's scope, worker id) of a worker token; Unauthorized if unknown."""
        if not token:
            raise Unauthorized("a worker token is required (Authorization: Worker <token>)")
        with self.store.read() as conn:
            row = conn.execute(
                select(crowd_workers.c.id, crowd_workers.c.app_id, apps.c.user_id)
                .join(apps, apps.c.id == crowd_workers.c.app_id)
                .where(crowd_workers.c.token_hash == hash_key(token))
            ).first()
        if row is None:
            raise Unauthorized("invalid worker token", code="invalid_worker_token")
        return Scope(app_id=row.app_id, user_id=row.user_id), row.id


class _Obj:
    def __init__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
