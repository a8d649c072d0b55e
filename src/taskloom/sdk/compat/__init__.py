"""Compatibility facades: the seed systems' SDK classes, talking to a taskloom server's
front doors, so that code written for those systems runs against taskloom.

- ``taskloom.sdk.compat.relevance``: Relevance AI's ``TasksClient`` and ``Centroids``.
"""
