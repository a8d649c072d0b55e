"""Datasets, documents, vector search, indexes and centroids."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, RootModel

from taskloom.api.schemas.common import Document, Open, ScoredDocument, listing


class FieldInfo(Open):
    """A field's type (``number``, ``string``, ``vector``, ...); vectors say their ``dim``."""

    type: str
    dim: int | None = None


class Dataset(BaseModel):
    id: str
    name: str
    app_id: str
    fields: dict[str, FieldInfo]
    created_at: datetime
    updated_at: datetime
    document_count: int | None = Field(default=None, description="The documents it holds.")


class DatasetSchema(RootModel[dict[str, FieldInfo]]):
    """Each field of the dataset's documents and its type."""


DatasetList = listing("DatasetList", Dataset)


class Failure(BaseModel):
    """A document of the batch that was not written."""

    index: int = Field(description="Its position in the batch.")
    id: str | int | None = Field(alias="_id")
    field: str | None
    code: str
    message: str


class Inserted(BaseModel):
    inserted: int
    failed: list[Failure]


class Updated(BaseModel):
    updated: int
    failed: list[Failure]


class DocumentsDeleted(BaseModel):
    deleted: int = Field(description="How many documents were deleted.")


DocumentPage = listing("DocumentPage", Document, count=False, cursor=True)
DocumentList = listing("DocumentList", Document)


# -- search -----------------------------------------------------------------------------------


class SearchResult(BaseModel):
    data: list[ScoredDocument] = Field(description="Best first.")
    count: int
    candidates: int = Field(description="How many vectors were scored.")
    next_page: int | None
    metric: str
    index: str = Field(description="The index that answered: flat or hnsw.")
    exact: bool


class IndexStatus(Open):
    vector_field: str
    metric: str
    index: str
    status: str = Field(description="ready, building, failed or evicted")
    size: int | None = None
    bytes: int | None = None
    since: float | None = None
    error: Any = None


class IndexList(BaseModel):
    data: list[IndexStatus]


# -- centroids --------------------------------------------------------------------------------


class Centroid(Open):
    """``_id`` (``cluster-<n>``), ``size`` and, when asked for, the center in the vector
    field's name."""

    id: str = Field(alias="_id")
    size: int | None = Field(default=None, description="Documents the last fit put in it.")


class Clustering(BaseModel):
    vector_field: str
    alias: str
    n_clusters: int
    params: dict[str, Any]
    info: dict[str, Any] = Field(description="What the fit found (inertia, sizes, job_id).")
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ClusteringRef(BaseModel):
    vector_field: str
    alias: str


class ClusteringDeleted(BaseModel):
    deleted: ClusteringRef
    labels_cleared: int | None = Field(
        default=None, description="With `clear_labels`: the documents whose label went."
    )


class ClusterSizes(BaseModel):
    data: dict[str, int] = Field(description="cluster id -> documents carrying it now")


class ClusterDocuments(BaseModel):
    cluster_id: str
    count: int
    documents: list[ScoredDocument]


class CentroidDocuments(BaseModel):
    data: list[ClusterDocuments]
    metric: str
    cursor: str | None


class CentroidExtremes(BaseModel):
    data: list[ClusterDocuments]
    metric: str


class ClusteringMetadata(BaseModel):
    metadata: dict[str, Any] | None


CentroidPage = listing("CentroidPage", Centroid, cursor=True)
CentroidList = listing("CentroidList", Centroid)
ClusteringList = listing("ClusteringList", Clustering)


# -- request bodies read raw (JSON, or the SDK's binary batch frame: ``taskloom.wire``) -------

_DOCS = {
    "type": "array",
    "items": {"type": "object"},
    "description": "Documents: JSON objects; vectors are lists of numbers or {$f32: base64}.",
}


def _body(required: list[str], props: dict) -> dict:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": required,
                        "properties": props,
                        "additionalProperties": False,
                    }
                }
            },
        }
    }


INSERT_BODY = _body(
    ["documents"],
    {
        "documents": _DOCS,
        "overwrite": {"type": "boolean", "default": True},
        "skip_invalid": {"type": "boolean", "default": False},
    },
)
UPDATE_BODY = _body(
    ["documents"],
    {
        "documents": {**_DOCS, "description": "Partial documents: `_id` and the fields to set."},
        "skip_invalid": {"type": "boolean", "default": False},
    },
)
