"""Who a Clarifai call is and which app it acts in.

The key travels in the call's metadata, ``authorization: Key <taskloom API key>`` (as the SDK
sends a PAT); ``user_app_id.user_id`` is the key's user (taskloom's user id, as
``credentials.json`` gives it; empty or ``me`` means the same), and ``user_app_id.app_id`` is
an app's name. Another user's app, or an app a limited key is not for, does not exist here.
"""

from __future__ import annotations

from typing import Any

from taskloom.errors import Invalid, NotFound, Unauthorized
from taskloom.scope import Scope
from taskloom.services.auth import Principal
from taskloom.services.container import Services


def principal_of(services: Services, context: Any) -> Principal:
    metadata = {k.lower(): v for k, v in (context.invocation_metadata() or ())}
    header = metadata.get("authorization", "")
    scheme, _, secret = str(header).strip().partition(" ")
    if scheme.lower() not in ("key", "bearer") or not secret.strip():
        raise Unauthorized(
            "an API key is required: metadata authorization: Key <taskloom API key>",
            code="missing_api_key",
            field="authorization",
        )
    return services.auth.authenticate(secret.strip())


def check_user(principal: Principal, user_app_id: Any) -> None:
    user_id = user_app_id.user_id
    if user_id and user_id not in (principal.user_id, "me"):
        raise NotFound(
            f"user {user_id!r} not found", code="user_not_found", field="user_app_id.user_id"
        )


def app_name(user_app_id: Any) -> str:
    if not user_app_id.app_id:
        raise Invalid(
            "user_app_id.app_id is required", code="missing_field", field="user_app_id.app_id"
        )
    return str(user_app_id.app_id)


def scope_of(services: Services, principal: Principal, user_app_id: Any) -> Scope:
    """The scope of the app a call names."""
    check_user(principal, user_app_id)
    return services.auth.app_scope(principal, app_name(user_app_id))


def page_of(page: int, per_page: int, *, default: int = 128, most: int = 1000) -> tuple[int, int]:
    """Clarifai's ``page`` / ``per_page`` as (offset, limit): page 0 is page 1, per_page 0
    is ``default``; a per_page past ``most`` is refused."""
    if page < 0:
        raise Invalid("page is 1 or more", code="invalid_page", field="page")
    if per_page < 0 or per_page > most:
        raise Invalid(f"per_page is 0 to {most}", code="invalid_limit", field="per_page")
    size = per_page or default
    return (max(page, 1) - 1) * size, size
