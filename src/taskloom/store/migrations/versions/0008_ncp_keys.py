"""ncp_keys: NCP access key / sealed secret pairs bound to API keys (the NCLUE front door)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import taskloom.store.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ncp_keys",
        sa.Column("access_key", sa.String(length=32), nullable=False),
        sa.Column("api_key_id", sa.String(length=32), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_ncp_keys_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("access_key", name=op.f("pk_ncp_keys")),
        sa.UniqueConstraint("api_key_id", name=op.f("uq_ncp_keys_api_key_id")),
    )


def downgrade() -> None:
    op.drop_table("ncp_keys")
