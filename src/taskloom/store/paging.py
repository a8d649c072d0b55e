"""Keyset paging for every listing: one cursor format, one limit check, one error.

A listing declares its cursor once, as a :class:`CursorFormat` with a tag of its own and the
types of the key it resumes after (``CursorFormat("j", datetime, str)`` for jobs: created at,
id). A cursor is the URL-safe base64 (no padding) of a JSON array ``[tag, *values]``, so it is
opaque to clients and a cursor of one listing is refused by another. The listing fetches
``limit + 1`` rows and :func:`page` cuts them and makes the next cursor. A listing that pages
by position (a ranking computed per call) keeps one int, the offset: :meth:`CursorFormat.offset`.

Every refusal is the same :class:`~taskloom.errors.Invalid`: code ``invalid_cursor``, field
``cursor``, message :data:`CURSOR_ERROR` (limits: ``invalid_limit`` unless a listing names
its own code and field, as ``page_size`` does).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from taskloom.errors import Invalid

__all__ = ["CURSOR_ERROR", "MAX_LIMIT", "CursorFormat", "check_limit", "cursor_error", "page"]

CURSOR_ERROR = "not a cursor from this list"
MAX_LIMIT = 1000
# the integers a database column holds: a cursor key beyond them is not from any list
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

T = TypeVar("T")


def cursor_error(field: str = "cursor") -> Invalid:
    """The one refusal of a cursor, for a listing that checks a decoded key further."""
    return Invalid(CURSOR_ERROR, code="invalid_cursor", field=field)


class CursorFormat:
    """The cursor of one listing: a tag and the types of its key (int, str or datetime)."""

    def __init__(self, tag: str, *types: type) -> None:
        if not types or any(t not in (int, str, datetime) for t in types):
            raise TypeError("a cursor key is made of int, str and datetime values")
        self.tag = tag
        self.types = types

    def encode(self, *values: Any) -> str:
        if len(values) != len(self.types):
            raise TypeError(f"this cursor holds {len(self.types)} values")
        out: list[Any] = [self.tag]
        for v in values:
            out.append(v.isoformat() if isinstance(v, datetime) else v)
        return base64.urlsafe_b64encode(orjson.dumps(out)).decode().rstrip("=")

    def decode(self, cursor: Any, field: str = "cursor") -> tuple[Any, ...] | None:
        """The key a cursor resumes after; ``None`` (or ``""``) is the start and gives None."""
        if cursor is None or cursor == "":
            return None
        if not isinstance(cursor, str) or len(cursor) > 4096:
            raise cursor_error(field)
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            values = orjson.loads(raw)
        except (binascii.Error, ValueError) as exc:
            raise cursor_error(field) from exc
        if (
            not isinstance(values, list)
            or len(values) != len(self.types) + 1
            or values[0] != self.tag
        ):
            raise cursor_error(field)
        return tuple(_typed(v, t, field) for v, t in zip(values[1:], self.types, strict=True))

    def offset(self, cursor: Any, field: str = "cursor") -> int:
        """Where the page of an offset cursor (a format of one int) starts: 0 without one."""
        if self.types != (int,):
            raise TypeError("an offset cursor holds one int")
        key = self.decode(cursor, field)
        if key is None:
            return 0
        if key[0] < 0:
            raise cursor_error(field)
        return int(key[0])


def _typed(value: Any, kind: type, field: str) -> Any:
    if kind is int:
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and INT64_MIN <= value <= INT64_MAX
        ):
            return value
    elif kind is str:
        if isinstance(value, str) and value:
            return value
    elif isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError as exc:
            raise cursor_error(field) from exc
        return at if at.tzinfo else at.replace(tzinfo=UTC)
    raise cursor_error(field)


def check_limit(
    value: Any,
    *,
    most: int = MAX_LIMIT,
    least: int = 1,
    field: str = "limit",
    code: str = "invalid_limit",
) -> int:
    """A page size between ``least`` and ``most``, or :class:`Invalid`."""
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise Invalid(f"{field} is {least} to {most}", code=code, field=field)
    return value


def page(
    rows: Sequence[T], limit: int, fmt: CursorFormat, key: Callable[[T], tuple[Any, ...]]
) -> tuple[list[T], str | None]:
    """Cut ``limit + 1`` fetched rows to a page and the cursor of the next (None: the end)."""
    out = list(rows[:limit])
    if len(rows) > limit and out:
        return out, fmt.encode(*key(out[-1]))
    return out, None
