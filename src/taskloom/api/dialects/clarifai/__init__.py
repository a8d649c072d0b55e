"""The Clarifai front door: Clarifai's V2 API over gRPC, so the official ``clarifai`` Python
SDK runs against taskloom unchanged.

The service and its messages are ``clarifai-grpc``'s generated code (``V2Servicer``,
``service_pb2``, ``resources_pb2``); nothing is regenerated here. Each RPC is a thin
translation over the services the native API uses: ``server.py`` builds the gRPC server,
``servicer.py`` routes RPCs, ``call.py`` turns a call's metadata into a scope,
``status.py`` turns taskloom errors into Clarifai statuses, and one module per area
(``apps.py``, ...) translates messages. The vocabulary (taskloom word <-> Clarifai word)
is in ``docs/clarifai.md``.
"""
