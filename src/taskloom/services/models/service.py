"""``ModelService``: the registry of models and versions, and task models on top of it.

A task model is a model of kind ``task_model`` with one version, trained by a
``train_task_model`` job (:mod:`taskloom.services.models.training`). Its status is the
job's: ``registered → pending → in_progress → completed | failed``. The fitted model is an
``ml.tabular.save()`` artifact (skops, no pickle) in the app's ``.models`` blob area, which
``/v1/blobs`` cannot write; predictions load it with ``ml.tabular.load()``.
"""

from __future__ import annotations

import builtins
import math
import re
import threading
import uuid
from collections import OrderedDict
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.sql import Select

from taskloom.blobs import Blobs, BlobStore
from taskloom.errors import Conflict, Invalid, NotFound
from taskloom.jobs.states import JobStatus
from taskloom.ml import tabular
from taskloom.scope import Scope
from taskloom.services.buckets import BucketService, check_file_path
from taskloom.services.features import FeatureService
from taskloom.services.models import training
from taskloom.services.models.views import (
    model_public,
    task_model_public,
    version_public,
)
from taskloom.services.task_models_rules import validate_task_request
from taskloom.store.engine import Store
from taskloom.store.model_tables import model_versions, models
from taskloom.store.paging import CursorFormat, check_limit, cursor_error, page
from taskloom.store.types import utcnow
from taskloom.validation import parse_model

if TYPE_CHECKING:
    from taskloom.jobs.engine import JobEngine
    from taskloom.jobs.records import Job

TASK_MODEL = "task_model"
TRAIN_KIND = "train_task_model"
PREDICT_KIND = "predict_task_model"
MAX_PREDICT = 10_000  # keys or rows in one predict call
_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_CACHE_SIZE = 8


class HyperParameters(BaseModel):
    """The training options a caller may set (``ml.tabular.TabularClassifier``'s)."""

    model_config = ConfigDict(extra="forbid")

    max_iter: int = Field(default=100, ge=1, le=1000)
    learning_rate: float = Field(default=0.1, gt=0, le=1)
    max_leaf_nodes: int = Field(default=31, ge=2, le=4096)
    min_samples_leaf: int = Field(default=20, ge=1, le=100_000)
    l2_regularization: float = Field(default=0.0, ge=0, le=1e6)
    early_stopping: bool | None = Field(default=None, description="None: automatic.")
    test_size: float = Field(default=0.2, gt=0, lt=1, description="Held-out share.")


def check_hyperparameters(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(
            "hyperparameters is an object", code="invalid_hyperparameters", field="hyperparameters"
        )
    hp = parse_model(
        HyperParameters, value, prefix="hyperparameters", code="invalid_hyperparameters"
    )
    return hp.model_dump(exclude_unset=True)


def _not_found(model_id: Any, field: str = "model_id", what: str = "model") -> NotFound:
    code = "task_model_not_found" if what == "task model" else "model_not_found"
    return NotFound(f"{what} {str(model_id)[:100]!r} not found", code=code, field=field)


_CURSOR = CursorFormat("m", datetime, str)  # task models: resumes after (created at, id)


class ModelService:
    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        buckets: BucketService,
        features: FeatureService,
        engine: JobEngine,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.buckets = buckets
        self.features = features
        self.jobs = engine
        self._cache: OrderedDict[tuple[str, str], tabular.TabularClassifier] = OrderedDict()
        self._cache_lock = threading.Lock()
        # the bodies of the train_task_model and predict_task_model jobs
        self.training = training.Training(
            store, buckets, features, area=self.area, load_model=self.load_model
        )

    def area(self, scope: Scope) -> Blobs:
        """The app's model artifacts: written by taskloom only, apart from ``/v1/blobs``."""
        return self.blobs.area("models", scope.app_id, max_bytes=1 << 62)

    # -- queries ---------------------------------------------------------------------------

    @staticmethod
    def _latest_number() -> Any:
        mv = model_versions.alias("mv_latest")
        return select(func.max(mv.c.number)).where(mv.c.model_id == models.c.id).scalar_subquery()

    def _version_query(self, scope: Scope) -> Select[Any]:
        """Versions with their model and their job's live status."""
        jobs = self.jobs.owned(scope)
        return select(
            model_versions,
            models.c.app_id,
            models.c.name,
            models.c.kind,
            models.c.created_at.label("model_created_at"),
            jobs.c.status.label("job_status"),
            jobs.c.error.label("job_error"),
            jobs.c.updated_at.label("job_updated_at"),
        ).select_from(
            model_versions.join(models, models.c.id == model_versions.c.model_id).outerjoin(
                jobs, jobs.c.id == model_versions.c.job_id
            )
        )

    def _task_query(self, scope: Scope) -> Select[Any]:
        return self._version_query(scope).where(
            models.c.app_id == scope.app_id,
            models.c.kind == TASK_MODEL,
            model_versions.c.number == self._latest_number(),
        )

    def _task_row(self, scope: Scope, model_id: Any, field: str = "model_id") -> Any:
        if not isinstance(model_id, str) or not _ID_RE.match(model_id):
            raise _not_found(model_id, field, "task model")
        with self.store.read() as conn:
            row = conn.execute(self._task_query(scope).where(models.c.id == model_id)).first()
        if row is None:
            raise _not_found(model_id, field, "task model")
        return row

    # -- the generic registry ----------------------------------------------------------------

    def _model_query(self, scope: Scope) -> Select[Any]:
        return select(models, self._latest_number().label("latest_version")).where(
            models.c.app_id == scope.app_id
        )

    def list_models(self, scope: Scope) -> builtins.list[dict[str, Any]]:
        q = self._model_query(scope).order_by(models.c.created_at, models.c.id)
        with self.store.read() as conn:
            return [model_public(r) for r in conn.execute(q)]

    def get_model(self, scope: Scope, model_id: str) -> dict[str, Any]:
        if not isinstance(model_id, str) or not _ID_RE.match(model_id):
            raise _not_found(model_id)
        with self.store.read() as conn:
            row = conn.execute(self._model_query(scope).where(models.c.id == model_id)).first()
        if row is None:
            raise _not_found(model_id)
        return model_public(row)

    def list_versions(self, scope: Scope, model_id: str) -> builtins.list[dict[str, Any]]:
        self.get_model(scope, model_id)
        q = (
            self._version_query(scope)
            .where(models.c.app_id == scope.app_id, models.c.id == model_id)
            .order_by(model_versions.c.number)
        )
        with self.store.read() as conn:
            return [version_public(r) for r in conn.execute(q)]

    # -- task models -----------------------------------------------------------------------

    def _feature_name(self, scope: Scope, feature_id: str | None, field: str) -> str | None:
        """The name of this app's feature table; 404 ``feature_not_found`` at once for one
        that does not exist or is another app's, as every cross-app reference answers (a
        table deleted after this still fails the training with ``unknown_feature``)."""
        if feature_id is None:
            return None
        return str(self.features.get(scope, feature_id, field)["name"])

    def create_task_model(
        self,
        scope: Scope,
        body: Any,
        *,
        queue: bool = True,
        hyperparameters: dict[str, Any] | None = None,
        description: str = "",
    ) -> dict[str, Any]:
        """Register a task model and its training job (queued unless ``queue=False``)."""
        req = validate_task_request(body)
        hp = check_hyperparameters(hyperparameters)
        params: dict[str, Any] = {
            **req.as_dict(),
            "train_feature_name": self._feature_name(
                scope, req.train_feature_id, "train_feature_id"
            ),
            "test_feature_name": self._feature_name(scope, req.test_feature_id, "test_feature_id"),
            "hyperparameters": hp,
        }
        now = utcnow()
        model_id, version_id = str(uuid.uuid4()), str(uuid.uuid4())
        with self.store.write() as conn:
            conn.execute(
                insert(models).values(
                    id=model_id,
                    app_id=scope.app_id,
                    name=req.name,
                    kind=TASK_MODEL,
                    description=description,
                    created_at=now,
                    updated_at=now,
                )
            )
            conn.execute(
                insert(model_versions).values(
                    id=version_id,
                    model_id=model_id,
                    number=1,
                    status=JobStatus.REGISTERED.value,
                    params=params,
                    metrics=None,
                    artifact=None,
                    job_id=None,
                    error=None,
                    created_at=now,
                    updated_at=now,
                )
            )
        try:
            # registered first, so no worker runs it before the version knows its job
            job, _ = self.jobs.submit(
                scope, TRAIN_KIND, {"model_id": model_id, "version_id": version_id}, queue=False
            )
            with self.store.write() as conn:
                conn.execute(
                    update(model_versions)
                    .where(model_versions.c.id == version_id)
                    .values(job_id=job["id"])
                )
        except BaseException:
            with self.store.write() as conn:
                conn.execute(delete(models).where(models.c.id == model_id))
            raise
        row = self._task_row(scope, model_id)
        return self._queued(scope, row) if queue else task_model_public(row)

    def start_task_model(self, scope: Scope, model_id: str) -> dict[str, Any]:
        """Queue the training job of a task model created with ``queue=False``."""
        row = self._task_row(scope, model_id)
        if row.job_status != JobStatus.REGISTERED.value:
            raise Conflict(
                f"the task model is {row.job_status or row.status}; only a registered one starts",
                code="task_not_startable",
                field="status",
            )
        return self._queued(scope, row)

    def _queued(self, scope: Scope, row: Any) -> dict[str, Any]:
        """Queue a registered task model's job; the model as that left it (pending). A worker
        may claim the job at once: the answer says what the request did, not what followed."""
        job = self.jobs.enqueue(scope, row.job_id)
        queued = SimpleNamespace(**row._asdict())
        queued.job_status, queued.job_updated_at = job["status"], job["updated_at"]
        return task_model_public(queued)

    def get_task_model(self, scope: Scope, model_id: str) -> dict[str, Any]:
        return task_model_public(self._task_row(scope, model_id))

    def list_task_models(
        self, scope: Scope, *, limit: int = 50, cursor: str | None = None
    ) -> dict[str, Any]:
        """Newest first, paged with an opaque cursor."""
        check_limit(limit)
        q = self._task_query(scope)
        if key := _CURSOR.decode(cursor):
            at, last = key
            if not _ID_RE.match(last):
                raise cursor_error()
            q = q.where(
                or_(models.c.created_at < at, and_(models.c.created_at == at, models.c.id < last))
            )
        q = q.order_by(models.c.created_at.desc(), models.c.id.desc()).limit(limit + 1)
        with self.store.read() as conn:
            rows = conn.execute(q).all()
        rows, nxt = page(rows, limit, _CURSOR, lambda r: (r.model_created_at, r.model_id))
        return {"data": [task_model_public(r) for r in rows], "cursor": nxt}

    def delete_task_model(self, scope: Scope, model_id: str) -> None:
        """Delete a task model whose training has not been queued (``registered``);
        ``Conflict(task_not_deletable)`` once it is pending, running or finished."""
        row = self._task_row(scope, model_id)
        with self.store.write() as conn:
            if row.job_id is not None:
                status = self.jobs.delete_registered(conn, scope, row.job_id)
                if status is not None:
                    raise Conflict(
                        f"a {status or row.status} task model cannot be deleted; only a "
                        "registered one can",
                        code="task_not_deletable",
                        field="status",
                        details={"status": status or row.status},
                    )
            elif row.status != JobStatus.REGISTERED.value:
                raise Conflict(
                    f"a {row.status} task model cannot be deleted; only a registered one can",
                    code="task_not_deletable",
                    field="status",
                    details={"status": row.status},
                )
            conn.execute(delete(model_versions).where(model_versions.c.model_id == row.model_id))
            conn.execute(delete(models).where(models.c.id == row.model_id))

    # -- using a trained model -----------------------------------------------------------

    def _completed(self, scope: Scope, model_id: str) -> Any:
        row = self._task_row(scope, model_id)
        if row.status != JobStatus.COMPLETED.value or row.artifact is None:
            status = row.job_status or row.status
            raise Conflict(
                f"the task model is {status}; predictions need a completed one",
                code="model_not_ready",
                field="model_id",
                details={"status": status},
            )
        return row

    def load_model(self, scope: Scope, version_row: Any) -> tabular.TabularClassifier:
        """The version's fitted model (read from its artifact once, then cached)."""
        key = (version_row.id, version_row.artifact)
        with self._cache_lock:
            model = self._cache.get(key)
            if model is not None:
                self._cache.move_to_end(key)
                return model
        model = tabular.load(self.area(scope).read(version_row.artifact))
        with self._cache_lock:
            self._cache[key] = model
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return model

    def predict(
        self,
        scope: Scope,
        model_id: str,
        *,
        keys: builtins.list[Any] | None = None,
        rows: builtins.list[builtins.list[Any]] | None = None,
        feature_id: str | None = None,
    ) -> dict[str, Any]:
        """Labels and class probabilities for ``keys`` (looked up in ``feature_id``, by
        default the training feature table) or for ``rows`` of feature values."""
        if (keys is None) == (rows is None):
            raise Invalid("give keys or rows (one of them)", code="keys_or_rows", field="keys")
        row = self._completed(scope, model_id)
        model = self.load_model(scope, row)
        n_features = int(model.n_features_in_)
        if keys is not None:
            checked = _check_keys(keys)
            fid = feature_id if feature_id is not None else row.params["train_feature_id"]
            try:
                found = self.features.lookup(scope, fid, checked)
            except NotFound as exc:
                raise NotFound(exc.message, code=exc.code, field="feature_id") from exc
            if len(found.columns) != n_features:
                raise Invalid(
                    f"the feature table has {len(found.columns)} columns; the model was "
                    f"trained on {n_features}",
                    code="feature_mismatch",
                    field="feature_id",
                )
            X = found.matrix[found.found]
            out_keys: builtins.list[str] | None = [str(k) for k in found.keys[found.found]]
            missing = found.missing
        else:
            X = _check_rows(rows, n_features)
            out_keys, missing = None, []
        return {
            "predictions": predictions(model, X, out_keys),
            "missing_keys": missing,
            "classes": [_plain(c) for c in model.classes_],
        }

    def submit_batch_prediction(
        self,
        scope: Scope,
        model_id: str,
        *,
        feature_id: str | None = None,
        bucket: str,
        output_path: str,
    ) -> Job:
        """A ``predict_task_model`` job: every row of the feature table, written as a TSV
        (``key``, ``label``, ``p_<label>``...) to ``output_path`` in ``bucket``."""
        row = self._completed(scope, model_id)
        fid = feature_id if feature_id is not None else row.params["train_feature_id"]
        self.features.get(scope, fid, field="feature_id")
        check_file_path(output_path, "output_path")
        self.buckets.files(scope, bucket, field="bucket")
        job, _ = self.jobs.submit(
            scope,
            PREDICT_KIND,
            {
                "model_id": row.model_id,
                "version_id": row.id,
                "feature_id": fid,
                "bucket": bucket,
                "output_path": output_path,
            },
        )
        return job


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def predictions(
    model: tabular.TabularClassifier, X: np.ndarray, keys: builtins.list[str] | None
) -> builtins.list[dict[str, Any]]:
    if len(X) == 0:
        return []
    proba = model.predict_proba(X)
    classes = [_plain(c) for c in model.classes_]
    names = [str(c) for c in classes]
    best = proba.argmax(axis=1)
    out = []
    for i, (p, b) in enumerate(zip(proba.tolist(), best.tolist(), strict=True)):
        item: dict[str, Any] = {} if keys is None else {"key": keys[i]}
        item["label"] = classes[b]
        item["probabilities"] = dict(zip(names, p, strict=True))
        out.append(item)
    return out


def _check_keys(keys: Any) -> builtins.list[str]:
    if not isinstance(keys, list) or len(keys) > MAX_PREDICT:
        raise Invalid(
            f"keys is a list of at most {MAX_PREDICT} keys", code="invalid_keys", field="keys"
        )
    out = []
    for i, k in enumerate(keys):
        if isinstance(k, bool) or not isinstance(k, str | int) or (isinstance(k, str) and not k):
            raise Invalid("a key is text or an integer", code="invalid_keys", field=f"keys[{i}]")
        out.append(str(k))
    return out


def _check_rows(rows: Any, n_features: int) -> np.ndarray:
    if not isinstance(rows, list) or len(rows) > MAX_PREDICT:
        raise Invalid(
            f"rows is a list of at most {MAX_PREDICT} rows", code="invalid_rows", field="rows"
        )
    X = np.full((len(rows), n_features), np.nan, np.float64)
    for i, r in enumerate(rows):
        if not isinstance(r, list) or len(r) != n_features:
            raise Invalid(
                f"a row is a list of {n_features} numbers (null for a missing value)",
                code="invalid_rows",
                field=f"rows[{i}]",
            )
        for j, v in enumerate(r):
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise Invalid(
                    "a feature value is a finite number or null",
                    code="invalid_rows",
                    field=f"rows[{i}][{j}]",
                )
            X[i, j] = v
    # feature tables hold float32: the model learnt from values rounded so, and a row given
    # here predicts exactly as the same row looked up by key
    return X.astype(np.float32)
