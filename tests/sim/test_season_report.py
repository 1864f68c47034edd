"""The season report and counterfactual payouts, on figures written out by hand."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from crowdalpha.ledger.invariants import SupplyTotals
from crowdalpha.service import LedgerReport
from crowdalpha.sim.counterfactual import counterfactual_payouts, counterfactual_totals, payout_variant
from crowdalpha.sim.integrity import integrity_checks
from crowdalpha.sim.participants import Participant
from crowdalpha.sim.report import SeasonFigures
from crowdalpha.sim.season import SeasonDay, SeasonLog, SupplySnapshot
from crowdalpha.sim.season_report import ReportSection, SeasonReportInputs, write_season_report
from crowdalpha.tournament.config import CLASSIC

NANO = 10**9
CROWD = [
    Participant("good", "classic", "ridge", 1000),
    Participant("poor", "classic", "contrarian", 1000),
    Participant("noise", "classic", "noise", 500),
    Participant("copycat", "classic", "copycat", late=True),
]
# (round, model) → (final CORR20v2, final MMC)
FINAL = {
    (1, "good"): (0.04, 0.010),
    (1, "poor"): (-0.04, -0.010),
    (1, "noise"): (0.003, 0.001),
    (1, "copycat"): (0.03, 0.0),
    (2, "good"): (0.06, 0.030),  # 0.5 · 0.06 + 2 · 0.03 = 0.09: clipped to 5 %
    (2, "poor"): (-0.02, -0.002),
    (2, "noise"): (-0.004, -0.001),
    (2, "copycat"): (0.02, 0.0),
}


def figures() -> SeasonFigures:
    """Return two resolved Classic rounds: a good, a poor and a noise model staked, the copycat late."""
    built = SeasonFigures()
    for number in (1, 2):
        built.states[("classic", number)] = "resolved"
        built.score_days[("classic", number)] = tuple(range(1, 21))
    for (number, model), (corr, mmc) in FINAL.items():
        built.uploads[("classic", number, model)] = "late" if model == "copycat" else "on_time"
        built.scores[("classic", number, model, "corr20v2", 20)] = corr
        built.scores[("classic", number, model, "mmc", 20)] = mmc
        if model != "copycat":
            stake = 500 if model == "noise" else 1000
            built.at_risk[("classic", number, model)] = stake * NANO
            fraction = max(-0.05, min(0.05, 0.5 * corr + 2 * mmc))
            built.payouts[("classic", number, model)] = int(stake * NANO * fraction)
    return built


def test_the_actual_rule_re_pays_each_round_as_the_formula_says_and_variants_differ() -> None:
    corr_only = payout_variant("corr_only", CLASSIC.payout, multipliers={"corr20v2": 1.0})
    wide = payout_variant("wide_clip", CLASSIC.payout, clip=0.10)
    table = counterfactual_payouts(figures(), CLASSIC, [corr_only, wide])
    rows = {(row.round, row.model): row for row in table.itertuples()}
    assert set(rows) == {(n, m) for (n, m) in FINAL if m != "copycat"}  # the late copycat is never paid

    def tokens(fraction: float) -> object:
        return pytest.approx(1000 * NANO * fraction, abs=1)  # rounded toward zero to a nano-token

    assert rows[(1, "good")].payout_actual == tokens(0.04)  # 0.5 · 0.04 + 2 · 0.01
    assert rows[(1, "poor")].payout_actual == tokens(-0.04)  # burned
    assert rows[(2, "good")].payout_actual == tokens(0.05)  # 0.09, clipped to 5 %
    assert rows[(2, "good")].payout_wide_clip == tokens(0.09)  # the wider clip lets it through
    assert rows[(2, "good")].payout_corr_only == tokens(0.05)  # 0.06, clipped
    assert rows[(2, "poor")].payout_corr_only == tokens(-0.02)
    totals = counterfactual_totals(table)
    assert totals.loc["good", "payout_actual"] == 90 * NANO
    assert totals.loc["(burned)", "payout_actual"] == -table["payout_actual"].clip(upper=0).sum()


def test_a_threshold_below_the_total_at_risk_scales_every_payout_by_the_payout_factor() -> None:
    low = payout_variant("low", CLASSIC.payout, stake_threshold=1250)  # 2,500 at risk: factor 0.5
    table = counterfactual_payouts(figures(), CLASSIC, [low])
    good = table[(table["round"] == 1) & (table["model"] == "good")].iloc[0]
    assert good["payout_low"] == good["payout_actual"] // 2


def test_integrity_checks_pass_on_a_working_season_and_fail_when_the_poor_model_is_paid() -> None:
    checks = integrity_checks(figures(), CROWD, CLASSIC, corr="corr20v2", mmc="mmc")
    assert [check.passed for check in checks] == [True, True, True, True], [c.detail for c in checks]
    assert "meta model +0.0250 vs median participant -0.0005" in checks[0].detail
    broken = figures()
    broken.payouts[("classic", 2, "poor")] = 500 * NANO  # a ledger that pays a model with negative scores
    assert integrity_checks(broken, CROWD, CLASSIC, corr="corr20v2", mmc="mmc")[3].passed is False


def test_a_check_whose_model_the_crowd_lacks_is_not_measured_rather_than_passed() -> None:
    crowd = [p for p in CROWD if p.model != "copycat"]
    checks = integrity_checks(figures(), crowd, CLASSIC, corr="corr20v2", mmc="mmc")
    assert checks[0].passed is None and checks[2].passed is None


def test_the_report_shows_every_section_its_charts_and_the_callers_extra_sections(tmp_path: Path) -> None:
    days = [
        SeasonDay(date(2021, 1, 4 + i), supply=SupplySnapshot(11 * NANO, i * NANO, 5 * NANO, 2500 * NANO))
        for i in range(3)
    ]
    extra_chart = tmp_path / "backtest.png"
    extra_chart.write_bytes(b"\x89PNG\r\n\x1a\n")
    table = counterfactual_payouts(figures(), CLASSIC, [])
    inputs = SeasonReportInputs(
        title="a <season>",
        figures=figures(),
        log=SeasonLog(days),
        ledger=LedgerReport(
            True, (), SupplyTotals(11 * NANO, 11 * NANO, 2 * NANO, 5 * NANO, 9 * NANO), 7, 14
        ),
        leaderboards={"classic": []},
        integrity={"classic": integrity_checks(figures(), CROWD, CLASSIC, corr="corr20v2", mmc="mmc")},
        counterfactual=counterfactual_totals(table),
        meta_model={"classic": "copycat"},
        extra_sections=[ReportSection("Backtest", "<p>fund</p>", [extra_chart]), ("Notes", "<p>n</p>", [])],
    )
    page = write_season_report(tmp_path, inputs).read_text()
    assert "<title>a &lt;season&gt;</title>" in page
    titles = re.findall(r"<h2>(.*?)</h2>", page)
    assert titles[-2:] == ["Backtest", "Notes"]  # the caller's sections come last, in order
    assert {"Ledger", "Integrity checks", "Counterfactual payouts", "Classic charts", "Token supply"} <= set(
        titles
    )
    assert page.count('<tr class="pass">') == 4
    images = re.findall(r'<img src="([^"]+)"', page)
    assert "backtest.png" in images
    for name in ("cumulative_corr20v2", "cumulative_mmc", "meta_model", "payouts"):
        chart = tmp_path / "charts" / f"classic_{name}.png"
        assert f"charts/classic_{name}.png" in images and chart.read_bytes()[:4] == b"\x89PNG"
    counterfactual = page.split("<h2>Counterfactual payouts</h2>")[1].split("</section>")[0]
    assert "<th>actual</th>" in counterfactual and "<th>good</th>" in counterfactual
    assert "<td>+90.00</td>" in counterfactual  # the good model's season total, in tokens


@pytest.mark.parametrize("empty", ["figures", "log"])
def test_a_season_with_nothing_scored_still_writes_a_report(tmp_path: Path, empty: str) -> None:
    inputs = SeasonReportInputs(
        title="empty",
        figures=SeasonFigures(),
        log=SeasonLog([]),
        ledger=LedgerReport(True, (), SupplyTotals(0, 0, 0, 0, 0), 0, 0),
        leaderboards={},
    )
    page = write_season_report(tmp_path, inputs).read_text()
    assert "<h2>Season</h2>" in page and "<img" not in page
