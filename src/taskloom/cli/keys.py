"""``taskloom keys``: create, list and revoke API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from taskloom.cli.common import (
    DEFAULT_DATA_DIR,
    DEFAULT_URL,
    ApiKeyOpt,
    AppOpt,
    DataDirOpt,
    JsonOpt,
    UrlOpt,
    client,
    connection,
    console,
    plural,
    print_json,
    when,
)

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="A label for the key.")] = "key",
    app_id: Annotated[
        str | None,
        typer.Option("--app-id", help="Limit the key to this app. Default: all your apps."),
    ] = None,
    hmac: Annotated[
        bool,
        typer.Option("--hmac", help="Also issue an NCP access key and secret (NCLUE signatures)."),
    ] = False,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """Create an API key. Its secret is printed this once and cannot be shown again."""
    with client(connection(url, api_key, data_dir, app)) as c:
        key = c.create_key(name=name, app_id=app_id, hmac=hmac)
    if as_json:
        print_json(key)
        return
    scope = f"app {key['app_id']}" if key.get("app_id") else "all apps"
    console.print(f"Created key [bold]{key['name']}[/] (id {key['id']}, {scope}).")
    console.print("Its secret is shown only this once; store it now:")
    # On a line of its own and unstyled, so it can be copied or captured as is.
    console.print(key["api_key"], markup=False, soft_wrap=True)
    if key.get("ncp_access_key"):
        console.print("NCP access key and secret key (X-NCP-IAM-ACCESS-KEY; signing secret):")
        console.print(key["ncp_access_key"], markup=False, soft_wrap=True)
        console.print(key["ncp_secret_key"], markup=False, soft_wrap=True)


@app.command("list")
def list_keys(
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """List your API keys (never their secrets)."""
    with client(connection(url, api_key, data_dir, app)) as c:
        keys = c.list_keys()
    if as_json:
        print_json(keys)
        return
    table = Table(title=plural(len(keys), "API key"))
    table.add_column("id", no_wrap=True)
    table.add_column("name", min_width=4)
    table.add_column("prefix", no_wrap=True)
    table.add_column("app", overflow="fold")
    table.add_column("created", no_wrap=True)
    table.add_column("state", min_width=7)
    for k in keys:
        state = "[red]revoked[/]" if k["revoked"] else "[green]active[/]"
        table.add_row(
            k["id"],
            k["name"],
            k["prefix"] + "…",
            k["app_id"] or "all",
            when(k["created_at"]),
            state,
        )
    console.print(table)


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `taskloom keys list`).")],
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """Revoke an API key: requests made with it are refused from now on."""
    with client(connection(url, api_key, data_dir, app)) as c:
        key = c.revoke_key(key_id)
    console.print(f"Revoked key [bold]{key['name']}[/] ({key['id']}).")
