"""The encode job kinds: their params, and adapters into ``services.encoding``.

=====================  ==================  =============================================
kind                   input               output field
=====================  ==================  =============================================
``encode_numeric``     objects of numbers  ``{field}{vector_name}`` (``_vector_``)
``encode_categories``  lists of labels     ``{field}_vector_``
``encode_text``        text                ``{field}_{alias}_vector_`` (MiniLM, 384-d)
``encode_text_clip``   text                ``{field}_{alias}_vector_`` (CLIP text)
``encode_image_clip``  image reference     ``{field}_{alias}_vector_`` (CLIP image)
=====================  ==================  =============================================

What the runs do (fitting, modes, refresh, progress, results) is described in
:mod:`taskloom.services.encoding`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from taskloom.errors import JobFailed
from taskloom.jobs.context import JobContext
from taskloom.jobs.registry import CheckFn, JobKind, Registry
from taskloom.kinds.checks import require_field
from taskloom.services.container import Services
from taskloom.store.filters import VECTOR_SUFFIX

# -- params -----------------------------------------------------------------------------------


def _check_field(path: str) -> str:
    parts = path.split(".")
    if any(not p or p.startswith("$") for p in parts):
        raise ValueError("a field path is names joined by '.', none empty or starting with '$'")
    if parts[0].endswith(VECTOR_SUFFIX):
        raise ValueError("this is a vector field; encode a field of numbers, labels or text")
    return path


FieldPath = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_check_field)]
Alias = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EncodeNumericParams(_Params):
    fields: list[FieldPath] = Field(
        min_length=1, max_length=100, description="Fields holding objects of numbers."
    )
    vector_name: str = Field(
        default=VECTOR_SUFFIX,
        pattern=r"^[A-Za-z0-9_\-]*_vector_$",
        max_length=64,
        description="Suffix of the output field: {field}{vector_name}; ends in _vector_.",
    )
    scaling: Literal["none", "standard", "minmax"] = Field(
        default="none", description="none, standard (zero mean, unit variance) or minmax."
    )
    refresh: bool = Field(default=False, description="Encode every document, not only new ones.")


class EncodeCategoriesParams(_Params):
    fields: list[FieldPath] = Field(
        min_length=1, max_length=100, description="Fields holding lists of categories."
    )
    refresh: bool = Field(default=False, description="Encode every document, not only new ones.")


class EncodeTextParams(_Params):
    field: FieldPath = Field(description="The text field.")
    alias: Alias = Field(default="default", description="Names the output: {field}_{alias}_vector_")
    refresh: bool = Field(default=False, description="Encode every document, not only new ones.")


class EncodeTextClipParams(EncodeTextParams):
    pass


class EncodeImageClipParams(EncodeTextParams):
    field: FieldPath = Field(
        description="The image field: an http(s) URL or a path inside the media folder."
    )


def _dataset(ctx: JobContext[Services]) -> str:
    if ctx.dataset is None:
        raise JobFailed("encode jobs run on a dataset", code="dataset_required")
    return ctx.dataset


def run_encode_numeric(ctx: JobContext[Services], params: EncodeNumericParams) -> dict[str, Any]:
    """Objects of numbers -> one vector each; columns = the union of keys, first seen first."""
    return ctx.services.encoding.numeric(
        ctx.scope,
        _dataset(ctx),
        ctx,
        fields=params.fields,
        vector_name=params.vector_name,
        scaling=params.scaling,
        refresh=params.refresh,
    )


def run_encode_categories(
    ctx: JobContext[Services], params: EncodeCategoriesParams
) -> dict[str, Any]:
    """Lists of categories -> multi-hot vectors over every category, first seen first."""
    return ctx.services.encoding.categories(
        ctx.scope, _dataset(ctx), ctx, fields=params.fields, refresh=params.refresh
    )


def run_encode_text(ctx: JobContext[Services], params: EncodeTextParams) -> dict[str, Any]:
    """Text -> sentence embedding (all-MiniLM-L6-v2 int8 ONNX by default; 384-d, unit length)."""
    return ctx.services.encoding.text(
        ctx.scope,
        _dataset(ctx),
        ctx,
        field=params.field,
        alias=params.alias,
        refresh=params.refresh,
    )


def run_encode_text_clip(ctx: JobContext[Services], params: EncodeTextClipParams) -> dict[str, Any]:
    """Text -> CLIP text embedding (unit length), comparable with encode_image_clip's."""
    return ctx.services.encoding.text_clip(
        ctx.scope,
        _dataset(ctx),
        ctx,
        field=params.field,
        alias=params.alias,
        refresh=params.refresh,
    )


def run_encode_image_clip(
    ctx: JobContext[Services], params: EncodeImageClipParams
) -> dict[str, Any]:
    """Image -> CLIP image embedding (unit length), comparable with encode_text_clip's.

    The field holds an http(s) URL (fetched only from public addresses) or a path inside the
    media folder (``TASKLOOM_MEDIA_DIR``, default ``data_dir/media``); see
    ``taskloom.services.media``; ``blob://<path>`` references read from the job's app's blob
    store. A document whose image cannot be read is reported in ``failures``; the job fails
    only when no image could be read at all.
    """
    return ctx.services.encoding.image_clip(
        ctx.scope,
        _dataset(ctx),
        ctx,
        field=params.field,
        alias=params.alias,
        refresh=params.refresh,
    )


def _check_numeric(params: EncodeNumericParams, fields: Mapping[str, Any]) -> None:
    for i, path in enumerate(params.fields):
        require_field(
            fields,
            path,
            param=f"params.fields.{i}",
            types={"object"},
            what="encode_numeric (objects of numbers)",
        )


def _check_categories(params: EncodeCategoriesParams, fields: Mapping[str, Any]) -> None:
    for i, path in enumerate(params.fields):
        require_field(
            fields,
            path,
            param=f"params.fields.{i}",
            types={"array", "text"},
            what="encode_categories (lists of labels, or one label)",
        )


def _check_text(params: EncodeTextParams, fields: Mapping[str, Any]) -> None:
    require_field(fields, params.field, param="params.field", types={"text"}, what="text")


def register(registry: Registry) -> None:
    kinds: list[tuple[str, type[BaseModel], Any, str, CheckFn]] = [
        (
            "encode_numeric",
            EncodeNumericParams,
            run_encode_numeric,
            run_encode_numeric.__doc__ or "",
            _check_numeric,
        ),
        (
            "encode_categories",
            EncodeCategoriesParams,
            run_encode_categories,
            run_encode_categories.__doc__ or "",
            _check_categories,
        ),
        (
            "encode_text",
            EncodeTextParams,
            run_encode_text,
            run_encode_text.__doc__ or "",
            _check_text,
        ),
        (
            "encode_text_clip",
            EncodeTextClipParams,
            run_encode_text_clip,
            run_encode_text_clip.__doc__ or "",
            _check_text,
        ),
        (
            "encode_image_clip",
            EncodeImageClipParams,
            run_encode_image_clip,
            (run_encode_image_clip.__doc__ or "").split("\n")[0],
            _check_text,
        ),
    ]
    for name, params, fn, text, check in kinds:
        registry.register(JobKind(name, params, fn, text.strip(), needs_dataset=True, check=check))
