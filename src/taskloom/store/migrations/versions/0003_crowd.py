"""crowd labelling

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import taskloom.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crowd_rate_counters",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "period", "bucket", name=op.f("pk_crowd_rate_counters")),
    )
    op.create_table(
        "crowd_bans",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("scope_id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_crowd_bans_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crowd_bans")),
        sa.UniqueConstraint("user_id", "scope", "scope_id", name="uq_crowd_bans_user_scope"),
    )
    op.create_table(
        "crowd_projects",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_crowd_projects_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crowd_projects")),
    )
    op.create_index("ix_crowd_projects_app_created", "crowd_projects", ["app_id", "created_at"])

    op.create_table(
        "crowd_skills",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_crowd_skills_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crowd_skills")),
    )
    op.create_index("ix_crowd_skills_app_created", "crowd_skills", ["app_id", "created_at"])

    op.create_table(
        "crowd_workers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_crowd_workers_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crowd_workers")),
        sa.UniqueConstraint("app_id", "external_id", name="uq_crowd_workers_app_external"),
        sa.UniqueConstraint("token_hash", name=op.f("uq_crowd_workers_token_hash")),
    )
    op.create_table(
        "crowd_pools",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_crowd_pools_app_id_apps"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["crowd_projects.id"],
            name=op.f("fk_crowd_pools_project_id_crowd_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crowd_pools")),
    )
    op.create_index("ix_crowd_pools_app_created", "crowd_pools", ["app_id", "created_at"])
    op.create_index("ix_crowd_pools_project_id", "crowd_pools", ["project_id"])

    op.create_table(
        "crowd_user_skills",
        sa.Column("skill_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("created_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.id"],
            name=op.f("fk_crowd_user_skills_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["skill_id"],
            ["crowd_skills.id"],
            name=op.f("fk_crowd_user_skills_skill_id_crowd_skills"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("skill_id", "user_id", name=op.f("pk_crowd_user_skills")),
    )
    op.create_index("ix_crowd_user_skills_app_user", "crowd_user_skills", ["app_id", "user_id"])

    op.create_table(
        "crowd_aggregated",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("pool_id", sa.String(length=36), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column(
            "output_values",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_crowd_aggregated_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "position", name=op.f("pk_crowd_aggregated")),
    )
    op.create_table(
        "crowd_assignments",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("pool_id", sa.String(length=36), nullable=False),
        sa.Column("suite_id", sa.String(length=36), nullable=True),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "task_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "solutions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("reward", sa.Float(), nullable=False),
        sa.Column("mixed", sa.Boolean(), nullable=False),
        sa.Column("automerged", sa.Boolean(), nullable=False),
        sa.Column("public_comment", sa.Text(), nullable=True),
        sa.Column("created_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", taskloom.store.types.UTCDateTime(), nullable=True),
        sa.Column("submitted_at", taskloom.store.types.UTCDateTime(), nullable=True),
        sa.Column("accepted_at", taskloom.store.types.UTCDateTime(), nullable=True),
        sa.Column("rejected_at", taskloom.store.types.UTCDateTime(), nullable=True),
        sa.Column("skipped_at", taskloom.store.types.UTCDateTime(), nullable=True),
        sa.Column("expired_at", taskloom.store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.id"],
            name=op.f("fk_crowd_assignments_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["crowd_pools.id"],
            name=op.f("fk_crowd_assignments_pool_id_crowd_pools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_crowd_assignments")),
        sa.UniqueConstraint("id", name=op.f("uq_crowd_assignments_id")),
    )
    op.create_index("ix_crowd_assignments_app_seq", "crowd_assignments", ["app_id", "seq"])
    op.create_index("ix_crowd_assignments_pool_status", "crowd_assignments", ["pool_id", "status"])
    op.create_index("ix_crowd_assignments_pool_user", "crowd_assignments", ["pool_id", "user_id"])

    op.create_table(
        "crowd_operation_items",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("idx", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "input",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("success", sa.Boolean(), nullable=True),
        sa.Column(
            "output",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_crowd_operation_items_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "idx", name=op.f("pk_crowd_operation_items")),
    )
    op.create_table(
        "crowd_task_suites",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("pool_id", sa.String(length=36), nullable=False),
        sa.Column("overlap", sa.Integer(), nullable=True),
        sa.Column("remaining_overlap", sa.Integer(), nullable=False),
        sa.Column("infinite_overlap", sa.Boolean(), nullable=False),
        sa.Column(
            "reserved_for",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "unavailable_for",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.id"],
            name=op.f("fk_crowd_task_suites_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["crowd_pools.id"],
            name=op.f("fk_crowd_task_suites_pool_id_crowd_pools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_crowd_task_suites")),
        sa.UniqueConstraint("id", name=op.f("uq_crowd_task_suites_id")),
    )
    op.create_index("ix_crowd_task_suites_pool_seq", "crowd_task_suites", ["pool_id", "seq"])

    op.create_table(
        "crowd_tasks",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("pool_id", sa.String(length=36), nullable=False),
        sa.Column("suite_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column(
            "input_values",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "known_solutions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "baseline_solutions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("message_on_unknown_solution", sa.Text(), nullable=True),
        sa.Column("overlap", sa.Integer(), nullable=True),
        sa.Column("remaining_overlap", sa.Integer(), nullable=False),
        sa.Column("infinite_overlap", sa.Boolean(), nullable=False),
        sa.Column("origin_task_id", sa.String(length=255), nullable=True),
        sa.Column(
            "reserved_for",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "unavailable_for",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", taskloom.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_crowd_tasks_app_id_apps"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["crowd_pools.id"],
            name=op.f("fk_crowd_tasks_pool_id_crowd_pools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_crowd_tasks")),
        sa.UniqueConstraint("id", name=op.f("uq_crowd_tasks_id")),
    )
    op.create_index("ix_crowd_tasks_pool_kind_seq", "crowd_tasks", ["pool_id", "kind", "seq"])
    op.create_index("ix_crowd_tasks_suite_id", "crowd_tasks", ["suite_id"])

    op.create_table(
        "crowd_answers",
        sa.Column("assignment_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("pool_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "output_values",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("submitted_at", taskloom.store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["crowd_assignments.id"],
            name=op.f("fk_crowd_answers_assignment_id_crowd_assignments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("assignment_id", "position", name=op.f("pk_crowd_answers")),
    )
    op.create_index("ix_crowd_answers_pool_status", "crowd_answers", ["pool_id", "status"])
    op.create_index("ix_crowd_answers_pool_user", "crowd_answers", ["pool_id", "user_id"])
    op.create_index("ix_crowd_answers_task_user", "crowd_answers", ["task_id", "user_id"])


def downgrade() -> None:
    op.drop_index("ix_crowd_answers_task_user", table_name="crowd_answers")
    op.drop_index("ix_crowd_answers_pool_user", table_name="crowd_answers")
    op.drop_index("ix_crowd_answers_pool_status", table_name="crowd_answers")

    op.drop_table("crowd_answers")
    op.drop_index("ix_crowd_tasks_suite_id", table_name="crowd_tasks")
    op.drop_index("ix_crowd_tasks_pool_kind_seq", table_name="crowd_tasks")

    op.drop_table("crowd_tasks")
    op.drop_index("ix_crowd_task_suites_pool_seq", table_name="crowd_task_suites")

    op.drop_table("crowd_task_suites")
    op.drop_table("crowd_operation_items")
    op.drop_index("ix_crowd_assignments_pool_user", table_name="crowd_assignments")
    op.drop_index("ix_crowd_assignments_pool_status", table_name="crowd_assignments")
    op.drop_index("ix_crowd_assignments_app_seq", table_name="crowd_assignments")

    op.drop_table("crowd_assignments")
    op.drop_table("crowd_aggregated")
    op.drop_index("ix_crowd_user_skills_app_user", table_name="crowd_user_skills")

    op.drop_table("crowd_user_skills")
    op.drop_index("ix_crowd_pools_project_id", table_name="crowd_pools")
    op.drop_index("ix_crowd_pools_app_created", table_name="crowd_pools")

    op.drop_table("crowd_pools")
    op.drop_table("crowd_workers")
    op.drop_index("ix_crowd_skills_app_created", table_name="crowd_skills")

    op.drop_table("crowd_skills")
    op.drop_index("ix_crowd_projects_app_created", table_name="crowd_projects")

    op.drop_table("crowd_projects")
    op.drop_table("crowd_bans")
    op.drop_table("crowd_rate_counters")
