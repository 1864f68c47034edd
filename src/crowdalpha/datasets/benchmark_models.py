"""Classic benchmark models: walk-forward LightGBM per target, as Numerai trains its own (reference §4).

Eras (train and validation together, in order) are cut into chunks of ``chunk_eras``. The first
chunk is only learnt from; every later chunk is predicted by a model trained on the eras with
known targets that end ``purge_eras`` before the chunk starts (8 for 20-day targets, 16 for
60-day ones: a target overlaps the following eras, so training next to the chunk would leak it).
The live era is predicted by a model trained on every era with a known target. Predictions are
ranked within each era to (0, 1) and written, one column per benchmark named
``{version}_lgbm_{target}`` (e.g. ``v10_lgbm_factor_neutral20``), to
``train_benchmark_models.parquet`` / ``validation_benchmark_models.parquet`` /
``live_benchmark_models.parquet`` (index ``id``, column ``era``). The final models are saved as
LightGBM text files in the private directory, so a round opened on a fresh live file can be
predicted by the same models (:func:`predict_live`); the same models are also written as one
private file, ``benchmark_models.json`` (features, and each model as LightGBM text), which
``dataset publish --private`` stores with the version so the server predicts every round's fresh
live file at open (:func:`predict_live_bundle`, used by ``service.live_benchmarks``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from crowdalpha.datasets.errors import rule_error
from crowdalpha.datasets.example_model import rank_within_era
from crowdalpha.datasets.parquet import ERA_COLUMN, frame_schema, write_table

DEFAULT_TARGETS = ("target_factor_neutral_20",)
DEFAULT_FEATURE_SET = "medium"
DEFAULT_CHUNK_ERAS = 156
MODELS_DIRNAME = "benchmark_models"
BUNDLE_FILE = "benchmark_models.json"
"""The private file holding every final benchmark model (features + LightGBM text per model)."""
FILES = {
    "train": "train_benchmark_models.parquet",
    "validation": "validation_benchmark_models.parquet",
    "live": "live_benchmark_models.parquet",
}


def round_live_benchmarks_name(round_number: int) -> str:
    """Return the name of a round's own live benchmark predictions: ``live_benchmark_models_<n>.parquet``."""
    stem, suffix = FILES["live"].rsplit(".", 1)
    return f"{stem}_{round_number}.{suffix}"


Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class LightGBMParams:
    """LightGBM settings of a benchmark model; Numerai's are far larger (20,000 trees at 0.001)."""

    n_estimators: int = 400
    learning_rate: float = 0.02
    max_depth: int = 5
    num_leaves: int = 31
    colsample_bytree: float = 0.1
    min_child_samples: int = 20
    seed: int = 1337


@dataclass
class BenchmarkReport:
    """What ``train_benchmark_models`` wrote: benchmark names, files, rows per file, chunks fitted."""

    version_dir: Path
    models_dir: Path
    benchmarks: list[str]
    rows: dict[str, int] = field(default_factory=dict)
    fits: int = 0


def purge_eras_for(target: str) -> int:
    """Return the eras left out before a predicted chunk: 8 for a 20-day target, 16 for a 60-day one."""
    return 16 if target.endswith("_60") else 8


def benchmark_name(version: str, target: str) -> str:
    """Return Numerai's benchmark column name, e.g. ``v10_lgbm_factor_neutral20`` for v1.0 and its target."""
    stem = target.removeprefix("target_")
    stem = stem[: -len("_20")] + "20" if stem.endswith("_20") else stem
    stem = stem[: -len("_60")] + "60" if stem.endswith("_60") else stem
    return f"{version.replace('.', '')}_lgbm_{stem}"


def walk_forward_chunks(
    eras: Sequence[str], chunk_eras: int, purge_eras: int
) -> list[tuple[list[str], list[str]]]:
    """Return (train eras, predicted eras) per chunk after the first, train eras ending ``purge`` before."""
    if chunk_eras < 1 or purge_eras < 0:
        raise rule_error("walk_forward", f"chunk_eras ≥ 1 and purge_eras ≥ 0; got {chunk_eras}, {purge_eras}")
    ordered = sorted(eras)
    chunks = []
    for start in range(chunk_eras, len(ordered), chunk_eras):
        train = ordered[: max(0, start - purge_eras)]
        if train:
            chunks.append((train, ordered[start : start + chunk_eras]))
    return chunks


def _fit(frame: pd.DataFrame, features: list[str], target: str, params: LightGBMParams):
    import lightgbm

    known = frame[frame[target].notna()]
    if known.empty:
        raise rule_error("benchmark_training_rows", f"no row with a known {target} to train on")
    return lightgbm.LGBMRegressor(
        **{key: value for key, value in asdict(params).items() if key != "seed"},
        random_state=params.seed,
        n_jobs=1,
        verbose=-1,
    ).fit(known[features].to_numpy(np.float32), known[target].to_numpy(np.float32))


def _ranked(frame: pd.DataFrame, raw: np.ndarray) -> np.ndarray:
    ranked = np.empty(len(frame), dtype=np.float64)
    for _, positions in frame.groupby(ERA_COLUMN, sort=False).indices.items():
        ranked[positions] = rank_within_era(raw[positions])
    return ranked


def _write(path: Path, frame: pd.DataFrame, columns: list[str]) -> int:
    schema = frame_schema([(ERA_COLUMN, pa.string()), *((name, pa.float64()) for name in columns)])
    arrays = [pa.array(frame[ERA_COLUMN].astype(str)), *(pa.array(frame[name]) for name in columns)]
    write_table(path, pa.Table.from_arrays([*arrays, pa.array(frame.index.astype(str))], schema=schema))
    return len(frame)


def _feature_names(version_dir: Path, feature_set: str, targets: Sequence[str]) -> list[str]:
    missing = [
        name
        for name in ("features.json", "train.parquet", "live.parquet")
        if not (version_dir / name).is_file()
    ]
    if missing:
        raise rule_error(
            "classic_version", f"{version_dir} has no {', '.join(missing)}; give a built Classic version"
        )
    document = json.loads((version_dir / "features.json").read_text())
    sets, known_targets = document["feature_sets"], document.get("targets", [])
    if feature_set not in sets:
        raise rule_error("feature_set", f"{feature_set!r} is not in features.json; one of {sorted(sets)}")
    unknown = [name for name in targets if name not in known_targets]
    if unknown:
        raise rule_error("benchmark_target", f"{unknown} not in features.json targets {known_targets}")
    if not targets:
        raise rule_error("benchmark_target", "at least one target is needed")
    return list(sets[feature_set])


def train_benchmark_models(
    version_dir: str | Path,
    private_dir: str | Path,
    *,
    targets: Sequence[str] = DEFAULT_TARGETS,
    feature_set: str = DEFAULT_FEATURE_SET,
    chunk_eras: int = DEFAULT_CHUNK_ERAS,
    params: LightGBMParams = LightGBMParams(),
    progress: Progress | None = None,
) -> BenchmarkReport:
    """Train the benchmark models of a built Classic version and write their prediction files (module doc)."""
    report_progress = progress or (lambda stage, done, total: None)
    version_dir, models_dir = Path(version_dir), Path(private_dir) / MODELS_DIRNAME
    features = _feature_names(version_dir, feature_set, targets)
    columns = [ERA_COLUMN, "data_type", *features]
    history = pd.concat(
        [
            pd.read_parquet(version_dir / "train.parquet", columns=[*columns, *targets]),
            pd.read_parquet(version_dir / "validation.parquet", columns=[*columns, *targets]),
        ]
    )
    live = pd.read_parquet(version_dir / "live.parquet", columns=[ERA_COLUMN, *features])
    names = [benchmark_name(version_dir.name, target) for target in targets]
    models_dir.mkdir(parents=True, exist_ok=True)
    report = BenchmarkReport(version_dir, models_dir, names)
    predicted = pd.DataFrame(index=history.index)
    live_predictions = pd.DataFrame(index=live.index)
    plans = {
        target: walk_forward_chunks(history[ERA_COLUMN].unique(), chunk_eras, purge_eras_for(target))
        for target in targets
    }
    total = sum(len(chunks) + 1 for chunks in plans.values())
    for target, name in zip(targets, names, strict=True):
        raw = np.full(len(history), np.nan)
        for train_eras, chunk in plans[target]:
            report_progress("training benchmark models", report.fits, total)
            model = _fit(history[history[ERA_COLUMN].isin(train_eras)], features, target, params)
            rows = np.flatnonzero(history[ERA_COLUMN].isin(chunk).to_numpy())
            raw[rows] = model.predict(history.iloc[rows][features].to_numpy(np.float32))
            report.fits += 1
        report_progress("training benchmark models", report.fits, total)
        final = _fit(history, features, target, params)
        report.fits += 1
        final.booster_.save_model(str(models_dir / f"{name}.txt"))
        known = ~np.isnan(raw)
        predicted[name] = np.nan
        predicted.loc[known, name] = _ranked(history[known], raw[known])
        live_predictions[name] = _ranked(live, final.predict(live[features].to_numpy(np.float32)))
    report_progress("training benchmark models", total, total)
    (models_dir / "features.json").write_text(json.dumps({"features": features, "benchmarks": names}))
    bundle = {name: (models_dir / f"{name}.txt").read_text() for name in names}
    (Path(private_dir) / BUNDLE_FILE).write_text(json.dumps({"features": features, "models": bundle}))
    predicted[ERA_COLUMN] = history[ERA_COLUMN]
    covered = predicted[names].notna().all(axis=1)
    for split in ("train", "validation"):
        rows = predicted[covered & (history["data_type"] == split).to_numpy()]
        report.rows[FILES[split]] = _write(version_dir / FILES[split], rows, names)
    live_predictions[ERA_COLUMN] = live[ERA_COLUMN]
    report.rows[FILES["live"]] = _write(version_dir / FILES["live"], live_predictions, names)
    return report


def predict_live(models_dir: str | Path, live: pd.DataFrame) -> pd.DataFrame:
    """Return the saved benchmark models' predictions for a live frame (index id; era + one column each)."""
    models_dir = Path(models_dir)
    saved: Mapping[str, list[str]] = json.loads((models_dir / "features.json").read_text())
    models = {name: (models_dir / f"{name}.txt").read_text() for name in saved["benchmarks"]}
    return predict_live_bundle({"features": saved["features"], "models": models}, live)


def predict_live_bundle(bundle: Mapping, live: pd.DataFrame) -> pd.DataFrame:
    """Return a ``benchmark_models.json`` bundle's predictions for a live frame (index id; era + one each)."""
    import lightgbm

    out = pd.DataFrame({ERA_COLUMN: live[ERA_COLUMN]}, index=live.index)
    matrix = live[list(bundle["features"])].to_numpy(np.float32)
    for name, text in bundle["models"].items():
        out[name] = _ranked(live, lightgbm.Booster(model_str=text).predict(matrix))
    return out
