"""A simulated crowd: participants whose models compute predictions the way real ones would.

Each strategy sees only what a real participant sees — the published training data and each
round's live file for Classic (a model is fitted once, then applied to every live file); its own
price history (the market panel up to the live date) and the published live universe for Signals
and Crypto — and returns a frame in the tournament's submission format. Strategies are plain
functions, so the season simulator, the demo and tests share them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crowdalpha.datasets.example_model import RidgeExampleModel
from crowdalpha.scoring.transforms import Neutralizer

PREDICTION = "prediction"
COPYCAT = "copycat"
"""The strategy that uploads the round's published meta model, after the close (when it is published)."""


@dataclass(frozen=True)
class ClassicTraining:
    """What a Classic participant downloads once: the training eras and the feature sets it uses."""

    train: pd.DataFrame
    """``era``, the ``features`` and ``target`` of the published train split."""
    features: tuple[str, ...]
    example_features: tuple[str, ...]
    """The ``small`` feature set, on which the published example model is fitted."""


@dataclass(frozen=True)
class PriceView:
    """What a Signals/Crypto participant has: its own price history and the live universe keys."""

    prices: pd.DataFrame
    """Closing prices up to and including the live date: one row per date, one column per key."""
    universe: tuple[str, ...]
    key_column: str


@dataclass(frozen=True)
class Participant:
    """One simulated model: name, tournament, strategy, tokens it stakes, and how it behaves in the season.

    ``late`` models upload after the close (scored, never staked). ``skip_every`` N > 0 skips every
    round whose number is a multiple of N. ``stake_changes`` are (season day index, whole tokens):
    a positive amount raises the stake that day, a negative one asks to release that much.
    """

    model: str
    tournament: str
    strategy: str
    stake: int = 0
    late: bool = False
    skip_every: int = 0
    stake_changes: tuple[tuple[int, int], ...] = ()

    @property
    def copies_meta_model(self) -> bool:
        """Return whether the model uploads the round's published meta model instead of its own."""
        return self.strategy == COPYCAT

    def skips(self, round_number: int) -> bool:
        """Return whether the model sits out round ``round_number``."""
        return self.skip_every > 0 and round_number % self.skip_every == 0


ClassicModel = Callable[[pd.DataFrame], np.ndarray]
"""A fitted Classic model: a live frame (feature columns) → one raw prediction per row."""


def _percentile(values: np.ndarray) -> np.ndarray:
    """Return values ranked into (0, 1]: what every strategy submits, ties sharing the mean rank."""
    return pd.Series(values).rank(method="average", pct=True).to_numpy()


def _train_sample(training: ClassicTraining, max_rows: int, seed: int) -> pd.DataFrame:
    train = training.train.dropna(subset=["target"])
    if len(train) > max_rows:
        train = train.sample(max_rows, random_state=seed)
    return train


_FEATURES_SLOT: list[tuple[pd.DataFrame, tuple[str, ...], np.ndarray]] = []


def _features(frame: pd.DataFrame, features: tuple[str, ...]) -> np.ndarray:
    """Return the frame's feature block (float32), built once per live file for all the crowd's models
    (one slot: the round's file, held by reference; the fitted models never write to it)."""
    if _FEATURES_SLOT and _FEATURES_SLOT[0][0] is frame and _FEATURES_SLOT[0][1] == features:
        return _FEATURES_SLOT[0][2]
    block = frame[list(features)].to_numpy(np.float32)
    block.setflags(write=False)
    _FEATURES_SLOT[:] = [(frame, features, block)]
    return block


_NEUTRALIZER_SLOT: list[tuple[pd.DataFrame, tuple[str, ...], Neutralizer]] = []


def _live_neutralizer(live: pd.DataFrame, features: tuple[str, ...]) -> Neutralizer:
    """Return the neutraliser of a live file's features (+ a constant), built once per live file.

    Every feature-neutral model of a round neutralises against the same live file, so the one
    SVD of its ids × features block is shared (one slot: the round's file, held by reference).
    """
    if _NEUTRALIZER_SLOT and _NEUTRALIZER_SLOT[0][0] is live and _NEUTRALIZER_SLOT[0][1] == features:
        return _NEUTRALIZER_SLOT[0][2]
    neutralizer = Neutralizer(live[list(features)].to_numpy(np.float64))
    _NEUTRALIZER_SLOT[:] = [(live, features, neutralizer)]
    return neutralizer


def fit_ridge(training: ClassicTraining, seed: int) -> ClassicModel:
    """Return a ridge regression of the target on the features, fitted once on the train split."""
    from sklearn.linear_model import Ridge

    train = _train_sample(training, 200_000, seed)
    block = train[list(training.features)].to_numpy(np.float32)
    model = Ridge(alpha=float(len(train)) * 0.01).fit(block, train["target"])
    return lambda live: model.predict(_features(live, training.features))


def fit_lightgbm(training: ClassicTraining, seed: int) -> ClassicModel:
    """Return a small LightGBM model (Numerai's benchmark recipe, scaled down), fitted once."""
    import lightgbm

    train = _train_sample(training, 200_000, seed)
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
    ).fit(train[list(training.features)].to_numpy(np.float32), train["target"])
    return lambda live: model.predict(_features(live, training.features))


def fit_example(training: ClassicTraining, seed: int) -> ClassicModel:
    """Return the published example model's recipe (ridge on the ``small`` set), fitted by the participant."""
    features = list(training.example_features)
    model = RidgeExampleModel(len(features))
    for _, era in training.train.groupby("era", sort=True):
        model.add_era(era[features].to_numpy().T, era["target"].to_numpy())
    model.fit()
    return lambda live: model.predict_era(live[features].to_numpy().T)


def _classic_strategies() -> dict[str, Callable[[ClassicTraining, int], ClassicModel]]:
    def neutral_ridge(training: ClassicTraining, seed: int) -> ClassicModel:
        ridge = fit_ridge(training, seed)

        def predict(live: pd.DataFrame) -> np.ndarray:
            neutralizer = _live_neutralizer(live, training.features)
            return neutralizer.residual_rows(_percentile(ridge(live))[None, :], proportion=0.5)[0]

        return predict

    def ensemble(training: ClassicTraining, seed: int) -> ClassicModel:
        ridge, gbm = fit_ridge(training, seed), fit_lightgbm(training, seed)
        return lambda live: _percentile(ridge(live)) + _percentile(gbm(live))

    def contrarian(training: ClassicTraining, seed: int) -> ClassicModel:
        ridge = fit_ridge(training, seed)  # a poor model on purpose: the ridge's ranking upside down
        return lambda live: -ridge(live)

    def noise(training: ClassicTraining, seed: int) -> ClassicModel:
        rng = np.random.default_rng(seed)  # fresh draws every round, reproducible from the seed
        return lambda live: rng.random(len(live))

    return {
        "ridge": fit_ridge,
        "lightgbm": fit_lightgbm,
        "neutral_ridge": neutral_ridge,
        "ensemble": ensemble,
        "example": fit_example,
        "contrarian": contrarian,
        "noise": noise,
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

    def value(view: PriceView, seed: int) -> pd.Series:
        # cheap against its own year: the last close below its trailing 250-day mean
        prices = view.prices.ffill()
        return 1.0 - prices.iloc[-1] / prices.tail(250).mean()

    def noise(view: PriceView, seed: int) -> pd.Series:
        columns = view.prices.columns
        rng = np.random.default_rng([seed, len(view.prices)])  # fresh draws every date, reproducible
        return pd.Series(rng.random(len(columns)), index=columns)

    return {
        "momentum": momentum,
        "reversal": reversal,
        "low_volatility": low_volatility,
        "value": value,
        "noise": noise,
    }


CLASSIC_STRATEGIES = _classic_strategies()
PRICE_STRATEGIES = _price_strategies()


def fit_classic(strategy: str, training: ClassicTraining, seed: int) -> ClassicModel:
    """Return the model of one of CLASSIC_STRATEGIES, fitted once on the published training data."""
    if strategy not in CLASSIC_STRATEGIES:
        known = sorted([*CLASSIC_STRATEGIES, COPYCAT])
        raise ValueError(f"unknown Classic strategy {strategy!r}; one of {known}")
    return CLASSIC_STRATEGIES[strategy](training, seed)


_INFERRED_TEXT = pd.Index(["id"]).dtype
"""The dtype pandas gives a column of Python strings."""


def _id_column(index: pd.Index) -> object:
    """Return an index's ids as a frame column: its own array if a frame would convert them to it.

    The numpy values of a text index are Python strings that a new frame converts back to text of
    this very dtype; handing over the index's array skips the round trip (any other dtype goes
    through numpy as before).
    """
    return index.array if index.dtype == _INFERRED_TEXT else index.to_numpy()


def copycat_submission(meta_model: pd.Series) -> pd.DataFrame:
    """Return a Classic submission that is the published meta model (values by id) itself."""
    return pd.DataFrame(
        {"id": _id_column(meta_model.index), PREDICTION: _percentile(meta_model.to_numpy(np.float64))}
    )


def classic_submission(model: ClassicModel, live: pd.DataFrame) -> pd.DataFrame:
    """Return a Classic submission (``id, prediction`` in (0, 1]) of a fitted model on a live file."""
    values = np.asarray(model(live), dtype=np.float64)
    return pd.DataFrame({"id": _id_column(live.index), PREDICTION: _percentile(values)})


def price_submission(strategy: str, view: PriceView, seed: int) -> pd.DataFrame:
    """Return a Signals/Crypto submission for the universe members the participant has prices for."""
    if strategy not in PRICE_STRATEGIES:
        raise ValueError(f"unknown price strategy {strategy!r}; one of {sorted(PRICE_STRATEGIES)}")
    signal = PRICE_STRATEGIES[strategy](view, seed)
    signal = signal.reindex(list(view.universe)).replace([np.inf, -np.inf], np.nan).dropna()
    return pd.DataFrame(
        {view.key_column: _id_column(signal.index), PREDICTION: _percentile(signal.to_numpy())}
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
        ("contrarian", "contrarian", 200),
    ),
    "signals": (
        ("momentum", "momentum", 600),
        ("reversal", "reversal", 400),
        ("lowvol", "low_volatility", 300),
        ("value", "value", 300),
        ("noise", "noise", 50),
    ),
    "crypto": (("momentum", "momentum", 200), ("reversal", "reversal", 150), ("noise", "noise", 20)),
}
"""tournament → (model suffix, strategy, stake in whole tokens) of the demo crowd."""

LATE_CROWD: Mapping[str, tuple[tuple[str, str], ...]] = {"classic": (("late", "ridge"), ("copycat", COPYCAT))}
"""tournament → (model suffix, strategy) of models that upload after the close (never staked)."""

SKIPPING_CROWD: Mapping[str, tuple[tuple[str, str, int, int], ...]] = {
    "classic": (("skipper", "ridge", 400, 3),)
}
"""tournament → (model suffix, strategy, stake, skip every N-th round) of models that sit rounds out."""

STAKE_CHANGES: Mapping[str, tuple[tuple[int, int], ...]] = {
    "classic_gbm": ((5, 500),),
    "classic_noise": ((3, -50),),
}
"""model → (season day index, whole tokens): stake raised (+) or released (−) mid-season."""


def default_crowd(tournaments: tuple[str, ...] = ("classic", "signals", "crypto")) -> list[Participant]:
    """Return the demo crowd: one model per (tournament, strategy) of DEFAULT_CROWD, then the late ones."""
    on_time = [
        Participant(
            f"{tournament}_{suffix}",
            tournament,
            strategy,
            stake,
            stake_changes=STAKE_CHANGES.get(f"{tournament}_{suffix}", ()),
        )
        for tournament in tournaments
        for suffix, strategy, stake in DEFAULT_CROWD[tournament]
    ]
    skipping = [
        Participant(f"{tournament}_{suffix}", tournament, strategy, stake, skip_every=every)
        for tournament in tournaments
        for suffix, strategy, stake, every in SKIPPING_CROWD.get(tournament, ())
    ]
    late = [
        Participant(f"{tournament}_{suffix}", tournament, strategy, late=True)
        for tournament in tournaments
        for suffix, strategy in LATE_CROWD.get(tournament, ())
    ]
    return on_time + skipping + late
