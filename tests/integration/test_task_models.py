"""Task models: the model registry, the training job's lifecycle and failure reasons, the
quality reached on generated data, predictions (keys, rows, batch), a stored artifact that
loads again after a restart, delete rules, tenancy and validation; services and HTTP."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taskloom.errors import Conflict, Invalid, NotFound
from taskloom.jobs.worker import Worker
from taskloom.runtime import Platform

from .conftest import error_of

N_USERS = 20_000
FAST = {"max_iter": 60}  # early stopping ends sooner; keeps the suite quick


def users(n: int = N_USERS, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Behaviour features of ``n`` users and a purchase-interest label that depends on them."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "user_id": [f"u{i:06d}" for i in range(n)],
            "visits": rng.poisson(4, n),
            "minutes": rng.gamma(2.0, 10.0, n).round(2),
            "cart_adds": rng.poisson(1.0, n),
            "days_since_last": rng.exponential(10.0, n).round(1),
            "member": rng.random(n) < 0.3,
            "noise": rng.normal(0, 1, n),
        }
    )
    df.loc[df.index[::11], "minutes"] = np.nan  # missing values the model copes with
    minutes = df["minutes"].fillna(20.0).to_numpy()
    z = (
        -2.2
        + 1.1 * df["cart_adds"].to_numpy()
        + 0.05 * minutes
        - 0.08 * df["days_since_last"].to_numpy()
        + 0.9 * df["member"].to_numpy()
        + 0.15 * df["visits"].to_numpy()
    )
    p = 1 / (1 + np.exp(-2.0 * z))
    interested = rng.random(n) < p
    labels = pd.DataFrame({"user_id": df["user_id"], "interest": np.where(interested, "yes", "no")})
    return df, labels


def parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf)
    return buf.getvalue()


def tsv(labels: pd.DataFrame) -> bytes:
    return labels.to_csv(sep="\t", index=False).encode()


def run_jobs(services) -> None:
    worker = Worker(services.jobs, services=services)
    while worker.run_one():
        pass


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return users()


@pytest.fixture
def feature_id(services, scope, data) -> str:
    df, labels = data
    services.buckets.create(scope, "training")
    services.buckets.put(scope, "training", "users.parquet", parquet(df))
    services.buckets.put(scope, "training", "labels/all.tsv", tsv(labels))
    f = services.features.create_from_file(scope, "users", "training", "users.parquet", "user_id")
    return f["id"]


def body(feature_id: str, path: str = "labels/all.tsv", **extra) -> dict:
    return {
        "name": "purchase interest",
        "train_feature_id": feature_id,
        "train_bucket": "training",
        "train_file_path": path,
        **extra,
    }


def trained(services, scope, feature_id: str, **extra) -> dict:
    tm = services.models.create_task_model(scope, body(feature_id, **extra), hyperparameters=FAST)
    run_jobs(services)
    tm = services.models.get_task_model(scope, tm["id"])
    assert tm["status"] == "completed", tm["error"]
    return tm


# -- lifecycle and quality ----------------------------------------------------------------


def test_lifecycle_and_quality_on_a_held_out_split(services, scope, feature_id) -> None:
    tm = services.models.create_task_model(
        scope, body(feature_id), queue=False, hyperparameters=FAST
    )
    assert tm["status"] == "registered"
    assert tm["name"] == "purchase interest" and tm["version"] == 1
    assert tm["train_feature_name"] == "users"
    assert (tm["test_feature_id"], tm["test_bucket"], tm["test_file_path"]) == (None, None, None)
    assert tm["created_at"].tzinfo is not None
    assert tm["metrics"] is None and tm["error"] is None
    assert services.models.start_task_model(scope, tm["id"])["status"] == "pending"
    with pytest.raises(Conflict) as ei:
        services.models.start_task_model(scope, tm["id"])
    assert ei.value.code == "task_not_startable"
    run_jobs(services)
    done = services.models.get_task_model(scope, tm["id"])
    assert done["status"] == "completed", done["error"]
    m = done["metrics"]
    assert m["evaluated_on"] == "held_out" and m["n"] == N_USERS // 5
    assert m["roc_auc"] >= 0.8, m
    assert m["accuracy"] > m["baseline_accuracy"], m
    assert set(m["label_counts"]) == {"no", "yes"}
    assert len(m["confusion_matrix"]) == 2
    for k in ("precision", "recall", "f1"):
        assert 0 < m[k] <= 1
    assert m["unmatched_keys"] == 0 and m["train_file_rows"] == N_USERS
    events = services.jobs.events(scope, done["job_id"])
    statuses = [e["status"] for e in events if e["type"] == "transition"]
    assert statuses == ["registered", "pending", "in_progress", "completed"]
    # the generic registry sees the same model
    model = services.models.get_model(scope, tm["id"])
    assert model["kind"] == "task_model" and model["latest_version"] == 1
    [version] = services.models.list_versions(scope, tm["id"])
    assert version["status"] == "completed" and version["has_artifact"]
    assert [m["id"] for m in services.models.list_models(scope)] == [tm["id"]]


def test_start_and_create_answer_pending_even_when_a_worker_takes_the_job_at_once(
    services, scope, feature_id, monkeypatch
) -> None:
    """The start's answer is what the start did, not a later state a fast worker made."""
    tm = services.models.create_task_model(
        scope, body(feature_id), queue=False, hyperparameters=FAST
    )
    enqueue = services.jobs.enqueue

    def enqueue_and_run(scope_, job_id):
        job = enqueue(scope_, job_id)
        run_jobs(services)  # a worker claims and finishes it before the answer is made
        return job

    monkeypatch.setattr(services.jobs, "enqueue", enqueue_and_run)
    started = services.models.start_task_model(scope, tm["id"])
    assert started["status"] == "pending" and started["metrics"] is None
    assert started["id"] == tm["id"] and started["job_id"] == tm["job_id"]
    assert services.models.get_task_model(scope, tm["id"])["status"] == "completed"
    # creating with the job queued at once answers the same way
    created = services.models.create_task_model(scope, body(feature_id), hyperparameters=FAST)
    assert created["status"] == "pending" and created["metrics"] is None
    assert services.models.get_task_model(scope, created["id"])["status"] == "completed"


def test_a_separate_test_file(services, scope, feature_id, data) -> None:
    _, labels = data
    services.buckets.put(scope, "training", "labels/train.tsv", tsv(labels[:15_000]))
    services.buckets.put(scope, "training", "labels/test.tsv", tsv(labels[15_000:]))
    tm = trained(
        services,
        scope,
        feature_id,
        path="labels/train.tsv",
        test_bucket="training",
        test_file_path="labels/test.tsv",
    )
    assert tm["test_feature_id"] is None and tm["test_file_path"] == "labels/test.tsv"
    m = tm["metrics"]
    assert m["evaluated_on"] == "test_set" and m["n"] == 5_000 and m["train_rows"] == 15_000
    assert m["roc_auc"] >= 0.8 and m["accuracy"] > m["baseline_accuracy"]


@pytest.mark.parametrize("test_file", [False, True])
def test_the_job_trains_the_model_the_in_memory_path_trains(
    services, scope, data, monkeypatch, test_file
) -> None:
    """The job reads only the matched rows of the stored table, across its row groups and a
    few columns at a time; the model and the metrics are those of joining and splitting in
    memory."""
    from taskloom.ml import tabular
    from taskloom.ml.join import join_labels
    from taskloom.ml.label_file import read_label_file
    from taskloom.services import feature_files as ff

    monkeypatch.setattr(ff, "ROW_GROUP_ROWS", 3_000)
    monkeypatch.setattr(ff, "GATHER_COLUMNS", 4)
    df, labels = data
    shuffled = labels.sample(frac=1.0, random_state=4)
    train = pd.concat([shuffled[:16_000], pd.DataFrame({"user_id": ["ghost"], "interest": "no"})])
    services.buckets.create(scope, "mem")
    services.buckets.put(scope, "mem", "users.parquet", parquet(df))
    services.buckets.put(scope, "mem", "train.tsv", tsv(train))
    services.buckets.put(scope, "mem", "test.tsv", tsv(shuffled[16_000:]))
    f = services.features.create_from_file(scope, "users-mem", "mem", "users.parquet", "user_id")
    extra = {"test_bucket": "mem", "test_file_path": "test.tsv"} if test_file else {}
    tm = services.models.create_task_model(
        scope,
        {**body(f["id"], path="train.tsv", **extra), "train_bucket": "mem"},
        hyperparameters=FAST,
    )
    run_jobs(services)
    tm = services.models.get_task_model(scope, tm["id"])
    assert tm["status"] == "completed", tm["error"]

    table = services.features.load(scope, f["id"])
    read = read_label_file(tsv(train), filename="train.tsv")
    joined = join_labels(table.keys, table.matrix, read.keys, read.labels)
    if test_file:
        held = read_label_file(tsv(shuffled[16_000:]), filename="test.tsv")
        test = join_labels(table.keys, table.matrix, held.keys, held.labels)
        model, expected = tabular.fit_and_evaluate(
            joined.X, joined.y, X_test=test.X, y_test=test.y, **FAST
        )
    else:
        model, expected = tabular.fit_and_evaluate(joined.X, joined.y, **FAST)
    m = tm["metrics"]
    assert m["evaluated_on"] == ("test_set" if test_file else "held_out")
    for k in ("n", "train_rows", "n_iter", "accuracy", "roc_auc", "f1", "confusion_matrix"):
        assert m[k] == expected[k], k
    assert m["unmatched_keys"] == 1 and m["unmatched_examples"] == ["ghost"]
    got = services.models.predict(scope, tm["id"], keys=table.keys[:500].tolist())
    np.testing.assert_allclose(
        [p["probabilities"]["yes"] for p in got["predictions"]],
        model.predict_proba(table.matrix[:500])[:, 1],
        rtol=1e-12,
    )


def test_features_from_a_dataset(services, scope) -> None:
    df, labels = users(3_000, seed=1)
    services.datasets.create(scope, "people")
    docs = [
        {
            "_id": r.user_id,
            "visits": int(r.visits),
            "cart_adds": int(r.cart_adds),
            "days": float(r.days_since_last),
            "member": bool(r.member),
            **({} if np.isnan(r.minutes) else {"minutes": float(r.minutes)}),
        }
        for r in df.itertuples()
    ]
    services.documents.insert(scope, "people", docs)
    f = services.features.create_from_dataset(
        scope, "people-f", "people", "_id", ["visits", "cart_adds", "days", "member", "minutes"]
    )
    services.buckets.create(scope, "training")
    services.buckets.put(scope, "training", "people.tsv", tsv(labels))
    tm = trained(services, scope, f["id"], path="people.tsv")
    assert tm["train_feature_name"] == "people-f"
    assert tm["metrics"]["roc_auc"] >= 0.8


# -- failures -------------------------------------------------------------------------------


def failing_cases(services, scope, feature_id) -> dict[str, dict]:
    put = services.buckets.put
    put(scope, "training", "other.tsv", b"user_id\tinterest\nzz1\tyes\nzz2\tno\n")
    put(scope, "training", "one.tsv", b"user_id\tinterest\nu000001\tyes\nu000002\tyes\n")
    put(scope, "training", "binary.tsv", b"\x00\x01\x02\xff\xfe garbage \x00" * 50)
    doomed = services.features.create_from_file(
        scope, "doomed", "training", "users.parquet", "user_id"
    )["id"]
    return {
        "file_missing": body(feature_id, "nope.tsv"),
        "unknown_feature": body(doomed),  # its table is deleted before the job runs
        "no_key_matched": body(feature_id, "other.tsv"),
        "single_class": body(feature_id, "one.tsv"),
        "unreadable_file": body(feature_id, "binary.tsv"),
    }


def test_failures_carry_their_reason_and_are_not_retried(services, scope, feature_id) -> None:
    cases = failing_cases(services, scope, feature_id)
    made = {code: services.models.create_task_model(scope, b) for code, b in cases.items()}
    # a table deleted between the request and the training: the job says so
    services.features.delete(scope, cases["unknown_feature"]["train_feature_id"])
    run_jobs(services)
    for code, tm in made.items():
        got = services.models.get_task_model(scope, tm["id"])
        assert got["status"] == "failed", (code, got)
        assert got["error"]["code"] == code, got["error"]
        assert got["error"]["message"]
        assert got["metrics"] is None
        job = services.jobs.get(scope, got["job_id"])
        assert job["attempts"] == 1 and job["status"] == "failed"  # no retry
    missing_bucket = services.models.create_task_model(
        scope, {**body(feature_id), "train_bucket": "gone"}
    )
    run_jobs(services)
    assert services.models.get_task_model(scope, missing_bucket["id"])["error"]["code"] == (
        "file_missing"
    )


def test_delete_rules(services, scope, feature_id) -> None:
    registered = services.models.create_task_model(scope, body(feature_id), queue=False)
    services.models.delete_task_model(scope, registered["id"])
    with pytest.raises(NotFound):
        services.models.get_task_model(scope, registered["id"])
    with pytest.raises(NotFound):
        services.jobs.get(scope, registered["job_id"])
    with pytest.raises(NotFound):
        services.models.get_model(scope, registered["id"])

    pending = services.models.create_task_model(scope, body(feature_id), hyperparameters=FAST)
    with pytest.raises(Conflict) as ei:
        services.models.delete_task_model(scope, pending["id"])
    assert ei.value.code == "task_not_deletable" and ei.value.details["status"] == "pending"
    run_jobs(services)
    with pytest.raises(Conflict) as ei:
        services.models.delete_task_model(scope, pending["id"])
    assert ei.value.details["status"] == "completed"
    assert services.models.get_task_model(scope, pending["id"])["status"] == "completed"


# -- predictions and the artifact ---------------------------------------------------------


def test_predict_keys_rows_and_batch(services, scope, feature_id, data) -> None:
    df, labels = data
    tm = trained(services, scope, feature_id)
    keys = ["u000003", "u000010", "nobody", "u019999"]
    by_key = services.models.predict(scope, tm["id"], keys=keys)
    assert by_key["missing_keys"] == ["nobody"]
    assert [p["key"] for p in by_key["predictions"]] == ["u000003", "u000010", "u019999"]
    for p in by_key["predictions"]:
        assert p["label"] in ("yes", "no")
        assert set(p["probabilities"]) == {"no", "yes"}
        assert abs(sum(p["probabilities"].values()) - 1) < 1e-9
        assert p["label"] == max(p["probabilities"], key=p["probabilities"].get)
    # the same users given as rows (in the feature table's column order) predict the same
    cols = [c for c in df.columns if c != "user_id"]
    sel = df.set_index("user_id").loc[["u000003", "u000010", "u019999"], cols]
    rows = [[None if pd.isna(v) else float(v) for v in r] for r in sel.itertuples(index=False)]
    by_rows = services.models.predict(scope, tm["id"], rows=rows)
    for a, b in zip(by_key["predictions"], by_rows["predictions"], strict=True):
        assert "key" not in b and a["label"] == b["label"]
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)

    job = services.models.submit_batch_prediction(
        scope, tm["id"], feature_id=feature_id, bucket="training", output_path="out/scores.tsv"
    )
    assert job["kind"] == "predict_task_model"
    run_jobs(services)
    job = services.jobs.get(scope, job["id"])
    assert job["status"] == "completed", job["error"]
    assert job["result"]["rows"] == N_USERS
    text = services.buckets.get(scope, "training", "out/scores.tsv").decode()
    out = list(csv.reader(io.StringIO(text), delimiter="\t"))
    assert out[0] == ["key", "label", "p_no", "p_yes"] and len(out) == N_USERS + 1
    scored = {r[0]: r for r in out[1:]}
    for p in by_key["predictions"]:
        assert scored[p["key"]][1] == p["label"]
        assert float(scored[p["key"]][3]) == pytest.approx(p["probabilities"]["yes"], abs=1e-5)
    # the batch scores rank interested users above the others
    from sklearn.metrics import roc_auc_score

    truth = labels.set_index("user_id")["interest"].eq("yes")
    p_yes = pd.Series({k: float(r[3]) for k, r in scored.items()})
    assert roc_auc_score(truth.loc[p_yes.index], p_yes) >= 0.8


def test_predict_errors(services, scope, feature_id) -> None:
    pending = services.models.create_task_model(
        scope, body(feature_id), queue=False, hyperparameters=FAST
    )
    with pytest.raises(Conflict) as ei:
        services.models.predict(scope, pending["id"], keys=["u000001"])
    assert ei.value.code == "model_not_ready"
    services.models.start_task_model(scope, pending["id"])
    run_jobs(services)
    mid = pending["id"]
    for kw, code in [
        ({}, "keys_or_rows"),
        ({"keys": ["a"], "rows": [[1.0]]}, "keys_or_rows"),
        ({"rows": [[1.0, 2.0]]}, "invalid_rows"),
        ({"rows": [[float("nan")] * 6]}, "invalid_rows"),
        ({"keys": [None]}, "invalid_keys"),
    ]:
        with pytest.raises(Invalid) as e:
            services.models.predict(scope, mid, **kw)
        assert e.value.code == code, kw
    with pytest.raises(NotFound) as nf:
        services.models.predict(scope, mid, keys=["a"], feature_id="nope")
    assert nf.value.field == "feature_id"
    with pytest.raises(NotFound):
        services.models.submit_batch_prediction(
            scope, mid, feature_id=feature_id, bucket="nobucket", output_path="x.tsv"
        )
    with pytest.raises(Invalid) as e:
        services.models.submit_batch_prediction(
            scope, mid, feature_id=feature_id, bucket="training", output_path="../x.tsv"
        )
    assert e.value.code == "invalid_file_path" and e.value.field == "output_path"


def test_the_artifact_is_safe_and_survives_a_restart(settings, tmp_path, data) -> None:
    df, labels = data
    p = Platform(settings, workers=0, lock=None).start()
    try:
        services = p.services
        scope = services.auth.scope(services.auth.authenticate(settings.bootstrap_api_key))
        services.buckets.create(scope, "training")
        services.buckets.put(scope, "training", "users.parquet", parquet(df))
        services.buckets.put(scope, "training", "labels/all.tsv", tsv(labels))
        fid = services.features.create_from_file(
            scope, "users", "training", "users.parquet", "user_id"
        )["id"]
        tm = trained(services, scope, fid)
        before = services.models.predict(scope, tm["id"], keys=["u000001", "u000002"])
        area = services.models.area(scope)
        [version] = services.models.list_versions(scope, tm["id"])
        artifact = f"{tm['id']}/{version['id']}.skops"
        raw = area.read(artifact)
        assert zipfile.is_zipfile(io.BytesIO(raw)) and b"pickle" not in raw[:4]
        # /v1/blobs of the app does not reach the .models area
        assert services.blobs.app(scope.app_id).list("")["data"] == []
        assert area.full_path(artifact).split("/")[-4] == ".models"
    finally:
        p.stop()
    p2 = Platform(settings, workers=0, lock=None).start()
    try:
        services = p2.services
        scope = services.auth.scope(services.auth.authenticate(settings.bootstrap_api_key))
        after = services.models.predict(scope, tm["id"], keys=["u000001", "u000002"])
        assert after == before
        assert services.models.get_task_model(scope, tm["id"])["status"] == "completed"
    finally:
        p2.stop()


# -- HTTP: validation, tenancy, paging ----------------------------------------------------


@pytest.fixture
def small_feature(http) -> str:
    df, labels = users(600, seed=2)
    assert http.post("/v1/buckets", json={"name": "training"}).status_code == 201
    r = http.put("/v1/buckets/training/files/users.csv", content=df.to_csv(index=False).encode())
    assert r.status_code in (200, 201), r.text
    r = http.put("/v1/buckets/training/files/labels.tsv", content=tsv(labels))
    assert r.status_code in (200, 201), r.text
    src = {"kind": "file", "bucket": "training", "path": "users.csv", "key_column": "user_id"}
    r = http.post("/v1/features", json={"name": "users", "source": src})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_http_validation(http, small_feature) -> None:
    good = body(small_feature, "labels.tsv")
    cases = [
        ({**good, "name": "x" * 41}, "name_too_long", "name"),
        ({**good, "name": ""}, "required", "name"),
        ({k: v for k, v in good.items() if k != "train_bucket"}, "required", "train_bucket"),
        ({**good, "train_file_path": "a/../b.tsv"}, "invalid_file_path", "train_file_path"),
        ({**good, "train_file_path": "a?b.tsv"}, "invalid_file_path", "train_file_path"),
        ({**good, "train_bucket": "Bad_Bucket"}, "invalid_bucket_name", "train_bucket"),
        ({**good, "test_bucket": "training"}, "required_with", "test_file_path"),
        ({**good, "queue": "yes"}, "invalid_type", "queue"),
        ({**good, "hyperparameters": {"max_iter": 0}}, "invalid_hyperparameters", None),
        ({**good, "hyperparameters": {"bogus": 1}}, "invalid_hyperparameters", None),
    ]
    for payload, code, field in cases:
        err = error_of(http.post("/v1/task-models", json=payload), 422, code)
        if field is not None:
            assert err["details"]["field"] == field, err
    error_of(http.post("/v1/task-models", json=[1]), 422)
    assert http.get("/v1/task-models").json()["data"] == []
    error_of(http.get("/v1/task-models/nope"), 404, "task_model_not_found")
    error_of(http.get("/v1/models/nope"), 404, "model_not_found")
    error_of(http.get("/v1/task-models?limit=0"), 422)
    error_of(http.get("/v1/task-models?cursor=xyz"), 422, "invalid_cursor")


def test_http_paging_predict_and_tenancy(http, make_http, services, small_feature) -> None:
    made = []
    for i in range(3):
        r = http.post(
            "/v1/task-models",
            json={
                **body(small_feature, "labels.tsv"),
                "name": f"m{i}",
                "queue": i != 0,
                "hyperparameters": {"max_iter": 20},
            },
        )
        assert r.status_code == 201, r.text
        made.append(r.json())
    assert made[0]["status"] == "registered" and made[1]["status"] == "pending"
    assert (
        isinstance(made[0]["created_at"], str)
        and made[0]["created_at"].endswith("Z")
        or ("+" in made[0]["created_at"])
    )
    page = http.get("/v1/task-models?limit=2").json()
    assert [t["name"] for t in page["data"]] == ["m2", "m1"] and page["cursor"]
    rest = http.get(f"/v1/task-models?limit=2&cursor={page['cursor']}").json()
    assert [t["name"] for t in rest["data"]] == ["m0"] and rest["cursor"] is None
    run_jobs(services)
    done = http.get(f"/v1/task-models/{made[1]['id']}").json()
    assert done["status"] == "completed" and done["metrics"]["roc_auc"] > 0.5
    r = http.post(f"/v1/task-models/{made[1]['id']}/predict", json={"keys": ["u000001", 5]})
    assert r.status_code == 200, r.text
    assert r.json()["missing_keys"] == ["5"]
    error_of(http.post(f"/v1/task-models/{made[1]['id']}/predict", json={"keys": "x"}), 422)
    error_of(http.post(f"/v1/task-models/{made[0]['id']}/predict", json={"keys": ["a"]}), 409)
    error_of(http.delete(f"/v1/task-models/{made[1]['id']}"), 409, "task_not_deletable")
    r = http.post(
        f"/v1/task-models/{made[1]['id']}/batch-predictions",
        json={"bucket": "training", "output_path": "out.tsv"},
    )
    assert r.status_code == 202 and r.json()["kind"] == "predict_task_model"
    assert len(http.get(f"/v1/models/{made[1]['id']}/versions").json()["data"]) == 1
    assert http.get("/v1/models").json()["count"] == 3

    # another app sees none of it
    r = http.post("/v1/users", json={"name": "bob", "app_name": "bobs-app"})
    bob = make_http(r.json()["api_key"])
    for path in (f"/v1/task-models/{made[1]['id']}", f"/v1/models/{made[1]['id']}"):
        error_of(bob.get(path), 404)
    error_of(bob.delete(f"/v1/task-models/{made[0]['id']}"), 404)
    error_of(bob.post(f"/v1/task-models/{made[1]['id']}/predict", json={"keys": ["a"]}), 404)
    assert bob.get("/v1/task-models").json()["data"] == []
    assert bob.get("/v1/models").json()["data"] == []
    # bob's task model on the admin's feature table: not his, 404 at once (as for a table
    # that does not exist), and nothing is registered
    r = bob.post("/v1/buckets", json={"name": "training"})
    bob.put("/v1/buckets/training/files/labels.tsv", content=b"user_id\tl\nu1\ta\nu2\tb\n")
    for fid in (small_feature, "00000000-0000-4000-8000-000000000000"):
        r = bob.post("/v1/task-models", json=body(fid, "labels.tsv"))
        assert error_of(r, 404, "feature_not_found")["details"]["field"] == "train_feature_id"
    assert bob.get("/v1/task-models").json()["data"] == []
    # deleting the registered one works for its owner
    assert http.delete(f"/v1/task-models/{made[0]['id']}").status_code == 204
    error_of(http.get(f"/v1/task-models/{made[0]['id']}"), 404)


def test_another_apps_feature_table_is_404_at_once(services, admin, feature_id, data) -> None:
    """Train or test table of another app (or none at all): 404 when the task model is
    asked for, nothing registered, no job queued."""
    bob = services.auth.create_user(admin, "bob", "bobs-app")
    bob_scope = services.auth.scope(services.auth.authenticate(bob["api_key"]), bob["app"]["id"])
    df, labels = data
    services.buckets.create(bob_scope, "training")
    services.buckets.put(bob_scope, "training", "users.parquet", parquet(df))
    services.buckets.put(bob_scope, "training", "labels/all.tsv", tsv(labels))
    own = services.features.create_from_file(
        bob_scope, "bob's users", "training", "users.parquet", "user_id"
    )["id"]
    test_set = {"test_bucket": "training", "test_file_path": "labels/all.tsv"}
    for req, field in (
        (body(feature_id), "train_feature_id"),
        (body("00000000-0000-4000-8000-000000000000"), "train_feature_id"),
        (body(own, test_feature_id=feature_id, **test_set), "test_feature_id"),
    ):
        with pytest.raises(NotFound) as nf:
            services.models.create_task_model(bob_scope, req)
        assert nf.value.code == "feature_not_found" and nf.value.field == field
    assert services.models.list_task_models(bob_scope)["data"] == []
    # the same request on bob's own tables is taken
    made = services.models.create_task_model(bob_scope, body(own, test_feature_id=own, **test_set))
    assert made["train_feature_name"] == made["test_feature_name"] == "bob's users"
