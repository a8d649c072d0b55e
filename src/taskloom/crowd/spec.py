"""Field specs of crowd projects (``input_spec`` / ``output_spec``) and value validation.

A spec maps a field name to its definition, in Toloka's shape::

    {"image": {"type": "url", "required": true, "hidden": false},
     "label": {"type": "string", "allowed_values": ["cat", "dog"]}}

Types: ``string integer float boolean url file coordinates json`` and ``array_<type>`` of
each. Options (an option set to ``null`` counts as absent):

==================  ==========================================================
every type          ``required`` (default true), ``hidden`` (default false)
string              ``min_length``, ``max_length``, ``allowed_values``, ``pattern``
integer, float      ``min_value``, ``max_value``, ``allowed_values``
boolean             ``allowed_values``
coordinates         ``current_location`` (stored, not checked)
array_<type>        the options of <type> (they apply to each element), ``min_size``,
                    ``max_size``
==================  ==========================================================

Value rules: ``integer`` takes whole numbers (``3`` and ``3.0``), never booleans; ``float``
takes any finite number, never booleans; ``url`` is an absolute http(s) URL with a host and
no whitespace; ``file`` is a non-empty string (a file id); ``coordinates`` is a string
``"lat,lon"`` with -90 <= lat <= 90 and -180 <= lon <= 180; ``json`` is a JSON *object*
(a dict; its content is not checked); ``pattern`` must match the *whole* string (as the
HTML ``pattern`` attribute does). A ``null`` value of an optional field is accepted; a
``null`` element of an array is ``VALUE_REQUIRED`` at the element's path.

:meth:`Spec.parse` compiles each field into a small closure once, so :meth:`Spec.validate`
costs about a microsecond per field on the valid path (it is the hot loop of batch task
creation). Each invalid value gets exactly one error: the first of type, allowed values,
length/range, pattern that fails.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from taskloom.errors import Invalid

__all__ = [
    "BASE_TYPES",
    "TYPES",
    "FieldError",
    "FieldSpec",
    "Spec",
    "SpecError",
    "validate_solutions",
]

BASE_TYPES = ("string", "integer", "float", "boolean", "url", "file", "coordinates", "json")
TYPES = BASE_TYPES + tuple(f"array_{t}" for t in BASE_TYPES)

_COMMON = ("required", "hidden")
_SIZE = ("min_size", "max_size")
_OPTIONS: dict[str, tuple[str, ...]] = {
    "string": ("min_length", "max_length", "allowed_values", "pattern"),
    "integer": ("min_value", "max_value", "allowed_values"),
    "float": ("min_value", "max_value", "allowed_values"),
    "boolean": ("allowed_values",),
    "url": (),
    "file": (),
    "coordinates": ("current_location",),
    "json": (),
}
_OPTION_ORDER = (
    "type",
    "required",
    "hidden",
    "min_length",
    "max_length",
    "min_value",
    "max_value",
    "allowed_values",
    "pattern",
    "min_size",
    "max_size",
    "current_location",
)
_NAME = re.compile(r"[A-Za-z0-9_\-]{1,128}\Z")

REQUIRED_MESSAGE = "Value must be present and not equal to null"


class FieldError(NamedTuple):
    """One validation error: where, Toloka's code, and a sentence for people."""

    path: str
    code: str
    message: str


class SpecError(Invalid):
    """The field spec is not valid."""

    code = "invalid_spec"


@dataclass(frozen=True)
class FieldSpec:
    """One parsed field definition (options not given are ``None``)."""

    type: str
    required: bool = True
    hidden: bool = False
    min_length: int | None = None
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    allowed_values: tuple[Any, ...] | None = None
    pattern: str | None = None
    min_size: int | None = None
    max_size: int | None = None
    current_location: bool | None = None
    given: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def is_array(self) -> bool:
        return self.type.startswith("array_")

    @property
    def base_type(self) -> str:
        """The element type of an array (``array_string`` -> ``string``), else the type."""
        return self.type[6:] if self.is_array else self.type

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "required": self.required, "hidden": self.hidden}
        for name in _OPTION_ORDER[3:]:
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if name == "allowed_values" else value
        return out


# -- value checkers --------------------------------------------------------------------
# An element checker returns None when the value is fine, else (code, message).

Err = tuple[str, str]
Check = Callable[[Any], Err | None]

_URL = re.compile(
    r"https?://(?:[^\s/?#@]*@)?(?:\[[0-9A-Fa-f:.]+\]|[^\s/?#@:\[\]]+)(?::\d{1,5})?(?:[/?#]\S*)?\Z",
    re.IGNORECASE,
)
_COORDS = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*,\s*([+-]?\d+(?:\.\d+)?)\s*\Z")

_E_STRING = ("STRING_EXPECTED", "Value must be a string")
_E_INTEGER = ("INTEGER_EXPECTED", "Value must be an integer")
_E_FLOAT = ("FLOAT_EXPECTED", "Value must be a finite number")
_E_BOOLEAN = ("BOOLEAN_EXPECTED", "Value must be true or false")
_E_OBJECT = ("OBJECT_EXPECTED", "Value must be a JSON object")
_E_ARRAY = ("ARRAY_EXPECTED", "Value must be an array")
_E_URL = ("INVALID_URL_SYNTAX", "Value must be an absolute http or https URL with a host")
_E_COORDS = (
    "INVALID_COORDINATES",
    "Value must be 'latitude,longitude' with latitude in [-90, 90] and longitude in [-180, 180]",
)
_E_FILE = ("STRING_LENGTH_LESS_THAN_MIN", "A file id must not be empty")
_E_REQUIRED = ("VALUE_REQUIRED", REQUIRED_MESSAGE)
_E_NOT_IN_SPEC = ("VALUE_NOT_ALLOWED", "The spec has no such field")


# a bound on what one requester's pattern can cost each validation
MAX_PATTERN = 1_000


def _not_allowed(allowed: tuple[Any, ...]) -> Err:
    shown = ", ".join(repr(v) for v in allowed[:10]) + (", ..." if len(allowed) > 10 else "")
    return ("VALUE_NOT_ALLOWED", f"Value must be one of: {shown}")


def _string_check(fs: FieldSpec) -> Check:
    lo, hi, allowed = fs.min_length, fs.max_length, fs.allowed_values
    regex = re.compile(fs.pattern) if fs.pattern is not None else None
    allowed_set = frozenset(allowed) if allowed is not None else None
    e_allowed = _not_allowed(allowed) if allowed is not None else None
    e_lo = ("STRING_LENGTH_LESS_THAN_MIN", f"Value must be at least {lo} characters long")
    e_hi = ("STRING_LENGTH_GREATER_THAN_MAX", f"Value must be at most {hi} characters long")
    e_pat = ("VALUE_DOES_NOT_MATCH_PATTERN", f"Value must match the pattern {fs.pattern}")
    if lo is None and hi is None and regex is None and allowed_set is None:
        return lambda v: None if isinstance(v, str) else _E_STRING

    def check(v: Any) -> Err | None:
        if not isinstance(v, str):
            return _E_STRING
        if allowed_set is not None and v not in allowed_set:
            return e_allowed
        if lo is not None and len(v) < lo:
            return e_lo
        if hi is not None and len(v) > hi:
            return e_hi
        if regex is not None and regex.fullmatch(v) is None:
            return e_pat
        return None

    return check


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_integer(v: Any) -> bool:
    if isinstance(v, int):
        return not isinstance(v, bool)
    return isinstance(v, float) and v.is_integer()


def _number_check(fs: FieldSpec, integer: bool) -> Check:
    lo, hi, allowed = fs.min_value, fs.max_value, fs.allowed_values
    allowed_set = frozenset(allowed) if allowed is not None else None
    e_allowed = _not_allowed(allowed) if allowed is not None else None
    e_type = _E_INTEGER if integer else _E_FLOAT
    e_lo = ("VALUE_LESS_THAN_MIN", f"Value must be at least {lo}")
    e_hi = ("VALUE_GREATER_THAN_MAX", f"Value must be at most {hi}")
    isfinite = math.isfinite

    def check(v: Any) -> Err | None:
        cls = v.__class__
        if cls is int:
            pass
        elif cls is float:
            if not isfinite(v) or (integer and not v.is_integer()):
                return e_type
        elif not (_is_integer(v) if integer else _is_number(v) and isfinite(v)):
            return e_type
        if allowed_set is not None and v not in allowed_set:
            return e_allowed
        if lo is not None and v < lo:
            return e_lo
        if hi is not None and v > hi:
            return e_hi
        return None

    return check


def _boolean_check(fs: FieldSpec) -> Check:
    allowed = fs.allowed_values
    if allowed is None:
        return lambda v: None if v is True or v is False else _E_BOOLEAN
    ok_true, ok_false = True in allowed, False in allowed
    e_allowed = _not_allowed(allowed)

    def check(v: Any) -> Err | None:
        if v is True:
            return None if ok_true else e_allowed
        if v is False:
            return None if ok_false else e_allowed
        return _E_BOOLEAN

    return check


def _url_check(v: Any) -> Err | None:
    if not isinstance(v, str):
        return _E_STRING
    return None if _URL.match(v) is not None else _E_URL


def _file_check(v: Any) -> Err | None:
    if not isinstance(v, str):
        return _E_STRING
    return None if v else _E_FILE


def _coordinates_check(v: Any) -> Err | None:
    if not isinstance(v, str):
        return _E_STRING
    m = _COORDS.match(v)
    if m is None:
        return _E_COORDS
    lat, lon = float(m.group(1)), float(m.group(2))
    return None if -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0 else _E_COORDS


def _json_check(v: Any) -> Err | None:
    return None if isinstance(v, dict) else _E_OBJECT


def _element_check(fs: FieldSpec) -> Check:
    t = fs.base_type
    if t == "string":
        return _string_check(fs)
    if t in ("integer", "float"):
        return _number_check(fs, integer=t == "integer")
    if t == "boolean":
        return _boolean_check(fs)
    return {"url": _url_check, "file": _file_check, "coordinates": _coordinates_check}.get(
        t, _json_check
    )


# An array checker returns None, or a list of (element index or None, code, message).
ArrayCheck = Callable[[Any], list[tuple[int | None, str, str]] | None]


def _array_check(fs: FieldSpec, element: Check) -> ArrayCheck:
    lo, hi = fs.min_size, fs.max_size
    e_lo = ("ARRAY_SIZE_LESS_THAN_MIN", f"The array must have at least {lo} elements")
    e_hi = ("ARRAY_SIZE_GREATER_THAN_MAX", f"The array must have at most {hi} elements")

    def check(v: Any) -> list[tuple[int | None, str, str]] | None:
        if not isinstance(v, list | tuple):
            return [(None, *_E_ARRAY)]
        n = len(v)
        if lo is not None and n < lo:
            return [(None, *e_lo)]
        if hi is not None and n > hi:
            return [(None, *e_hi)]
        errors: list[tuple[int | None, str, str]] | None = None
        for i, item in enumerate(v):
            err = _E_REQUIRED if item is None else element(item)
            if err is not None:
                if errors is None:
                    errors = []
                errors.append((i, *err))
        return errors

    return check


# -- parsing ---------------------------------------------------------------------------


def _option_error(path: str, message: str) -> SpecError:
    return SpecError(f"{path}: {message}", field=path)


def _parse_field(name: str, raw: Any, where: str) -> FieldSpec:
    path = f"{where}.{name}"
    if not isinstance(name, str) or _NAME.match(name) is None:
        raise _option_error(
            path, "a field name is 1-128 letters, digits, '_' or '-' (no dots or spaces)"
        )
    if not isinstance(raw, Mapping):
        raise _option_error(path, "a field definition must be an object")
    ftype = raw.get("type")
    if not isinstance(ftype, str) or ftype.lower() not in TYPES:
        raise _option_error(f"{path}.type", f"type must be one of {', '.join(TYPES)}")
    ftype = ftype.lower()
    base = ftype[6:] if ftype.startswith("array_") else ftype
    known = set(_COMMON) | set(_OPTIONS[base]) | (set(_SIZE) if base != ftype else set())
    opts: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "type" or value is None:
            continue
        if key not in known:
            raise _option_error(f"{path}.{key}", f"unknown option for a field of type {ftype}")
        opts[key] = _parse_option(base, key, value, f"{path}.{key}")
    for lo, hi in (("min_length", "max_length"), ("min_value", "max_value"), _SIZE):
        if lo in opts and hi in opts and opts[lo] > opts[hi]:
            raise _option_error(f"{path}.{lo}", f"{lo} must not be greater than {hi}")
    if "allowed_values" in opts:
        probe = _element_check(FieldSpec(type=base, pattern=opts.get("pattern")))
        for i, value in enumerate(opts["allowed_values"]):
            if probe(value) is not None:
                raise _option_error(
                    f"{path}.allowed_values.{i}", f"{value!r} is not a valid {base} value"
                )
    return FieldSpec(type=ftype, given=tuple(opts), **opts)


def _parse_option(base: str, key: str, value: Any, path: str) -> Any:
    if key in ("required", "hidden", "current_location"):
        if not isinstance(value, bool):
            raise _option_error(path, f"{key} must be true or false")
        return value
    if key in ("min_length", "max_length", "min_size", "max_size"):
        if not _is_integer(value) or value < 0:
            raise _option_error(path, f"{key} must be a non-negative integer")
        return int(value)
    if key in ("min_value", "max_value"):
        ok = _is_integer(value) if base == "integer" else _is_number(value) and math.isfinite(value)
        if not ok:
            raise _option_error(
                path, f"{key} must be {'an integer' if base == 'integer' else 'a number'}"
            )
        return int(value) if base == "integer" else value
    if key == "allowed_values":
        if not isinstance(value, list | tuple) or not value:
            raise _option_error(path, "allowed_values must be a non-empty array")
        return tuple(value)
    # pattern
    if not isinstance(value, str):
        raise _option_error(path, "pattern must be a string")
    if len(value) > MAX_PATTERN:
        raise _option_error(path, f"pattern has at most {MAX_PATTERN} characters")
    try:
        re.compile(value)
    except re.error as exc:
        raise _option_error(path, f"pattern is not a valid regular expression: {exc}") from exc
    return value


class Spec:
    """A compiled ``input_spec`` or ``output_spec``."""

    __slots__ = ("fields", "_checks", "_names", "_hidden")

    def __init__(self, fields: dict[str, FieldSpec]) -> None:
        self.fields = fields
        self._names = frozenset(fields)
        self._hidden = frozenset(n for n, f in fields.items() if f.hidden)
        checks = []
        for name, fs in fields.items():
            element = _element_check(fs)
            check = _array_check(fs, element) if fs.is_array else element
            checks.append((name, fs.required, fs.is_array, check))
        self._checks: tuple[tuple[str, bool, bool, Callable[[Any], Any]], ...] = tuple(checks)

    @classmethod
    def parse(cls, raw: Any, *, where: str) -> Spec:
        """Parse and compile a spec; raise :class:`SpecError` naming the bad option's path."""
        if not isinstance(raw, Mapping):
            raise _option_error(where, "a field spec must be an object of field definitions")
        return cls({name: _parse_field(name, value, where) for name, value in raw.items()})

    def to_json(self) -> dict[str, Any]:
        """The spec as stored: every field with its type, required, hidden and given options."""
        return {name: fs.to_json() for name, fs in self.fields.items()}

    def visible(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The values without the hidden fields (what a worker may see)."""
        hidden = self._hidden
        return {k: v for k, v in values.items() if k not in hidden}

    def validate(self, values: Any, *, prefix: str, partial: bool = False) -> list[FieldError]:
        """Check ``values`` against the spec; ``[]`` when valid.

        Paths are ``{prefix}.{field}`` and ``{prefix}.{field}.{index}`` for array elements.
        ``partial`` (a PATCH) does not require absent fields; an explicit ``null`` for a
        required field is still ``VALUE_REQUIRED``.
        """
        if values.__class__ is not dict:
            if values is None:
                return [FieldError(prefix, *_E_REQUIRED)]
            if not isinstance(values, Mapping):
                return [FieldError(prefix, *_E_OBJECT)]
        errors: list[FieldError] = []
        if not self._names.issuperset(values):
            for key in values:
                if key not in self._names:
                    errors.append(FieldError(f"{prefix}.{key}", *_E_NOT_IN_SPEC))
        get = values.get
        for name, required, is_array, check in self._checks:
            v = get(name)
            if v is None:
                if required and not (partial and name not in values):
                    errors.append(FieldError(f"{prefix}.{name}", *_E_REQUIRED))
                continue
            err = check(v)
            if err is None:
                continue
            if is_array:
                for index, code, message in err:
                    path = f"{prefix}.{name}" if index is None else f"{prefix}.{name}.{index}"
                    errors.append(FieldError(path, code, message))
            else:
                errors.append(FieldError(f"{prefix}.{name}", *err))
        return errors

    def __repr__(self) -> str:
        return f"Spec({', '.join(f'{n}: {f.type}' for n, f in self.fields.items())})"


_WEIGHT_LO = ("VALUE_LESS_THAN_MIN", "The weight must be at least 0")
_WEIGHT_HI = ("VALUE_GREATER_THAN_MAX", "The weight must be at most 1")


def validate_solutions(
    output_spec: Spec, solutions: Any, *, prefix: str, weight_key: str
) -> list[FieldError]:
    """Check ``known_solutions`` (``weight_key="correctness_weight"``) or
    ``baseline_solutions`` (``"confidence_weight"``): an array of
    ``{"output_values": {...}, weight_key: number in [0, 1] (optional)}``, each
    ``output_values`` complete against ``output_spec``.
    Paths look like ``known_solutions.0.output_values.result``."""
    if not isinstance(solutions, list | tuple):
        return [FieldError(prefix, *_E_ARRAY)]
    errors: list[FieldError] = []
    for i, solution in enumerate(solutions):
        path = f"{prefix}.{i}"
        if not isinstance(solution, Mapping):
            errors.append(FieldError(path, *_E_OBJECT))
            continue
        for key in solution:
            if key not in ("output_values", weight_key):
                errors.append(FieldError(f"{path}.{key}", *_E_NOT_IN_SPEC))
        weight = solution.get(weight_key)
        if weight is not None:
            wpath = f"{path}.{weight_key}"
            if not _is_number(weight) or not math.isfinite(weight):
                errors.append(FieldError(wpath, *_E_FLOAT))
            elif weight < 0:
                errors.append(FieldError(wpath, *_WEIGHT_LO))
            elif weight > 1:
                errors.append(FieldError(wpath, *_WEIGHT_HI))
        errors.extend(
            output_spec.validate(solution.get("output_values"), prefix=f"{path}.output_values")
        )
    return errors
