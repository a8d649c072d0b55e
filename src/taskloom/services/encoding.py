"""Encoding a field of every document into a vector field: the work of the ``encode_*``
job kinds (``taskloom.kinds.encode`` parses their params and calls :class:`Encoding`).

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

Every run pages through the dataset with cursors, reports progress per page, stops between
pages when cancelled, and returns ``{"encoded", "skipped", "failed", "outputs": [...]}``,
one entry per output field with its mode, dimension and columns (or categories, or model).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from taskloom.blobs import BlobStore
from taskloom.errors import JobFailed, TaskloomError
from taskloom.jobs.progress import Progress
from taskloom.ml.encoders.base import ModelEncoder, NotFitted, TabularEncoder
from taskloom.ml.encoders.categories import CategoriesEncoder
from taskloom.ml.encoders.clip import ClipImageEncoder, ClipTextEncoder
from taskloom.ml.encoders.numeric import NumericEncoder, Scaling
from taskloom.ml.encoders.text_onnx import MODEL_ID
from taskloom.scope import Scope
from taskloom.services.datasets import DatasetService
from taskloom.services.documents import DocumentService
from taskloom.services.encoders import EncoderService
from taskloom.store.filters import VECTOR_SUFFIX

FIT_PAGE = 1000  # documents per page when fitting / transforming tabular fields
TEXT_PAGE = 1024  # texts per page (sorted by length inside a page: bigger pads less)
IMAGE_PAGE = 64  # images per page (decoded images are large)
MAX_FAILURES_REPORTED = 100


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


class EncodeRun:
    """One encode run's view of the dataset: paging, writing, progress."""

    def __init__(self, encoding: Encoding, scope: Scope, dataset: str, progress: Progress) -> None:
        self.ctx = progress
        self.scope = scope
        self.dataset = dataset
        self.docs = encoding.documents
        self.datasets = encoding.datasets
        self.encoders = encoding.encoders
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
        spec = self.datasets.schema(self.scope, self.dataset).get(field)
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


# -- numeric and categories ---------------------------------------------------------------


def _tabular(
    run: EncodeRun,
    kind: str,
    fields: list[str],
    refresh: bool,
    output_of: Callable[[str], str],
    make: Callable[[], TabularEncoder],
    config: dict[str, Any],
    describe: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
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
                order = run.datasets.field_order(run.scope, run.dataset)
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


# -- models -----------------------------------------------------------------------------------

# a page's values -> (the encoder's items, the indexes of the values they came from,
# failures as (index, code, message))
Loader = Callable[[list[Any]], tuple[list[Any], list[int], list[tuple[int, str, str]]]]


def _model(
    run: EncodeRun,
    kind: str,
    field: str,
    alias: str,
    refresh: bool,
    encoder: ModelEncoder,
    state: dict[str, Any],
    config: dict[str, Any],
    load: Loader | None = None,
    page_size: int | None = None,
) -> dict[str, Any]:
    """Encode ``field`` (text values) with a model; ``load`` turns the values into
    the encoder's items where they are references (images)."""
    output = model_output(field, alias)
    if run.count({field: {"$exists": True}}) == 0:
        raise JobFailed(
            f"no document of the dataset has {field!r}",
            code="nothing_to_encode",
            field="params.field",
        )
    try:
        mode, reason = run.decide(refresh, output, kind, state, encoder.dim)
        run.encoders.put(
            run.scope,
            run.dataset,
            output,
            kind,
            {**config, "field": field, "alias": alias},
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


class Encoding:
    """The encode runs (``encode_*`` job kinds call these): fit where the encoder learns
    from the data, record what it learnt, page through the documents and write the vectors."""

    def __init__(
        self,
        documents: DocumentService,
        datasets: DatasetService,
        encoders: EncoderService,
        blobs: BlobStore,
    ) -> None:
        self.documents = documents
        self.datasets = datasets
        self.encoders = encoders
        self.blobs = blobs

    def numeric(
        self,
        scope: Scope,
        dataset: str,
        progress: Progress,
        *,
        fields: list[str],
        vector_name: str = VECTOR_SUFFIX,
        scaling: Scaling = "none",
        refresh: bool = False,
    ) -> dict[str, Any]:
        """Objects of numbers -> one vector each; columns = the union of keys, first seen first."""
        return _tabular(
            EncodeRun(self, scope, dataset, progress),
            "encode_numeric",
            fields,
            refresh,
            lambda f: f"{_flat(f)}{vector_name}",
            lambda: NumericEncoder(scaling=scaling),
            {"scaling": scaling, "vector_name": vector_name},
            lambda enc: {"columns": list(enc.columns_), "scaling": enc.scaling},
        )

    def categories(
        self,
        scope: Scope,
        dataset: str,
        progress: Progress,
        *,
        fields: list[str],
        refresh: bool = False,
    ) -> dict[str, Any]:
        """Lists of categories -> multi-hot vectors over every category, first seen first."""
        return _tabular(
            EncodeRun(self, scope, dataset, progress),
            "encode_categories",
            fields,
            refresh,
            lambda f: f"{_flat(f)}{VECTOR_SUFFIX}",
            CategoriesEncoder,
            {},
            lambda enc: {"categories": list(enc.categories_)},
        )

    def text(
        self,
        scope: Scope,
        dataset: str,
        progress: Progress,
        *,
        field: str,
        alias: str = "default",
        refresh: bool = False,
    ) -> dict[str, Any]:
        """Text -> sentence embedding (all-MiniLM-L6-v2 int8 ONNX by default; 384-d,
        unit length)."""
        mp, tp = self.encoders.configured_text_model()
        try:
            enc = self.encoders.text_encoder(mp, tp)
        except FileNotFoundError as exc:
            raise JobFailed(str(exc), code="text_model_not_found") from exc
        state = {"model": mp or MODEL_ID, "dim": enc.dim}
        config = {"model_path": mp, "tokenizer_path": tp}
        run = EncodeRun(self, scope, dataset, progress)
        return _model(run, "encode_text", field, alias, refresh, enc, state, config)

    def text_clip(
        self,
        scope: Scope,
        dataset: str,
        progress: Progress,
        *,
        field: str,
        alias: str = "default",
        refresh: bool = False,
    ) -> dict[str, Any]:
        """Text -> CLIP text embedding (unit length), comparable with image_clip's."""
        model_dir = self.encoders.clip_model_dir()
        model = self.encoders.clip_model(model_dir)
        state = {"model": str(model_dir), "dim": model.dim}
        return _model(
            EncodeRun(self, scope, dataset, progress),
            "encode_text_clip",
            field,
            alias,
            refresh,
            ClipTextEncoder(model),
            state,
            {"model_dir": str(model_dir)},
        )

    def image_clip(
        self,
        scope: Scope,
        dataset: str,
        progress: Progress,
        *,
        field: str,
        alias: str = "default",
        refresh: bool = False,
    ) -> dict[str, Any]:
        """Image -> CLIP image embedding (unit length), comparable with text_clip's.

        The field holds an http(s) URL (fetched only from public addresses) or a path inside
        the media folder (``TASKLOOM_MEDIA_DIR``, default ``data_dir/media``); see
        ``taskloom.services.media``; ``blob://<path>`` references read from the app's blob
        store. A document whose image cannot be read is reported in ``failures``; the run
        fails only when no image could be read at all.
        """
        model_dir = self.encoders.clip_model_dir()
        model = self.encoders.clip_model(model_dir)
        reader = self.encoders.media_reader().with_blobs(self.blobs.app(scope.app_id))

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
                (i, r.code, r.message)
                for i, r in enumerate(results)
                if isinstance(r, TaskloomError)
            ]
            return items, ok, bad

        state = {"model": str(model_dir), "dim": model.dim}
        return _model(
            EncodeRun(self, scope, dataset, progress),
            "encode_image_clip",
            field,
            alias,
            refresh,
            ClipImageEncoder(model),
            state,
            {"model_dir": str(model_dir)},
            load=load,
            page_size=IMAGE_PAGE,
        )
