"""Crash safety: a resolution process killed with SIGKILL at random points, then re-run, pays exactly once."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from resolution_factories import Staked, make_staked, score_everything
from scoring_factories import Market
from service_factories import TUESDAY_OPEN
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine

from crowdalpha.service import Context, check_ledger, model_stake
from crowdalpha.service.context import open_context
from crowdalpha.service.resolution import resolve_round
from crowdalpha.settings import Settings
from crowdalpha.store.schema import LedgerTransaction
from crowdalpha.tournament import CLASSIC, latest_round

ROUND = latest_round(CLASSIC, TUESDAY_OPEN).number
RUNS = 20

CHILD = """
import sys, time
from crowdalpha.service.context import open_context
from crowdalpha.service.resolution import resolve_round
from crowdalpha.settings import Settings
from pathlib import Path
settings = Settings(home=Path(sys.argv[1]), database_url=sys.argv[2], storage_url=sys.argv[3])
ctx = open_context(settings)
print("ready", flush=True)
started = time.perf_counter()
resolve_round(ctx, "classic", int(sys.argv[4]))
print(f"done {time.perf_counter() - started:.6f}", flush=True)
"""


def _resolve_in_child(settings: Settings, *, kill_after: float | None) -> str:
    """Run a resolution in a child process; SIGKILL it ``kill_after`` seconds after it is ready."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(settings.home),
            settings.database_url,
            settings.storage_url,
            str(ROUND),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    if kill_after is not None:
        time.sleep(kill_after)
        child.send_signal(signal.SIGKILL)
    output = child.stdout.read()
    child.wait(timeout=120)
    return "killed" if child.returncode == -signal.SIGKILL else output.strip()


def _payouts(engine: Engine) -> dict[str, int]:
    """Return how many payout transactions each (round, model) key has (each must have exactly one)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(LedgerTransaction.idempotency_key, func.count())
            .where(LedgerTransaction.idempotency_key.like("payout/%"))
            .group_by(LedgerTransaction.idempotency_key)
        ).all()
    return {key: count for key, count in rows}


def _stakes(settings: Settings, staked: Staked) -> dict[str, int]:
    with open_context(settings) as ctx:
        return {
            name: model_stake(ctx, model_id).stake_nano for name, (_, model_id, _) in staked.on_time.items()
        }


@pytest.fixture
def scored_home(ctx: Context, market: Market) -> tuple[Settings, Staked]:
    """Return the settings of a home holding a scored, unresolved, staked round."""
    staked = make_staked(ctx, market)
    score_everything(ctx, market)
    ctx.engine.dispose()  # a PostgreSQL template must have no connection while it is copied
    return ctx.settings, staked


def _copy(settings: Settings, destination: Path, request: pytest.FixtureRequest) -> Settings:
    """Return settings of a copy of the home's database (the blob store is only read here, so shared)."""
    if settings.database_url.startswith("sqlite"):
        database = Path(settings.database_url.removeprefix("sqlite:///"))
        destination.mkdir(parents=True)
        shutil.copy(database, destination / "crowdalpha.db")
        url = f"sqlite:///{destination / 'crowdalpha.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database(template=settings.database_url)
    return Settings(home=settings.home, database_url=url, storage_url=settings.storage_url)


@pytest.mark.slow
def test_a_killed_resolution_rerun_pays_every_payout_exactly_once(
    scored_home: tuple[Settings, Staked], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings, staked = scored_home
    reference = _copy(settings, tmp_path / "reference", request)
    finished = _resolve_in_child(reference, kill_after=None)
    assert finished.startswith("done"), finished
    duration = float(finished.split()[1])
    expected_stakes = _stakes(reference, staked)
    reference_engine = create_engine(reference.database_url)
    expected_payouts = _payouts(reference_engine)
    reference_engine.dispose()
    assert expected_payouts and set(expected_payouts.values()) == {1}

    rng = random.Random(2026)
    outcomes = []
    for run in range(RUNS):
        copy = _copy(settings, tmp_path / f"run{run}", request)
        outcomes.append(_resolve_in_child(copy, kill_after=rng.uniform(0, duration * 1.5)))
        engine = create_engine(copy.database_url)
        partial = _payouts(engine)
        assert partial in ({}, expected_payouts), f"run {run}: a killed resolution left {partial}"
        with open_context(copy) as opened:  # the operator re-runs it (here in-process: faster, same code)
            resolve_round(opened, "classic", ROUND)
        assert _payouts(engine) == expected_payouts, f"run {run}: payouts after the re-run"
        assert _stakes(copy, staked) == expected_stakes
        with open_context(copy) as opened:
            assert check_ledger(opened).ok
        engine.dispose()
    assert outcomes.count("killed") >= RUNS // 2, outcomes  # most runs really died part-way
