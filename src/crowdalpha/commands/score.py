"""``crowdalpha score``: a participant's local diagnostics on a Numerai-format data file."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from crowdalpha.scoring import ScoringError, score_eras, summarize_scores
from crowdalpha.scoring.eras import SCORE_ORDER, SUMMARY_STATISTICS

ID_COLUMN = "id"
ERA_COLUMN = "era"
NON_PREDICTION_COLUMNS = {ERA_COLUMN, "data_type", ID_COLUMN}
META_MODEL_COLUMN = "numerai_meta_model"


class InputProblem(Exception):
    """A user-supplied file is unusable; the message says which file and which rule."""


def _read_table(path: Path, what: str, columns: list[str] | None = None) -> pd.DataFrame:
    if not path.exists():
        raise InputProblem(f"{what} file {path} does not exist")
    if path.is_dir():
        raise InputProblem(f"{what} path {path} is a directory, not a file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path, columns=columns)
        elif suffix in (".csv", ".gz", ".txt"):
            frame = pd.read_csv(path, usecols=columns)
        else:
            raise InputProblem(f"{what} file {path} must be .csv or .parquet")
    except InputProblem:
        raise
    except (ValueError, OSError, KeyError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputProblem(f"cannot read {what} file {path}: {message}") from None
    if frame.empty:
        raise InputProblem(f"{what} file {path} has no rows")
    return _with_id_index(frame, path, what)


def _with_id_index(frame: pd.DataFrame, path: Path, what: str) -> pd.DataFrame:
    if ID_COLUMN in frame.columns:
        frame = frame.set_index(ID_COLUMN)
    elif frame.index.name != ID_COLUMN:
        raise InputProblem(f"{what} file {path} has no '{ID_COLUMN}' column or index")
    frame.index = frame.index.astype(str)
    if not frame.index.is_unique:
        duplicated = frame.index[frame.index.duplicated()][:3].tolist()
        raise InputProblem(f"{what} file {path} has duplicate ids, e.g. {duplicated}")
    return frame


def _parquet_columns(path: Path) -> list[str] | None:
    if path.suffix.lower() != ".parquet" or not path.exists():
        return None
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except (OSError, ValueError) as error:
        raise InputProblem(f"cannot read data file {path}: {error}") from None


def _feature_columns(spec: str | None, data: Path, available: list[str] | None) -> list[str]:
    if not spec:
        return []
    if spec == "all":
        if available is None:
            return []
        return [column for column in available if column.startswith("feature_")]
    features_json = data.parent / "features.json"
    if "," not in spec and not spec.startswith("feature_"):
        if not features_json.exists():
            raise InputProblem(f"feature set {spec!r} needs {features_json} (or pass 'all' or column names)")
        try:
            sets = json.loads(features_json.read_text())["feature_sets"]
        except (ValueError, KeyError) as error:
            raise InputProblem(f"{features_json} has no readable 'feature_sets': {error}") from None
        if spec not in sets:
            raise InputProblem(f"feature set {spec!r} not in {features_json}; known: {sorted(sets)}")
        return list(sets[spec])
    return [name.strip() for name in spec.split(",") if name.strip()]


def _prediction_columns(predictions: pd.DataFrame, path: Path) -> list[str]:
    columns = [c for c in predictions.columns if c not in NON_PREDICTION_COLUMNS]
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(predictions[c])]
    if not numeric:
        raise InputProblem(f"predictions file {path} has no numeric prediction column")
    for column in numeric:
        values = predictions[column].to_numpy(dtype=np.float64)
        if np.isnan(values).all():
            raise InputProblem(f"predictions column {column!r} is empty")
        if np.nanstd(values) == 0:
            raise InputProblem(f"predictions column {column!r} is constant (rule: predictions must vary)")
    return numeric


def load_inputs(
    predictions_path: Path,
    data_path: Path,
    target: str,
    features_spec: str | None,
    meta_model_path: Path | None,
    benchmark_path: Path | None,
    benchmark_column: str | None,
) -> tuple[pd.DataFrame, list[str], list[str], str | None, str | None]:
    """Return (joined frame, prediction columns, feature columns, meta column, benchmark column)."""
    predictions = _read_table(predictions_path, "predictions")
    prediction_cols = _prediction_columns(predictions, predictions_path)
    available = _parquet_columns(data_path)
    features = _feature_columns(features_spec, data_path, available)
    wanted = [ERA_COLUMN, target, *features]
    if available is not None:
        missing = [c for c in wanted if c not in available]
        if missing:
            raise InputProblem(f"data file {data_path} is missing column(s) {missing[:5]}")
        wanted = wanted + ([ID_COLUMN] if ID_COLUMN in available else [])
    data = _read_table(data_path, "data", columns=wanted if available is not None else None)
    missing = [c for c in (ERA_COLUMN, target, *features) if c not in data.columns]
    if missing:
        raise InputProblem(f"data file {data_path} is missing column(s) {missing[:5]}")
    joined = data[[ERA_COLUMN, target, *features]].join(
        predictions[prediction_cols].rename(columns=lambda c: f"prediction:{c}"), how="inner"
    )
    if joined.empty:
        raise InputProblem(f"no overlap: none of the {len(predictions)} prediction ids appear in {data_path}")
    meta_col = benchmark_col = None
    if meta_model_path is not None:
        meta = _read_table(meta_model_path, "meta model")
        meta_source = META_MODEL_COLUMN if META_MODEL_COLUMN in meta.columns else None
        meta_source = meta_source or _single_numeric(meta, meta_model_path, "meta model")
        meta_col = "reference:meta_model"
        joined[meta_col] = meta[meta_source].reindex(joined.index)
        if joined[meta_col].isna().all():
            raise InputProblem(f"no overlap: the meta model in {meta_model_path} has none of the ids")
    if benchmark_path is not None:
        bench = _read_table(benchmark_path, "benchmark")
        source = benchmark_column or _single_numeric(bench, benchmark_path, "benchmark")
        if source not in bench.columns:
            raise InputProblem(f"benchmark file {benchmark_path} has no column {source!r}")
        benchmark_col = "reference:benchmark"
        joined[benchmark_col] = bench[source].reindex(joined.index)
    return joined, prediction_cols, features, meta_col, benchmark_col


def _single_numeric(frame: pd.DataFrame, path: Path, what: str) -> str:
    numeric = [
        c
        for c in frame.columns
        if c not in NON_PREDICTION_COLUMNS and pd.api.types.is_numeric_dtype(frame[c])
    ]
    if not numeric:
        raise InputProblem(f"{what} file {path} has no numeric column")
    return numeric[0]


def _finite(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _render(console: Console, per_era: pd.DataFrame, summary: pd.DataFrame) -> None:
    models = list(per_era.columns)
    wide = per_era.unstack("score")
    present = set(per_era.index.get_level_values("score"))
    scores = [s for s in SCORE_ORDER if s in present]
    table = Table(title="Per-era scores", show_lines=False)
    table.add_column("era")
    for model in models:
        for score in scores:
            table.add_column(score if len(models) == 1 else f"{model}\n{score}", justify="right")
    for era, row in wide.iterrows():
        cells = []
        for model in models:
            for score in scores:
                value = row.get((model, score), np.nan)
                cells.append("" if pd.isna(value) else f"{value:+.4f}")
        table.add_row(str(era), *cells)
    console.print(table)
    summary_table = Table(title="Summary (std ddof 0; max drawdown of the cumulative score)")
    if len(models) > 1:
        summary_table.add_column("model")
    summary_table.add_column("score")
    for statistic in SUMMARY_STATISTICS:
        summary_table.add_column(statistic, justify="right")
    for (model, score), row in summary.iterrows():
        cells = [
            str(int(row[s])) if s == "eras" else ("" if pd.isna(row[s]) else f"{row[s]:+.4f}")
            for s in SUMMARY_STATISTICS
        ]
        summary_table.add_row(*([str(model)] if len(models) > 1 else []), score, *cells)
    console.print(summary_table)


def _plot(per_era: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wide = per_era.unstack("score")
    present = set(per_era.index.get_level_values("score"))
    scores = [s for s in ("corr", "mmc", "bmc", "fnc") if s in present]
    figure, axes = plt.subplots(len(scores), 1, figsize=(10, 3.2 * len(scores)), squeeze=False)
    for axis, score in zip(axes[:, 0], scores, strict=True):
        for model in per_era.columns:
            series = wide[(model, score)].fillna(0.0).cumsum()
            axis.plot(range(len(series)), series.to_numpy(), label=str(model))
        axis.set_title(f"cumulative {score.upper()}")
        axis.set_xlabel("era")
        axis.axhline(0.0, color="grey", linewidth=0.6)
        ticks = np.linspace(0, len(wide) - 1, min(8, len(wide))).astype(int)
        axis.set_xticks(ticks, [str(wide.index[i]) for i in ticks])
        if len(per_era.columns) > 1:
            axis.legend(loc="best", fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def score_command(
    predictions: Path = typer.Argument(
        ..., help="CSV or Parquet with an 'id' column (or index) and one or more prediction columns."
    ),
    data: Path = typer.Option(
        ..., "--data", help="Numerai-format data (e.g. validation.parquet) with era and target."
    ),
    meta_model: Path | None = typer.Option(
        None, "--meta-model", help="meta_model.parquet: adds MMC and CWMM where it covers an era."
    ),
    features: str | None = typer.Option(
        None,
        "--features",
        help="Feature set from features.json beside --data (e.g. small), 'all', or col1,col2: adds "
        "FNC and feature exposure.",
    ),
    benchmark: Path | None = typer.Option(
        None, "--benchmark", help="Benchmark model predictions (id + columns): adds BMC."
    ),
    benchmark_column: str | None = typer.Option(
        None, "--benchmark-column", help="Column of --benchmark to use (default: the first)."
    ),
    target: str = typer.Option("target", "--target", help="Target column of --data."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (per_era and summary) instead."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a cumulative-score chart (PNG)."),
) -> None:
    """Score predictions era by era: CORR, and MMC/CWMM/BMC/FNC when given what they need."""
    console = Console()
    errors = Console(stderr=True)
    try:
        frame, prediction_cols, feature_cols, meta_col, benchmark_col = load_inputs(
            predictions, data, target, features, meta_model, benchmark, benchmark_column
        )
        columns = [f"prediction:{c}" for c in prediction_cols]
        with Progress(
            TextColumn("scoring eras"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=errors,
            transient=True,
            disable=as_json or not errors.is_terminal,
        ) as progress:
            task = progress.add_task("score", total=None)
            per_era = score_eras(
                frame,
                ERA_COLUMN,
                columns,
                target,
                meta_model_col=meta_col,
                benchmark_col=benchmark_col,
                features=feature_cols or None,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        per_era.columns = prediction_cols
        summary = summarize_scores(per_era)
    except (InputProblem, ScoringError) as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(code=2) from None
    if plot is not None:
        _plot(per_era, plot)
    if as_json:
        payload = {
            "per_era": [
                {"era": str(era), "score": score, **{m: _finite(float(v)) for m, v in row.items()}}
                for (era, score), row in per_era.iterrows()
            ],
            "summary": [
                {"model": model, "score": score, **{k: _finite(float(v)) for k, v in row.items()}}
                for (model, score), row in summary.iterrows()
            ],
        }
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    _render(console, per_era, summary)
    if plot is not None:
        console.print(f"chart written to {plot}")
