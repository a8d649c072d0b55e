"""The SDK's binary framing for document batches: JSON for the documents, raw float32 for
their vectors, so that neither side formats, parses or base64-codes a float.

    b"TLV1" | uint32 little-endian n | n bytes of JSON | little-endian float32 values

In the JSON, a vector field's value is ``{"$f32at": [offset, length]}``: ``length`` floats
starting ``offset`` floats into the trailing block. Sent as ``Content-Type:
application/vnd.taskloom.batch``; the plain JSON API accepts the same documents with vectors
as number lists or ``{"$f32": base64}``.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

from taskloom.errors import MalformedJSON

MEDIA_TYPE = "application/vnd.taskloom.batch"
MAGIC = b"TLV1"
_HEAD = struct.Struct("<4sI")
VECTOR_SUFFIX = "_vector_"


def encode(body: dict[str, Any], docs_key: str = "documents") -> bytes:
    """Frame ``body``; numeric vectors of its documents go to the binary block."""
    import numpy as np

    chunks: list[bytes] = []
    offset = 0
    docs = []
    for doc in body[docs_key]:
        if isinstance(doc, dict) and any(
            isinstance(k, str) and k.endswith(VECTOR_SUFFIX) for k in doc
        ):
            doc = dict(doc)
            for k, v in doc.items():
                if not (isinstance(k, str) and k.endswith(VECTOR_SUFFIX)):
                    continue
                arr = _numeric(v, np)
                if arr is None:
                    continue  # not a plain numeric vector: sent as it is, for the server to judge
                data = arr.astype("<f4", copy=False).tobytes()
                chunks.append(data)
                doc[k] = {"$f32at": [offset, arr.size]}
                offset += arr.size
        docs.append(doc)
    head = orjson.dumps({**body, docs_key: docs}, option=orjson.OPT_SERIALIZE_NUMPY)
    return b"".join([_HEAD.pack(MAGIC, len(head)), head, *chunks])


def _numeric(value: Any, np: Any) -> Any:
    if isinstance(value, np.ndarray):
        arr = value
    elif isinstance(value, list | tuple) and value:
        first = value[0]
        if isinstance(first, bool) or not isinstance(first, int | float | np.number):
            return None
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            return None
    else:
        return None
    if arr.ndim != 1 or arr.dtype.kind not in "fiu":
        return None
    return arr


def decode(raw: bytes) -> tuple[Any, memoryview]:
    """(the JSON body, the float block). Raises MalformedJSON on a bad frame."""
    if len(raw) < _HEAD.size:
        raise MalformedJSON("the batch frame is truncated", field="body")
    magic, n = _HEAD.unpack_from(raw)
    if magic != MAGIC or _HEAD.size + n > len(raw):
        raise MalformedJSON("not a taskloom batch frame (bad magic or length)", field="body")
    view = memoryview(raw)
    try:
        body = orjson.loads(view[_HEAD.size : _HEAD.size + n])
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"the batch's JSON is not valid: {exc}", field="body") from exc
    blob = view[_HEAD.size + n :]
    if len(blob) % 4:
        raise MalformedJSON("the float block is not a whole number of float32", field="body")
    return body, blob
