"""``taskloom serve`` and ``taskloom worker``: run the platform."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from taskloom.config import Settings


def _settings(data_dir: Path | None, **kw: object) -> Settings:
    # imported here: pydantic-settings is slow to import and only these two commands need it
    from taskloom.config import Settings

    values: dict[str, Any] = {k: v for k, v in kw.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)


def serve(
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to bind.",
            envvar="TASKLOOM_HOST",
            show_envvar=True,
            show_default="127.0.0.1",
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            help="Port to bind.", envvar="TASKLOOM_PORT", show_envvar=True, show_default="8000"
        ),
    ] = None,
    grpc_port: Annotated[
        int | None,
        typer.Option(
            help="Port of the Clarifai door (gRPC; 0: any free port).",
            envvar="TASKLOOM_GRPC_PORT",
            show_envvar=True,
            show_default="50051",
        ),
    ] = None,
    grpc: Annotated[
        bool | None,
        typer.Option(
            "--grpc/--no-grpc",
            help="Serve the Clarifai door (gRPC) beside HTTP.",
            envvar="TASKLOOM_GRPC",
            show_envvar=True,
            show_default="--grpc",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Data folder (SQLite, blobs, credentials.json).",
            envvar="TASKLOOM_DATA_DIR",
            show_envvar=True,
            show_default="./taskloom-data",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="In-process worker threads.",
            envvar="TASKLOOM_WORKERS",
            show_envvar=True,
            show_default="2",
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option(help="Log level.", envvar="TASKLOOM_LOG_LEVEL", show_envvar=True)
    ] = "info",
) -> None:
    """Start the API server with in-process workers."""
    from rich.console import Console

    from taskloom.api.dialects.clarifai.server import GrpcAddressInUse
    from taskloom.cli.common import fail
    from taskloom.server import AddressInUse
    from taskloom.server import serve as run

    settings = _settings(
        data_dir, host=host, port=port, workers=workers, grpc=grpc, grpc_port=grpc_port
    )
    console = Console(stderr=True)

    def ready(platform: Any) -> None:
        creds = platform.credentials
        console.print(
            f"[bold]taskloom[/] on http://{settings.host}:{settings.port}  "
            f"data: {settings.data_dir.resolve()}  database: {platform.store.dialect}  "
            f"workers: {platform.workers}"
        )
        if platform.grpc_port is not None:
            console.print(
                f"Clarifai door (gRPC) on {settings.host}:{platform.grpc_port}  "
                f'(clarifai SDK: base_url="http://{settings.host}:{platform.grpc_port}")'
            )
        if creds:
            console.print(f"New data folder: admin API key [bold]{creds['api_key']}[/]")
            console.print(f"(saved to {settings.credentials_path}, mode 0600)")

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        run(settings, log_level=log_level, on_ready=ready)
    except AddressInUse as exc:  # checked before the data folder is touched
        fail(exc.strerror or str(exc))
    except GrpcAddressInUse as exc:
        fail(str(exc))


def worker(
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (SQLite, blobs).")] = None,
    concurrency: Annotated[int, typer.Option(help="Worker threads in this process.")] = 1,
    log_level: Annotated[str, typer.Option()] = "info",
) -> None:
    """Run workers in this process against the same database and blob store as the server."""
    from taskloom.server import work

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    work(_settings(data_dir), concurrency=concurrency)
