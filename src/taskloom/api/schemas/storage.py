"""Blobs, buckets and their files, and feature tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from taskloom.api.schemas.common import Open, listing


class BlobInfo(BaseModel):
    path: str
    size: int
    sha256: str | None
    content_type: str
    modified: str | None = Field(description="ISO 8601 time of the last write.")
    ref: str = Field(description="`blob://<path>`: how a document's media field names it.")


class BlobEntry(Open):
    path: str
    size: int
    modified: str | None = None
    ref: str


class FileInfo(BaseModel):
    path: str
    size: int
    sha256: str | None
    content_type: str
    modified: str | None


class FileEntry(Open):
    path: str
    size: int
    modified: str | None = None


class Bucket(BaseModel):
    name: str
    app_id: str
    created_at: datetime


BlobPage = listing("BlobPage", BlobEntry, cursor=True)
FilePage = listing("FilePage", FileEntry, cursor=True)
BucketList = listing("BucketList", Bucket)

BYTES = {
    "description": "The bytes, streamed, with the content type they were stored with",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}
RAW_BODY = {
    "requestBody": {
        "required": True,
        "description": "The bytes to store; the Content-Type is stored with them.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


# -- feature tables ---------------------------------------------------------------------------


class FeatureColumn(BaseModel):
    name: str
    type: str


class FeatureTable(BaseModel):
    id: str
    name: str
    description: str
    app_id: str
    key_column: str
    columns: list[FeatureColumn]
    column_count: int
    source: dict[str, Any] = Field(description="As created: a dataset's fields or a file.")
    row_count: int
    created_at: datetime


class LookupRow(BaseModel):
    key: str
    values: list[float | None] = Field(description="One per column; null is a missing value.")


class Lookup(BaseModel):
    columns: list[str]
    rows: list[LookupRow]
    missing: list[str] = Field(description="The keys the table does not hold.")


FeatureList = listing("FeatureList", FeatureTable)
