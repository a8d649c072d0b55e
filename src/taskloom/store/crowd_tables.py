"""The crowd tables (issue 4): projects, pools, skills, workers, tasks, suites, assignments,
answers, bans, rate counters, operation items and aggregated results.

They live on the same ``MetaData`` as ``store/tables.py`` (``store.schema`` gathers them
all), so migrations and the schema check see them. Every table carries ``app_id`` or hangs
off a table that does: the tenant boundary.

Ids are strings (UUIDs) as in Toloka; tasks, suites and assignments also have an integer
``seq`` primary key that keeps insertion order for paging and issuing.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    literal_column,
    or_,
)
from sqlalchemy.sql.elements import ColumnElement

from taskloom.store import tables as _core_tables  # noqa: F401 - the tables these refer to
from taskloom.store.metadata import metadata
from taskloom.store.types import BigId, Json, UTCDateTime

ID = 36  # str(uuid4())


def _app() -> Column:
    return Column("app_id", String(32), ForeignKey("apps.id", ondelete="CASCADE"), nullable=False)


crowd_projects = Table(
    "crowd_projects",
    metadata,
    Column("id", String(ID), primary_key=True),
    _app(),
    # ACTIVE | ARCHIVED
    Column("status", String(20), nullable=False),
    # public_name, public_description, task_spec{input_spec, output_spec, view_spec}, ...
    Column("data", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_crowd_projects_app_created", "app_id", "created_at"),
)

crowd_pools = Table(
    "crowd_pools",
    metadata,
    Column("id", String(ID), primary_key=True),
    _app(),
    Column(
        "project_id",
        String(ID),
        ForeignKey("crowd_projects.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # CLOSED | OPEN | ARCHIVED
    Column("status", String(20), nullable=False),
    # private_name, defaults, mixer_config, quality_control, dynamic_overlap_config, ...
    Column("data", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_crowd_pools_app_created", "app_id", "created_at"),
    Index("ix_crowd_pools_project_id", "project_id"),
)

crowd_skills = Table(
    "crowd_skills",
    metadata,
    Column("id", String(ID), primary_key=True),
    _app(),
    Column("name", String(200), nullable=False),
    Column("data", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_crowd_skills_app_created", "app_id", "created_at"),
)

crowd_workers = Table(
    "crowd_workers",
    metadata,
    Column("id", String(ID), primary_key=True),
    _app(),
    Column("external_id", String(255), nullable=True),
    Column("name", String(200), nullable=True),
    # sha256 of the worker's token (shown once), like API keys
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("app_id", "external_id", name="uq_crowd_workers_app_external"),
)

crowd_user_skills = Table(
    "crowd_user_skills",
    metadata,
    Column(
        "skill_id",
        String(ID),
        ForeignKey("crowd_skills.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_id", String(ID), primary_key=True),
    _app(),
    Column("value", Float, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_crowd_user_skills_app_user", "app_id", "user_id"),
)

crowd_task_suites = Table(
    "crowd_task_suites",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("id", String(ID), nullable=False, unique=True),
    _app(),
    Column("pool_id", String(ID), ForeignKey("crowd_pools.id", ondelete="CASCADE"), nullable=False),
    Column("overlap", Integer, nullable=True),
    Column("remaining_overlap", Integer, nullable=False),
    Column("infinite_overlap", Boolean, nullable=False),
    Column("reserved_for", Json, nullable=True),
    Column("unavailable_for", Json, nullable=True),
    # issuing_order_override, longitude, latitude, ... as given
    Column("data", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_crowd_task_suites_pool_seq", "pool_id", "seq"),
)

crowd_tasks = Table(
    "crowd_tasks",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("id", String(ID), nullable=False, unique=True),
    _app(),
    Column("pool_id", String(ID), ForeignKey("crowd_pools.id", ondelete="CASCADE"), nullable=False),
    # set when the task came in a task suite: it is issued with its suite
    Column("suite_id", String(ID), nullable=True),
    # real | golden (known solutions) | training (known solutions and a hint)
    Column("kind", String(10), nullable=False),
    Column("input_values", Json, nullable=False),
    Column("known_solutions", Json, nullable=True),
    Column("baseline_solutions", Json, nullable=True),
    Column("message_on_unknown_solution", Text, nullable=True),
    Column("overlap", Integer, nullable=True),
    Column("remaining_overlap", Integer, nullable=False),
    Column("infinite_overlap", Boolean, nullable=False),
    Column("origin_task_id", String(255), nullable=True),
    Column("reserved_for", Json, nullable=True),
    Column("unavailable_for", Json, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_crowd_tasks_pool_kind_seq", "pool_id", "kind", "seq"),
    Index("ix_crowd_tasks_suite_id", "suite_id"),
)

crowd_assignments = Table(
    "crowd_assignments",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("id", String(ID), nullable=False, unique=True),
    _app(),
    Column("pool_id", String(ID), ForeignKey("crowd_pools.id", ondelete="CASCADE"), nullable=False),
    Column("suite_id", String(ID), nullable=True),
    Column("user_id", String(ID), nullable=False),
    # ACTIVE SUBMITTED ACCEPTED REJECTED SKIPPED EXPIRED
    Column("status", String(20), nullable=False),
    Column("task_ids", Json, nullable=False),
    Column("solutions", Json, nullable=True),
    Column("reward", Float, nullable=False),
    Column("mixed", Boolean, nullable=False),
    Column("automerged", Boolean, nullable=False),
    Column("public_comment", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("submitted_at", UTCDateTime, nullable=True),
    Column("accepted_at", UTCDateTime, nullable=True),
    Column("rejected_at", UTCDateTime, nullable=True),
    Column("skipped_at", UTCDateTime, nullable=True),
    Column("expired_at", UTCDateTime, nullable=True),
    Index("ix_crowd_assignments_pool_status", "pool_id", "status"),
    # a worker's ACTIVE assignment in a pool, without reading all they ever did there
    Index("ix_crowd_assignments_pool_user_status", "pool_id", "user_id", "status"),
    Index("ix_crowd_assignments_app_seq", "app_id", "seq"),
    # the ACTIVE assignments past their time, found without reading the others
    Index("ix_crowd_assignments_app_status_expires", "app_id", "status", "expires_at"),
    # "had this worker this suite before?" while issuing suites
    Index("ix_crowd_assignments_suite_user", "suite_id", "user_id"),
)

# One row per task of an assignment: who got which task, and (once submitted) the answer.
crowd_answers = Table(
    "crowd_answers",
    metadata,
    Column(
        "assignment_id",
        String(ID),
        ForeignKey("crowd_assignments.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True),
    Column("task_id", String(ID), nullable=False),
    Column("pool_id", String(ID), nullable=False),
    Column("user_id", String(ID), nullable=False),
    Column("kind", String(10), nullable=False),
    # the assignment's status, kept in step with it
    Column("status", String(20), nullable=False),
    Column("output_values", Json, nullable=True),
    # control tasks: the correctness weight of the matching known solution (0 if none)
    Column("score", Float, nullable=True),
    Column("submitted_at", UTCDateTime, nullable=True),
    Index("ix_crowd_answers_task_user", "task_id", "user_id"),
    # a worker's answers of one kind (control tasks) in a pool, for quality control
    Index("ix_crowd_answers_pool_user_kind", "pool_id", "user_id", "kind"),
    Index("ix_crowd_answers_pool_status", "pool_id", "status"),
)


def has_slots(table: Table) -> ColumnElement[bool]:
    """Tasks (or suites) that can still be issued: infinite overlap, or overlap left.

    The partial indexes below hold only these rows, so issuing reads no task whose overlap
    is used up, however many there are. A query uses them only when its WHERE clause holds
    this very expression (a literal 0, not a bound parameter, for the planners to see that
    it implies the index's condition), so build it here, never by hand.
    """
    return or_(table.c.infinite_overlap.is_(True), table.c.remaining_overlap > literal_column("0"))


def _open_tasks() -> ColumnElement[bool]:
    return and_(crowd_tasks.c.suite_id.is_(None), has_slots(crowd_tasks))


Index(
    "ix_crowd_tasks_open",
    crowd_tasks.c.pool_id,
    crowd_tasks.c.kind,
    crowd_tasks.c.seq,
    sqlite_where=_open_tasks(),
    postgresql_where=_open_tasks(),
)
Index(
    "ix_crowd_task_suites_open",
    crowd_task_suites.c.pool_id,
    crowd_task_suites.c.seq,
    sqlite_where=has_slots(crowd_task_suites),
    postgresql_where=has_slots(crowd_task_suites),
)

crowd_bans = Table(
    "crowd_bans",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _app(),
    Column("user_id", String(ID), nullable=False),
    # POOL | PROJECT
    Column("scope", String(10), nullable=False),
    Column("scope_id", String(ID), nullable=False),
    Column("reason", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("user_id", "scope", "scope_id", name="uq_crowd_bans_user_scope"),
)

# Tasks created per requester and window (minute / day buckets since the epoch).
crowd_rate_counters = Table(
    "crowd_rate_counters",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("period", String(10), primary_key=True),
    Column("bucket", BigInteger, primary_key=True, autoincrement=False),
    Column("count", BigInteger, nullable=False),
)

# The items of an asynchronous batch (stored before its job runs) and, once it ran, the log.
crowd_operation_items = Table(
    "crowd_operation_items",
    metadata,
    Column("job_id", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("input", Json, nullable=False),
    Column("success", Boolean, nullable=True),
    Column("output", Json, nullable=True),
)

crowd_aggregated = Table(
    "crowd_aggregated",
    metadata,
    Column("job_id", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("pool_id", String(ID), nullable=False),
    Column("task_id", String(ID), nullable=False),
    Column("output_values", Json, nullable=False),
    Column("confidence", Float, nullable=False),
)
