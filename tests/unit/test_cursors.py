"""Cursor encoding: opaque, URL-safe, round-trips, and refuses what it did not make."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest

from taskloom.errors import Invalid
from taskloom.jobs.engine import JOB_CURSOR
from taskloom.services.documents import DOCUMENT_CURSOR
from taskloom.store.paging import CURSOR_ERROR


@pytest.mark.parametrize("pk", [1, 7, 999, 2**31 + 5, 2**62])
def test_document_cursor_round_trip(pk):
    cursor = DOCUMENT_CURSOR.encode(pk)
    assert DOCUMENT_CURSOR.decode(cursor) == (pk,)
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor
    assert str(pk) not in cursor  # opaque, not a number to tinker with


@pytest.mark.parametrize("empty", [None, ""])
def test_no_cursor_is_the_start(empty):
    assert DOCUMENT_CURSOR.decode(empty) is None


@pytest.mark.parametrize(
    "bad",
    [
        "!!!",
        "abc",
        "x" * 5,
        base64.urlsafe_b64encode(b"j:12").decode(),  # a job cursor is not a document cursor
        base64.urlsafe_b64encode(b"d:twelve").decode(),
        base64.urlsafe_b64encode(b"d:").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b'["c",12]').decode(),  # another listing's cursor
        base64.urlsafe_b64encode(b'["d",1.5]').decode(),
        base64.urlsafe_b64encode(b'["d",true]').decode(),
        12,
        ["d:1"],
    ],
)
def test_bad_document_cursors(bad):
    with pytest.raises(Invalid) as ei:
        DOCUMENT_CURSOR.decode(bad)
    assert (ei.value.code, ei.value.field) == ("invalid_cursor", "cursor")
    assert ei.value.message == CURSOR_ERROR


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_job_cursor_round_trip(at):
    cursor = JOB_CURSOR.encode(at, "0123abcd" * 4)
    got_at, got_id = JOB_CURSOR.decode(cursor)
    assert got_at == at and got_at.utcoffset() == at.utcoffset()
    assert got_id == "0123abcd" * 4
    assert "=" not in cursor


@pytest.mark.parametrize(
    "bad",
    [
        "???",
        DOCUMENT_CURSOR.encode(5),  # a document cursor is not a job cursor
        base64.urlsafe_b64encode(b"j:not-a-date|abc").decode(),
        base64.urlsafe_b64encode(b"j:2026-01-01T00:00:00+00:00|").decode(),
        base64.urlsafe_b64encode(b"x:2026-01-01T00:00:00+00:00|abc").decode(),
        JOB_CURSOR.encode(datetime(2026, 1, 1, tzinfo=UTC), "abc")[:-2],  # cut short
        base64.urlsafe_b64encode(b'["j","not-a-date","abc"]').decode(),
        base64.urlsafe_b64encode(b'["j","2026-01-01T00:00:00+00:00",""]').decode(),
    ],
)
def test_bad_job_cursors(bad):
    with pytest.raises(Invalid) as ei:
        JOB_CURSOR.decode(bad)
    assert (ei.value.code, ei.value.field) == ("invalid_cursor", "cursor")
    assert ei.value.message == CURSOR_ERROR
