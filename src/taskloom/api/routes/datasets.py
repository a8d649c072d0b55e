"""Datasets and their documents."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from taskloom import wire
from taskloom.api.deps import ScopeDep, ServicesDep
from taskloom.api.responses import FastJSONResponse, ok
from taskloom.api.schemas import error_responses
from taskloom.api.schemas.common import Count, Deleted, Document
from taskloom.api.schemas.datasets import (
    INSERT_BODY,
    UPDATE_BODY,
    Dataset,
    DatasetList,
    DatasetSchema,
    DocumentList,
    DocumentPage,
    DocumentsDeleted,
    Inserted,
    Updated,
)
from taskloom.errors import Invalid

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


class Query_(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filter: Any = None  # checked by the filter compiler (code invalid_filter)
    page_size: int = Field(default=100, ge=1, le=10_000)
    cursor: str | None = None
    include_vector: bool = True
    select: list[str] | None = None


class BulkGet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str | int] = Field(max_length=10_000)
    include_vector: bool = True
    select: list[str] | None = None


class DeleteDocs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str | int] | None = None
    filter: Any = None  # checked by the filter compiler (code invalid_filter)


class CountBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filter: Any = None  # checked by the filter compiler (code invalid_filter)


async def _documents_body(request: Request) -> tuple[Any, Any]:
    """(body, float block): JSON, or the SDK's binary batch frame (``taskloom.wire``)."""
    raw = await request.body()
    if not raw:
        raise Invalid("a JSON body is required", code="missing_body", field="body")
    if request.headers.get("content-type", "").startswith(wire.MEDIA_TYPE):
        return wire.decode(raw)
    return wire.loads(raw), None


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise Invalid(f"{name} is true or false", code="invalid", field=name)
    return value


def _filter_param(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Invalid("filter is not valid JSON", code="invalid_filter", field="filter") from exc


@router.get("", response_model=DatasetList, responses=error_responses())
def list_datasets(scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    data = services.datasets.list(scope)
    return ok({"data": data, "count": len(data)})


@router.post("", status_code=201, response_model=Dataset, responses=error_responses(409, body=True))
def create_dataset(body: DatasetCreate, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.datasets.create(scope, body.name), 201)


@router.get("/{name}", response_model=Dataset, responses=error_responses())
def get_dataset(name: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.datasets.get(scope, name))


@router.delete("/{name}", response_model=Deleted, responses=error_responses())
def delete_dataset(name: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    services.datasets.delete(scope, name)
    return ok({"deleted": name})


@router.get("/{name}/schema", response_model=DatasetSchema, responses=error_responses())
def dataset_schema(name: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.datasets.schema(scope, name))


@router.post(
    "/{name}/documents",
    response_model=Inserted,
    responses=error_responses(body=True),
    openapi_extra=INSERT_BODY,
)
async def insert_documents(
    name: str, request: Request, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    """Insert a batch: ``{"documents": [...], "overwrite": true, "skip_invalid": false}``.

    The batch is written whole or not at all; with ``skip_invalid`` the valid documents are
    written and the others listed in ``failed``. Vectors may be JSON lists of numbers or
    ``{"$f32": base64}``.
    """
    body, blob = await _documents_body(request)
    if not isinstance(body, dict):
        raise Invalid("the body is a JSON object", code="invalid", field="body")
    unknown = set(body) - {"documents", "overwrite", "skip_invalid"}
    if unknown:
        raise Invalid(
            f"unknown field {sorted(unknown)[0]!r}", code="invalid", field=sorted(unknown)[0]
        )
    if "documents" not in body:
        raise Invalid("documents is required", code="missing_field", field="documents")
    out = await run_in_threadpool(
        services.documents.insert,
        scope,
        name,
        body["documents"],
        overwrite=_flag(body, "overwrite", True),
        skip_invalid=_flag(body, "skip_invalid", False),
        blob=blob,
    )
    return ok(out)


@router.patch(
    "/{name}/documents",
    response_model=Updated,
    responses=error_responses(body=True),
    openapi_extra=UPDATE_BODY,
)
async def update_documents(
    name: str, request: Request, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    """Partial update: ``{"documents": [{"_id": ..., "field": value}], "skip_invalid": false}``."""
    body, blob = await _documents_body(request)
    if not isinstance(body, dict) or "documents" not in body:
        raise Invalid("documents is required", code="missing_field", field="documents")
    unknown = set(body) - {"documents", "skip_invalid"}
    if unknown:
        raise Invalid(
            f"unknown field {sorted(unknown)[0]!r}", code="invalid", field=sorted(unknown)[0]
        )
    out = await run_in_threadpool(
        services.documents.update,
        scope,
        name,
        body["documents"],
        skip_invalid=_flag(body, "skip_invalid", False),
        blob=blob,
    )
    return ok(out)


@router.get("/{name}/documents", response_model=DocumentPage, responses=error_responses())
def list_documents(
    name: str,
    scope: ScopeDep,
    services: ServicesDep,
    filter: Annotated[str | None, Query(description="A filter as JSON")] = None,
    page_size: Annotated[int, Query(ge=1, le=10_000)] = 100,
    cursor: str | None = None,
    include_vector: bool = True,
) -> FastJSONResponse:
    page = services.documents.list(
        scope,
        name,
        filter=_filter_param(filter),
        page_size=page_size,
        cursor=cursor,
        include_vector=include_vector,
    )
    return ok({"data": page["documents"], "cursor": page["cursor"]})


@router.post(
    "/{name}/documents/query",
    response_model=DocumentPage,
    responses=error_responses(body=True),
)
def query_documents(
    name: str, body: Query_, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    page = services.documents.list(
        scope,
        name,
        filter=body.filter,
        page_size=body.page_size,
        cursor=body.cursor,
        include_vector=body.include_vector,
        select_fields=body.select,
    )
    return ok({"data": page["documents"], "cursor": page["cursor"]})


@router.post(
    "/{name}/documents/get",
    response_model=DocumentList,
    responses=error_responses(body=True),
)
def bulk_get(name: str, body: BulkGet, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    docs = services.documents.bulk_get(
        scope, name, body.ids, include_vector=body.include_vector, select_fields=body.select
    )
    return ok({"data": docs, "count": len(docs)})


@router.post(
    "/{name}/documents/delete",
    response_model=DocumentsDeleted,
    responses=error_responses(body=True),
)
def delete_documents(
    name: str, body: DeleteDocs, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    return ok(services.documents.delete(scope, name, body.ids, filter=body.filter))


@router.post("/{name}/documents/count", response_model=Count, responses=error_responses(body=True))
def count_documents(
    name: str, body: CountBody, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    return ok({"count": services.documents.count(scope, name, body.filter)})


@router.get("/{name}/documents/count", response_model=Count, responses=error_responses())
def count_documents_get(
    name: str, scope: ScopeDep, services: ServicesDep, filter: str | None = None
) -> FastJSONResponse:
    return ok({"count": services.documents.count(scope, name, _filter_param(filter))})


@router.get("/{name}/documents/{doc_id}", response_model=Document, responses=error_responses())
def get_document(
    name: str, doc_id: str, scope: ScopeDep, services: ServicesDep, include_vector: bool = True
) -> FastJSONResponse:
    return ok(services.documents.get(scope, name, doc_id, include_vector=include_vector))


@router.delete(
    "/{name}/documents/{doc_id}",
    response_model=DocumentsDeleted,
    responses=error_responses(),
)
def delete_document(
    name: str, doc_id: str, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    out = services.documents.delete(scope, name, [doc_id])
    if not out["deleted"]:
        from taskloom.errors import NotFound

        raise NotFound(f"document {doc_id!r} not found", code="document_not_found", field="_id")
    return ok(out)
