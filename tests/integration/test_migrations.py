"""The Alembic migrations create exactly the schema of ``store/tables.py``, on both databases."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from conftest import make_settings
from taskloom.config import Settings
from taskloom.store import migrate
from taskloom.store.engine import Store
from taskloom.store.schema import metadata


def diff(store: Store) -> list:
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(ctx, metadata)


def head_revision() -> str:
    return ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


def current_revision(store: Store) -> str | None:
    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def tables(store: Store) -> set[str]:
    return set(inspect(store.engine).get_table_names()) - {"alembic_version"}


def downgrade(store: Store, revision: str) -> None:
    cfg = migrate.alembic_config()
    with store.engine.connect() as conn:
        conn = conn.execution_options(taskloom_write=True)
        with conn.begin():
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A database with no schema at all (the shared fixture starts from a migrated copy)."""
    return make_settings(tmp_path / "data", empty=True)


def fresh_store(settings) -> Store:
    """An empty database (the ``settings`` fixture resets PostgreSQL's)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.resolved_database_url)
    assert tables(store) == set()
    return store


def test_the_migrated_schema_is_the_declared_schema(settings):
    store = fresh_store(settings)
    try:
        migrate.upgrade(store)
        assert current_revision(store) == head_revision()
        assert tables(store) == set(metadata.tables)
        assert diff(store) == []
        # the declared columns, one by one, as the database reports them
        insp = inspect(store.engine)
        for name, table in metadata.tables.items():
            got = {c["name"]: c["nullable"] for c in insp.get_columns(name)}
            assert got == {c.name: c.nullable for c in table.columns}, name
    finally:
        store.dispose()


def test_the_comparison_notices_a_difference(settings):
    """The check above can fail: a column the migration did not make is reported."""
    store = fresh_store(settings)
    try:
        migrate.upgrade(store)
        with store.write() as conn:
            conn.exec_driver_sql("ALTER TABLE jobs ADD COLUMN surprise INTEGER")
        changes = diff(store)
        assert [(c[0], c[3].name) for c in changes if c[0] == "remove_column"] == [
            ("remove_column", "surprise")
        ]
    finally:
        store.dispose()


def test_upgrade_is_idempotent_and_reversible(settings):
    store = fresh_store(settings)
    try:
        migrate.upgrade(store)
        migrate.upgrade(store)  # every process runs it at start
        assert diff(store) == []
        downgrade(store, "base")
        assert tables(store) == set()
        assert current_revision(store) is None
        migrate.upgrade(store)
        assert diff(store) == []
    finally:
        store.dispose()


def test_concurrent_upgrades_of_a_new_database(settings, tmp_path):
    """Several processes starting at once on an empty database all succeed (serve and
    worker processes each migrate at start). The race is short, so SQLite gets a few rounds."""
    url = settings.resolved_database_url
    rounds = (
        [url]
        if not url.startswith("sqlite")
        else [f"sqlite:///{tmp_path / f'round-{i}.db'}" for i in range(12)]
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for round_url in rounds:
        stores = [Store(round_url) for _ in range(4)]
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(stores))

        def run(store: Store, barrier=barrier, errors=errors) -> None:
            try:
                barrier.wait()
                migrate.upgrade(store)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(s,)) for s in stores]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert not errors, errors
            assert diff(stores[0]) == []
            assert current_revision(stores[0]) == head_revision()
        finally:
            for s in stores:
                s.dispose()
