"""The NCP signatures seen (``taskloom.store.ncp_replays``), on SQLite and PostgreSQL: one
signature is accepted once, even when several servers on one database race on it, and rows
whose window has passed are purged through their index."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select, text

from taskloom.runtime import Platform
from taskloom.store import ncp_replays
from taskloom.store.engine import Store
from taskloom.store.ncp_replays import GRACE, first_use, purge
from taskloom.store.tables import ncp_signatures
from taskloom.store.types import utcnow

ACCESS = "TLNCP0123456789ABCDEF"


def in_ms(seconds: float) -> int:
    """Epoch milliseconds ``seconds`` from now."""
    return round((utcnow() + timedelta(seconds=seconds)).timestamp() * 1000)


def count(store: Store) -> int:
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(ncp_signatures)).scalar_one()


def test_a_signature_is_first_used_once(platform: Platform) -> None:
    store = platform.store
    assert store is not None
    expires = in_ms(300)
    assert first_use(store, ACCESS, "sig-a", expires) is True
    assert first_use(store, ACCESS, "sig-a", expires) is False
    assert first_use(store, ACCESS, "sig-b", expires) is True
    assert count(store) == 2


def test_servers_racing_on_one_signature_let_exactly_one_through(platform: Platform) -> None:
    """Four stores (four engines with their own connections, as four server processes would
    have) try each of 12 signatures at the same moment: each is accepted exactly once."""
    url = platform.settings.resolved_database_url
    stores = [Store(url) for _ in range(4)]
    rounds = 12
    wins = [[False] * len(stores) for _ in range(rounds)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))
    expires = in_ms(300)

    def run(i: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait(30)
                wins[r][i] = first_use(stores[i], ACCESS, f"race-{r}", expires)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        assert [sum(w) for w in wins] == [1] * rounds, wins
    finally:
        for s in stores:
            s.dispose()


def test_expired_signatures_are_purged_and_live_ones_kept(platform: Platform) -> None:
    store = platform.store
    assert store is not None
    long_gone = utcnow() - GRACE - timedelta(seconds=10)
    just_expired = utcnow() - timedelta(seconds=1)  # within the grace: kept (clocks differ)
    with store.write() as conn:
        conn.execute(
            ncp_signatures.insert(),
            [
                *(
                    {"signature": f"old-{i}", "access_key": ACCESS, "expires_at": long_gone}
                    for i in range(5)
                ),
                {"signature": "recent", "access_key": ACCESS, "expires_at": just_expired},
            ],
        )
    assert count(store) == 6
    # recording a new signature purges the expired ones on the way
    assert first_use(store, ACCESS, "new", in_ms(300))
    with store.read() as conn:
        left = set(conn.execute(select(ncp_signatures.c.signature)).scalars())
    assert left == {"recent", "new"}
    assert purge(store) == 0
    assert purge(store, now=utcnow() + GRACE + timedelta(seconds=2)) == 1  # "recent"
    assert count(store) == 1


def test_the_purge_reads_only_the_expired_rows_through_the_index(platform: Platform) -> None:
    """The purge is cheap: on SQLite the plan searches the ``expires_at`` index (a range scan
    of the expired rows) rather than scanning the table; PostgreSQL has the same index."""
    store = platform.store
    assert store is not None
    purge_sql = "DELETE FROM ncp_signatures WHERE expires_at < :t"
    with store.read() as conn:
        if store.is_sqlite:
            rows = conn.execute(text(f"EXPLAIN QUERY PLAN {purge_sql}"), {"t": utcnow()})
            plan = " ".join(str(row[-1]) for row in rows)
            assert "USING INDEX ix_ncp_signatures_expires_at" in plan, plan
        else:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # the table is tiny here
            plan = " ".join(
                r[0] for r in conn.execute(text(f"EXPLAIN {purge_sql}"), {"t": utcnow()})
            )
            assert "ix_ncp_signatures_expires_at" in plan, plan
    assert ncp_replays.__all__ == sorted(ncp_replays.__all__)
