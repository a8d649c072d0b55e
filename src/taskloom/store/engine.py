"""Engine and transactions.

``Store.read()`` opens a plain transaction; ``Store.write()`` one that takes SQLite's write
lock up front (``BEGIN IMMEDIATE``) so that writers queue on the busy timeout instead of
failing when a read lock cannot be upgraded. PostgreSQL uses READ COMMITTED for both.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _set_wal(cur: Any, tries: int = 600) -> None:
    """Switch to WAL. On a new database another process may be writing (migrating) at the
    same moment; SQLite then refuses the switch at once, without the busy wait: retry."""
    for attempt in range(tries):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(0.05)


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for ``url`` with taskloom's SQLite settings (WAL, busy timeout, FKs)."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            connect_args={"check_same_thread": False, "timeout": 60},
            pool_size=pool_size,
            max_overflow=20,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event below issue BEGIN itself.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            _set_wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA cache_size=-65536")
            # fewer, larger checkpoints: bulk inserts write megabytes per transaction
            cur.execute("PRAGMA wal_autocheckpoint=16384")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("taskloom_write")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if mode else "BEGIN")

        return engine

    return create_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        pool_size=pool_size,
        max_overflow=20,
        pool_pre_ping=True,
    )


class Store:
    """The database: an engine plus read and write transactions."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.dialect = self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(taskloom_write=True)
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def make_unpooled_engine(url: str) -> Engine:
    return create_engine(url, poolclass=NullPool)
