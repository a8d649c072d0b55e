"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from taskloom.api import errors, web
from taskloom.api.dialects import nclue, relevance, toloka
from taskloom.api.limits import BodyLimitMiddleware
from taskloom.api.responses import FastJSONResponse
from taskloom.api.routes import (
    account,
    centroids,
    crowd,
    crowd_tasks,
    crowd_workers,
    datasets,
    jobs,
    search,
)
from taskloom.api.routes import blobs as blob_routes
from taskloom.api.routes import buckets as bucket_routes
from taskloom.api.routes import features as feature_routes
from taskloom.api.routes import models as model_routes
from taskloom.api.web import docs
from taskloom.config import Settings
from taskloom.runtime import Platform
from taskloom.version import __version__


def create_app(platform: Platform | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the app. Given a started ``platform`` the caller owns its life; otherwise the
    app builds one from ``settings`` and starts and stops it with the server."""
    owned = platform is None
    platform = platform or Platform(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owned and not platform.started:
            platform.start()
        try:
            yield
        finally:
            if owned:
                platform.stop()

    app = FastAPI(
        title="taskloom",
        version=__version__,
        description="Self-hosted AI data platform: datasets, vectors, jobs.",
        default_response_class=FastJSONResponse,
        lifespan=lifespan,
        # FastAPI's pages load their scripts from a CDN: ours come from the package
        docs_url=None,
        redoc_url=None,
    )
    docs.install(app)
    app.state.platform = platform
    errors.install(app)
    app.include_router(account.router)
    app.include_router(datasets.router)
    app.include_router(centroids.router)
    app.include_router(jobs.router)
    app.include_router(search.router)
    app.include_router(blob_routes.router)
    app.include_router(bucket_routes.router)
    app.include_router(feature_routes.router)
    app.include_router(model_routes.router)
    app.include_router(crowd.router)
    app.include_router(crowd_tasks.router)
    app.include_router(crowd_workers.router)
    app.include_router(relevance.router)
    app.include_router(toloka.router)
    app.include_router(nclue.router)
    app.include_router(web.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=platform.settings.max_body_bytes)
    return app
