"""The built-in job kinds: short adapters that parse a kind's params and call the services.

Each module has a ``register(registry)`` function; :func:`default_registry` registers them
all and is what ``runtime.Platform`` uses. This package sits above the services and below the
API: the job engine (``taskloom.jobs``) never imports it.
"""

from __future__ import annotations

from taskloom.jobs.registry import Registry


def default_registry() -> Registry:
    """A registry with every built-in kind."""
    from taskloom.kinds import builtin, cluster, crowd, encode, models

    reg = Registry()
    for module in (builtin, cluster, encode, crowd, models):
        module.register(reg)
    return reg
