"""The mean-variance efficient frontier: ``qpo.efficient_frontier(problem, n_points=50)``.

Points are spaced evenly in expected return, from the minimum-variance portfolio's return to
the highest return the constraints allow; each point is the least-variance portfolio reaching
its target (``efficient_return``), under every constraint of the problem.

Two paths, the same answers (a test holds them to each other):

* budget, bounds and groups: exact, by the critical line algorithm generalized to linear rows
  (:mod:`qpo.optimization.cla`): no iterative solver, every point exact to round-off;
* with leverage: the split QP built once in solver form, OSQP re-solving it per point with only
  the return floor changed, warm-started and polished (:mod:`qpo.optimization.qp`);
* anything else (turnover, costs, tracking error, market impact, cardinality): the compiled cvxpy
  ``efficient_return`` model, re-solved by setting its target parameter.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from qpo._checks import whole
from qpo.optimization.problem import PortfolioProblem

STAT_COLUMNS = ("target_return", "expected_return", "volatility", "sharpe")


def efficient_frontier(problem: PortfolioProblem, n_points: int = 50, *, solver=None,
                       fast: bool = True) -> pd.DataFrame:
    """``n_points`` efficient portfolios, as a DataFrame: one row per point, the columns
    :data:`STAT_COLUMNS` (annualized) then one weight column per ticker.

    ``frame.attrs`` records the path (``'osqp-direct'`` or ``'cvxpy'``), the solver, timings and any
    point that had to be re-solved by the fallback chain. ``fast=False`` forces the cvxpy path;
    giving ``solver=`` does too.
    """
    from qpo.optimization.qp import qp_representable

    if not isinstance(problem, PortfolioProblem):
        raise TypeError(f"problem must be a qpo.PortfolioProblem, got {type(problem).__name__}")
    n_points = whole("n_points", n_points, lo=2)
    t0 = time.perf_counter()
    rc = problem.resolved
    if fast and solver is None and qp_representable(rc):
        weights: list[np.ndarray] | None = None
        meta: dict[str, Any] = {}
        if rc.leverage is None and rc.max_turnover is None and not rc.has_costs:
            from qpo.optimization.cla import ActiveSetFailure

            try:
                weights, meta = _active_set_path(problem, int(n_points))
            except ActiveSetFailure as exc:
                weights, meta = _osqp_path(problem, int(n_points))
                meta["fallback_points"].insert(0, f"active-set walk stopped ({exc}); every point solved by OSQP")
        elif rc.max_turnover is None and not rc.has_costs:  # leverage: OSQP on the split form
            weights, meta = _osqp_path(problem, int(n_points))
        if weights is None:  # turnover and costs: Clarabel's interior point converges faster than ADMM
            weights, meta = _cvxpy_path(problem, int(n_points), None)
    else:
        weights, meta = _cvxpy_path(problem, int(n_points), solver)
    mu, cov = problem.annual_mu(), problem.annual_cov()
    W = np.vstack(weights)
    ret = W @ mu
    vol = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", W, cov, W), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(vol > 0, (ret - problem.risk_free_rate) / vol, np.nan)
    stats = np.column_stack([meta.pop("targets"), ret, vol, sharpe])
    frame = pd.DataFrame(np.hstack([stats, W]), columns=[*STAT_COLUMNS, *problem.tickers])
    frame.index.name = "point"
    meta["total_s"] = time.perf_counter() - t0
    meta["periods_per_year"] = problem.periods_per_year
    meta["risk_free_rate"] = problem.risk_free_rate
    frame.attrs.update(meta)
    return frame


def _targets(r_min: float, r_max: float, n: int) -> np.ndarray:
    r_top = max(r_min, r_max - 1e-9 * max(1.0, abs(r_max)))  # the very top is a single point: stay inside
    return np.linspace(r_min, r_top, n)


def _single_point(targets: np.ndarray, s: float = 1.0) -> bool:
    """True when the constraints leave no return range above the minimum-variance portfolio's:
    the frontier is that one portfolio (solving for targets 1e-9 apart only stalls solvers).
    ``s`` is the returns' scale (:mod:`qpo.optimization._scale`): the test is in its units."""
    t = targets / s
    return t[-1] - t[0] <= 1e-7 * max(1.0, abs(t[-1]))


def _scaled_targets(r_min: float, r_max: float, n: int, s: float) -> np.ndarray:
    """:func:`_targets` worked out in units where the assets' volatility is near 1 (``s``, see
    :mod:`qpo.optimization._scale`), returned in the caller's units."""
    return _targets(r_min / s, r_max / s, n) * s


def _frontier_ends(problem: PortfolioProblem, n: int):
    """The linear-constraint QP's OSQP session (on the scaled moments: its targets are in units of
    ``scale``), the minimum-variance weights, the targets (the caller's units) up to the highest
    reachable return (an LP) and the scale; names the conflict when the constraints are infeasible."""
    from qpo.optimization._scale import cost_scale, return_scale
    from qpo.optimization.classical import _raise_infeasible
    from qpo.optimization.model import data_values
    from qpo.optimization.qp import LinearQP, OSQPSession

    s = return_scale(problem)
    mu = problem.annual_mu() / s
    qp = LinearQP.build(problem.resolved, problem.annual_cov() / (s * s), mu,
                        problem.resolved.costs / cost_scale("efficient_return", s))
    top = qp.max_return(mu)
    if top is None:
        _raise_infeasible(problem, "min_variance", {}, data_values(problem, "min_variance", {}))
    session = OSQPSession(qp)
    fallback = []
    w_min, status = session.solve_target(None)
    if w_min is None:
        fallback.append(f"minimum variance: {status}; solved by the interior-point chain")
        w_min = _fallback_point(problem, None)
    return session, w_min, _targets(float(mu @ w_min), top[0], n) * s, fallback, s


def _osqp_path(problem: PortfolioProblem, n: int):
    session, w_min, targets, fallback, s = _frontier_ends(problem, n)
    if _single_point(targets, s):
        return [w_min] * n, {"targets": np.full(n, targets[0]), "path": "osqp-direct", "solver": "OSQP",
                             "fallback_points": ["a single efficient portfolio: no return range above it"]}
    weights = [w_min]
    for i, t in enumerate(targets[1:], start=1):
        w, status = session.solve_target(t / s)
        if w is None:
            fallback.append(f"point {i} (target {t:.6g}): {status}; re-solved by the cvxpy chain")
            w = _fallback_point(problem, t)
        weights.append(w)
    return weights, {"targets": targets, "path": "osqp-direct", "solver": "OSQP", "fallback_points": fallback}


def _active_set_path(problem: PortfolioProblem, n: int):
    from qpo.optimization.cla import ActiveSetFailure, frontier_pieces, weights_at

    rc = problem.resolved
    _, w_min, targets, fallback, s = _frontier_ends(problem, n)
    cov = problem.annual_cov() / (s * s)
    if _single_point(targets, s):
        return [w_min] * n, {"targets": np.full(n, targets[0]), "path": "active-set", "solver": "OSQP",
                             "fallback_points": ["a single efficient portfolio: no return range above it"]}
    A = np.vstack([np.eye(rc.n), rc.group_matrix])
    lo = np.concatenate([rc.lower, rc.group_lower])
    hi = np.concatenate([rc.upper, rc.group_upper])
    pieces = frontier_pieces(cov, problem.annual_mu() / s, rc.budget, A, lo, hi, w_min, float(targets[-1] / s))
    W = weights_at(pieces, targets / s)
    W[0] = w_min
    reached = pieces[-1][1] * s
    beyond = np.flatnonzero(targets / s > pieces[-1][1] + 1e-12)
    if len(beyond):  # a degenerate vertex stopped the walk: the points past it go to the solver chain
        for k in beyond:
            W[k] = _fallback_point(problem, float(targets[k]))
        fallback.append(f"points {beyond[0]}-{beyond[-1]} (past a degenerate vertex at target {reached:.6g}) "
                        "solved by the interior-point chain")
    for i, w in enumerate(W):
        broken = rc.violations(w, tol=1e-7)
        if broken:
            raise ActiveSetFailure(f"point {i} breaks {broken[0]}")
    return list(W), {"targets": targets, "path": "active-set", "solver": "critical line (exact)",
                     "critical_lines": len(pieces) - 1, "fallback_points": fallback}


def _fallback_point(problem: PortfolioProblem, target: float | None) -> np.ndarray:
    from qpo.optimization.engine import optimize

    if target is None:
        return optimize(problem, "min_variance", confidence_level=None).weights.to_numpy()
    return optimize(problem, "efficient_return", target_return=float(target),
                    confidence_level=None).weights.to_numpy()


def _cvxpy_path(problem: PortfolioProblem, n: int, solver):
    from qpo.errors import SolverError
    from qpo.optimization._scale import return_scale
    from qpo.optimization.classical import (
        _raise_infeasible,
        _try_solvers,
        compiled_model,
        extreme_value,
        solver_chain,
    )
    from qpo.optimization.engine import optimize
    from qpo.optimization.model import data_values

    rc = problem.resolved
    first = optimize(problem, "min_variance", solver=solver, confidence_level=None)
    r_max = extreme_value(problem, "max")
    s = return_scale(problem)
    targets = _scaled_targets(first.expected_return, r_max, n, s)
    if _single_point(targets, s):
        return [first.weights.to_numpy()] * n, {
            "targets": np.full(n, targets[0]), "path": "cvxpy", "solver": first.solver,
            "fallback_points": ["a single efficient portfolio: no return range above it"]}
    chain = solver_chain(problem, "efficient_return", solver)
    values = data_values(problem, "efficient_return", {"target_return": float(targets[0])})
    compiled = compiled_model("efficient_return", rc.structure(), 0)
    weights = [first.weights.to_numpy()]
    answered = {first.solver}
    fallback: list[str] = []
    with compiled.lock:
        compiled.model.set(values)
        for i in range(1, n):
            compiled.model.params.target.value = float(targets[i] / s)  # the model's scaled units
            try:
                w, info = _try_solvers(compiled, problem, "efficient_return", chain, None)
            except SolverError:
                if i < n - 1:
                    raise
                w = None
            if w is None and i == n - 1:
                # within 1e-9 of the top the feasible set is nearly a point and interior-point
                # solvers stall or call it infeasible: step back by a millionth of the return range
                targets[i] -= 1e-6 * (targets[-1] - targets[0])
                compiled.model.params.target.value = float(targets[i] / s)
                w, info = _try_solvers(compiled, problem, "efficient_return", chain, None)
                fallback.append(f"top point moved down to target {targets[i]:.8g} (solvers stall at the vertex)")
            if w is None:  # pragma: no cover - the target lies within [r_min, r_max]
                _raise_infeasible(problem, "efficient_return", {"target_return": float(targets[i])}, values)
            answered.add(info["solver"])
            weights.append(w)
    return weights, {"targets": targets, "path": "cvxpy", "solver": "+".join(sorted(answered)),
                     "fallback_points": fallback}
