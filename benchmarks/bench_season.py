"""Season speed: 250 daily Classic rounds × 50 models × 2,000 assets through the production path.

Runs :func:`crowdalpha.sim.simulate.run_simulation` (the code ``crowdalpha simulate`` runs) on a
synthetic market: the market is generated, the Classic dataset built from the history (benchmark
models trained, so BMC is scored), published and ingested, the crowd's 50 models fitted once and
staked, then a simulated clock steps through ``--rounds`` trading days — each day the market is
ingested, ``tick`` opens the round on a fresh live file (and predicts it with the benchmark
models), the crowd uploads through ``submit_predictions``, ``tick`` closes it (at-risk stakes,
meta model), the late models upload, and the score and resolve jobs that fall due run — and the
report and Parquet tables are written. Every stage is timed (wall seconds, from the stage's first
to its last progress report). CPU seconds are reported beside wall seconds: on a shared machine
the wall time also counts other processes' turns.

Goal: the whole season < 5 minutes on this machine. No other system runs a season to compare
with, so the anchor is the goal itself: ``ratio`` = goal seconds / our seconds (> 1 meets it).

Measured (idle 2-core machine, 2026-12-07, full size with the fund backtest): 361.2 s wall, 411.0 s
CPU of which the score worker 180.5 s; season 320.0 s, fund backtest 20.1 s, report 12.1 s; 0
failed jobs, ledger ok; goal not met (ratio 0.83). ``--no-score-worker`` runs the score jobs in this
process (80 rounds: 104.4 s wall against 87.0 s with the worker).

``season_phase_seconds`` splits the season's stage into what its days spent their time on (ingest,
stake changes, open tick, uploads, waiting for scores, close tick, late uploads, supply).

Prints one JSON line. ``--quick`` runs 12 rounds × 12 models × 300 assets for a smoke test;
``--no-fund`` leaves the fund backtest out of the report, to time the season's own stages (the
backtest solves one portfolio per signal per round: rounds × (models + 2) optimizer solves).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

GOAL_SECONDS = 300.0
HISTORY_DAYS = 420
"""Trading days of history before the season: 84 weekly eras to build the dataset from."""
CROWD_MIX = (
    ("ridge", 0.3),
    ("example", 0.2),
    ("neutral_ridge", 0.1),
    ("contrarian", 0.1),
    ("noise", 0.2),
)
"""Strategy → share of the on-time crowd; the rest are a late ridge and the copycat."""


class StageTimer:
    """A progress callback that records each stage's first and last report times."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        """Record the stage's report time."""
        now = time.perf_counter()
        self.first.setdefault(stage, now)
        self.last[stage] = now

    def seconds(self) -> dict[str, float]:
        """Return each stage's wall seconds, in the order the stages started."""
        return {stage: round(self.last[stage] - start, 2) for stage, start in self.first.items()}


def bench_crowd(models: int):
    """Return ``models`` Classic participants: the CROWD_MIX on time (staked), a late ridge, the copycat."""
    from crowdalpha.sim.participants import Participant

    on_time = models - 2
    crowd = []
    for strategy, share in CROWD_MIX:
        for _ in range(max(1, round(share * on_time))):
            if len(crowd) < on_time:
                crowd.append(
                    Participant(f"{strategy}_{len(crowd):02d}", "classic", strategy, 100 + 10 * len(crowd))
                )
    while len(crowd) < on_time:
        crowd.append(Participant(f"ridge_{len(crowd):02d}", "classic", "ridge", 100))
    crowd.append(Participant("late_ridge", "classic", "ridge", late=True))
    crowd.append(Participant("copycat", "classic", "copycat", late=True))
    return tuple(crowd)


def _children_cpu() -> float:
    """Return the CPU seconds of this process's finished children (the score worker, once joined)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    rounds: int,
    models: int,
    assets: int,
    seed: int,
    *,
    bmc: bool = True,
    fund: bool = True,
    score_worker: bool = True,
) -> dict:
    """Run the season in a temporary home and return its figures."""
    from crowdalpha.sim.simulate import MarketSpec, SimulationSpec, run_simulation

    timer = StageTimer()
    with tempfile.TemporaryDirectory(prefix="bench-season-") as root:
        spec = SimulationSpec(
            home=Path(root) / "home",
            market=MarketSpec(assets=assets, days=HISTORY_DAYS + rounds, crypto_assets=120),
            tournaments=("classic",),
            seed=seed,
            rounds=rounds,
            crowd=bench_crowd(models),
            benchmark_models=bmc,
            title="bench_season",
            fund_backtest=fund,
            score_worker=score_worker,
        )
        started, cpu_started, child_started = time.perf_counter(), time.process_time(), _children_cpu()
        result = run_simulation(spec, timer)
        total, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        worker_cpu = _children_cpu() - child_started
    figures = result.outcome.figures
    states = figures.states_count("classic")
    return {
        "benchmark": "season",
        "rounds": rounds,
        "models": models,
        "assets": assets,
        "bmc": bmc,
        "fund_backtest": fund,
        "crowdalpha_seconds": round(total, 1),
        "crowdalpha_cpu_seconds": round(cpu + worker_cpu, 1),
        "score_worker": score_worker,
        "score_worker_cpu_seconds": round(worker_cpu, 1),
        "goal_seconds": GOAL_SECONDS,
        "ratio": round(GOAL_SECONDS / total, 3),
        "meets_goal": total < GOAL_SECONDS,
        "stage_seconds": timer.seconds(),
        "seconds_per_round": round(timer.seconds().get("simulating the season", total) / max(rounds, 1), 3),
        "season_phase_seconds": {
            phase: round(seconds, 1) for phase, seconds in result.season.phase_seconds().items()
        },
        "rounds_by_state": dict(states),
        "uploads": len(figures.uploads),
        "scores": len(figures.scores),
        "payouts": len(figures.payouts),
        "failed_jobs": len(result.season.failed),
        "ledger_ok": result.outcome.ledger.ok,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    """Parse the sizes, run the season, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=250)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--assets", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="12 rounds × 12 models × 300 assets")
    parser.add_argument("--no-bmc", action="store_true", help="no benchmark models (so no BMC)")
    parser.add_argument(
        "--no-fund", action="store_true", help="no fund backtest in the report (the season's own cost)"
    )
    parser.add_argument(
        "--no-score-worker",
        action="store_true",
        help="run the score jobs in this process, not beside the uploads",
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.models, args.assets = 12, 12, 300
    if args.models < 4:
        sys.exit("--models must be at least 4 (the mix, a late model and the copycat)")
    print(
        json.dumps(
            run(
                args.rounds,
                args.models,
                args.assets,
                args.seed,
                bmc=not args.no_bmc,
                fund=not args.no_fund,
                score_worker=not args.no_score_worker,
            )
        )
    )


if __name__ == "__main__":
    main()
