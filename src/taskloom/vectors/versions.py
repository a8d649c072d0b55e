"""Is a cached index still current? The cheap answer first, the exact one when needed.

1. A dataset's ``data_version`` (``datasets.data_version``): bumped in the transaction of
   every write to its documents or vectors (``services.datasets.lookup(lock=True)``). The
   version the entry was synced at: the index is current, at the cost of reading one row
   that the search reads anyway. Writes elsewhere (other datasets, job heartbeats, crowd
   work) leave it alone.
2. ``document_state``: when the version moved, the dataset's documents as (primary key,
   ``updated_at``) pairs. Every document write of ``DocumentService`` (insert, overwrite,
   update, delete, and job kinds, which write through it) adds or removes a key or stamps
   ``updated_at``, so comparing two states names exactly the documents that changed. The
   comparison is per document, not ``max(updated_at)``: a writer that took its timestamp
   before another writer's commit may commit an older timestamp later.

``ChangeToken``, a database-wide value that moves whenever anything commits (SQLite's
``PRAGMA data_version`` on a read-only connection of our own; PostgreSQL's
``pg_current_snapshot()``), lets the search service skip looking the dataset row up again
when nothing at all was committed. Both are read before anything else of the transaction
that reads the state, so a commit racing with the read moves them and is looked at again by
the next search.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection

from taskloom.store.engine import Store


class ChangeToken:
    """Reads the database-wide change token (``None`` when the database has none)."""

    def __init__(self, store: Store) -> None:
        self.dialect = store.dialect
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._path: Path | None = None
        if self.dialect == "sqlite":
            db = store.engine.url.database
            if db and db != ":memory:" and not db.startswith("file:"):
                self._path = Path(db).resolve()
        self._pg_sql: str | None = None

    def read(self, conn: Connection) -> Any:
        """The token now. ``conn`` must not have read anything yet in its transaction."""
        if self.dialect == "postgresql":
            if self._pg_sql is None:
                version = conn.dialect.server_version_info or (0,)
                self._pg_sql = (
                    "SELECT pg_current_snapshot()::text"
                    if version >= (13,)
                    else "SELECT txid_current_snapshot()::text"
                )
            return conn.exec_driver_sql(self._pg_sql).scalar()
        if self._path is None:
            return None
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = sqlite3.connect(
                        self._path.as_uri() + "?mode=ro",
                        uri=True,
                        check_same_thread=False,
                        isolation_level=None,
                    )
                return self._conn.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error:
                self.close_locked()
                return None  # no token: every search compares the documents

    def close_locked(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()


@dataclass(frozen=True)
class DocState:
    """The documents of a dataset: sorted primary keys and their ``updated_at`` stamps."""

    pks: np.ndarray
    stamps: np.ndarray

    def __len__(self) -> int:
        return int(self.pks.size)

    def diff(self, new: DocState) -> tuple[np.ndarray, np.ndarray]:
        """(documents new or changed in ``new``, documents gone from it): sorted keys."""
        if np.array_equal(self.pks, new.pks):
            return new.pks[self.stamps != new.stamps], np.empty(0, np.int64)
        _, i_old, i_new = np.intersect1d(self.pks, new.pks, assume_unique=True, return_indices=True)
        changed = new.pks[i_new][self.stamps[i_old] != new.stamps[i_new]]
        added = np.setdiff1d(new.pks, self.pks, assume_unique=True)
        gone = np.setdiff1d(self.pks, new.pks, assume_unique=True)
        return np.union1d(changed, added), gone


def document_state(conn: Connection, dataset_id: int) -> DocState:
    """The dataset's documents now: one read of their keys and stamps, with the driver's own
    cursor in the transaction of ``conn`` (a result object per row would double the cost)."""
    if conn.dialect.name == "postgresql":
        sql = (
            "SELECT id, (extract(epoch from updated_at) * 1000000)::bigint "
            "FROM documents WHERE dataset_id = %s"
        )
    else:  # SQLite stores the stamp as text with microseconds: compare the text itself
        sql = "SELECT id, updated_at FROM documents WHERE dataset_id = ?"
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(sql, (dataset_id,))
        rows = cur.fetchall()
    finally:
        cur.close()
    n = len(rows)
    if not n:
        return DocState(np.empty(0, np.int64), np.empty(0, np.int64))
    ids, stamps = zip(*rows, strict=True)
    pks = np.array(ids, dtype=np.int64)
    # an object array holds the driver's own values: no conversion, exact comparisons
    stamp_arr = np.empty(n, dtype=object)
    stamp_arr[:] = stamps
    order = np.argsort(pks, kind="stable")
    return DocState(pks[order], stamp_arr[order])
