"""The tables of issue 5: buckets, feature tables and the model registry (models and their
versions).

They live on the same ``MetaData`` as ``store/tables.py`` (``store.schema`` gathers them
all). Both carry ``app_id``: the tenant boundary. A bucket's files and a feature table's data
are blobs (``taskloom.blobs``, areas ``.buckets`` and ``.features``); these rows say what
they are. A model version's artifact is a blob too (area ``.models``), written by its training
job.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from taskloom.store import tables as _core_tables  # noqa: F401 - the tables these refer to
from taskloom.store.metadata import metadata
from taskloom.store.types import Json, UTCDateTime

ID = 36  # str(uuid4())


def _app() -> Column:
    return Column("app_id", String(32), ForeignKey("apps.id", ondelete="CASCADE"), nullable=False)


buckets = Table(
    "buckets",
    metadata,
    # the files live under .buckets/<app_id>/<id>/: a bucket deleted and created again
    # under the same name never sees the old one's files
    Column("id", String(ID), primary_key=True),
    _app(),
    Column("name", String(63), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("app_id", "name", name="uq_buckets_app_name"),
)

features = Table(
    "features",
    metadata,
    Column("id", String(ID), primary_key=True),
    _app(),
    Column("name", String(128), nullable=False),
    Column("description", Text, nullable=False),
    Column("key_column", String(255), nullable=False),
    # [{"name": "age", "type": "float"}, ...] in the matrix's column order
    Column("columns", Json, nullable=False),
    # {"kind": "dataset", "dataset", "key_field", "fields"} or
    # {"kind": "file", "bucket", "path", "format", "columns"}
    Column("source", Json, nullable=False),
    Column("row_count", BigInteger, nullable=False),
    # the Parquet file in the app's .features area
    Column("artifact", String(512), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("app_id", "name", name="uq_features_app_name"),
    Index("ix_features_app_created", "app_id", "created_at"),
)

models = Table(
    "models",
    metadata,
    Column("id", String(ID), primary_key=True),
    _app(),
    Column("name", String(128), nullable=False),
    # "task_model": a tabular classifier trained from a labelled file (NCLUE's task model)
    Column("kind", String(32), nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_models_app_created", "app_id", "created_at"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("model_id", String(ID), ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    # registered | pending | in_progress | completed | failed | cancelled: written by the
    # training job; while the job exists, its own status is the one callers see
    Column("status", String(20), nullable=False),
    # what the version is trained from (for a task model: the request's fields)
    Column("params", Json, nullable=False),
    Column("metrics", Json, nullable=True),
    # the ml.tabular.save() bytes, a path in the app's .models area
    Column("artifact", String(512), nullable=True),
    # no foreign key: a finished job may be deleted, the version stays
    Column("job_id", String(32), nullable=True),
    Column("error", Json, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("model_id", "number", name="uq_model_versions_model_number"),
    Index("ix_model_versions_job", "job_id"),
)
