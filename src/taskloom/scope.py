"""The scope of a request: the app it acts in and the user acting, after authorisation.

It sits at the bottom of the package so that every layer (the job engine, the store's
lookups, the services, the API) can take one without importing the layer that makes it
(``services.auth`` turns an API key into a scope).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """The app a request acts in, after authorisation."""

    app_id: str
    user_id: str
