"""Feature tables (``taskloom.services.features``), in the caller's app.

    POST   /v1/features            FeatureCreate -> 201 feature table
    GET    /v1/features            {"data": [feature table], "count"}
    GET    /v1/features/{id}       feature table
    DELETE /v1/features/{id}       204
    POST   /v1/features/{id}/lookup   {"keys"} -> {"columns", "rows": [{key, values}], "missing"}

``FeatureCreate.source`` is ``{"kind": "dataset", "dataset", "key_field", "fields"}`` or
``{"kind": "file", "bucket", "path", "key_column", "columns"?, "format"?}``; a table reads
back with the same ``source``.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from taskloom.api.deps import ScopeDep, ServicesDep
from taskloom.api.responses import FastJSONResponse, ok
from taskloom.api.schemas import error_responses
from taskloom.api.schemas.storage import FeatureList, FeatureTable, Lookup

router = APIRouter(prefix="/v1/features", tags=["features"])


class DatasetSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["dataset"]
    dataset: str
    key_field: str = "_id"
    fields: list[str] = Field(min_length=1, max_length=1000)


class FileSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["file"]
    bucket: str
    path: str
    key_column: str
    columns: list[str] | None = Field(default=None, min_length=1, max_length=10_000)
    format: Literal["csv", "tsv", "parquet"] | None = None


class FeatureCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str | None = Field(default=None, max_length=10_000)
    source: Annotated[DatasetSource | FileSource, Field(discriminator="kind")]


class LookupBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[str | int] = Field(max_length=10_000)


@router.post(
    "", status_code=201, response_model=FeatureTable, responses=error_responses(409, body=True)
)
def create_feature(body: FeatureCreate, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    """Build a feature table from a dataset or from a file in a bucket."""
    src = body.source
    if isinstance(src, DatasetSource):
        out = services.features.create_from_dataset(
            scope, body.name, src.dataset, src.key_field, src.fields, description=body.description
        )
    else:
        out = services.features.create_from_file(
            scope,
            body.name,
            src.bucket,
            src.path,
            src.key_column,
            description=body.description,
            columns=src.columns,
            format=src.format,
        )
    return ok(out, 201)


@router.get("", response_model=FeatureList, responses=error_responses())
def list_features(scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    data = services.features.list(scope)
    return ok({"data": data, "count": len(data)})


@router.get("/{feature_id}", response_model=FeatureTable, responses=error_responses())
def get_feature(feature_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.features.get(scope, feature_id))


@router.delete("/{feature_id}", status_code=204, responses=error_responses(409))
def delete_feature(feature_id: str, scope: ScopeDep, services: ServicesDep) -> Response:
    services.features.delete(scope, feature_id)
    return Response(status_code=204)


@router.post("/{feature_id}/lookup", response_model=Lookup, responses=error_responses(body=True))
def lookup_rows(
    feature_id: str, body: LookupBody, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    """The rows of ``keys`` (NaN, a missing value, is sent as null)."""
    got = services.features.lookup(scope, feature_id, body.keys)
    rows = [
        {"key": str(k), "values": [None if math.isnan(v) else v for v in m.tolist()]}
        for k, m, f in zip(got.keys, got.matrix, got.found, strict=True)
        if f
    ]
    return ok({"columns": got.columns, "rows": rows, "missing": got.missing})
