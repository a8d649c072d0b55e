"""The core tables: users, apps, keys, datasets, documents, vectors, jobs, encoders and
clusterings. The crowd and model tables are in their own modules; ``store.schema`` gathers
all of them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from taskloom.store.metadata import metadata
from taskloom.store.types import BigId, Json, UTCDateTime

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
)

apps = Table(
    "apps",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(32), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # an app's name is unique per user: the Clarifai door's app id
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("description", Text, nullable=True),
    # the workflow that indexes new inputs ("Empty", "Language-Understanding", "Universal",
    # "General"); NULL: "Empty"
    Column("base_workflow", String(64), nullable=True),
    # what a client gave that taskloom keeps but does not read (Clarifai's display name,
    # default language, the app's metadata), as given
    Column("meta", Json, nullable=True),
    Column("updated_at", UTCDateTime, nullable=True),
    UniqueConstraint("user_id", "name", name="uq_apps_user_name"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(32), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # NULL: the key may act on every app of its user.
    Column("app_id", String(32), ForeignKey("apps.id", ondelete="CASCADE"), nullable=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False),
    # sha256 of the whole key: keys are 192-bit random, so a fast hash is the right one.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

# NCP API Gateway key pairs (the NCLUE front door), one per API key: the access key is an id,
# the secret is sealed with taskloom.secrets_box (the server needs it to check signatures).
ncp_keys = Table(
    "ncp_keys",
    metadata,
    Column("access_key", String(32), primary_key=True),
    Column(
        "api_key_id",
        String(32),
        ForeignKey("api_keys.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("secret_sealed", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# NCP signatures already accepted, so that one is refused the second time (a replay) while
# its timestamp is still inside the 5-minute window (store/ncp_replays.py). A row is of no use
# once ``expires_at`` (its timestamp plus the window) has passed: the timestamp check refuses
# the request by then; expired rows are purged through the index.
ncp_signatures = Table(
    "ncp_signatures",
    metadata,
    Column("signature", String(64), primary_key=True),
    Column("access_key", String(32), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_ncp_signatures_expires_at", "expires_at"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("app_id", String(32), ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    # field path -> {"type": ...}; vectors also carry "dim".
    Column("fields", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # bumped in the transaction of every write to the dataset's documents or vectors, so a
    # reader can tell in one row whether its cached index is current (vectors/cache.py)
    Column("data_version", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("app_id", "name", name="uq_datasets_app_name"),
)

documents = Table(
    "documents",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("dataset_id", BigId, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("doc_id", String(255), nullable=False),
    # The document without its vector fields.
    Column("data", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("dataset_id", "doc_id", name="uq_documents_dataset_doc"),
)

vectors = Table(
    "vectors",
    metadata,
    Column(
        "document_id",
        BigId,
        ForeignKey("documents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("field", String(255), primary_key=True),
    Column("dataset_id", BigId, nullable=False),
    Column("dim", Integer, nullable=False),
    # little-endian float32, dim * 4 bytes
    Column("data", LargeBinary, nullable=False),
    Index("ix_vectors_dataset_field", "dataset_id", "field"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("app_id", String(32), ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("dataset_id", BigId, ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True),
    Column("dataset_name", String(128), nullable=True),
    Column("kind", String(100), nullable=False),
    Column("params", Json, nullable=False),
    Column("status", String(20), nullable=False),
    Column("progress", Float, nullable=False, default=0.0),
    Column("message", Text, nullable=True),
    Column("result", Json, nullable=True),
    Column("error", Json, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("idempotency_key", String(255), nullable=True),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("lease_owner", String(100), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("run_after", UTCDateTime, nullable=False),
    Column("parent_id", String(32), ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("app_id", "idempotency_key", name="uq_jobs_app_idempotency_key"),
    Index("ix_jobs_status_run_after", "status", "run_after"),
    Index("ix_jobs_app_created", "app_id", "created_at"),
)

job_events = Table(
    "job_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job_id", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    # transition | progress | log
    Column("type", String(20), nullable=False),
    Column("status", String(20), nullable=True),
    Column("progress", Float, nullable=True),
    Column("message", Text, nullable=True),
    Column("data", Json, nullable=True),
    Index("ix_job_events_job_id", "job_id", "id"),
)


# -- vector jobs (encoders, clustering) ---------------------------------------------------------

encoders = Table(
    "encoders",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("dataset_id", BigId, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    # the vector field the encoder writes, e.g. "title_default_vector_"
    Column("output_field", String(255), nullable=False),
    # encode_numeric | encode_categories | encode_text | encode_text_clip | encode_image_clip
    Column("kind", String(100), nullable=False),
    # what it was asked for (input fields, model, alias, scaling...)
    Column("config", Json, nullable=False),
    # what it learnt (column order, categories, scaling statistics); JSON, never pickle
    Column("state", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("dataset_id", "output_field", name="uq_encoders_dataset_output"),
)

clusterings = Table(
    "clusterings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("dataset_id", BigId, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("vector_field", String(255), nullable=False),
    Column("alias", String(255), nullable=False),
    # n_clusters, n_iter, n_init, random_state... or {"source": "inserted"}
    Column("params", Json, nullable=False),
    # inertia, sizes, job id; and the user's own metadata under "user"
    Column("info", Json, nullable=False),
    Column("user_metadata", Json, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint(
        "dataset_id", "vector_field", "alias", name="uq_clusterings_dataset_field_alias"
    ),
)

centroids = Table(
    "centroids",
    metadata,
    Column(
        "clustering_id",
        BigId,
        ForeignKey("clusterings.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # "cluster-0", "cluster-1", ... (or the ids a user inserted)
    Column("cluster_id", String(255), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("dim", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),  # little-endian float32
    Column("size", Integer, nullable=True),
)
