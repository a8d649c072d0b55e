"""ncp_signatures: NCP signatures already accepted (the NCLUE front door refuses replays)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import taskloom.store.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ncp_signatures",
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("access_key", sa.String(length=32), nullable=False),
        sa.Column("expires_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("signature", name=op.f("pk_ncp_signatures")),
    )
    op.create_index("ix_ncp_signatures_expires_at", "ncp_signatures", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_ncp_signatures_expires_at", table_name="ncp_signatures")
    op.drop_table("ncp_signatures")
