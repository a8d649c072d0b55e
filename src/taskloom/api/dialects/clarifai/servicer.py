"""The V2 servicer: each RPC taskloom answers is one translation function
``(services, principal, request) -> response`` in an area module, listed in :data:`RPCS`
with its response type. The key is checked before the translation runs; a taskloom error
is answered as that response with only ``status`` set (``status.error``), and any other
exception, a bug, as an internal status, logged. RPCs not listed keep ``V2Servicer``'s
answer, gRPC ``UNIMPLEMENTED``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from clarifai_grpc.grpc.api import service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_pb2

from taskloom.api.dialects.clarifai import apps, call, status
from taskloom.errors import TaskloomError
from taskloom.services.container import Services

log = logging.getLogger("taskloom.clarifai")

Handler = Callable[[Services, Any, Any], Any]

RPCS: dict[str, tuple[Handler, type]] = {
    "PostApps": (apps.post_apps, service_pb2.MultiAppResponse),
    "GetApp": (apps.get_app, service_pb2.SingleAppResponse),
    "ListApps": (apps.list_apps, service_pb2.MultiAppResponse),
    "PatchApps": (apps.patch_apps, service_pb2.MultiAppResponse),
    "PatchApp": (apps.patch_app, service_pb2.SingleAppResponse),
    "DeleteApp": (apps.delete_app, status_pb2.BaseResponse),
}


def _method(name: str, handler: Handler, response: type) -> Callable[..., Any]:
    def rpc(self: Servicer, request: Any, context: Any) -> Any:
        try:
            principal = call.principal_of(self.services, context)
            return handler(self.services, principal, request)
        except TaskloomError as exc:
            return response(status=status.error(exc))
        except Exception:
            log.exception("Clarifai %s failed", name)
            return response(status=status.internal())

    rpc.__name__ = name
    return rpc


class Servicer(service_pb2_grpc.V2Servicer):
    def __init__(self, services: Services) -> None:
        self.services = services


for _name, (_handler, _response) in RPCS.items():
    setattr(Servicer, _name, _method(_name, _handler, _response))
