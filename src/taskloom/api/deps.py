"""Dependencies: the platform, the caller (API key) and the app the request acts in."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from taskloom.runtime import Platform, Services
from taskloom.scope import Scope
from taskloom.services.auth import Principal


def get_platform(request: Request) -> Platform:
    return request.app.state.platform


def get_services(request: Request) -> Services:
    return request.app.state.platform.services


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def get_principal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    services: Services = request.app.state.platform.services
    return await run_in_threadpool(services.auth.authenticate, bearer(authorization))


PrincipalDep = Annotated[Principal, Depends(get_principal)]
ServicesDep = Annotated[Services, Depends(get_services)]


async def get_scope(
    request: Request,
    principal: PrincipalDep,
    x_taskloom_app: Annotated[str | None, Header()] = None,
) -> Scope:
    services: Services = request.app.state.platform.services
    return await run_in_threadpool(services.auth.scope, principal, x_taskloom_app)


ScopeDep = Annotated[Scope, Depends(get_scope)]
