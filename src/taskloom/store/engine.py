"""Engine and transactions.

``Store.read()`` opens a plain transaction; ``Store.write()`` one that takes SQLite's write
lock up front (``BEGIN IMMEDIATE``) so that writers queue on the busy timeout instead of
failing when a read lock cannot be upgraded. PostgreSQL uses READ COMMITTED for both.

Statements that hold a filter (the SQL carries :data:`~taskloom.store.filters.BOUNDED`, which
the filter compiler puts in every filter it compiles) run under a time bound,
``query_timeout`` seconds (``TASKLOOM_QUERY_TIMEOUT``): on PostgreSQL a ``statement_timeout``
set for that statement, on SQLite a progress handler that interrupts it. Hitting the bound is
:class:`QueryTimeout` (422 ``query_timeout``); the transaction is rolled back. Other statements
(loading a vector field, migrations, deleting a dataset) are not bounded.
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
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.pool import NullPool

from taskloom.errors import Invalid
from taskloom.store.filters import BOUNDED, sqlite_regexp

log = logging.getLogger("taskloom.store")


DEFAULT_QUERY_TIMEOUT = 10.0
# SQLite calls the progress handler every this many virtual machine instructions (about a
# millisecond of work): often enough to stop on time, rarely enough to cost nothing
_PROGRESS_STEPS = 100_000
_DEADLINE = "taskloom_deadline"


class QueryTimeout(Invalid):
    """The query ran past the time bound of filter queries."""

    code = "query_timeout"


def _timeout_error(seconds: float) -> QueryTimeout:
    return QueryTimeout(
        f"the query ran longer than {seconds:g} s (query_timeout) and was stopped; "
        "narrow the filter or make it cheaper",
        field="filter",
        details={"timeout_seconds": seconds},
    )


class _Deadline:
    """When the statement running on one SQLite connection must stop (None: never); the
    connection's progress handler."""

    __slots__ = ("at", "hit")

    def __init__(self) -> None:
        self.at: float | None = None
        self.hit = False

    def __call__(self) -> int:
        at = self.at
        if at is not None and time.monotonic() > at:
            self.hit = True
            return 1  # non-zero: SQLite interrupts the statement
        return 0

    def arm(self, seconds: float | None) -> None:
        self.hit = False
        self.at = None if seconds is None else time.monotonic() + seconds


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


def make_engine(
    url: str, *, pool_size: int = 10, query_timeout: float | None = DEFAULT_QUERY_TIMEOUT
) -> Engine:
    """An engine for ``url`` with taskloom's SQLite settings (WAL, busy timeout, FKs) and
    the time bound of filter queries (``query_timeout`` seconds; None: unbounded)."""
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
            deadline = _record.info[_DEADLINE] = _Deadline()
            dbapi_conn.set_progress_handler(deadline, _PROGRESS_STEPS)
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

        @event.listens_for(engine, "before_cursor_execute")
        def _arm(
            conn: Connection, _cur: Any, statement: str, _p: Any, _ctx: Any, _many: bool
        ) -> None:
            # a filter query runs (and its rows are fetched) under the bound; any other
            # statement on the connection clears it
            deadline = conn.info.get(_DEADLINE)
            if deadline is not None:
                deadline.arm(query_timeout if BOUNDED in statement else None)

        def _disarm(conn: Connection) -> None:
            deadline = conn.info.get(_DEADLINE)
            if deadline is not None:
                deadline.arm(None)  # a COMMIT is never interrupted

        event.listen(engine, "commit", _disarm)
        event.listen(engine, "rollback", _disarm)

        @event.listens_for(engine, "checkin")
        def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
            deadline = record.info.get(_DEADLINE)
            if deadline is not None:
                deadline.arm(None)

        @event.listens_for(engine, "handle_error")
        def _sqlite_errors(ctx: ExceptionContext) -> BaseException | None:
            if isinstance(ctx.original_exception, OverflowError):
                # an integer past 64 bits as a parameter: the value is at fault, as when
                # PostgreSQL answers "bigint out of range" (api/errors.py: invalid_value)
                raise Invalid(
                    "a value in this request cannot be stored: integers are 64-bit "
                    "(-2**63 to 2**63-1)",
                    code="invalid_value",
                ) from ctx.original_exception
            conn = ctx.connection
            deadline = conn.info.get(_DEADLINE) if conn is not None else None
            if (
                deadline is not None
                and deadline.hit
                and isinstance(ctx.original_exception, sqlite3.OperationalError)
                and query_timeout is not None
            ):
                deadline.arm(None)
                raise _timeout_error(query_timeout) from ctx.original_exception
            return None

        return engine

    engine = create_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        pool_size=pool_size,
        max_overflow=20,
        pool_pre_ping=True,
    )
    if query_timeout is None:
        return engine
    bound_ms = max(1, round(query_timeout * 1000))

    @event.listens_for(engine, "before_cursor_execute")
    def _pg_bound(
        _conn: Connection, cur: Any, statement: str, _p: Any, _ctx: Any, _many: bool
    ) -> None:
        if BOUNDED in statement:
            # for the rest of this transaction; the statement after resets it
            with cur.connection.cursor() as own:
                own.execute(f"SET LOCAL statement_timeout = {bound_ms}")

    @event.listens_for(engine, "after_cursor_execute")
    def _pg_unbound(
        _conn: Connection, cur: Any, statement: str, _p: Any, _ctx: Any, _many: bool
    ) -> None:
        if BOUNDED in statement:
            with cur.connection.cursor() as own:  # ``cur`` holds the rows
                own.execute("SET LOCAL statement_timeout = DEFAULT")

    @event.listens_for(engine, "handle_error")
    def _pg_timeout(ctx: ExceptionContext) -> BaseException | None:
        canceled = getattr(ctx.original_exception, "sqlstate", None) == "57014"
        if canceled and ctx.statement is not None and BOUNDED in ctx.statement:
            raise _timeout_error(query_timeout) from ctx.original_exception
        return None

    return engine


class Store:
    """The database: an engine plus read and write transactions."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        query_timeout: float | None = DEFAULT_QUERY_TIMEOUT,
    ) -> None:
        self.url = url
        self.query_timeout = query_timeout
        self.engine = make_engine(url, pool_size=pool_size, query_timeout=query_timeout)
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
