"""Validation of document batches: ids, field names, vectors, field types.

``prepare`` splits each document into its JSON part and its float32 vectors and reports
every document it refuses with its index, ``_id``, field, code and message; nothing here
touches the database.
"""

from __future__ import annotations

import binascii
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from taskloom.errors import Invalid
from taskloom.store.filters import VECTOR_SUFFIX
from taskloom.vectors import metrics

MAX_ID_LENGTH = 255
MAX_DIM = 65_536


@dataclass
class Failure:
    index: int
    id: str | None
    field: str | None
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "_id": self.id,
            "field": self.field,
            "code": self.code,
            "message": self.message,
        }


@dataclass
class Prepared:
    """One valid document split into its JSON part and its vectors."""

    index: int
    id: str
    data: dict[str, Any]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)


class _Bad(Exception):
    def __init__(self, field: str | None, code: str, message: str) -> None:
        self.field, self.code, self.message = field, code, message


# -- validation -------------------------------------------------------------------------------


def parse_vector(
    value: Any, name: str, *, check_finite: bool = True, blob: Any = None
) -> np.ndarray:
    """A float32 vector from a JSON list, ``{"$f32": base64}`` or, in a binary batch
    (``blob``, see ``taskloom.wire``), ``{"$f32at": [offset, length]}``; finite unless the
    caller checks that itself for a whole batch (``check_finite=False``)."""
    if isinstance(value, dict) and "$f32at" in value:
        ref = value["$f32at"]
        if (
            blob is None
            or len(value) != 1
            or not isinstance(ref, list)
            or len(ref) != 2
            or not all(type(x) is int and x >= 0 for x in ref)
        ):
            raise _Bad(name, "invalid_vector", "$f32at is [offset, length] in a binary batch")
        start, size = ref
        if (start + size) * 4 > len(blob):
            raise _Bad(name, "invalid_vector", "$f32at points past the end of the float block")
        arr = np.frombuffer(blob, dtype="<f4", count=size, offset=start * 4)
    elif isinstance(value, np.ndarray):  # in-process callers (job kinds)
        if value.ndim != 1 or value.dtype.kind not in "fiu":
            raise _Bad(name, "invalid_vector", "a vector is one-dimensional and numeric")
        with np.errstate(over="ignore"):
            arr = value.astype("<f4", copy=False)
    elif isinstance(value, dict):
        b64 = value.get("$f32")
        if len(value) != 1 or not isinstance(b64, str):
            raise _Bad(name, "invalid_vector", 'a vector is a list of numbers or {"$f32": base64}')
        try:
            raw = binascii.a2b_base64(b64, strict_mode=True)
        except (binascii.Error, ValueError) as exc:
            raise _Bad(name, "invalid_vector", "the $f32 value is not base64") from exc
        if len(raw) % 4:
            raise _Bad(name, "invalid_vector", "the $f32 value is not a whole number of float32")
        arr = np.frombuffer(raw, dtype="<f4")
    elif isinstance(value, list):
        kinds = {type(x) for x in value}
        if not kinds <= {int, float}:
            raise _Bad(name, "vector_not_numeric", "a vector holds numbers only")
        try:
            # beyond float32 becomes inf (rejected below), without a warning per request
            with np.errstate(over="ignore"):
                arr = np.asarray(value, dtype=np.float32)
        except OverflowError as exc:  # an int too large even for float64
            raise _Bad(name, "vector_not_finite", "a vector holds finite float32 numbers") from exc
    else:
        raise _Bad(name, "invalid_vector", "a vector is a list of numbers")
    if arr.size == 0:
        raise _Bad(name, "empty_vector", "a vector needs at least one dimension")
    if arr.size > MAX_DIM:
        raise _Bad(name, "vector_too_long", f"a vector has at most {MAX_DIM} dimensions")
    if check_finite and not np.isfinite(arr).all():
        raise _Bad(name, "vector_not_finite", NOT_FINITE)
    return arr


NOT_FINITE = "a vector holds finite float32 numbers (no NaN or inf)"


def query_vector(value: Any, name: str, metric: str) -> np.ndarray:
    """A search's query vector from what a client sent (any form ``parse_vector`` reads,
    or an encoder's array), ready to score under ``metric``:

    * a value that is not finite after the float32 cast (NaN, inf, or past float32's range
      as ``1e39`` is) is refused as in a stored vector (``vector_not_finite``);
    * under ``cosine`` it is scaled to unit length in float64, so a finite vector too long
      (``[2**64, 0]``) or too short for float32 squares ranks as its direction does;
    * under ``dp``, ``l2`` and ``l1`` it is refused when its own float32 arithmetic would
      overflow (``check_magnitude`` against no vectors); a search checks it again against
      the largest vector it scores (``check_magnitude`` with the index's ``max_norm``).
    """
    vec = parse_vector(value, name)
    if metric == "cosine":
        return metrics.normalize(vec)
    check_magnitude(vec, name, metric, 0.0)
    return vec


def check_magnitude(vec: np.ndarray, name: str, metric: str, data_norm: float) -> None:
    """Refuse (``vector_not_finite``) a query vector ``vec`` whose ``metric`` scores against
    vectors of norm up to ``data_norm`` (``metrics.norm``) would overflow float32."""
    if not metrics.fits_float32(metric, float(metrics.norm(metric, vec)), data_norm):
        raise _Bad(
            name,
            "vector_not_finite",
            f"the vector's magnitude is too large: its {metric} scores against this field's "
            "vectors would overflow float32; scale it down (or search with cosine)",
        )


def _check_key(key: Any, path: str) -> None:
    if not isinstance(key, str) or not key or "." in key or key.startswith("$") or "\x00" in key:
        raise _Bad(
            (path or str(key)).replace("\x00", "\\u0000"),
            "invalid_field_name",
            "field names are non-empty, contain no '.' or NUL character and do not start with '$'",
        )


def _walk_types(obj: dict[str, Any], prefix: str, out: dict[str, str]) -> None:
    """Record each leaf's type under its dotted path; refuse keys that paths cannot name."""
    for key, value in obj.items():
        if not key or "." in key or key[0] == "$" or "\x00" in key:
            _check_key(key, prefix + key)
        tv = type(value)
        if tv is str:
            t = "text"
        elif tv is float or tv is int:
            t = "number"
        elif tv is bool:
            t = "bool"
        elif tv is list:
            t = "array"
        elif value is None:
            continue
        elif tv is dict:
            if value:
                _walk_types(value, prefix + key + ".", out)
            else:
                out.setdefault(prefix + key, "object")
            continue
        else:  # subclasses (orjson never makes them)
            t = "number" if isinstance(value, int | float) and tv is not bool else "text"
        path = prefix + key if prefix else key
        prev = out.get(path)
        if prev is None:
            out[path] = t
        elif prev != t:
            out[path] = "mixed"


def normalise_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Bad("_id", "invalid_id", "_id is a string")
    value = str(value)
    if not value or len(value) > MAX_ID_LENGTH:
        raise _Bad("_id", "invalid_id", f"_id is 1 to {MAX_ID_LENGTH} characters")
    if "\x00" in value:
        raise _Bad("_id", "invalid_id", "_id holds no NUL character")
    return value


def prepare(
    docs: Any, *, require_id: bool = False, blob: Any = None
) -> tuple[list[Prepared], list[Failure], dict]:
    """Validate a batch; returns the good documents, the failures and the batch's field types."""
    if not isinstance(docs, list):
        raise Invalid("documents must be a list", code="invalid_documents", field="documents")
    good: list[Prepared] = []
    failures: list[Failure] = []
    types: dict[str, str] = {}
    seen: set[str] = set()
    arrays: list[np.ndarray] = []
    for i, doc in enumerate(docs):
        doc_id: str | None = None
        try:
            if not isinstance(doc, dict):
                raise _Bad(None, "not_an_object", "a document is a JSON object")
            raw_id = doc.get("_id")
            if raw_id is None:
                if require_id:
                    raise _Bad("_id", "missing_id", "_id is required")
                doc_id = uuid.uuid4().hex
            else:
                doc_id = normalise_id(raw_id)
            if doc_id in seen:
                raise _Bad("_id", "duplicate_id", "the same _id appears twice in this batch")
            data: dict[str, Any] = {}
            vecs: dict[str, np.ndarray] = {}
            doc_types: dict[str, str] = {}
            for key, value in doc.items():
                if key == "_id":
                    continue
                if isinstance(key, str) and key.endswith(VECTOR_SUFFIX):
                    _check_key(key, key)
                    if value is None and require_id:  # partial update: remove the vector
                        vecs[key] = None  # type: ignore[assignment]
                        continue
                    vecs[key] = arr = parse_vector(value, key, check_finite=False, blob=blob)
                    arrays.append(arr)
                else:
                    data[key] = value
            _walk_types(data, "", doc_types)
        except _Bad as bad:
            failures.append(Failure(i, doc_id, bad.field, bad.code, bad.message))
            continue
        seen.add(doc_id)
        for k, t in doc_types.items():
            prev = types.get(k)
            types[k] = t if prev in (None, t) else "mixed"
        good.append(Prepared(i, doc_id, data, vecs))
    # one pass over every vector of the batch; only a batch with a bad one looks closer
    if arrays and not np.isfinite(np.concatenate(arrays)).all():
        kept = []
        for p in good:
            culprit = next(
                (k for k, v in p.vectors.items() if v is not None and not np.isfinite(v).all()),
                None,
            )
            if culprit is None:
                kept.append(p)
            else:
                failures.append(Failure(p.index, p.id, culprit, "vector_not_finite", NOT_FINITE))
        good = kept
        types = {}
        for p in good:
            _walk_types(p.data, "", types)
        failures.sort(key=lambda f: f.index)
    return good, failures, types


def merge_fields(fields: dict[str, Any], types: dict[str, str], dims: dict[str, int]) -> dict:
    """The dataset's field list after a batch. Each field keeps the ``seq`` of its first
    appearance: the order in which documents first showed it, which PostgreSQL's jsonb does
    not keep in the documents themselves (``schema`` lists fields in that order)."""
    out = dict(fields)
    nxt = 1 + max((v.get("seq", -1) for v in out.values()), default=-1)
    for k, t in types.items():
        prev = out.get(k)
        if prev is None:
            out[k] = {"type": t, "seq": nxt}
            nxt += 1
        elif prev.get("type") != t and prev.get("type") != "vector":
            out[k] = {**prev, "type": "mixed"}
    for k, d in dims.items():
        prev = out.get(k)
        seq = prev.get("seq") if prev else None
        if seq is None:
            seq, nxt = nxt, nxt + 1
        out[k] = {"type": "vector", "dim": d, "seq": seq}
    return out


def public_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The field list as users see it: first-seen order, without the internal ``seq``."""
    ordered = sorted(fields.items(), key=lambda kv: kv[1].get("seq", 1 << 30))
    return {k: {a: b for a, b in v.items() if a != "seq"} for k, v in ordered}


def written_fields(
    written: list[Prepared], failures: list[Failure], new_dims: dict[str, int]
) -> tuple[dict[str, str], dict[str, int]]:
    """Field types and new vector dimensions of the documents that are written: a refused
    document (``failures``) leaves no field in the dataset's schema."""
    refused = {f.index for f in failures}
    types: dict[str, str] = {}
    vector_fields: set[str] = set()
    for p in written:
        if p.index in refused:
            continue
        _walk_types(p.data, "", types)
        vector_fields.update(k for k, v in p.vectors.items() if v is not None)
    return types, {k: d for k, d in new_dims.items() if k in vector_fields}


def check_dims(
    good: list[Prepared], fields: dict[str, Any], failures: list[Failure]
) -> tuple[list[Prepared], dict[str, int]]:
    """Drop documents whose vectors disagree with the field's dimension."""
    dims = {k: v["dim"] for k, v in fields.items() if v.get("type") == "vector"}
    new_dims: dict[str, int] = {}
    kept: list[Prepared] = []
    for p in good:
        bad = None
        for name, vec in p.vectors.items():
            if vec is None:
                continue
            want = dims.get(name) or new_dims.get(name)
            if want is None:
                new_dims[name] = vec.size
            elif vec.size != want:
                bad = Failure(
                    p.index,
                    p.id,
                    name,
                    "dimension_mismatch",
                    f"{name} has {want} dimensions in this dataset, this vector has {vec.size}",
                )
                break
        if bad:
            failures.append(bad)
        else:
            kept.append(p)
    return kept, new_dims


def raise_failures(failures: list[Failure], total: int) -> None:
    failures.sort(key=lambda f: f.index)
    first = failures[0]
    where = f"documents[{first.index}]" + (f".{first.field}" if first.field else "")
    raise Invalid(
        f"{len(failures)} of {total} documents are invalid; nothing was written "
        f"(first: {where}: {first.message})",
        code="invalid_documents",
        field=where,
        details={"failed": [f.to_dict() for f in failures]},
    )


# -- the service ------------------------------------------------------------------------------
