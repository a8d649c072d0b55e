"""Shared fixtures.

``platform`` / ``services`` / ``scope`` give a started platform on a fresh database:
SQLite in a temporary folder, or PostgreSQL when ``TASKLOOM_TEST_DATABASE_URL`` is set (each
test then gets its own schema-free database state: tables are dropped and migrated again).
``client`` is an embedded SDK client; ``server`` a real ``taskloom serve`` process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from taskloom.config import Settings
from taskloom.runtime import Platform
from taskloom.scope import Scope

PG_URL = os.environ.get("TASKLOOM_TEST_DATABASE_URL")
# every `taskloom serve` a test starts takes a free port for its gRPC door (the default,
# 50051, would be shared by the suites that run side by side)
os.environ.setdefault("TASKLOOM_GRPC_PORT", "0")
TEST_KEY = "tlk_test_admin_key_0123456789abcdef"


def _head() -> str:
    from alembic.script import ScriptDirectory

    from taskloom.store.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def reset_postgres(url: str, *, empty: bool = False) -> None:
    """An empty database at the newest schema, as a first start would leave it before
    bootstrapping. When the schema is already at head, emptying every table is enough (and
    much faster than migrating again for each test); otherwise, or with ``empty`` (no schema
    at all, for the migration tests), it is dropped and the next start migrates it."""
    from sqlalchemy import create_engine

    eng = create_engine(url)
    try:
        with eng.begin() as conn:
            at_head = False
            if conn.execute(text("SELECT to_regclass('public.alembic_version')")).scalar():
                at_head = (
                    conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                    == _head()
                )
            tables = [
                r[0]
                for r in conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename <> 'alembic_version'"
                    )
                )
            ]
            if at_head and tables and not empty:
                # DELETE beats TRUNCATE on small tables (no new files); the foreign keys'
                # triggers are skipped for it, and the id sequences start again
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                for t in tables:
                    conn.execute(text(f'DELETE FROM public."{t}"'))
                for seq in conn.execute(
                    text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
                ).scalars():
                    conn.execute(text(f'ALTER SEQUENCE public."{seq}" RESTART'))
            else:
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
    finally:
        eng.dispose()


_SQLITE_TEMPLATE: list[Path] = []


def _sqlite_template() -> Path:
    """A SQLite database migrated to head once per test session; each test starts from a
    copy instead of running every migration again."""
    if not _SQLITE_TEMPLATE:
        import tempfile

        from taskloom.store.engine import Store
        from taskloom.store.migrate import upgrade

        folder = Path(tempfile.mkdtemp(prefix="taskloom-template-"))
        path = folder / "taskloom.db"
        store = Store(f"sqlite:///{path}")
        try:
            upgrade(store)
            with store.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            store.dispose()
        _SQLITE_TEMPLATE.append(path)
    return _SQLITE_TEMPLATE[0]


def make_settings(data_dir: Path, *, empty: bool = False, **kw: object) -> Settings:
    """Settings for a test; the database starts at the newest schema with no rows (``empty``:
    with no schema at all)."""
    if PG_URL:
        reset_postgres(PG_URL, empty=empty)
        kw.setdefault("database_url", PG_URL)
    elif not empty and "database_url" not in kw and not (data_dir / "taskloom.db").exists():
        import shutil

        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_sqlite_template(), data_dir / "taskloom.db")
    kw.setdefault("bootstrap_api_key", TEST_KEY)
    return Settings(data_dir=data_dir, **kw)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path / "data", lease_seconds=2.0, reaper_interval=0.5, poll_interval=0.1
    )


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    """A started platform without worker threads (tests drive workers themselves)."""
    p = Platform(settings, workers=0, lock=None).start()
    yield p
    p.stop()


@pytest.fixture
def services(platform: Platform):
    return platform.services


@pytest.fixture
def admin(services):
    return services.auth.authenticate(TEST_KEY)


@pytest.fixture
def scope(services, admin) -> Scope:
    return services.auth.scope(admin)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A real ``taskloom serve`` process on a free port."""

    def __init__(self, data_dir: Path, *, workers: int = 2, env: dict[str, str] | None = None):
        self.data_dir = data_dir
        self.port = free_port()
        self.grpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_url = f"http://127.0.0.1:{self.grpc_port}"
        self.api_key = TEST_KEY
        full_env = {**os.environ, "TASKLOOM_BOOTSTRAP_API_KEY": TEST_KEY, **(env or {})}
        if PG_URL:
            full_env["TASKLOOM_DATABASE_URL"] = PG_URL
        self.env = full_env
        self.log = open(data_dir.parent / f"server-{self.port}.log", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "taskloom.cli.main",
                "serve",
                "--port",
                str(self.port),
                "--grpc-port",
                str(self.grpc_port),
                "--data-dir",
                str(data_dir),
                "--workers",
                str(workers),
            ],
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    if PG_URL:
        reset_postgres(PG_URL)
    s = ServerProcess(
        tmp_path / "data", env={"TASKLOOM_LEASE_SECONDS": "2", "TASKLOOM_REAPER_INTERVAL": "0.5"}
    )
    yield s
    s.stop()
