"""Alembic environment: runs on the connection that ``taskloom.store.migrate`` passes in."""

from __future__ import annotations

from alembic import context

from taskloom.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - taskloom always passes one
    raise RuntimeError("run migrations through taskloom.store.migrate.upgrade()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
