"""``crowdalpha dataset …``: build the dataset products from a market panel; publish a built version."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from crowdalpha.commands._operator import HOME_OPTION, JSON_OPTION, emit, home_context, operator_errors
from crowdalpha.commands._progress import stage_bars
from crowdalpha.datasets.classic import DEFAULT_VALIDATION_FRACTION, BuildReport, build_classic
from crowdalpha.datasets.crypto import CryptoBuildReport, build_crypto
from crowdalpha.datasets.errors import DatasetError, rule_error
from crowdalpha.datasets.signals import SignalsBuildReport, build_signals
from crowdalpha.market.loaders import read_panel
from crowdalpha.market.panel import PanelError
from crowdalpha.service import publish_dataset

dataset_app = typer.Typer(
    help="Dataset products: build Classic, Signals and Crypto data from a market panel.",
    no_args_is_help=True,
)

TOURNAMENTS = ("classic", "signals", "crypto")


def read_secret_file(path: Path) -> bytes:
    """Return the operator secret stored in ``path`` (surrounding whitespace stripped)."""
    try:
        secret = path.read_bytes().strip()
    except OSError as error:
        raise rule_error("the secret file must be readable", f"{path}: {error.strerror or error}") from None
    if not secret:
        raise rule_error("the secret file must not be empty", f"{path} is empty")
    return secret


def _render_signals(console: Console, report: SignalsBuildReport) -> None:
    table = Table(title=f"Signals {report.version} → {report.version_dir}")
    for column in ("split", "dates", "rows"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, dates in report.dates.items():
        table.add_row(split, str(dates), f"{report.rows.get(split, 0):,}")
    console.print(table)
    console.print(
        f"{len(report.features)} features, targets {report.targets}, {len(report.neutralizers)} "
        f"neutralisers; embargo {report.embargo_eras} eras; live date {report.live_date}."
    )
    if report.private_dir is not None:
        console.print(f"private files (never publish): {report.private_dir}")


def _render_crypto(console: Console, report: CryptoBuildReport) -> None:
    console.print(
        f"Crypto {report.version} → {report.version_dir}: {report.dates} dates, {report.rows:,} rows, "
        f"{len(report.features)} features; live universe of {report.live_symbols} symbols on "
        f"{report.live_date}."
    )
    reasons = report.live_universe["reason"].value_counts()
    table = Table(title="Live universe: why tokens were kept or dropped")
    table.add_column("reason")
    table.add_column("tokens", justify="right")
    for reason, count in reasons.items():
        table.add_row(str(reason), str(count))
    console.print(table)


def _render(console: Console, report: BuildReport) -> None:
    table = Table(title=f"Classic {report.version} → {report.version_dir}")
    for column in ("split", "eras", "rows", "file bytes"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split in ("train", "validation", "live"):
        size = report.files.get(f"{split}.parquet", 0)
        table.add_row(split, str(report.eras[split]), f"{report.rows[split]:,}", f"{size:,}")
    console.print(table)
    console.print(
        f"{report.features} features ({report.new_features} new), targets {report.targets}; "
        f"embargo {report.embargo_eras} eras for {report.horizon_days}-day targets; "
        f"{report.eras['unresolved']} unresolved era(s) not published; live era {report.live_era}."
    )
    console.print(f"private maps (never publish): {report.private_dir}")


@dataset_app.command("build")
def build_command(
    market: Path = typer.Option(
        ..., "--market", help="Market panel (Parquet or CSV) in the crowdalpha contract."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Datasets directory; the version is written to OUT/VERSION/."
    ),
    version: str = typer.Option("v1.0", "--version", help="Version name vMAJOR.MINOR."),
    secret_file: Path | None = typer.Option(
        None, "--secret-file", help="File holding the operator secret (≥ 16 bytes); required for classic."
    ),
    private_dir: Path | None = typer.Option(
        None,
        "--private-dir",
        help="Where the private id/asset and feature-name maps go (default: OUT-private). Never publish it.",
    ),
    tournament: str = typer.Option("classic", "--tournament", help="classic, signals or crypto."),
    base: Path | None = typer.Option(
        None, "--base", help="Minor version: the base version directory (e.g. OUT/v1.0); adds columns only."
    ),
    validation_fraction: float = typer.Option(
        DEFAULT_VALIDATION_FRACTION, "--validation-fraction", help="Share of resolved eras in validation."
    ),
    embargo_eras: int | None = typer.Option(
        None, "--embargo-eras", help="Eras left out between train and validation (default: target horizon)."
    ),
) -> None:
    """Build a dataset version from a market panel: obfuscated, era-based, in Numerai's file layout."""
    errors = Console(stderr=True)
    if tournament not in TOURNAMENTS:
        typer.echo(
            f"error: rule: --tournament is one of {', '.join(TOURNAMENTS)} — got {tournament!r}", err=True
        )
        raise typer.Exit(code=2)
    if tournament == "classic" and secret_file is None:
        typer.echo("error: rule: --secret-file is required for the classic tournament", err=True)
        raise typer.Exit(code=2)
    private = private_dir if private_dir is not None else out.parent / f"{out.name}-private"
    try:
        secret = read_secret_file(secret_file) if secret_file is not None else b""
        with stage_bars(errors) as bars:
            bars("read and validate panel", 0, None)
            panel = read_panel(market)
            bars("read and validate panel", 1, 1)
            if tournament == "signals":
                report = build_signals(
                    panel,
                    out,
                    version=version,
                    private_dir=private,
                    validation_fraction=validation_fraction,
                    embargo_eras=embargo_eras,
                    progress=bars,
                )
            elif tournament == "crypto":
                report = build_crypto(panel, out, version=version, private_dir=private, progress=bars)
            else:
                report = build_classic(
                    panel,
                    out,
                    version=version,
                    secret=secret,
                    private_dir=private,
                    validation_fraction=validation_fraction,
                    embargo_eras=embargo_eras,
                    base_version_dir=base,
                    panel_validated=True,
                    progress=bars,
                )
    except (DatasetError, PanelError) as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(code=2) from None
    renderers = {"classic": _render, "signals": _render_signals, "crypto": _render_crypto}
    renderers[tournament](Console(), report)


@dataset_app.command("publish")
def publish_command(
    directory: Path = typer.Argument(..., help="A built version directory, e.g. datasets/v1.0."),
    tournament: str = typer.Option("classic", "--tournament", help="classic, signals or crypto."),
    private: Path | None = typer.Option(
        None,
        "--private",
        help="The build's private directory (PRIVATE_DIR or PRIVATE_DIR/<version>): id maps and manifest,"
        " stored privately so the server can score rounds; never served.",
    ),
    secret_file: Path | None = typer.Option(
        None,
        "--secret-file",
        help="The operator secret the version was built with (with --private): each round then gets a"
        " fresh Classic live file from the market store, with fresh ids.",
    ),
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a built dataset version: copy its files to the home's blob store, record sizes, SHA-256."""
    with operator_errors():
        secret = read_secret_file(secret_file) if secret_file is not None else None
        with home_context(home) as ctx:
            published = publish_dataset(ctx, directory, tournament, private_dir=private, secret=secret)
    lines = [f"published {published.tournament} {published.version}:"]
    lines += [f"  {item.name}  {item.size_bytes:,} bytes  sha256 {item.sha256}" for item in published.files]
    lines += [f"  {name}  (private, never served)" for name in published.private_files]
    emit(published, as_json, "\n".join(lines))
