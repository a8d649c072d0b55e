"""Apps: ``PostApps``, ``GetApp``, ``ListApps``, ``PatchApps``, ``DeleteApp`` over
``services.apps``. A Clarifai app id is a taskloom app's name; Clarifai's display name,
default language and metadata are kept in the app's ``meta``."""

from __future__ import annotations

from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_pb2
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from taskloom.api.dialects.clarifai import call, status
from taskloom.errors import Invalid
from taskloom.services.apps import App
from taskloom.services.auth import Principal
from taskloom.services.container import Services

# a workflow Clarifai hosts for every user: the SDK names base workflows this way
_BASE_OWNER = {"app_id": "main", "user_id": "clarifai"}


def timestamp(value: Any) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def struct(value: dict[str, Any] | None) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    if value:
        out.update(value)
    return out


def app_message(app: App) -> resources_pb2.App:
    meta = app.meta
    out = resources_pb2.App(
        id=app.name,
        name=str(meta.get("display_name") or app.name),
        user_id=app.user_id,
        default_workflow_id=app.base_workflow,
        default_workflow=resources_pb2.Workflow(id=app.base_workflow, **_BASE_OWNER),
        description=app.description or "",
        default_language=str(meta.get("default_language") or "en"),
    )
    out.created_at.CopyFrom(timestamp(app.created_at))
    out.modified_at.CopyFrom(timestamp(app.updated_at))
    if meta.get("metadata"):
        out.metadata.CopyFrom(struct(meta["metadata"]))
    return out


def _settings(message: resources_pb2.App, field: str) -> dict[str, Any]:
    """What a posted or patched App message asks for, as ``services.apps`` keywords."""
    meta: dict[str, Any] = {}
    if message.name:
        meta["display_name"] = message.name
    if message.default_language:
        meta["default_language"] = message.default_language
    if message.HasField("metadata"):
        meta["metadata"] = json_format.MessageToDict(message.metadata)
    workflow = message.default_workflow.id or message.default_workflow_id or None
    return {
        "description": message.description or None,
        "base_workflow": workflow,
        "meta": meta or None,
    }


def post_apps(
    services: Services, principal: Principal, request: service_pb2.PostAppsRequest
) -> service_pb2.MultiAppResponse:
    call.check_user(principal, request.user_app_id)
    if not request.apps:
        raise Invalid("apps: give at least one app", code="missing_field", field="apps")
    specs = []
    for i, message in enumerate(request.apps):
        if not message.id:
            raise Invalid("an app needs an id", code="missing_field", field=f"apps[{i}].id")
        specs.append((message.id, _settings(message, f"apps[{i}]")))
    created = services.apps.create_many(principal, specs)
    return service_pb2.MultiAppResponse(status=status.ok(), apps=[app_message(a) for a in created])


def get_app(
    services: Services, principal: Principal, request: service_pb2.GetAppRequest
) -> service_pb2.SingleAppResponse:
    call.check_user(principal, request.user_app_id)
    app = services.apps.get(principal, call.app_name(request.user_app_id))
    return service_pb2.SingleAppResponse(status=status.ok(), app=app_message(app))


def list_apps(
    services: Services, principal: Principal, request: service_pb2.ListAppsRequest
) -> service_pb2.MultiAppResponse:
    call.check_user(principal, request.user_app_id)
    offset, limit = call.page_of(request.page, request.per_page)
    listed = services.apps.list(principal, limit=limit, offset=offset)
    return service_pb2.MultiAppResponse(
        status=status.ok(), apps=[app_message(a) for a in listed["data"]]
    )


def patch_apps(
    services: Services, principal: Principal, request: service_pb2.PatchAppsRequest
) -> service_pb2.MultiAppResponse:
    call.check_user(principal, request.user_app_id)
    if request.action not in ("", "merge", "overwrite"):
        raise Invalid("action is merge or overwrite", code="invalid_action", field="action")
    out = []
    for i, message in enumerate(request.apps):
        if not message.id:
            raise Invalid("an app needs an id", code="missing_field", field=f"apps[{i}].id")
        out.append(services.apps.update(principal, message.id, **_settings(message, "apps")))
    return service_pb2.MultiAppResponse(status=status.ok(), apps=[app_message(a) for a in out])


def patch_app(
    services: Services, principal: Principal, request: service_pb2.PatchAppRequest
) -> service_pb2.SingleAppResponse:
    """The SDK's ``User.patch_app``: one app, named by ``user_app_id.app_id``."""
    call.check_user(principal, request.user_app_id)
    if request.action not in ("", "merge", "overwrite", "remove"):
        raise Invalid("action is merge, overwrite or remove", code="invalid_action", field="action")
    name = call.app_name(request.user_app_id)
    settings = _settings(request.app, "app")
    if request.action == "remove":
        app = services.apps.get(principal, name)
        removed = {k: v for k, v in (settings["meta"] or {}).get("metadata", {}).items()}
        kept = {k: v for k, v in app.meta.get("metadata", {}).items() if k not in removed}
        app = services.apps.update(principal, name, meta={"metadata": kept}, replace_meta=True)
    else:
        app = services.apps.update(principal, name, **settings)
    return service_pb2.SingleAppResponse(status=status.ok(), app=app_message(app))


def delete_app(
    services: Services, principal: Principal, request: service_pb2.DeleteAppRequest
) -> status_pb2.BaseResponse:
    call.check_user(principal, request.user_app_id)
    services.apps.delete(principal, call.app_name(request.user_app_id))
    return status_pb2.BaseResponse(status=status.ok())
