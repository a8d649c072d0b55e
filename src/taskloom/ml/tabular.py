"""Classifiers over feature tables (NCLUE "task models"): label join, training, evaluation
and a safe artifact format.

Pure code: arrays in, arrays and plain dicts out; no database, no blobs, no HTTP.

- Matching the keys of a correct-answer file to a feature table is in
  :mod:`taskloom.ml.join`.
- :class:`TabularClassifier` wraps scikit-learn's ``HistGradientBoostingClassifier``
  (binary and multi-class, any str/int labels, missing values allowed in ``X``).
- :func:`held_out_split` makes the stratified, seeded held-out split (as row numbers;
  :func:`train_test_split` applies it to arrays);
  :func:`evaluate` computes the metrics a model version shows;
  :func:`fit_and_evaluate` is the two together, as the training job runs them.
- :func:`save` / :func:`load` turn a fitted model into bytes and back through ``skops.io``
  with an explicit list of trusted types: no pickle is ever loaded, and a payload naming
  any other type is refused.

Data problems a user can fix raise :class:`TrainingError` with a stable ``code``
(``no_key_matched``, ``single_class``, ``duplicate_feature_key``, ...); a training job
records the code and message as its failure reason.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score
from sklearn.model_selection import train_test_split as _sk_train_test_split

from taskloom.errors import JobFailed

__all__ = [
    "ARTIFACT_FORMAT",
    "TabularClassifier",
    "TrainingError",
    "check_classes",
    "evaluate",
    "fit_and_evaluate",
    "held_out_split",
    "load",
    "save",
    "train_test_split",
]

ARTIFACT_FORMAT = "taskloom.tabular/1"

# skops trusts scikit-learn estimators, numpy arrays and builtins by default; the one type
# a fitted HistGradientBoostingClassifier holds beyond those is listed here, by name, and
# nothing else is accepted when loading.
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


class TrainingError(JobFailed):
    """The training data cannot be used."""

    code = "training_failed"


# -- labels ----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A label as a JSON-friendly Python value (numpy scalars -> int/float/str/bool)."""
    return value.item() if isinstance(value, np.generic) else value


def _label_array(y: Any, *, name: str = "y") -> np.ndarray:
    """Labels as a 1-D array of one kind: integers, floats, bools or strings.

    Mixed Python objects (e.g. ``1`` and ``"1"``) become strings, so classes sort and
    serialise; missing labels (None, NaN, empty strings) are refused.
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind in "iub":
        return arr
    if kind == "f":
        if np.isnan(arr).any():
            raise TrainingError(f"{name} has missing labels (NaN)", code="missing_label")
        return arr
    if kind == "U":
        if (arr == "").any():
            raise TrainingError(f"{name} has empty labels", code="missing_label")
        return arr.astype(object)
    if kind == "O":
        series = pd.Series(arr, dtype=object)
        if series.isna().any():
            raise TrainingError(f"{name} has missing labels", code="missing_label")
        inferred = pd.api.types.infer_dtype(series, skipna=False)
        if inferred == "integer":
            return series.astype(np.int64).to_numpy()
        if inferred == "boolean":
            return series.astype(bool).to_numpy()
        # already text: kept as it is (astype(str) would make a new string per row)
        strings = arr if inferred == "string" else series.astype(str).to_numpy(dtype=object)
        if (strings == "").any():
            raise TrainingError(f"{name} has empty labels", code="missing_label")
        return strings
    raise ValueError(f"{name}: labels of dtype {arr.dtype} are not supported")


def _encode(y: np.ndarray) -> tuple[list[Any], np.ndarray]:
    """Sorted classes (plain Python values) and each label's class index (hash-based)."""
    codes, uniques = pd.factorize(y, sort=True)
    classes = [_plain(v) for v in uniques]
    return classes, codes.astype(np.intp, copy=False)


def _indices(y: Any, classes: Sequence[Any]) -> np.ndarray:
    """Each label's index in ``classes``; -1 for a label that is not one of them."""
    return pd.Index(list(classes), dtype=object).get_indexer(
        pd.Index(_label_array(y), dtype=object)
    )


# -- the classifier --------------------------------------------------------------------


class TabularClassifier:
    """Gradient-boosted trees over numeric feature columns (missing values allowed).

    The hyper-parameters are those of scikit-learn's ``HistGradientBoostingClassifier``
    with its defaults, and a fixed ``random_state`` so a retrained version is the same
    model. Labels may be strings or integers; ``classes_`` holds them sorted, and
    ``predict_proba`` has one column per class in that order.
    """

    def __init__(
        self,
        *,
        learning_rate: float = 0.1,
        max_iter: int = 100,
        max_leaf_nodes: int | None = 31,
        max_depth: int | None = None,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
        max_bins: int = 255,
        categorical_features: Sequence[int] | None = None,
        class_weight: str | dict[Any, float] | None = None,
        early_stopping: str | bool = "auto",
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        random_state: int | None = 0,
    ) -> None:
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_bins = max_bins
        self.categorical_features = categorical_features
        self.class_weight = class_weight
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state

    _PARAMS = (
        "learning_rate",
        "max_iter",
        "max_leaf_nodes",
        "max_depth",
        "min_samples_leaf",
        "l2_regularization",
        "max_bins",
        "categorical_features",
        "class_weight",
        "early_stopping",
        "validation_fraction",
        "n_iter_no_change",
        "random_state",
    )

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters, as passed to ``__init__``."""
        return {name: getattr(self, name) for name in self._PARAMS}

    def estimator_params(self) -> dict[str, Any]:
        """The keyword arguments of the wrapped ``HistGradientBoostingClassifier``."""
        params = self.get_params()
        if params["categorical_features"] is None:
            params["categorical_features"] = "from_dtype"
        else:
            params["categorical_features"] = list(params["categorical_features"])
        # class weights are given per label; the estimator sees class indices
        params["class_weight"] = None
        return params

    # fitted state: classes_, estimator_, n_features_in_

    def fit(self, X: Any, y: Any) -> TabularClassifier:
        """Fit on ``X`` (n_samples x n_features, numbers or NaN) and labels ``y``."""
        features = np.asarray(X)
        if features.ndim != 2:
            raise ValueError(f"X must be two-dimensional, got shape {features.shape}")
        labels = _label_array(y)
        if len(labels) != features.shape[0]:
            raise ValueError(f"{features.shape[0]} rows for {len(labels)} labels")
        if len(labels) == 0:
            raise TrainingError("there are no rows to train on", code="no_rows")
        classes, codes = _encode(labels)
        if len(classes) < 2:
            raise TrainingError(
                f"every training row has the label {classes[0]!r}: "
                "a classifier needs at least two classes",
                code="single_class",
                details={"label": str(classes[0])},
            )
        estimator = HistGradientBoostingClassifier(**self.estimator_params())
        if self.class_weight is not None:
            estimator.set_params(class_weight=self._class_weight_by_index(classes))
        estimator.fit(features, codes)
        self.classes_ = classes
        self.estimator_ = estimator
        self.n_features_in_ = int(features.shape[1])
        return self

    def _class_weight_by_index(self, classes: list[Any]) -> str | dict[int, float]:
        if isinstance(self.class_weight, str):
            return self.class_weight
        assert self.class_weight is not None
        by_label = {str(k): float(v) for k, v in self.class_weight.items()}
        return {i: by_label.get(str(c), 1.0) for i, c in enumerate(classes)}

    def _check_fitted(self, X: Any) -> np.ndarray:
        if not hasattr(self, "estimator_"):
            raise RuntimeError("this TabularClassifier is not fitted yet; call fit() first")
        features = np.asarray(X)
        if features.ndim != 2 or features.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have shape (n, {self.n_features_in_}), got {features.shape}")
        return features

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        features = self._check_fitted(X)
        if features.shape[0] == 0:
            return np.zeros((0, len(self.classes_)))
        return np.asarray(self.estimator_.predict_proba(features))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row (labels of the kind trained on)."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes_, dtype=object)[proba.argmax(axis=1)]

    @property
    def n_iter_(self) -> int:
        """Boosting iterations actually run (early stopping may end before ``max_iter``)."""
        return int(self.estimator_.n_iter_)


# -- split and evaluation --------------------------------------------------------------


def held_out_split(
    y: Any, *, test_size: float = 0.2, random_state: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The held-out split as row numbers ``(fit, evaluation)``: a ``test_size`` share held
    out, stratified by label when every class has at least two rows, and the same for the
    same ``random_state``."""
    labels = np.asarray(y)
    n = len(labels)
    n_test = int(np.ceil(n * test_size))
    if n - n_test < 2 or n_test < 1:
        raise TrainingError(
            f"{n} labelled rows are too few to hold some out for evaluation",
            code="too_few_rows",
            details={"rows": n},
        )
    _, codes = _encode(_label_array(labels))
    counts = np.bincount(codes)
    stratify = codes if counts.min() >= 2 and n_test >= len(counts) else None
    fit, held = _sk_train_test_split(
        np.arange(n), test_size=n_test, random_state=random_state, stratify=stratify
    )
    return np.asarray(fit), np.asarray(held)


def train_test_split(
    X: Any, y: Any, *, test_size: float = 0.2, random_state: int | None = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The held-out split of arrays: ``X_train, X_test, y_train, y_test``
    (rows as :func:`held_out_split` picks them)."""
    features = np.asarray(X)
    labels = np.asarray(y)
    fit, held = held_out_split(labels, test_size=test_size, random_state=random_state)
    return features[fit], features[held], labels[fit], labels[held]


def check_classes(y: Any) -> list[Any]:
    """The sorted classes of labels ``y``; ``single_class`` when there are fewer than two."""
    classes, _ = _encode(_label_array(y))
    if len(classes) == 1:
        raise TrainingError(
            f"every training row has the label {classes[0]!r}: "
            "a classifier needs at least two classes",
            code="single_class",
            details={"label": str(classes[0])},
        )
    return classes


def _roc_auc(y_idx: np.ndarray, proba: np.ndarray, pos: int | None) -> float | None:
    known = y_idx < proba.shape[1]
    if pos is not None:  # binary: the positive class against the rest
        truth = y_idx[known] == pos
        if truth.all() or not truth.any():
            return None
        return float(roc_auc_score(truth, proba[known, pos]))
    # multi-class: one-vs-rest, macro over the classes the test set has both sides of
    scores = []
    for c in range(proba.shape[1]):
        truth = y_idx[known] == c
        if truth.any() and not truth.all():
            scores.append(roc_auc_score(truth, proba[known, c]))
    return float(np.mean(scores)) if scores else None


def evaluate(
    y_true: Any, proba: Any, classes: Sequence[Any], *, pos_label: Any = None
) -> dict[str, Any]:
    """Metrics of predictions ``proba`` (columns in ``classes`` order) against ``y_true``.

    Binary (two classes): precision, recall and F1 of the positive class (``pos_label``,
    default the last class, e.g. ``1``, ``"true"``, ``"yes"``) and its ROC AUC.
    Multi-class: macro averages, with ``per_class`` figures, and one-vs-rest macro ROC AUC.
    Always: accuracy, the confusion matrix (rows true, columns predicted, in ``labels``
    order), label counts, and ``baseline_accuracy``, the accuracy of always answering the
    test set's most frequent class. Test labels the model never saw count as errors and are
    appended to ``labels``; ``roc_auc`` is None where it is undefined (one class only).
    """
    classes = [_plain(c) for c in classes]
    scores = np.asarray(proba, dtype=np.float64)
    k = len(classes)
    if scores.ndim != 2 or scores.shape[1] != k:
        raise ValueError(f"proba must have {k} columns, got shape {scores.shape}")
    truth = _label_array(y_true, name="y_true")
    n = len(truth)
    if n != scores.shape[0]:
        raise ValueError(f"{n} labels for {scores.shape[0]} predictions")
    if n == 0:
        raise TrainingError("there are no rows to evaluate on", code="no_rows")
    y_idx = _indices(truth, classes)
    labels = list(classes)
    unseen = y_idx < 0
    if unseen.any():
        extra, extra_codes = _encode(truth[unseen])
        labels += extra
        y_idx = y_idx.copy()
        y_idx[unseen] = k + extra_codes
    y_pred = scores.argmax(axis=1)
    m = len(labels)
    confusion = np.bincount(y_idx * m + y_pred, minlength=m * m).reshape(m, m)
    support = confusion.sum(axis=1)
    names = [str(c) for c in labels]
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_idx, y_pred, labels=list(range(m)), average=None, zero_division=0
    )
    majority = int(support.argmax())
    result: dict[str, Any] = {
        "n": n,
        "labels": labels,
        "accuracy": float(np.trace(confusion) / n),
        "baseline_accuracy": float(support[majority] / n),
        "majority_class": labels[majority],
        "label_counts": {names[i]: int(support[i]) for i in range(m)},
        "confusion_matrix": confusion.tolist(),
        "unseen_labels": int(unseen.sum()),
    }
    if k == 2:
        pos = 1 if pos_label is None else classes.index(_plain(pos_label))
        result.update(
            average="binary",
            positive_class=classes[pos],
            precision=float(precision[pos]),
            recall=float(recall[pos]),
            f1=float(f1[pos]),
            roc_auc=_roc_auc(y_idx, scores, pos),
        )
    else:
        result.update(
            average="macro",
            precision=float(np.mean(precision)),
            recall=float(np.mean(recall)),
            f1=float(np.mean(f1)),
            roc_auc=_roc_auc(y_idx, scores, None),
        )
    result["per_class"] = {
        names[i]: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i in range(m)
    }
    return result


def fit_and_evaluate(
    X: Any,
    y: Any,
    *,
    X_test: Any = None,
    y_test: Any = None,
    test_size: float = 0.2,
    random_state: int | None = 0,
    evaluated_on: str | None = None,
    **params: Any,
) -> tuple[TabularClassifier, dict[str, Any]]:
    """Train a :class:`TabularClassifier` and evaluate it: on ``X_test``/``y_test`` when
    given, else on a held-out ``test_size`` share of ``X``/``y`` (stratified, seeded).
    The metrics say which (``evaluated_on``: ``"test_set"`` or ``"held_out"``; a caller that
    split the rows itself with :func:`held_out_split` passes ``evaluated_on="held_out"``)."""
    labels = _label_array(y)
    check_classes(labels)
    if X_test is None:
        X_fit, X_eval, y_fit, y_eval = train_test_split(
            X, labels, test_size=test_size, random_state=random_state
        )
        evaluated_on = "held_out"
    else:
        X_fit, y_fit, X_eval, y_eval = np.asarray(X), labels, np.asarray(X_test), y_test
        evaluated_on = evaluated_on or "test_set"
    model = TabularClassifier(random_state=random_state, **params).fit(X_fit, y_fit)
    metrics = evaluate(y_eval, model.predict_proba(X_eval), model.classes_)
    metrics.update(evaluated_on=evaluated_on, train_rows=int(len(y_fit)), n_iter=model.n_iter_)
    return model, metrics


# -- artifacts -------------------------------------------------------------------------


def save(model: TabularClassifier) -> bytes:
    """A fitted model as bytes (a skops zip: JSON schema plus numpy arrays; no pickle)."""
    import skops.io as sio

    if not hasattr(model, "estimator_"):
        raise ValueError("only a fitted TabularClassifier can be saved")
    params = model.get_params()
    if params["categorical_features"] is not None:
        params["categorical_features"] = [int(i) for i in params["categorical_features"]]
    if isinstance(params["class_weight"], dict):
        params["class_weight"] = {str(k): float(v) for k, v in params["class_weight"].items()}
    meta = {
        "format": ARTIFACT_FORMAT,
        "classes": model.classes_,
        "n_features_in": model.n_features_in_,
        "params": params,
    }
    return bytes(sio.dumps({"meta": json.dumps(meta), "estimator": model.estimator_}))


def load(data: bytes) -> TabularClassifier:
    """The model :func:`save` wrote. Anything else is refused with ``ValueError``: a pickle,
    a damaged or altered file, or a file that names any type outside the trusted list."""
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("load() takes bytes")
    raw = bytes(data)
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise ValueError("not a taskloom model artifact (not a skops file)")
    try:
        obj = sio.loads(raw, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        raise ValueError(f"refusing a model artifact with untrusted types: {exc}") from exc
    except Exception as exc:  # zip/JSON/array damage: the file is not what save() wrote
        raise ValueError(f"damaged model artifact: {exc}") from exc
    if not isinstance(obj, dict) or set(obj) != {"meta", "estimator"}:
        raise ValueError("not a taskloom model artifact")
    estimator = obj["estimator"]
    try:
        meta = json.loads(obj["meta"])
    except (TypeError, ValueError) as exc:
        raise ValueError("damaged model artifact metadata") from exc
    if not isinstance(meta, dict) or meta.get("format") != ARTIFACT_FORMAT:
        raise ValueError("unknown model artifact format")
    if not isinstance(estimator, HistGradientBoostingClassifier):
        raise ValueError("the model artifact holds an unexpected estimator")
    classes = meta["classes"]
    if len(estimator.classes_) != len(classes):
        raise ValueError("the model artifact's classes do not match its estimator")
    model = TabularClassifier(**meta["params"])
    model.classes_ = list(classes)
    model.estimator_ = estimator
    model.n_features_in_ = int(meta["n_features_in"])
    return model
