"""Signals (ALPHA, MPC, MMC, CORRv4, FNCv4, ICv2, RIC) and Crypto (CORR, MMC) rounds scored from the market
store, equal to numerai-tools on the same cleaned submissions, targets, neutralisers and weights (≤ 1e-9)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numerai_tools.scoring import (
    alpha,
    correlation_contribution,
    feature_neutral_corr,
    meta_portfolio_contribution,
    numerai_corr,
)
from numerai_tools.submissions import clean_submission
from sqlalchemy import select

from crowdalpha.datasets.crypto import CryptoUniverseRules, build_crypto
from crowdalpha.datasets.signals import build_signals, neutralizers_and_sample_weights
from crowdalpha.ledger.amounts import NANO_PER_TOKEN
from crowdalpha.market.targets import bin_cross_sections, prepare_target_inputs, residual_returns
from crowdalpha.service import (
    Context,
    close_round,
    create_account,
    create_model,
    grant,
    increase_stake,
    ingest_market,
    mint_genesis,
    open_round,
    publish_dataset,
    score_day,
    submit_predictions,
)
from crowdalpha.service.meta_models import read_meta_model
from crowdalpha.store import transaction
from crowdalpha.store.schema import SubmissionScore
from crowdalpha.tournament import CRYPTO, SIGNALS

HISTORY = 200
EXTRA = 30
EXACT = 1e-9
STAKES = {"alice": 40, "bob": 15, "carol": 0}


@dataclass(frozen=True)
class Universes:
    """A 120-asset market, and Signals and Crypto versions built from its first HISTORY dates."""

    panel: pd.DataFrame
    dates: pd.DatetimeIndex
    signals: Path
    crypto: Path

    def days(self, start: int, stop: int) -> pd.DataFrame:
        return self.panel[self.panel["date"].isin(self.dates[start:stop])].reset_index(drop=True)


@pytest.fixture(scope="module")
def universes(
    tmp_path_factory: pytest.TempPathFactory, make_market_panel: Callable[..., pd.DataFrame]
) -> Universes:
    root = tmp_path_factory.mktemp("universe-scores")
    panel = make_market_panel(assets=120, days=HISTORY + EXTRA, seed=5)
    dates = pd.DatetimeIndex(panel["date"].drop_duplicates())
    history = panel[panel["date"].isin(dates[:HISTORY])].reset_index(drop=True)
    loose = CryptoUniverseRules(min_age_days=0, min_volume_usd=0, max_correlation=1.0)
    crypto = build_crypto(history, root / "crypto", rules=loose)
    signals = build_signals(history, root / "signals")
    return Universes(panel, dates, Path(signals.version_dir), Path(crypto.version_dir))


def _submit(ctx: Context, tournament: str, name: str, frame: pd.DataFrame) -> str:
    model = create_model(ctx, name, tournament, f"{name}_{tournament}")
    if STAKES[name]:
        increase_stake(
            ctx, name, model.id, STAKES[name] * NANO_PER_TOKEN, idempotency_key=f"stake/{tournament}/{name}"
        )
    content = frame.to_csv(index=False).encode()
    return submit_predictions(ctx, name, model.id, "p.csv", content).submission_id


def _scored_round(
    ctx: Context,
    universes: Universes,
    tournament: str,
    files: Callable[[pd.DataFrame], dict[str, pd.DataFrame]],
) -> tuple[dict[str, pd.DataFrame], dict[str, str], pd.DataFrame]:
    """Open, submit, close and score a round; return (files, submission ids by name, live file)."""
    mint_genesis(ctx)
    for name in STAKES:
        create_account(ctx, name)
        grant(ctx, name, 100 * NANO_PER_TOKEN, idempotency_key=f"grant/{name}")
    version = universes.signals if tournament == "signals" else universes.crypto
    publish_dataset(ctx, version, tournament)
    market = (SIGNALS if tournament == "signals" else CRYPTO).market  # Crypto has its own market store
    ingest_market(ctx, universes.days(0, HISTORY), market=market)
    open_round(ctx, tournament, close_in=timedelta(hours=1))
    live = pd.read_parquet(version / "live.parquet").reset_index()
    uploads = files(live)
    ids = {name: _submit(ctx, tournament, name, frame) for name, frame in uploads.items()}
    close_round(ctx, tournament)
    ingest_market(ctx, universes.days(HISTORY, HISTORY + EXTRA), market=market)
    report = score_day(ctx, tournament)
    last = min(EXTRA - SIGNALS.lag_days, (SIGNALS if tournament == "signals" else CRYPTO).scoring_days)
    assert [day.day for day in report.scored] == list(range(1, last + 1)), report
    assert not report.skipped_scores and not report.unscored_submissions
    return uploads, ids, live


def _stored(ctx: Context, score: str, day: int) -> pd.Series:
    with transaction(ctx.engine) as uow:
        rows = uow.session.scalars(
            select(SubmissionScore).where(SubmissionScore.score == score, SubmissionScore.day == day)
        ).all()
        return pd.Series({row.submission_id: row.value for row in rows}, dtype=float).sort_index()


def _assert_equal(stored: pd.Series, expected: pd.Series) -> None:
    expected = expected.sort_index()
    assert list(stored.index) == list(expected.index)
    assert stored.to_numpy() == pytest.approx(expected.to_numpy(), abs=EXACT)
    assert (stored.abs() > 1e-9).any()  # real values, not zeros


def _target(universes: Universes, day: int, neutral_to: str, assets: pd.Series) -> pd.Series:
    """Day ``day``'s target of the round's ids (``assets``: id → asset), binned over the round's assets."""
    inputs = prepare_target_inputs(universes.days(0, HISTORY + EXTRA))
    raw = residual_returns(inputs, [universes.dates[HISTORY - 1]], day, neutral_to=neutral_to).iloc[0]
    members = assets.sort_values()
    binned = pd.Series(
        bin_cross_sections(raw.reindex(members.to_numpy()).to_numpy()[None, :])[0], index=members.index
    )
    return binned.dropna().sort_index().rename("target")


def _meta_model(ctx: Context, tournament_id: int) -> pd.Series:
    with transaction(ctx.engine) as uow:
        (row,) = uow.rounds.list(tournament_id)
        found = read_meta_model(ctx, uow, row)
    assert found is not None
    return found.sort_index()


def test_a_signals_round_is_scored_as_numerai_tools_scores_it(ctx: Context, universes: Universes) -> None:
    rng = np.random.default_rng(3)

    def files(live: pd.DataFrame) -> dict[str, pd.DataFrame]:
        return {
            "alice": pd.DataFrame(
                {"numerai_ticker": live["numerai_ticker"][:110], "signal": rng.uniform(size=110)}
            ),
            "bob": pd.DataFrame(
                {"composite_figi": live["composite_figi"], "prediction": rng.uniform(size=len(live))}
            ),
            "carol": pd.DataFrame(
                {"numerai_ticker": live["numerai_ticker"][5:], "signal": rng.uniform(size=len(live) - 5)}
            ),
        }

    uploads, ids, live = _scored_round(ctx, universes, "signals", files)
    universe = live[["composite_figi", "numerai_ticker"]]
    cleaned = pd.DataFrame(
        {
            ids[name]: clean_submission(
                universe, frame, frame.columns[0], frame.columns[1], "composite_figi", rank_and_fill=True
            )
            for name, frame in uploads.items()
        }
    ).sort_index()
    day_rows = universes.panel[universes.panel["date"] == universes.dates[HISTORY - 1]]
    assets = pd.Series(day_rows["asset"].to_numpy(), index=(day_rows["ticker"] + " US").to_numpy()).reindex(
        live["numerai_ticker"].to_numpy()
    )
    by_figi = pd.Series(assets.to_numpy(), index=live["composite_figi"].to_numpy())
    neutralizers, weights = neutralizers_and_sample_weights(
        universes.days(0, HISTORY), universes.dates[HISTORY - 1], members=list(live["numerai_ticker"])
    )
    figi_of = pd.Series(live["composite_figi"].to_numpy(), index=live["numerai_ticker"].to_numpy())
    neutralizers.index = pd.Index(figi_of[neutralizers.index].to_numpy())
    weights.index = neutralizers.index
    neutralizers, weights = neutralizers.sort_index(), weights.sort_index()
    stakes = pd.Series({ids[name]: float(stake) for name, stake in STAKES.items()})
    meta_model = _meta_model(ctx, SIGNALS.tournament_id)
    for day in (1, 20):
        main = _target(universes, day, "factor_neutral", by_figi)
        raw = _target(universes, day, "raw_return", by_figi)
        _assert_equal(_stored(ctx, "corr_v4", day), numerai_corr(cleaned, main))
        _assert_equal(_stored(ctx, "ric", day), numerai_corr(cleaned, main))
        _assert_equal(_stored(ctx, "ic_v2", day), numerai_corr(cleaned, raw))
        _assert_equal(_stored(ctx, "fnc_v4", day), feature_neutral_corr(cleaned, neutralizers, main))
        _assert_equal(_stored(ctx, "mmc", day), correlation_contribution(cleaned, meta_model, main))
        long = _target(universes, day, "factor_neutral", by_figi)  # 60-day target, day k of it
        _assert_equal(_stored(ctx, "alpha", day), alpha(cleaned, neutralizers, weights, long))
        _assert_equal(
            _stored(ctx, "mpc", day),
            meta_portfolio_contribution(cleaned, stakes, neutralizers, weights, long),
        )


def test_a_crypto_round_is_scored_on_raw_returns_binned_over_its_universe(
    ctx: Context, universes: Universes
) -> None:
    rng = np.random.default_rng(4)

    def files(live: pd.DataFrame) -> dict[str, pd.DataFrame]:
        return {
            name: pd.DataFrame({"symbol": live["symbol"][:size], "signal": rng.uniform(size=size)})
            for name, size in (("alice", len(live)), ("bob", 105), ("carol", len(live)))
        }

    uploads, ids, live = _scored_round(ctx, universes, "crypto", files)
    universe = live[["symbol"]]
    cleaned = pd.DataFrame(
        {
            ids[name]: clean_submission(universe, frame, "symbol", "signal", rank_and_fill=True)
            for name, frame in uploads.items()
        }
    ).sort_index()
    day_rows = universes.panel[universes.panel["date"] == universes.dates[HISTORY - 1]]
    assets = pd.Series(day_rows["asset"].to_numpy(), index=day_rows["ticker"].to_numpy()).reindex(
        live["symbol"]
    )
    meta_model = _meta_model(ctx, CRYPTO.tournament_id)
    for day in (1, 20):
        target = _target(universes, day, "raw_return", assets)
        assert target.value_counts().sort_index().index.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
        _assert_equal(_stored(ctx, "corr20", day), numerai_corr(cleaned, target))
        _assert_equal(_stored(ctx, "mmc", day), correlation_contribution(cleaned, meta_model, target))


def test_a_universe_round_opened_before_the_market_reaches_its_live_date_waits_and_says_why(
    ctx: Context, universes: Universes
) -> None:
    publish_dataset(ctx, universes.crypto, "crypto")
    ingest_market(ctx, universes.days(0, HISTORY - 5), market="crypto")  # stops before the live date
    status = open_round(ctx, "crypto", close_in=timedelta(hours=1))
    close_round(ctx, "crypto")
    ingest_market(ctx, universes.days(HISTORY - 5, HISTORY + 5), market="crypto")
    report = score_day(ctx, "crypto")
    assert report.scored == [] and list(report.waiting) == [status.number]
    assert report.waiting[status.number].startswith("no_private_live_data: crypto round")
    assert "ingest the market data of that date" in report.waiting[status.number]
