"""Job kinds: a name, a pydantic params model and a ``run(ctx, params)`` function.

The registry knows no kind by itself: the composition root (``taskloom.kinds.default_registry``,
called by ``runtime.Platform``) registers the built-in ones, so the engine never imports the
layers above it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from taskloom.errors import Invalid
from taskloom.validation import parse_model

if TYPE_CHECKING:
    from taskloom.jobs.context import JobContext

RunFn = Callable[["JobContext", Any], dict[str, Any] | None]
# (validated params, the dataset's field list) -> None, or raises Invalid: checked at submit
CheckFn = Callable[[Any, Mapping[str, Any]], None]


@dataclass(frozen=True)
class JobKind:
    name: str
    params: type[BaseModel]
    run: RunFn
    description: str = ""
    needs_dataset: bool = False
    # checks the params against the dataset's fields when the job is submitted (422 then,
    # rather than a job that fails or does nothing later)
    check: CheckFn | None = None

    def validate(self, params: Any) -> BaseModel:
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise Invalid("params must be an object", code="invalid_params", field="params")
        return parse_model(self.params, params, prefix="params", code="invalid_params")


class Registry:
    """The job kinds a process knows. Workers only claim kinds they have."""

    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}

    def register(self, kind: JobKind) -> JobKind:
        """Add a kind; a second kind of the same name is a programming error."""
        if kind.name in self._kinds:
            raise ValueError(f"job kind {kind.name!r} is registered twice")
        self._kinds[kind.name] = kind
        return kind

    def kind(
        self,
        name: str,
        params: type[BaseModel],
        *,
        description: str = "",
        needs_dataset: bool = False,
    ) -> Callable[[RunFn], RunFn]:
        """Decorator form of :meth:`register`."""

        def deco(fn: RunFn) -> RunFn:
            self.register(
                JobKind(name, params, fn, description or (fn.__doc__ or "").strip(), needs_dataset)
            )
            return fn

        return deco

    def get(self, name: Any) -> JobKind:
        kind = self._kinds.get(name) if isinstance(name, str) else None
        if kind is None:
            raise Invalid(
                f"unknown job kind {name!r}; known: {', '.join(sorted(self._kinds))}",
                code="unknown_job_kind",
                field="kind",
            )
        return kind

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "name": k.name,
                "description": k.description,
                "needs_dataset": k.needs_dataset,
                "params_schema": k.params.model_json_schema(),
            }
            for k in sorted(self._kinds.values(), key=lambda k: k.name)
        ]
