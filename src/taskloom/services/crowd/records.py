"""What the crowd services hand the API: frozen, typed records (``store.records.Record``).

A project or a pool keeps its settings as the stored JSON object, Toloka's fields and any
other key a Toloka client sent, as given and in the stored order: the record's ``data``
field, spread in place (``{"id": ..., **data, "status": ..., "created": ...}``, the JSON
both doors answer). The fields taskloom itself reads are typed properties over it
(``project.public_name``, ``pool.reward_per_assignment``); one taskloom leaves out reads
``None``. Render a record with ``to_dict()`` (or ``{**record}``): orjson's native dataclass
output would nest ``data``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from taskloom.store.records import Record

__all__ = ["Project"]


@dataclass(frozen=True, slots=True, eq=False)
class Project(Record):
    """A crowd project: its task spec (input, output, view) and what workers are shown."""

    _spread: ClassVar[str] = "data"
    id: str
    data: dict[str, Any]
    status: str
    created: datetime

    @classmethod
    def from_row(cls, row: Any) -> Project:
        """From a row of ``crowd_projects`` (or anything with its attributes)."""
        return cls(id=row.id, data=row.data, status=row.status, created=row.created_at)

    @property
    def public_name(self) -> str:
        name: str = self.data["public_name"]
        return name

    @property
    def task_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.data["task_spec"]
        return spec

    @property
    def assignments_issuing_type(self) -> str:
        kind: str = self.data.get("assignments_issuing_type", "AUTOMATED")
        return kind

    @property
    def public_description(self) -> str | None:
        return self.data.get("public_description")

    @property
    def public_instructions(self) -> str | None:
        return self.data.get("public_instructions")

    @property
    def private_comment(self) -> str | None:
        return self.data.get("private_comment")

    @property
    def metadata(self) -> dict[str, Any] | None:
        return self.data.get("metadata")
