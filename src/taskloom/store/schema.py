"""Every table of the platform on one ``MetaData``: the Alembic migrations in
``migrations/`` create exactly these (a test checks)."""

from __future__ import annotations

from taskloom.store import crowd_tables, model_tables, tables
from taskloom.store.metadata import metadata

__all__ = ["crowd_tables", "metadata", "model_tables", "tables"]
