"""The model registry (models and their versions) and task models: tabular classifiers
trained by a job from a labelled file in a bucket joined to a feature table.

``services.models`` is a :class:`ModelService`; see ``docs/models.md`` for the contract.
"""

from __future__ import annotations

from taskloom.services.models.service import TASK_MODEL, ModelService

__all__ = ["TASK_MODEL", "ModelService"]
