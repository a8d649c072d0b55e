"""What every command that talks to a server shares: connection options, the client, errors
and output (rich tables on the terminal, ``--json`` for scripts)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from taskloom.errors import TaskloomError, Unauthorized, Unavailable

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_DATA_DIR = Path("./taskloom-data")


# Piped or captured output is not squeezed to 80 columns: a table there keeps whole ids.
def _width() -> int | None:
    """The terminal's width on a terminal; else ``COLUMNS`` when set; else 200, so that
    output captured in a file keeps whole ids."""
    if sys.stdout.isatty():
        return None  # rich asks the terminal (and follows COLUMNS)
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else 200


console = Console(highlight=False, width=_width())
err_console = Console(stderr=True, highlight=False)

# -- options shared by the commands that talk to a server ------------------------------------

_CONN = "Connection"

UrlOpt = Annotated[
    str,
    typer.Option(
        "--url",
        envvar="TASKLOOM_URL",
        help="The taskloom server.",
        rich_help_panel=_CONN,
        show_default=True,
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="TASKLOOM_API_KEY",
        help="API key. When none is given here or in TASKLOOM_API_KEY, the key in "
        "DATA_DIR/credentials.json (written by `taskloom serve` on a new data folder) is used "
        "if that file exists.",
        rich_help_panel=_CONN,
        show_default=False,
    ),
]
DataDirOpt = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="TASKLOOM_DATA_DIR",
        help="Data folder whose credentials.json holds the fallback API key.",
        rich_help_panel=_CONN,
    ),
]
AppOpt = Annotated[
    str | None,
    typer.Option(
        "--app",
        envvar="TASKLOOM_APP",
        help="Act in this app (id). Default: the key's app, or your first app.",
        rich_help_panel=_CONN,
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@dataclass(frozen=True)
class Connection:
    """Where a command connects and with which key."""

    url: str
    api_key: str | None
    data_dir: Path
    app: str | None = None

    def resolved_key(self) -> tuple[str | None, str]:
        """The API key to use and where it came from: the SDK's search
        (``taskloom.sdk.credentials``), so that both find the same key."""
        from taskloom.sdk.credentials import find_api_key

        try:
            found = find_api_key(self.api_key, self.data_dir, given_as="--api-key")
        except TaskloomError as exc:
            fail(exc.message)
        return found.key, found.source


def connection(
    url: str = DEFAULT_URL,
    api_key: str | None = None,
    data_dir: Path = DEFAULT_DATA_DIR,
    app: str | None = None,
) -> Connection:
    return Connection(url=url, api_key=api_key, data_dir=data_dir, app=app)


# -- errors ----------------------------------------------------------------------------------


class CliError(Exception):
    """A user error found by the CLI itself; printed as one line, exit code 1."""


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` in red on stderr and exit."""
    err_console.print(f"[bold red]error:[/] [red]{escape(message)}[/]", soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def describe(exc: TaskloomError) -> str:
    """One line for an SDK error: the message and its code."""
    msg = exc.message
    if exc.code and exc.code not in msg:
        msg = f"{msg} ({exc.code})"
    return msg


@contextmanager
def errors(conn: Connection | None = None, key_source: str = "") -> Iterator[None]:
    """Turn user errors into one red line and exit code 1 instead of a traceback."""
    import httpx

    try:
        yield
    except TaskloomError as exc:
        msg = describe(exc)
        if isinstance(exc, Unavailable) and conn is not None and "cannot reach" in exc.message:
            msg = (
                f"cannot reach taskloom at {conn.url} ({_root_cause(exc)}); "
                "is `taskloom serve` running there? Set --url or TASKLOOM_URL"
            )
        elif isinstance(exc, Unauthorized) and not key_source:
            # the SDK's message says where it looked (or where the key came from)
            msg += (
                "; give --api-key, set TASKLOOM_API_KEY, or point --data-dir at the "
                "server's data folder"
            )
        fail(msg)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        where = f" with {conn.url}" if conn is not None else ""
        fail(f"network error{where}: {exc}")
    except CliError as exc:
        fail(str(exc))
    except OSError as exc:  # a file that cannot be read or written
        fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc) or type(exc).__name__


@contextmanager
def client(conn: Connection) -> Iterator[Any]:
    """A connected ``taskloom.Client``; SDK errors inside the block end the command cleanly."""
    from taskloom.sdk.client import Client

    key, source = conn.resolved_key()
    with errors(conn, source):
        # Fewer retries than the SDK's default: a person is waiting for the answer.
        c = Client(url=conn.url, api_key=key, data_dir=conn.data_dir, app_id=conn.app, retries=2)
        try:
            yield c
        finally:
            c.close()


# -- input and output ------------------------------------------------------------------------


def parse_json_option(value: str | None, option: str, *, want: type = dict) -> Any:
    """A JSON option value (``--params``, ``--filter``); a usage error when it is not valid."""
    if value is None:
        return None
    try:
        out = json.loads(value)
    except ValueError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None
    if not isinstance(out, want):
        raise typer.BadParameter(f"a JSON {want.__name__} is expected", param_hint=option)
    return out


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def when(value: Any) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    if not value:
        return ""
    return str(value)[:19].replace("T", " ")


STATUS_STYLE = {
    "registered": "dim",
    "pending": "blue",
    "in_progress": "cyan",
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
}


def status_text(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"
