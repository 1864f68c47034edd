"""``crowdalpha market synth`` and ``crowdalpha market sample``: make a synthetic market with known
hidden alpha, or write a real market sample shipped with the package."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from crowdalpha.commands.market import market_app
from crowdalpha.market.samples import SampleError, available_samples, load_sample, write_sample
from crowdalpha.market.synthetic import generate_market, truth_paths, write_market


class MarketKind(StrEnum):
    """The kinds of synthetic market."""

    equity = "equity"
    crypto = "crypto"


def _fail(problem: object) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {escape(str(problem))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _check_output(out: Path, suffixes: tuple[str, ...]) -> None:
    if out.suffix.lower() not in suffixes:
        raise ValueError(f"--out {out} must end in {' or '.join(suffixes)}")
    if out.is_dir():
        raise ValueError(f"--out {out} is a directory, not a file")


@market_app.command("synth")
def synth_command(
    assets: int = typer.Option(
        2000,
        "--assets",
        help="Assets listed on each date (a delisted asset is replaced the next business day).",
    ),
    days: int = typer.Option(3000, "--days", help="Number of business days of history."),
    seed: int = typer.Option(
        7, "--seed", help="Random seed; the same seed and arguments give the same bytes."
    ),
    kind: MarketKind = typer.Option(
        MarketKind.equity, "--kind", help="equity: stocks in 13 countries and 11 sectors; crypto: tokens."
    ),
    start: str = typer.Option(
        "2012-01-02", "--start", help="First date, YYYY-MM-DD (moved to a business day)."
    ),
    n_raw_features: int = typer.Option(120, "--features", help="Number of raw_* feature columns."),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Parquet file for the panel; the ground truth goes beside it (<stem>.truth.parquet, .json).",
    ),
) -> None:
    """Generate a synthetic market panel with hidden alpha, and its ground truth."""
    errors = Console(stderr=True)
    try:
        _check_output(out, (".parquet",))
        out.parent.mkdir(parents=True, exist_ok=True)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=errors,
            transient=True,
            disable=not errors.is_terminal,
        ) as progress:
            generating = progress.add_task("generating", total=None)
            market = generate_market(
                assets,
                days,
                seed,
                kind.value,
                start,
                n_raw_features,
                progress=lambda done, total: progress.update(generating, completed=done, total=total),
            )
            writing = progress.add_task("writing", total=None)
            write_market(
                market,
                out,
                progress=lambda done, total: progress.update(writing, completed=done, total=total),
            )
    except ValueError as problem:
        raise _fail(problem) from None
    except OSError as problem:
        raise _fail(f"cannot write {out}: {problem.strerror or problem}") from None
    panel = market.panel
    truth_parquet, truth_json = truth_paths(out)
    typer.echo(
        f"wrote {out}: {len(panel):,} rows, {panel['asset'].nunique():,} assets, "
        f"{panel['date'].nunique():,} dates, {n_raw_features} raw_* features; "
        f"truth in {truth_parquet.name} and {truth_json.name}"
    )


@market_app.command("sample")
def sample_command(
    name: str = typer.Argument(..., help=f"Sample to write: {', '.join(available_samples())}."),
    out: Path = typer.Option(..., "--out", "-o", help="File to write the panel to (.parquet or .csv)."),
) -> None:
    """Write a real market sample shipped with crowdalpha (see its provenance note)."""
    try:
        _check_output(out, (".parquet", ".csv"))
        out.parent.mkdir(parents=True, exist_ok=True)
        write_sample(name, out)
        panel = load_sample(name)
    except (SampleError, ValueError) as problem:
        raise _fail(problem) from None
    except OSError as problem:
        raise _fail(f"cannot write {out}: {problem.strerror or problem}") from None
    typer.echo(
        f"wrote {out}: {len(panel):,} rows, {panel['asset'].nunique():,} assets, "
        f"{panel['date'].nunique():,} dates ({panel['date'].min():%Y-%m-%d} … {panel['date'].max():%Y-%m-%d})"
    )
