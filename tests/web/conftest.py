"""Web fixtures: a live server (SQLite and PostgreSQL) with a participant, another account, an operator.

Browser tests save a screenshot of every page they check as a test artefact, in
``$CROWDALPHA_SCREENSHOTS`` or else ``test-artifacts/screenshots/`` at the repository root (git
ignores it), one folder per test (its name and parameters), emptied when the test starts.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine
from web_helpers import (
    FAILED_JOB_KEY,
    OPERATOR_PASSWORD,
    OTHER_PASSWORD,
    PARTICIPANT_PASSWORD,
    ROUND_WINDOW_OPEN,
    SIGNING_KEY,
    STUCK_AGE,
    STUCK_JOB_KEY,
    Site,
    Watched,
)

from crowdalpha.api import create_app
from crowdalpha.service import Context, create_account, create_model, init_home, open_round, publish_dataset
from crowdalpha.service.web_auth import set_password
from crowdalpha.settings import Settings
from crowdalpha.store import BlobStore, transaction
from crowdalpha.tournament.clock import SettableClock


def _seed_jobs(ctx: Context) -> None:
    """Add a job stuck pending long past its due time and one that failed with a message."""
    now = ctx.now()
    with transaction(ctx.engine) as uow:
        uow.jobs.enqueue(STUCK_JOB_KEY, "score", now=now - STUCK_AGE, due_at=now - STUCK_AGE)
        uow.jobs.enqueue(FAILED_JOB_KEY, "open", now=now, due_at=now - timedelta(minutes=1))
    with transaction(ctx.engine) as uow:
        (job,) = uow.jobs.claim("tester", now=now, lease=timedelta(minutes=5), steps=["open"])
        uow.jobs.fail(job.id, "tester", error="no_dataset: classic has no dataset version", now=now)


@pytest.fixture
def ctx(engine: Engine, tmp_path: Path) -> Context:
    """Return a Context on a fresh home of the variant's database, its clock inside the Classic window."""
    settings = Settings(
        home=tmp_path / "home",
        database_url=engine.url.render_as_string(hide_password=False),
        storage_url=str(tmp_path / "blobs"),
    )
    clock = SettableClock(ROUND_WINDOW_OPEN)
    init_home(settings, clock=clock)
    return Context(
        engine=engine, blobs=BlobStore(settings.storage_url, durable=False), clock=clock, settings=settings
    )


@pytest.fixture
def site(ctx: Context, classic_version_dir: Path, live_server: Callable[[Any], str]) -> Site:
    """Return a live site whose Classic round is open, with alice (a model), bob (a model) and root."""
    publish_dataset(ctx, classic_version_dir, "classic")
    open_round(ctx, "classic")
    for username, password, operator in (
        ("alice", PARTICIPANT_PASSWORD, False),
        ("bob", OTHER_PASSWORD, False),
        ("root", OPERATOR_PASSWORD, True),
    ):
        create_account(ctx, username, operator=operator)
        set_password(ctx, username, password)
    model = create_model(ctx, "alice", "classic", "alice_model")
    other = create_model(ctx, "bob", "classic", "bob_model")
    _seed_jobs(ctx)
    app = create_app(
        ctx.settings, blob_store=ctx.blobs, signing_key=SIGNING_KEY, engine=ctx.engine, clock=ctx.clock
    )
    live_ids = sorted(pd.read_parquet(classic_version_dir / "live.parquet").index.astype(str))
    assert isinstance(ctx.clock, SettableClock)
    return Site(live_server(app), ctx, ctx.clock, model.id, other.id, live_ids)


CHROMIUM_MISSING = "chromium is not installed (apt-get install -y chromium)"


def chromium_path() -> str:
    """Return Debian's chromium; skip (fail under CI=true) without it."""
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM_MISSING} (required when CI=true)")
        pytest.skip(CHROMIUM_MISSING)
    return path


SCREENSHOTS_ENV = "CROWDALPHA_SCREENSHOTS"
DEFAULT_SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def screenshot_dir(request: pytest.FixtureRequest) -> Path:
    """Return the test's screenshot folder, empty: ``<root>/<test name and parameters>``."""
    root = Path(os.environ.get(SCREENSHOTS_ENV) or DEFAULT_SCREENSHOTS)
    folder = root / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def browser_page(request: pytest.FixtureRequest) -> Iterator[Watched]:
    """Yield a fresh headless chromium page (no browser download: Debian's binary).

    Screenshots go to :func:`screenshot_dir`, kept as test artefacts.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = chromium_path()
    shots = screenshot_dir(request)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            yield Watched(browser.new_context().new_page(), shots)
        finally:
            browser.close()
