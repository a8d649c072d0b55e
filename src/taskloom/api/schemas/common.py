"""Pieces the areas share: open objects, documents, and the list shapes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model


class Open(BaseModel):
    """An object that may carry more keys than those named."""

    model_config = ConfigDict(extra="allow")


class Document(Open):
    """A stored document: its ``_id`` and its own fields (vectors as lists of numbers)."""

    id: str = Field(alias="_id", description="The document's id in its dataset.")


class ScoredDocument(Document):
    """A document with its score (higher is better)."""

    score: float = Field(alias="_score")


class Deleted(BaseModel):
    """The name or id of what was deleted."""

    deleted: str


class Count(BaseModel):
    count: int


def listing(
    name: str, item: Any, *, count: bool = True, cursor: bool = False, doc: str = ""
) -> type[BaseModel]:
    """``{"data": [item], "count"?, "cursor"?}``: ``count`` is the items of this page,
    ``cursor`` (null on the last page) asks for the next."""
    fields: dict[str, Any] = {"data": (list[item], ...)}
    if count:
        fields["count"] = (int, Field(description="How many items this page holds."))
    if cursor:
        fields["cursor"] = (
            str | None,
            Field(description="The next page's cursor; null on the last page."),
        )
    return create_model(name, __doc__=doc or f"A list of {item.__name__}.", **fields)
