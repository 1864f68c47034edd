"""A simulated crowd: participants whose models compute predictions the way real ones would.

Each strategy sees only what a real participant sees — the published dataset and live file for
Classic; its own price history (the market panel up to the live date) and the published live
universe for Signals and Crypto — and returns a frame in the tournament's submission format.
Strategies are plain functions, so the simulator, the demo and tests share them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crowdalpha.scoring.transforms import neutralize

PREDICTION = "prediction"


@dataclass(frozen=True)
class ClassicView:
    """What a Classic participant downloads: training eras, the live file and the example predictions."""

    train: pd.DataFrame
    live: pd.DataFrame
    features: tuple[str, ...]
    example_predictions: pd.Series
    benchmark_predictions: pd.DataFrame | None = None
    """The published live benchmark models (one column each), when the operator trained them."""


@dataclass(frozen=True)
class PriceView:
    """What a Signals/Crypto participant has: its own price history and the live universe keys."""

    prices: pd.DataFrame
    """Closing prices up to and including the live date: one row per date, one column per key."""
    universe: tuple[str, ...]
    key_column: str


@dataclass(frozen=True)
class Participant:
    """One simulated model: its name, tournament, strategy and the tokens it means to stake."""

    model: str
    tournament: str
    strategy: str
    stake: int = 0


def _percentile(values: np.ndarray) -> np.ndarray:
    """Return values ranked into (0, 1]: what every strategy submits, ties sharing the mean rank."""
    return pd.Series(values).rank(method="average", pct=True).to_numpy()


def _train_sample(view: ClassicView, max_rows: int, seed: int) -> pd.DataFrame:
    train = view.train.dropna(subset=["target"])
    if len(train) > max_rows:
        train = train.sample(max_rows, random_state=seed)
    return train


def ridge_predictions(view: ClassicView, seed: int) -> np.ndarray:
    """Return live predictions of a ridge regression of the target on the features."""
    from sklearn.linear_model import Ridge

    train = _train_sample(view, 200_000, seed)
    features = list(view.features)
    model = Ridge(alpha=float(len(train)) * 0.01).fit(train[features].to_numpy(np.float32), train["target"])
    return model.predict(view.live[features].to_numpy(np.float32))


def lightgbm_predictions(view: ClassicView, seed: int) -> np.ndarray:
    """Return live predictions of a small LightGBM model (Numerai's benchmark recipe, scaled down)."""
    import lightgbm

    train = _train_sample(view, 200_000, seed)
    features = list(view.features)
    model = lightgbm.LGBMRegressor(
        n_estimators=120,
        learning_rate=0.05,
        num_leaves=15,
        colsample_bytree=0.5,
        subsample=0.8,
        subsample_freq=1,
        random_state=seed,
        n_jobs=1,
        verbose=-1,
    ).fit(train[features].to_numpy(np.float32), train["target"])
    return model.predict(view.live[features].to_numpy(np.float32))


def _classic_strategies() -> dict[str, Callable[[ClassicView, int], np.ndarray]]:
    def neutral_ridge(view: ClassicView, seed: int) -> np.ndarray:
        exposures = view.live[list(view.features)].to_numpy(np.float64)
        return neutralize(_percentile(ridge_predictions(view, seed)), exposures, proportion=0.5)

    def ensemble(view: ClassicView, seed: int) -> np.ndarray:
        return _percentile(ridge_predictions(view, seed)) + _percentile(lightgbm_predictions(view, seed))

    def example(view: ClassicView, seed: int) -> np.ndarray:
        return view.example_predictions.reindex(view.live.index).to_numpy()

    def noise(view: ClassicView, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).random(len(view.live))

    def benchmark(view: ClassicView, seed: int) -> np.ndarray:
        if view.benchmark_predictions is None:
            raise ValueError(
                "the benchmark strategy needs live_benchmark_models.parquet; train benchmarks first"
            )
        return view.benchmark_predictions.reindex(view.live.index).iloc[:, -1].to_numpy()

    return {
        "ridge": ridge_predictions,
        "lightgbm": lightgbm_predictions,
        "neutral_ridge": neutral_ridge,
        "ensemble": ensemble,
        "example": example,
        "noise": noise,
        "benchmark": benchmark,
    }


def _price_strategies() -> dict[str, Callable[[PriceView, int], pd.Series]]:
    def trailing_return(view: PriceView, days: int) -> pd.Series:
        prices = view.prices.ffill()
        return prices.iloc[-1] / prices.iloc[max(0, len(prices) - 1 - days)] - 1.0

    def momentum(view: PriceView, seed: int) -> pd.Series:
        return trailing_return(view, 60)

    def reversal(view: PriceView, seed: int) -> pd.Series:
        return -trailing_return(view, 5)

    def low_volatility(view: PriceView, seed: int) -> pd.Series:
        return -view.prices.ffill().pct_change(fill_method=None).tail(20).std()

    def noise(view: PriceView, seed: int) -> pd.Series:
        columns = view.prices.columns
        return pd.Series(np.random.default_rng(seed).random(len(columns)), index=columns)

    return {"momentum": momentum, "reversal": reversal, "low_volatility": low_volatility, "noise": noise}


CLASSIC_STRATEGIES = _classic_strategies()
PRICE_STRATEGIES = _price_strategies()


def classic_submission(strategy: str, view: ClassicView, seed: int) -> pd.DataFrame:
    """Return a Classic submission (``id, prediction`` in (0, 1]) from one of CLASSIC_STRATEGIES."""
    if strategy not in CLASSIC_STRATEGIES:
        raise ValueError(f"unknown Classic strategy {strategy!r}; one of {sorted(CLASSIC_STRATEGIES)}")
    values = np.asarray(CLASSIC_STRATEGIES[strategy](view, seed), dtype=np.float64)
    return pd.DataFrame({"id": view.live.index.to_numpy(), PREDICTION: _percentile(values)})


def price_submission(strategy: str, view: PriceView, seed: int) -> pd.DataFrame:
    """Return a Signals/Crypto submission for the universe members the participant has prices for."""
    if strategy not in PRICE_STRATEGIES:
        raise ValueError(f"unknown price strategy {strategy!r}; one of {sorted(PRICE_STRATEGIES)}")
    signal = PRICE_STRATEGIES[strategy](view, seed)
    signal = signal.reindex(list(view.universe)).replace([np.inf, -np.inf], np.nan).dropna()
    return pd.DataFrame(
        {view.key_column: signal.index.to_numpy(), PREDICTION: _percentile(signal.to_numpy())}
    )


def price_history(panel: pd.DataFrame, through: object, keys: pd.Series | None = None) -> pd.DataFrame:
    """Return the wide close-price table (dates × key) of ``panel`` up to and including ``through``.

    ``keys`` maps each panel row to the participant's own key (e.g. ``ticker + " " + country``);
    without it the panel's ``ticker`` is the key.
    """
    rows = panel[panel["date"] <= pd.Timestamp(through)]
    key = (keys if keys is not None else panel["ticker"]).loc[rows.index]
    return rows.assign(key=key).pivot_table(index="date", columns="key", values="close", aggfunc="last")


DEFAULT_CROWD: Mapping[str, tuple[tuple[str, str, int], ...]] = {
    "classic": (
        ("ridge", "ridge", 800),
        ("gbm", "lightgbm", 1500),
        ("neutral", "neutral_ridge", 500),
        ("blend", "ensemble", 1200),
        ("example", "example", 300),
        ("noise", "noise", 100),
        ("benchmark", "benchmark", 1000),
    ),
    "signals": (
        ("momentum", "momentum", 600),
        ("reversal", "reversal", 400),
        ("lowvol", "low_volatility", 300),
        ("noise", "noise", 50),
    ),
    "crypto": (("momentum", "momentum", 200), ("reversal", "reversal", 150), ("noise", "noise", 20)),
}
"""tournament → (model suffix, strategy, stake in whole tokens) of the demo crowd."""


def default_crowd(tournaments: tuple[str, ...] = ("classic", "signals", "crypto")) -> list[Participant]:
    """Return the demo crowd: one participant model per (tournament, strategy) of DEFAULT_CROWD."""
    return [
        Participant(f"{tournament}_{suffix}", tournament, strategy, stake)
        for tournament in tournaments
        for suffix, strategy, stake in DEFAULT_CROWD[tournament]
    ]
