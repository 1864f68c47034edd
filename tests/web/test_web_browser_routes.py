"""Every page of the web router in a real browser (headless Debian chromium), and a forged form post.

The pages are enumerated from the router (:func:`web_helpers.web_routes`), so a new page is visited
without touching this file: each must answer 200, log no console error or failed request, and is
screenshotted as a test artefact (``test-artifacts/screenshots/<test>/``). The forged post comes
from another origin on the same machine — the same *site* for the browser, so the SameSite cookie
is sent with it, and only the CSRF token can stop it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from web_helpers import (
    OPERATOR_PASSWORD,
    PARTICIPANT_PASSWORD,
    Site,
    Watched,
    route_path,
    seed_leaderboard,
    web_routes,
)

from crowdalpha.service import list_api_keys
from crowdalpha.service.web_queries import list_rounds

PAGES = [path for method, path in web_routes() if method == "GET"]


def _log_in(watched: Watched, site: Site, username: str, password: str) -> None:
    page = watched.page
    page.goto(site.url("/login?next=/me"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(site.url("/me"))


def _log_out(watched: Watched, site: Site) -> None:
    watched.page.click("nav button.link")
    watched.page.wait_for_url(site.url("/"))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the pages' data: tests/web/test_web_pages.py
def test_every_page_of_the_router_renders_in_a_browser_without_console_errors(
    site: Site, browser_page: Watched
) -> None:
    names = seed_leaderboard(site.ctx, models=12, rounds=3, score_days=2, seed=11)
    resolved = [item.number for item in list_rounds(site.ctx, "classic") if item.state == "resolved"]
    values = {"tournament": "classic", "number": str(max(resolved)), "model_name": names[0]}
    areas = {"public": [], "/me": [], "/operator": []}
    for template in PAGES:
        area = next((prefix for prefix in ("/me", "/operator") if template.startswith(prefix)), "public")
        areas[area].append(route_path(template, values))
    assert len(areas["public"]) >= 6 and len(areas["/me"]) >= 4 and areas["/operator"]

    def visit_all(paths: list[str]) -> None:
        for path in paths:
            browser_page.visit(site.url(path), re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-") or "home")
            assert browser_page.page.locator("main h1, h1").count() >= 1, path

    visit_all(areas["public"])
    _log_in(browser_page, site, "alice", PARTICIPANT_PASSWORD)
    visit_all(areas["/me"])
    _log_out(browser_page, site)
    _log_in(browser_page, site, "root", OPERATOR_PASSWORD)
    visit_all(areas["/operator"])
    shots = sorted(path.name for path in browser_page.shots.glob("*.png"))
    assert len(shots) == len(PAGES), shots


def _attacker(target: str, fields: dict[str, str]) -> Starlette:
    """Return a page that posts a form to ``target`` as soon as it loads (no CSRF token: it has none)."""
    inputs = "".join(f'<input type="hidden" name="{name}" value="{value}">' for name, value in fields.items())
    html = (
        f'<!doctype html><title>win a prize</title><form id="forged" method="post" action="{target}">'
        f'{inputs}</form><script>document.getElementById("forged").submit()</script>'
    )

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(html)

    return Starlette(routes=[Route("/", page)])


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_form_posted_from_another_origin_is_refused(
    site: Site, browser_page: Watched, live_server: Callable[[Any], str]
) -> None:
    _log_in(browser_page, site, "alice", PARTICIPANT_PASSWORD)
    before = list_api_keys(site.ctx, "alice")
    fields = {"name": "stolen", "scopes": "upload_submission"}
    attacker = live_server(_attacker(site.url("/me/keys"), fields))
    assert attacker.split(":")[-1] != site.base_url.split(":")[-1]  # another origin (port)
    page = browser_page.page
    page.goto(attacker + "/")
    page.wait_for_url(site.url("/me/keys"))
    page.wait_for_load_state()
    assert "csrf_failed" in page.content()
    # the 403 answer is logged by chromium as a failed resource: the refusal itself, expected
    browser_page.problems = [p for p in browser_page.problems if "status of 403" not in p]
    browser_page.check("forged-post-refused")
    assert list_api_keys(site.ctx, "alice") == before
    browser_page.visit(site.url("/me/keys"), "keys-unchanged")  # still logged in, nothing created
    assert "stolen" not in page.inner_text("#keys")
