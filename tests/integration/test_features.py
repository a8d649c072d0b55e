"""Feature tables: built from files in buckets (CSV, TSV, Parquet) and from datasets, read back
as numpy arrays equal to what pandas reads from the same file, looked up by key; through the
service, HTTP and the SDK; apps walled off."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taskloom.errors import Conflict, Invalid, NotFound

from .conftest import error_of

N = 500


def frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "user_id": [f"{i:05d}" for i in rng.permutation(N)],  # leading zeros stay text
            "age": rng.integers(18, 90, N),
            "spend": rng.normal(100, 30, N).round(4),
            "member": rng.random(N) < 0.3,
            "visits": rng.normal(5, 2, N),
        }
    )
    df.loc[df.index[::7], "visits"] = np.nan  # missing values
    return df


def expected(df: pd.DataFrame, key: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    df = df.sort_values(key)
    cols = [c for c in df.columns if c != key]
    return df[key].to_numpy(str), df[cols].astype("float64").to_numpy(np.float32), cols


@pytest.fixture
def bucket(services, scope) -> str:
    services.buckets.create(scope, "feats")
    return "feats"


def put(services, scope, bucket, path, data: bytes) -> None:
    services.buckets.put(scope, bucket, path, data)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet"])
def test_from_file_equals_pandas(services, scope, bucket, fmt) -> None:
    df = frame()
    if fmt == "parquet":
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf)
        data = buf.getvalue()
    else:
        data = df.to_csv(index=False, sep="\t" if fmt == "tsv" else ",").encode()
    put(services, scope, bucket, f"in/users.{fmt}", data)
    f = services.features.create_from_file(
        scope, "users", bucket, f"in/users.{fmt}", "user_id", description="people"
    )
    assert f["row_count"] == N and f["key_column"] == "user_id"
    assert f["columns"] == [
        {"name": "age", "type": "int"},
        {"name": "spend", "type": "float"},
        {"name": "member", "type": "bool"},
        {"name": "visits", "type": "float"},
    ]
    assert f["source"] == {
        "kind": "file",
        "bucket": bucket,
        "path": f"in/users.{fmt}",
        "format": fmt,
        "columns": None,
    }
    # what pandas reads from the very same bytes
    if fmt == "parquet":
        theirs = pd.read_parquet(io.BytesIO(data))
    else:
        theirs = pd.read_csv(
            io.BytesIO(data), sep="\t" if fmt == "tsv" else ",", dtype={"user_id": str}
        )
    keys, matrix, cols = expected(theirs, "user_id")
    got = services.features.load(scope, f["id"])
    assert got.columns == cols
    assert got.matrix.dtype == np.float32 and got.matrix.shape == (N, 4)
    assert got.keys.dtype.kind == "U"
    np.testing.assert_array_equal(got.keys, keys)
    np.testing.assert_array_equal(got.matrix, matrix)  # NaN where pandas has NaN
    assert np.isnan(got.matrix[:, 3]).sum() == theirs["visits"].isna().sum() > 0


def test_lookup(services, scope, bucket) -> None:
    df = frame(1)
    put(services, scope, bucket, "u.csv", df.to_csv(index=False).encode())
    f = services.features.create_from_file(scope, "u", bucket, "u.csv", "user_id")
    asked = ["00003", "nope", "00001", "00003"]
    rows = services.features.lookup(scope, f["id"], asked)
    assert rows.found.tolist() == [True, False, True, True]
    assert rows.missing == ["nope"]
    assert np.isnan(rows.matrix[1]).all()
    by_key = df.set_index("user_id")
    for i in (0, 2, 3):
        want = by_key.loc[asked[i], ["age", "spend", "member", "visits"]].astype(float)
        np.testing.assert_array_equal(rows.matrix[i], want.to_numpy(np.float32))
    assert services.features.lookup(scope, f["id"], []).matrix.shape == (0, 4)


def test_columns_and_refusals(services, scope, bucket) -> None:
    df = frame(2)
    df["city"] = "Seoul"
    put(services, scope, bucket, "c.csv", df.to_csv(index=False).encode())
    with pytest.raises(Invalid) as ei:
        services.features.create_from_file(scope, "c", bucket, "c.csv", "user_id")
    assert ei.value.code == "invalid_feature_column" and "city" in ei.value.message
    f = services.features.create_from_file(
        scope, "c", bucket, "c.csv", "user_id", columns=["spend", "age"]
    )
    assert [c["name"] for c in f["columns"]] == ["spend", "age"]
    with pytest.raises(Conflict):
        services.features.create_from_file(scope, "c", bucket, "c.csv", "user_id", columns=["age"])
    cases = [
        (dict(key_column="nope"), "unknown_column", "key_column"),
        (dict(key_column="user_id", columns=["nope"]), "unknown_column", "columns[0]"),
        (dict(key_column="user_id", columns=["user_id"]), "unknown_column", "columns[0]"),
    ]
    for kw, code, field in cases:
        with pytest.raises(Invalid) as ei:
            services.features.create_from_file(scope, "x", bucket, "c.csv", **kw)
        assert (ei.value.code, ei.value.field) == (code, field)
    put(services, scope, bucket, "dup.csv", b"k,x\na,1\nb,2\na,3\n")
    with pytest.raises(Invalid) as ei:
        services.features.create_from_file(scope, "x", bucket, "dup.csv", "k")
    assert ei.value.code == "duplicate_key" and ei.value.details["keys"] == ["a"]
    put(services, scope, bucket, "empty-key.csv", b"k,x\na,1\n,2\n")
    with pytest.raises(Invalid) as ei:
        services.features.create_from_file(scope, "x", bucket, "empty-key.csv", "k")
    assert ei.value.code == "missing_key"
    put(services, scope, bucket, "bad.parquet", b"not parquet at all")
    with pytest.raises(Invalid) as ei:
        services.features.create_from_file(scope, "x", bucket, "bad.parquet", "k")
    assert (ei.value.code, ei.value.field) == ("unreadable_file", "path")
    with pytest.raises(Invalid) as ei:
        services.features.create_from_file(scope, "x", bucket, "c.json", "k")
    assert ei.value.code == "unknown_file_format"
    with pytest.raises(NotFound) as ei:
        services.features.create_from_file(scope, "x", bucket, "missing.csv", "k")
    assert ei.value.code == "file_not_found"
    with pytest.raises(NotFound) as ei:
        services.features.create_from_file(scope, "x", "no-bucket", "c.csv", "k")
    assert ei.value.code == "bucket_not_found"
    with pytest.raises(Invalid) as ei:
        services.features.create_from_file(scope, "x", bucket, "../c.csv", "k")
    assert ei.value.code == "invalid_file_path"
    # a name is a display name (spaces are fine), but not blank nor with control characters
    for bad in ("bad\x00name", "tab\tname", "   ", "", " padded", "x" * 129):
        with pytest.raises(Invalid) as ei:
            services.features.create_from_file(scope, bad, bucket, "c.csv", "k")
        assert ei.value.code == "invalid_feature_name"
    assert [f["name"] for f in services.features.list(scope)] == ["c"]


def test_from_dataset_equals_the_documents(services, scope) -> None:
    services.datasets.create(scope, "people")
    rng = np.random.default_rng(3)
    docs = []
    for i in range(300):
        d: dict = {"_id": f"p{i}", "name": f"n{i}", "score": float(rng.normal())}
        if i % 5:
            d["age"] = int(rng.integers(1, 99))
        d["vip"] = bool(i % 3 == 0)
        if i % 4:
            d["emb_vector_"] = rng.normal(size=3).astype(np.float32).tolist()
        d["meta"] = {"weight": i * 0.5}
        docs.append(d)
    services.documents.insert(scope, "people", docs)
    fields = ["score", "age", "vip", "emb_vector_", "meta.weight"]
    f = services.features.create_from_dataset(scope, "people-f", "people", "_id", fields)
    names = ["score", "age", "vip", "emb_vector__0", "emb_vector__1", "emb_vector__2"]
    assert [c["name"] for c in f["columns"]] == [*names, "meta.weight"]
    assert f["columns"][2]["type"] == "bool"
    assert f["row_count"] == 300 and f["key_column"] == "_id"
    got = services.features.load(scope, f["id"])
    by_id = {d["_id"]: d for d in docs}
    assert sorted(by_id) == got.keys.tolist()
    for key, row in zip(got.keys, got.matrix, strict=True):
        d = by_id[key]
        vec = d.get("emb_vector_", [math.nan] * 3)
        want = [d["score"], d.get("age", math.nan), float(d["vip"]), *vec, d["meta"]["weight"]]
        np.testing.assert_array_equal(row, np.asarray(want, np.float32))
    # a text key field; a text field is no feature; a field that is not there
    g = services.features.create_from_dataset(scope, "by-name", "people", "name", ["score"])
    assert services.features.load(scope, g["id"]).keys[0] == "n0"
    with pytest.raises(Invalid) as ei:
        services.features.create_from_dataset(scope, "x", "people", "_id", ["score", "name"])
    assert (ei.value.code, ei.value.field) == ("invalid_feature_field", "fields[1]")
    with pytest.raises(Invalid) as ei:
        services.features.create_from_dataset(scope, "x", "people", "_id", ["nope"])
    assert ei.value.field == "fields[0]"
    with pytest.raises(Invalid) as ei:
        services.features.create_from_dataset(scope, "x", "people", "vip", ["score"])
    assert ei.value.code == "invalid_key_field"
    with pytest.raises(Invalid) as ei:
        services.features.create_from_dataset(scope, "x", "people", "age", ["score"])
    assert ei.value.code == "missing_key"  # some documents have no age
    with pytest.raises(NotFound) as ei:
        services.features.create_from_dataset(scope, "x", "nope", "_id", ["score"])
    assert ei.value.code == "dataset_not_found"


def test_delete_and_tenancy(services, scope, admin, bucket) -> None:
    put(services, scope, bucket, "t.csv", b"k,x\na,1\nb,2\n")
    f = services.features.create_from_file(scope, "t", bucket, "t.csv", "k")
    bob = services.auth.create_user(admin, "bob", "bobs-app")
    bob_scope = services.auth.scope(services.auth.authenticate(bob["api_key"]))
    for call in (
        lambda: services.features.get(bob_scope, f["id"]),
        lambda: services.features.load(bob_scope, f["id"]),
        lambda: services.features.lookup(bob_scope, f["id"], ["a"]),
        lambda: services.features.delete(bob_scope, f["id"]),
        lambda: services.features.create_from_file(bob_scope, "t", bucket, "t.csv", "k"),
    ):
        with pytest.raises(NotFound):
            call()
    assert services.features.list(bob_scope) == []
    area = services.blobs.area("features", scope.app_id)
    assert area.exists(f"{f['id']}.parquet")
    services.features.delete(scope, f["id"])
    assert not area.exists(f"{f['id']}.parquet")
    with pytest.raises(NotFound):
        services.features.get(scope, f["id"])


def test_http_and_sdk(sdk, http, make_http) -> None:
    sdk.buckets.create("http-feats")
    sdk.buckets.put("http-feats", "f.tsv", b"id\ta\tb\nx\t1\t2.5\ny\t3\t\n")
    f = sdk.features.create_from_file("f", "http-feats", "f.tsv", "id")
    assert f["row_count"] == 2 and f["column_count"] == 2
    assert [x["id"] for x in sdk.features.list()] == [f["id"]]
    assert sdk.features.get(f["id"])["name"] == "f"
    got = sdk.features.lookup(f["id"], ["y", "z", "x"])
    assert got == {
        "columns": ["a", "b"],
        "rows": [{"key": "y", "values": [3.0, None]}, {"key": "x", "values": [1.0, 2.5]}],
        "missing": ["z"],
    }
    sdk.create_dataset("ds")
    sdk.dataset("ds").insert([{"_id": "a", "v": 1.5}, {"_id": "b", "v": 2}])
    g = sdk.features.create_from_dataset("g", "ds", "_id", ["v"])
    assert g["source"] == {"kind": "dataset", "dataset": "ds", "key_field": "_id", "fields": ["v"]}
    r = http.post("/v1/features", json={"name": "g", "source": {"kind": "file"}})
    assert error_of(r, 422)["details"]["field"].startswith("source.file")
    r = http.post("/v1/features", json={"name": "h", "source": {"kind": "table"}})
    error_of(r, 422)
    r = http.post("/v1/features", json={"name": "g", "source": g["source"]})
    error_of(r, 409, "feature_exists")
    r = http.post("/v1/users", json={"name": "bob", "app_name": "bobs-app"})
    bob = make_http(r.json()["api_key"])
    error_of(bob.get(f"/v1/features/{f['id']}"), 404, "feature_not_found")
    error_of(bob.delete(f"/v1/features/{f['id']}"), 404, "feature_not_found")
    error_of(bob.post(f"/v1/features/{f['id']}/lookup", json={"keys": ["x"]}), 404)
    sdk.features.delete(f["id"])
    with pytest.raises(NotFound):
        sdk.features.get(f["id"])
    error_of(http.get("/v1/features/not-a-uuid"), 404, "feature_not_found")


@pytest.fixture
def nclue(transport, platform):
    import httpx

    from taskloom.sdk.ncp import NcpSigner

    from .conftest import BASE_URL

    creds = platform.credentials
    signer = NcpSigner(creds["ncp_access_key"], creds["ncp_secret_key"])
    with httpx.Client(base_url=BASE_URL, transport=transport, auth=signer) as c:
        yield c


def test_a_feature_table_name_is_a_display_name(http, nclue) -> None:
    """NCLUE's own example names a table "Shopping behavior sequence - 2024": spaces and
    punctuation are a name people read; the table is referred to by its id."""
    assert http.post("/v1/buckets", json={"name": "shop"}).status_code == 201
    http.put("/v1/buckets/shop/files/s.csv", content=b"user,clicks\nu1,3\nu2,5\n")
    src = {"kind": "file", "bucket": "shop", "path": "s.csv", "key_column": "user"}
    made = []
    for name in ("Shopping behavior sequence - 2024", "Käufe (2024), Q1: #2 / v0.1", "a"):
        r = http.post("/v1/features", json={"name": name, "source": src})
        assert r.status_code == 201, r.text
        assert r.json()["name"] == name
        made.append(r.json())
    assert http.get(f"/v1/features/{made[0]['id']}").json()["name"] == made[0]["name"]
    listed = nclue.get("/nclue/api/v1/features").json()["features"]
    assert "Shopping behavior sequence - 2024" in [f["feature_name"] for f in listed]
    # still unique in the app, and still not blank or with control characters
    r = http.post("/v1/features", json={"name": "Shopping behavior sequence - 2024", "source": src})
    error_of(r, 409, "feature_exists")
    for bad in ("", "  ", "a\u0000b", "line\nbreak", " padded ", "x" * 129):
        r = http.post("/v1/features", json={"name": bad, "source": src})
        err = error_of(r, 422)
        assert err["details"]["field"] == "name", err
