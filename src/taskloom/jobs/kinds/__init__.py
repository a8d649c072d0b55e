"""Built-in job kinds; each module has a ``register(registry)`` function."""
