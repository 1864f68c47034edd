"""The web UI: server-rendered pages (Jinja2) and a little plain JavaScript, served by the API's app."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from crowdalpha.web.router import STATIC_DIR, router

__all__ = ["install_web", "router"]


def install_web(app: FastAPI) -> None:
    """Add the web pages and their static files (``/static``) to ``app``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
