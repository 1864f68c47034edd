"""What a finished season leaves behind: its figures, checks, re-paid payouts, Parquet tables and report.

:func:`finish_season` is shared by ``crowdalpha demo`` and ``crowdalpha simulate``: it reads the
season's figures from the store, checks the ledger, ranks each tournament's models, runs the
integrity checks, re-pays the resolved rounds under the payout variants, writes every figure to
Parquet (:func:`write_season_tables`) and writes ``report.html`` with its charts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crowdalpha.service import Context, LedgerReport, check_ledger
from crowdalpha.sim.counterfactual import PayoutVariant, counterfactual_payouts, counterfactual_totals
from crowdalpha.sim.integrity import IntegrityCheck, integrity_checks
from crowdalpha.sim.participants import Participant
from crowdalpha.sim.report import LeaderboardRow, SeasonFigures, leaderboard, season_figures
from crowdalpha.sim.season import SeasonLog
from crowdalpha.sim.season_report import (
    CHART_SCORES,
    ReportSection,
    SeasonReportInputs,
    write_season_report,
)
from crowdalpha.tournament.config import TournamentConfig


@dataclass
class SeasonOutcome:
    """A finished season's figures, ledger check, leaderboards, checks, re-paid payouts and files."""

    figures: SeasonFigures
    ledger: LedgerReport
    leaderboards: dict[str, list[LeaderboardRow]]
    integrity: dict[str, list[IntegrityCheck]] = field(default_factory=dict)
    counterfactual: pd.DataFrame | None = None
    report: Path | None = None
    tables: dict[str, Path] = field(default_factory=dict)


def season_tables(
    figures: SeasonFigures, log: SeasonLog, counterfactual: pd.DataFrame | None
) -> dict[str, pd.DataFrame]:
    """Return every figure of the season as tables: scores, uploads, stakes, payouts, supply, meta model."""
    scores = pd.DataFrame(
        [(*key, value) for key, value in figures.scores.items()],
        columns=["tournament", "round", "model", "score", "day", "value"],
    )
    uploads = pd.DataFrame(
        [(*key, status) for key, status in figures.uploads.items()],
        columns=["tournament", "round", "model", "status"],
    )
    stakes = pd.DataFrame(
        [(*key, nano, figures.payouts.get(key)) for key, nano in figures.at_risk.items()],
        columns=["tournament", "round", "model", "at_risk_nano", "payout_nano"],
    ).astype({"payout_nano": "Int64"})
    rounds = pd.DataFrame(
        [(*key, state, len(figures.score_days.get(key, ()))) for key, state in figures.states.items()],
        columns=["tournament", "round", "state", "score_days"],
    )
    meta = stakes.groupby(["tournament", "round"], as_index=False).agg(
        contributors=("at_risk_nano", lambda values: int((values > 0).sum())),
        total_at_risk_nano=("at_risk_nano", "sum"),
    )
    supply = pd.DataFrame(
        [
            {
                "date": pd.Timestamp(day.market_date),
                "minted_nano": day.supply.minted,
                "burned_nano": day.supply.burned,
                "treasury_nano": day.supply.treasury,
                "staked_nano": day.supply.staked,
                "circulating_nano": day.supply.circulating,
                "uploads": day.uploads,
            }
            for day in log.days
            if day.supply is not None
        ]
    )
    tables = {
        "scores": scores,
        "uploads": uploads,
        "stakes": stakes,
        "rounds": rounds,
        "meta_model": meta,
        "supply": supply,
    }
    if counterfactual is not None:
        tables["counterfactual_payouts"] = counterfactual
    return tables


def write_season_tables(directory: Path, tables: Mapping[str, pd.DataFrame]) -> dict[str, Path]:
    """Write each table to ``directory/<name>.parquet`` (and the counterfactual payouts also as CSV)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, table in tables.items():
        path = directory / f"{name}.parquet"
        table.to_parquet(path, index=False)
        written[name] = path
    if "counterfactual_payouts" in tables:
        path = directory / "counterfactual_payouts.csv"
        tables["counterfactual_payouts"].to_csv(path, index=False)
        written["counterfactual_payouts_csv"] = path
    return written


def finish_season(
    ctx: Context,
    directory: Path,
    *,
    title: str,
    log: SeasonLog,
    crowd: Sequence[Participant],
    configs: Mapping[str, TournamentConfig],
    variants: Mapping[str, Sequence[PayoutVariant]] | None = None,
    extra_sections: Sequence[ReportSection] = (),
) -> SeasonOutcome:
    """Read, check, rank, re-pay and report the season in ``ctx``; write tables and report to ``directory``.

    ``variants`` are the payout rules each (ungated) tournament is re-paid under; ``extra_sections``
    are appended to the report after the built-in ones.
    """
    figures = season_figures(ctx)
    ledger = check_ledger(ctx)
    boards, checks, repaid = {}, {}, []
    for name, config in configs.items():
        corr, mmc = CHART_SCORES.get(name, CHART_SCORES["classic"])
        boards[name] = leaderboard(ctx, figures, config, corr=corr, mmc=mmc)
        checks[name] = integrity_checks(figures, crowd, config, corr=corr, mmc=mmc)
        if variants is not None and name in variants and not config.gates:
            repaid.append(counterfactual_payouts(figures, config, variants[name]))
    counterfactual = pd.concat(repaid, ignore_index=True) if repaid else None
    tables = write_season_tables(directory / "tables", season_tables(figures, log, counterfactual))
    copycats = {p.tournament: p.model for p in crowd if p.copies_meta_model}
    report = write_season_report(
        directory,
        SeasonReportInputs(
            title=title,
            figures=figures,
            log=log,
            ledger=ledger,
            leaderboards=boards,
            integrity=checks,
            counterfactual=None if counterfactual is None else counterfactual_totals(counterfactual),
            meta_model={t: m for t, m in copycats.items() if t in boards},
            extra_sections=extra_sections,
        ),
    )
    return SeasonOutcome(figures, ledger, boards, checks, counterfactual, report, tables)
