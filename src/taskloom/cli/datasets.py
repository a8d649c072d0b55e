"""``taskloom datasets``: list, create, inspect and delete datasets; import and export files."""

from __future__ import annotations

from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from taskloom.cli.common import (
    DEFAULT_DATA_DIR,
    DEFAULT_URL,
    ApiKeyOpt,
    AppOpt,
    CliError,
    DataDirOpt,
    JsonOpt,
    UrlOpt,
    client,
    connection,
    console,
    err_console,
    parse_json_option,
    plural,
    print_json,
    warn,
    when,
)
from taskloom.cli.formats import Record, Source, Writer, detect_format
from taskloom.errors import Invalid, NotFound

app = typer.Typer(
    help="Datasets: list, create, delete; import and export documents.",
    no_args_is_help=True,
)


class Format(StrEnum):
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"


NameArg = Annotated[str, typer.Argument(help="The dataset's name.", show_default=False)]
FormatOpt = Annotated[
    Format | None,
    typer.Option("--format", help="File format. Default: from the file's extension."),
]


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[docs]} documents"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        # a log file gets the final line only, not a redraw every tick
        disable=not err_console.is_terminal,
    )


@app.command("list")
def list_datasets(
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """List the datasets of the app with their document counts."""
    with client(connection(url, api_key, data_dir, app)) as c:
        data = c.list_datasets()
    if as_json:
        print_json(data)
        return
    table = Table(title=plural(len(data), "dataset"))
    table.add_column("name", no_wrap=True)
    table.add_column("documents", justify="right")
    table.add_column("fields")
    table.add_column("created", no_wrap=True)
    table.add_column("updated", no_wrap=True)
    for d in data:
        fields = ", ".join(sorted(d.get("fields") or {}))
        table.add_row(
            d["name"],
            str(d.get("document_count", "")),
            fields,
            when(d["created_at"]),
            when(d["updated_at"]),
        )
    console.print(table)


@app.command()
def create(
    name: NameArg,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """Create an empty dataset."""
    with client(connection(url, api_key, data_dir, app)) as c:
        c.create_dataset(name)
        info = c.dataset(name).info()
    if as_json:
        print_json(info)
    else:
        console.print(f"Created dataset [bold]{name}[/].")


@app.command()
def show(
    name: NameArg,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """Show a dataset: its document count and the fields it has seen, with their types."""
    with client(connection(url, api_key, data_dir, app)) as c:
        info = c.dataset(name).info()
    if as_json:
        print_json(info)
        return
    console.print(
        f"[bold]{info['name']}[/]: {info.get('document_count', 0)} documents, "
        f"created {when(info['created_at'])}, updated {when(info['updated_at'])}"
    )
    table = Table()
    table.add_column("field")
    table.add_column("type")
    for field, spec in sorted((info.get("fields") or {}).items()):
        kind = spec.get("type", "")
        if kind == "vector":
            kind = f"vector[{spec.get('dim')}]"
        table.add_row(field, kind)
    console.print(table)


@app.command()
def delete(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """Delete a dataset and all its documents."""
    if not yes:
        typer.confirm(f"Delete dataset {name!r} and all its documents?", abort=True)
    with client(connection(url, api_key, data_dir, app)) as c:
        c.delete_dataset(name)
    console.print(f"Deleted dataset [bold]{name}[/].")


@app.command("import")
def import_file(
    name: NameArg,
    file: Annotated[
        Path,
        typer.Argument(
            help="A .jsonl, .csv or .parquet file.",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    fmt: FormatOpt = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=10_000, help="Documents per request.")
    ] = 1000,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Import the valid documents and list the invalid ones, instead of stopping "
            "at the first batch that has one.",
        ),
    ] = False,
    infer_types: Annotated[
        bool,
        typer.Option(
            "--infer-types/--no-infer-types",
            help="CSV only: read true/false as booleans, 42 and 1.5e3 as numbers, [..] and "
            "{..} as JSON, and leave empty cells out. Off: every cell is text.",
        ),
    ] = True,
    create: Annotated[
        bool, typer.Option("--create", help="Create the dataset if it does not exist.")
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite/--no-overwrite",
            help="Replace documents whose _id exists already. --no-overwrite: such a "
            "document is invalid (skipped with --skip-invalid).",
        ),
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result (inserted, failed) as JSON.")
    ] = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """Import documents from a file, in batches, with a progress bar.

    **JSON Lines** (`.jsonl`, `.ndjson`): one JSON object per line. Documents without an
    `_id` get one.

    **CSV** (`.csv`): a header row names the fields; a column `a.b` is the field `b` inside
    the object `a`. The `_id` column is always text. Columns ending in `_vector_` hold JSON
    lists of numbers (`[0.1, 0.2]`). With `--infer-types` (the default) `true`/`false`
    become booleans, integers and decimals become numbers (text with leading zeros, like
    `007`, stays text), cells starting with `[` or `{` that are valid JSON become lists or
    objects, and empty cells are left out of the document. With `--no-infer-types` every
    other cell is kept as text.

    **Parquet** (`.parquet`): columns are fields; list columns become lists (vectors for
    `_vector_` columns), structs become objects, dates become ISO text and null cells are
    left out (pyarrow, which reads them, comes with taskloom).

    Each batch is written whole or not at all. Without `--skip-invalid` the import stops
    at the first invalid document (reported with its line or row); batches before it stay
    written. With `--skip-invalid` the valid documents are written and the invalid ones
    listed; the exit code is still 0.
    """
    conn = connection(url, api_key, data_dir, app)
    with client(conn) as c:
        fmt_name = fmt.value if fmt else detect_format(file, None)
        source = Source(file, fmt_name, infer_types=infer_types)
        ds = c.dataset(name)
        try:
            ds.info()
        except NotFound as exc:
            if exc.code != "dataset_not_found":
                raise
            if not create:
                raise CliError(
                    f"dataset {name!r} not found; add --create to create it "
                    f"(taskloom datasets import {name} {file} --create)"
                ) from exc
            ds = c.create_dataset(name)
            err_console.print(f"Created dataset [bold]{name}[/].")
        inserted, failed = _import(ds, source, batch_size, skip_invalid, overwrite)

    if as_json:
        print_json({"inserted": inserted, "failed": failed})
        return
    console.print(f"Imported [bold]{plural(inserted, 'document')}[/] from {file.name} into {name}.")
    if failed:
        warn(f"{plural(len(failed), 'document')} could not be imported:")
        table = Table()
        for col in ("where", "_id", "field", "reason"):
            table.add_column(col)
        for f in failed[:20]:
            table.add_row(f["where"], str(f.get("_id") or ""), f.get("field") or "", f["message"])
        err_console.print(table)
        if len(failed) > 20:
            err_console.print(f"… and {len(failed) - 20} more")


def _import(
    ds: Any, source: Source, batch_size: int, skip_invalid: bool, overwrite: bool
) -> tuple[int, list[dict[str, Any]]]:
    inserted = 0
    failed: list[dict[str, Any]] = []
    name = source.path.name
    with _progress() as progress:
        task = progress.add_task(f"importing {name}", total=source.total or None, docs=0)
        records = source.records(lambda n: progress.advance(task, n))
        while chunk := list(islice(records, batch_size)):
            docs: list[dict[str, Any]] = []
            where: list[str] = []
            for r in chunk:
                if r.error is None:
                    assert r.doc is not None
                    docs.append(r.doc)
                    where.append(r.where)
                elif skip_invalid:
                    failed.append(_unreadable(r))
                else:
                    raise CliError(
                        f"{name} {r.where}: {r.error}. {_stopped(inserted)}"
                        "; --skip-invalid imports the rest"
                    )
            if not docs:
                continue
            try:
                res = ds.insert(
                    docs, batch_size=batch_size, skip_invalid=skip_invalid, overwrite=overwrite
                )
            except Invalid as exc:
                bad = exc.details.get("failed")
                if not bad:
                    raise
                first = bad[0]
                field = f" {first['field']}:" if first.get("field") else ""
                raise CliError(
                    f"{name} {where[first['index']]}:{field} {first['message']}. "
                    f"{len(bad)} invalid in a batch of {len(docs)}, which was not written. "
                    f"{_stopped(inserted)}; --skip-invalid imports the valid documents"
                ) from None
            inserted += res.inserted
            for f in res.failed:
                failed.append({**f, "where": where[f["index"]]})
            progress.update(task, docs=inserted)
    return inserted, failed


def _stopped(inserted: int) -> str:
    return f"Import stopped; documents written before it: {inserted}"


def _unreadable(r: Record) -> dict[str, Any]:
    return {"where": r.where, "_id": None, "field": None, "code": "unreadable", "message": r.error}


@app.command()
def export(
    name: NameArg,
    file: Annotated[
        Path,
        typer.Argument(
            help="Where to write: .jsonl (or any other name), .csv or .parquet; "
            "- writes JSON Lines to standard output.",
            dir_okay=False,
            show_default=False,
        ),
    ],
    fmt: FormatOpt = None,
    filter_json: Annotated[
        str | None,
        typer.Option(
            "--filter",
            help='Only documents matching this filter (JSON), e.g. \'{"label": "cat"}\'.',
            show_default=False,
        ),
    ] = None,
    vectors: Annotated[
        bool, typer.Option("--vectors/--no-vectors", help="Include the `_vector_` fields.")
    ] = True,
    select: Annotated[
        str | None,
        typer.Option(
            "--select",
            help="Only these fields (comma-separated, dotted paths allowed); _id is always "
            "included.",
            show_default=False,
        ),
    ] = None,
    page_size: Annotated[
        int, typer.Option("--page-size", min=1, max=10_000, help="Documents per request.")
    ] = 500,
    url: UrlOpt = DEFAULT_URL,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    app: AppOpt = None,
) -> None:
    """Export a dataset's documents to a file, page by page, with a progress bar.

    The format follows the file's extension: `.csv`, `.parquet`, anything else JSON Lines
    (or give `--format`). JSON Lines keeps every value exactly. CSV writes nested objects
    as dotted columns and lists (vectors too) as JSON text, the way `datasets import`
    reads them back. The file appears only once the export has finished.
    """
    filter_ = parse_json_option(filter_json, "--filter")
    fields = [f.strip() for f in select.split(",") if f.strip()] if select else None
    fmt_name = fmt.value if fmt else detect_format(file, None, default="jsonl")
    conn = connection(url, api_key, data_dir, app)
    with client(conn) as c:
        ds = c.dataset(name)
        total = ds.count(filter_)  # also says early if the dataset or the filter is wrong
        writer = Writer(file, fmt_name)
        try:
            with _progress() as progress:
                task = progress.add_task(f"exporting {name}", total=total, docs=0)
                for doc in ds.iter(
                    filter=filter_, page_size=page_size, include_vector=vectors, select=fields
                ):
                    writer.write(doc)
                    progress.update(task, advance=1, docs=writer.count)
            writer.close()
        except BaseException:
            writer.abort()
            raise
    if str(file) == "-":  # standard output holds the documents; the summary goes aside
        err_console.print(f"Exported [bold]{plural(writer.count, 'document')}[/] from {name}.")
    else:
        console.print(
            f"Exported [bold]{plural(writer.count, 'document')}[/] from {name} to {file}."
        )
