"""The document filter language, compiled to SQL that means the same on SQLite and PostgreSQL.

A filter is a JSON object. Keys are field paths (``"price"``, ``"meta.source"``; ``_id`` is
the document id) or the combinators ``$and`` / ``$or`` (non-empty lists of filters). A field's
value is either a scalar (shorthand for ``$eq``) or an object of operators:

=========  ==========================================================================
``$eq``    equal; numbers compare with numbers, strings with strings, ``null`` matches
           null or missing; on an array, an element is equal (MongoDB's meaning)
``$ne``    not ``$eq`` (also matches documents that lack the field; on an array: no
           element is equal)
``$lt``    less than; numbers or strings, only values of the same type match (an array
           never matches)
``$lte``   ``$gt``, ``$gte`` likewise
``$in``    ``$eq`` to one of a list of scalars (on an array: an element is)
``$nin``   ``$eq`` to none of them (also matches documents that lack the field; on an
           array: no element is)
``$exists`` ``true``: the field is present (null counts as present); ``false``: absent
``$contains`` a string that contains the given string (case-sensitive), or an array that
           has an element equal to the given scalar (equality as in ``$eq``)
``$regex`` a string in which the pattern is found (a search, not a full match; anchor with
           ``^``/``$``). Patterns keep to the subset both databases read alike and that
           runs in linear time (RE2): literals, ``.`` (newlines too), classes,
           ``\\d \\w \\s`` (ASCII), quantifiers (counts up to 255), groups
           ``( )``/``(?: )``, alternation, anchors; no lookaround or back-references; at
           most 256 characters
=========  ==========================================================================

Integers in a filter are 64-bit (-2**63 to 2**63-1) and strings are valid Unicode (no lone
surrogates); anything else is refused with ``invalid_filter`` and the value's field path.

``$not`` (a filter) matches the documents the filter does not match: ``{"$not": {"price":
{"$gt": 5}}}`` also matches documents without ``price``. Several keys in one object are
joined with AND. Strings compare by code point on both
databases. Vector fields (top-level names ending in ``_vector_``) support only ``$exists``.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import orjson
import re2
from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.types import Boolean, Numeric, String

from taskloom.errors import Invalid
from taskloom.store.tables import vectors

COMPARISONS = {
    "$eq",
    "$ne",
    "$lt",
    "$lte",
    "$gt",
    "$gte",
    "$in",
    "$nin",
    "$exists",
    "$contains",
    "$regex",
}
MAX_PATTERN = 256
# regex syntax that RE2 (SQLite) and PostgreSQL's ARE read differently, or one lacks
# (lookaround and back-references: RE2 has none, they are what makes matching exponential)
_NON_PORTABLE = re.compile(r"\(\?(?!:)|\\[bBGpPNuUxXAzZ0-9]")
# PostgreSQL refuses repetition counts above 255 (RE2 above 1000)
_REPEAT = re.compile(r"(?<!\\)\{(\d+)(?:,(\d*))?\}")
MAX_REPEAT = 255
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.dot_nl = True  # as PostgreSQL's ``.``: newlines too
_RE2_OPTIONS.log_errors = False
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
# A comment in the SQL of every compiled filter: the engine (store/engine.py) runs the
# statements that carry it under the query time bound
BOUNDED = "/* taskloom:bounded */"
MAX_DEPTH = 16
VECTOR_SUFFIX = "_vector_"
# PostgreSQL's jsonb_extract_path reads such a path element as an index into an array
_PG_INDEX_LIKE = re.compile(r"\s*[+-]?\d+")

Scalar = str | int | float | bool | None


def _bad(message: str, field: str) -> Invalid:
    return Invalid(message, code="invalid_filter", field=field)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_text(s: str, where: str) -> str:
    """A string the databases can store: valid Unicode, no lone surrogate."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _bad(
            "a string in a filter must be valid Unicode (no lone surrogates)", where
        ) from exc
    return s


def _check_value(v: Any, where: str) -> Any:
    """A scalar both databases can compare with: 64-bit integers, valid Unicode strings."""
    if isinstance(v, str):
        return _check_text(v, where)
    if isinstance(v, int) and not isinstance(v, bool) and not INT_MIN <= v <= INT_MAX:
        raise _bad("integers in filters are 64-bit (-2**63 to 2**63-1)", where)
    return v


class FilterCompiler:
    """Turns a filter object into a SQLAlchemy boolean expression over ``documents``."""

    def __init__(self, documents: Table, dialect: str) -> None:
        self.docs = documents
        self.pg = dialect == "postgresql"
        # the expressions of one field path, built once: a filter of a thousand conditions
        # on one field would otherwise build the same SQL a thousand times
        self._memo: dict[tuple[Any, ...], Any] = {}

    def compile(self, flt: Any, where: str = "filter") -> ColumnElement[bool]:
        """The filter as a condition; a statement that holds it runs under the query time
        bound (``query_timeout``)."""
        if flt is None:
            return true()
        cond = self._node(flt, where, 0)
        marker = literal_column(f"{'TRUE' if self.pg else '1'} {BOUNDED}", Boolean)
        return and_(marker, cond)

    # -- structure -------------------------------------------------------------------------

    def _node(self, flt: Any, where: str, depth: int) -> ColumnElement[bool]:
        if depth > MAX_DEPTH:
            raise _bad("filter is nested too deeply", where)
        if not isinstance(flt, dict):
            raise _bad("a filter must be a JSON object", where)
        parts: list[ColumnElement[bool]] = []
        for key, value in flt.items():
            here = f"{where}.{_check_text(key, where)}"
            if key == "$not":
                parts.append(not_(self._node(value, here, depth + 1)))
            elif key in ("$and", "$or"):
                if not isinstance(value, list) or not value:
                    raise _bad(f"{key} takes a non-empty list of filters", here)
                subs = [self._node(v, f"{here}[{i}]", depth + 1) for i, v in enumerate(value)]
                parts.append(_balanced(and_ if key == "$and" else or_, subs))
            elif key.startswith("$"):
                raise _bad(f"unknown operator {key!r} at this level", here)
            else:
                parts.append(self._field(key, value, here))
        if not parts:
            return true()
        return and_(*parts) if len(parts) > 1 else parts[0]

    def _field(self, path: str, cond: Any, where: str) -> ColumnElement[bool]:
        segments = path.split(".")
        if any(not s or '"' in s or "\\" in s for s in segments):
            raise _bad(f"invalid field path {path!r}", where)
        ops = cond if isinstance(cond, dict) else {"$eq": cond}
        if isinstance(cond, dict) and not cond:
            raise _bad("empty condition", where)
        if isinstance(cond, dict) and not all(k.startswith("$") for k in cond):
            raise _bad("nested objects are not values: use a dotted path", where)
        parts = []
        for op, value in ops.items():
            if op not in COMPARISONS:
                _check_text(op, where)
                raise _bad(f"unknown operator {op!r}", f"{where}.{op}")
            if path == "_id":
                parts.append(self._id_op(op, value, f"{where}.{op}"))
            elif len(segments) == 1 and path.endswith(VECTOR_SUFFIX):
                parts.append(self._vector_op(path, op, value, f"{where}.{op}"))
            else:
                parts.append(self._json_op(segments, op, value, f"{where}.{op}"))
        return and_(*parts) if len(parts) > 1 else parts[0]

    # -- special columns -------------------------------------------------------------------

    def _id_op(self, op: str, value: Any, where: str) -> ColumnElement[bool]:
        col: Any = self.docs.c.doc_id
        if op == "$regex":
            check_pattern(value, where)
            return col.collate("C").op("~")(value) if self.pg else func.regexp(value, col) == 1
        if op == "$contains":
            if not isinstance(value, str):
                raise _bad("_id values are strings", where)
            _check_text(value, where)
            return (func.strpos(col, value) if self.pg else func.instr(col, value)) > 0
        if op == "$exists":
            return true() if self._bool(value, where) else false()
        if op in ("$in", "$nin"):
            values = self._list(value, where)
            if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
                raise _bad("_id values are strings", where)
            for v in values:
                _check_value(v, where)
            expr = col.in_([str(v) for v in values])
            return expr if op == "$in" else not_(expr)
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise _bad("_id values are strings", where)
        value = str(_check_value(value, where))
        if self.pg and op not in ("$eq", "$ne"):
            col = col.collate("C")  # code point order, whatever the database's collation
        return {
            "$eq": col == value,
            "$ne": col != value,
            "$lt": col < value,
            "$lte": col <= value,
            "$gt": col > value,
            "$gte": col >= value,
        }[op]

    def _vector_op(self, field: str, op: str, value: Any, where: str) -> ColumnElement[bool]:
        if op != "$exists":
            raise _bad("vector fields can only be filtered with $exists", where)
        has = exists(
            select(literal(1))
            .select_from(vectors)
            .where(vectors.c.document_id == self.docs.c.id, vectors.c.field == field)
        )
        return has if self._bool(value, where) else not_(has)

    # -- JSON fields -----------------------------------------------------------------------

    def _json_op(self, segs: list[str], op: str, value: Any, where: str) -> ColumnElement[bool]:
        if op == "$contains":
            return self._contains(segs, value, where)
        if op == "$regex":
            return self._regex(segs, value, where)
        if op == "$exists":
            present = self._type(segs) != "missing"
            return present if self._bool(value, where) else not_(present)
        if op in ("$in", "$nin"):
            values = self._list(value, where)
            for v in values:
                self._scalar(v, where)
            if not values:
                return false() if op == "$in" else true()
            expr = or_(self._eq_any(segs, values), self._has_any(segs, values))
            return expr if op == "$in" else not_(expr)
        if op in ("$eq", "$ne"):
            self._scalar(value, where)
            expr = or_(self._eq(segs, value), self._has_any(segs, [value]))
            return expr if op == "$eq" else not_(expr)
        # ordering comparisons
        if not (_is_number(value) or isinstance(value, str)):
            raise _bad(f"{op} compares with a number or a string", where)
        _check_value(value, where)
        return self._order(segs, op, value)

    def _has_any(self, segs: list[str], values: list[Scalar]) -> ColumnElement[bool]:
        """The value is an array with an element ``$eq`` to one of ``values``."""
        if self.pg:
            wanted = [orjson.dumps([v]).decode() for v in values]
            if len(wanted) == 1:
                return and_(self._is(segs, "array"), self._has_element(segs, values[0]))
            return and_(
                self._is(segs, "array"),
                self._pg_get(segs).op("@>")(
                    func.any(cast(literal(wanted, ARRAY(String)), ARRAY(JSONB)))
                ),
            )
        each = self._elements(segs)
        texts = [v for v in values if isinstance(v, str)]
        numbers = [v for v in values if _is_number(v)]
        types = ["null" for v in values if v is None]
        types += ["true" if v else "false" for v in values if isinstance(v, bool)]
        match = []
        if texts:
            match.append(and_(each.c.type == "text", each.c.value.in_(texts)))
        if numbers:
            match.append(and_(each.c.type.in_(["integer", "real"]), each.c.value.in_(numbers)))
        if types:
            match.append(each.c.type.in_(sorted(set(types))))
        return and_(
            self._is(segs, "array"), exists(select(literal(1)).select_from(each).where(or_(*match)))
        )

    def _eq(self, segs: list[str], value: Scalar) -> ColumnElement[bool]:
        if value is None:
            return self._is(segs, "null", "missing")
        if isinstance(value, bool):
            return self._is(segs, "true" if value else "false")
        if _is_number(value):
            return and_(self._is(segs, "number"), self._num(segs) == value)
        return and_(self._is(segs, "string"), self._text(segs) == value)

    def _eq_any(self, segs: list[str], values: list[Scalar]) -> ColumnElement[bool]:
        """``$eq`` to one of ``values``: one IN list per type (a chain of thousands of ORs is
        deeper than SQLite parses)."""
        if len(values) == 1:
            return self._eq(segs, values[0])
        parts: list[ColumnElement[bool]] = []
        if any(v is None for v in values):
            parts.append(self._is(segs, "null", "missing"))
        bools = sorted({"true" if v else "false" for v in values if isinstance(v, bool)})
        if bools:
            parts.append(self._is(segs, *bools))
        texts = [v for v in values if isinstance(v, str)]
        if texts:
            parts.append(and_(self._is(segs, "string"), self._text(segs).in_(texts)))
        # ints and floats apart: one list of both would compare as floats on PostgreSQL
        for kind in (int, float):
            nums = [v for v in values if type(v) is kind]
            if nums:
                listed: list[Any] = nums
                if kind is int and self.pg:  # NUMERIC binds: an INTEGER list stops at 2**31
                    listed = [literal(v, Numeric()) for v in nums]
                parts.append(and_(self._is(segs, "number"), self._num(segs).in_(listed)))
        return or_(*parts)

    def _order(self, segs: list[str], op: str, value: Any) -> ColumnElement[bool]:
        if _is_number(value):
            lhs, kind = self._num(segs), "number"
        else:
            lhs, kind = self._text(segs), "string"
        cmp = {
            "$lt": lhs < value,
            "$lte": lhs <= value,
            "$gt": lhs > value,
            "$gte": lhs >= value,
        }[op]
        return and_(self._is(segs, kind), cmp)

    def _contains(self, segs: list[str], value: Any, where: str) -> ColumnElement[bool]:
        self._scalar(value, where)
        parts = []
        if isinstance(value, str):
            text = self._text(segs)
            found = func.strpos(text, value) if self.pg else func.instr(text, value)
            parts.append(and_(self._is(segs, "string"), found > 0))
        parts.append(and_(self._is(segs, "array"), self._has_element(segs, value)))
        return or_(*parts)

    def _has_element(self, segs: list[str], value: Scalar) -> ColumnElement[bool]:
        if self.pg:
            element = cast(literal(orjson.dumps([value]).decode()), JSONB)
            return self._pg_get(segs).op("@>")(element)
        each = self._elements(segs)
        if value is None:
            match = each.c.type == "null"
        elif isinstance(value, bool):
            match = each.c.type == ("true" if value else "false")
        elif _is_number(value):
            match = and_(each.c.type.in_(["integer", "real"]), each.c.value == value)
        else:
            match = and_(each.c.type == "text", each.c.value == value)
        return exists(select(literal(1)).select_from(each).where(match))

    def _regex(self, segs: list[str], value: Any, where: str) -> ColumnElement[bool]:
        check_pattern(value, where)
        text = self._text(segs)
        found = text.op("~")(value) if self.pg else func.regexp(value, text) == 1
        return and_(self._is(segs, "string"), found)

    # -- dialect specifics -----------------------------------------------------------------

    def _elements(self, segs: list[str]) -> Any:
        """SQLite: the elements of the array at ``segs`` (``json_each``)."""
        return self._memoized(
            ("each", *segs),
            lambda: (
                func.json_each(self.docs.c.data, _sqlite_path(segs))
                .table_valued("type", "value")
                .alias("element")
            ),
        )

    def _memoized(self, key: tuple[Any, ...], build: Any) -> Any:
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) > 4096:
                self._memo.clear()
            found = self._memo[key] = build()
        return found

    def _is(self, segs: list[str], *kinds: str) -> ColumnElement[bool]:
        """The value at ``segs`` is of one of these JSON types (as :meth:`_type` names them).
        On SQLite one ``json_type`` call, not the three of the full CASE."""
        if self.pg:
            t = self._type(segs)
            return t == kinds[0] if len(kinds) == 1 else t.in_(kinds)
        names = {"number": ["integer", "real"], "string": ["text"]}
        wanted = sorted({n for k in kinds for n in names.get(k, [k])})
        jt = self._memoized(
            ("jt", *segs),
            lambda: func.coalesce(func.json_type(self.docs.c.data, _sqlite_path(segs)), "missing"),
        )
        return jt == wanted[0] if len(wanted) == 1 else jt.in_(wanted)

    def _type(self, segs: list[str]) -> ColumnElement[str]:
        """The JSON type as one of number|string|true|false|null|array|object|missing."""
        return self._memoized(("type", *segs), lambda: self._build_type(segs))

    def _build_type(self, segs: list[str]) -> ColumnElement[str]:
        data = self.docs.c.data
        if self.pg:
            jt = func.jsonb_typeof(self._pg_get(segs))
            return func.coalesce(
                case(
                    (jt == "boolean", self._pg_get(segs, text=True)),
                    else_=jt,
                ),
                "missing",
            )
        jt = func.json_type(data, _sqlite_path(segs))
        return func.coalesce(
            case(
                (jt.in_(["integer", "real"]), "number"),
                (jt == "text", "string"),
                else_=jt,
            ),
            "missing",
        )

    def _num(self, segs: list[str]) -> ColumnElement[Any]:
        return self._memoized(("num", *segs), lambda: self._build_num(segs))

    def _build_num(self, segs: list[str]) -> ColumnElement[Any]:
        data = self.docs.c.data
        if self.pg:
            # CASE keeps the cast away from values that are not numbers
            t = func.jsonb_typeof(self._pg_get(segs))
            return case((t == "number", cast(self._pg_get(segs, text=True), Numeric)))
        return func.json_extract(data, _sqlite_path(segs))

    def _text(self, segs: list[str]) -> ColumnElement[Any]:
        return self._memoized(("text", *segs), lambda: self._build_text(segs))

    def _build_text(self, segs: list[str]) -> ColumnElement[Any]:
        data = self.docs.c.data
        if self.pg:
            return type_coerce(self._pg_get(segs, text=True), String).collate("C")
        return func.json_extract(data, _sqlite_path(segs))

    def _pg_get(self, segs: list[str], *, text: bool = False) -> ColumnElement[Any]:
        """The value at ``segs``, walking through objects only (as SQLite's path does)."""
        data = self.docs.c.data
        value = (func.jsonb_extract_path_text if text else func.jsonb_extract_path)(data, *segs)
        guards = [
            func.jsonb_typeof(func.jsonb_extract_path(data, *segs[:i])) == "object"
            for i in range(1, len(segs))
            if _PG_INDEX_LIKE.fullmatch(segs[i])
        ]
        return case((and_(*guards), value)) if guards else value

    # -- argument checks -------------------------------------------------------------------

    @staticmethod
    def _bool(value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise _bad("$exists takes true or false", where)
        return value

    @staticmethod
    def _list(value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise _bad("expects a list", where)
        if len(value) > 10_000:
            raise _bad("at most 10,000 values", where)
        return value

    @staticmethod
    def _scalar(value: Any, where: str) -> None:
        if not (value is None or isinstance(value, str | bool) or _is_number(value)):
            raise _bad("compares with a string, number, boolean or null", where)
        _check_value(value, where)


def check_pattern(value: Any, where: str) -> str:
    """A ``$regex`` pattern, refused (422) unless it is valid and portable."""
    if not isinstance(value, str) or not value:
        raise _bad("$regex takes a pattern (a non-empty string)", where)
    _check_text(value, where)
    if len(value) > MAX_PATTERN:
        raise _bad(f"a pattern has at most {MAX_PATTERN} characters", where)
    bad = _NON_PORTABLE.search(value)
    if bad:
        raise _bad(f"{bad.group()!r} is outside the pattern syntax both databases share", where)
    for m in _REPEAT.finditer(value):
        if any(n and int(n) > MAX_REPEAT for n in m.groups()):
            raise _bad(f"repetition counts are at most {MAX_REPEAT}: {m.group()!r}", where)
    try:
        compile_pattern(value)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise _bad(f"invalid pattern: {reason}", where) from exc
    return value


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """The pattern as RE2 reads it for ``$regex``: linear time in the text, whatever the
    pattern (``(a+)+$`` cannot backtrack), and ``.`` matches newlines as on PostgreSQL."""
    return re2.compile(pattern, _RE2_OPTIONS)


def sqlite_regexp(pattern: str, value: Any) -> int:
    """SQLite's ``regexp(pattern, value)`` (registered on every connection): 1 when the
    pattern is found in the text ``value``."""
    if not isinstance(value, str) or not isinstance(pattern, str):
        return 0
    return 1 if compile_pattern(pattern).search(value) else 0


def _balanced(join: Any, items: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    """``join(*items)`` as a balanced tree of parenthesised groups: SQLite refuses an
    expression more than 1,000 deep, and a flat chain of n ORs is n deep."""
    if len(items) <= 64:
        return join(*items)
    # "(...) = TRUE" keeps the parentheses (a bare group of ORs is flattened into the parent);
    # NULL stays NULL, so NOT around it means what it meant
    half = len(items) // 2
    return join(_balanced(join, items[:half]) == true(), _balanced(join, items[half:]) == true())


def _sqlite_path(segs: list[str]) -> str:
    return "$" + "".join(f'."{s}"' for s in segs)
