"""Task models over HTTP against a real ``taskloom serve`` process, driven by the SDK: the
training lifecycle seen in order, metrics on generated data, a failing training with its
reason, predictions and a batch prediction file, and the delete rules."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from conftest import ServerProcess
from taskloom.errors import Conflict
from taskloom.sdk.client import Client

ORDER = ["registered", "pending", "in_progress", "completed"]


def users(n: int = 20_000, seed: int = 0) -> tuple[bytes, bytes]:
    """A CSV of behaviour features and a TSV of a purchase-interest label depending on them."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "user_id": [f"u{i:06d}" for i in range(n)],
            "visits": rng.poisson(4, n),
            "minutes": rng.gamma(2.0, 10.0, n).round(2),
            "cart_adds": rng.poisson(1.0, n),
            "days_since_last": rng.exponential(10.0, n).round(1),
        }
    )
    z = (
        -2.0
        + 1.1 * df["cart_adds"]
        + 0.05 * df["minutes"]
        - 0.08 * df["days_since_last"]
        + 0.15 * df["visits"]
    )
    interested = rng.random(n) < 1 / (1 + np.exp(-2.0 * z))
    labels = pd.DataFrame({"user_id": df["user_id"], "interest": np.where(interested, 1, 0)})
    return df.to_csv(index=False).encode(), labels.to_csv(sep="\t", index=False).encode()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with Client(url=server.url, api_key=server.api_key) as c:
        yield c


def test_task_model_lifecycle_over_http(client: Client) -> None:
    features_csv, labels_tsv = users()
    client.buckets.create("training")
    client.buckets.put("training", "users.csv", features_csv)
    client.buckets.put("training", "labels/interest.tsv", labels_tsv)
    feature = client.features.create_from_file("users", "training", "users.csv", "user_id")

    # registered, then queued by hand: every status is seen, in order
    tm = client.task_models.create(
        "interest",
        feature["id"],
        "training",
        "labels/interest.tsv",
        queue=False,
        hyperparameters={"max_iter": 60},
    )
    assert tm["status"] == "registered" and tm["train_feature_name"] == "users"
    assert tm["test_feature_id"] is None and "T" in tm["created_at"]
    seen = ["registered"]
    assert client.task_models.start(tm["id"])["status"] == "pending"
    seen.append("pending")

    def watch(state: dict) -> None:
        if state["status"] != seen[-1]:
            seen.append(state["status"])

    done = client.task_models.wait(tm["id"], timeout=120, poll_interval=0.02, on_status=watch)
    assert done["status"] == "completed", done["error"]
    assert [s for s in ORDER if s in seen] == seen  # never out of order
    events = client.jobs.get(done["job_id"]).events()
    assert [e["status"] for e in events if e["type"] == "transition"] == ORDER
    m = done["metrics"]
    assert m["roc_auc"] >= 0.8 and m["accuracy"] > m["baseline_accuracy"]
    assert m["evaluated_on"] == "held_out" and set(m["label_counts"]) == {"0", "1"}

    # predictions: by key, by row, and a batch file in a bucket
    got = client.task_models.predict(tm["id"], keys=["u000001", "missing"])
    assert got["missing_keys"] == ["missing"] and got["predictions"][0]["key"] == "u000001"
    rows = client.task_models.predict(tm["id"], rows=[[4, 20.0, 3, 1.0], [0, 1.0, 0, 60.0]])
    p = [r["probabilities"]["1"] for r in rows["predictions"]]
    assert p[0] > 0.5 > p[1]
    job = client.task_models.batch_predict(tm["id"], "training", "out/scores.tsv").wait(60)
    assert job.status == "completed" and job.result["rows"] == 20_000
    out = pd.read_csv(io.BytesIO(client.buckets.get("training", "out/scores.tsv")), sep="\t")
    assert list(out.columns) == ["key", "label", "p_0", "p_1"] and len(out) == 20_000

    # delete rules: a completed model stays; a registered one goes
    with pytest.raises(Conflict) as ei:
        client.task_models.delete(tm["id"])
    assert ei.value.code == "task_not_deletable"
    draft = client.task_models.create("draft", feature["id"], "training", "x.tsv", queue=False)
    client.task_models.delete(draft["id"])
    assert [t["id"] for t in client.task_models.list()] == [tm["id"]]
    assert [m["id"] for m in client.models.list()] == [tm["id"]]
    assert client.models.versions(tm["id"])[0]["status"] == "completed"


def test_a_failing_training_says_why(client: Client) -> None:
    client.buckets.create("training")
    client.buckets.put("training", "f.csv", b"user_id,a\nu1,1\nu2,2\nu3,3\n")
    client.buckets.put("training", "one.tsv", b"user_id\tl\nu1\tyes\nu2\tyes\n")
    feature = client.features.create_from_file("f", "training", "f.csv", "user_id")
    missing = client.task_models.create("missing", feature["id"], "training", "nope.tsv")
    single = client.task_models.create("single", feature["id"], "training", "one.tsv")
    for tm, code in ((missing, "file_missing"), (single, "single_class")):
        done = client.task_models.wait(tm["id"], timeout=60)
        assert done["status"] == "failed" and done["error"]["code"] == code, done
        assert done["metrics"] is None
        assert client.jobs.get(done["job_id"]).attempts == 1
        with pytest.raises(Conflict):
            client.task_models.delete(tm["id"])
