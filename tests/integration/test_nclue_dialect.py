"""The NCLUE front door (``/nclue/api/v1``) in process: NCP signatures over key pairs bound to
API keys, NCP error bodies, the feature listing, and (once ``services.models`` is there) the
task shapes of the seed."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from taskloom.api.app import create_app
from taskloom.ncp_signature import sign
from taskloom.runtime import Platform
from taskloom.sdk.ncp import NcpSigner
from taskloom.sdk.transport import EmbeddedTransport
from taskloom.store.tables import ncp_keys

from .conftest import BASE_URL

V1 = "/nclue/api/v1"
SEED_FIELDS = {
    "task_id",
    "task_name",
    "created_at",
    "train_feature_id",
    "train_feature_name",
    "train_bucket",
    "train_file_path",
    "test_feature_id",
    "test_feature_name",
    "test_bucket",
    "test_file_path",
}

NclueFactory = Callable[..., httpx.Client]


@pytest.fixture
def creds(platform: Platform) -> dict[str, Any]:
    assert platform.credentials is not None
    return platform.credentials


@pytest.fixture
def make_nclue(transport: Any) -> NclueFactory:
    made: list[httpx.Client] = []

    def make(
        access_key: str, secret_key: str, *, clock: Callable[[], float] = time.time, **kw: Any
    ) -> httpx.Client:
        c = httpx.Client(
            base_url=BASE_URL,
            transport=transport,
            auth=NcpSigner(access_key, secret_key, clock=clock),
            **kw,
        )
        made.append(c)
        return c

    yield make  # type: ignore[misc]
    for c in made:
        c.close()


@pytest.fixture
def nclue(make_nclue: NclueFactory, creds: dict[str, Any]) -> httpx.Client:
    return make_nclue(creds["ncp_access_key"], creds["ncp_secret_key"])


def ncp_error(resp: httpx.Response, status: int, error_code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert {"errorCode", "message", "details"} <= set(err), err
    assert err["errorCode"] == error_code, err
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["details"], str) and err["details"]
    return err


# -- key pairs ---------------------------------------------------------------------------------


def test_first_start_writes_the_ncp_pair_and_seals_the_secret(platform: Platform) -> None:
    path = platform.settings.credentials_path
    saved = json.loads(path.read_text())
    assert saved["ncp_access_key"] and saved["ncp_secret_key"]
    assert saved == platform.credentials
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert platform.store is not None
    with platform.store.read() as conn:
        rows = conn.execute(select(ncp_keys)).all()
    assert [r.access_key for r in rows] == [saved["ncp_access_key"]]
    assert saved["ncp_secret_key"] not in rows[0].secret_sealed  # encrypted, not plain


def test_keys_created_with_hmac_sign_requests(
    make_http: Callable[..., httpx.Client], make_nclue: NclueFactory
) -> None:
    http = make_http()
    plain = http.post("/v1/keys", json={"name": "plain"}).json()
    assert "ncp_access_key" not in plain and "ncp_secret_key" not in plain
    key = http.post("/v1/keys", json={"name": "signer", "hmac": True}).json()
    assert key["ncp_access_key"] != key["ncp_secret_key"]
    nclue = make_nclue(key["ncp_access_key"], key["ncp_secret_key"])
    assert nclue.get(f"{V1}/features").status_code == 200
    # the listing never shows the pair again
    listed = http.get("/v1/keys").json()["data"]
    assert all("ncp_secret_key" not in k for k in listed)
    # revoking the API key revokes its pair
    assert http.delete(f"/v1/keys/{key['id']}").status_code == 200
    ncp_error(nclue.get(f"{V1}/features"), 401, "200")


# -- signatures --------------------------------------------------------------------------------


def test_requests_without_or_with_bad_signatures_are_refused(
    make_http: Callable[..., httpx.Client], make_nclue: NclueFactory, creds: dict[str, Any]
) -> None:
    access, secret = creds["ncp_access_key"], creds["ncp_secret_key"]
    anonymous = make_http(None)
    if True:
        err = ncp_error(anonymous.get(f"{V1}/features"), 401, "200")
        assert err["code"] == "ncp_missing_headers"
        # a taskloom bearer key is not an NCP signature
        bearer = anonymous.get(
            f"{V1}/features", headers={"Authorization": f"Bearer {creds['api_key']}"}
        )
        ncp_error(bearer, 401, "200")
        now = str(int(time.time() * 1000))

        def headers(signature: str, key: str = access, ts: str = now) -> dict[str, str]:
            return {
                "X-NCP-APIGW-TIMESTAMP": ts,
                "X-NCP-IAM-ACCESS-KEY": key,
                "X-NCP-APIGW-SIGNATURE-V2": signature,
            }

        good = sign(secret, "GET", f"{V1}/features", now, access)
        assert anonymous.get(f"{V1}/features", headers=headers(good)).status_code == 200
        wrong_secret = sign(secret + "x", "GET", f"{V1}/features", now, access)
        err = ncp_error(anonymous.get(f"{V1}/features", headers=headers(wrong_secret)), 401, "200")
        assert err["code"] == "ncp_invalid_signature"
        # signed without the /nclue prefix: not the URI that was sent
        short = sign(secret, "GET", "/api/v1/features", now, access)
        ncp_error(anonymous.get(f"{V1}/features", headers=headers(short)), 401, "200")
        # the query string is signed too
        signed_q = sign(secret, "GET", f"{V1}/tasks?limit=5", now, access)
        resp = anonymous.get(f"{V1}/tasks?limit=6", headers=headers(signed_q))
        assert ncp_error(resp, 401, "200")["code"] == "ncp_invalid_signature"
        # another method
        as_post = sign(secret, "POST", f"{V1}/features", now, access)
        ncp_error(anonymous.get(f"{V1}/features", headers=headers(as_post)), 401, "200")
        unknown = sign(secret, "GET", f"{V1}/features", now, "TLNCPUNKNOWN00000000")
        resp = anonymous.get(f"{V1}/features", headers=headers(unknown, "TLNCPUNKNOWN00000000"))
        assert ncp_error(resp, 401, "200")["code"] == "ncp_unknown_access_key"
        garbled = headers(good, ts="yesterday")
        assert ncp_error(anonymous.get(f"{V1}/features", headers=garbled), 401, "200")["code"] == (
            "ncp_invalid_timestamp"
        )

    for offset in (-301.0, 301.0, -3600.0):
        late = make_nclue(access, secret, clock=lambda o=offset: time.time() + o)
        err = ncp_error(late.get(f"{V1}/features"), 401, "200")
        assert err["code"] == "ncp_stale_timestamp"
    for offset in (-290.0, 290.0):
        near = make_nclue(access, secret, clock=lambda o=offset: time.time() + o)
        assert near.get(f"{V1}/features").status_code == 200


def test_a_key_of_one_app_is_forbidden_elsewhere(
    make_http: Callable[..., httpx.Client], make_nclue: NclueFactory, nclue: httpx.Client
) -> None:
    http = make_http()
    other = http.post("/v1/apps", json={"name": "other"}).json()
    limited = http.post("/v1/keys", json={"name": "one", "app_id": other["id"], "hmac": True})
    key = limited.json()
    mine = make_nclue(key["ncp_access_key"], key["ncp_secret_key"])
    assert mine.get(f"{V1}/features").status_code == 200
    first_app = http.get("/v1/me").json()["app_id"]
    resp = mine.get(f"{V1}/features", headers={"X-Taskloom-App": first_app})
    ncp_error(resp, 403, "230")
    # the admin key reaches both
    assert nclue.get(f"{V1}/features", headers={"X-Taskloom-App": other["id"]}).status_code == 200


# -- replays ----------------------------------------------------------------------------------

SIGNED_HEADERS = ("x-ncp-apigw-timestamp", "x-ncp-iam-access-key", "x-ncp-apigw-signature-v2")


def signed_headers(resp: httpx.Response) -> dict[str, str]:
    """The NCP headers a request was sent with, to send them again unchanged."""
    return {name: resp.request.headers[name] for name in SIGNED_HEADERS}


def replay(transport: Any, resp: httpx.Response) -> httpx.Response:
    """Send the request behind ``resp`` again, byte for byte, from a client that cannot sign."""
    # not closed: closing a client closes its transport, the fixture's to close
    anonymous = httpx.Client(base_url=BASE_URL, transport=transport)
    return anonymous.request(
        resp.request.method,
        str(resp.request.url),
        headers=signed_headers(resp),
        content=resp.request.content,
    )


def test_a_replayed_request_is_refused(
    transport: Any, nclue: httpx.Client, feature: dict[str, Any]
) -> None:
    first = nclue.get(f"{V1}/features")
    assert first.status_code == 200
    err = ncp_error(replay(transport, first), 401, "200")
    assert err["code"] == "ncp_replayed_signature"
    assert "already used" in err["details"]
    # a write replayed is refused before it does anything: one task, not two
    created = nclue.post(f"{V1}/tasks", json=task_body(feature))
    assert created.status_code == 200, created.text
    assert ncp_error(replay(transport, created), 401, "200")["code"] == "ncp_replayed_signature"
    listed = nclue.get(f"{V1}/tasks").json()["tasks"]
    assert [t["task_id"] for t in listed] == [created.json()["task_id"]]
    # the same request signed anew passes, again and again
    for _ in range(3):
        assert nclue.get(f"{V1}/features").status_code == 200


def test_two_requests_in_one_millisecond_both_pass(
    make_nclue: NclueFactory, creds: dict[str, Any]
) -> None:
    """The signer never reuses a timestamp, so a fast client is not taken for a replayer."""
    frozen = time.time()
    fast = make_nclue(creds["ncp_access_key"], creds["ncp_secret_key"], clock=lambda: frozen)
    a, b = fast.get(f"{V1}/features"), fast.get(f"{V1}/features")
    assert (a.status_code, b.status_code) == (200, 200), b.text
    assert signed_headers(a) != signed_headers(b)


def test_a_replay_is_refused_by_another_app_and_after_a_restart(
    platform: Platform, nclue: httpx.Client
) -> None:
    """The signatures seen are in the database: a second server on it, or the same one
    started again, refuses a signature the first accepted."""
    first = nclue.get(f"{V1}/features")
    assert first.status_code == 200
    beside = Platform(platform.settings, workers=0, lock=None).start()
    transport = EmbeddedTransport(create_app(beside))
    try:
        resp = replay(transport, first)
        assert ncp_error(resp, 401, "200")["code"] == "ncp_replayed_signature"
    finally:
        transport.close()
        beside.stop()
    platform.stop()
    restarted = Platform(platform.settings, workers=0, lock=None).start()
    transport = EmbeddedTransport(create_app(restarted))
    try:
        resp = replay(transport, first)
        assert ncp_error(resp, 401, "200")["code"] == "ncp_replayed_signature"
    finally:
        transport.close()
        restarted.stop()


# -- features ----------------------------------------------------------------------------------


def test_features_lists_the_apps_feature_tables(services: Any, scope: Any, nclue: httpx.Client):
    assert nclue.get(f"{V1}/features").json() == {"features": []}
    services.buckets.create(scope, "feat")
    services.buckets.put(scope, "feat", "users.csv", b"user,age,visits\nu1,30,4\nu2,41,9\n")
    table = services.features.create_from_file(
        scope, "shopping-behaviour", "feat", "users.csv", "user"
    )
    listed = nclue.get(f"{V1}/features").json()["features"]
    assert len(listed) == 1
    got = listed[0]
    assert got["feature_id"] == table["id"] and got["feature_name"] == "shopping-behaviour"
    assert got["columns"] == ["age", "visits"] and got["row_count"] == 2
    assert got["created_at"].endswith("+00:00")


def test_tasks_answer_unavailable_or_not_found_cleanly(nclue: httpx.Client) -> None:
    resp = nclue.get(f"{V1}/tasks/does-not-exist")
    assert resp.status_code in (404, 503), resp.text
    ncp_error(resp, resp.status_code, "300" if resp.status_code == 404 else "500")
    bad = nclue.post(
        f"{V1}/tasks", content=b"{not json", headers={"content-type": "application/json"}
    )
    ncp_error(bad, 400, "100")
    ncp_error(nclue.post(f"{V1}/tasks", json=[1, 2]), 400, "100")
    ncp_error(nclue.get(f"{V1}/tasks?limit=0"), 400, "100")


# -- tasks (the seed's shapes) -----------------------------------------------------------------


@pytest.fixture
def feature(services: Any, scope: Any) -> dict[str, Any]:
    services.buckets.create(scope, "pets")
    rows = "".join(f"u{i},{i % 7},{i % 3}\n" for i in range(40))
    services.buckets.put(scope, "pets", "features.csv", ("user,a,b\n" + rows).encode())
    labels = "".join(f"u{i}\t{i % 2}\n" for i in range(40))
    services.buckets.put(
        scope, "pets", "task_dataset/pet_food.tsv", ("user\tlabel\n" + labels).encode()
    )
    return dict(
        services.features.create_from_file(scope, "pet-behaviour", "pets", "features.csv", "user")
    )


def task_body(feature: dict[str, Any], **over: Any) -> dict[str, Any]:
    out = {
        "name": "Pet food purchase interest",
        "train_feature_id": feature["id"],
        "train_bucket": "pets",
        "train_file_path": "task_dataset/pet_food.tsv",
        **over,
    }
    return {k: v for k, v in out.items() if v is not ...}


def test_create_answers_the_seeds_fields(nclue: httpx.Client, feature: dict[str, Any]) -> None:
    resp = nclue.post(f"{V1}/tasks", json=task_body(feature))
    assert resp.status_code == 200, resp.text
    created = resp.json()
    assert set(created) == SEED_FIELDS
    assert created["train_feature_name"] == "pet-behaviour"
    assert created["test_feature_id"] is None and created["test_feature_name"] is None
    assert created["test_bucket"] is None and created["test_file_path"] is None
    assert created["created_at"].endswith("+00:00") and "T" in created["created_at"]
    got = nclue.get(f"{V1}/tasks/{created['task_id']}").json()
    assert {k: got[k] for k in SEED_FIELDS} == created
    assert got["status"] == "pending"  # queued at once; no worker in this test
    assert got["metrics"] is None and got["error"] is None
    listed = nclue.get(f"{V1}/tasks").json()
    assert [t["task_id"] for t in listed["tasks"]] == [created["task_id"]]
    # queued: no longer deletable
    err = ncp_error(nclue.delete(f"{V1}/tasks/{created['task_id']}"), 409, "409")
    assert err["code"] == "task_not_deletable"


def test_a_registered_task_is_deleted(
    nclue: httpx.Client, services: Any, scope: Any, feature: dict[str, Any]
) -> None:
    view = services.models.create_task_model(scope, task_body(feature), queue=False)
    assert nclue.get(f"{V1}/tasks/{view['id']}").json()["status"] == "registered"
    assert nclue.delete(f"{V1}/tasks/{view['id']}").status_code == 204
    ncp_error(nclue.get(f"{V1}/tasks/{view['id']}"), 404, "300")


def test_test_set_fields_echo(nclue: httpx.Client, feature: dict[str, Any]) -> None:
    req = task_body(
        feature,
        test_feature_id=feature["id"],
        test_bucket="pets",
        test_file_path="task_dataset/pet_food.tsv",
    )
    created = nclue.post(f"{V1}/tasks", json=req).json()
    assert created["test_feature_id"] == feature["id"]
    assert created["test_feature_name"] == "pet-behaviour"
    assert created["test_bucket"] == "pets"


@pytest.mark.parametrize(
    ("over", "field", "code"),
    [
        ({"name": "x" * 41}, "name", "name_too_long"),
        ({"name": ...}, "name", "required"),
        ({"train_feature_id": ...}, "train_feature_id", "required"),
        ({"train_bucket": ...}, "train_bucket", "required"),
        ({"train_file_path": ...}, "train_file_path", "required"),
        ({"train_file_path": "a#b.tsv"}, "train_file_path", "invalid_file_path"),
        ({"train_file_path": "a\x1fb.tsv"}, "train_file_path", "invalid_file_path"),
        ({"train_file_path": "a\x80b.tsv"}, "train_file_path", "invalid_file_path"),
        (
            {"test_bucket": "pets", "test_file_path": "t'.tsv"},
            "test_file_path",
            "invalid_file_path",
        ),
    ],
)
def test_validation_answers_400(
    nclue: httpx.Client, feature: dict[str, Any], over: dict[str, Any], field: str, code: str
) -> None:
    err = ncp_error(nclue.post(f"{V1}/tasks", json=task_body(feature, **over)), 400, "100")
    assert (err["field"], err["code"]) == (field, code)
    assert isinstance(err["errors"], list) and err["errors"]
