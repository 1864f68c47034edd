"""``crowdalpha benchmarks train``: walk-forward LightGBM benchmark models for a built Classic version."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from crowdalpha.commands._progress import stage_bars
from crowdalpha.datasets.benchmark_models import (
    DEFAULT_CHUNK_ERAS,
    DEFAULT_FEATURE_SET,
    DEFAULT_TARGETS,
    LightGBMParams,
    train_benchmark_models,
)
from crowdalpha.datasets.errors import DatasetError

TARGET_HELP = f"Target to train a model on; repeatable (default: {', '.join(DEFAULT_TARGETS)})."

benchmarks_app = typer.Typer(help="Benchmark models: trained by the operator, published with the dataset.")


@benchmarks_app.command("train")
def train_command(
    version_dir: Path = typer.Argument(..., help="A built Classic version directory, e.g. datasets/v1.0."),
    tournament: str = typer.Option("classic", "--tournament", help="Only classic has benchmark models."),
    private_dir: Path | None = typer.Option(
        None, "--private-dir", help="The version's private directory (default: OUT-private/VERSION)."
    ),
    targets: list[str] | None = typer.Option(
        None,
        "--target",
        help=TARGET_HELP,
    ),
    feature_set: str = typer.Option(
        DEFAULT_FEATURE_SET, "--feature-set", help="Feature set of features.json."
    ),
    chunk_eras: int = typer.Option(
        DEFAULT_CHUNK_ERAS, "--chunk-eras", min=1, help="Eras per walk-forward chunk."
    ),
    n_estimators: int = typer.Option(
        LightGBMParams.n_estimators, "--n-estimators", min=1, help="Trees per model."
    ),
    learning_rate: float = typer.Option(
        LightGBMParams.learning_rate, "--learning-rate", help="LightGBM rate."
    ),
) -> None:
    """Train benchmark models walk-forward; write *_benchmark_models.parquet beside the version's data."""
    if tournament != "classic":
        typer.echo(
            f"error: rule: benchmark models exist for classic only — got --tournament {tournament}", err=True
        )
        raise typer.Exit(code=2)
    private = (
        private_dir or version_dir.parent.parent / f"{version_dir.parent.name}-private" / version_dir.name
    )
    params = LightGBMParams(n_estimators=n_estimators, learning_rate=learning_rate)
    try:
        with stage_bars(Console(stderr=True)) as bars:
            report = train_benchmark_models(
                version_dir,
                private,
                targets=tuple(targets or DEFAULT_TARGETS),
                feature_set=feature_set,
                chunk_eras=chunk_eras,
                params=params,
                progress=bars,
            )
    except (DatasetError, FileNotFoundError) as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(f"trained {', '.join(report.benchmarks)} ({report.fits} fits); models in {report.models_dir}")
    for name, rows in report.rows.items():
        typer.echo(f"  {version_dir / name}: {rows:,} rows")
