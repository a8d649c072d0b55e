"""Apply the Alembic migrations; every process does it at start, safely in parallel."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from taskloom.store.engine import Store

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 7_421_003_117  # any constant: serialises concurrent upgrades on PostgreSQL


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(store: Store, revision: str = "head") -> None:
    cfg = alembic_config()
    with store.engine.connect() as conn:
        conn = conn.execution_options(taskloom_write=True)
        with conn.begin():
            if store.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
