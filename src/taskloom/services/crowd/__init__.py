"""Crowd labelling services (issue 4): ``platform.services.crowd`` is a :class:`CrowdService`.

Explicit collaborators, one module per area, composed in :meth:`CrowdService.__init__`;
each takes exactly the collaborators it uses (callers call them: ``crowd.pools.open(...)``):

=================  ==========================================================
``specs``          compiled task specs of projects (``projects.Specs``)
``projects``       projects and their task spec (``Projects``)
``pools``          pools and their states: CLOSED, OPEN, ARCHIVED (``Pools``)
``skills``         skills and user skills (``workers.Skills``)
``workers``        workers and their tokens (``workers.Workers``)
``rates``          tasks per requester per minute and day (``ratelimit.RateLimit``)
``tasks``          crowd tasks: synchronous batches, reads, overlap changes (``Tasks``)
``suites``         task suites (``Suites``)
``operations``     asynchronous batches (jobs of kinds ``crowd_batch_create`` and
                   ``crowd_suite_batch_create``), their log (``Operations``)
``issuing``        issuing assignments, expiry, giving overlap back (``Issuing``)
``assignments``    reading, submitting, skipping and reviewing assignments
                   (``Assignments``)
``aggregation``    aggregation jobs (``crowd_aggregate``) and their results
                   (``Aggregation``)
``search``         Toloka-style searches (filters, ranges, sort, limit) of every object
                   (``Search``)
``quality``        control tasks and quality-control rules (pure functions)
``overlap``        dynamic overlap (pure functions over a connection)
=================  ==========================================================

The method names and shapes are the contract in ``docs/crowd.md`` ("Services contract").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskloom.services.crowd.aggregation import Aggregation
from taskloom.services.crowd.assignments import Assignments
from taskloom.services.crowd.issuing import Issuing
from taskloom.services.crowd.operations import Operations
from taskloom.services.crowd.pools import Pools
from taskloom.services.crowd.projects import Projects, Specs
from taskloom.services.crowd.ratelimit import RateLimit
from taskloom.services.crowd.search import Search
from taskloom.services.crowd.suites import Suites
from taskloom.services.crowd.tasks import Tasks
from taskloom.services.crowd.workers import Skills, Workers

if TYPE_CHECKING:
    from taskloom.config import Settings
    from taskloom.jobs.engine import JobEngine
    from taskloom.store.engine import Store

__all__ = ["CrowdService"]


class CrowdService:
    """Requesters' and workers' crowd operations, one collaborator per area; every method
    takes the scope first."""

    def __init__(self, store: Store, settings: Settings, jobs: JobEngine) -> None:
        self.store = store
        self.settings = settings
        self.specs = Specs()
        self.rates = RateLimit(settings)
        self.projects = Projects(store)
        self.pools = Pools(store, self.specs)
        self.skills = Skills(store)
        self.workers = Workers(store)
        self.tasks = Tasks(store, self.specs, self.rates)
        self.suites = Suites(store, self.tasks, self.rates)
        self.operations = Operations(store, jobs, self.tasks, self.suites, self.rates)
        self.issuing = Issuing(store, self.specs)
        self.assignments = Assignments(store, self.specs, self.issuing, self.skills)
        self.aggregation = Aggregation(store, jobs, self.specs)
        self.search = Search(store, self.suites, self.issuing)
