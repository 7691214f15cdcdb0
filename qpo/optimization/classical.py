"""Classical mean-variance optimizers on cvxpy.

Each objective is compiled once into a :class:`CompiledObjective` whose data enter as
``cp.Parameter`` values (DPP), so that a frontier or a backtest re-solves by updating
parameters instead of rebuilding the problem.
"""
from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass

import numpy as np

from qpo.errors import InfeasibleError, SolverError
from qpo.optimization.problem import PortfolioProblem

DEFAULT_SOLVER = "CLARABEL"


def _factor(cov: np.ndarray) -> np.ndarray:
    """F with F.T @ F == cov (symmetric square root; exact for PSD-singular matrices too)."""
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
    vals = np.clip(vals, 0.0, None)
    return (vecs * np.sqrt(vals)) @ vecs.T


def _max_excess_return(excess: np.ndarray, lo: float, hi: float, budget: float) -> float:
    """Highest ``excess @ w`` over ``lo <= w <= hi, sum(w) = budget`` (greedy: exact for a box and a
    budget): start every weight at ``lo``, then fill the best assets up to ``hi``."""
    w = np.full(excess.size, lo, dtype=float)
    left = budget - lo * excess.size
    for i in np.argsort(-excess):
        if left <= 0:
            break
        add = min(hi - lo, left)
        w[i] += add
        left -= add
    return float(excess @ w)


@dataclass
class CompiledObjective:
    """A cvxpy problem built once; :meth:`solve` updates its parameters and re-solves."""

    objective: str
    n: int

    def __post_init__(self):
        import cvxpy as cp

        self.lock = threading.Lock()
        n = self.n
        self.F = cp.Parameter((n, n), name="cov_factor")
        self.lo = cp.Parameter(name="lower")
        self.hi = cp.Parameter(name="upper")
        self.budget = cp.Parameter(name="budget")
        if self.objective == "min_variance":
            self.w = cp.Variable(n, name="w")
            cons = [cp.sum(self.w) == self.budget, self.w >= self.lo, self.w <= self.hi]
            self.problem = cp.Problem(cp.Minimize(cp.sum_squares(self.F @ self.w)), cons)
        elif self.objective == "max_sharpe":
            # Cornuejols-Tutuncu: with y = kappa * w, maximizing Sharpe is the convex
            # min ||F y||^2 s.t. excess' y = 1, sum(y) = kappa * budget, bounds scaled by kappa.
            self.excess = cp.Parameter(n, name="excess")
            self.y = cp.Variable(n, name="y")
            self.kappa = cp.Variable(nonneg=True, name="kappa")
            cons = [self.excess @ self.y == 1, cp.sum(self.y) == self.budget * self.kappa,
                    self.y >= self.lo * self.kappa, self.y <= self.hi * self.kappa]
            self.problem = cp.Problem(cp.Minimize(cp.sum_squares(self.F @ self.y)), cons)
        else:  # pragma: no cover - guarded by the engine
            raise ValueError(self.objective)

    def solve(self, problem: PortfolioProblem, solver: str | None = None) -> tuple[np.ndarray, dict]:
        import cvxpy as cp

        P = problem.periods_per_year
        c = problem.constraints
        # Annualized data keep the solver well scaled (daily variances are ~1e-4).
        self.F.value = _factor(problem.cov.to_numpy() * P)
        self.lo.value, self.hi.value, self.budget.value = c.lower, c.upper, c.budget
        if self.objective == "max_sharpe":
            excess = problem.mu.to_numpy() * P - problem.risk_free_rate
            best = _max_excess_return(excess, c.lower, c.upper, c.budget)
            if best <= 1e-12:
                raise InfeasibleError(
                    "max_sharpe needs a portfolio whose expected return exceeds the risk-free rate "
                    f"{problem.risk_free_rate:g}; within these constraints the highest is "
                    f"{best + problem.risk_free_rate:.4g} (annualized; the best single asset has "
                    f"{excess.max() + problem.risk_free_rate:.4g}). Use min_variance, loosen max_weight, "
                    "or use other expected returns")
            self.excess.value = excess
        solver = solver or DEFAULT_SOLVER
        t0 = time.perf_counter()
        try:
            self.problem.solve(solver=solver, warm_start=True)
        except cp.error.SolverError as exc:
            raise SolverError(f"solver {solver} failed on {self.objective}: {exc}; try solver='SCS' "
                              "or check the covariance's conditioning") from exc
        solve_s = time.perf_counter() - t0
        status = self.problem.status
        if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            raise InfeasibleError(f"{self.objective}: the constraints cannot hold together ({c})")
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            raise SolverError(f"{self.objective}: solver {solver} returned status {status!r}; "
                              "try another solver (solver='SCS') or looser constraints")
        if self.objective == "max_sharpe":
            kappa = float(self.kappa.value)
            if kappa <= 1e-12:
                raise SolverError("max_sharpe: degenerate solution (kappa = 0)")
            w = np.asarray(self.y.value, dtype=float) / kappa
        else:
            w = np.asarray(self.w.value, dtype=float)
        return w, {"solve_s": solve_s, "status": status, "solver": solver}


@functools.lru_cache(maxsize=64)
def compiled_objective(objective: str, n_assets: int) -> CompiledObjective:
    """The compiled problem for ``objective`` on ``n_assets`` assets, built once per process:
    later calls (a sweep, a backtest, the dashboard) only set its parameters and re-solve."""
    return CompiledObjective(objective, n_assets)


def solve_classical(problem: PortfolioProblem, objective: str, solver: str | None = None):
    problem.constraints.check_feasible(problem.n_assets)
    t0 = time.perf_counter()
    compiled = compiled_objective(objective, problem.n_assets)
    build_s = time.perf_counter() - t0
    with compiled.lock:  # one cvxpy problem object: one solve at a time
        w, info = compiled.solve(problem, solver)
    info["build_s"] = build_s
    return w, info
