"""The gRPC server of the Clarifai door.

:func:`bind` makes the server and binds its port before the platform starts (as the HTTP
socket is, so a busy port is refused before the data folder is touched); :func:`start`
adds the servicer and starts it. RPCs run on a pool of threads, so a slow call does not
hold the others; past ``max_concurrent`` calls in flight a new one is refused with gRPC
``RESOURCE_EXHAUSTED`` rather than queued without bound.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
from clarifai_grpc.grpc.api import service_pb2_grpc

from taskloom.api.dialects.clarifai.servicer import Servicer
from taskloom.services.container import Services

# uploads carry up to 128 inputs of media per request
MAX_MESSAGE_BYTES = 128 * 1024 * 1024


class GrpcAddressInUse(OSError):
    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            f"{host}:{port} (gRPC, the Clarifai door) is already in use. Stop that process, or "
            f"choose another port: --grpc-port {port + 1}, TASKLOOM_GRPC_PORT={port + 1}; "
            "--no-grpc (TASKLOOM_GRPC=false) serves HTTP only"
        )
        self.host = host
        self.port = port


def bind(
    host: str, port: int, *, threads: int = 16, max_concurrent: int = 256
) -> tuple[grpc.Server, int]:
    """A server bound to ``host:port`` (0: any free port) and the port it got."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"),
        maximum_concurrent_rpcs=max_concurrent,
        options=[
            # refuse a port another process holds (gRPC's default shares it, SO_REUSEPORT)
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise GrpcAddressInUse(host, port) from exc
    if bound == 0:
        raise GrpcAddressInUse(host, port)
    return server, bound


def start(server: grpc.Server, services: Services) -> None:
    service_pb2_grpc.add_V2Servicer_to_server(Servicer(services), server)
    server.start()
