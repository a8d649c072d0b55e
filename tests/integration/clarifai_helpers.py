"""A Clarifai door (gRPC) on a free port over the test's platform, and a V2 stub to call it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2_grpc

from taskloom.api.dialects.clarifai import server as clarifai_server


class Door:
    def __init__(self, stub: Any, key: str, user_id: str) -> None:
        self.stub = stub
        self.key = key
        self.user_id = user_id

    def md(self, key: str | None = None) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Key {key or self.key}"),)

    def ids(self, app_id: str = "", user_id: str | None = None) -> resources_pb2.UserAppIDSet:
        return resources_pb2.UserAppIDSet(
            user_id=self.user_id if user_id is None else user_id, app_id=app_id
        )

    def __call__(self, rpc: str, request: Any, key: str | None = None) -> Any:
        return getattr(self.stub, rpc)(request, metadata=self.md(key), timeout=30)


@pytest.fixture
def door(platform: Any, admin_key: str) -> Iterator[Door]:
    server, port = clarifai_server.bind("127.0.0.1", 0)
    clarifai_server.start(server, platform.services)
    channel = ClarifaiChannel.get_insecure_grpc_channel(base="127.0.0.1", port=port)
    admin = platform.services.auth.authenticate(admin_key)
    yield Door(service_pb2_grpc.V2Stub(channel), admin_key, admin.user_id)
    channel.close()
    server.stop(None)
