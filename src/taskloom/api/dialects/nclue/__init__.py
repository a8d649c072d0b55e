"""The NCLUE front door: Naver Cloud NCLUE's task API under ``/nclue/api/v1``.

An NCLUE "task" is a taskloom task model: a model plus its training job. The task id is the
model id and its ``status`` the training job's (``registered → pending → in_progress →
completed | failed``). Everything here translates names and shapes; the rules live in
``services.models`` (and ``services.task_models_rules``). Signatures, errors and timestamps:
``nclue.http``.

* ``POST /tasks``: the seed's request body; answers the seed's fields exactly.
* ``GET /tasks/{task_id}``: the same fields plus ``status``, ``updated_at``, ``error``
  (``{code, message}`` when failed) and ``metrics`` (when completed).
* ``GET /tasks?limit=&cursor=``: ``{tasks, next_cursor}``.
* ``DELETE /tasks/{task_id}``: 204 while the task is ``registered``, else 409.
* ``GET /features``: the app's feature tables.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from taskloom.api.deps import ServicesDep
from taskloom.api.dialects.nclue.http import (
    NclueRoute,
    NclueScope,
    iso,
    json_object,
    query_limit,
)
from taskloom.api.responses import FastJSONResponse
from taskloom.errors import NotFound, Unavailable
from taskloom.runtime import Services
from taskloom.scope import Scope

# Not in the OpenAPI schema: that describes the native API; this door is NCLUE's own.
router = APIRouter(
    prefix="/nclue/api/v1", tags=["nclue"], route_class=NclueRoute, include_in_schema=False
)


def _models(services: Services) -> Any:
    models = getattr(services, "models", None)
    if models is None:
        raise Unavailable("task models are not available on this server", code="no_task_models")
    return models


def _feature_name(services: Services, scope: Scope, feature_id: str | None) -> str | None:
    if not feature_id:
        return None
    try:
        return str(services.features.get(scope, feature_id)["name"])
    except NotFound:
        return None  # deleted since: the task still reads back


def task_public(services: Services, scope: Scope, view: dict[str, Any]) -> dict[str, Any]:
    """A task model as NCLUE's create-task response shows it (every field, nulls included)."""
    train_name = view.get("train_feature_name")
    if train_name is None:
        train_name = _feature_name(services, scope, view.get("train_feature_id"))
    test_name = view.get("test_feature_name")
    if test_name is None:
        test_name = _feature_name(services, scope, view.get("test_feature_id"))
    return {
        "task_id": view["id"],
        "task_name": view["name"],
        "created_at": iso(view["created_at"]),
        "train_feature_id": view.get("train_feature_id"),
        "train_feature_name": train_name,
        "train_bucket": view.get("train_bucket"),
        "train_file_path": view.get("train_file_path"),
        "test_feature_id": view.get("test_feature_id") or None,
        "test_feature_name": test_name,
        "test_bucket": view.get("test_bucket") or None,
        "test_file_path": view.get("test_file_path") or None,
    }


def task_detail(services: Services, scope: Scope, view: dict[str, Any]) -> dict[str, Any]:
    """The task with its state: ``status``, ``updated_at``, ``error``, ``metrics``."""
    error = view.get("error")
    return {
        **task_public(services, scope, view),
        "status": view["status"],
        "updated_at": iso(view.get("updated_at")),
        "error": (
            {"code": error.get("code"), "message": error.get("message")}
            if isinstance(error, dict)
            else None
        ),
        "metrics": view.get("metrics"),
    }


@router.post("/tasks")
async def create_task(request: Request, scope: NclueScope, services: ServicesDep) -> Response:
    body = await json_object(request)

    def create() -> dict[str, Any]:
        view = _models(services).create_task_model(scope, body)
        return task_public(services, scope, view)

    return FastJSONResponse(await run_in_threadpool(create))


@router.get("/tasks")
def list_tasks(request: Request, scope: NclueScope, services: ServicesDep) -> Response:
    limit = query_limit(request, 20, 100)
    cursor = request.query_params.get("cursor") or None
    page = _models(services).list_task_models(scope, limit=limit, cursor=cursor)
    tasks = [task_detail(services, scope, view) for view in page["data"]]
    return FastJSONResponse({"tasks": tasks, "next_cursor": page.get("cursor")})


@router.get("/tasks/{task_id}")
def get_task(task_id: str, scope: NclueScope, services: ServicesDep) -> Response:
    view = _models(services).get_task_model(scope, task_id)
    return FastJSONResponse(task_detail(services, scope, view))


@router.delete("/tasks/{task_id}", status_code=204)
def delete_task(task_id: str, scope: NclueScope, services: ServicesDep) -> Response:
    _models(services).delete_task_model(scope, task_id)
    return Response(status_code=204)


@router.get("/features")
def list_features(scope: NclueScope, services: ServicesDep) -> Response:
    features = [
        {
            "feature_id": f["id"],
            "feature_name": f["name"],
            "description": f.get("description") or "",
            "key_column": f.get("key_column"),
            "columns": [c["name"] for c in f.get("columns") or []],
            "row_count": f.get("row_count"),
            "created_at": iso(f.get("created_at")),
        }
        for f in services.features.list(scope)
    ]
    return FastJSONResponse({"features": features})


@router.api_route(
    "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
def unknown_endpoint(path: str) -> Response:
    """Any other path under the door: NCP's 404, not the native envelope."""
    raise NotFound(f"unknown NCLUE endpoint /{path}", code="unknown_endpoint", field="path")
