"""Settings: every knob is a ``TASKLOOM_*`` environment variable with a default that works."""

from __future__ import annotations

from pathlib import Path

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
    max_batch_documents: int = Field(default=10_000, gt=0)
    default_max_attempts: int = Field(default=3, ge=1)

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
