"""The home, model and round pages over HTTP (SQLite and PostgreSQL), on seeded resolved rounds."""

from __future__ import annotations

import html
import re

import pytest
import requests
from web_helpers import Site, seed_leaderboard

from crowdalpha.service import round_status
from crowdalpha.service.performance import model_profile, round_performances
from crowdalpha.service.web_overview import home_overview, model_overview, round_overview
from crowdalpha.tournament.config import CLASSIC

POINT = re.compile(
    r'<circle class="point"[^>]*data-series="([^"]+)" data-round="(\d+)" data-value="([-0-9.]+)"'
)


@pytest.fixture
def seeded(site: Site) -> list[str]:
    """Return the names of 12 models seeded with 5 weekly resolved rounds on the live site's database."""
    return seed_leaderboard(site.ctx, models=12, rounds=5, score_days=3, seed=2)


def test_the_model_chart_draws_the_cumulative_payout_scores_of_its_resolved_rounds(
    site: Site, seeded: list[str]
) -> None:
    name = seeded[0]
    page = requests.get(site.url(f"/models/classic/{name}"), timeout=30)
    assert page.status_code == 200
    profile = model_profile(site.ctx, "classic", name)
    resolved = sorted(
        (item for item in round_performances(site.ctx, profile.model_id) if item.resolved),
        key=lambda item: item.round_number,
    )
    points = POINT.findall(page.text)
    for series, score in (("CORR20v2", "corr20v2"), ("MMC", "mmc")):
        drawn = [(int(number), float(value)) for label, number, value in points if label == series]
        running, expected = 0.0, []
        for item in resolved:
            running += next(r.value for r in item.final_scores if r.score == score)
            expected.append((item.round_number, running))
        assert [number for number, _ in drawn] == [number for number, _ in expected]
        assert [value for _, value in drawn] == pytest.approx([value for _, value in expected], abs=1e-6)
    assert len(re.findall(r'<tr data-round="\d+" data-state="resolved"', page.text)) == len(resolved)
    for item in resolved:  # each round's payout and daily progression are listed
        assert f'<tr data-round="{item.round_number}"' in page.text
    assert page.text.count("<details>") == len(resolved)
    overview = model_overview(site.ctx, "classic", name)
    for receipt in overview.submissions:
        assert receipt.sha256 in page.text and f'data-submission-id="{receipt.submission_id}"' in page.text


def test_a_model_without_resolved_rounds_shows_an_empty_chart_and_an_unknown_one_is_404(site: Site) -> None:
    page = requests.get(site.url("/models/classic/alice_model"), timeout=30)
    assert page.status_code == 200 and "No resolved round yet." in page.text
    missing = requests.get(site.url("/models/classic/nobody_model"), timeout=30)
    assert missing.status_code == 404 and "no model named 'nobody_model'" in html.unescape(missing.text)


def test_a_resolved_round_page_shows_payout_factor_totals_and_each_scores_distribution(
    site: Site, seeded: list[str]
) -> None:
    number = round_status(site.ctx, "classic").number - 1  # the newest seeded round
    page = requests.get(site.url(f"/rounds/classic/{number}"), timeout=30)
    assert page.status_code == 200
    overview = round_overview(site.ctx, "classic", number)
    assert overview.payout_factor_final and overview.payout_factor == 1.0
    assert '<dd id="payout-factor">1.0000</dd>' in page.text
    assert {d.score for d in overview.distributions} == {item.name for item in CLASSIC.scores}
    for distribution in overview.distributions:
        assert distribution.day == 20 and sum(distribution.bin_counts) == distribution.count
        assert (
            distribution.quantiles["min"] <= distribution.quantiles["median"] <= distribution.quantiles["max"]
        )
        bars = re.findall(rf'id="histogram-{distribution.score}".*?</svg>', page.text, flags=re.S)[0]
        assert [int(c) for c in re.findall(r'data-count="(\d+)"', bars)] == list(distribution.bin_counts)
    assert "published at close" in page.text  # the seeded round has no meta model file


def test_an_open_round_page_has_no_scores_and_no_payout_factor_yet(site: Site) -> None:
    number = round_status(site.ctx, "classic").number
    page = requests.get(site.url(f"/rounds/classic/{number}"), timeout=30).text
    assert 'id="no-scores"' in page and '<dd id="payout-factor">—</dd>' in page


def test_the_home_page_shows_open_round_countdown_totals_and_the_crowds_cumulative_score(
    site: Site, seeded: list[str]
) -> None:
    page = requests.get(site.url("/"), timeout=30).text
    (classic,) = [item for item in home_overview(site.ctx) if item.name == "classic"]
    assert classic.models == 14 and classic.resolved_rounds == 5
    assert classic.open_round == round_status(site.ctx, "classic").number
    row = re.findall(r'<tr data-tournament="classic">.*?</tr>', page, flags=re.S)[0]
    assert f'<td class="num models">{classic.models}</td>' in row
    assert 'class="countdown" data-seconds="3000"' in row
    assert f"round {classic.last_resolved_round}:" in row
    assert len(classic.crowd_score.points) == 5
    drawn = [float(value) for _, _, value in POINT.findall(page)]
    assert drawn == pytest.approx([p.cumulative for p in classic.crowd_score.points], abs=1e-6)
