"""Health, the caller, users, apps and API keys."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from taskloom.api.schemas.common import listing


class Health(BaseModel):
    status: str = Field(description="`ok`")
    version: str
    database: str = Field(description="`sqlite` or `postgresql`")


class Me(BaseModel):
    user_id: str
    key_id: str
    app_id: str = Field(description="The app this request acts in.")
    key_app_id: str | None = Field(description="The one app the key is limited to, if any.")
    is_admin: bool


class App(BaseModel):
    id: str
    name: str
    user_id: str
    created_at: datetime


class ApiKey(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="The first characters of the secret, to tell keys apart.")
    app_id: str | None = Field(description="The one app the key is limited to, if any.")
    created_at: datetime
    revoked: bool


class NewApiKey(ApiKey):
    api_key: str = Field(description="The secret, shown this once.")
    ncp_access_key: str | None = Field(
        default=None, description="With `hmac`: the NCP access key (NCLUE signatures)."
    )
    ncp_secret_key: str | None = Field(
        default=None, description="With `hmac`: the NCP secret, shown this once."
    )


class NewUser(BaseModel):
    user_id: str
    app: App
    key: ApiKey
    api_key: str = Field(description="The key's secret, shown this once.")


AppList = listing("AppList", App)
KeyList = listing("KeyList", ApiKey)
