"""Classic dataset versions: Numerai's layout, keyed anonymity, splits, determinism, minor versions."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from dataset_factories import OTHER_SECRET, SECRET, make_era_frame, make_panel

from crowdalpha.datasets.classic import (
    PUBLISHED_FILES,
    build_classic,
    plan_splits,
    required_embargo_eras,
    write_classic_version,
)
from crowdalpha.datasets.errors import DatasetError
from crowdalpha.datasets.feature_sets import GROUPS
from crowdalpha.datasets.obfuscate import SecretKeys

DATA_FILES = ("train", "validation", "live")


def build(frame: pd.DataFrame, root: Path, secret: bytes = SECRET, **options) -> Path:
    """Build ``root/public/<version>`` (private maps in ``root/private``); return the version dir."""
    report = write_classic_version(
        frame, root / "public", secret=secret, private_dir=root / "private", workers=2, **options
    )
    return report.version_dir


def read(version_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(version_dir / f"{name}.parquet")


def manifest(version_dir: Path) -> dict:
    return json.loads(
        (version_dir.parent.parent / "private" / version_dir.name / "manifest.json").read_text()
    )


def digests(version_dir: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(version_dir.iterdir())}


@pytest.fixture(scope="module")
def v10(era_frame, tmp_path_factory) -> Path:
    return build(era_frame, tmp_path_factory.mktemp("v10"))


def test_a_version_holds_exactly_numerais_files(v10):
    assert sorted(p.name for p in v10.iterdir()) == sorted(PUBLISHED_FILES)


def test_data_files_have_numerais_columns_and_dtypes(v10):
    features = json.loads((v10 / "features.json").read_text())
    for name in DATA_FILES:
        data = read(v10, name)
        assert data.index.name == "id"
        columns = list(data.columns)
        assert columns[:2] == ["era", "data_type"]
        feature_columns = [c for c in columns if c.startswith("feature_")]
        target_columns = columns[2 + len(feature_columns) :]
        assert feature_columns == features["feature_sets"]["all"]
        assert target_columns == features["targets"] and target_columns[0] == "target"
        assert all(c.startswith("target_") for c in target_columns[1:])
        assert all(data[c].dtype == np.int8 for c in feature_columns)
        assert all(data[c].dtype == np.float32 for c in target_columns)
        assert set(data["data_type"]) == {name}
        assert data["era"].str.fullmatch(r"\d{4}").all()
        assert data[feature_columns].isin(range(5)).all().all()
    for name in ("validation_example_preds", "live_example_preds"):
        predictions = read(v10, name)
        assert predictions.index.name == "id" and list(predictions.columns) == ["prediction"]


def test_ids_are_unique_within_and_across_eras(v10):
    ids = pd.concat([read(v10, name)[["era"]] for name in DATA_FILES])
    assert ids.index.str.fullmatch(r"n[0-9a-f]{15}").all()
    assert ids.index.is_unique
    assert ids.groupby("era").size().min() > 1


def test_rows_are_shuffled_by_id_within_each_era(v10):
    train = read(v10, "train")
    for _, era in train.groupby("era"):
        assert era.index.is_monotonic_increasing
    private = pd.read_parquet(v10.parent.parent / "private" / "v1.0" / "ids.parquet")
    first = private[private["era"] == "0001"]
    assert not first["asset"].is_monotonic_increasing


def test_same_data_and_secret_give_identical_bytes_whatever_the_row_order(era_frame, v10, tmp_path):
    shuffled = era_frame.sample(frac=1.0, random_state=5)
    again = build(shuffled, tmp_path)
    assert digests(again) == digests(v10)


def test_another_secret_gives_other_names_and_ids(era_frame, v10, tmp_path):
    other = build(era_frame, tmp_path, secret=OTHER_SECRET)
    ours, theirs = read(v10, "train"), read(other, "train")
    ours_features = {c for c in ours.columns if c.startswith("feature_")}
    theirs_features = {c for c in theirs.columns if c.startswith("feature_")}
    assert not ours_features & theirs_features
    assert not set(ours.index) & set(theirs.index)
    assert len(ours) == len(theirs)


def test_features_are_equal_frequency_bins_per_era(v10):
    names = manifest(v10)["features"]
    continuous = [names[raw] for raw in names if re.fullmatch(r"raw_f\d+|raw_size", raw)]
    train = read(v10, "train")
    for _, era in train.groupby("era"):
        for column in continuous:
            counts = np.bincount(era[column], minlength=5)
            assert counts.max() - counts.min() <= 1, (column, counts)
    flag, gappy = names["raw_flag"], names["raw_gappy"]
    assert train.groupby("era")[flag].nunique().max() <= 3
    assert (train[gappy] == 2).mean() > 0.2


def test_embargo_separates_train_and_validation_by_the_target_horizon(v10):
    document = manifest(v10)
    eras = pd.DataFrame(document["eras"])
    train, validation = eras[eras.data_type == "train"], eras[eras.data_type == "validation"]
    last_train, first_validation = int(train.era.max()), int(validation.era.min())
    assert document["embargo_eras"] == required_embargo_eras(60) == 13
    assert first_validation - last_train - 1 == 13
    gap = np.busday_count(train.date.max(), validation.date.min())
    assert gap >= 60 + 2
    published = set(read(v10, "train").era) | set(read(v10, "validation").era)
    assert not published & set(eras[eras.data_type.isin(["embargo", "unresolved"])].era)


def test_main_target_is_known_in_train_and_validation_and_hidden_in_live(v10):
    assert read(v10, "train")["target"].notna().all()
    assert read(v10, "validation")["target"].notna().all()
    live = read(v10, "live")
    assert live.filter(like="target").isna().all().all()
    assert live["era"].nunique() == 1 and int(live["era"].iloc[0]) == 41


def test_features_json_lists_sets_groups_and_targets(v10):
    document = json.loads((v10 / "features.json").read_text())
    assert set(document) == {"feature_sets", "targets"}
    sets = document["feature_sets"]
    assert {"small", "medium", "all", *GROUPS} <= set(sets)
    assert set(sets["small"]) <= set(sets["medium"]) <= set(sets["all"])
    grouped = [name for group in GROUPS for name in sets[group]]
    assert sorted(grouped) == sorted(sets["all"])
    assert document["targets"] == ["target", "target_alpha_20", "target_beta_60"]


def test_published_files_reveal_no_raw_names_assets_or_dates(era_frame, v10):
    secrets = {c for c in era_frame.columns if c.startswith("raw_")}
    secrets |= set(era_frame["asset"].unique())
    secrets |= {d.strftime("%Y-%m-%d") for d in era_frame["date"].unique()}
    secrets |= {d.strftime("%Y%m%d") for d in era_frame["date"].unique()}
    for path in v10.iterdir():
        texts = [path.read_bytes().decode("latin-1")]
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            texts.append(" ".join(map(str, [*frame.columns, frame.index.name])))
            for column in frame.select_dtypes(exclude="number").columns:
                texts.append(" ".join(frame[column].astype(str).unique()))
            texts.append(" ".join(frame.index.astype(str)))
            texts.append(str(pq.read_metadata(path).metadata))
        text = "\n".join(texts)
        leaked = [s for s in secrets if s in text]
        assert not leaked, (path.name, leaked[:5])


def test_private_maps_tie_every_published_id_to_its_date_and_asset(era_frame, v10):
    private = pd.read_parquet(v10.parent.parent / "private" / "v1.0" / "ids.parquet")
    published = pd.concat([read(v10, name) for name in DATA_FILES])
    assert list(private["id"]) == list(published.index)
    names = manifest(v10)["features"]
    joined = private.assign(date=pd.to_datetime(private["date"])).merge(era_frame, on=["date", "asset"])
    assert len(joined) == len(private)
    row = joined[joined["data_type"] == "train"].iloc[0]
    era = published[published["era"] == row["era"]]
    ours = era_frame[era_frame["date"] == row["date"]]
    rank = (ours["raw_f01"] < row["raw_f01"]).mean()
    assert abs(era.loc[row["id"], names["raw_f01"]] - np.floor(5 * rank)) <= 1


def test_example_predictions_cover_every_row_ranked_per_era(v10):
    for split in ("validation", "live"):
        data, predictions = read(v10, split), read(v10, f"{split}_example_preds")
        assert list(predictions.index) == list(data.index)
        values = predictions["prediction"]
        assert values.between(0, 1, inclusive="neither").all()
        means = values.groupby(data["era"]).mean()
        np.testing.assert_allclose(means, 0.5, atol=1e-9)


def with_new_columns(frame: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(99)
    frame = frame.copy()
    for name in ("raw_new_a", "raw_new_b", "raw_new_c"):
        frame[name] = rng.standard_normal(len(frame))
    frame["target_gamma_20"] = frame["target_alpha_20"]
    return frame


def test_a_minor_version_adds_columns_and_keeps_every_existing_column_and_id(era_frame, tmp_path):
    base = build(era_frame, tmp_path)
    minor = build(with_new_columns(era_frame), tmp_path, version="v1.1", base_version_dir=base)
    base_sets = json.loads((base / "features.json").read_text())
    sets = json.loads((minor / "features.json").read_text())
    new = sets["feature_sets"]["new_in_v1.1"]
    assert len(new) == 3 and not set(new) & set(base_sets["feature_sets"]["all"])
    assert sets["feature_sets"]["all"] == base_sets["feature_sets"]["all"] + new
    for name in ("small", "medium"):
        assert sets["feature_sets"][name] == base_sets["feature_sets"][name]
    assert sorted(n for g in GROUPS for n in sets["feature_sets"][g]) == sorted(sets["feature_sets"]["all"])
    assert sets["targets"] == [*base_sets["targets"], "target_gamma_20"]
    for name in ("train", "validation"):
        old, extended = read(base, name), read(minor, name)
        assert list(extended.index) == list(old.index)
        pd.testing.assert_frame_equal(extended[old.columns], old)
        assert extended[new].isin(range(5)).all().all() and (extended[new].dtypes == np.int8).all()
    live_old, live_new = read(base, "live"), read(minor, "live")
    pd.testing.assert_frame_equal(live_new[live_old.columns], live_old)
    pd.testing.assert_frame_equal(
        read(minor, "validation_example_preds"), read(base, "validation_example_preds")
    )


def test_a_minor_version_refuses_another_secret(era_frame, tmp_path):
    base = build(era_frame, tmp_path)
    with pytest.raises(DatasetError, match="secret of its base"):
        build(
            with_new_columns(era_frame), tmp_path, secret=OTHER_SECRET, version="v1.1", base_version_dir=base
        )
    assert not (tmp_path / "public" / "v1.1").exists()


def test_bad_input_leaves_no_partial_output(tmp_path):
    short = make_era_frame(eras=10, unresolved=2)
    with pytest.raises(DatasetError, match="history must hold"):
        build(short, tmp_path)
    assert not (tmp_path / "public").exists() and not (tmp_path / "private").exists()


def test_a_version_is_never_overwritten(era_frame, tmp_path):
    build(era_frame, tmp_path)
    before = digests(tmp_path / "public" / "v1.0")
    with pytest.raises(DatasetError, match="immutable"):
        build(era_frame, tmp_path, secret=OTHER_SECRET)
    assert digests(tmp_path / "public" / "v1.0") == before
    assert [p.name for p in (tmp_path / "public").iterdir()] == ["v1.0"]


def test_private_outputs_may_not_live_inside_the_published_directory(era_frame, tmp_path):
    with pytest.raises(DatasetError, match="outside the published directory"):
        write_classic_version(era_frame, tmp_path, secret=SECRET, private_dir=tmp_path / "private")


def test_an_embargo_shorter_than_the_horizon_is_refused():
    history = [f"2021-{m:02d}-01" for m in range(1, 13)] * 5
    with pytest.raises(DatasetError, match="embargo must cover"):
        plan_splits(sorted(history), [True] * 60, "2030-01-01", targets=["target_x_60"], embargo_eras=4)
    plan = plan_splits(sorted(history), [True] * 60, "2030-01-01", targets=["target_x_20"], embargo_eras=4)
    assert len(plan.of("embargo")) == 4 and len(plan.of("validation")) == 15


def test_numerais_hello_numerai_steps_run_unchanged(v10):
    """The data steps of Numerai's hello_numerai notebook, verbatim apart from the data path."""
    lightgbm = pytest.importorskip("lightgbm")
    scoring = pytest.importorskip("numerai_tools.scoring")
    data_version = str(v10)
    feature_metadata = json.load(open(f"{data_version}/features.json"))  # noqa: SIM115
    feature_set = feature_metadata["feature_sets"]["small"]
    train = pd.read_parquet(f"{data_version}/train.parquet", columns=["era", "target", *feature_set])
    model = lightgbm.LGBMRegressor(
        n_estimators=10, learning_rate=0.01, max_depth=5, num_leaves=2**5 - 1, verbose=-1
    )
    model.fit(train[feature_set], train["target"])
    validation = pd.read_parquet(
        f"{data_version}/validation.parquet", columns=["era", "data_type", "target", *feature_set]
    )
    validation = validation[validation["data_type"] == "validation"]
    del validation["data_type"]
    last_train_era = int(train["era"].unique()[-1])
    eras_to_embargo = [str(era).zfill(4) for era in [last_train_era + i for i in range(4)]]
    validation = validation[~validation["era"].isin(eras_to_embargo)]
    validation["prediction"] = model.predict(validation[feature_set])
    per_era_corr = validation.groupby("era").apply(
        lambda x: scoring.numerai_corr(x[["prediction"]].dropna(), x["target"].dropna())
    )
    assert len(per_era_corr) == validation["era"].nunique() and per_era_corr.notna().all().all()
    live_features = pd.read_parquet(f"{data_version}/live.parquet", columns=feature_set)
    submission = pd.Series(model.predict(live_features[feature_set]), index=live_features.index).to_frame(
        "prediction"
    )
    assert submission.index.name == "id" and len(submission) == 60


def test_an_id_repeated_across_eras_stops_the_build(era_frame, tmp_path, monkeypatch):
    monkeypatch.setattr(
        SecretKeys, "row_ids", lambda self, tag, assets: np.arange(len(assets), dtype=np.uint64) + 1
    )
    with pytest.raises(DatasetError, match="unique across the version"):
        build(era_frame, tmp_path)
    assert not (tmp_path / "public").exists()


def test_a_panel_without_raw_features_gets_price_features(tmp_path):
    from crowdalpha.market.features import PRICE_FEATURE_NAMES

    panel = make_panel(assets=30, days=380, raw_features=0)
    report = build_classic(panel, tmp_path / "public", secret=SECRET, private_dir=tmp_path / "private")
    names = manifest(report.version_dir)["features"]
    assert set(names) <= set(PRICE_FEATURE_NAMES)  # a feature constant on every date is left out
    assert report.features == len(names) >= len(PRICE_FEATURE_NAMES) - 2
