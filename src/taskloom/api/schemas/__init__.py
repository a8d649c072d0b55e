"""The schemas of the native API's answers, so ``/openapi.json`` describes what the server
really sends: the error envelope (``errors``) and each area's response models.

Routes keep returning ``FastJSONResponse`` (``api/responses.ok``): FastAPI does not encode
a ``Response`` again, so ``response_model=`` documents the answer and costs nothing at run
time. The models say which keys are always there, which may be null and which may be
absent; shapes that are open (a document's own fields, a job's params and result, a crowd
object's Toloka fields) allow extra keys.
"""

from taskloom.api.schemas.errors import (
    ErrorDetail,
    ErrorEnvelope,
    error_responses,
)

__all__ = ["ErrorDetail", "ErrorEnvelope", "error_responses"]
