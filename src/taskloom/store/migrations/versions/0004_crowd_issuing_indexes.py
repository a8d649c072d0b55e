"""crowd issuing indexes

Issuing in big pools: partial indexes that hold only the tasks and suites with overlap left
(a request no longer reads the used-up ones), a worker's ACTIVE assignment and a worker's
control answers found without reading their whole history, the expired ACTIVE assignments
of an app, and "had this worker this suite?".

The partial indexes' conditions are written as ``store/crowd_tables.has_slots`` compiles
them for each database: the planners use such an index only for queries whose WHERE
clause holds the same expression.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_SLOTS = {
    "sqlite": "(infinite_overlap IS 1 OR remaining_overlap > 0)",
    "postgresql": "(infinite_overlap IS true OR remaining_overlap > 0)",
}


def upgrade() -> None:
    op.create_index(
        "ix_crowd_tasks_open",
        "crowd_tasks",
        ["pool_id", "kind", "seq"],
        sqlite_where=sa.text(f"suite_id IS NULL AND {_SLOTS['sqlite']}"),
        postgresql_where=sa.text(f"suite_id IS NULL AND {_SLOTS['postgresql']}"),
    )
    op.create_index(
        "ix_crowd_task_suites_open",
        "crowd_task_suites",
        ["pool_id", "seq"],
        sqlite_where=sa.text(_SLOTS["sqlite"]),
        postgresql_where=sa.text(_SLOTS["postgresql"]),
    )
    op.drop_index("ix_crowd_assignments_pool_user", table_name="crowd_assignments")
    op.create_index(
        "ix_crowd_assignments_pool_user_status",
        "crowd_assignments",
        ["pool_id", "user_id", "status"],
    )
    op.create_index(
        "ix_crowd_assignments_app_status_expires",
        "crowd_assignments",
        ["app_id", "status", "expires_at"],
    )
    op.create_index("ix_crowd_assignments_suite_user", "crowd_assignments", ["suite_id", "user_id"])
    op.drop_index("ix_crowd_answers_pool_user", table_name="crowd_answers")
    op.create_index(
        "ix_crowd_answers_pool_user_kind", "crowd_answers", ["pool_id", "user_id", "kind"]
    )


def downgrade() -> None:
    op.drop_index("ix_crowd_answers_pool_user_kind", table_name="crowd_answers")
    op.create_index("ix_crowd_answers_pool_user", "crowd_answers", ["pool_id", "user_id"])
    op.drop_index("ix_crowd_assignments_suite_user", table_name="crowd_assignments")
    op.drop_index("ix_crowd_assignments_app_status_expires", table_name="crowd_assignments")
    op.drop_index("ix_crowd_assignments_pool_user_status", table_name="crowd_assignments")
    op.create_index("ix_crowd_assignments_pool_user", "crowd_assignments", ["pool_id", "user_id"])
    op.drop_index("ix_crowd_task_suites_open", table_name="crowd_task_suites")
    op.drop_index("ix_crowd_tasks_open", table_name="crowd_tasks")
