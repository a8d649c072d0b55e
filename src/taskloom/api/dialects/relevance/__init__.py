"""The Relevance AI front door: the REST shapes of the relevanceai Python SDK 0.22-0.26.

Mounted under ``/relevance``; point the SDK (or ``taskloom.sdk.compat.relevance``) at
``http://<server>/relevance``. Requests authenticate with ``Authorization: <app_id>:<api_key>``
(Relevance's ``project:api_key``; the project is a taskloom app). GET requests carry their
parameters in the query string (a repeated key is a list), POST requests in a JSON body.
Both of the SDK's spellings of a vector field are read: ``vector_field`` (0.22) and
``vector_fields`` (0.24+, a list).

Answers: 200 with Relevance's shapes on success (the SDK treats any other status as a
failure); errors are ``{"message", "code", "details"}`` with the status of the matching
taskloom error (401, 403, 404 also for another tenant's dataset, 409, 422). Relevance tasks
are taskloom jobs.

The parts: ``http`` (credentials, parameters, the error envelope), this module
(datasets, documents, tasks), ``services`` (vector search, centroids),
``tasks`` (task names and status words), ``filters`` (filters).
"""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import Field

from taskloom.api.deps import ServicesDep
from taskloom.api.dialects.relevance import filters as relevance_filters
from taskloom.api.dialects.relevance import services as relevance_services
from taskloom.api.dialects.relevance import tasks as relevance_tasks
from taskloom.api.dialects.relevance.http import (
    END_CURSOR,
    Params,
    RelevanceIn,
    RelevanceRoute,
    RelevanceScope,
    StrList,
    parse,
    selected,
    unsupported,
)
from taskloom.api.responses import ok
from taskloom.errors import Invalid, NotFound
from taskloom.jobs.records import Job
from taskloom.runtime import Services
from taskloom.scope import Scope

# Not in the OpenAPI schema: that describes the native API; this door is Relevance's own.
router = APIRouter(
    prefix="/relevance", tags=["relevance"], route_class=RelevanceRoute, include_in_schema=False
)


# -- datasets ----------------------------------------------------------------------------------


class DatasetCreate(RelevanceIn):
    id: str
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")


class DatasetRef(RelevanceIn):
    dataset_id: str


class DatasetListAll(RelevanceIn):
    dataset_ids: StrList = Field(default_factory=list)
    page_size: int = Field(default=20, ge=1, le=10_000)
    page: int = Field(default=1, ge=1)


def relevance_schema(fields: dict[str, Any]) -> dict[str, Any]:
    """taskloom's field types as Relevance's: ``numeric``, ``text``, ``dict`` for objects,
    ``{"vector": dim}`` for vector fields, nested fields under dotted paths."""
    words = {"number": "numeric", "text": "text", "bool": "bool", "object": "dict"}
    out: dict[str, Any] = {}
    for path, info in sorted(fields.items()):
        parts = path.split(".")
        for i in range(1, len(parts)):
            out.setdefault(".".join(parts[:i]), "dict")
        kind = info.get("type")
        out[path] = {"vector": info.get("dim")} if kind == "vector" else words.get(kind, kind)
    return out


@router.post("/datasets/create")
def create_dataset(scope: RelevanceScope, services: ServicesDep, params: Params) -> Response:
    """The ``schema`` is accepted and not needed: taskloom infers field types and vector
    dimensions from the documents."""
    body = parse(DatasetCreate, params)
    services.datasets.create(scope, body.id)
    return ok({"status": "success", "message": f"dataset {body.id!r} created"})


@router.get("/datasets/list")
def list_datasets(scope: RelevanceScope, services: ServicesDep) -> Response:
    return ok({"datasets": [d["id"] for d in services.datasets.list(scope)]})


@router.post("/datasets/list")
def list_datasets_detailed(
    scope: RelevanceScope, services: ServicesDep, params: Params
) -> Response:
    body = parse(DatasetListAll, params)
    found = services.datasets.list(scope)
    if body.dataset_ids:
        found = [d for d in found if d["id"] in set(body.dataset_ids)]
    page = found[(body.page - 1) * body.page_size : body.page * body.page_size]
    return ok(
        {
            "datasets": [
                {
                    "dataset_id": d["id"],
                    "schema": relevance_schema(d["fields"]),
                    "stats": {"number_of_documents": d["document_count"]},
                    "metadata": {},
                    "created_at": d["created_at"],
                }
                for d in page
            ],
            "count": len(found),
        }
    )


@router.post("/datasets/delete")
def delete_dataset(scope: RelevanceScope, services: ServicesDep, params: Params) -> Response:
    body = parse(DatasetRef, params)
    services.datasets.delete(scope, body.dataset_id)
    return ok({"status": "success", "message": f"dataset {body.dataset_id!r} deleted"})


@router.get("/datasets/{dataset_id}/schema")
def dataset_schema(dataset_id: str, scope: RelevanceScope, services: ServicesDep) -> Response:
    return ok(relevance_schema(services.datasets.schema(scope, dataset_id)))


# -- documents ---------------------------------------------------------------------------------


class InsertOne(RelevanceIn):
    document: Any
    insert_date: bool = True
    overwrite: bool = True


class InsertMany(RelevanceIn):
    documents: Any
    insert_date: bool = True
    overwrite: bool = True
    field_transformers: builtins.list[Any] = Field(default_factory=list)


class UpdateMany(RelevanceIn):
    updates: Any
    insert_date: bool = True


class GetOne(RelevanceIn):
    id: str | int
    include_vector: bool = True


class GetMany(RelevanceIn):
    id: StrList = Field(default_factory=list)
    ids: StrList = Field(default_factory=list)
    include_vector: bool = True
    select_fields: StrList = Field(default_factory=list)


class GetWhere(RelevanceIn):
    filters: Any = None
    cursor: str | None = None
    page_size: int = Field(default=20, ge=1, le=10_000)
    sort: builtins.list[Any] = Field(default_factory=list)
    select_fields: StrList = Field(default_factory=list)
    include_vector: bool = True
    is_random: bool = False


def _stamp(docs: Any, insert_date: bool) -> Any:
    """``insert_date``: Relevance records when a document was written in ``insert_date_``."""
    if not insert_date or not isinstance(docs, list):
        return docs
    now = datetime.now(UTC).isoformat()
    return [{**d, "insert_date_": now} if isinstance(d, dict) else d for d in docs]


def _write_result(count: int, failed: builtins.list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "inserted": count,
        "failed_documents": [{"_id": f.get("_id"), "error": f.get("message")} for f in failed],
        "failed_documents_detailed": failed,
    }


def _insert(
    scope: Scope, services: Services, dataset_id: str, docs: Any, overwrite: bool
) -> dict[str, Any]:
    out = services.documents.insert(scope, dataset_id, docs, overwrite=overwrite, skip_invalid=True)
    return _write_result(out["inserted"], out["failed"])


@router.post("/datasets/{dataset_id}/documents/insert")
def insert_document(
    dataset_id: str, scope: RelevanceScope, services: ServicesDep, params: Params
) -> Response:
    body = parse(InsertOne, params)
    if not isinstance(body.document, dict):
        raise Invalid("document is a JSON object", code="invalid_document", field="document")
    docs = _stamp([body.document], body.insert_date)
    return ok(_insert(scope, services, dataset_id, docs, body.overwrite))


@router.post("/datasets/{dataset_id}/documents/bulk_insert")
def bulk_insert(
    dataset_id: str, scope: RelevanceScope, services: ServicesDep, params: Params
) -> Response:
    """Invalid documents are listed in ``failed_documents``; the others are written."""
    body = parse(InsertMany, params)
    if body.field_transformers:
        raise unsupported("field_transformers are not supported", "field_transformers")
    if not isinstance(body.documents, list):
        raise Invalid("documents is a list", code="invalid_documents", field="documents")
    docs = _stamp(body.documents, body.insert_date)
    return ok(_insert(scope, services, dataset_id, docs, body.overwrite))


@router.post("/datasets/{dataset_id}/documents/bulk_update")
def bulk_update(
    dataset_id: str, scope: RelevanceScope, services: ServicesDep, params: Params
) -> Response:
    """Partial updates (``{"_id", "field": value}``, dotted keys set nested fields)."""
    body = parse(UpdateMany, params)
    if not isinstance(body.updates, list):
        raise Invalid("updates is a list", code="invalid_documents", field="updates")
    docs = _stamp(body.updates, body.insert_date)
    out = services.documents.update(scope, dataset_id, docs, skip_invalid=True)
    return ok({**_write_result(out["updated"], out["failed"]), "updated": out["updated"]})


@router.get("/datasets/{dataset_id}/documents/get")
def get_document(
    dataset_id: str, scope: RelevanceScope, services: ServicesDep, params: Params
) -> Response:
    body = parse(GetOne, params)
    return ok(
        services.documents.get(scope, dataset_id, str(body.id), include_vector=body.include_vector)
    )


@router.api_route("/datasets/{dataset_id}/documents/bulk_get", methods=["GET", "POST"])
def bulk_get(
    dataset_id: str, scope: RelevanceScope, services: ServicesDep, params: Params
) -> Response:
    body = parse(GetMany, params)
    docs = services.documents.bulk_get(
        scope,
        dataset_id,
        body.id + body.ids,
        include_vector=body.include_vector,
        select_fields=selected(body.select_fields),
    )
    return ok({"documents": docs})


def _page(
    scope: Scope,
    services: Services,
    dataset_id: str,
    body: GetWhere,
    flt: dict[str, Any] | None,
) -> dict[str, Any]:
    if body.sort:
        raise unsupported("sort is not supported; documents come in insertion order", "sort")
    if body.is_random:
        raise unsupported("random retrieval is not supported", "is_random")
    count = services.documents.count(scope, dataset_id, flt)
    if body.cursor == END_CURSOR:
        return {"documents": [], "cursor": END_CURSOR, "count": count}
    page = services.documents.list(
        scope,
        dataset_id,
        filter=flt,
        page_size=body.page_size,
        cursor=body.cursor,
        include_vector=body.include_vector,
        select_fields=selected(body.select_fields),
    )
    return {"documents": page["documents"], "cursor": page["cursor"] or END_CURSOR, "count": count}


@router.post("/datasets/{dataset_id}/documents/get_where")
def get_where(
    dataset_id: str, scope: RelevanceScope, services: ServicesDep, params: Params
) -> Response:
    """A page of the documents that match ``filters`` (see ``filters``), with
    ``cursor`` for the next page and ``count``, the number of matches in all."""
    body = parse(GetWhere, params)
    flt = relevance_filters.translate(body.filters)
    return ok(_page(scope, services, dataset_id, body, flt))


@router.get("/datasets/{dataset_id}/documents/list")
def list_documents(
    dataset_id: str, scope: RelevanceScope, services: ServicesDep, params: Params
) -> Response:
    body = parse(GetWhere, {**params, "filters": None})
    return ok(_page(scope, services, dataset_id, body, None))


# -- tasks (taskloom jobs) ---------------------------------------------------------------------


def _require_dataset(scope: Scope, services: Services, dataset_id: str) -> None:
    """404 (``dataset_not_found``) unless the dataset is there, in the caller's app."""
    services.datasets.schema(scope, dataset_id)


class TaskList(RelevanceIn):
    show_active_only: bool = True


@router.post("/datasets/{dataset_id}/tasks/create")
def create_task(
    dataset_id: str, scope: RelevanceScope, services: ServicesDep, params: Params
) -> Response:
    _require_dataset(scope, services, dataset_id)
    kind, job_params = relevance_tasks.job_request(dataset_id, params)
    try:
        job, _ = services.jobs.submit(scope, kind, job_params, dataset=dataset_id)
    except Invalid as exc:
        # the task's parameters are the body's own keys, not a "params" object
        if exc.field and exc.field.startswith("params."):
            exc.field = exc.field[len("params.") :]
            exc.details["field"] = exc.field
            exc.message = exc.message.removeprefix("params.")
        raise
    return ok({"task_id": job["id"]})


def _task_of(scope: Scope, services: Services, dataset_id: str, task_id: str) -> Job:
    try:
        job = services.jobs.get(scope, task_id)
    except NotFound:
        job = None
    if job is None or job.dataset != dataset_id:
        _require_dataset(scope, services, dataset_id)
        raise NotFound(f"task {task_id!r} not found", code="task_not_found", field="task_id")
    return job


@router.get("/datasets/{dataset_id}/tasks/{task_id}/status")
def task_status(
    dataset_id: str, task_id: str, scope: RelevanceScope, services: ServicesDep
) -> Response:
    return ok(relevance_tasks.render(_task_of(scope, services, dataset_id, task_id)))


@router.get("/datasets/{dataset_id}/tasks/list")
def list_tasks(
    dataset_id: str, scope: RelevanceScope, services: ServicesDep, params: Params
) -> Response:
    """The dataset's tasks, newest first; only the unfinished ones by default."""
    body = parse(TaskList, params)
    _require_dataset(scope, services, dataset_id)
    tasks: builtins.list[dict[str, Any]] = []
    cursor = None
    while True:
        page = services.jobs.list(
            scope,
            dataset=dataset_id,
            active_only=body.show_active_only,
            limit=1000,
            cursor=cursor,
        )
        tasks.extend(relevance_tasks.render(j) for j in page["data"])
        cursor = page["cursor"]
        if cursor is None:
            break
    return ok({"tasks": tasks, "count": len(tasks)})


router.include_router(relevance_services.router)


# -- anything else -----------------------------------------------------------------------------


@router.api_route(
    "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
def unknown_endpoint(path: str) -> Response:
    raise NotFound(f"unknown Relevance endpoint /{path}", code="unknown_endpoint", field="path")
