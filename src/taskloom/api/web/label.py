"""The labelling page: ``GET /label`` and its script and style sheet.

The page talks to the worker routes (``/v1/crowd/me...``) with the worker's own token, which
it keeps in ``sessionStorage``; the server only hands out static files here. A strict
Content-Security-Policy allows scripts from this server only, so task content that slipped
into the page as markup still could not run.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

from taskloom.errors import NotFound

router = APIRouter(tags=["web"])

PAGE = "label.html"
# The files the page loads, by the name it asks for under /label/.
ASSETS = {
    "label.js": "text/javascript; charset=utf-8",
    "fields.js": "text/javascript; charset=utf-8",
    "label.css": "text/css; charset=utf-8",
}

# Task images may live on any http(s) host; everything else comes from this server.
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' http: https: data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


@cache
def asset(name: str) -> bytes:
    """The bytes of one of the page's package files (read once)."""
    return files("taskloom.api.web").joinpath("static", name).read_bytes()


@router.get("/label", summary="The labelling page for crowd workers")
def label_page() -> Response:
    """The page: sign in with a worker token, pick a pool, label task after task."""
    return Response(asset(PAGE), media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/label/{name}", include_in_schema=False)
def label_asset(name: str) -> Response:
    """The page's scripts and style sheet; any other name is 404."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"no file {name!r} here", code="not_found", field="name")
    return Response(asset(name), media_type=media_type, headers=HEADERS)
