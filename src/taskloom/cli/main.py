"""The ``taskloom`` command: ``serve`` and ``worker`` run the platform; ``keys``,
``datasets`` and ``jobs`` talk to a running server (``--url``/``TASKLOOM_URL``,
``--api-key``/``TASKLOOM_API_KEY``)."""

from __future__ import annotations

from typing import Any

import typer
import typer.core

from taskloom.cli import buckets, datasets, jobs, keys, nclue, server

_display_type_rich = typer.core.TyperOption.display_type_rich


def _no_type_for_flags(self: typer.core.TyperOption, ctx: Any) -> str | None:
    # typer 0.29 prints "--flag <bool>" in help, as if a flag took a value: a flag has none
    if self.is_flag:
        return None
    return _display_type_rich(self, ctx)


typer.core.TyperOption.display_type_rich = _no_type_for_flags  # type: ignore[method-assign]

app = typer.Typer(
    help="taskloom: self-hosted AI data platform.",
    no_args_is_help=True,
    # paragraphs of help text reflow to the terminal width
    rich_markup_mode="markdown",
)

app.command()(server.serve)
app.command()(server.worker)
app.add_typer(keys.app, name="keys")
app.add_typer(datasets.app, name="datasets")
app.add_typer(jobs.app, name="jobs")
app.add_typer(buckets.app, name="buckets")
app.add_typer(nclue.app, name="nclue")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
