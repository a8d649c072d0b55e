"""Engine and transactions.

``Store.read()`` opens a plain transaction; ``Store.write()`` one that takes SQLite's write
lock up front (``BEGIN IMMEDIATE``) so that writers queue on the busy timeout instead of
failing when a read lock cannot be upgraded. PostgreSQL uses READ COMMITTED for both.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from taskloom.store.filters import sqlite_regexp

log = logging.getLogger("taskloom.store")


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
            # the filter language's $regex (store/filters.py)
            dbapi_conn.create_function("regexp", 2, sqlite_regexp, deterministic=True)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=60000")
            # only takes effect on a new database: 8 KiB pages hold five 384-d vectors
            # where 4 KiB pages hold two, a fifth less disk for vector-heavy datasets
            cur.execute("PRAGMA page_size=8192")
            _set_wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA cache_size=-65536")
            # Checkpoints are the Checkpointer's job (off the request path); a commit only
            # checkpoints as a backstop when the WAL has grown past 256 MiB (32768 8 KiB pages).
            cur.execute("PRAGMA wal_autocheckpoint=32768")
            cur.execute("PRAGMA journal_size_limit=67108864")
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
        self._checkpointer: Checkpointer | None = None
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        if self._write_lock is None:
            with self.engine.connect() as conn:
                conn = conn.execution_options(taskloom_write=True)
                with conn.begin():
                    yield conn
            return
        # SQLite has one writer at a time. Threads of this process queue on a lock that
        # hands over at once, instead of on SQLite's busy handler, which sleeps 1, 2, 5,
        # 10… ms between tries; other processes still wait on the busy timeout.
        with self._write_lock, self.engine.connect() as conn:
            conn = conn.execution_options(taskloom_write=True)
            with conn.begin():
                yield conn

    def start_checkpointer(self, interval: float = 0.25) -> None:
        """SQLite only: copy the WAL back into the database in a background thread, so
        that writers' commits do not pay for it."""
        if self.is_sqlite and self._checkpointer is None:
            self._checkpointer = Checkpointer(self.engine, interval)
            self._checkpointer.start()

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.engine.dispose()


class Checkpointer:
    """A thread that copies the WAL back into the database off the request path.

    While writes keep coming it lets the WAL grow to ``busy_limit`` bytes before a PASSIVE
    checkpoint (which never blocks readers or writers), so that bursts of writes are not
    slowed by the second copy of every page; once the WAL has stopped growing it
    checkpoints everything and truncates the file.
    """

    def __init__(self, engine: Engine, interval: float, busy_limit: int = 64 << 20) -> None:
        self.engine = engine
        self.interval = interval
        self.busy_limit = busy_limit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="taskloom-wal")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            path = next(r[2] for r in raw.execute("PRAGMA database_list") if r[1] == "main")
            wal = f"{path}-wal"
            last = -1
            while not self._stop.wait(self.interval):
                try:
                    size = os.path.getsize(wal) if os.path.exists(wal) else 0
                    if size > self.busy_limit:
                        raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    elif size > 0 and size == last:
                        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                        size = os.path.getsize(wal) if os.path.exists(wal) else 0
                    last = size
                except (sqlite3.Error, OSError):
                    log.warning("WAL checkpoint failed; retrying", exc_info=True)


def make_unpooled_engine(url: str) -> Engine:
    return create_engine(url, poolclass=NullPool)
