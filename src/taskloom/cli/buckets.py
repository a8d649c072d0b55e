"""``taskloom buckets``: create and list buckets; put, list and get their files."""

from __future__ import annotations

import sys
from pathlib import Path
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

app = typer.Typer(
    help="Buckets: named areas of files (create, list; put, ls, get files).",
    no_args_is_help=True,
)

BucketArg = Annotated[str, typer.Argument(help="The bucket's name.", show_default=False)]
PathArg = Annotated[str, typer.Argument(help="The file's path in the bucket.", show_default=False)]


@app.command()
def create(
    bucket: BucketArg,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """Create an empty bucket (3-63 lowercase letters, digits, '.' and '-')."""
    with client(connection(url, api_key, data_dir, app)) as c:
        out = c.buckets.create(bucket)
    if as_json:
        print_json(out)
    else:
        console.print(f"created bucket [bold]{out['name']}[/]")


@app.command("list")
def list_buckets(
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """List the app's buckets."""
    with client(connection(url, api_key, data_dir, app)) as c:
        data = c.buckets.list()
    if as_json:
        print_json(data)
        return
    table = Table(title=plural(len(data), "bucket"))
    table.add_column("name", no_wrap=True)
    table.add_column("created", no_wrap=True)
    for b in data:
        table.add_row(b["name"], when(b["created_at"]))
    console.print(table)


@app.command()
def put(
    bucket: BucketArg,
    path: PathArg,
    file: Annotated[
        Path,
        typer.Argument(
            help="The local file to upload ('-' reads standard input).",
            show_default=False,
            allow_dash=True,
        ),
    ],
    content_type: Annotated[
        str | None, typer.Option("--content-type", help="Default: from the file's name.")
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """Upload a local file to PATH in BUCKET (streamed; replaces the file there)."""
    with client(connection(url, api_key, data_dir, app)) as c:
        if str(file) == "-":
            out = c.buckets.put(bucket, path, sys.stdin.buffer.read(), content_type=content_type)
        else:
            out = c.buckets.put(bucket, path, file, content_type=content_type)
    if as_json:
        print_json(out)
    else:
        console.print(f"put {bucket}/{out['path']} ({out['size']} bytes)")


@app.command()
def ls(
    bucket: BucketArg,
    prefix: Annotated[str, typer.Argument(help="Only paths that start with this.")] = "",
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """List the files of BUCKET whose path starts with PREFIX."""
    with client(connection(url, api_key, data_dir, app)) as c:
        data = c.buckets.ls(bucket, prefix)
    if as_json:
        print_json(data)
        return
    table = Table(title=plural(len(data), "file"))
    table.add_column("path")
    table.add_column("size", justify="right")
    table.add_column("modified", no_wrap=True)
    for f in data:
        table.add_row(f["path"], str(f["size"]), when(f.get("modified")))
    console.print(table)


@app.command()
def get(
    bucket: BucketArg,
    path: PathArg,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to this file instead of standard output.", dir_okay=False
        ),
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """Download PATH from BUCKET (streamed) to a file or standard output."""
    with client(connection(url, api_key, data_dir, app)) as c:
        if output is not None:
            size = c.buckets.download(bucket, path, output)
            console.print(f"wrote {output} ({size} bytes)")
        else:
            c.buckets.download(bucket, path, sys.stdout.buffer)
            sys.stdout.buffer.flush()
