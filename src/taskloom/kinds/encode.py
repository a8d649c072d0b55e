"""The encode job kinds: turn a field of every document into a vector field.

=====================  ==================  =============================================
kind                   input               output field
=====================  ==================  =============================================
``encode_numeric``     objects of numbers  ``{field}{vector_name}`` (``_vector_``)
``encode_categories``  lists of labels     ``{field}_vector_``
``encode_text``        text                ``{field}_{alias}_vector_`` (MiniLM, 384-d)
``encode_text_clip``   text                ``{field}_{alias}_vector_`` (CLIP text)
``encode_image_clip``  image reference     ``{field}_{alias}_vector_`` (CLIP image)
=====================  ==================  =============================================

A nested input field (``meta.title``) names its output with ``_`` for ``.``
(``meta_title_default_vector_``): vector fields are top-level.

``refresh=false`` encodes only the documents that lack the output vector; ``refresh=true``
encodes all of them again. Writing is a partial update of the output field, so a retried
job overwrites what its earlier attempt wrote and never duplicates it.

The numeric and categories encoders are fitted on every document of the dataset (their
columns are the union over all documents, first seen first, documents in insertion order),
also with ``refresh=false``. Numeric columns follow the dataset's recorded first-seen order
of ``field.key`` paths (``seq`` in its field list), because PostgreSQL's jsonb returns an
object's keys reordered; lists keep their order on both databases. What they learnt is
recorded in the ``encoders`` table, before any vector is written. When a later run learns
something else (a new key or category, other scaling statistics), the vectors already
written are in another space (or of another length), so that run re-encodes every document
(``mode: "all"`` in the result, with the reason), whatever ``refresh`` says. The same holds
for the model kinds when the model changed. When the output field's length changes, its old
vectors are removed first.

Every kind pages through the dataset with cursors, reports progress per page, stops between
pages when cancelled, and returns ``{"encoded", "skipped", "failed", "outputs": [...]}``,
one entry per output field with its mode, dimension and columns (or categories, or model).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from taskloom.errors import JobFailed, TaskloomError
from taskloom.jobs.context import JobContext
from taskloom.jobs.registry import JobKind, Registry
from taskloom.ml.encoders.base import ModelEncoder, NotFitted, TabularEncoder
from taskloom.ml.encoders.categories import CategoriesEncoder
from taskloom.ml.encoders.clip import ClipImageEncoder, ClipTextEncoder
from taskloom.ml.encoders.numeric import NumericEncoder
from taskloom.ml.encoders.text_onnx import MODEL_ID
from taskloom.services.container import Services
from taskloom.services.encoders import EncoderService, encoder_service
from taskloom.store.filters import VECTOR_SUFFIX

FIT_PAGE = 1000  # documents per page when fitting / transforming tabular fields
TEXT_PAGE = 1024  # texts per page (sorted by length inside a page: bigger pads less)
IMAGE_PAGE = 64  # images per page (decoded images are large)
MAX_FAILURES_REPORTED = 100


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


def _flat(field: str) -> str:
    return field.replace(".", "_")


def model_output(field: str, alias: str) -> str:
    return f"{_flat(field)}_{alias}{VECTOR_SUFFIX}"


# -- shared machinery -------------------------------------------------------------------------


def _value(doc: dict[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


class _Run:
    """One encode job's view of the dataset: paging, writing, progress."""

    def __init__(self, ctx: JobContext[Services]) -> None:
        if ctx.dataset is None:
            raise JobFailed("encode jobs run on a dataset", code="dataset_required")
        self.ctx = ctx
        self.scope = ctx.scope
        self.dataset: str = ctx.dataset
        self.docs = ctx.services.documents
        self.encoders: EncoderService = encoder_service(ctx.services)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="taskloom-encode")
        self._pending: Any = None
        self._last_progress = 0.0

    def count(self, flt: dict[str, Any]) -> int:
        return int(self.docs.count(self.scope, self.dataset, flt))

    def pages(self, flt: dict[str, Any], field: str, page_size: int) -> Iterator[list[dict]]:
        cursor = None
        while True:
            self.ctx.check_cancelled()
            page = self.docs.list(
                self.scope,
                self.dataset,
                filter=flt,
                page_size=page_size,
                cursor=cursor,
                include_vector=False,
                select_fields=[field],
            )
            if page["documents"]:
                yield page["documents"]
            cursor = page["cursor"]
            if not cursor:
                return

    def write(self, output: str, ids: Sequence[str], matrix: np.ndarray) -> None:
        """Write vectors in the background while the next page is encoded; at most one
        write is in flight (its errors surface at the next write or at ``flush``)."""
        self.flush()
        rows = [{"_id": i, output: matrix[j]} for j, i in enumerate(ids)]
        self._pending = self._writer.submit(self._write_now, rows)

    def _write_now(self, rows: list[dict[str, Any]]) -> None:
        step = self.docs.max_batch
        for start in range(0, len(rows), step):
            self.docs.update(self.scope, self.dataset, rows[start : start + step])

    def flush(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        """Wait for a write still in flight. Only reached with one when the job is already
        failing (or cancelled): its own error must not replace that one, so it is logged."""
        try:
            self.flush()
        except Exception as exc:
            self.ctx.log(f"a background write failed while stopping: {exc!r}")
        finally:
            self._writer.shutdown(wait=True)

    def schema_dim(self, field: str) -> int | None:
        spec = self.ctx.services.datasets.schema(self.scope, self.dataset).get(field)
        return spec.get("dim") if isinstance(spec, dict) else None

    def decide(
        self, refresh: bool, output: str, kind: str, state: dict[str, Any], dim: int
    ) -> tuple[str, str]:
        """``("all" | "missing", reason)`` and clear the output when its length changes."""
        rec = self.encoders.get(self.scope, self.dataset, output)
        if refresh:
            mode, reason = "all", "refresh=true"
        elif rec is None:
            mode, reason = "missing", "first run"
        elif rec["kind"] != kind:
            mode, reason = "all", f"{output} was written by {rec['kind']} before"
        elif rec["state"] != state:
            mode, reason = "all", "the encoder learnt something new; all vectors are redone"
        else:
            mode, reason = "missing", "only documents without the output"
        old_dim = self.schema_dim(output)
        if old_dim is not None and old_dim != dim:
            if mode == "missing":
                raise JobFailed(
                    f"{output} already holds {old_dim}-dimensional vectors that no encoder "
                    f"recorded; this one makes {dim}: run with refresh=true to replace them",
                    code="output_dimension_mismatch",
                )
            self.encoders.drop_vector_field(self.scope, self.dataset, output)
        return mode, reason

    @staticmethod
    def todo(field: str, output: str, mode: str) -> dict[str, Any]:
        flt: dict[str, Any] = {field: {"$exists": True}}
        if mode == "missing":
            flt[output] = {"$exists": False}
        return flt

    def progress(self, pct: float, message: str) -> None:
        self.ctx.progress(min(100.0, max(0.0, pct)), message)
        self._last_progress = time.monotonic()

    def ticker(self, done: int, page: int, n_items: int, total: int) -> Callable[[int], None]:
        """``on_batch`` for a model call over one page: stops a cancelled job between
        batches and reports progress inside long pages (at most twice a second)."""
        items = 0

        def tick(k: int) -> None:
            nonlocal items
            items += k
            self.ctx.check_cancelled()
            if time.monotonic() - self._last_progress >= 0.5:
                at = done + page * items / max(1, n_items)
                self.progress(100.0 * at / total, f"{int(at)} of {total} documents")

        return tick


def _totals(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "encoded": sum(o["encoded"] for o in outputs),
        "skipped": sum(o["skipped"] for o in outputs),
        "failed": sum(o.get("failed", 0) for o in outputs),
        "outputs": outputs,
    }


# -- numeric and categories -------------------------------------------------------------------


def _run_tabular(
    ctx: JobContext[Services],
    kind: str,
    fields: list[str],
    refresh: bool,
    output_of: Callable[[str], str],
    make: Callable[[], TabularEncoder],
    config: dict[str, Any],
    describe: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    run = _Run(ctx)
    outputs: list[dict[str, Any]] = []
    fields = list(dict.fromkeys(fields))
    share = 100.0 / len(fields)
    try:
        for i, field in enumerate(fields):
            base = i * share
            output = output_of(field)
            enc = make()
            everything = {field: {"$exists": True}}
            total = max(1, run.count(everything))
            seen = 0
            for page in run.pages(everything, field, FIT_PAGE):
                enc.partial_fit(_value(d, field) for d in page)
                seen += len(page)
                run.progress(base + share * 0.4 * seen / total, f"{field}: fitted {seen}")
            if isinstance(enc, NumericEncoder):
                # columns in the dataset's first-seen order of `field.key`, the same on
                # SQLite and PostgreSQL (whose jsonb returns an object's keys reordered)
                prefix = f"{field}."
                order = ctx.services.datasets.field_order(run.scope, run.dataset)
                enc.order_columns(
                    {k[len(prefix) :]: v for k, v in order.items() if k.startswith(prefix)}
                )
            try:
                state = enc.to_state()
            except NotFitted as exc:
                raise JobFailed(
                    f"no document has a value {kind} can encode in {field!r}",
                    code="nothing_to_encode",
                    field="params.fields",
                ) from exc
            mode, reason = run.decide(refresh, output, kind, state, enc.dim)
            run.encoders.put(
                run.scope, run.dataset, output, kind, {**config, "field": field}, state
            )
            todo = run.todo(field, output, mode)
            total = max(1, run.count(todo))
            encoded = skipped = done = 0
            for page in run.pages(todo, field, FIT_PAGE):
                values = [_value(d, field) for d in page]
                keep = [j for j, v in enumerate(values) if enc.accepts(v)]
                skipped += len(page) - len(keep)
                if keep:
                    x = enc.transform([values[j] for j in keep])
                    run.write(output, [page[j]["_id"] for j in keep], x)
                    encoded += len(keep)
                done += len(page)
                run.progress(base + share * (0.4 + 0.6 * done / total), f"{field}: {done} done")
            run.flush()
            outputs.append(
                {
                    "field": field,
                    "output_field": output,
                    "dims": enc.dim,
                    "encoded": encoded,
                    "skipped": skipped,
                    "failed": 0,
                    "mode": mode,
                    "reason": reason,
                    **describe(enc),
                }
            )
    finally:
        run.close()
    return _totals(outputs)


def run_encode_numeric(ctx: JobContext[Services], params: EncodeNumericParams) -> dict[str, Any]:
    """Objects of numbers -> one vector each; columns = the union of keys, first seen first."""
    return _run_tabular(
        ctx,
        "encode_numeric",
        params.fields,
        params.refresh,
        lambda f: f"{_flat(f)}{params.vector_name}",
        lambda: NumericEncoder(scaling=params.scaling),
        {"scaling": params.scaling, "vector_name": params.vector_name},
        lambda enc: {"columns": list(enc.columns_), "scaling": enc.scaling},
    )


def run_encode_categories(
    ctx: JobContext[Services], params: EncodeCategoriesParams
) -> dict[str, Any]:
    """Lists of categories -> multi-hot vectors over every category, first seen first."""
    return _run_tabular(
        ctx,
        "encode_categories",
        params.fields,
        params.refresh,
        lambda f: f"{_flat(f)}{VECTOR_SUFFIX}",
        CategoriesEncoder,
        {},
        lambda enc: {"categories": list(enc.categories_)},
    )


# -- models -----------------------------------------------------------------------------------

# a page's values -> (the encoder's items, the indexes of the values they came from,
# failures as (index, code, message))
Loader = Callable[[list[Any]], tuple[list[Any], list[int], list[tuple[int, str, str]]]]


def _run_model(
    ctx: JobContext[Services],
    kind: str,
    params: EncodeTextParams,
    encoder: ModelEncoder,
    state: dict[str, Any],
    config: dict[str, Any],
    load: Loader | None = None,
    page_size: int | None = None,
) -> dict[str, Any]:
    """Encode ``params.field`` (text values) with a model; ``load`` turns the values into
    the encoder's items where they are references (images)."""
    run = _Run(ctx)
    field = params.field
    output = model_output(field, params.alias)
    try:
        mode, reason = run.decide(params.refresh, output, kind, state, encoder.dim)
        run.encoders.put(
            run.scope,
            run.dataset,
            output,
            kind,
            {**config, "field": field, "alias": params.alias},
            state,
        )
        todo = run.todo(field, output, mode)
        total = max(1, run.count(todo))
        encoded = skipped = done = 0
        failures: list[dict[str, Any]] = []
        n_failed = 0
        for page in run.pages(todo, field, page_size or TEXT_PAGE):
            values = [_value(d, field) for d in page]
            keep = [j for j, v in enumerate(values) if isinstance(v, str)]
            skipped += len(page) - len(keep)
            items: list[Any] = [values[j] for j in keep]
            if load is not None and keep:
                items, ok, bad = load(items)
                for i, code, message in bad:
                    n_failed += 1
                    if len(failures) < MAX_FAILURES_REPORTED:
                        doc_id = page[keep[i]]["_id"]
                        failures.append({"_id": doc_id, "code": code, "message": message})
                keep = [keep[i] for i in ok]
            if keep:
                x = encoder.encode(items, on_batch=run.ticker(done, len(page), len(items), total))
                run.write(output, [page[j]["_id"] for j in keep], x)
                encoded += len(keep)
            done += len(page)
            run.progress(100.0 * done / total, f"{done} of {total} documents")
        run.flush()
    finally:
        run.close()
    if n_failed and not encoded:
        first = failures[0]
        raise JobFailed(
            f"no document of {field!r} could be encoded; {n_failed} failed, the first "
            f"({first['_id']}): {first['message']}",
            code="nothing_encoded",
            details={"failures": failures},
        )
    out = {
        "field": field,
        "output_field": output,
        "dims": encoder.dim,
        "encoded": encoded,
        "skipped": skipped,
        "failed": n_failed,
        "mode": mode,
        "reason": reason,
        "model": state["model"],
    }
    if failures:
        out["failures"] = failures
    return _totals([out])


def run_encode_text(ctx: JobContext[Services], params: EncodeTextParams) -> dict[str, Any]:
    """Text -> sentence embedding (all-MiniLM-L6-v2 int8 ONNX by default; 384-d, unit length)."""
    svc = encoder_service(ctx.services)
    mp, tp = svc.configured_text_model()
    try:
        enc = svc.text_encoder(mp, tp)
    except FileNotFoundError as exc:
        raise JobFailed(str(exc), code="text_model_not_found") from exc
    state = {"model": mp or MODEL_ID, "dim": enc.dim}
    config = {"model_path": mp, "tokenizer_path": tp}
    return _run_model(ctx, "encode_text", params, enc, state, config)


def run_encode_text_clip(ctx: JobContext[Services], params: EncodeTextClipParams) -> dict[str, Any]:
    """Text -> CLIP text embedding (unit length), comparable with encode_image_clip's."""
    svc = encoder_service(ctx.services)
    model_dir = svc.clip_model_dir()
    model = svc.clip_model(model_dir)
    state = {"model": str(model_dir), "dim": model.dim}
    return _run_model(
        ctx,
        "encode_text_clip",
        params,
        ClipTextEncoder(model),
        state,
        {"model_dir": str(model_dir)},
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
    svc = encoder_service(ctx.services)
    model_dir = svc.clip_model_dir()
    model = svc.clip_model(model_dir)
    reader = svc.media_reader().with_blobs(ctx.services.blobs.app(ctx.scope.app_id))

    def read(ref: str) -> Any:
        try:
            return model.load_image(reader.read(ref))
        except TaskloomError as exc:
            return exc
        except ValueError as exc:
            return TaskloomError(str(exc), code="not_an_image")

    def load(refs: list[Any]) -> tuple[list[Any], list[int], list[tuple[int, str, str]]]:
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="taskloom-media") as pool:
            results = list(pool.map(read, refs))
        items = [r for r in results if not isinstance(r, TaskloomError)]
        ok = [i for i, r in enumerate(results) if not isinstance(r, TaskloomError)]
        bad = [
            (i, r.code, r.message) for i, r in enumerate(results) if isinstance(r, TaskloomError)
        ]
        return items, ok, bad

    state = {"model": str(model_dir), "dim": model.dim}
    return _run_model(
        ctx,
        "encode_image_clip",
        params,
        ClipImageEncoder(model),
        state,
        {"model_dir": str(model_dir)},
        load=load,
        page_size=IMAGE_PAGE,
    )


def register(registry: Registry) -> None:
    for name, params, fn, text in (
        ("encode_numeric", EncodeNumericParams, run_encode_numeric, run_encode_numeric.__doc__),
        (
            "encode_categories",
            EncodeCategoriesParams,
            run_encode_categories,
            run_encode_categories.__doc__,
        ),
        ("encode_text", EncodeTextParams, run_encode_text, run_encode_text.__doc__),
        (
            "encode_text_clip",
            EncodeTextClipParams,
            run_encode_text_clip,
            run_encode_text_clip.__doc__,
        ),
        (
            "encode_image_clip",
            EncodeImageClipParams,
            run_encode_image_clip,
            (run_encode_image_clip.__doc__ or "").split("\n")[0],
        ),
    ):
        registry.register(JobKind(name, params, fn, (text or "").strip(), needs_dataset=True))
