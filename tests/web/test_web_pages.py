"""What the web pages show and do, against a live server (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import hashlib
import html
import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
from web_helpers import (
    FAILED_JOB_KEY,
    OPERATOR_PASSWORD,
    PARTICIPANT_PASSWORD,
    SIGNING_KEY,
    STUCK_JOB_KEY,
    Site,
    csrf_of,
    predictions_csv,
)

from crowdalpha.api import create_app
from crowdalpha.service import (
    list_api_keys,
    list_dataset_files,
    list_submissions,
    round_status,
    submit_predictions,
    user_message,
)

DOWNLOAD_LINK = re.compile(r'<a class="download" href="([^"]+)" download="([^"]+)">([^<]+)</a>')


def rows_of(page: str, table_id: str) -> list[str]:
    """Return the <tr> elements of a table's body."""
    body = page.split(f'id="{table_id}"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr\b.*?</tr>", body, flags=re.S)


def test_the_data_page_lists_every_file_with_its_size_and_a_working_download_link(site: Site) -> None:
    page = requests.get(site.url("/data"), timeout=30).text
    links = DOWNLOAD_LINK.findall(page)
    published = {
        item.name: item for item in list_dataset_files(site.ctx, "classic") if item.round_number is None
    }
    assert sorted(name for _, _, name in links) == sorted(published)
    for name in published:
        assert f'data-bytes="{published[name].size_bytes}"' in page
    href, filename, name = next(link for link in links if link[2].endswith("/live.parquet"))
    assert filename == "live.parquet"
    downloaded = requests.get(html.unescape(href), timeout=30)
    assert downloaded.status_code == 200
    assert hashlib.sha256(downloaded.content).hexdigest() == published[name].sha256


def test_the_rounds_and_round_pages_show_the_state_timeline_and_submission_count(site: Site) -> None:
    status = round_status(site.ctx, "classic")
    listing = requests.get(site.url("/rounds/classic"), timeout=30).text
    (row,) = rows_of(listing, "rounds")
    assert f"/rounds/classic/{status.number}" in row and "open" in row
    page = requests.get(site.url(f"/rounds/classic/{status.number}"), timeout=30).text
    assert 'id="round-state">open<' in page
    assert status.open_time.strftime("%Y-%m-%d %H:%M:%S UTC") in page
    assert status.close_staking_time.strftime("%Y-%m-%d %H:%M:%S UTC") in page
    assert 'id="submission-count">0<' in page
    submit_predictions(site.ctx, "alice", site.model_id, "p.csv", predictions_csv(site.live_ids))
    page = requests.get(site.url(f"/rounds/classic/{status.number}"), timeout=30).text
    assert 'id="submission-count">1<' in page


def test_an_unknown_round_is_a_404_page_naming_it(site: Site) -> None:
    response = requests.get(site.url("/rounds/classic/9999"), timeout=30)
    assert response.status_code == 404 and "classic has no round 9999" in response.text
    response = requests.get(site.url("/rounds/nope"), timeout=30)
    assert response.status_code == 404 and "no tournament named &#39;nope&#39;" in response.text


def test_a_participant_creates_and_revokes_an_api_key_and_sees_the_secret_once(site: Site) -> None:
    alice = site.logged_in("alice", PARTICIPANT_PASSWORD)
    token = csrf_of(alice, site.url("/me/keys"))
    created = alice.post(
        site.url("/me/keys"),
        data={"csrf_token": token, "name": "laptop", "scopes": ["upload_submission", "read_user_info"]},
        timeout=30,
    )
    assert created.status_code == 201
    secret = re.search(r'id="new-secret-key">([A-Z0-9]+)<', created.text).group(1)
    public_id = re.search(r'id="new-public-id">([A-Z0-9]+)<', created.text).group(1)
    (key,) = [k for k in list_api_keys(site.ctx, "alice") if k.public_id == public_id]
    assert key.name == "laptop" and key.scopes == ("read_user_info", "upload_submission")
    listing = alice.get(site.url("/me/keys"), timeout=30).text
    assert public_id in listing and secret not in listing

    refused = alice.post(site.url("/me/keys"), data={"csrf_token": token, "name": "nothing"}, timeout=30)
    assert refused.status_code == 400 and "no_scopes: an API key needs at least one scope" in refused.text

    revoked = alice.post(site.url(f"/me/keys/{public_id}/revoke"), data={"csrf_token": token}, timeout=30)
    assert revoked.status_code == 200 and public_id not in revoked.text
    assert public_id not in {k.public_id for k in list_api_keys(site.ctx, "alice")}


def test_an_upload_gets_a_receipt_and_a_bad_one_the_same_message_as_the_api(site: Site) -> None:
    alice = site.logged_in("alice", PARTICIPANT_PASSWORD)
    token = csrf_of(alice, site.url("/me/submissions"))
    content = predictions_csv(site.live_ids)
    accepted = alice.post(
        site.url(f"/me/submissions/{site.model_id}"),
        data=content,
        headers={"X-CSRF-Token": token, "X-Filename": "my%20preds.csv"},
        timeout=30,
    )
    assert accepted.status_code == 201, accepted.text
    receipt = accepted.json()
    assert receipt["sha256"] == hashlib.sha256(content).hexdigest() and receipt["status"] == "on_time"
    assert receipt["filename"] == "my preds.csv" and receipt["size_bytes"] == len(content)
    listing = alice.get(site.url("/me/submissions"), timeout=30).text
    (row,) = rows_of(listing, "submissions")
    assert receipt["sha256"] in row and "on-time" in row and "my preds.csv" in row

    bad = predictions_csv(site.live_ids[:-1])
    with pytest.raises(Exception) as raised:
        submit_predictions(site.ctx, "alice", site.model_id, "bad.csv", bad)
    refused = alice.post(
        site.url(f"/me/submissions/{site.model_id}"),
        data=bad,
        headers={"X-CSRF-Token": token, "X-Filename": "bad.csv"},
        timeout=30,
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == user_message(raised.value)
    assert len(rows_of(alice.get(site.url("/me/submissions"), timeout=30).text, "submissions")) == 1


def test_the_operator_console_shows_jobs_and_runs_round_controls(site: Site) -> None:
    root = site.logged_in("root", OPERATOR_PASSWORD)
    console = root.get(site.url("/operator"), timeout=30).text
    jobs = {re.search(r'data-key="([^"]+)"', row).group(1): row for row in rows_of(console, "jobs")}
    assert 'class="job job-pending stuck"' in jobs[STUCK_JOB_KEY] and "2h 0m" in jobs[STUCK_JOB_KEY]
    assert "job-failed" in jobs[FAILED_JOB_KEY] and "stuck" not in jobs[FAILED_JOB_KEY]
    assert "no_dataset: classic has no dataset version" in jobs[FAILED_JOB_KEY]
    (version,) = rows_of(console, "dataset-versions")
    assert "classic" in version and "v1.0" in version

    token = csrf_of(root, site.url("/operator"))
    number = round_status(site.ctx, "classic").number
    closed = root.post(site.url("/operator/rounds/classic/close"), data={"csrf_token": token}, timeout=30)
    assert closed.status_code == 200 and f"classic round {number} is closed" in closed.text
    assert round_status(site.ctx, "classic").state == "closed"
    again = root.post(site.url("/operator/rounds/classic/close"), data={"csrf_token": token}, timeout=30)
    assert again.status_code == 409 and "no_open_round: no classic round is open" in again.text
    opened = root.post(
        site.url("/operator/rounds/classic/open"), data={"csrf_token": token, "close_in": "2h"}, timeout=30
    )
    assert opened.status_code == 200 and f"classic round {number + 1} is open" in opened.text
    assert round_status(site.ctx, "classic").state == "open"
    bad = root.post(
        site.url("/operator/rounds/signals/open"), data={"csrf_token": token, "close_in": "soon"}, timeout=30
    )
    assert bad.status_code == 400 and "invalid_duration" in bad.text


def test_the_operator_retries_a_failed_job_from_the_console(site: Site) -> None:
    root = site.logged_in("root", OPERATOR_PASSWORD)
    token = csrf_of(root, site.url("/operator"))
    retried = root.post(
        site.url("/operator/jobs/retry"), data={"csrf_token": token, "key": FAILED_JOB_KEY}, timeout=30
    )
    assert retried.status_code == 200 and f"job {FAILED_JOB_KEY} will run at the next tick" in retried.text
    (row,) = [row for row in rows_of(retried.text, "jobs") if FAILED_JOB_KEY in row]
    assert "job-pending" in row and "Retry" not in row
    again = root.post(
        site.url("/operator/jobs/retry"), data={"csrf_token": token, "key": FAILED_JOB_KEY}, timeout=30
    )
    assert again.status_code == 400
    assert f"job_not_failed: job {FAILED_JOB_KEY} is pending; only a failed job is retried" in again.text
    unknown = root.post(
        site.url("/operator/jobs/retry"), data={"csrf_token": token, "key": "x/1/open/-"}, timeout=30
    )
    assert unknown.status_code == 404 and "no job with key" in unknown.text


def test_pages_are_never_framed_or_cached(site: Site) -> None:
    for path in ("/", "/data", "/login"):
        headers = requests.get(site.url(path), timeout=30).headers
        assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
        assert headers["x-content-type-options"] == "nosniff"


def test_an_upload_over_the_size_limit_is_refused_naming_the_limit(
    site: Site, live_server: Callable[[Any], str]
) -> None:
    settings = dataclasses.replace(site.ctx.settings, upload_limit_bytes=1_000)
    app = create_app(
        settings, blob_store=site.ctx.blobs, signing_key=SIGNING_KEY, engine=site.ctx.engine, clock=site.clock
    )
    small = Site(live_server(app), site.ctx, site.clock, site.model_id, site.other_model_id, site.live_ids)
    alice = small.logged_in("alice", PARTICIPANT_PASSWORD)
    token = csrf_of(alice, small.url("/me/submissions"))
    content = predictions_csv(site.live_ids)
    assert len(content) > 1_000
    refused = alice.post(
        small.url(f"/me/submissions/{site.model_id}"),
        data=content,
        headers={"X-CSRF-Token": token},
        timeout=30,
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "too_large"
    assert refused.json()["error"]["message"] == "too_large: the upload is over the limit of 1,000 bytes"
    assert list_submissions(site.ctx, "alice", site.model_id) == []
