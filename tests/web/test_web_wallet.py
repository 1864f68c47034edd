"""The wallet page: stake increase and release forms, transactions; CSRF and other accounts refused."""

from __future__ import annotations

import re

import pytest
import requests
from web_helpers import OTHER_PASSWORD, PARTICIPANT_PASSWORD, Site, csrf_of

from crowdalpha.ledger.amounts import NANO_PER_TOKEN
from crowdalpha.service import check_ledger, grant, mint_genesis
from crowdalpha.service.ledger import account_entries, model_stake

OPERATION_KEY = re.compile(r'name="operation_key" value="([^"]+)"')


@pytest.fixture
def funded(site: Site) -> Site:
    """Return the site with 100 tokens in alice's wallet and 100 in bob's."""
    mint_genesis(site.ctx)
    grant(site.ctx, "alice", 100 * NANO_PER_TOKEN, idempotency_key="grant/alice")
    grant(site.ctx, "bob", 100 * NANO_PER_TOKEN, idempotency_key="grant/bob")
    return site


def form_fields(client: requests.Session, site: Site) -> dict[str, str]:
    """Return the CSRF token and operation key of the wallet page's forms."""
    page = client.get(site.url("/me/wallet"), timeout=30)
    assert page.status_code == 200
    found = OPERATION_KEY.search(page.text)
    assert found is not None
    return {"csrf_token": csrf_of(client, site.url("/me/wallet")), "operation_key": found.group(1)}


def test_staking_from_the_wallet_moves_tokens_once_even_when_the_form_is_sent_twice(funded: Site) -> None:
    site = funded
    alice = site.logged_in("alice", PARTICIPANT_PASSWORD)
    fields = form_fields(alice, site)
    url = site.url(f"/me/stakes/{site.model_id}/increase")
    first = alice.post(url, data={**fields, "amount": "12.5"}, allow_redirects=False, timeout=30)
    assert first.status_code == 303 and first.headers["location"].startswith("/me/wallet?message=")
    again = alice.post(url, data={**fields, "amount": "12.5"}, allow_redirects=False, timeout=30)
    assert again.status_code == 303  # the same operation key: replayed, not moved again
    assert model_stake(site.ctx, site.model_id).stake_nano == 12_500_000_000
    page = alice.get(site.url("/me/wallet"), timeout=30).text
    assert '<strong id="wallet-balance">87.5</strong>' in page
    transactions = {entry.transaction_id for entry in account_entries(site.ctx, "alice")}
    for transaction in transactions:
        assert f'data-transaction="{transaction}"' in page
    assert check_ledger(site.ctx).ok


def test_a_release_request_moves_the_stake_aside_and_reports_when_it_returns(funded: Site) -> None:
    site = funded
    alice = site.logged_in("alice", PARTICIPANT_PASSWORD)
    fields = form_fields(alice, site)
    alice.post(site.url(f"/me/stakes/{site.model_id}/increase"), data={**fields, "amount": "10"}, timeout=30)
    fields = form_fields(alice, site)
    released = alice.post(
        site.url(f"/me/stakes/{site.model_id}/release"), data={**fields, "amount": "4"}, timeout=30
    )
    assert released.status_code == 200 and "releasing 4: back in the wallet" in released.text
    stake = model_stake(site.ctx, site.model_id)
    # alice's model has no active round, so the release completes at once
    assert stake.stake_nano == 6 * NANO_PER_TOKEN
    fields = form_fields(alice, site)
    drained = alice.post(
        site.url(f"/me/stakes/{site.model_id}/release"), data={**fields, "drain": "on"}, timeout=30
    )
    assert drained.status_code == 200 and "releasing 6" in drained.text
    assert model_stake(site.ctx, site.model_id).stake_nano == 0
    assert check_ledger(site.ctx).ok


@pytest.mark.parametrize(
    ("amount", "rule"), [("-3", "invalid_amount"), ("abc", "invalid_amount"), ("1000", "insufficient")]
)
def test_a_bad_amount_is_refused_on_the_wallet_page_naming_the_rule(
    funded: Site, amount: str, rule: str
) -> None:
    site = funded
    alice = site.logged_in("alice", PARTICIPANT_PASSWORD)
    refused = alice.post(
        site.url(f"/me/stakes/{site.model_id}/increase"),
        data={**form_fields(alice, site), "amount": amount},
        timeout=30,
    )
    assert refused.status_code in (400, 409, 422)
    assert 'id="wallet-error"' in refused.text and rule in refused.text
    assert model_stake(site.ctx, site.model_id).stake_nano == 0


def test_another_account_cannot_stake_or_release_someone_elses_model(funded: Site) -> None:
    site = funded
    bob = site.logged_in("bob", OTHER_PASSWORD)
    for action, data in (("increase", {"amount": "5"}), ("release", {"drain": "on"})):
        refused = bob.post(
            site.url(f"/me/stakes/{site.model_id}/{action}"),
            data={**form_fields(bob, site), **data},
            timeout=30,
        )
        assert refused.status_code == 403, refused.text
    assert model_stake(site.ctx, site.model_id).stake_nano == 0
    page = bob.get(site.url("/me/wallet"), timeout=30).text
    assert site.model_id not in page and site.other_model_id in page


def test_stake_forms_need_the_sessions_csrf_token_and_a_log_in(funded: Site) -> None:
    site = funded
    alice = site.logged_in("alice", PARTICIPANT_PASSWORD)
    fields = form_fields(alice, site)
    url = site.url(f"/me/stakes/{site.model_id}/increase")
    forged = alice.post(url, data={**fields, "csrf_token": "forged", "amount": "5"}, timeout=30)
    assert forged.status_code == 403 and "csrf_failed" in forged.text
    stranger = site.browser()
    token = csrf_of(stranger, site.url("/login"))
    anonymous = stranger.post(
        url, data={"csrf_token": token, "operation_key": fields["operation_key"], "amount": "5"},
        allow_redirects=False, timeout=30,
    )  # fmt: skip
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    assert site.browser().get(site.url("/me/wallet"), allow_redirects=False, timeout=30).status_code == 303
    assert model_stake(site.ctx, site.model_id).stake_nano == 0
