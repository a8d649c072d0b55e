"""``taskloom jobs``: submit, list, show, watch and cancel jobs."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
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
    err_console,
    fail,
    parse_json_option,
    plural,
    print_json,
    status_text,
    when,
)
from taskloom.jobs.states import JobStatus

app = typer.Typer(
    help="Submit, list, show, watch and cancel jobs.",
    no_args_is_help=True,
)

# Exit codes of `watch` and `submit --wait`, after the job's final status.
EXIT_FAILED = 1
EXIT_CANCELLED = 3
EXIT_TIMEOUT = 124

JobIdArg = Annotated[str, typer.Argument(help="The job's id.", show_default=False)]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        min=0,
        help=f"Stop watching after this many seconds (exit code {EXIT_TIMEOUT}); the job goes on.",
        show_default=False,
    ),
]


@app.command("list")
def list_jobs(
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Only jobs on this dataset.")
    ] = None,
    status: Annotated[
        list[JobStatus] | None,
        typer.Option("--status", help="Only jobs in this status (repeat for several)."),
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only jobs of this kind.")] = None,
    active_only: Annotated[
        bool,
        typer.Option("--active-only", help="Only registered, pending and running jobs."),
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", min=0, help="At most this many, newest first; 0: all.")
    ] = 50,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """List jobs, newest first."""
    with client(connection(url, api_key, data_dir, app)) as c:
        jobs = c.jobs.list(
            dataset=dataset,
            status=[s.value for s in status] if status else None,
            kind=kind,
            active_only=active_only,
            limit=limit or None,
        )
    if as_json:
        print_json([j.data for j in jobs])
        return
    table = Table(title=plural(len(jobs), "job"))
    table.add_column("id", no_wrap=True)
    table.add_column("kind")
    table.add_column("dataset")
    table.add_column("status")
    table.add_column("progress", justify="right")
    table.add_column("message", overflow="fold")
    table.add_column("created", no_wrap=True)
    for j in jobs:
        d = j.data
        table.add_row(
            d["id"],
            d["kind"],
            d.get("dataset") or "",
            status_text(d["status"]),
            f"{d.get('progress') or 0:.0f}%",
            escape(d.get("message") or ""),
            when(d["created_at"]),
        )
    console.print(table)


@app.command()
def show(
    job_id: JobIdArg,
    events: Annotated[bool, typer.Option("--events", help="Also list the job's events.")] = False,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """Show a job: status, progress, parameters, result or error."""
    with client(connection(url, api_key, data_dir, app)) as c:
        job = c.jobs.get(job_id)
        history = job.events() if events else None
    if as_json:
        print_json({**job.data, "events": history} if events else job.data)
        return
    console.print(_job_table(job.data))
    if history is not None:
        table = Table(title="events")
        for col in ("at", "type", "status", "progress", "message"):
            table.add_column(col)
        for e in history:
            pct = e.get("progress")
            table.add_row(
                when(e.get("at")),
                e.get("type") or "",
                e.get("status") or "",
                "" if pct is None else f"{pct:.0f}%",
                escape(e.get("message") or ""),
            )
        console.print(table)


def _job_table(d: dict[str, Any]) -> Table:
    table = Table(show_header=False, title=f"job {d['id']}")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("kind", d["kind"])
    table.add_row("dataset", d.get("dataset") or "")
    table.add_row("status", status_text(d["status"]))
    table.add_row("progress", f"{d.get('progress') or 0:.0f}%")
    table.add_row("message", escape(d.get("message") or ""))
    table.add_row("attempts", f"{d.get('attempts')} of {d.get('max_attempts')}")
    table.add_row("created", when(d.get("created_at")))
    table.add_row("started", when(d.get("started_at")))
    table.add_row("finished", when(d.get("finished_at")))
    took = _duration(d)
    if took:
        table.add_row("took", took)
    table.add_row("params", escape(json.dumps(d.get("params") or {})))
    if d.get("result") is not None:
        table.add_row("result", escape(json.dumps(d["result"], default=str)))
    if d.get("error"):
        table.add_row("error", f"[red]{escape(_error_text(d['error']))}[/]")
    return table


def _duration(d: dict[str, Any]) -> str:
    try:
        start = datetime.fromisoformat(str(d["started_at"]))
        end = datetime.fromisoformat(str(d["finished_at"]))
    except (KeyError, TypeError, ValueError):
        return ""
    return f"{(end - start).total_seconds():.2f}s"


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        code, msg = error.get("code"), error.get("message")
        return f"{code}: {msg}" if code else str(msg)
    return str(error)


def _follow(job: Any, timeout: float | None) -> None:
    """Follow a job to its end with a progress bar; exit with a code after its status."""
    try:
        job.wait(timeout=timeout, progress=True, raise_on_failure=False)
    except TimeoutError:
        fail(
            f"job {job.id} is still {job.status} after {timeout:g}s; it goes on "
            f"(`taskloom jobs watch {job.id}` to follow it again)",
            EXIT_TIMEOUT,
        )
    except KeyboardInterrupt:
        err_console.print(
            f"[yellow]stopped watching;[/] job {job.id} goes on "
            f"(cancel it with `taskloom jobs cancel {job.id}`)"
        )
        raise typer.Exit(130) from None
    d = job.data
    took = _duration(d)
    took = f" in {took}" if took else ""
    if d["status"] == "completed":
        result = json.dumps(d.get("result"), default=str)
        console.print(f"Job {d['id']} [green]completed[/]{took}: {escape(result)}")
        return
    if d["status"] == "cancelled":
        fail(f"job {d['id']} was cancelled{took}", EXIT_CANCELLED)
    fail(f"job {d['id']} failed{took}: {_error_text(d.get('error'))}", EXIT_FAILED)


@app.command()
def watch(
    job_id: JobIdArg,
    timeout: TimeoutOpt = None,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """Follow a job with a progress bar until it ends.

    Exit code: 0 when the job completed, 1 when it failed, 3 when it was cancelled,
    124 when --timeout passed first.
    """
    with client(connection(url, api_key, data_dir, app)) as c:
        _follow(c.jobs.get(job_id), timeout)


@app.command()
def cancel(
    job_id: JobIdArg,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until a running job has stopped.")
    ] = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """Cancel a job. A queued job is cancelled at once; a running one is asked to stop and
    stops at its next check."""
    with client(connection(url, api_key, data_dir, app)) as c:
        job = c.jobs.get(job_id).cancel()
        if wait and not job.done:
            job.wait(raise_on_failure=False)
    if job.status == "cancelled":
        console.print(f"Job {job.id} [yellow]cancelled[/].")
    elif job.done:
        console.print(f"Job {job.id} ended {status_text(job.status)} before it could stop.")
    else:
        console.print(f"Cancel requested: job {job.id} stops at its next check.")


@app.command()
def submit(
    kind: Annotated[
        str, typer.Argument(help="The job kind (see `taskloom jobs kinds`).", show_default=False)
    ],
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="The dataset the job works on.")
    ] = None,
    params: Annotated[
        str | None,
        typer.Option("--params", help="The kind's parameters as JSON, e.g. '{\"seconds\": 5}'."),
    ] = None,
    max_attempts: Annotated[
        int | None, typer.Option("--max-attempts", min=1, max=100, help="Tries before failing.")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key", help="Submitting again with the same key returns the same job."
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Follow the job until it ends; exit code as for `jobs watch`."),
    ] = False,
    timeout: TimeoutOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the job as JSON (its final state with --wait).")
    ] = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """Submit a job."""
    body = parse_json_option(params, "--params")
    with client(connection(url, api_key, data_dir, app)) as c:
        job = c.jobs.submit(
            kind,
            dataset=dataset,
            params=body,
            idempotency_key=idempotency_key,
            max_attempts=max_attempts,
        )
        if not as_json:
            console.print(f"Submitted {kind} job [bold]{job.id}[/] ({status_text(job.status)}).")
        if wait:
            if as_json:
                with contextlib.suppress(TimeoutError):  # the JSON says where it is
                    job.wait(timeout=timeout, raise_on_failure=False)
            else:
                _follow(job, timeout)
    if as_json:
        print_json(job.data)
        if wait:
            code = {"completed": 0, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}
            raise typer.Exit(code.get(job.status, EXIT_TIMEOUT))


@app.command()
def kinds(
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """List the job kinds this server runs."""
    with client(connection(url, api_key, data_dir, app)) as c:
        data = c.jobs.kinds()
    if as_json:
        print_json(data)
        return
    table = Table(title=plural(len(data), "job kind"))
    table.add_column("kind", no_wrap=True)
    table.add_column("description")
    for k in data:
        table.add_row(k.get("name", ""), escape(k.get("description") or ""))
    console.print(table)
