"""The portfolio problem solved through its dual: a closed form per name, Newton on the limits' multipliers.

The optimizer's problem (:mod:`crowdalpha.fund.optimizer`), with ``a = γd`` and caps ``cᵢ`` from the
per-name limits::

    minimise   −αᵀw + ½ Σ aᵢwᵢ² + ½γ fᵀFf
    subject to f = Xᵀw,  |Gᵀw| ≤ l_G,  |Mᵀf| ≤ l_M,  |wᵢ| ≤ cᵢ,  ‖w‖₁ ≤ L

(``G``: the weights' limit matrices side by side — dollar neutral, beta, sectors, countries, extras;
``M``: the factor exposures'; a limit of 0 is an equality). With multipliers ν for ``f = Xᵀw``, y for
the weight rows, u for the factor rows and λ ≥ 0 for the gross leverage, the Lagrangian separates::

    wᵢ = clip(soft(bᵢ, λ) / aᵢ, ±cᵢ),  b = α − Xν − Gy        (soft: shrink |b| by λ, not past 0)
    f  = (γF)⁻¹ (ν − Mu)

and the dual function ``g(ν, y, u, λ)`` — the Lagrangian at that minimiser, less ``l_G|y| + l_M|u| + λL``
— is concave and piecewise quadratic in a few dozen multipliers. Its gradient is the limits' residuals
(``Xᵀw − f``, ``Gᵀw``, ``Mᵀf``, ``‖w‖₁ − L``, each less its limit on the side it binds). An active-set
Newton method maximises it: the rows in the working set bind (their multiplier keeps that side's
sign), the others have a zero multiplier; each Newton step solves one small dense system (the
Hessian is ``−Σ eᵢeᵢᵀ/aᵢ`` over the names strictly inside their pieces, ``eᵢ`` the name's row of
``[X, G, sign(bᵢ)]``, plus the factor block ``−Pᵀ(γF)⁻¹P``); a step that would flip a multiplier's
sign stops at zero and drops the row; a row violated at the working set's optimum joins it. On a
piecewise quadratic the Newton step is exact once every name's piece is right, so the solution meets
the KKT conditions to rounding — the interior point's portfolio without its factorisation of the
n-name KKT system per solve (about a millisecond at 2,000 names instead of ~20).

:func:`dual_solver` returns None for problems outside this form (a turnover limit, centred on the
previous portfolio; a factor covariance that is not positive definite), and :meth:`DualSolver.solve`
returns None when it does not converge: the caller then solves with the interior point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from crowdalpha.fund.optimizer import DistanceLimit, Limit, LinearLimit, Universe

RESIDUAL_TOLERANCE = 1e-11
"""Largest residual of a binding limit (exposure units: fractions of capital) at a converged solution."""
MAX_STEPS = 200
"""Newton steps (with working-set changes) before a solve gives up."""
DAMPING = (1e-13, 1e-9, 1e-6, 1e-3, 1.0)
"""Ridges tried on the dual Hessian (× its mean diagonal): a step is retried with the next when rejected."""
_ARMIJO = 1e-4


def _dense(matrix: np.ndarray | sp.spmatrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix, dtype=np.float64)


@dataclass
class _State:
    """The multipliers ``z = (ν, y, u, λ)`` and each row's side: 0 (not binding), ±1, or 2 (an equality)."""

    z: np.ndarray
    sides: np.ndarray
    gross_binding: bool


@dataclass(frozen=True, eq=False)
class _Point:
    """The separable minimiser at some multipliers: weights, factor exposures, gradient, free names."""

    weights: np.ndarray
    factors: np.ndarray
    value: float
    gradient: np.ndarray
    free: np.ndarray
    signs: np.ndarray


class DualSolver:
    """The portfolio problem of one universe in dual form, re-solved for each alpha (module doc)."""

    def __init__(
        self,
        universe: Universe,
        curvature: np.ndarray,
        caps: np.ndarray,
        weight_rows: np.ndarray,
        weight_limits: np.ndarray,
        factor_rows: np.ndarray,
        factor_limits: np.ndarray,
        gross_leverage: float | None,
        factor_precision: np.ndarray,
    ) -> None:
        self.exposures = universe.factor_exposures
        self.curvature = curvature
        self.caps = caps
        self.weight_rows = weight_rows
        self.factor_rows = factor_rows
        self.limits = np.concatenate([weight_limits, factor_limits])
        self.gross_leverage = gross_leverage
        self.factor_precision = factor_precision
        k, p, q = self.exposures.shape[1], weight_rows.shape[1], factor_rows.shape[1]
        self._slices = (slice(0, k), slice(k, k + p), slice(k + p, k + p + q))
        self.size = k + p + q + 1
        # each name's row of ∂b/∂(ν, y, u) up to sign; the λ column (sign of b) is added per step
        self._coefficients = np.hstack([self.exposures, weight_rows, np.zeros((self.exposures.shape[0], q))])
        self._factor_map = np.hstack([np.eye(k), np.zeros((k, p)), -factor_rows, np.zeros((k, 1))])
        self._warm: _State | None = None

    def _initial(self) -> _State:
        if self._warm is not None:
            return _State(self._warm.z.copy(), self._warm.sides.copy(), self._warm.gross_binding)
        sides = np.where(self.limits == 0, 2, 0)
        return _State(np.zeros(self.size), sides, self.gross_leverage is not None)

    def _evaluate(self, alpha: np.ndarray, z: np.ndarray, sides: np.ndarray) -> _Point:
        nu, y, u = (z[part] for part in self._slices)
        shrink = z[-1]
        binding_rows = np.flatnonzero(y)  # few rows bind: the product over them alone
        b = alpha - self.exposures @ nu - self.weight_rows[:, binding_rows] @ y[binding_rows]
        magnitude = np.maximum(np.abs(b) - shrink, 0.0)
        unclipped = np.sign(b) * magnitude / self.curvature
        weights = np.clip(unclipped, -self.caps, self.caps)
        free = (magnitude > 0) & (np.abs(unclipped) < self.caps)
        h = nu - self.factor_rows @ u
        factors = self.factor_precision @ h
        gross = np.abs(weights).sum()
        multipliers = np.concatenate([y, u])
        value = (
            float(0.5 * self.curvature @ weights**2 - b @ weights + shrink * gross)
            - 0.5 * float(h @ factors)
            - float(self.limits @ np.abs(multipliers))
            - shrink * (self.gross_leverage or 0.0)
        )
        rows = np.concatenate([self.weight_rows.T @ weights, self.factor_rows.T @ factors])
        binding = np.where(sides == 2, 0.0, np.sign(sides) * self.limits)
        gradient = np.concatenate(
            [self.exposures.T @ weights - factors, rows - binding, [gross - (self.gross_leverage or 0.0)]]
        )
        return _Point(weights, factors, value, gradient, free, np.sign(b))

    def _active(self, state: _State) -> np.ndarray:
        k = self._slices[0].stop
        rows = k + np.flatnonzero(state.sides != 0)
        gross = [self.size - 1] if state.gross_binding else []
        return np.concatenate([np.arange(k), rows, gross]).astype(np.int64)

    def _newton_direction(self, point: _Point, active: np.ndarray, damping: float) -> np.ndarray | None:
        free = np.flatnonzero(point.free)
        scale = 1.0 / np.sqrt(self.curvature[free])
        columns = active[active < self.size - 1]
        rows = self._coefficients[np.ix_(free, columns)]
        if columns.size < active.size:  # λ binds: its column is the sign of b
            rows = np.hstack([rows, point.signs[free, None]])
        rows *= scale[:, None]
        factor_part = self._factor_map[:, active]
        hessian = rows.T @ rows + factor_part.T @ self.factor_precision @ factor_part
        hessian[np.diag_indices_from(hessian)] += (
            damping * max(float(np.trace(hessian)), 1e-300) / len(active)
        )
        try:
            return np.linalg.solve(hessian, point.gradient[active])
        except np.linalg.LinAlgError:
            return None

    def solve(self, alpha: np.ndarray) -> np.ndarray | None:
        """Return the optimal weights for ``alpha``, or None if the method does not converge (module doc)."""
        state = self._initial()
        k = self._slices[0].stop
        point = self._evaluate(alpha, state.z, state.sides)
        for _ in range(MAX_STEPS):
            active = self._active(state)
            if np.abs(point.gradient[active]).max(initial=0.0) <= RESIDUAL_TOLERANCE:
                joined = self._join_violated(point, state)
                if not joined:
                    # every later alpha starts from the first one's multipliers, so a portfolio does not
                    # depend on which alphas were solved before it (equal alphas: equal weights, bit for bit)
                    self._warm = self._warm or state
                    return point.weights
                active = self._active(state)
            # A limit whose names all sit at a kink or a cap has no curvature: the Newton step along it
            # is unbounded, so a step the line search rejects is retried with more damping.
            for damping in DAMPING:
                direction = self._newton_direction(point, active, damping)
                if direction is None:
                    return None
                step_limit, blocking = self._step_limit(state, active, direction, k)
                accepted = self._line_search(alpha, state, point, active, direction, step_limit)
                if accepted is not None:
                    break
            if accepted is None:
                return None
            step, point = accepted
            if blocking is not None and step == step_limit:
                self._drop(state, blocking, k)
                point = self._evaluate(alpha, state.z, state.sides)
        return None

    def _step_limit(
        self, state: _State, active: np.ndarray, direction: np.ndarray, k: int
    ) -> tuple[float, int | None]:
        """Return the longest step keeping the binding multipliers on their sides, and what stops it."""
        values = state.z[active]
        sides = np.ones(active.size)
        rows = (active >= k) & (active < self.size - 1)
        sides[rows] = np.where(state.sides[active[rows] - k] == 2, 0.0, state.sides[active[rows] - k])
        sides[:k] = 0.0  # ν is free
        moving = sides * direction < 0
        if not moving.any():
            return 1.0, None
        ratios = -values[moving] / direction[moving]
        first = int(np.argmin(ratios))
        limit = max(float(ratios[first]), 0.0)
        return (limit, int(active[moving][first])) if limit < 1.0 else (1.0, None)

    def _line_search(
        self,
        alpha: np.ndarray,
        state: _State,
        point: _Point,
        active: np.ndarray,
        direction: np.ndarray,
        step_limit: float,
    ) -> tuple[float, _Point] | None:
        slope = float(point.gradient[active] @ direction)
        step = step_limit
        for _ in range(40):
            z = state.z.copy()
            z[active] += step * direction
            trial = self._evaluate(alpha, z, state.sides)
            if trial.value >= point.value + _ARMIJO * step * slope - 1e-15 * abs(point.value):
                state.z = z
                return step, trial
            step /= 2
        return None

    def _drop(self, state: _State, coordinate: int, k: int) -> None:
        state.z[coordinate] = 0.0
        if coordinate == self.size - 1:
            state.gross_binding = False
        else:
            state.sides[coordinate - k] = 0

    def _join_violated(self, point: _Point, state: _State) -> bool:
        """Add the most violated limit to the working set (on its side); return whether one was."""
        k = self._slices[0].stop
        rows = point.gradient[k:-1] + np.where(state.sides == 2, 0.0, np.sign(state.sides) * self.limits)
        excess = np.where(state.sides == 0, np.abs(rows) - self.limits, -np.inf)
        gross_excess = (
            point.gradient[-1] if self.gross_leverage is not None and not state.gross_binding else -np.inf
        )
        worst = int(np.argmax(excess)) if excess.size else -1
        if max(excess.max(initial=-np.inf), gross_excess) <= RESIDUAL_TOLERANCE:
            return False
        if gross_excess >= excess.max(initial=-np.inf):
            state.gross_binding = True
        else:
            state.sides[worst] = 1 if rows[worst] > 0 else -1
        return True


def dual_solver(universe: Universe, limits: tuple[Limit, ...], risk_aversion: float) -> DualSolver | None:
    """Return the dual form of the problem (module doc), or None if its limits or covariance do not fit."""
    n, k = universe.size, universe.factor_count
    caps = np.full(n, np.inf)
    weight_rows: list[np.ndarray] = []
    weight_limits: list[np.ndarray] = []
    factor_rows: list[np.ndarray] = []
    factor_limits: list[np.ndarray] = []
    gross: float | None = None
    for limit in limits:
        if isinstance(limit, DistanceLimit):
            if limit.center != "zero":
                return None
            gross = limit.limit if gross is None else min(gross, limit.limit)
            continue
        assert isinstance(limit, LinearLimit)
        if limit.target == "weights" and limit.matrix is None:
            caps = np.minimum(caps, np.broadcast_to(np.asarray(limit.limit, dtype=np.float64), n))
            continue
        size = n if limit.target == "weights" else k
        matrix = np.eye(size) if limit.matrix is None else _dense(limit.matrix).reshape(size, -1)
        bound = np.broadcast_to(np.asarray(limit.limit, dtype=np.float64), matrix.shape[1])
        (weight_rows if limit.target == "weights" else factor_rows).append(matrix)
        (weight_limits if limit.target == "weights" else factor_limits).append(bound)
    values, vectors = np.linalg.eigh(universe.factor_covariance)
    if k and values.min() <= 1e-12 * max(values.max(), np.finfo(float).tiny):
        return None
    return DualSolver(
        universe,
        risk_aversion * universe.specific_variance,
        caps,
        np.hstack(weight_rows) if weight_rows else np.zeros((n, 0)),
        np.concatenate(weight_limits) if weight_limits else np.zeros(0),
        np.hstack(factor_rows) if factor_rows else np.zeros((k, 0)),
        np.concatenate(factor_limits) if factor_limits else np.zeros(0),
        gross,
        (vectors / (risk_aversion * values)) @ vectors.T if k else np.zeros((0, 0)),
    )
