"""Crowd labelling services (issue 4): ``platform.services.crowd`` is a :class:`CrowdService`.

One facade over one module per area, each a mixin on the shared :class:`Base` state:

=================  ==========================================================
``projects``       projects and their task spec
``pools``          pools and their states (CLOSED, OPEN, ARCHIVED)
``workers``        skills, user skills, workers and their tokens
``tasks``          crowd tasks: synchronous batches, reads, overlap changes
``suites``         task suites
``operations``     asynchronous batches (jobs of kinds ``crowd_batch_create`` and
                   ``crowd_suite_batch_create``), their log
``search``         Toloka-style searches (filters, ranges, sort, limit) of every object
``assignments``    issuing, submitting, skipping, expiring and reviewing assignments
``quality``        control tasks and quality-control rules (pure)
``overlap``        dynamic overlap
``aggregation``    aggregation jobs (``crowd_aggregate``) and their results
``ratelimit``      tasks per requester per minute and day
=================  ==========================================================

The method names and shapes are the contract in ``docs/crowd.md`` ("Services contract").
"""

from __future__ import annotations

from taskloom.services.crowd.aggregation import AggregationMixin
from taskloom.services.crowd.assignments import AssignmentsMixin
from taskloom.services.crowd.operations import OperationsMixin
from taskloom.services.crowd.pools import PoolsMixin
from taskloom.services.crowd.projects import ProjectsMixin
from taskloom.services.crowd.search import SearchMixin
from taskloom.services.crowd.suites import SuitesMixin
from taskloom.services.crowd.tasks import TasksMixin
from taskloom.services.crowd.workers import WorkersMixin

__all__ = ["CrowdService"]


class CrowdService(
    ProjectsMixin,
    PoolsMixin,
    WorkersMixin,
    TasksMixin,
    SuitesMixin,
    OperationsMixin,
    AssignmentsMixin,
    AggregationMixin,
    SearchMixin,
):
    """Requesters' and workers' crowd operations; every method takes the scope first."""
