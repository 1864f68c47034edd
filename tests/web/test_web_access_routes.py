"""Access control and CSRF of **every** route of the web router, enumerated from the router itself.

A route added to :data:`crowdalpha.web.router.router` is covered without touching this file: it is
protected (participant area ``/me…`` or operator console ``/operator…``) unless it is listed in
:data:`PUBLIC`, every POST must carry the session's CSRF token, and a path parameter these tests
have no value for fails the tests until one is given. Each refused request must leave everything
as it was (keys, submissions, stakes and balances, the round, the jobs). Live server, SQLite and
PostgreSQL.
"""

from __future__ import annotations

import pytest
import requests
from web_helpers import (
    OPERATOR_PASSWORD,
    OTHER_PASSWORD,
    PARTICIPANT_PASSWORD,
    Site,
    csrf_of,
    predictions_csv,
    route_path,
    web_routes,
)

from crowdalpha.service import list_api_keys, list_submissions, round_status
from crowdalpha.service.ledger import balances, model_stake
from crowdalpha.service.web_queries import job_table

PUBLIC = {
    ("GET", "/"),
    ("GET", "/leaderboard/{tournament}"),
    ("GET", "/models/{tournament}/{model_name}"),
    ("GET", "/data"),
    ("GET", "/rounds/{tournament}"),
    ("GET", "/rounds/{tournament}/{number}"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
}
"""The routes anyone may use; the log-in and log-out forms still need the session's CSRF token."""
ROUTES = web_routes()
PROTECTED = [route for route in ROUTES if route not in PUBLIC]
FORMS = [route for route in ROUTES if route[0] == "POST"]
FORM_FIELDS = {
    "name": "k",
    "scopes": "upload_submission",
    "amount": "1",
    "operation_key": "web/access-test",
    "close_in": "1h",
    "key": "x",
}
"""Plausible values for every form's fields, so a refusal is the guard's, not a missing field's."""


def _victims(site: Site) -> dict[str, str]:
    """Return path values naming the other account's things (bob's model and key) for alice to try."""
    (bobs_key,) = list_api_keys(site.ctx, "bob")
    return {
        "tournament": "classic",
        "number": str(round_status(site.ctx, "classic").number),
        "model_name": "bob_model",
        "model_id": site.other_model_id,
        "public_id": bobs_key.public_id,
    }


def _everything(site: Site) -> dict[str, object]:
    """Return what any web form could change: keys, submissions, stakes, balances, the round, the jobs."""
    ctx = site.ctx
    return {
        "keys": {name: list_api_keys(ctx, name) for name in ("alice", "bob", "root")},
        "alice submissions": list_submissions(ctx, "alice", site.model_id),
        "bob submissions": list_submissions(ctx, "bob", site.other_model_id),
        "alice stake": model_stake(ctx, site.model_id),
        "bob stake": model_stake(ctx, site.other_model_id),
        "balances": {name: balances(ctx, name) for name in ("alice", "bob")},
        "round": round_status(ctx, "classic").state,
        "jobs": [(job.key, job.state, job.attempts) for job in job_table(ctx)],
    }


def _send(
    client: requests.Session, site: Site, method: str, path: str, token: str | None
) -> requests.Response:
    """Send ``method path`` as its page or form would (a POST with its fields and the token, if any)."""
    if method == "GET":
        return client.get(site.url(path), allow_redirects=False, timeout=30)
    fields = dict(FORM_FIELDS) if token is None else {**FORM_FIELDS, "csrf_token": token}
    headers = {"X-Filename": "predictions.csv"} if token is None else {"X-Filename": "predictions.csv",
                                                                        "X-CSRF-Token": token}  # fmt: skip
    if path.startswith("/me/submissions/"):  # the drag-and-drop upload: a raw file body
        return client.post(site.url(path), data=predictions_csv(site.live_ids), headers=headers,
                           allow_redirects=False, timeout=30)  # fmt: skip
    return client.post(site.url(path), data=fields, headers=headers, allow_redirects=False, timeout=30)


def test_the_router_has_only_public_participant_and_operator_routes() -> None:
    assert ("GET", "/me") in ROUTES and ("POST", "/operator/jobs/retry") in ROUTES  # the router was read
    assert set(ROUTES) >= PUBLIC, sorted(PUBLIC - set(ROUTES))
    for method, path in PROTECTED:
        assert path == "/me" or path.startswith(("/me/", "/operator")), (
            f"{method} {path} is neither public (PUBLIC) nor in the participant area (/me) or the"
            " operator console (/operator)"
        )


def test_anonymous_visitors_are_refused_every_protected_route(site: Site) -> None:
    client = site.browser()
    token = csrf_of(client, site.url("/login"))  # a valid anonymous session: only the log-in is missing
    before = _everything(site)
    for method, template in PROTECTED:
        path = route_path(template, _victims(site))
        response = _send(client, site, method, path, token)
        to_login = response.status_code == 303 and response.headers["location"] == f"/login?next={path}"
        assert to_login or response.status_code == 401, f"{method} {path}: {response.status_code}"
    assert _everything(site) == before


def test_a_participant_is_refused_every_operator_route(site: Site) -> None:
    alice = site.logged_in("alice", PARTICIPANT_PASSWORD)
    token = csrf_of(alice, site.url("/me"))
    before = _everything(site)
    operator_routes = [route for route in PROTECTED if route[1].startswith("/operator")]
    assert len(operator_routes) >= 4
    for method, template in operator_routes:
        path = route_path(template, _victims(site))
        response = _send(alice, site, method, path, token)
        assert response.status_code == 403, f"{method} {path}: {response.status_code}"
        assert "the operator console is for operator accounts only" in response.text
    assert _everything(site) == before
    root = site.logged_in("root", OPERATOR_PASSWORD)  # the operator is let in
    assert root.get(site.url("/operator"), allow_redirects=False, timeout=30).status_code == 200


def test_a_participant_cannot_see_or_touch_another_accounts_things_on_any_route(site: Site) -> None:
    alice = site.logged_in("alice", PARTICIPANT_PASSWORD)
    token = csrf_of(alice, site.url("/me"))
    victims = _victims(site)
    before = _everything(site)
    for method, template in (route for route in PROTECTED if route[1].startswith("/me")):
        path = route_path(template, victims)
        response = _send(alice, site, method, path, token)
        if method == "GET":  # alice's own page: none of bob's things on it
            assert response.status_code == 200, f"{method} {path}: {response.status_code}"
            for secret in ("bob_model", site.other_model_id, victims["public_id"]):
                assert secret not in response.text, f"{method} {path} shows bob's {secret}"
        elif any(f"{{{name}}}" in template for name in ("model_id", "public_id")):  # bob's model or key
            assert response.status_code in (403, 404), f"{method} {path}: {response.status_code}"
        # a POST without another account's id acts on alice's own things only (checked below)
    after = _everything(site)
    assert after["keys"]["bob"] == before["keys"]["bob"]  # type: ignore[index]
    assert after["balances"]["bob"] == before["balances"]["bob"]  # type: ignore[index]
    for what in ("bob submissions", "bob stake", "round", "jobs"):
        assert after[what] == before[what], what
    bob = site.logged_in("bob", OTHER_PASSWORD)
    assert "bob_model" in bob.get(site.url("/me"), timeout=30).text  # bob still sees his own


@pytest.mark.parametrize("forgery", ["missing", "empty", "made up", "another session's"])
def test_every_form_refuses_a_post_without_its_sessions_csrf_token(site: Site, forgery: str) -> None:
    users = {"/operator": ("root", OPERATOR_PASSWORD), "/me": ("alice", PARTICIPANT_PASSWORD)}
    foreign = csrf_of(site.browser(), site.url("/login"))  # valid, but another browser's
    token = {"missing": None, "empty": "", "made up": "forged-token", "another session's": foreign}[forgery]
    before = _everything(site)
    clients: dict[tuple[str, str] | None, requests.Session] = {}
    for method, template in FORMS:
        path = route_path(template, {**_victims(site), "model_id": site.model_id})
        user = next((user for prefix, user in users.items() if path.startswith(prefix)), None)
        if user not in clients:
            clients[user] = site.browser() if user is None else site.logged_in(*user)
        client = clients[user]
        response = _send(client, site, method, path, token)
        assert response.status_code == 403, f"{method} {path} with a {forgery} token: {response.status_code}"
        assert "csrf_failed" in response.text, f"{method} {path}: {response.text[:200]}"
    assert _everything(site) == before
    still = site.logged_in("alice", PARTICIPANT_PASSWORD)
    assert "alice_model" in still.get(site.url("/me"), timeout=30).text
