"""The web UI in a real browser: playwright-python driving Debian's headless chromium (never downloaded).

Without chromium the test is skipped with a visible reason, except under ``CI=true``, where that
is a failure. Every page is checked for console errors and failed requests, and screenshotted as a
test artefact (``test-artifacts/screenshots/<test>/``, or under ``$CROWDALPHA_SCREENSHOTS``).
"""

from __future__ import annotations

import pytest
from web_helpers import OPERATOR_PASSWORD, PARTICIPANT_PASSWORD, STUCK_JOB_KEY, Site, Watched, predictions_csv

from crowdalpha.service import list_submissions, round_status, submit_predictions, user_message
from crowdalpha.tournament.submissions import SubmissionError


def log_in(watched: Watched, site: Site, username: str, password: str) -> None:
    """Log in through the form."""
    watched.visit(site.url("/login"), f"login-{username}")
    watched.page.fill("input[name=username]", username)
    watched.page.fill("input[name=password]", password)
    watched.page.click("#login-form button[type=submit]")
    watched.page.wait_for_url(site.url("/me"))


def drop_file(watched: Watched, selector: str, filename: str, content: bytes) -> None:
    """Drop a file on an element, as a drag from the desktop does (a DataTransfer holding a File)."""
    transfer = watched.page.evaluate_handle(
        """([name, text]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([text], name, { type: "text/csv" }));
            return transfer;
        }""",
        [filename, content.decode()],
    )
    watched.page.dispatch_event(selector, "dragover", {"dataTransfer": transfer})
    watched.page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def test_a_participant_and_an_operator_use_the_site_in_a_browser(site: Site, browser_page: Watched) -> None:
    page = browser_page.page
    number = round_status(site.ctx, "classic").number

    browser_page.visit(site.url("/"), "home")
    # The server's clock is 12:10 and the round closes at 13:00: 50 minutes left, ticking down.
    countdown = page.locator("#tournaments .countdown")
    assert countdown.count() == 1 and countdown.get_attribute("data-seconds") == "3000"
    assert countdown.inner_text() in ("50m 0s", "49m 59s", "49m 58s")
    browser_page.visit(site.url("/data"), "data")
    assert page.locator("a.download").count() >= 1
    assert page.locator("a.download", has_text="v1.0/live.parquet").count() == 1
    browser_page.visit(site.url("/rounds/classic"), "rounds")
    page.click(f"#rounds a[href='/rounds/classic/{number}']")
    page.wait_for_url(site.url(f"/rounds/classic/{number}"))
    browser_page.check("round")
    assert page.inner_text("#round-state") == "open"
    assert page.locator("#timeline li").count() == 5

    log_in(browser_page, site, "alice", PARTICIPANT_PASSWORD)
    browser_page.check("models")
    assert "alice_model" in page.inner_text("#models")

    browser_page.visit(site.url("/me/keys"), "keys")
    page.fill("#create-key input[name=name]", "notebook")
    page.check("#create-key input[value=upload_submission]")
    page.click("#create-key button[type=submit]")
    page.wait_for_selector("#new-secret-key")
    browser_page.check("key-created")
    public_id = page.inner_text("#new-public-id")
    assert len(page.inner_text("#new-secret-key")) == 64
    assert page.locator(f"#keys tr[data-public-id='{public_id}']").count() == 1

    browser_page.visit(site.url("/me/submissions"), "submissions-empty")
    assert page.locator("#submissions tbody tr").count() == 0
    drop_file(browser_page, "#dropzone", "dropped.csv", predictions_csv(site.live_ids))
    page.wait_for_selector("#submissions tbody tr")
    browser_page.check("submissions-uploaded")
    (stored,) = list_submissions(site.ctx, "alice", site.model_id)
    row = page.locator(f"#submissions tr[data-submission-id='{stored.submission_id}']")
    assert stored.sha256 in row.inner_text() and "dropped.csv" in row.inner_text()
    assert "on-time" in row.inner_text()

    short = predictions_csv(site.live_ids[:3])
    with pytest.raises(SubmissionError) as refused:
        submit_predictions(site.ctx, "alice", site.model_id, "short.csv", short)
    drop_file(browser_page, "#dropzone", "short.csv", short)
    page.wait_for_selector("#upload-result.error")
    assert page.inner_text("#upload-result") == user_message(refused.value)
    # The refused upload's 400 answer is logged by chromium as a failed resource: expected, not a bug.
    browser_page.problems = [p for p in browser_page.problems if "status of 400" not in p]
    browser_page.check("submission-refused")
    assert len(list_submissions(site.ctx, "alice", site.model_id)) == 1
    assert len(list_submissions(site.ctx, "alice", site.model_id)) == 1

    page.click("nav button.link")  # log out
    page.wait_for_url(site.url("/"))
    log_in(browser_page, site, "root", OPERATOR_PASSWORD)
    browser_page.visit(site.url("/operator"), "operator")
    assert page.locator("#jobs tbody tr").count() == 2
    assert page.locator(f"#jobs tr.stuck[data-key='{STUCK_JOB_KEY}']").count() == 1
    page.click("#round-controls tr[data-tournament=classic] form.close-round button")
    page.wait_for_selector("#console-message")
    browser_page.check("operator-round-closed")
    assert f"classic round {number} is closed" in page.inner_text("#console-message")
    assert round_status(site.ctx, "classic").state == "closed"
