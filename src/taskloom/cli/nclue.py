"""``taskloom nclue``: signed requests to the NCLUE front door (``/nclue/api/v1``).

The access key and secret key come from ``--access-key`` / ``--secret-key``, the
``NCP_ACCESS_KEY`` / ``NCP_SECRET_KEY`` environment variables, or ``ncp_access_key`` /
``ncp_secret_key`` in ``DATA_DIR/credentials.json`` (written by the first ``taskloom serve``;
``taskloom keys create --hmac`` makes more pairs). Every request is signed the way the NCP API
Gateway checks it (``taskloom.sdk.ncp.NcpSigner``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from taskloom.cli.common import (
    DEFAULT_DATA_DIR,
    DEFAULT_URL,
    DataDirOpt,
    UrlOpt,
    console,
    fail,
    parse_json_option,
)
from taskloom.sdk.ncp import NcpSigner

app = typer.Typer(help="Signed requests to the NCLUE front door.", no_args_is_help=True)

AccessOpt = Annotated[
    str | None,
    typer.Option("--access-key", envvar="NCP_ACCESS_KEY", help="NCP access key."),
]
SecretOpt = Annotated[
    str | None,
    typer.Option("--secret-key", envvar="NCP_SECRET_KEY", help="NCP secret key."),
]

API = "/nclue/api/v1"


def _keys(access: str | None, secret: str | None, data_dir: Path) -> tuple[str, str]:
    if access and secret:
        return access, secret
    path = data_dir / "credentials.json"
    try:
        creds: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError) as exc:
        fail(f"cannot read {path}: {exc}")
    access = access or creds.get("ncp_access_key")
    secret = secret or creds.get("ncp_secret_key")
    if not access or not secret:
        fail(
            "no NCP key pair: give --access-key and --secret-key (or NCP_ACCESS_KEY and "
            "NCP_SECRET_KEY), or point --data-dir at a folder whose credentials.json has them"
        )
    return access, secret


def _send(
    method: str,
    path: str,
    body: Any,
    url: str,
    access: str | None,
    secret: str | None,
    data_dir: Path,
) -> None:
    a, s = _keys(access, secret, data_dir)
    try:
        with httpx.Client(base_url=url.rstrip("/"), auth=NcpSigner(a, s), timeout=60) as http:
            r = http.request(method, API + path, json=body)
    except httpx.HTTPError as exc:
        fail(f"cannot reach {url}: {exc}")
    if r.content:
        console.print_json(data=r.json())
    else:
        console.print(str(r.status_code))
    if r.status_code >= 400:
        raise typer.Exit(1)


@app.command("create-task")
def create_task(
    body: Annotated[str, typer.Argument(help="The task as JSON: name, train_feature_id, ...")],
    url: UrlOpt = DEFAULT_URL,
    access_key: AccessOpt = None,
    secret_key: SecretOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
) -> None:
    """POST /tasks: register a task model and queue its training."""
    _send("POST", "/tasks", parse_json_option(body, "BODY"), url, access_key, secret_key, data_dir)


@app.command("task")
def get_task(
    task_id: str,
    url: UrlOpt = DEFAULT_URL,
    access_key: AccessOpt = None,
    secret_key: SecretOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
) -> None:
    """GET /tasks/{task_id}: the task and its status."""
    _send("GET", f"/tasks/{task_id}", None, url, access_key, secret_key, data_dir)


@app.command("tasks")
def list_tasks(
    url: UrlOpt = DEFAULT_URL,
    access_key: AccessOpt = None,
    secret_key: SecretOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
) -> None:
    """GET /tasks."""
    _send("GET", "/tasks", None, url, access_key, secret_key, data_dir)


@app.command("delete-task")
def delete_task(
    task_id: str,
    url: UrlOpt = DEFAULT_URL,
    access_key: AccessOpt = None,
    secret_key: SecretOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
) -> None:
    """DELETE /tasks/{task_id} (only while registered)."""
    _send("DELETE", f"/tasks/{task_id}", None, url, access_key, secret_key, data_dir)


@app.command("features")
def list_features(
    url: UrlOpt = DEFAULT_URL,
    access_key: AccessOpt = None,
    secret_key: SecretOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
) -> None:
    """GET /features."""
    _send("GET", "/features", None, url, access_key, secret_key, data_dir)
