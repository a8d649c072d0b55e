"""the model registry: models and model_versions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import taskloom.store.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_models_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
    )
    op.create_index("ix_models_app_created", "models", ["app_id", "created_at"])
    op.create_table(
        "model_versions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("model_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("metrics", _json(), nullable=True),
        sa.Column("artifact", sa.String(length=512), nullable=True),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("error", _json(), nullable=True),
        sa.Column("created_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_model_versions_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("model_id", "number", name="uq_model_versions_model_number"),
    )
    op.create_index("ix_model_versions_job", "model_versions", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_model_versions_job", table_name="model_versions")
    op.drop_table("model_versions")
    op.drop_index("ix_models_app_created", table_name="models")
    op.drop_table("models")
