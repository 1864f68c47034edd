"""``GET /healthz``: is the server up, which version, and can it reach its database (when it has one)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from crowdalpha import __version__
from crowdalpha.api.dependencies import get_engine

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The server's health: ``ok`` or ``unavailable``, its version, and the database's state."""

    status: Literal["ok", "unavailable"]
    version: str
    database: Literal["ok", "unreachable", "not configured"]


def database_reachable(engine: Engine) -> bool:
    """Return True if a ``SELECT 1`` on the engine succeeds."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(response: Response, engine: Annotated[Engine | None, Depends(get_engine)]) -> Health:
    """Return the server's health; HTTP 503 when its database is unreachable."""
    if engine is None:
        return Health(status="ok", version=__version__, database="not configured")
    if database_reachable(engine):
        return Health(status="ok", version=__version__, database="ok")
    response.status_code = 503
    return Health(status="unavailable", version=__version__, database="unreachable")
