"""NCP signatures seen, in the database: a signed request is accepted once.

An NCP signature covers the method, the URI, the timestamp and the access key, and the
timestamp is good for 5 minutes either way; so the same headers sent again within that window
would pass the signature check a second time. :func:`first_use` records each accepted signature
in ``ncp_signatures`` with one ``INSERT … ON CONFLICT DO NOTHING``: the database decides, so of
two requests (threads, processes, servers on one database) carrying one signature exactly one
inserts the row, and the record outlives restarts.

A row is kept until its ``expires_at`` (the request's timestamp plus the window): after that
the timestamp check refuses the request anyway. Each call first deletes the rows that have
expired (with a minute's grace, for servers whose clocks differ a little) through the
``expires_at`` index, so the table holds about one window of requests and the purge is a
range scan of the few rows that expired since the last call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from taskloom.store.engine import Store
from taskloom.store.tables import ncp_signatures
from taskloom.store.types import utcnow

__all__ = ["GRACE", "first_use", "purge"]

GRACE = timedelta(seconds=60)
"""How long past its expiry a row is kept: servers' clocks on one database may differ a little,
and one whose clock is ahead must not purge a row another would still need."""


def _at(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


def first_use(
    store: Store,
    access_key: str,
    signature: str,
    expires_ms: int,
    *,
    now: datetime | None = None,
) -> bool:
    """Record ``signature`` as used until ``expires_ms`` (epoch milliseconds).

    True the first time; False when it was recorded before and has not expired (a replay).
    """
    t = ncp_signatures
    insert = pg_insert if store.dialect == "postgresql" else sqlite_insert
    with store.write() as conn:
        conn.execute(delete(t).where(t.c.expires_at < (now or utcnow()) - GRACE))
        # RETURNING, not rowcount: a skipped insert returns no row on both databases
        inserted = conn.execute(
            insert(t)
            .values(signature=signature, access_key=access_key, expires_at=_at(expires_ms))
            .on_conflict_do_nothing(index_elements=[t.c.signature])
            .returning(t.c.signature)
        ).first()
        return inserted is not None


def purge(store: Store, *, now: datetime | None = None) -> int:
    """Delete the signatures whose window has passed; the number deleted."""
    t = ncp_signatures
    with store.write() as conn:
        return conn.execute(delete(t).where(t.c.expires_at < (now or utcnow()) - GRACE)).rowcount
