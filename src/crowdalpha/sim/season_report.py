"""The season report: ``report.html`` with PNG charts, the leaderboard, the ledger and integrity checks.

Charts (matplotlib, drawn on ``matplotlib.figure.Figure`` with the Agg canvas, so no display or
global pyplot state is needed): cumulative CORR and MMC per model, the meta model against the
models round by round, payouts and burns per resolved round, and the token supply over the
season. Callers add their own sections through ``extra_sections`` — a list of
:class:`ReportSection` (title, HTML body, PNG paths) appended after the built-in ones (the fund's
backtest plugs in here).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from crowdalpha.ledger.amounts import NANO_PER_TOKEN
from crowdalpha.service import LedgerReport
from crowdalpha.sim.integrity import IntegrityCheck
from crowdalpha.sim.report import LeaderboardRow, SeasonFigures, round_scores, scored_models
from crowdalpha.sim.season import SeasonLog

REPORT_FILE = "report.html"
CHART_SCORES: Mapping[str, tuple[str, str]] = {
    "classic": ("corr20v2", "mmc"),
    "signals": ("corr_v4", "mmc"),
    "crypto": ("corr20", "mmc"),
}
"""tournament → (CORR score, MMC score) the charts draw."""


@dataclass(frozen=True)
class ReportSection:
    """An extra section of the report: its title, an HTML body, and PNG files shown under it."""

    title: str
    html: str
    images: Sequence[Path] = ()


@dataclass
class SeasonReportInputs:
    """Everything the report shows."""

    title: str
    figures: SeasonFigures
    log: SeasonLog
    ledger: LedgerReport
    leaderboards: Mapping[str, list[LeaderboardRow]]
    integrity: Mapping[str, Sequence[IntegrityCheck]] = field(default_factory=dict)
    """tournament → its integrity checks."""
    counterfactual: pd.DataFrame | None = None
    """Season totals per model and payout variant (nano-tokens), from ``counterfactual_totals``."""
    meta_model: Mapping[str, str] = field(default_factory=dict)
    """tournament → name of the model whose scores are the meta model's (the copycat)."""
    extra_sections: Sequence[ReportSection | tuple[str, str, Sequence[Path]]] = ()
    """Sections appended after the built-in ones (the hook for e.g. the fund's backtest)."""


def _figure(width: float = 8.0, height: float = 4.2):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    return figure, figure.add_subplot()


def _save(figure, path: Path) -> Path:
    from matplotlib.ticker import MaxNLocator

    for axes in figure.axes:
        if axes.get_xlabel() == "round":
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # round numbers, never 5357.5
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def cumulative_score_chart(figures: SeasonFigures, tournament: str, score: str, path: Path) -> Path | None:
    """Draw each model's cumulative ``score`` over its rounds (latest day per round) to ``path``."""
    models = scored_models(figures, tournament)
    series = {model: round_scores(figures, tournament, score, model) for model in models}
    series = {model: values for model, values in series.items() if values}
    if not series:
        return None
    figure, axes = _figure()
    for model, values in series.items():
        axes.plot(list(values), np.cumsum(list(values.values())), marker=".", label=model)
    axes.axhline(0.0, color="grey", linewidth=0.8)
    axes.set(
        xlabel="round", ylabel=f"cumulative {score}", title=f"{tournament}: cumulative {score} per model"
    )
    axes.legend(fontsize="small", ncol=2)
    return _save(figure, path)


def meta_model_chart(
    figures: SeasonFigures, tournament: str, score: str, meta_model: str, path: Path
) -> Path | None:
    """Draw the meta model's ``score`` per round (thick) against every other model's (thin) to ``path``."""
    meta = round_scores(figures, tournament, score, meta_model)
    if not meta:
        return None
    figure, axes = _figure()
    for model in scored_models(figures, tournament):
        values = round_scores(figures, tournament, score, model)
        if model != meta_model and values:
            axes.plot(list(values), list(values.values()), color="tab:grey", linewidth=0.8, alpha=0.6)
    axes.plot(list(meta), list(meta.values()), color="tab:red", linewidth=2.5, label="meta model")
    axes.axhline(0.0, color="black", linewidth=0.6)
    axes.set(xlabel="round", ylabel=score, title=f"{tournament}: meta model vs models ({score} per round)")
    axes.legend()
    return _save(figure, path)


def payouts_chart(figures: SeasonFigures, tournament: str, path: Path) -> Path | None:
    """Draw tokens paid and burned per resolved round to ``path``."""
    rounds: dict[int, list[int]] = {}
    for (name, number, _), nano in figures.payouts.items():
        if name == tournament:
            rounds.setdefault(number, []).append(nano)
    if not rounds:
        return None
    numbers = sorted(rounds)
    paid = [sum(n for n in rounds[r] if n > 0) / NANO_PER_TOKEN for r in numbers]
    burned = [sum(n for n in rounds[r] if n < 0) / NANO_PER_TOKEN for r in numbers]
    figure, axes = _figure()
    axes.bar(numbers, paid, color="tab:green", label="paid")
    axes.bar(numbers, burned, color="tab:red", label="burned")
    axes.axhline(0.0, color="black", linewidth=0.6)
    axes.set(xlabel="round", ylabel="tokens", title=f"{tournament}: payouts and burns per resolved round")
    axes.legend()
    return _save(figure, path)


def supply_chart(log: SeasonLog, path: Path) -> Path | None:
    """Draw the circulating supply, the tokens staked and the treasury at each season day to ``path``."""
    days = [day for day in log.days if day.supply is not None]
    if not days:
        return None
    dates = [day.market_date for day in days]
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8.0, 5.5), dpi=100)
    top = figure.add_subplot(2, 1, 1)
    bottom = figure.add_subplot(2, 1, 2)
    top.plot(
        dates, [d.supply.circulating / NANO_PER_TOKEN for d in days], label="circulating (minted − burned)"
    )
    top.plot(dates, [d.supply.treasury / NANO_PER_TOKEN for d in days], label="treasury")
    top.set(ylabel="tokens", title="token supply over the season")
    top.ticklabel_format(axis="y", useOffset=False, style="plain")
    top.legend(fontsize="small")
    bottom.plot(dates, [d.supply.staked / NANO_PER_TOKEN for d in days], color="tab:purple", label="staked")
    bottom.plot(dates, [d.supply.burned / NANO_PER_TOKEN for d in days], color="tab:red", label="burned")
    bottom.set(xlabel="market date", ylabel="tokens")
    bottom.legend(fontsize="small")
    figure.autofmt_xdate()
    return _save(figure, path)


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(classes="figures", border=0, escape=True, na_rep="—")


def _leaderboard_html(rows: list[LeaderboardRow]) -> str:
    frame = pd.DataFrame(
        [
            {
                "model": row.model,
                "resolved rounds": row.resolved_rounds,
                "mean CORR": f"{row.mean_corr:+.4f}",
                "mean MMC": f"{row.mean_mmc:+.4f}",
                "stake now": f"{row.stake_nano / NANO_PER_TOKEN:,.2f}",
                "total payout": f"{row.payout_nano / NANO_PER_TOKEN:+,.2f}",
            }
            for row in rows
        ]
    )
    return _table(frame) if len(frame) else "<p>no model has a score yet</p>"


def _ledger_html(ledger: LedgerReport) -> str:
    totals = ledger.totals
    state = "ok" if ledger.ok else f"{len(ledger.breaks)} breaks"
    items = [
        ("check", state),
        ("transactions", f"{ledger.transactions:,}"),
        ("entries", f"{ledger.entries:,}"),
        ("cap", f"{totals.cap / NANO_PER_TOKEN:,.2f}"),
        ("minted", f"{totals.minted / NANO_PER_TOKEN:,.2f}"),
        ("burned", f"{totals.burned / NANO_PER_TOKEN:,.2f}"),
        ("treasury", f"{totals.treasury / NANO_PER_TOKEN:,.2f}"),
        ("circulating", f"{totals.circulating / NANO_PER_TOKEN:,.2f}"),
    ]
    return _table(pd.DataFrame(items, columns=["", "tokens / count"]).set_index(""))


def _integrity_html(checks: Mapping[str, Sequence[IntegrityCheck]]) -> str:
    rows = "".join(
        f'<tr class="{_verdict(c.passed)}"><td>{_verdict(c.passed)}</td><td>{html.escape(tournament)}</td>'
        f"<td>{html.escape(c.claim)}</td><td>{html.escape(c.detail)}</td></tr>"
        for tournament, items in checks.items()
        for c in items
    )
    header = "<tr><th>result</th><th>tournament</th><th>claim</th><th>figures</th></tr>"
    return f'<table class="figures">{header}{rows}</table>'


def _verdict(passed: bool | None) -> str:
    return "not measured" if passed is None else ("pass" if passed else "fail")


def _counterfactual_html(totals: pd.DataFrame) -> str:
    tokens = (totals / NANO_PER_TOKEN).map(lambda value: f"{value:+,.2f}")
    tokens.columns = [column.removeprefix("payout_") for column in tokens.columns]
    return (
        "<p>The season's final scores re-paid under each payout rule (tokens; − burned). "
        "<em>actual</em> is the tournament's own rule and matches the ledger.</p>" + _table(tokens)
    )


def _images(paths: Sequence[Path], directory: Path) -> str:
    sources = [path.relative_to(directory) if path.is_relative_to(directory) else path for path in paths]
    return "".join(
        f'<img src="{html.escape(source.as_posix())}" alt="{html.escape(source.stem)}">' for source in sources
    )


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table.figures { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
table.figures td, table.figures th {
  border-bottom: 1px solid #ddd; padding: 0.25em 0.7em; text-align: right;
}
tr.pass td:first-child { color: #137333; font-weight: bold; }
tr.fail td:first-child { color: #b3261e; font-weight: bold; }
img { max-width: 100%; display: block; margin: 0.5em 0 1.5em; }
"""


def write_season_report(directory: str | Path, inputs: SeasonReportInputs) -> Path:
    """Write ``report.html`` and its PNG charts into ``directory``; return the HTML file's path."""
    directory = Path(directory)
    charts = directory / "charts"
    charts.mkdir(parents=True, exist_ok=True)
    sections: list[ReportSection] = []
    days = inputs.log.days
    span = f"{days[0].market_date} … {days[-1].market_date}, {len(days)} trading days" if days else "no day"
    sections.append(ReportSection("Season", f"<p>{html.escape(span)}</p>"))
    for tournament, rows in inputs.leaderboards.items():
        sections.append(ReportSection(f"{tournament.capitalize()} leaderboard", _leaderboard_html(rows)))
    sections.append(ReportSection("Ledger", _ledger_html(inputs.ledger)))
    if inputs.integrity:
        sections.append(ReportSection("Integrity checks", _integrity_html(inputs.integrity)))
    if inputs.counterfactual is not None and len(inputs.counterfactual):
        sections.append(ReportSection("Counterfactual payouts", _counterfactual_html(inputs.counterfactual)))
    for tournament, (corr, mmc) in CHART_SCORES.items():
        drawn = [
            cumulative_score_chart(
                inputs.figures, tournament, corr, charts / f"{tournament}_cumulative_{corr}.png"
            ),
            cumulative_score_chart(
                inputs.figures, tournament, mmc, charts / f"{tournament}_cumulative_{mmc}.png"
            ),
        ]
        if tournament in inputs.meta_model:
            drawn.append(
                meta_model_chart(
                    inputs.figures,
                    tournament,
                    corr,
                    inputs.meta_model[tournament],
                    charts / f"{tournament}_meta_model.png",
                )
            )
        drawn.append(payouts_chart(inputs.figures, tournament, charts / f"{tournament}_payouts.png"))
        images = [path for path in drawn if path is not None]
        if images:
            sections.append(ReportSection(f"{tournament.capitalize()} charts", "", images))
    supply = supply_chart(inputs.log, charts / "token_supply.png")
    if supply is not None:
        sections.append(ReportSection("Token supply", "", [supply]))
    # extra sections may come as ReportSection or as plain (title, html, [png paths]) tuples
    sections.extend(s if isinstance(s, ReportSection) else ReportSection(*s) for s in inputs.extra_sections)
    body = "".join(
        f"<section><h2>{html.escape(s.title)}</h2>{s.html}{_images(s.images, directory)}</section>"
        for s in sections
    )
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(inputs.title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(inputs.title)}</h1>{body}</body></html>"
    )
    path = directory / REPORT_FILE
    path.write_text(page, encoding="utf-8")
    return path
