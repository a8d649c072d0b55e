"""Datasets: named collections of documents inside an app, with an inferred field schema."""

from __future__ import annotations

import re
import secrets
from typing import Any

from sqlalchemy import delete, func, insert, select

from taskloom.errors import Conflict, Invalid
from taskloom.scope import Scope
from taskloom.services.batches import public_fields
from taskloom.store.engine import Store
from taskloom.store.lookups import lookup
from taskloom.store.tables import datasets, documents
from taskloom.store.types import utcnow

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def check_dataset_name(name: Any, field: str = "name") -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise Invalid(
            "a dataset name is 1-128 letters, digits, '_', '-' or '.', starting with a "
            "letter or digit",
            code="invalid_dataset_name",
            field=field,
        )
    return name


def public(row: Any, count: int | None = None) -> dict[str, Any]:
    out = {
        "id": row.name,
        "name": row.name,
        "app_id": row.app_id,
        "fields": public_fields(row.fields),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
    if count is not None:
        out["document_count"] = count
    return out


class DatasetService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, scope: Scope, name: str) -> dict[str, Any]:
        check_dataset_name(name)
        now = utcnow()
        with self.store.write() as conn:
            exists = conn.execute(
                select(datasets.c.id).where(
                    datasets.c.app_id == scope.app_id, datasets.c.name == name
                )
            ).first()
            if exists:
                raise Conflict(f"dataset {name!r} exists", code="dataset_exists", field="name")
            conn.execute(
                insert(datasets).values(
                    app_id=scope.app_id,
                    name=name,
                    fields={},
                    created_at=now,
                    updated_at=now,
                    # a random start: a dataset made again under a reused id never shares a
                    # version with the one before it (whose indexes may still be cached)
                    data_version=secrets.randbits(53),
                )
            )
            return public(lookup(conn, scope, name), 0)

    def get(self, scope: Scope, name: str) -> dict[str, Any]:
        with self.store.read() as conn:
            row = lookup(conn, scope, name)
            count = conn.execute(
                select(func.count()).select_from(documents).where(documents.c.dataset_id == row.id)
            ).scalar_one()
        return public(row, count)

    def list(self, scope: Scope) -> list[dict[str, Any]]:
        counts = (
            select(documents.c.dataset_id, func.count().label("n"))
            .group_by(documents.c.dataset_id)
            .subquery()
        )
        q = (
            select(datasets, func.coalesce(counts.c.n, 0).label("n"))
            .outerjoin(counts, counts.c.dataset_id == datasets.c.id)
            .where(datasets.c.app_id == scope.app_id)
            .order_by(datasets.c.name)
        )
        with self.store.read() as conn:
            return [public(r, r.n) for r in conn.execute(q)]

    def delete(self, scope: Scope, name: str) -> None:
        with self.store.write() as conn:
            row = lookup(conn, scope, name, lock=True)
            # vectors go with their documents (ON DELETE CASCADE)
            conn.execute(delete(documents).where(documents.c.dataset_id == row.id))
            conn.execute(delete(datasets).where(datasets.c.id == row.id))

    def schema(self, scope: Scope, name: str) -> dict[str, Any]:
        with self.store.read() as conn:
            return public_fields(lookup(conn, scope, name).fields)

    def field_order(self, scope: Scope, name: str) -> dict[str, int]:
        """Each field path's rank in first-seen order (documents' own key order is not
        kept by PostgreSQL's jsonb)."""
        with self.store.read() as conn:
            fields = lookup(conn, scope, name).fields
        return {k: v["seq"] for k, v in fields.items() if "seq" in v}
