"""Task-model training (``taskloom.ml.tabular``, ``taskloom.ml.join``,
``taskloom.ml.label_file``): a classifier learns a purchase-interest label from behaviour
features, evaluates honestly, joins labels by key, saves to a safe format that loads back
exactly, and the correct-answer file reader copes with what real files look like."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from taskloom.errors import JobFailed
from taskloom.ml.join import join_labels
from taskloom.ml.label_file import read_label_file
from taskloom.ml.tabular import (
    TabularClassifier,
    TrainingError,
    evaluate,
    fit_and_evaluate,
    load,
    save,
    train_test_split,
)

FEATURES = [
    "visits_30d",
    "pet_page_views",
    "cart_adds",
    "days_since_purchase",
    "avg_basket",
    "coupon_use",
    "age",
    "noise",
]


def shoppers(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` users: keys, behaviour features, and whether they are interested in pet food
    (a logistic function of some features, plus noise so it cannot be learnt perfectly)."""
    rng = np.random.default_rng(seed)
    visits = rng.poisson(6, n).astype(float)
    pet_views = rng.poisson(1.5, n).astype(float)
    cart_adds = rng.poisson(0.8, n).astype(float)
    days_since = rng.exponential(40, n)
    basket = rng.lognormal(3, 0.5, n)
    coupons = rng.integers(0, 2, n).astype(float)
    age = rng.integers(18, 80, n).astype(float)
    noise = rng.normal(size=n)
    X = np.column_stack([visits, pet_views, cart_adds, days_since, basket, coupons, age, noise])
    X[rng.random((n, X.shape[1])) < 0.02] = np.nan  # some values are missing
    logit = (
        -3.0
        + 1.2 * np.nan_to_num(pet_views)
        + 0.8 * np.nan_to_num(cart_adds)
        - 0.03 * np.nan_to_num(days_since, nan=40)
        + 0.6 * np.nan_to_num(coupons)
        + (np.nan_to_num(age, nan=40) > 55) * 0.8
    )
    interested = rng.random(n) < 1 / (1 + np.exp(-logit))
    keys = np.array([f"user-{i:06d}" for i in range(n)], dtype=object)
    y = np.where(interested, "yes", "no").astype(object)
    return keys, X, y


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return shoppers()


# -- learning --------------------------------------------------------------------------


def test_learns_purchase_interest_on_held_out_users(data):
    _, X, y = data
    model, metrics = fit_and_evaluate(X, y, random_state=0)
    assert metrics["evaluated_on"] == "held_out"
    assert metrics["n"] == 4_000 and metrics["train_rows"] == 16_000
    assert metrics["roc_auc"] >= 0.8
    assert metrics["accuracy"] > metrics["baseline_accuracy"] + 0.03
    assert metrics["positive_class"] == "yes" and metrics["average"] == "binary"
    assert model.classes_ == ["no", "yes"]
    assert set(model.predict(X[:50])) <= {"no", "yes"}


def test_metrics_agree_with_scikit_learn(data):
    _, X, y = data
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=1)
    model = TabularClassifier(max_iter=25, random_state=1).fit(X_tr, y_tr)
    proba = model.predict_proba(X_te)
    m = evaluate(y_te, proba, model.classes_)
    pred = model.predict(X_te)
    truth = y_te == "yes"
    assert m["accuracy"] == pytest.approx(accuracy_score(y_te, pred))
    assert m["f1"] == pytest.approx(f1_score(truth, pred == "yes"))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(truth, proba[:, 1]))
    cm = np.array(m["confusion_matrix"])
    assert cm.sum() == len(y_te) and cm.shape == (2, 2)
    assert cm[1, 1] == int(((pred == "yes") & truth).sum())  # row: true, column: predicted
    assert m["label_counts"] == {"no": int((~truth).sum()), "yes": int(truth.sum())}
    assert m["baseline_accuracy"] == pytest.approx(max(truth.mean(), 1 - truth.mean()))


def test_wraps_scikit_learn_without_changing_its_predictions(data):
    _, X, y = data
    X, y = X[:3_000], y[:3_000]
    ours = TabularClassifier(max_iter=15, random_state=3).fit(X, y)
    theirs = HistGradientBoostingClassifier(**ours.estimator_params()).fit(X, y == "yes")
    np.testing.assert_array_equal(ours.predict_proba(X), theirs.predict_proba(X))


def test_multi_class_with_integer_labels():
    rng = np.random.default_rng(4)
    n = 4_000
    X = rng.normal(size=(n, 6))
    segment = np.argmax(X[:, :3] + 0.5 * rng.normal(size=(n, 3)), axis=1) * 10  # 0, 10, 20
    model, m = fit_and_evaluate(X, segment, random_state=0, max_iter=30)
    assert model.classes_ == [0, 10, 20]
    assert all(isinstance(c, int) for c in model.classes_)
    assert m["average"] == "macro" and "positive_class" not in m
    assert m["accuracy"] > 0.7 > m["baseline_accuracy"]
    assert m["roc_auc"] > 0.85
    assert set(m["per_class"]) == {"0", "10", "20"}
    assert m["f1"] == pytest.approx(np.mean([v["f1"] for v in m["per_class"].values()]))
    assert np.array(m["confusion_matrix"]).shape == (3, 3)
    assert model.predict_proba(X[:7]).shape == (7, 3)
    assert set(model.predict(X)) <= {0, 10, 20}


def test_evaluating_on_a_separate_test_set_with_an_unseen_label():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2_000, 3))
    y = np.where(X[:, 0] > 0, "a", "b")
    X_test = rng.normal(size=(300, 3))
    y_test = np.where(X_test[:, 0] > 0, "a", "b").astype(object)
    y_test[:10] = "c"  # a label the model never saw: counted as wrong, listed last
    _, m = fit_and_evaluate(X, y, X_test=X_test, y_test=y_test, max_iter=30)
    assert m["evaluated_on"] == "test_set" and m["train_rows"] == 2_000 and m["n"] == 300
    assert m["labels"] == ["a", "b", "c"] and m["unseen_labels"] == 10
    assert m["label_counts"]["c"] == 10
    assert np.array(m["confusion_matrix"])[2].sum() == 10
    assert m["accuracy"] <= 290 / 300
    assert m["roc_auc"] > 0.9


def test_single_class_is_refused():
    X = np.zeros((100, 2))
    with pytest.raises(TrainingError) as err:
        TabularClassifier().fit(X, ["yes"] * 100)
    assert err.value.code == "single_class" and "'yes'" in err.value.message
    with pytest.raises(TrainingError) as err:
        fit_and_evaluate(X, np.ones(100, dtype=int))
    assert err.value.code == "single_class"


def test_missing_labels_and_tiny_sets_are_refused():
    with pytest.raises(TrainingError) as err:
        TabularClassifier().fit(np.zeros((3, 1)), ["a", None, "b"])
    assert err.value.code == "missing_label"
    with pytest.raises(TrainingError) as err:
        train_test_split(np.zeros((2, 1)), ["a", "b"])
    assert err.value.code == "too_few_rows"


def test_split_is_stratified_and_seeded(data):
    _, X, y = data
    a = train_test_split(X, y, test_size=0.25, random_state=7)
    b = train_test_split(X, y, test_size=0.25, random_state=7)
    c = train_test_split(X, y, test_size=0.25, random_state=8)
    np.testing.assert_array_equal(a[3], b[3])
    assert not np.array_equal(a[3], c[3])
    share = (y == "yes").mean()
    assert (a[3] == "yes").mean() == pytest.approx(share, abs=0.002)
    assert len(a[1]) == 5_000 and len(a[0]) == 15_000


def test_predict_before_fit_and_wrong_width():
    with pytest.raises(RuntimeError, match="not fitted"):
        TabularClassifier().predict(np.zeros((1, 2)))
    model = TabularClassifier(max_iter=5).fit(np.arange(40.0).reshape(20, 2), [0, 1] * 10)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        model.predict(np.zeros((1, 3)))


# -- the label join --------------------------------------------------------------------


def test_join_matches_keys_in_label_order_and_reports_the_unmatched():
    fkeys = np.array(["u1", "u2", "u3", "u4"], dtype=object)
    X = np.arange(8, dtype=np.float32).reshape(4, 2)
    joined = join_labels(fkeys, X, ["u3", "nobody", "u1", "ghost"], ["b", "a", "a", "b"])
    np.testing.assert_array_equal(joined.X, [[4.0, 5.0], [0.0, 1.0]])
    assert joined.X.dtype == np.float64 and joined.X.flags.c_contiguous
    assert list(joined.y) == ["b", "a"]
    assert list(joined.matched) == ["u3", "u1"]
    assert list(joined.unmatched) == ["nobody", "ghost"]
    X_train, y, matched, unmatched = joined  # a plain 4-tuple too
    assert len(matched) == 2 and len(unmatched) == 2


def test_join_matches_integer_feature_keys_to_text_keys():
    joined = join_labels(np.array([10, 20, 30]), np.eye(3), ["30", "10"], [1, 0])
    np.testing.assert_array_equal(joined.X, [[0, 0, 1], [1, 0, 0]])
    assert len(joined.unmatched) == 0


def test_join_at_scale_is_vectorised():
    n = 200_000
    rng = np.random.default_rng(0)
    fkeys = np.array([f"k{i}" for i in range(n)], dtype=object)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    order = rng.permutation(n)[: n // 2]
    joined = join_labels(fkeys, X, fkeys[order], order % 2)
    np.testing.assert_array_equal(joined.X, X[order].astype(np.float64))
    np.testing.assert_array_equal(joined.y, order % 2)


@pytest.mark.parametrize(
    ("fkeys", "lkeys", "code"),
    [
        (["a", "b"], ["x", "y"], "no_key_matched"),
        (["a", "a"], ["a", "b"], "duplicate_feature_key"),
        (["a", "b"], ["a", "a"], "duplicate_label_key"),
    ],
)
def test_join_errors(fkeys, lkeys, code):
    with pytest.raises(TrainingError) as err:
        join_labels(np.array(fkeys, dtype=object), np.zeros((2, 1)), lkeys, ["0", "1"])
    assert err.value.code == code
    assert isinstance(err.value, JobFailed)  # the training job fails at once, no retry


# -- artifacts -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(data) -> TabularClassifier:
    _, X, y = data
    return TabularClassifier(max_iter=40, random_state=0).fit(X[:8_000], y[:8_000])


def test_save_load_round_trip_is_exact(data, fitted):
    _, X, _ = data
    blob = save(fitted)
    assert isinstance(blob, bytes) and zipfile.is_zipfile(io.BytesIO(blob))
    again = load(blob)
    assert again.classes_ == fitted.classes_
    assert again.get_params() == fitted.get_params()
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))


def test_round_trip_keeps_integer_classes_and_multi_class():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(900, 4))
    y = np.argmax(X[:, :3], axis=1) + 1
    model = TabularClassifier(max_iter=10, categorical_features=None).fit(X, y)
    again = load(save(model))
    assert again.classes_ == [1, 2, 3]
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def test_a_pickle_is_refused(fitted):
    with pytest.raises(ValueError, match="not a taskloom model artifact"):
        load(pickle.dumps(fitted))


def test_a_payload_naming_untrusted_types_is_refused():
    import os

    payload = sio.dumps({"meta": "{}", "estimator": os.system})
    with pytest.raises(ValueError, match="untrusted"):
        load(payload)


def test_a_tampered_payload_is_refused(fitted):
    blob = bytearray(save(fitted))
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(ValueError):
        load(bytes(blob))


def test_another_skops_object_is_refused():
    from sklearn.linear_model import LogisticRegression

    other = LogisticRegression().fit(np.eye(4), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="not a taskloom model artifact"):
        load(sio.dumps(other))


def test_an_unfitted_model_cannot_be_saved():
    with pytest.raises(ValueError, match="fitted"):
        save(TabularClassifier())


# -- the correct-answer file -----------------------------------------------------------


def test_reads_tsv_with_bom_crlf_quotes_and_blank_lines():
    data = (
        b"\xef\xbb\xbfuser_id\tinterested\r\n"
        b"u1\tyes\r\n"
        b"\r\n"
        b'"u\t2"\t"no"\r\n'
        b'u3\t"say ""maybe"""\r\n'
        b"  u4 \t yes \r\n"
        b"\t\r\n"
    )
    table = read_label_file(data, filename="task_dataset/pet_food.tsv")
    assert table.key_column == "user_id" and table.label_column == "interested"
    assert table.keys.to_pylist() == ["u1", "u\t2", "u3", "u4"]
    assert list(table.labels) == ["yes", "no", 'say "maybe"', "yes"]


def test_reads_csv_and_sniffs_the_delimiter_without_a_name():
    csv_text = b'id,label\nu1,1\n"u,2",0\n'
    for name in ("labels.csv", None):
        table = read_label_file(csv_text, filename=name)
        assert table.keys.to_pylist() == ["u1", "u,2"] and list(table.labels) == ["1", "0"]
    tsv = read_label_file(b"id\tlabel\nu1\t1\n")
    assert list(tsv.labels) == ["1"]


def test_every_cell_is_text_and_blank_lines_before_the_header_are_skipped():
    data = b"  \n\t\n\nid\tlabel\tscore\n007\t1\t0.5\n0042\t0\t\n"
    table = read_label_file(data, filename="labels.tsv")
    assert (table.key_column, table.label_column) == ("id", "label")
    assert table.keys.to_pylist() == ["007", "0042"] and list(table.labels) == ["1", "0"]


def test_reads_utf16_with_bom_and_named_columns():
    text = "label\tscore\tuser\n고양이\t1\tu1\n강아지\t2\tu2\n"
    table = read_label_file(text.encode("utf-16"), key_column="user", label_column="label")
    assert table.keys.to_pylist() == ["u1", "u2"] and list(table.labels) == ["고양이", "강아지"]


@pytest.mark.parametrize(
    ("data", "kwargs", "code"),
    [
        (b"id\n1\n2\n", {}, "missing_column"),
        (b"id\tlabel\n1\t0\n", {"label_column": "target"}, "missing_column"),
        (b"id\tlabel\n1\t0\n", {"key_column": "user"}, "missing_column"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", {}, "unreadable_file"),
        (b"id\tlabel\n\xff\xfeu1\t1\n", {}, "unreadable_file"),
        (b'id\tlabel\nu1\t"open quote\n', {}, "unreadable_file"),
        (b"id,label\nu1,1,extra\n", {}, "unreadable_file"),
        (b"", {}, "no_rows"),
        (b"\r\n\n", {}, "no_rows"),
        (b"id\tlabel\r\n\r\n", {}, "no_rows"),
        (b"id\tlabel\nu1\t\n", {}, "missing_label"),
        (b"id\tlabel\n\t1\n", {}, "missing_key"),
    ],
)
def test_label_file_errors(data, kwargs, code):
    with pytest.raises(TrainingError) as err:
        read_label_file(data, **kwargs)
    assert err.value.code == code


def test_file_to_model_end_to_end(data):
    keys, X, y = data
    rows = ["user_id\tinterested"] + [f"{k}\t{v}" for k, v in zip(keys[::2], y[::2], strict=True)]
    rows.append("stranger-1\tyes")
    table = read_label_file(("\r\n".join(rows) + "\r\n").encode(), filename="pet_food.tsv")
    joined = join_labels(keys, X, table.keys, table.labels)
    assert list(joined.unmatched) == ["stranger-1"] and len(joined.matched) == 10_000
    model, m = fit_and_evaluate(joined.X, joined.y, max_iter=60)
    assert m["roc_auc"] >= 0.8 and m["accuracy"] > m["baseline_accuracy"]
