"""The base of the typed records the engine and the services hand out.

A record is a frozen, slotted dataclass over :class:`Record`: read by attribute
(``job.status``), and, as the plain dicts it replaced, by key (``job["status"]``,
``{**job}``, ``job.get("message")``). ``to_dict()`` is its JSON: what the API answers.

Two shapes:

* Plain: the JSON is the fields, in order (``Job``). orjson serialises such a dataclass
  natively to the same bytes as ``to_dict()``.
* Spread: a record that keeps a stored JSON object as given (a crowd project's settings,
  with any key a Toloka client sent) names that field in ``_spread``; its JSON is the
  fields in order with that field's items in its place, so ``Project(id, data, status,
  created)`` reads as ``{"id": ..., **data, "status": ..., "created": ...}``. orjson's
  native dataclass output would nest the field instead: render such a record with
  ``to_dict()`` (or ``dict(record)``, ``{**record, ...}``).

Equality is the mapping's: a record equals any mapping with the same items (another record
or a dict), so ``service_result == {...}`` means what it meant when results were dicts.
Records are not hashable (their fields hold dicts). Declare records with
``@dataclass(frozen=True, slots=True, eq=False)`` so this ``__eq__`` is the one used.

A service listing answers a :class:`Page`: the envelope it always had (``{data, cursor}``,
a plain dict), typed, holding records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Generic, TypedDict, TypeVar

__all__ = ["Page", "Record"]


class Record(Mapping[str, Any]):
    """Reads by key and unpacks with ``**``, over a frozen dataclass's fields."""

    __slots__ = ()
    # the field (a dict) whose items stand in its place in the mapping, if any
    _spread: ClassVar[str | None] = None

    def __getitem__(self, key: str) -> Any:
        if self._spread is None:
            if key not in self._fields():
                raise KeyError(key)
            return getattr(self, key)
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        if self._spread is None:
            return iter(self._fields())
        return iter(self.to_dict())

    def __len__(self) -> int:
        if self._spread is None:
            return len(self._fields())
        return len(self.to_dict())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return self.to_dict() == dict(other.items())

    @classmethod
    def _fields(cls) -> tuple[str, ...]:
        names: tuple[str, ...] | None = cls.__dict__.get("_names")
        if names is None:
            names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
            type.__setattr__(cls, "_names", names)
        return names

    def to_dict(self) -> dict[str, Any]:
        """The record as the JSON object the API answers (a new dict)."""
        spread = self._spread
        if spread is None:
            return {name: getattr(self, name) for name in self._fields()}
        out: dict[str, Any] = {}
        for name in self._fields():
            value = getattr(self, name)
            if name == spread:
                out.update(value)
            else:
                out[name] = value
        return out


R = TypeVar("R", bound=Record)


class Page(TypedDict, Generic[R]):
    """One page of a listing: its records and the cursor that resumes after them (None: the end)."""

    data: list[R]
    cursor: str | None
