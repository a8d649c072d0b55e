"""Fast JSON responses (orjson; numpy arrays and datetimes serialise natively)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse

OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, option=OPTS)


class FastJSONResponse(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def ok(content: Any, status_code: int = 200) -> FastJSONResponse:
    """Return a response object so FastAPI skips its own (slow) encoding pass."""
    return FastJSONResponse(content, status_code=status_code)
