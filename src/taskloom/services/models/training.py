"""The bodies of the task-model jobs: ``train_task_model`` and ``predict_task_model``.

Training reads the correct-answer file from its bucket, joins it to the feature table by
key, fits and evaluates (``ml.tabular.fit_and_evaluate``: on the test file when given,
else on a held-out share), and stores the artifact and the metrics on the version. Problems
with the data raise :class:`~taskloom.ml.tabular.TrainingError` (a ``JobFailed``: the job
fails at once, no retry) with a stable code; the version records the same code and message.
Both jobs overwrite their own output when retried.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select, update

from taskloom.errors import Cancelled, JobFailed, NotFound, TaskloomError
from taskloom.jobs.states import JobStatus
from taskloom.ml import tabular
from taskloom.ml.label_file import read_label_file
from taskloom.ml.tabular import TrainingError
from taskloom.services.auth import Scope
from taskloom.services.models.views import json_safe
from taskloom.store.model_tables import model_versions, models
from taskloom.store.types import utcnow

if TYPE_CHECKING:
    from taskloom.jobs.context import JobContext
    from taskloom.services.features import FeatureData
    from taskloom.services.models.service import ModelService

PREDICT_CHUNK = 65_536


def _version(svc: ModelService, scope: Scope, model_id: str, version_id: str) -> Any:
    with svc.store.read() as conn:
        row = conn.execute(
            select(model_versions)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(
                models.c.app_id == scope.app_id,
                models.c.id == model_id,
                model_versions.c.id == version_id,
            )
        ).first()
    if row is None:
        raise JobFailed("the model version no longer exists", code="model_not_found")
    return row


def _record(svc: ModelService, version_id: str, **values: Any) -> None:
    with svc.store.write() as conn:
        conn.execute(
            update(model_versions)
            .where(model_versions.c.id == version_id)
            .values(updated_at=utcnow(), **values)
        )


def _read_file(svc: ModelService, scope: Scope, bucket: str, path: str, field: str) -> bytes:
    try:
        files = svc.buckets.files(scope, bucket, field=field)
        return files.read(path)
    except NotFound as exc:
        raise TrainingError(
            f"the correct-answer file {bucket}/{path} does not exist",
            code="file_missing",
            field=field,
            details={"bucket": bucket, "path": path},
        ) from exc


def _features(svc: ModelService, scope: Scope, feature_id: str, field: str) -> FeatureData:
    try:
        return svc.features.load(scope, feature_id, field=field)
    except NotFound as exc:
        raise TrainingError(
            f"the feature table {feature_id!r} does not exist",
            code="unknown_feature",
            field=field,
            details={"feature_id": feature_id},
        ) from exc


def _labelled(
    svc: ModelService, scope: Scope, params: dict[str, Any], which: str
) -> tuple[tabular.JoinedLabels, list[str], int]:
    bucket, path = params[f"{which}_bucket"], params[f"{which}_file_path"]
    data = _read_file(svc, scope, bucket, path, f"{which}_file_path")
    labels = read_label_file(data, filename=path)
    fid = (
        params["train_feature_id"]
        if which == "train"
        else (params.get("test_feature_id") or params["train_feature_id"])
    )
    field = "train_feature_id" if fid == params["train_feature_id"] else "test_feature_id"
    feats = _features(svc, scope, fid, field)
    joined = tabular.join_labels(feats.keys, feats.matrix, labels.keys, labels.labels)
    return joined, feats.columns, len(labels.keys)


def train(svc: ModelService, ctx: JobContext, model_id: str, version_id: str) -> dict[str, Any]:
    scope = ctx.scope
    row = _version(svc, scope, model_id, version_id)
    params: dict[str, Any] = row.params
    _record(svc, version_id, status=JobStatus.IN_PROGRESS.value, error=None)
    try:
        ctx.progress(5, "reading the correct-answer file")
        train_set, columns, train_rows = _labelled(svc, scope, params, "train")
        X_test = y_test = None
        test_info: dict[str, Any] | None = None
        if params.get("test_file_path"):
            ctx.progress(15, "reading the test file")
            test_set, test_columns, test_rows = _labelled(svc, scope, params, "test")
            if test_columns != columns:
                raise TrainingError(
                    "the test feature table's columns differ from the training table's",
                    code="feature_mismatch",
                    field="test_feature_id",
                    details={"train": columns, "test": test_columns},
                )
            X_test, y_test = test_set.X, test_set.y
            test_info = {"file_rows": test_rows, "unmatched_keys": len(test_set.unmatched)}
        ctx.progress(25, f"training on {len(train_set.y)} rows x {len(columns)} features")
        hp = dict(params.get("hyperparameters") or {})
        test_size = hp.pop("test_size", 0.2)
        if hp.get("early_stopping") is None:
            hp.pop("early_stopping", None)
        model, metrics = tabular.fit_and_evaluate(
            train_set.X, train_set.y, X_test=X_test, y_test=y_test, test_size=test_size, **hp
        )
        ctx.check_cancelled()
        ctx.progress(90, "storing the model")
        artifact = f"{model_id}/{version_id}.skops"
        svc.area(scope).put(artifact, tabular.save(model), "application/zip")
        metrics.update(
            feature_columns=columns,
            train_file_rows=train_rows,
            unmatched_keys=len(train_set.unmatched),
            unmatched_examples=[str(k) for k in train_set.unmatched[:5]],
        )
        if test_info is not None:
            metrics["test_file"] = test_info
        metrics = json_safe(metrics)
        _record(
            svc,
            version_id,
            status=JobStatus.COMPLETED.value,
            metrics=metrics,
            artifact=artifact,
            error=None,
        )
    except Cancelled:
        _record(svc, version_id, status=JobStatus.CANCELLED.value)
        raise
    except JobFailed as exc:  # TrainingError included: the reason a user can act on
        error = {"code": exc.code, "message": exc.message, "details": json_safe(exc.details)}
        _record(svc, version_id, status=JobStatus.FAILED.value, error=error)
        raise
    except TaskloomError as exc:  # e.g. an oversized file: fails too, with its own code
        error = {"code": exc.code, "message": exc.message, "details": json_safe(exc.details)}
        _record(svc, version_id, status=JobStatus.FAILED.value, error=error)
        raise
    summary = {
        k: metrics.get(k)
        for k in ("accuracy", "baseline_accuracy", "roc_auc", "f1", "evaluated_on", "n")
    }
    return {"model_id": model_id, "version": row.number, "metrics": summary}


def batch_predict(svc: ModelService, ctx: JobContext, params: Any) -> dict[str, Any]:
    scope = ctx.scope
    row = _version(svc, scope, params.model_id, params.version_id)
    if row.status != JobStatus.COMPLETED.value or row.artifact is None:
        raise JobFailed("the model version is not trained", code="model_not_ready")
    model = svc.load_model(scope, row)
    ctx.progress(5, "loading the feature table")
    feats = _features(svc, scope, params.feature_id, "feature_id")
    if len(feats.columns) != model.n_features_in_:
        raise JobFailed(
            f"the feature table has {len(feats.columns)} columns; the model was trained on "
            f"{model.n_features_in_}",
            code="feature_mismatch",
            field="feature_id",
        )
    classes = [c.item() if hasattr(c, "item") else c for c in model.classes_]
    try:
        files = svc.buckets.files(scope, params.bucket, field="bucket")
    except NotFound as exc:
        raise JobFailed(exc.message, code=exc.code, field="bucket") from exc
    n = len(feats.keys)
    with files.upload(params.output_path, "text/tab-separated-values") as up:
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
        writer.writerow(["key", "label", *(f"p_{c}" for c in classes)])
        for start in range(0, n, PREDICT_CHUNK):
            ctx.check_cancelled()
            stop = min(n, start + PREDICT_CHUNK)
            proba = model.predict_proba(feats.matrix[start:stop])
            best = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
            text = np.char.mod("%.6g", proba)
            writer.writerows(
                [k, b, *p]
                for k, b, p in zip(
                    feats.keys[start:stop].tolist(), best.tolist(), text.tolist(), strict=True
                )
            )
            up.write(buf.getvalue().encode())
            buf.seek(0)
            buf.truncate()
            ctx.progress(5 + 90 * stop / max(n, 1), f"{stop} of {n} rows")
        info = up.commit()
    return {
        "bucket": params.bucket,
        "path": params.output_path,
        "rows": n,
        "size": info.size,
        "classes": classes,
    }
