"""Web pages served by taskloom itself: the labelling page for crowd workers (``/label``).

Plain HTML, CSS and JavaScript shipped as package files: no build step, nothing fetched from
another host at run time.
"""

from __future__ import annotations

from taskloom.api.web.label import router

__all__ = ["router"]
