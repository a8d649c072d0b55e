"""Users, apps (the tenant boundary) and API keys; who a request is and which app it acts in."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select, update

from taskloom.errors import Conflict, Forbidden, NotFound, Unauthorized, Unavailable
from taskloom.scope import Scope
from taskloom.secrets_box import SecretBox
from taskloom.store.engine import Store
from taskloom.store.tables import api_keys, apps, ncp_keys, users
from taskloom.store.types import utcnow
from taskloom.validation import check_display_name

KEY_PREFIX = "tlk_"
NCP_ACCESS_PREFIX = "TLNCP"


def ncp_purpose(access_key: str) -> str:
    """What binds a sealed NCP secret to its key row."""
    return f"ncp_secret_key:{access_key}"


def new_id() -> str:
    return uuid.uuid4().hex


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's user, and the one app the key is limited to (if any)."""

    user_id: str
    key_id: str
    key_app_id: str | None
    is_admin: bool


def _key_public(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "app_id": row.app_id,
        "created_at": row.created_at,
        "revoked": row.revoked_at is not None,
    }


def _app_public(row: Any) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "user_id": row.user_id, "created_at": row.created_at}


class AuthService:
    # A key seen recently is trusted for this long without a query; revoking through this
    # process takes effect at once, through another process within the TTL.
    CACHE_TTL = 2.0

    def __init__(self, store: Store, secrets_box: SecretBox | None = None) -> None:
        self.store = store
        # needed only for NCP key pairs (their secrets are sealed, not hashed)
        self.secrets_box = secrets_box
        self._keys: dict[str, tuple[float, Principal]] = {}
        self._default_app: dict[str, tuple[float, str]] = {}
        self._ncp: dict[str, tuple[float, str, Principal]] = {}

    # -- users and apps --------------------------------------------------------------------

    def _create_user(self, conn: Connection, name: str, is_admin: bool) -> str:
        if conn.execute(select(users.c.id).where(users.c.name == name)).first():
            raise Conflict(f"user {name!r} exists", code="user_exists", field="name")
        uid = new_id()
        conn.execute(
            insert(users).values(id=uid, name=name, is_admin=is_admin, created_at=utcnow())
        )
        return uid

    def _create_app(self, conn: Connection, user_id: str, name: str) -> dict[str, Any]:
        exists = conn.execute(
            select(apps.c.id).where(apps.c.user_id == user_id, apps.c.name == name)
        ).first()
        if exists:
            raise Conflict(f"app {name!r} exists", code="app_exists", field="name")
        row = {"id": new_id(), "user_id": user_id, "name": name, "created_at": utcnow()}
        conn.execute(insert(apps).values(**row))
        return row

    def _create_key(
        self,
        conn: Connection,
        user_id: str,
        *,
        app_id: str | None,
        name: str,
        value: str | None = None,
    ) -> tuple[dict[str, Any], str]:
        secret = value or KEY_PREFIX + secrets.token_urlsafe(24)
        row = {
            "id": new_id(),
            "user_id": user_id,
            "app_id": app_id,
            "name": name,
            "prefix": secret[:12],
            "key_hash": hash_key(secret),
            "created_at": utcnow(),
            "revoked_at": None,
        }
        if conn.execute(
            select(api_keys.c.id).where(api_keys.c.key_hash == row["key_hash"])
        ).first():
            raise Conflict("that key value is already in use", code="key_exists", field="value")
        conn.execute(insert(api_keys).values(**row))
        return _key_public(_Row(row)), secret

    def create_user(self, principal: Principal, name: str, app_name: str = "default") -> dict:
        """Admin only: a new user with one app and a key limited to it."""
        if not principal.is_admin:
            raise Forbidden("only an admin can create users")
        _check_name(name, "name")
        _check_name(app_name, "app_name")
        with self.store.write() as conn:
            uid = self._create_user(conn, name, is_admin=False)
            app = self._create_app(conn, uid, app_name)
            key, secret = self._create_key(conn, uid, app_id=app["id"], name="default")
        return {"user_id": uid, "app": app, "key": key, "api_key": secret}

    def create_app(self, principal: Principal, name: str) -> dict[str, Any]:
        if principal.key_app_id is not None:
            raise Forbidden("this key is limited to one app and cannot create apps")
        _check_name(name, "name")
        with self.store.write() as conn:
            return self._create_app(conn, principal.user_id, name)

    def list_apps(self, principal: Principal) -> list[dict[str, Any]]:
        q = select(apps).where(apps.c.user_id == principal.user_id).order_by(apps.c.created_at)
        if principal.key_app_id is not None:
            q = q.where(apps.c.id == principal.key_app_id)
        with self.store.read() as conn:
            return [_app_public(r) for r in conn.execute(q)]

    # -- keys ------------------------------------------------------------------------------

    def _create_ncp_pair(self, conn: Connection, key_id: str) -> dict[str, str]:
        """An NCP access key and secret for the API key ``key_id`` (the secret sealed)."""
        if self.secrets_box is None:
            raise Unavailable("NCP key pairs need the data folder's secret box")
        access_key = NCP_ACCESS_PREFIX + secrets.token_hex(8).upper()
        secret = secrets.token_urlsafe(30)
        sealed = self.secrets_box.seal(secret, purpose=ncp_purpose(access_key))
        conn.execute(
            insert(ncp_keys).values(
                access_key=access_key, api_key_id=key_id, secret_sealed=sealed, created_at=utcnow()
            )
        )
        return {"ncp_access_key": access_key, "ncp_secret_key": secret}

    def create_key(
        self,
        principal: Principal,
        *,
        name: str = "key",
        app_id: str | None = None,
        hmac: bool = False,
    ) -> tuple[dict[str, Any], str]:
        """A new API key and its secret. With ``hmac`` the key dict also carries an NCP
        ``ncp_access_key`` and ``ncp_secret_key`` (shown this once, like the secret)."""
        _check_name(name, "name")
        if principal.key_app_id is not None:
            if app_id not in (None, principal.key_app_id):
                raise NotFound("app not found", code="app_not_found", field="app_id")
            app_id = principal.key_app_id
        with self.store.write() as conn:
            if app_id is not None:
                self._own_app(conn, principal.user_id, app_id)
            key, secret = self._create_key(conn, principal.user_id, app_id=app_id, name=name)
            if hmac:
                key.update(self._create_ncp_pair(conn, key["id"]))
            return key, secret

    def list_keys(self, principal: Principal) -> list[dict[str, Any]]:
        q = (
            select(api_keys)
            .where(api_keys.c.user_id == principal.user_id)
            .order_by(api_keys.c.created_at)
        )
        if principal.key_app_id is not None:
            q = q.where(api_keys.c.app_id == principal.key_app_id)
        with self.store.read() as conn:
            return [_key_public(r) for r in conn.execute(q)]

    def revoke_key(self, principal: Principal, key_id: str) -> dict[str, Any]:
        q = select(api_keys).where(api_keys.c.id == key_id, api_keys.c.user_id == principal.user_id)
        if principal.key_app_id is not None:
            q = q.where(api_keys.c.app_id == principal.key_app_id)
        self._keys.clear()
        self._ncp.clear()
        with self.store.write() as conn:
            row = conn.execute(q).first()
            if row is None:
                raise NotFound("key not found", code="key_not_found", field="key_id")
            if row.revoked_at is None:
                conn.execute(
                    update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=utcnow())
                )
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).one()
        return _key_public(row)

    # -- authentication --------------------------------------------------------------------

    def authenticate(self, secret: str | None) -> Principal:
        if not secret:
            raise Unauthorized("an API key is required (Authorization: Bearer <key>)")
        digest = hash_key(secret)
        hit = self._keys.get(digest)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        q = (
            select(api_keys.c.id, api_keys.c.user_id, api_keys.c.app_id, users.c.is_admin)
            .join(users, users.c.id == api_keys.c.user_id)
            .where(api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None))
        )
        with self.store.read() as conn:
            row = conn.execute(q).first()
        if row is None:
            raise Unauthorized("invalid or revoked API key", code="invalid_api_key")
        principal = Principal(
            user_id=row.user_id, key_id=row.id, key_app_id=row.app_id, is_admin=row.is_admin
        )
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[digest] = (time.monotonic() + self.CACHE_TTL, principal)
        return principal

    def ncp_secret_for(self, access_key: str) -> str | None:
        """The secret of an NCP access key whose API key is live; None for any other."""
        hit = self._ncp_lookup(access_key)
        return hit[0] if hit else None

    def authenticate_ncp(self, access_key: str) -> Principal:
        """The caller behind an NCP access key (its signature already checked)."""
        hit = self._ncp_lookup(access_key)
        if hit is None:
            raise Unauthorized("unknown access key", code="ncp_unknown_access_key")
        return hit[1]

    def _ncp_lookup(self, access_key: str) -> tuple[str, Principal] | None:
        if not access_key or len(access_key) > 32:
            return None
        hit = self._ncp.get(access_key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1], hit[2]
        q = (
            select(
                ncp_keys.c.secret_sealed,
                api_keys.c.id,
                api_keys.c.user_id,
                api_keys.c.app_id,
                users.c.is_admin,
            )
            .join(api_keys, api_keys.c.id == ncp_keys.c.api_key_id)
            .join(users, users.c.id == api_keys.c.user_id)
            .where(ncp_keys.c.access_key == access_key, api_keys.c.revoked_at.is_(None))
        )
        with self.store.read() as conn:
            row = conn.execute(q).first()
        if row is None or self.secrets_box is None:
            return None
        secret = self.secrets_box.open_(row.secret_sealed, purpose=ncp_purpose(access_key))
        principal = Principal(
            user_id=row.user_id, key_id=row.id, key_app_id=row.app_id, is_admin=row.is_admin
        )
        if len(self._ncp) > 10_000:
            self._ncp.clear()
        self._ncp[access_key] = (time.monotonic() + self.CACHE_TTL, secret, principal)
        return secret, principal

    def scope(self, principal: Principal, app_id: str | None = None) -> Scope:
        """The app this request acts in: the key's app, the one asked for, or the first."""
        if principal.key_app_id is not None:
            if app_id not in (None, principal.key_app_id):
                raise NotFound("app not found", code="app_not_found", field="app_id")
            return Scope(app_id=principal.key_app_id, user_id=principal.user_id)
        if app_id is None:
            hit = self._default_app.get(principal.user_id)
            if hit is not None and hit[0] > time.monotonic():
                return Scope(app_id=hit[1], user_id=principal.user_id)
        with self.store.read() as conn:
            if app_id is not None:
                self._own_app(conn, principal.user_id, app_id)
                return Scope(app_id=app_id, user_id=principal.user_id)
            row = conn.execute(
                select(apps.c.id)
                .where(apps.c.user_id == principal.user_id)
                .order_by(apps.c.created_at)
                .limit(1)
            ).first()
        if row is None:
            raise NotFound("this user has no app yet: create one", code="app_not_found")
        self._default_app[principal.user_id] = (time.monotonic() + self.CACHE_TTL, row.id)
        return Scope(app_id=row.id, user_id=principal.user_id)

    def forget_app(self, app_id: str) -> None:
        """Drop what this process remembers of a deleted app (its keys, a user's default)."""
        self._keys = {k: v for k, v in self._keys.items() if v[1].key_app_id != app_id}
        self._ncp = {k: v for k, v in self._ncp.items() if v[2].key_app_id != app_id}
        self._default_app = {k: v for k, v in self._default_app.items() if v[1] != app_id}

    def app_scope(self, principal: Principal, name: str) -> Scope:
        """The scope of the app named ``name`` (an app's name is unique per user: it is the
        Clarifai door's app id); a key limited to another app finds none."""
        q = select(apps.c.id).where(apps.c.user_id == principal.user_id, apps.c.name == name)
        if principal.key_app_id is not None:
            q = q.where(apps.c.id == principal.key_app_id)
        with self.store.read() as conn:
            row = conn.execute(q).first()
        if row is None:
            raise NotFound(f"app {name!r} not found", code="app_not_found", field="app_id")
        return Scope(app_id=row.id, user_id=principal.user_id)

    @staticmethod
    def _own_app(conn: Connection, user_id: str, app_id: str) -> None:
        found = conn.execute(
            select(apps.c.id).where(apps.c.id == app_id, apps.c.user_id == user_id)
        ).first()
        if found is None:
            raise NotFound("app not found", code="app_not_found", field="app_id")

    # -- first start -----------------------------------------------------------------------

    def bootstrap(self, credentials_path: Path, api_key: str | None = None) -> dict | None:
        """On an empty database: admin user, default app, first key, credentials.json."""
        with self.store.write() as conn:
            if conn.execute(select(users.c.id).limit(1)).first():
                return None
            uid = self._create_user(conn, "admin", is_admin=True)
            app = self._create_app(conn, uid, "default")
            key, secret = self._create_key(conn, uid, app_id=None, name="bootstrap", value=api_key)
            ncp = self._create_ncp_pair(conn, key["id"]) if self.secrets_box else {}
        creds = {"user_id": uid, "app_id": app["id"], "api_key": secret, **ncp}
        credentials_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(credentials_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(creds, f, indent=2)
        os.chmod(credentials_path, 0o600)
        return creds


class _Row:
    def __init__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)


def _check_name(name: Any, field: str) -> None:
    check_display_name(name, field)
