"""Row lookups every layer needs inside its own transaction (the job engine and the
services alike): a dataset by name within the scope's app, and its change counter."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from taskloom.errors import NotFound
from taskloom.scope import Scope
from taskloom.store.tables import datasets


def lookup(conn: Connection, scope: Scope, name: str, *, lock: bool = False) -> Any:
    """The dataset row, or NotFound (also for another app's dataset).

    ``lock``: the caller is about to write the dataset's documents or vectors in this
    transaction. The row is locked (PostgreSQL; SQLite's writers are serialised anyway) and
    its ``data_version`` bumped in the same statement, so the bump commits or rolls back
    with the writes and readers see a new version exactly when the documents changed."""
    where = (datasets.c.app_id == scope.app_id, datasets.c.name == name)
    if lock:
        q: Any = (
            update(datasets)
            .where(*where)
            .values(data_version=datasets.c.data_version + 1)
            .returning(*datasets.c)
        )
    else:
        q = select(datasets).where(*where)
    row = conn.execute(q).first()
    if row is None:
        raise NotFound(f"dataset {name!r} not found", code="dataset_not_found", field="dataset")
    return row


def bump_version(conn: Connection, dataset_id: int) -> None:
    """Mark the dataset's documents as changed (see ``lookup(lock=True)``)."""
    conn.execute(
        update(datasets)
        .where(datasets.c.id == dataset_id)
        .values(data_version=datasets.c.data_version + 1)
    )
