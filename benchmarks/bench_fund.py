"""Fund speed: portfolio re-solve time, and True Contribution by the KKT adjoint vs finite differences.

One synthetic round: 5,000 names, 11 sectors, 20 countries, 20 factors, 1,000 models; every kind of
limit (dollar and beta neutral, sector, country and factor limits, name caps, gross leverage,
turnover versus a previous portfolio). Measured:

* building the problem, the first solve (cvxpy canonicalises the DPP problem) and the median of
  seven re-solves with a new alpha (wall and CPU seconds, Clarabel's iterations). Goal: re-solve
  ≤ 2 s. The machine's 1-minute load average before and after is printed with them.
* TC for every model by the adjoint (one solve, one sparse KKT solve, one mat-vec) against central
  finite differences for ``fd_models`` models (two re-solves each, 20 re-solves by default),
  extrapolated to all models. Goals: ratio ≥ 100, correlation ≥ 0.99 on the differenced models.

Prints one JSON line. ``--quick`` shrinks the round for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def run(quick: bool) -> dict:
    """Run the benchmark and return its figures."""
    from crowdalpha.fund import (
        TIGHT_SOLVER_SETTINGS,
        ConstraintSet,
        PortfolioOptimizer,
        contributions_from_gradient,
        return_gradient,
        stake_weighted_alpha,
    )
    from crowdalpha.fund.synthetic import synthetic_round

    names, models, fd_models, resolves = (400, 50, 4, 3) if quick else (5_000, 1_000, 10, 7)
    load_before = os.getloadavg()[0]
    alpha_scale = 0.001
    round_ = synthetic_round(names, models, factors=20, sectors=11, countries=20, seed=1)
    limits = ConstraintSet(
        dollar_neutral=True,
        beta_limit=0.0,
        sector_limit=0.001,
        country_limit=0.001,
        factor_limit=0.0005,
        name_cap=10.0 / names,
        gross_leverage=1.0,
        turnover_limit=0.5,
    )
    start = time.perf_counter()
    optimizer = PortfolioOptimizer(
        round_.universe, limits, risk_aversion=0.6 * names, solver_settings=TIGHT_SOLVER_SETTINGS
    )
    build_seconds = time.perf_counter() - start
    predictions = alpha_scale * round_.predictions
    stakes, returns = round_.stakes, round_.realised_returns
    rng = np.random.default_rng(2)
    start = time.perf_counter()
    previous = optimizer.solve(alpha_scale * rng.normal(size=names)).weights
    first_seconds = time.perf_counter() - start

    resolve_seconds, resolve_cpu_seconds, resolve_iterations = [], [], []
    for _ in range(resolves):
        start, start_cpu = time.perf_counter(), time.process_time()
        optimizer.solve(alpha_scale * rng.normal(size=names), previous)
        resolve_seconds.append(time.perf_counter() - start)
        resolve_cpu_seconds.append(time.process_time() - start_cpu)
        resolve_iterations.append(optimizer.problem.solver_stats.num_iters)

    start = time.perf_counter()
    solution = optimizer.solve(stake_weighted_alpha(predictions, stakes), previous)
    solve_seconds = time.perf_counter() - start
    start = time.perf_counter()
    adjoint = contributions_from_gradient(return_gradient(optimizer, solution, returns), predictions, stakes)
    kkt_seconds = time.perf_counter() - start
    adjoint_seconds = solve_seconds + kkt_seconds

    step = 1e-4 * stakes.sum()
    chosen = rng.choice(models, size=fd_models, replace=False)
    finite = np.empty(fd_models)
    start = time.perf_counter()
    for position, model in enumerate(chosen):
        moved_returns = []
        for sign in (1.0, -1.0):
            moved = stakes.copy()
            moved[model] += sign * step
            weights = optimizer.solve(stake_weighted_alpha(predictions, moved), previous).weights
            moved_returns.append(returns @ weights)
        finite[position] = (moved_returns[0] - moved_returns[1]) / (2 * step)
    fd_sample_seconds = time.perf_counter() - start
    fd_seconds = fd_sample_seconds / fd_models * models
    compared = adjoint[chosen]
    return {
        "benchmark": "fund",
        "quick": quick,
        "names": names,
        "sectors": 11,
        "countries": 20,
        "factors": 20,
        "models": models,
        "binding_pinned_variables": int(solution.active.fixed.size),
        "binding_rows": int(solution.active.rows.shape[0]),
        "build_seconds": round(build_seconds, 3),
        "first_solve_seconds": round(first_seconds, 3),
        "resolves": resolves,
        "resolve_seconds": round(float(np.median(resolve_seconds)), 3),
        "resolve_cpu_seconds": round(float(np.median(resolve_cpu_seconds)), 3),
        "resolve_max_seconds": round(max(resolve_seconds), 3),
        "resolve_iterations": resolve_iterations,
        "solver": optimizer.solver_settings.get("direct_solve_method", "qdldl"),
        "resolve_goal_seconds": 2,
        "tc_adjoint_seconds": round(adjoint_seconds, 3),
        "tc_adjoint_after_solve_seconds": round(kkt_seconds, 4),
        "fd_resolves": 2 * fd_models,
        "tc_finite_difference_seconds": round(fd_seconds, 1),
        "ratio": round(fd_seconds / adjoint_seconds, 1),
        "ratio_goal": 100,
        "correlation": round(float(np.corrcoef(compared, finite)[0, 1]), 6),
        "relative_error": round(float(np.linalg.norm(compared - finite) / np.linalg.norm(finite)), 6),
        "correlation_goal": 0.99,
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    """Parse arguments, run the benchmark, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args()
    print(json.dumps(run(args.quick)))


if __name__ == "__main__":
    main()
