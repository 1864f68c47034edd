"""A running site for the web tests: a live server on a fresh home, a participant and an operator.

A module of its own (not conftest) so that ``import`` finds it whichever test directory pytest
collected first.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import requests

from crowdalpha.service import Context
from crowdalpha.tournament.clock import SettableClock

SIGNING_KEY = bytes(range(32, 64))
ROUND_WINDOW_OPEN = datetime(2026, 1, 6, 12, 10, tzinfo=UTC)
"""A Tuesday inside the Classic round window (12:00-13:00 UTC)."""
PARTICIPANT_PASSWORD = "alice-web-password"
OPERATOR_PASSWORD = "root-web-password"
OTHER_PASSWORD = "bob-web-password"
STUCK_JOB_KEY = "classic/900/score/2026-01-05"
FAILED_JOB_KEY = "classic/899/open/-"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Site:
    """A live server and what is in it: accounts (with passwords), the participant's model, live ids."""

    base_url: str
    ctx: Context
    clock: SettableClock
    model_id: str
    other_model_id: str
    live_ids: list[str]

    def url(self, path: str) -> str:
        """Return the absolute URL of a path on the site."""
        return f"{self.base_url}{path}"

    def browser(self) -> requests.Session:
        """Return a new anonymous HTTP client (its own cookie jar, like a separate browser)."""
        return requests.Session()

    def logged_in(self, username: str, password: str) -> requests.Session:
        """Return an HTTP client logged in as ``username``."""
        client = self.browser()
        response = client.post(
            self.url("/login"),
            data={
                "csrf_token": csrf_of(client, self.url("/login")),
                "username": username,
                "password": password,
            },
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code == 303, response.text
        return client


def csrf_of(client: requests.Session, url: str) -> str:
    """Return the CSRF token in the forms of the page at ``url`` (as the client's session sees it)."""
    page = client.get(url, timeout=30)
    assert page.status_code == 200, page.text
    found = _CSRF.search(page.text)
    assert found is not None, f"no CSRF token on {url}"
    return found.group(1)


def predictions_csv(ids: list[str]) -> bytes:
    """Return a valid Classic CSV submission of ``ids`` (predictions evenly spread in (0, 1))."""
    return (
        pd.DataFrame({"id": ids, "prediction": np.linspace(0.1, 0.9, len(ids))}).to_csv(index=False).encode()
    )


STUCK_AGE = timedelta(hours=2)


def web_routes() -> list[tuple[str, str]]:
    """Return every ``(method, path template)`` of the web router, read from the router itself."""
    from crowdalpha.web.router import router

    return sorted((method, route.path) for route in router.routes for method in route.methods - {"HEAD"})


def route_path(template: str, values: dict[str, str]) -> str:
    """Return a route's path with its parameters filled; fail naming a parameter without a value."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise AssertionError(f"{template}: give the web tests a value for the path parameter {name!r}")
        return values[name]

    return re.sub(r"\{(\w+)\}", value, template)


def _bench_web() -> Any:
    """Return the web benchmark's module (its seeding of resolved rounds is shared with these tests)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_web.py"
    spec = importlib.util.spec_from_file_location("bench_web", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seed_leaderboard(
    ctx: Context, *, models: int, rounds: int, score_days: int = 2, seed: int = 0, prefix: str = "seed"
) -> list[str]:
    """Write models with weekly resolved rounds straight into the store (see ``benchmarks/bench_web.py``)."""
    return _bench_web().seed_leaderboard(
        ctx, models=models, rounds=rounds, score_days=score_days, seed=seed, prefix=prefix
    )


class Watched:
    """A browser page whose console errors, page errors and failed requests are collected."""

    def __init__(self, page: Any, shots: Path) -> None:
        self.page = page
        self.shots = shots
        self.problems: list[str] = []
        page.on("console", lambda message: message.type == "error" and self.problems.append(message.text))
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", lambda request: self.problems.append(f"request failed: {request.url}"))

    def visit(self, url: str, shot: str) -> None:
        """Go to ``url``, then check and screenshot it."""
        response = self.page.goto(url)
        assert response is not None and response.ok, f"{url}: {response and response.status}"
        self.check(shot)

    def check(self, shot: str) -> None:
        """Screenshot the current page as ``<shot>.png`` and assert no console error so far."""
        self.page.wait_for_load_state("networkidle")
        path = self.shots / f"{shot}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{shot}: no screenshot saved at {path}"
        assert self.problems == [], f"{shot}: {self.problems}"
