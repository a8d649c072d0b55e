"""The bodies of the task-model jobs: ``train_task_model`` and ``predict_task_model``.

Training reads the correct-answer file from its bucket, matches its keys to the feature
table's, reads only the matched feature rows (one pass over the stored table, straight into
the float64 a model trains on: the whole table is never in memory), fits and evaluates
(``ml.tabular.fit_and_evaluate``: on the test file when given, else on a held-out share),
and stores the artifact and the metrics on the version. Problems
with the data raise :class:`~taskloom.ml.tabular.TrainingError` (a ``JobFailed``: the job
fails at once, no retry) with a stable code; the version records the same code and message.
Both jobs overwrite their own output when retried.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pyarrow as pa
from sqlalchemy import select, update

from taskloom.errors import Cancelled, JobFailed, NotFound, TaskloomError
from taskloom.jobs.states import JobStatus
from taskloom.ml import tabular
from taskloom.ml.join import match_keys
from taskloom.ml.label_file import read_label_file
from taskloom.ml.tabular import TrainingError
from taskloom.scope import Scope
from taskloom.services.models.views import json_safe
from taskloom.store.model_tables import model_versions, models
from taskloom.store.types import utcnow

if TYPE_CHECKING:
    from taskloom.blobs import Blobs
    from taskloom.jobs.progress import Progress
    from taskloom.services.buckets import BucketService
    from taskloom.services.features import FeatureService, StoredTable
    from taskloom.store.engine import Store


def _unknown_feature(feature_id: str, field: str) -> TrainingError:
    return TrainingError(
        f"the feature table {feature_id!r} does not exist",
        code="unknown_feature",
        field=field,
        details={"feature_id": feature_id},
    )


class _Labelled(NamedTuple):
    """A correct-answer file matched to its feature table (rows not read yet)."""

    table: StoredTable
    rows: np.ndarray  # the table row of each matched label row, file order
    y: np.ndarray  # their labels
    file_rows: int
    unmatched: int
    unmatched_examples: list[str]


class Training:
    """The two job bodies over exactly what they use: the store (versions), the buckets
    (label and output files), the feature tables, the artifact area and the model cache."""

    def __init__(
        self,
        store: Store,
        buckets: BucketService,
        features: FeatureService,
        area: Callable[[Scope], Blobs],
        load_model: Callable[[Scope, Any], tabular.TabularClassifier],
    ) -> None:
        self.store = store
        self.buckets = buckets
        self.features = features
        self.area = area
        self.load_model = load_model

    def _version(self, scope: Scope, model_id: str, version_id: str) -> Any:
        with self.store.read() as conn:
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

    def _record(self, version_id: str, **values: Any) -> None:
        with self.store.write() as conn:
            conn.execute(
                update(model_versions)
                .where(model_versions.c.id == version_id)
                .values(updated_at=utcnow(), **values)
            )

    def _read_file(self, scope: Scope, bucket: str, path: str, field: str) -> bytes:
        try:
            files = self.buckets.files(scope, bucket, field=field)
            return files.read(path)
        except NotFound as exc:
            raise TrainingError(
                f"the correct-answer file {bucket}/{path} does not exist",
                code="file_missing",
                field=field,
                details={"bucket": bucket, "path": path},
            ) from exc

    def _table(self, scope: Scope, feature_id: str, field: str) -> StoredTable:
        try:
            return self.features.table(scope, feature_id, field=field)
        except NotFound as exc:
            raise _unknown_feature(feature_id, field) from exc

    def _labelled(
        self,
        scope: Scope,
        params: dict[str, Any],
        which: str,
        tables: dict[str, tuple[StoredTable, Any]],
    ) -> _Labelled:
        """Read ``which`` ("train" / "test") file and match its keys to the feature table's
        (each table's keys are read once: ``tables`` caches them)."""
        bucket, path = params[f"{which}_bucket"], params[f"{which}_file_path"]
        data = self._read_file(scope, bucket, path, f"{which}_file_path")
        labels = read_label_file(data, filename=path)
        del data
        fid = (
            params["train_feature_id"]
            if which == "train"
            else (params.get("test_feature_id") or params["train_feature_id"])
        )
        if fid not in tables:
            field = "train_feature_id" if fid == params["train_feature_id"] else "test_feature_id"
            table = self._table(scope, fid, field)
            tables[fid] = (table, table.keys())
        table, keys = tables[fid]
        match = match_keys(keys, labels.keys)
        examples = [str(k) for k in match.unmatched[:5]]
        return _Labelled(
            table,
            match.rows,
            labels.labels[match.hit],
            len(labels.keys),
            len(match.unmatched),
            examples,
        )

    def train(
        self, scope: Scope, progress: Progress, model_id: str, version_id: str
    ) -> dict[str, Any]:
        """Read the files, match keys, read only the matched feature rows (one pass over each
        table, straight into float64), fit, evaluate and store the artifact."""
        row = self._version(scope, model_id, version_id)
        params: dict[str, Any] = row.params
        self._record(version_id, status=JobStatus.IN_PROGRESS.value, error=None)
        try:
            hp = dict(params.get("hyperparameters") or {})
            test_size = hp.pop("test_size", 0.2)
            if hp.get("early_stopping") is None:
                hp.pop("early_stopping", None)
            random_state = hp.pop("random_state", 0)
            tables: dict[str, tuple[StoredTable, Any]] = {}
            progress.progress(5, "reading the correct-answer file")
            train_set = self._labelled(scope, params, "train", tables)
            columns = train_set.table.columns
            test_set: _Labelled | None = None
            test_info: dict[str, Any] | None = None
            if params.get("test_file_path"):
                progress.progress(15, "reading the test file")
                test_set = self._labelled(scope, params, "test", tables)
                if test_set.table.columns != columns:
                    raise TrainingError(
                        "the test feature table's columns differ from the training table's",
                        code="feature_mismatch",
                        field="test_feature_id",
                        details={"train": columns, "test": test_set.table.columns},
                    )
            tabular.check_classes(train_set.y)
            if test_set is not None:
                fit_rows, y_fit = train_set.rows, train_set.y
                eval_rows, y_eval = test_set.rows, test_set.y
                eval_table = test_set.table
                evaluated_on = "test_set"
                test_info = {"file_rows": test_set.file_rows, "unmatched_keys": test_set.unmatched}
                del test_set
            else:
                fit, held = tabular.held_out_split(
                    train_set.y, test_size=test_size, random_state=random_state
                )
                fit_rows, y_fit = train_set.rows[fit], train_set.y[fit]
                eval_rows, y_eval = train_set.rows[held], train_set.y[held]
                del fit, held
                eval_table = train_set.table
                evaluated_on = "held_out"
            # the keys and the files' text are not needed any more: arrow's allocator keeps
            # freed pages for reuse unless told to give them back (100+ MiB at a million rows)
            tables.clear()
            pa.default_memory_pool().release_unused()
            progress.progress(20, f"reading {len(fit_rows) + len(eval_rows)} feature rows")
            if eval_table is train_set.table:
                X_fit, X_eval = train_set.table.gather([fit_rows, eval_rows])
            else:
                (X_fit,) = train_set.table.gather([fit_rows])
                (X_eval,) = eval_table.gather([eval_rows])
            # only the matrices and their labels go on: the rest is freed before the fit
            file_rows, unmatched = train_set.file_rows, train_set.unmatched
            unmatched_examples = train_set.unmatched_examples
            del train_set, fit_rows, eval_rows, eval_table
            progress.check_cancelled()
            progress.progress(25, f"training on {len(y_fit)} rows x {len(columns)} features")
            model, metrics = tabular.fit_and_evaluate(
                X_fit,
                y_fit,
                X_test=X_eval,
                y_test=y_eval,
                random_state=random_state,
                evaluated_on=evaluated_on,
                **hp,
            )
            del X_fit, X_eval
            progress.check_cancelled()
            progress.progress(90, "storing the model")
            artifact = f"{model_id}/{version_id}.skops"
            self.area(scope).put(artifact, tabular.save(model), "application/zip")
            metrics.update(
                feature_columns=columns,
                train_file_rows=file_rows,
                unmatched_keys=unmatched,
                unmatched_examples=unmatched_examples,
            )
            if test_info is not None:
                metrics["test_file"] = test_info
            metrics = json_safe(metrics)
            self._record(
                version_id,
                status=JobStatus.COMPLETED.value,
                metrics=metrics,
                artifact=artifact,
                error=None,
            )
        except Cancelled:
            self._record(version_id, status=JobStatus.CANCELLED.value)
            raise
        except JobFailed as exc:  # TrainingError included: the reason a user can act on
            error = {"code": exc.code, "message": exc.message, "details": json_safe(exc.details)}
            self._record(version_id, status=JobStatus.FAILED.value, error=error)
            raise
        except TaskloomError as exc:  # e.g. an oversized file: fails too, with its own code
            error = {"code": exc.code, "message": exc.message, "details": json_safe(exc.details)}
            self._record(version_id, status=JobStatus.FAILED.value, error=error)
            raise
        summary = {
            k: metrics.get(k)
            for k in ("accuracy", "baseline_accuracy", "roc_auc", "f1", "evaluated_on", "n")
        }
        return {"model_id": model_id, "version": row.number, "metrics": summary}

    def batch_predict(self, scope: Scope, progress: Progress, params: Any) -> dict[str, Any]:
        row = self._version(scope, params.model_id, params.version_id)
        if row.status != JobStatus.COMPLETED.value or row.artifact is None:
            raise JobFailed("the model version is not trained", code="model_not_ready")
        model = self.load_model(scope, row)
        table = self._table(scope, params.feature_id, "feature_id")
        if len(table.columns) != model.n_features_in_:
            raise JobFailed(
                f"the feature table has {len(table.columns)} columns; the model was trained on "
                f"{model.n_features_in_}",
                code="feature_mismatch",
                field="feature_id",
            )
        classes = [c.item() if hasattr(c, "item") else c for c in model.classes_]
        try:
            files = self.buckets.files(scope, params.bucket, field="bucket")
        except NotFound as exc:
            raise JobFailed(exc.message, code=exc.code, field="bucket") from exc
        n, done = table.rows, 0
        progress.progress(5, f"predicting {n} rows")
        with files.upload(params.output_path, "text/tab-separated-values") as up:
            buf = io.StringIO()
            writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
            writer.writerow(["key", "label", *(f"p_{c}" for c in classes)])
            # a row group (65,536 rows) at a time: the table is never whole in memory
            for keys, matrix in table.row_groups():
                progress.check_cancelled()
                proba = model.predict_proba(matrix)
                best = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
                text = np.char.mod("%.6g", proba)
                writer.writerows(
                    [k, b, *p]
                    for k, b, p in zip(keys.tolist(), best.tolist(), text.tolist(), strict=True)
                )
                up.write(buf.getvalue().encode())
                buf.seek(0)
                buf.truncate()
                done += len(keys)
                progress.progress(5 + 90 * done / max(n, 1), f"{done} of {n} rows")
            info = up.commit()
        return {
            "bucket": params.bucket,
            "path": params.output_path,
            "rows": done,
            "size": info.size,
            "classes": classes,
        }
