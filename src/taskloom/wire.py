"""The SDK's binary framing for document batches: JSON for the documents, raw float32 for
their vectors, so that neither side formats, parses or base64-codes a float.

    b"TLV1" | uint32 little-endian n | n bytes of JSON | little-endian float32 values

In the JSON, a vector field's value is ``{"$f32at": [offset, length]}``: ``length`` floats
starting ``offset`` floats into the trailing block. Sent as ``Content-Type:
application/vnd.taskloom.batch``; the plain JSON API accepts the same documents with vectors
as number lists or ``{"$f32": base64}``.

It is also where request bodies are read as JSON (:func:`loads`) and where the nesting limits
live: a document nests objects and arrays at most :data:`MAX_DEPTH` levels (the document
itself is the first), a whole request body at most :data:`MAX_BODY_DEPTH` (room for a
door's wrapping around the deepest document). Deeper answers 400 ``too_deep`` naming the
first field path beyond the limit, before anything recurses into the value.
"""

from __future__ import annotations

import re
import struct
from typing import Any

import orjson

from taskloom.errors import MalformedJSON

MAX_DEPTH = 64
MAX_BODY_DEPTH = 2 * MAX_DEPTH

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
    if nesting(bytes(view[_HEAD.size : _HEAD.size + n])) > MAX_BODY_DEPTH:
        check_depth(body, MAX_BODY_DEPTH)
    blob = view[_HEAD.size + n :]
    if len(blob) % 4:
        raise MalformedJSON("the float block is not a whole number of float32", field="body")
    return body, blob


def too_deep(value: Any, limit: int) -> list[str | int] | None:
    """The path of the first object or array nested deeper than ``limit`` levels in
    ``value`` (``value`` itself, when a container, is level 1), or None. Iterative, so any
    depth is safe to measure."""
    stack: list[tuple[Any, int, list[str | int]]] = [(value, 1, [])]
    while stack:
        node, level, path = stack.pop()
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list | tuple):
            items = enumerate(node)
        else:
            continue
        if level > limit:
            return path
        for key, child in items:
            if isinstance(child, dict | list | tuple):
                stack.append((child, level + 1, [*path, key]))
    return None


def field_path(path: list[str | int], prefix: str = "") -> str:
    """``["documents", 0, "a"]`` → ``documents[0].a`` (the API's spelling of a field)."""
    out = prefix
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def check_depth(value: Any, limit: int, prefix: str = "") -> None:
    """Refuse ``value`` (400 ``too_deep``) when it nests deeper than ``limit`` levels."""
    path = too_deep(value, limit)
    if path is not None:
        where = field_path(path, prefix) or prefix or "body"
        raise MalformedJSON(
            f"{where} nests deeper than {limit} levels of objects and arrays",
            code="too_deep",
            field=where,
            details={"max_depth": limit},
        )


# a JSON string, quotes included (the unrolled form: linear, no backtracking)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def nesting(raw: bytes) -> int:
    """How deep valid JSON text nests, counted on its bytes (C-speed passes: a body of
    vectors is not walked number by number)."""
    import numpy as np

    brackets = _STRING.sub(b"0", raw).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    step = np.where((codes == 0x5B) | (codes == 0x7B), 1, -1).astype(np.int32)
    return int(np.cumsum(step).max())


_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def loads(raw: bytes | bytearray | memoryview, *, limit: int = MAX_BODY_DEPTH) -> Any:
    """A request body's JSON: 400 ``malformed_json`` when it is not JSON, 400 ``too_deep``
    when it nests deeper than ``limit``."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"the request body is not valid JSON: {exc}", field="body") from exc
    if isinstance(body, dict | list) and nesting(bytes(raw)) > limit:
        check_depth(body, limit)
    return body
