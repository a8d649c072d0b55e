"""Tasks a requester may create per minute and per day, counted in the database.

Fixed windows: a counter row per (user, period, bucket), bucket = seconds since the epoch
// period length. The count is added inside the transaction that creates the tasks, so a
refused request (429) rolls back both, and the counts outlive restarts. On PostgreSQL the
upsert's row lock serialises one requester's concurrent batches.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from taskloom.errors import RateLimited
from taskloom.scope import Scope
from taskloom.store.crowd_tables import crowd_rate_counters

if TYPE_CHECKING:
    from taskloom.config import Settings

PERIODS = (("minute", 60), ("day", 86_400))


def consume(
    conn: Connection, user_id: str, n: int, *, per_minute: int, per_day: int, now: datetime
) -> None:
    """Count ``n`` new tasks for ``user_id``; raise RateLimited when a limit would be passed."""
    if n <= 0:
        return
    t = crowd_rate_counters
    limits = {"minute": per_minute, "day": per_day}
    epoch = int(now.timestamp())
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    for period, seconds in PERIODS:
        bucket = epoch // seconds
        stmt = ins(t).values(user_id=user_id, period=period, bucket=bucket, count=n)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.c.user_id, t.c.period, t.c.bucket],
                set_={"count": t.c.count + stmt.excluded.count},
            )
        )
        count = conn.execute(
            select(t.c.count).where(
                t.c.user_id == user_id, t.c.period == period, t.c.bucket == bucket
            )
        ).scalar_one()
        limit = limits[period]
        if count > limit:
            retry_after = seconds - epoch % seconds
            raise RateLimited(
                f"at most {limit} tasks a {period}; {count - n} created in this {period}, "
                f"{n} more asked for; try again in {retry_after} s",
                code="tasks_rate_limited",
                details={"limit": limit, "period": period, "retry_after": retry_after},
            )
        # old windows are of no use any more
        conn.execute(
            delete(t).where(t.c.user_id == user_id, t.c.period == period, t.c.bucket < bucket)
        )


def used(conn: Connection, user_id: str, now: datetime) -> dict[str, int]:
    """Tasks counted in the current minute and day."""
    t = crowd_rate_counters
    epoch = int(now.timestamp())
    out = {}
    for period, seconds in PERIODS:
        out[period] = (
            conn.execute(
                select(t.c.count).where(
                    t.c.user_id == user_id, t.c.period == period, t.c.bucket == epoch // seconds
                )
            ).scalar()
            or 0
        )
    return out


class RateLimit:
    """The requesters' task limits of these settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def consume(self, conn: Connection, scope: Scope, n: int, now: datetime) -> None:
        """Count ``n`` new tasks for the scope's user inside ``conn``'s transaction."""
        consume(
            conn,
            scope.user_id,
            n,
            per_minute=self.settings.crowd_tasks_per_minute,
            per_day=self.settings.crowd_tasks_per_day,
            now=now,
        )
