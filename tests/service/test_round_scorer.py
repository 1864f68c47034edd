"""The daily scorer, its rank codes restricted as ids drop out day by day, equals numerai-tools (≤ 1e-9)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numerai_tools.scoring import correlation_contribution, feature_neutral_corr, numerai_corr

from crowdalpha.scoring.ranking import REMOVALS_BEFORE_RESORT
from crowdalpha.service.scoring import _RoundScorer

EXACT = 1e-9
N_IDS = 400


def _frames(seed: int) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"n{k:04d}" for k in range(N_IDS)], name="id")
    signal = rng.standard_normal(N_IDS)
    columns = {f"model_{k}": signal * rng.uniform(0, 1) + rng.standard_normal(N_IDS) for k in range(12)}
    columns["tied"] = np.round(signal + rng.standard_normal(N_IDS), 0)  # many ties
    columns["few_values"] = rng.integers(0, 3, N_IDS).astype(float)
    values = pd.DataFrame(columns, index=ids)
    meta_model = values.rank(pct=True).mean(axis=1).rename("meta_model")
    features = pd.DataFrame(rng.integers(0, 5, (N_IDS, 6)).astype(float), index=ids)
    return values, meta_model, features


def _target(ids: pd.Index, rng: np.random.Generator) -> pd.Series:
    binned = np.digitize(rng.standard_normal(len(ids)), [-1.6, -0.5, 0.5, 1.6]) / 4
    return pd.Series(binned, index=ids, name="target")


def test_scores_over_shrinking_and_changing_ids_equal_numerai_tools_every_day() -> None:
    values, meta_model, features = _frames(7)
    rng = np.random.default_rng(11)
    state: dict[object, object] = {}
    kept = values.index
    # days: a few ids drop out, none do, one comes back (not a subset), then many drop (sorted again)
    plans = ["drop", "same", "drop", "back", "drop", "many"]
    for plan in plans:
        if plan == "drop":
            kept = kept.delete(rng.choice(len(kept), 3, replace=False))
        elif plan == "back":
            kept = kept.union(values.index.difference(kept)[:1])
        elif plan == "many":
            kept = kept[: len(kept) - REMOVALS_BEFORE_RESORT - 5]
        target = _target(kept, rng).sample(frac=1.0, random_state=1)  # order does not matter
        scorer = _RoundScorer(
            values, {"meta_model": meta_model}, neutralizers=lambda _name: features, round_state=state
        )
        for got, want in [
            (scorer.corr(target), numerai_corr(values, target)),
            (scorer.contribution("meta_model", target), correlation_contribution(values, meta_model, target)),
            (scorer.feature_neutral_corr("medium", target), feature_neutral_corr(values, features, target)),
        ]:
            assert got.index.equals(values.columns)
            assert got.to_numpy() == pytest.approx(want.reindex(values.columns).to_numpy(), abs=EXACT), plan


def test_a_constant_model_has_no_fnc_and_the_others_do() -> None:
    values, meta_model, features = _frames(3)
    values["constant"] = 0.5  # its Gaussianised ranks are constant: nothing to neutralise
    target = _target(values.index[5:], np.random.default_rng(2))
    scorer = _RoundScorer(values, {"meta_model": meta_model}, neutralizers=lambda _name: features)
    scores = scorer.feature_neutral_corr("medium", target)
    assert np.isnan(scores["constant"])
    expected = feature_neutral_corr(values.drop(columns="constant"), features, target)
    assert scores.drop("constant").to_numpy() == pytest.approx(expected.to_numpy(), abs=EXACT)
