"""The public pages in a real browser (headless Debian chromium): home, leaderboard, a model, a round.

``test_..._on_seeded_rounds`` runs on resolved rounds written straight into the store (seconds);
``test_..._after_a_simulated_season`` (slow) plays a 25-day Classic season on a simulated clock
through the production path first, so two rounds resolve with real scores, payouts and meta models.
Every page is checked for console errors and failed requests and screenshotted as a test artefact
(``test-artifacts/screenshots/<test>/``, or under ``$CROWDALPHA_SCREENSHOTS``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from web_helpers import PARTICIPANT_PASSWORD, SIGNING_KEY, Site, Watched, seed_leaderboard

from crowdalpha.api import create_app
from crowdalpha.ledger.amounts import NANO_PER_TOKEN
from crowdalpha.service import Context, grant, mint_genesis, round_status
from crowdalpha.service.ledger import model_stake
from crowdalpha.service.web_leaderboard import leaderboard_page
from crowdalpha.service.web_overview import home_overview, model_overview, round_overview


def sorted_by_column(watched: Watched, column: str) -> list[float]:
    """Click a leaderboard column's header and return the column's shown values, top to bottom."""
    page = watched.page
    page.click(f"#leaderboard th a[data-sort='{column}']")
    page.wait_for_selector(f"#leaderboard[data-sort='{column}']")
    cells = page.locator(f"#leaderboard tbody td.rep[data-score='{column}']")
    return [float(value) for value in cells.evaluate_all("cells => cells.map(c => c.dataset.value)") if value]


def visit_public_pages(watched: Watched, base_url: str, ctx: Context, tag: str) -> str:
    """Visit home, the leaderboard (sorted by MMC), the top model's page and its newest resolved round."""
    page = watched.page
    watched.visit(f"{base_url}/", f"{tag}-home")
    assert page.locator("#tournaments tr[data-tournament=classic]").count() == 1
    assert page.locator("#crowd-classic circle.point").count() >= 1
    watched.visit(f"{base_url}/leaderboard/classic", f"{tag}-leaderboard")
    values = sorted_by_column(watched, "mmc")
    watched.check(f"{tag}-leaderboard-by-mmc")
    assert len(values) >= 2 and values == sorted(values, reverse=True)
    top = leaderboard_page(ctx, "classic", sort="mmc").rows[0]
    assert page.locator("#leaderboard tbody tr").first.get_attribute("data-name") == top.name
    page.click(f"#leaderboard tbody tr[data-name='{top.name}'] a")
    page.wait_for_selector("#model-chart")
    watched.check(f"{tag}-model")
    resolved = top.reputations["mmc"].rounds
    assert resolved >= 1
    assert page.locator("#model-chart circle.point[data-series=MMC]").count() == resolved
    (mmc,) = [item for item in model_overview(ctx, "classic", top.name).series if item.score == "mmc"]
    shown = page.locator("#model-chart circle.point[data-series=MMC]").evaluate_all(
        "points => points.map(p => [Number(p.dataset.round), Number(p.dataset.value)])"
    )
    assert [(round_number, pytest.approx(value, abs=1e-6)) for round_number, value in shown] == [
        (point.round_number, point.cumulative) for point in mmc.points
    ]  # each point is the running sum of the model's final MMC, round by round
    assert page.locator("#model-chart polyline.series").count() == 2
    number = int(
        page.locator("#model-rounds tbody tr[data-state=resolved]").first.get_attribute("data-round")
    )
    page.click(f"#model-rounds tr[data-round='{number}'] a")
    page.wait_for_selector("#round-state")
    watched.check(f"{tag}-round")
    assert page.locator("#distributions .distribution").count() >= 2
    return page.url


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the page tests cover PostgreSQL
def test_home_leaderboard_model_and_round_pages_render_in_a_browser_on_seeded_rounds(
    site: Site, browser_page: Watched
) -> None:
    seed_leaderboard(site.ctx, models=30, rounds=4, score_days=2, seed=3)
    visit_public_pages(browser_page, site.base_url, site.ctx, "seeded")
    assert browser_page.page.inner_text("#round-state") == "resolved"

    mint_genesis(site.ctx)
    grant(site.ctx, "alice", 20 * NANO_PER_TOKEN, idempotency_key="grant/alice")
    page = browser_page.page
    browser_page.visit(site.url("/login?next=/me/wallet"), "seeded-login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PARTICIPANT_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(site.url("/me/wallet"))
    page.fill(f"#stakes tr[data-model-id='{site.model_id}'] form.increase-stake input[name=amount]", "3")
    page.click(f"#stakes tr[data-model-id='{site.model_id}'] form.increase-stake button")
    page.wait_for_selector("#wallet-message")
    browser_page.check("seeded-wallet-staked")
    assert page.inner_text("#wallet-balance") == "17"
    assert model_stake(site.ctx, site.model_id).stake_nano == 3 * NANO_PER_TOKEN


# -- after a simulated season ------------------------------------------------------------------------

SEASON_SECRET = b"web-season-secret-0123456789abcd"
HISTORY_DAYS = 320
SEASON_DAYS = 25  # score day 20 of the first rounds lands 23 scoring days after them: they resolve


@pytest.fixture(scope="module")
def season_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    """Return a home (SQLite) after a 25-day Classic season with a staked crowd (played once per module)."""
    from crowdalpha.datasets.classic import build_classic
    from crowdalpha.market.synthetic import generate_market
    from crowdalpha.service import ingest_market, init_home, publish_dataset
    from crowdalpha.settings import Settings
    from crowdalpha.sim.participants import Participant
    from crowdalpha.sim.season import MARKET_CLOSE, classic_training, enroll_crowd, run_season
    from crowdalpha.store import BlobStore, create_engine
    from crowdalpha.tournament.clock import SettableClock
    from crowdalpha.tournament.config import CLASSIC

    root = tmp_path_factory.mktemp("web-season")
    panel = generate_market(150, HISTORY_DAYS + SEASON_DAYS, 11, "equity", "2019-01-01", 20).panel
    dates = pd.DatetimeIndex(panel["date"].drop_duplicates()).sort_values()
    history = panel[panel["date"] < dates[HISTORY_DAYS]].reset_index(drop=True)
    season = panel[panel["date"] >= dates[HISTORY_DAYS]].reset_index(drop=True)
    report = build_classic(history, root / "public", secret=SEASON_SECRET, private_dir=root / "private")
    settings = Settings(
        home=root / "home", database_url=f"sqlite:///{root / 'season.db'}", storage_url=str(root / "blobs")
    )
    clock = SettableClock(
        datetime.combine(pd.Timestamp(history["date"].max()).date(), MARKET_CLOSE, tzinfo=UTC)
    )
    init_home(settings, clock=clock)
    ctx = Context(
        create_engine(settings.database_url), BlobStore(settings.storage_url, durable=False), clock, settings
    )
    publish_dataset(
        ctx, Path(report.version_dir), "classic", private_dir=root / "private", secret=SEASON_SECRET
    )
    ingest_market(ctx, history)
    crowd = [
        Participant("web_gbm", "classic", "lightgbm", 1500),
        Participant("web_ridge", "classic", "ridge", 600),
        Participant("web_noise", "classic", "noise", 200),
        Participant("web_late", "classic", "ridge", late=True),
    ]
    members = enroll_crowd(ctx, crowd, classic_training(Path(report.version_dir)), 11)
    run_season(ctx, clock, season, members, {}, {"classic": CLASSIC}, leave_open=True)
    yield ctx
    ctx.close()


@pytest.mark.slow
def test_the_public_pages_render_in_a_browser_after_a_simulated_season(
    season_home: Context, browser_page: Watched, live_server: Callable[[Any], str]
) -> None:
    ctx = season_home
    app = create_app(
        ctx.settings, blob_store=ctx.blobs, signing_key=SIGNING_KEY, engine=ctx.engine, clock=ctx.clock
    )
    base_url = live_server(app)
    round_url = visit_public_pages(browser_page, base_url, ctx, "season")
    page = browser_page.page
    assert page.inner_text("#round-state") == "resolved"
    number = int(round_url.rstrip("/").rsplit("/", 1)[1])
    overview = round_overview(ctx, "classic", number)
    assert overview.meta_model is not None and overview.payout_factor_final
    link = page.locator("#meta-model a.download").get_attribute("href")
    downloaded = requests.get(link if link.startswith("http") else base_url + link, timeout=30)
    assert downloaded.status_code == 200
    assert hashlib.sha256(downloaded.content).hexdigest() == overview.meta_model.sha256
    # the meta model is scored with the submissions: its CORR per day here, its cumulative score home
    assert page.locator("#meta-model-scores tr[data-score=corr20v2]").count() == 1
    (classic,) = [item for item in home_overview(ctx) if item.name == "classic"]
    assert classic.meta_model_cumulative is not None
    browser_page.visit(f"{base_url}/", "season-home-meta-model")
    shown = float(page.get_attribute("#meta-model-classic", "data-value"))
    assert shown == pytest.approx(classic.meta_model_cumulative, abs=1e-6)
    assert page.locator("#crowd-classic circle.point[data-series^='meta model']").count() == len(
        classic.meta_model_score.points
    )
    status = round_status(ctx, "classic")
    browser_page.visit(f"{base_url}/rounds/classic/{status.number}", "season-open-round")
    assert page.locator("#round-steps tr[data-step=open]").count() == 1
