"""Health, the caller, users (admin), apps and API keys."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from taskloom.api.deps import PrincipalDep, ScopeDep, ServicesDep
from taskloom.api.responses import FastJSONResponse, ok
from taskloom.api.schemas import error_responses
from taskloom.api.schemas.account import (
    ApiKey,
    App,
    AppList,
    Health,
    KeyList,
    Me,
    NewApiKey,
    NewUser,
)
from taskloom.version import __version__

router = APIRouter(prefix="/v1", tags=["account"])


class _Body(BaseModel):
    # strict: {"hmac": 0} or {"name": 5} is refused, not read as false or "5"
    model_config = ConfigDict(extra="forbid", strict=True)


class AppCreate(_Body):
    name: str = Field(min_length=1, max_length=200)


class KeyCreate(_Body):
    name: str = Field(default="key", min_length=1, max_length=200)
    app_id: str | None = None
    # also issue an NCP access key / secret pair (the NCLUE front door's signatures)
    hmac: bool = False


class UserCreate(_Body):
    name: str = Field(min_length=1, max_length=200)
    app_name: str = Field(default="default", min_length=1, max_length=200)


@router.get("/health", response_model=Health)
def health(services: ServicesDep) -> FastJSONResponse:
    return ok(
        {
            "status": "ok",
            "version": __version__,
            "database": services.datasets.store.dialect,
        }
    )


@router.get("/me", response_model=Me, responses=error_responses())
def me(principal: PrincipalDep, scope: ScopeDep) -> FastJSONResponse:
    return ok(
        {
            "user_id": principal.user_id,
            "key_id": principal.key_id,
            "app_id": scope.app_id,
            "key_app_id": principal.key_app_id,
            "is_admin": principal.is_admin,
        }
    )


@router.post(
    "/users",
    status_code=201,
    response_model=NewUser,
    responses=error_responses(403, 409, scope=False, body=True),
)
async def create_user(
    body: UserCreate, principal: PrincipalDep, services: ServicesDep
) -> FastJSONResponse:
    out = await run_in_threadpool(services.auth.create_user, principal, body.name, body.app_name)
    return ok(out, 201)


@router.get("/apps", response_model=AppList, responses=error_responses(scope=False))
def list_apps(principal: PrincipalDep, services: ServicesDep) -> FastJSONResponse:
    apps = services.auth.list_apps(principal)
    return ok({"data": apps, "count": len(apps)})


@router.post(
    "/apps",
    status_code=201,
    response_model=App,
    responses=error_responses(403, 409, scope=False, body=True),
)
def create_app(body: AppCreate, principal: PrincipalDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.auth.create_app(principal, body.name), 201)


@router.get("/keys", response_model=KeyList, responses=error_responses(scope=False))
def list_keys(principal: PrincipalDep, services: ServicesDep) -> FastJSONResponse:
    keys = services.auth.list_keys(principal)
    return ok({"data": keys, "count": len(keys)})


@router.post(
    "/keys",
    status_code=201,
    response_model=NewApiKey,
    responses=error_responses(404, 409, 503, scope=False, body=True),
)
def create_key(body: KeyCreate, principal: PrincipalDep, services: ServicesDep) -> FastJSONResponse:
    key, secret = services.auth.create_key(
        principal, name=body.name, app_id=body.app_id, hmac=body.hmac
    )
    return ok({**key, "api_key": secret}, 201)


@router.delete("/keys/{key_id}", response_model=ApiKey, responses=error_responses(404, scope=False))
def revoke_key(key_id: str, principal: PrincipalDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.auth.revoke_key(principal, key_id))
