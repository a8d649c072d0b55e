"""The tables of issue 5's foundation: buckets and feature tables (the model registry adds
its own here later).

They live on the same ``MetaData`` as ``store/tables.py`` (which imports this module at its
end). Both carry ``app_id``: the tenant boundary. A bucket's files and a feature table's data
are blobs (``taskloom.blobs``, areas ``.buckets`` and ``.features``); these rows say what
they are.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table, Text, UniqueConstraint

from taskloom.store.tables import metadata
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
