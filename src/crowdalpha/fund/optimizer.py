"""The fund's portfolio optimizer: maximise meta-model alpha under a factor risk model and declared limits.

The problem, for a universe of ``n`` names with factor exposures ``X`` (n × k), factor covariance
``F`` and specific variances ``d`` (all known at the date)::

    maximise   αᵀw − ½γ (fᵀ F f + Σ dᵢ wᵢ²)
    subject to f = Xᵀw                      (factor exposures are their own variable)
               the limits of a ConstraintSet

``d > 0`` keeps the objective strictly convex, so the portfolio is unique and differentiable in
``α`` almost everywhere (see :mod:`crowdalpha.fund.tc`).

Limits are data. A :class:`ConstraintSet` declares them in the operator's words (dollar neutral,
beta, sector, country, factor, per-name caps, gross leverage, turnover) and expands to two
general kinds that the solver and the sensitivity code both understand:

* :class:`LinearLimit` — ``|Mᵀx| ≤ limit`` on the weights or on the factor exposures (an equality
  when the limit is 0; ``M`` omitted means each entry of ``x`` on its own);
* :class:`DistanceLimit` — ``‖w − c‖₁ ≤ limit`` with ``c`` zero (gross leverage) or the previous
  portfolio (turnover).

:class:`PortfolioOptimizer` builds the cvxpy problem once per universe (DPP: alpha and the previous
portfolio are parameters) and re-solves it with Clarabel for each round's alpha
(:meth:`PortfolioOptimizer.solve`: weights, duals and the binding limits TC differentiates through).
When only the weights are wanted — a backtest solves one portfolio per signal per day —
:meth:`PortfolioOptimizer.solve_weights` goes through the problem's dual instead
(:mod:`crowdalpha.fund.dual`: the same portfolio to ~1e-9 per weight, ~25x faster at 2,000 names).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Literal

import clarabel
import cvxpy as cp
import numpy as np
import scipy.sparse as sp

Target = Literal["weights", "factors"]
Center = Literal["zero", "previous"]

TIGHT_SOLVER_SETTINGS: dict[str, float | int | bool] = {
    "tol_gap_abs": 1e-14,
    "tol_gap_rel": 1e-14,
    "tol_feas": 1e-12,
    "tol_ktratio": 1e-8,
    "reduced_tol_gap_abs": 1e-9,
    "reduced_tol_gap_rel": 1e-9,
    "reduced_tol_feas": 1e-9,
    "reduced_tol_ktratio": 1e-6,
    "max_iter": 400,
    "iterative_refinement_enable": False,
}
"""Clarabel settings used by default: TC's active set and finite-difference checks need many digits.

At Clarabel's own defaults (1e-8) near-degenerate names (a weight of 1e-6 sitting at a kink) are
left unresolved and TC can be off by tens of percent (at a 1e-11 gap already 2.4 % on a turnover
problem); the tight gap costs a few more iterations. When rounding stops progress first, Clarabel
reports "almost solved" (cvxpy: optimal_inaccurate), which the reduced tolerances make as good as
its defaults, so that status is accepted. Iterative refinement is off: its residual products cost
a third of every iteration at 5,000 names while the interior point's own residuals already reach
these tolerances (the solutions, active sets and TC are unchanged).
"""


@functools.cache
def direct_solver_settings() -> dict[str, str | int]:
    """Return Clarabel settings for its fastest KKT factorisation here: faer's LDL on one thread, if built."""
    # faer factors the dense block of the factor rows with dense kernels (17 % less CPU per re-solve
    # than QDLDL at 5,000 names, identical iterates); builds without it fall back to Clarabel's default.
    faer = {"direct_solve_method": "faer", "max_threads": 1}
    settings = clarabel.DefaultSettings()
    for name, value in {**faer, "verbose": False}.items():
        setattr(settings, name, value)
    try:
        clarabel.DefaultSolver(
            sp.csc_matrix((1, 1)),
            np.zeros(1),
            sp.csc_matrix(np.ones((1, 1))),
            np.ones(1),
            [clarabel.NonnegativeConeT(1)],
            settings,
        )
    except Exception:  # Clarabel raises a bare Exception ("Bad settings") for a backend not built in
        return {}
    return faer


class FundError(ValueError):
    """An input of the fund broke a rule; the message names the rule and where."""


@dataclass(frozen=True, eq=False)
class Universe:
    """The names of one date and their risk model: betas, sector and country labels, factor model."""

    betas: np.ndarray
    sectors: np.ndarray
    countries: np.ndarray
    factor_exposures: np.ndarray
    factor_covariance: np.ndarray
    specific_variance: np.ndarray

    def __post_init__(self) -> None:
        exposures = np.asarray(self.factor_exposures, dtype=np.float64)
        if exposures.ndim != 2:
            raise FundError(f"factor_exposures must be 2-D (names × factors); got {exposures.ndim}-D")
        n, k = exposures.shape
        if n == 0:
            raise FundError("universe has no names (rule: a portfolio needs at least one name)")
        covariance = np.asarray(self.factor_covariance, dtype=np.float64)
        if covariance.shape != (k, k):
            raise FundError(
                f"factor_covariance has shape {covariance.shape}; expected ({k}, {k}) for {k} factors"
            )
        if not np.allclose(covariance, covariance.T, atol=1e-12):
            raise FundError("factor_covariance must be symmetric")
        if k and np.linalg.eigvalsh(covariance).min() < -1e-10 * max(1.0, np.abs(covariance).max()):
            raise FundError("factor_covariance must be positive semi-definite")
        arrays = {
            "betas": np.asarray(self.betas, dtype=np.float64),
            "specific_variance": np.asarray(self.specific_variance, dtype=np.float64),
        }
        for name, values in arrays.items():
            if values.shape != (n,):
                raise FundError(f"{name} has shape {values.shape}; expected ({n},) — one per name")
        for name, values in {"sectors": self.sectors, "countries": self.countries}.items():
            if np.shape(values) != (n,):
                raise FundError(f"{name} has shape {np.shape(values)}; expected ({n},) — one label per name")
        for name, values in {
            **arrays,
            "factor_exposures": exposures,
            "factor_covariance": covariance,
        }.items():
            if not np.isfinite(values).all():
                raise FundError(
                    f"{name} must be finite; first bad entry at {np.argwhere(~np.isfinite(values))[0]}"
                )
        not_positive = np.flatnonzero(arrays["specific_variance"] <= 0)
        if not_positive.size:
            raise FundError(
                f"specific_variance must be > 0 (keeps the objective strictly convex);"
                f" names {not_positive[:5].tolist()}"
            )
        object.__setattr__(self, "factor_exposures", exposures)
        object.__setattr__(self, "factor_covariance", covariance)
        object.__setattr__(self, "betas", arrays["betas"])
        object.__setattr__(self, "specific_variance", arrays["specific_variance"])

    @property
    def size(self) -> int:
        """Return the number of names."""
        return self.factor_exposures.shape[0]

    @property
    def factor_count(self) -> int:
        """Return the number of risk factors."""
        return self.factor_exposures.shape[1]


def membership_matrix(labels: np.ndarray) -> sp.csc_matrix:
    """Return the sparse names × groups 0/1 matrix of ``labels`` (one column per distinct label, sorted)."""
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    codes = codes.ravel()
    return sp.csc_matrix(
        (np.ones(codes.size), (np.arange(codes.size), codes)), shape=(codes.size, codes.max() + 1)
    )


def check_limit(value: float | np.ndarray | None, label: str, *, neutral_allowed: bool) -> None:
    """Raise :class:`FundError` naming ``label`` unless ``value`` is None or a valid limit.

    Valid: finite and positive, or (``neutral_allowed``) all zero, which makes the limit an equality.
    """
    if value is None:
        return
    values = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise FundError(f"{label} must be a finite number ≥ 0 or None; got {value!r}")
    if np.any(values == 0) and not (neutral_allowed and np.all(values == 0)):
        expected = "all zero (neutral) or all positive" if neutral_allowed else "positive"
        raise FundError(f"{label} must be {expected}; got {value!r}")


@dataclass(frozen=True, eq=False)
class LinearLimit:
    """``|Mᵀx| ≤ limit`` on the weights or the factor exposures (``M`` None: each entry of ``x``)."""

    name: str
    target: Target
    limit: float | np.ndarray
    matrix: np.ndarray | sp.spmatrix | None = None

    def __post_init__(self) -> None:
        check_limit(self.limit, f"limit {self.name!r}", neutral_allowed=True)
        if self.target not in ("weights", "factors"):
            raise FundError(f"limit {self.name!r} targets {self.target!r}; expected 'weights' or 'factors'")

    @property
    def is_equality(self) -> bool:
        """Return whether the limit pins the exposure at zero."""
        return bool(np.all(np.asarray(self.limit) == 0))


@dataclass(frozen=True)
class DistanceLimit:
    """``‖w − c‖₁ ≤ limit`` with ``c`` zero (gross leverage) or the previous portfolio (turnover)."""

    name: str
    center: Center
    limit: float

    def __post_init__(self) -> None:
        check_limit(self.limit, f"limit {self.name!r}", neutral_allowed=False)
        if self.center not in ("zero", "previous"):
            raise FundError(
                f"limit {self.name!r} is centred on {self.center!r}; expected 'zero' or 'previous'"
            )


Limit = LinearLimit | DistanceLimit


@dataclass(frozen=True, eq=False)
class ConstraintSet:
    """The portfolio's risk limits as data; ``None`` switches a limit off.

    Exposure limits are absolute: ``|βᵀw| ≤ beta_limit`` (0 = beta neutral), ``|Σ_{i∈s} wᵢ| ≤
    sector_limit`` for every sector (likewise countries), ``|(Xᵀw)_j| ≤ factor_limit`` (a scalar or
    one per factor), ``|wᵢ| ≤ name_cap``, ``‖w‖₁ ≤ gross_leverage``, ``‖w − w_prev‖₁ ≤ turnover_limit``.
    ``extra_limits`` adds any other :class:`LinearLimit` / :class:`DistanceLimit` (an industry or a
    custom style exposure) without new code.
    """

    dollar_neutral: bool = True
    beta_limit: float | None = 0.0
    sector_limit: float | None = None
    country_limit: float | None = None
    factor_limit: float | np.ndarray | None = None
    name_cap: float | None = None
    gross_leverage: float | None = 1.0
    turnover_limit: float | None = None
    extra_limits: tuple[LinearLimit | DistanceLimit, ...] = ()

    def __post_init__(self) -> None:
        for name in ("beta_limit", "sector_limit", "country_limit", "factor_limit", "name_cap"):
            check_limit(getattr(self, name), f"ConstraintSet.{name}", neutral_allowed=True)
        for name in ("gross_leverage", "turnover_limit"):
            check_limit(getattr(self, name), f"ConstraintSet.{name}", neutral_allowed=False)

    def limits(self, universe: Universe) -> tuple[Limit, ...]:
        """Return the declared limits as :class:`LinearLimit` / :class:`DistanceLimit` for ``universe``."""
        n, k = universe.size, universe.factor_count
        if (
            self.factor_limit is not None
            and np.ndim(self.factor_limit) == 1
            and np.size(self.factor_limit) != k
        ):
            raise FundError(
                f"ConstraintSet.factor_limit has {np.size(self.factor_limit)} entries;"
                f" the universe has {k} factors"
            )
        linear = (
            ("dollar_neutral", "weights", 0.0 if self.dollar_neutral else None, np.ones((n, 1))),
            ("beta", "weights", self.beta_limit, universe.betas.reshape(-1, 1)),
            ("sector", "weights", self.sector_limit, membership_matrix(universe.sectors)),
            ("country", "weights", self.country_limit, membership_matrix(universe.countries)),
            ("factor", "factors", self.factor_limit, None),
            ("name_cap", "weights", self.name_cap, None),
        )
        distance = (
            ("gross_leverage", "zero", self.gross_leverage),
            ("turnover", "previous", self.turnover_limit),
        )
        declared: list[Limit] = [
            LinearLimit(name, target, limit, matrix)
            for name, target, limit, matrix in linear
            if limit is not None
        ]
        declared += [
            DistanceLimit(name, center, limit) for name, center, limit in distance if limit is not None
        ]
        for extra in self.extra_limits:
            rows = n if getattr(extra, "target", "weights") == "weights" else k
            matrix = getattr(extra, "matrix", None)
            if matrix is not None and matrix.shape[0] != rows:
                raise FundError(
                    f"extra limit {extra.name!r} has a matrix with {matrix.shape[0]} rows;"
                    f" its target has {rows} entries"
                )
        return (*declared, *self.extra_limits)


@dataclass(frozen=True, eq=False)
class ActiveLimits:
    """The limits binding at a solution, linearised: pinned variables and active rows over ``(w, f)``."""

    fixed: np.ndarray
    rows: sp.csr_matrix


@dataclass(frozen=True, eq=False)
class PortfolioSolution:
    """A solved portfolio: weights, their factor exposures, the alpha it used and its binding limits."""

    weights: np.ndarray
    factor_exposures: np.ndarray
    alpha: np.ndarray
    previous_weights: np.ndarray
    objective: float
    solve_seconds: float
    status: str
    active: ActiveLimits = field(repr=False)


def _binding(
    dual: np.ndarray | float | None, slack: np.ndarray, dual_scale: float, slack_scale
) -> np.ndarray:
    # Complementary slackness at an interior-point solution: of (slack, dual) one tends to zero and
    # the other does not, so the larger one, each measured in its own natural unit, says which side
    # holds. Near-degenerate pairs (both small) are then decided consistently by their ratio.
    dual_values = (
        np.zeros_like(slack) if dual is None else np.broadcast_to(np.asarray(dual, float), slack.shape)
    )
    return dual_values / dual_scale > slack / slack_scale


@dataclass(frozen=True)
class _Point:
    """A solution as the linearisation needs it: weights, factor exposures, previous portfolio, scales."""

    weights: np.ndarray
    factors: np.ndarray
    previous: np.ndarray
    dual_scale: float

    @property
    def width(self) -> int:
        """Return the number of variables ``(w, f)``."""
        return self.weights.size + self.factors.size


@dataclass
class _LinearHandles:
    limit: LinearLimit
    upper: cp.Constraint
    lower: cp.Constraint | None = None
    definition: list[cp.Constraint] = field(default_factory=list)

    def constraints(self) -> list[cp.Constraint]:
        """Return the cvxpy constraints of the limit."""
        return [*self.definition, self.upper, *([] if self.lower is None else [self.lower])]

    def linearise(self, point: _Point) -> tuple[np.ndarray, sp.csr_matrix | None]:
        """Return the variables this limit pins and its binding rows over ``(w, f)`` at ``point``."""
        limit = self.limit
        offset = 0 if limit.target == "weights" else point.weights.size
        values = point.weights if limit.target == "weights" else point.factors
        exposure = values if limit.matrix is None else np.asarray(limit.matrix.T @ values).ravel()
        if limit.is_equality:
            binding = np.ones(exposure.shape, dtype=bool)
        else:
            bound = np.broadcast_to(np.asarray(limit.limit, dtype=float), exposure.shape)
            binding = _binding(self.upper.dual_value, bound - exposure, point.dual_scale, bound) | _binding(
                self.lower.dual_value, bound + exposure, point.dual_scale, bound
            )
        if limit.matrix is None:
            return offset + np.flatnonzero(binding), None
        columns = sp.coo_matrix(sp.csc_matrix(limit.matrix)[:, np.flatnonzero(binding)].T)
        rows = sp.csr_matrix(
            (columns.data, (columns.row, columns.col + offset)), shape=(columns.shape[0], point.width)
        )
        return np.array([], dtype=np.int64), rows


@dataclass
class _DistanceHandles:
    limit: DistanceLimit
    bound: cp.Variable
    above: cp.Constraint
    below: cp.Constraint
    total: cp.Constraint

    def constraints(self) -> list[cp.Constraint]:
        """Return the cvxpy constraints of the limit."""
        return [self.above, self.below, self.total]

    def linearise(self, point: _Point) -> tuple[np.ndarray, sp.csr_matrix | None]:
        """Return the names this limit pins at their centre and its signed row, if it binds at ``point``."""
        limit, n = self.limit, point.weights.size
        gap = point.weights - (point.previous if limit.center == "previous" else 0.0)
        total_dual = float(self.total.dual_value)
        if not _binding(
            total_dual, np.array([limit.limit - np.abs(gap).sum()]), point.dual_scale, limit.limit
        )[0]:
            return np.array([], dtype=np.int64), None
        # Each name's two duals share the total's (μ⁺ + μ⁻ = λ); its slack is against an even share.
        bound = np.asarray(self.bound.value, dtype=np.float64)
        share = limit.limit / n
        at_center = _binding(self.above.dual_value, bound - gap, total_dual, share) & _binding(
            self.below.dual_value, bound + gap, total_dual, share
        )
        signs = np.where(at_center, 0.0, np.sign(gap))
        row = sp.csr_matrix(np.concatenate([signs, np.zeros(point.width - n)]).reshape(1, -1))
        return np.flatnonzero(at_center), row


_UNBUILT = object()


class PortfolioOptimizer:
    """The fund's problem for one universe, built once (DPP) and re-solved for each round's alpha.

    ``risk_aversion`` is γ in the objective (alpha and γ·variance share the units of return, so
    scaling alpha by c is the same as dividing γ by c); ``solver_settings`` override Clarabel's
    settings on top of :data:`TIGHT_SOLVER_SETTINGS`.
    """

    def __init__(
        self,
        universe: Universe,
        constraints: ConstraintSet,
        *,
        risk_aversion: float = 1.0,
        solver_settings: dict[str, float | int] | None = None,
    ) -> None:
        if not (np.isfinite(risk_aversion) and risk_aversion > 0):
            raise FundError(f"risk_aversion must be a finite number > 0; got {risk_aversion!r}")
        self.universe = universe
        self.constraints = constraints
        self.risk_aversion = float(risk_aversion)
        self.solver_settings = {
            **direct_solver_settings(),
            **TIGHT_SOLVER_SETTINGS,
            **(solver_settings or {}),
        }
        self.limits = constraints.limits(universe)
        self._dual: object = _UNBUILT
        n, k = universe.size, universe.factor_count
        self._weights = cp.Variable(n, name="weights")
        self._factors = cp.Variable(k, name="factor_exposures")
        self._alpha = cp.Parameter(n, name="alpha")
        self._previous = cp.Parameter(n, name="previous_weights")
        self._previous.value = np.zeros(n)
        eigenvalues, eigenvectors = np.linalg.eigh(universe.factor_covariance)
        factor_covariance = (eigenvectors * np.clip(eigenvalues, 0.0, None)) @ eigenvectors.T
        # Quadratic forms reach Clarabel as the objective's P as they are; sum_squares would add a
        # variable and an equality row per name and per factor to every solve's KKT system.
        risk = cp.quad_form(self._factors, cp.psd_wrap(factor_covariance)) + cp.quad_form(
            self._weights, cp.psd_wrap(sp.diags(universe.specific_variance, format="csc"))
        )
        objective = cp.Minimize(-self._alpha @ self._weights + 0.5 * self.risk_aversion * risk)
        constraints_list: list[cp.Constraint] = [universe.factor_exposures.T @ self._weights == self._factors]
        self._handles: list[_LinearHandles | _DistanceHandles] = []
        for limit in self.limits:
            handles = self._declare(limit)
            self._handles.append(handles)
            constraints_list.extend(handles.constraints())
        self.problem = cp.Problem(objective, constraints_list)
        if not self.problem.is_dcp(dpp=True):
            raise FundError("the portfolio problem is not DPP (rule: build once, re-solve with new alpha)")

    def _variable(self, target: Target) -> cp.Variable:
        return self._weights if target == "weights" else self._factors

    def _declare(self, limit: Limit) -> _LinearHandles | _DistanceHandles:
        if isinstance(limit, DistanceLimit):
            gap = self._weights - self._previous if limit.center == "previous" else self._weights
            bound = cp.Variable(self.universe.size, name=f"{limit.name}_abs")
            return _DistanceHandles(limit, bound, bound >= gap, bound >= -gap, cp.sum(bound) <= limit.limit)
        variable = self._variable(limit.target)
        if limit.is_equality:
            return _LinearHandles(
                limit, (variable if limit.matrix is None else limit.matrix.T @ variable) == 0
            )
        value = np.asarray(limit.limit)
        if limit.matrix is None:
            return _LinearHandles(limit, variable <= value, variable >= -value)
        # Exposures as their own variable: the matrix enters the problem once, not once per side.
        exposure = cp.Variable(limit.matrix.shape[1], name=f"{limit.name}_exposure")
        return _LinearHandles(
            limit, exposure <= value, exposure >= -value, [limit.matrix.T @ variable == exposure]
        )

    def solve(self, alpha: np.ndarray, previous_weights: np.ndarray | None = None) -> PortfolioSolution:
        """Return the optimal portfolio for ``alpha`` (one expected residual return per name)."""
        n = self.universe.size
        alpha = checked_vector(alpha, n, "alpha")
        previous = (
            np.zeros(n)
            if previous_weights is None
            else checked_vector(previous_weights, n, "previous_weights")
        )
        self._alpha.value = alpha
        self._previous.value = previous
        try:
            with warnings.catch_warnings():
                # "almost solved" is judged below, not by cvxpy's generic warning
                warnings.filterwarnings("ignore", message="Solution may be inaccurate", category=UserWarning)
                self.problem.solve(solver=cp.CLARABEL, **self.solver_settings)
        except cp.error.SolverError as error:
            raise FundError(f"the portfolio solver failed: {error}") from error
        if self.problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            raise FundError(
                f"the portfolio problem is {self.problem.status} (rule: the ConstraintSet must admit a"
                f" portfolio and the solver must converge); limits: {[limit.name for limit in self.limits]}"
            )
        weights = np.asarray(self._weights.value, dtype=np.float64)
        factors = np.asarray(self._factors.value, dtype=np.float64).reshape(self.universe.factor_count)
        return PortfolioSolution(
            weights=weights,
            factor_exposures=factors,
            alpha=alpha,
            previous_weights=previous,
            objective=float(self.problem.value),
            solve_seconds=float(self.problem.solver_stats.solve_time or 0.0),
            status=str(self.problem.status),
            active=self._active_limits(weights, factors, previous, np.abs(alpha).max()),
        )

    def solve_weights(self, alpha: np.ndarray, previous_weights: np.ndarray | None = None) -> np.ndarray:
        """Return the optimal weights for ``alpha`` alone, through the dual when the limits allow it.

        The same portfolio as :meth:`solve` (to ~1e-9 per weight) without the interior point's
        per-solve cost: :class:`crowdalpha.fund.dual.DualSolver` (a closed form per name, Newton on
        the limits' multipliers, warm-started from the last alpha); problems outside its form
        (turnover limits) or a solve that does not converge go through :meth:`solve`. What a
        backtest needs; TC needs :meth:`solve`'s binding limits.
        """
        if self._dual is _UNBUILT:
            from crowdalpha.fund.dual import dual_solver  # the dual form imports this module's limits

            self._dual = dual_solver(self.universe, self.limits, self.risk_aversion)
        if self._dual is not None:
            weights = self._dual.solve(checked_vector(alpha, self.universe.size, "alpha"))
            if weights is not None:
                return weights
        return self.solve(alpha, previous_weights).weights

    def _active_limits(
        self, weights: np.ndarray, factors: np.ndarray, previous: np.ndarray, alpha_scale: float
    ) -> ActiveLimits:
        # Duals are in units of the objective's gradient (alpha); slacks in units of their limit.
        point = _Point(weights, factors, previous, max(alpha_scale, np.finfo(float).tiny))
        pinned: list[np.ndarray] = [np.array([], dtype=np.int64)]
        rows: list[sp.csr_matrix] = [sp.csr_matrix((0, point.width))]
        for handles in self._handles:
            fixed, binding_rows = handles.linearise(point)
            pinned.append(fixed)
            if binding_rows is not None:
                rows.append(binding_rows)
        return ActiveLimits(
            fixed=np.unique(np.concatenate(pinned)).astype(np.int64), rows=sp.vstack(rows, format="csr")
        )


def checked_vector(values: np.ndarray, n: int, name: str) -> np.ndarray:
    """Return ``values`` as a finite float vector of length ``n``, or raise :class:`FundError` naming it."""
    vector = np.asarray(values, dtype=np.float64)
    if vector.shape != (n,):
        raise FundError(f"{name} has shape {vector.shape}; expected ({n},)")
    bad = np.flatnonzero(~np.isfinite(vector))
    if bad.size:
        raise FundError(f"{name} must be finite; names {bad[:5].tolist()} are NaN or ±inf")
    return vector
