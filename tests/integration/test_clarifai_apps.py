"""The Clarifai door's apps over gRPC (V2 PostApps / GetApp / ListApps / PatchApps /
DeleteApp), and the app service under it."""

from __future__ import annotations

import grpc
import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2
from google.protobuf.json_format import MessageToDict

from taskloom.errors import Conflict, Forbidden, Invalid, NotFound

from .clarifai_helpers import Door

SUCCESS = status_code_pb2.SUCCESS


def post(door: Door, *ids: str, workflow: str = "", key: str | None = None) -> object:
    apps = [
        resources_pb2.App(id=i, default_workflow=resources_pb2.Workflow(id=workflow)) for i in ids
    ]
    return door("PostApps", service_pb2.PostAppsRequest(user_app_id=door.ids(), apps=apps), key)


def listed(door: Door, page: int = 0, per_page: int = 0, key: str | None = None) -> object:
    request = service_pb2.ListAppsRequest(user_app_id=door.ids(), page=page, per_page=per_page)
    return door("ListApps", request, key)


def test_post_get_list_delete(door: Door) -> None:
    r = post(door, "cats", workflow="Universal")
    assert r.status.code == SUCCESS, r.status
    assert [a.id for a in r.apps] == ["cats"] and r.apps[0].default_workflow_id == "Universal"
    assert r.apps[0].user_id == door.user_id
    got = door("GetApp", service_pb2.GetAppRequest(user_app_id=door.ids("cats")))
    assert got.status.code == SUCCESS and got.app.id == "cats"
    assert got.app.created_at.seconds > 0
    names = [a.id for a in listed(door).apps]
    assert names == ["default", "cats"]  # oldest first; "default" is the bootstrap app
    gone = door("DeleteApp", service_pb2.DeleteAppRequest(user_app_id=door.ids("cats")))
    assert gone.status.code == SUCCESS
    missing = door("GetApp", service_pb2.GetAppRequest(user_app_id=door.ids("cats")))
    assert missing.status.code == status_code_pb2.CONN_DOES_NOT_EXIST
    assert "app_not_found" in missing.status.details
    assert [a.id for a in listed(door).apps] == ["default"]


def test_listing_pages_as_the_sdk_reads_them(door: Door) -> None:
    assert post(door, *(f"app-{i}" for i in range(5))).status.code == SUCCESS
    seen: list[str] = []
    for page in range(1, 10):
        r = listed(door, page=page, per_page=2)
        assert r.status.code == SUCCESS
        if not r.apps:
            # a page past the end holds nothing but status: the SDK's signal to stop
            assert list(MessageToDict(r, preserving_proto_field_name=True)) == ["status"]
            break
        seen += [a.id for a in r.apps]
    assert seen == ["default", *(f"app-{i}" for i in range(5))]
    # per_page 0 is a default size, page 0 is page 1
    assert len(listed(door, page=0, per_page=0).apps) == 6
    bad = listed(door, per_page=5000)
    assert bad.status.code == status_code_pb2.CONN_INVALID_REQUEST
    assert "per_page" in bad.status.details


def test_listed_apps_survive_message_to_dict_and_back(door: Door) -> None:
    """The SDK turns each listed app into a dict and back into a proto."""
    app = resources_pb2.App(id="meta-app", name="Meta App", description="about")
    app.metadata.update({"team": "vision", "n": 3})
    r = door("PostApps", service_pb2.PostAppsRequest(user_app_id=door.ids(), apps=[app]))
    assert r.status.code == SUCCESS, r.status
    item = next(a for a in listed(door).apps if a.id == "meta-app")
    as_dict = MessageToDict(item, preserving_proto_field_name=True)
    assert as_dict["name"] == "Meta App" and as_dict["metadata"] == {"team": "vision", "n": 3.0}
    assert as_dict["description"] == "about"
    again = resources_pb2.App()
    again.MergeFrom(item)
    assert again == item


def test_post_is_all_or_nothing(door: Door) -> None:
    assert post(door, "one").status.code == SUCCESS
    r = post(door, "two", "one")
    assert (
        r.status.code == status_code_pb2.CONN_INVALID_REQUEST and "app_exists" in r.status.details
    )
    assert [a.id for a in listed(door).apps] == ["default", "one"]  # "two" was not made
    unknown = post(door, "three", workflow="Nonsense")
    assert unknown.status.code == status_code_pb2.CONN_INVALID_REQUEST
    assert "unknown_base_workflow" in unknown.status.details
    empty = door("PostApps", service_pb2.PostAppsRequest(user_app_id=door.ids()))
    assert empty.status.code == status_code_pb2.CONN_INVALID_REQUEST


def test_patch_changes_what_is_given(door: Door) -> None:
    post(door, "p", workflow="Universal")
    patch = resources_pb2.App(id="p", description="new words")
    r = door(
        "PatchApps",
        service_pb2.PatchAppsRequest(user_app_id=door.ids(), apps=[patch], action="overwrite"),
    )
    assert r.status.code == SUCCESS, r.status
    assert r.apps[0].description == "new words" and r.apps[0].default_workflow_id == "Universal"
    assert r.apps[0].modified_at.ToDatetime() >= r.apps[0].created_at.ToDatetime()


def test_a_wrong_key_is_refused(door: Door) -> None:
    r = listed(door, key="tlk_not-a-key")
    assert r.status.code == status_code_pb2.CONN_KEY_INVALID and not r.apps
    no_key = door.stub.ListApps(service_pb2.ListAppsRequest(user_app_id=door.ids()), timeout=30)
    assert no_key.status.code == status_code_pb2.CONN_KEY_INVALID
    assert "authorization" in no_key.status.details


def test_another_users_apps_are_invisible(door: Door, services, admin) -> None:
    other = services.auth.create_user(admin, "bob", app_name="secret")
    bob = other["api_key"]
    bob_id = other["user_id"]
    # bob's key does not see the admin's apps, nor may it name the admin as its user
    r = door("ListApps", service_pb2.ListAppsRequest(user_app_id=door.ids(user_id=bob_id)), bob)
    assert [a.id for a in r.apps] == ["secret"]
    as_admin = door("ListApps", service_pb2.ListAppsRequest(user_app_id=door.ids()), bob)
    assert as_admin.status.code == status_code_pb2.CONN_DOES_NOT_EXIST
    # and the admin does not find bob's app under its own user
    mine = door("GetApp", service_pb2.GetAppRequest(user_app_id=door.ids("secret")))
    assert mine.status.code == status_code_pb2.CONN_DOES_NOT_EXIST
    # bob's key is limited to its app: it may not create or delete apps
    r = door(
        "PostApps",
        service_pb2.PostAppsRequest(
            user_app_id=door.ids(user_id=bob_id), apps=[resources_pb2.App(id="x")]
        ),
        bob,
    )
    assert r.status.code == status_code_pb2.CONN_INSUFFICIENT_SCOPES


def test_an_rpc_taskloom_does_not_answer_is_unimplemented(door: Door) -> None:
    with pytest.raises(grpc.RpcError) as info:
        door("ListRunners", service_pb2.ListRunnersRequest(user_app_id=door.ids("default")))
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


# -- the service under the door ----------------------------------------------------------------


def test_deleting_an_app_deletes_everything_in_it(services, admin) -> None:
    app = services.apps.create(admin, "doomed", description="d")
    scope = services.auth.app_scope(admin, "doomed")
    assert scope.app_id == app.id
    services.datasets.create(scope, "docs")
    services.documents.insert(scope, "docs", [{"_id": "a", "text": "hi"}])
    blobs = services.blobs.app(app.id)
    blobs.put("x/y.txt", b"hello")
    services.buckets.create(scope, "bkt")
    services.apps.delete(admin, "doomed")
    with pytest.raises(NotFound):
        services.apps.get(admin, "doomed")
    with pytest.raises(NotFound):
        services.auth.app_scope(admin, "doomed")
    assert not services.blobs.fs.exists(f"{services.blobs.root}/{app.id}")
    from sqlalchemy import func, select

    from taskloom.store.tables import datasets

    with services.datasets.store.read() as conn:
        left = conn.execute(
            select(func.count()).select_from(datasets).where(datasets.c.app_id == app.id)
        ).scalar()
    assert left == 0


def test_the_service_checks_what_it_is_given(services, admin) -> None:
    with pytest.raises(Invalid) as bad:
        services.apps.create(admin, "w", base_workflow="Nope")
    assert bad.value.details["field"] == "base_workflow"
    with pytest.raises(Invalid):
        services.apps.create(admin, "w", meta=[1])  # type: ignore[arg-type]
    services.apps.create(admin, "w")
    with pytest.raises(Conflict):
        services.apps.create(admin, "w")
    with pytest.raises(Invalid):
        services.apps.list(admin, limit=0)
    page = services.apps.list(admin, limit=1)
    assert len(page["data"]) == 1 and page["cursor"]
    rest = services.apps.list(admin, limit=10, cursor=page["cursor"])
    assert [a.name for a in rest["data"]] == ["w"] and rest["cursor"] is None
    limited = services.auth.create_user(admin, "carol")
    carol = services.auth.authenticate(limited["api_key"])
    with pytest.raises(Forbidden):
        services.apps.delete(carol, "default")
