"""The web UI: server-rendered pages (Jinja2) and a little plain JavaScript, served by the API's app."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from crowdalpha.web.router import STATIC_DIR, router, templates

__all__ = ["install_web", "router"]


def install_web(app: FastAPI) -> None:
    """Add the web pages and their static files (``/static``) to ``app``, ready for a fast first request."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    prepare_first_request(app)


def prepare_first_request(app: FastAPI) -> None:
    """Compile every template and build the app's route tables now, not during the first page request.

    Jinja2 compiles a template on first use (about 140 ms for all of ours), and FastAPI builds the
    tables of an included router on the first request that reaches it; both are kept for the process.
    """
    for name in templates.list_templates():
        templates.get_template(name)
    for route in app.router.routes:
        build = getattr(route, "effective_candidates", None)  # FastAPI's included routers (lazy since 0.16x)
        if callable(build):
            build()
