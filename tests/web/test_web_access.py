"""Log-in, sessions and odd requests of the web app, against a live server (SQLite and PostgreSQL).

Every route's access control and CSRF check, enumerated from the router: ``test_web_access_routes.py``.
"""

from __future__ import annotations

import requests
from web_helpers import (
    OTHER_PASSWORD,
    PARTICIPANT_PASSWORD,
    Site,
    csrf_of,
    predictions_csv,
)

from crowdalpha.service import list_api_keys, list_submissions
from crowdalpha.service.web_auth import MAX_FAILED_LOGINS, set_password
from crowdalpha.web.sessions import COOKIE_NAME


def upload(
    client: requests.Session, site: Site, model_id: str, body: bytes, csrf: str | None
) -> requests.Response:
    headers = {"X-Filename": "predictions.csv"}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    return client.post(site.url(f"/me/submissions/{model_id}"), data=body, headers=headers, timeout=30)


def test_login_sets_an_httponly_samesite_cookie_and_a_wrong_password_is_refused(site: Site) -> None:
    client = site.browser()
    token = csrf_of(client, site.url("/login"))
    wrong = client.post(
        site.url("/login"),
        data={"csrf_token": token, "username": "alice", "password": "not-her-password"},
        allow_redirects=False,
        timeout=30,
    )
    assert wrong.status_code == 401 and "invalid username or password" in wrong.text
    unknown = client.post(
        site.url("/login"),
        data={"csrf_token": token, "username": "nobody", "password": "whatever-it-is"},
        allow_redirects=False,
        timeout=30,
    )
    assert unknown.status_code == 401 and "invalid username or password" in unknown.text
    assert client.get(site.url("/me"), allow_redirects=False, timeout=30).status_code == 303

    right = client.post(
        site.url("/login"),
        data={"csrf_token": token, "username": "alice", "password": PARTICIPANT_PASSWORD, "next": "/me/keys"},
        allow_redirects=False,
        timeout=30,
    )
    assert right.status_code == 303 and right.headers["location"] == "/me/keys"
    cookie = right.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "alice" in client.get(site.url("/me"), timeout=30).text


def test_login_never_redirects_to_another_site(site: Site) -> None:
    client = site.browser()
    token = csrf_of(client, site.url("/login"))
    response = client.post(
        site.url("/login"),
        data={
            "csrf_token": token,
            "username": "alice",
            "password": PARTICIPANT_PASSWORD,
            "next": "//evil.test/",
        },
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 303 and response.headers["location"] == "/me"


def test_a_participant_cannot_touch_another_accounts_keys_or_models(site: Site) -> None:
    alice = site.logged_in("alice", PARTICIPANT_PASSWORD)
    token = csrf_of(alice, site.url("/me/keys"))
    (bobs_key,) = list_api_keys(site.ctx, "bob")
    revoked = alice.post(
        site.url(f"/me/keys/{bobs_key.public_id}/revoke"),
        data={"csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )
    assert revoked.status_code == 404 and "has no active API key" in revoked.text
    assert list_api_keys(site.ctx, "bob") == [bobs_key]
    assert bobs_key.public_id not in alice.get(site.url("/me/keys"), timeout=30).text

    refused = upload(alice, site, site.other_model_id, predictions_csv(site.live_ids), token)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert list_submissions(site.ctx, "bob", site.other_model_id) == []
    assert "bob_model" not in alice.get(site.url("/me/submissions"), timeout=30).text


def test_an_upload_without_a_login_is_refused(site: Site) -> None:
    client = site.browser()
    token = csrf_of(client, site.url("/login"))
    refused = upload(client, site, site.model_id, predictions_csv(site.live_ids), token)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "not_logged_in"


def test_changing_the_password_ends_existing_sessions(site: Site) -> None:
    alice = site.logged_in("alice", PARTICIPANT_PASSWORD)
    assert alice.get(site.url("/me"), allow_redirects=False, timeout=30).status_code == 200
    set_password(site.ctx, "alice", "a-brand-new-password")
    assert alice.get(site.url("/me"), allow_redirects=False, timeout=30).status_code == 303
    site.logged_in("alice", "a-brand-new-password")


def test_logging_out_ends_the_session(site: Site) -> None:
    bob = site.logged_in("bob", OTHER_PASSWORD)
    token = csrf_of(bob, site.url("/me"))
    assert (
        bob.post(
            site.url("/logout"), data={"csrf_token": token}, allow_redirects=False, timeout=30
        ).status_code
        == 303
    )
    assert bob.get(site.url("/me"), allow_redirects=False, timeout=30).status_code == 303


def test_odd_requests_get_an_answer_naming_the_rule_never_a_crash(site: Site) -> None:
    client = site.browser()
    token = csrf_of(client, site.url("/login"))
    huge = client.post(
        site.url("/login"),
        data={"csrf_token": token, "username": "x" * 70_000},
        allow_redirects=False,
        timeout=30,
    )
    assert huge.status_code == 400 and "form_too_large: a form is at most 65,536 bytes" in huge.text
    garbage = client.post(
        site.url("/login"),
        data=b"csrf_token=" + token.encode() + b"&username=\xff\xfe&password=%zz",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
        timeout=30,
    )
    assert garbage.status_code == 401 and "invalid username or password" in garbage.text
    alice = site.logged_in("alice", PARTICIPANT_PASSWORD)
    token = csrf_of(alice, site.url("/me/submissions"))
    empty = upload(alice, site, site.model_id, b"", token)
    assert empty.status_code == 400 and empty.json()["error"]["message"].startswith(
        empty.json()["error"]["code"]
    )
    unknown = upload(alice, site, "no-such-model", predictions_csv(site.live_ids), token)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


def test_too_many_wrong_passwords_lock_the_login_form(site: Site) -> None:
    client = site.browser()
    token = csrf_of(client, site.url("/login"))
    attempt = {"csrf_token": token, "username": "bob", "password": "wrong wrong"}
    for _ in range(MAX_FAILED_LOGINS):
        assert (
            client.post(site.url("/login"), data=attempt, allow_redirects=False, timeout=30).status_code
            == 401
        )
    locked = client.post(
        site.url("/login"), data={**attempt, "password": OTHER_PASSWORD}, allow_redirects=False, timeout=30
    )
    assert (
        locked.status_code == 429
        and "too_many_attempts: too many wrong passwords for &#39;bob&#39;" in locked.text
    )
