"""Encoders of a dataset: what each encode job learnt, the models they use, query encoding.

Every encode job records, per dataset and output vector field, one row in ``encoders``:
its kind, its config (input field, alias, model) and its state (the fitted encoder's JSON:
column order, categories, scaling statistics; or the model and dimension). Search uses it
to turn a query text into a vector with the encoder that made a field
(:meth:`EncoderService.encode_query`).

Models are loaded once per process and shared (``OnnxTextEncoder`` and ``ClipModel`` are
safe to share between worker threads).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from taskloom.config import Settings
from taskloom.errors import Invalid, JobFailed, NotFound, Unavailable
from taskloom.ml.encoders.clip import ClipModel, ClipTextEncoder, ClipUnavailable
from taskloom.ml.encoders.text_onnx import MODEL_ID, OnnxTextEncoder
from taskloom.scope import Scope
from taskloom.services.media import MediaReader
from taskloom.store.engine import Store
from taskloom.store.lookups import lookup
from taskloom.store.tables import datasets, encoders, vectors
from taskloom.store.types import utcnow

TEXT_KINDS = ("encode_text", "encode_text_clip", "encode_image_clip")
CLIP_KINDS = ("encode_text_clip", "encode_image_clip")


class _ModelCache:
    """A few loaded models per process, least recently used out first."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[Any, threading.Lock] = {}

    def get(self, key: Any, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # one load per key, other keys load in parallel
            with self._lock:
                if key in self._items:
                    return self._items[key]
            value = load()
            with self._lock:
                self._items[key] = value
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
                self._loading.pop(key, None)
            return value


_MODELS = _ModelCache()


def clip_not_configured() -> JobFailed:
    return JobFailed(
        "no CLIP model is configured: set TASKLOOM_CLIP_MODEL_DIR to a local folder holding "
        "a CLIP model saved with transformers (CLIPModel.save_pretrained plus its tokenizer "
        "and image processor)",
        code="clip_model_not_configured",
    )


class EncoderService:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    # -- recorded encoders ---------------------------------------------------------------

    def get(self, scope: Scope, dataset: str, output_field: str) -> dict[str, Any] | None:
        """The encoder that wrote ``output_field``: {kind, config, state, ...}, or None."""
        with self.store.read() as conn:
            ds = lookup(conn, scope, dataset)
            row = conn.execute(
                select(encoders).where(
                    encoders.c.dataset_id == ds.id, encoders.c.output_field == output_field
                )
            ).first()
        return _public(row) if row is not None else None

    def list(self, scope: Scope, dataset: str) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            ds = lookup(conn, scope, dataset)
            rows = conn.execute(
                select(encoders).where(encoders.c.dataset_id == ds.id).order_by(encoders.c.id)
            ).all()
        return [_public(r) for r in rows]

    def put(
        self,
        scope: Scope,
        dataset: str,
        output_field: str,
        kind: str,
        config: dict[str, Any],
        state: dict[str, Any],
    ) -> None:
        """Record (insert or replace) the encoder of ``output_field``."""
        now = utcnow()
        with self.store.write() as conn:
            ds = lookup(conn, scope, dataset, lock=True)
            values = {
                "dataset_id": ds.id,
                "output_field": output_field,
                "kind": kind,
                "config": config,
                "state": state,
                "created_at": now,
                "updated_at": now,
            }
            ins = (postgresql if self.store.dialect == "postgresql" else sqlite).insert(encoders)
            conn.execute(
                ins.values(**values).on_conflict_do_update(
                    index_elements=["dataset_id", "output_field"],
                    set_={"kind": kind, "config": config, "state": state, "updated_at": now},
                )
            )

    def drop_vector_field(self, scope: Scope, dataset: str, field: str) -> int:
        """Remove every vector of ``field`` and the field from the dataset's schema, so it
        can be written again with another dimension. Returns the vectors removed."""
        now = utcnow()
        with self.store.write() as conn:
            ds = lookup(conn, scope, dataset, lock=True)
            n = conn.execute(
                delete(vectors).where(vectors.c.dataset_id == ds.id, vectors.c.field == field)
            ).rowcount
            if field in ds.fields:
                fields = {k: v for k, v in ds.fields.items() if k != field}
                conn.execute(
                    update(datasets)
                    .where(datasets.c.id == ds.id)
                    .values(fields=fields, updated_at=now)
                )
        return int(n or 0)

    # -- models --------------------------------------------------------------------------

    def configured_text_model(self) -> tuple[str | None, str | None]:
        """The model and tokenizer files Settings name for encode_text (None: the packaged
        all-MiniLM-L6-v2 int8), as absolute paths."""
        s = self.settings
        mp = str(s.text_model_path.resolve()) if s.text_model_path else None
        tp = str(s.text_tokenizer_path.resolve()) if s.text_tokenizer_path else None
        return mp, tp

    def text_encoder(
        self, model_path: str | None = None, tokenizer_path: str | None = None
    ) -> OnnxTextEncoder:
        """The ONNX sentence encoder of these files (None: the packaged default ones)."""
        batch = self.settings.encode_batch_size
        key = ("onnx-text", model_path or "", tokenizer_path or "", batch)
        return _MODELS.get(
            key, lambda: OnnxTextEncoder(model_path, tokenizer_path, batch_size=batch)
        )

    def clip_model_dir(self) -> Path:
        """The configured CLIP folder, resolved; JobFailed when none is configured."""
        d = self.settings.clip_model_dir
        if d is None:
            raise clip_not_configured()
        return Path(d).resolve()

    def clip_model(self, model_dir: str | Path) -> ClipModel:
        d = Path(model_dir)
        if not d.is_dir():
            raise JobFailed(
                f"the CLIP model folder {d} does not exist", code="clip_model_not_found"
            )
        stamp = (d / "config.json").stat().st_mtime_ns if (d / "config.json").exists() else 0
        key = ("clip", str(d), stamp)
        try:
            return _MODELS.get(
                key, lambda: ClipModel(d, batch_size=self.settings.encode_batch_size)
            )
        except ClipUnavailable as exc:
            raise JobFailed(str(exc), code="clip_unavailable") from exc
        except (OSError, ValueError) as exc:
            raise JobFailed(
                f"cannot load the CLIP model in {d}: {exc}", code="clip_model_invalid"
            ) from exc

    def media_reader(self) -> MediaReader:
        s = self.settings
        return MediaReader(
            s.resolved_media_dir, max_bytes=s.max_image_bytes, timeout=s.image_fetch_timeout
        )

    # -- search support ------------------------------------------------------------------

    def encode_query(self, scope: Scope, dataset: str, vector_field: str, text: str) -> np.ndarray:
        """``text`` as a float32 vector in the space of ``vector_field``, made with the
        encoder (and model) that wrote that field. Text fields give sentence vectors; CLIP
        fields (text or image) give CLIP text vectors, so text finds images."""
        if not isinstance(text, str):
            raise Invalid("the query text is a string", code="invalid_query_text", field="text")
        rec = self.get(scope, dataset, vector_field)
        if rec is None:
            raise NotFound(
                f"{vector_field!r} was not made by an encode job in this dataset, so a text "
                "cannot be encoded for it; search with a vector",
                code="encoder_not_found",
                field="vector_field",
            )
        kind, config = rec["kind"], rec["config"]
        if kind == "encode_text":
            try:
                enc = self.text_encoder(config.get("model_path"), config.get("tokenizer_path"))
            except FileNotFoundError as exc:
                raise Unavailable(
                    f"the text model that made {vector_field!r} is gone: {exc}",
                    code="text_model_not_found",
                    field="vector_field",
                ) from exc
            return enc.encode([text])[0]
        if kind in CLIP_KINDS:
            try:
                model = self.clip_model(config["model_dir"])
            except JobFailed as exc:
                raise Unavailable(exc.message, code=exc.code, field="vector_field") from exc
            return ClipTextEncoder(model).encode([text])[0]
        raise Invalid(
            f"{vector_field!r} was made by {kind}, which does not encode free text; "
            "search with a vector",
            code="text_query_unsupported",
            field="vector_field",
        )


def _public(row: Any) -> dict[str, Any]:
    return {
        "output_field": row.output_field,
        "kind": row.kind,
        "config": row.config,
        "state": row.state,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


__all__ = ["MODEL_ID", "EncoderService"]
