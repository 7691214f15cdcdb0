"""``qpo.optimize``: one entry point, every objective and method."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from qpo.errors import SolverError, UnknownOptionError
from qpo.optimization.problem import PortfolioProblem
from qpo.optimization.result import OptimizationResult

OBJECTIVES = ("min_variance", "max_sharpe")
METHODS = ("classical",)


def portfolio_statistics(problem: PortfolioProblem, weights: np.ndarray) -> tuple[float, float, float]:
    """Annualized (expected return, volatility, Sharpe) of ``weights`` under the problem's moments."""
    P = problem.periods_per_year
    ret = float(problem.mu.to_numpy() @ weights) * P
    vol = float(np.sqrt(max(weights @ problem.cov.to_numpy() @ weights, 0.0) * P))
    sharpe = (ret - problem.risk_free_rate) / vol if vol > 0 else float("nan")
    return ret, vol, sharpe


def optimize(problem: PortfolioProblem, objective: str = "min_variance", method: str = "classical",
             solver: str | None = None) -> OptimizationResult:
    """Optimize ``problem`` for ``objective`` with ``method``.

    Parameters
    ----------
    objective
        ``"min_variance"`` or ``"max_sharpe"``.
    method
        ``"classical"`` (cvxpy).
    solver
        cvxpy solver name (default Clarabel).

    Raises
    ------
    InfeasibleError
        the constraints cannot hold together (the message names them).
    SolverError
        the solver failed; the message says what to try.
    """
    if not isinstance(problem, PortfolioProblem):
        raise TypeError(f"problem must be a qpo.PortfolioProblem, got {type(problem).__name__}")
    if objective not in OBJECTIVES:
        raise UnknownOptionError("objective", objective, OBJECTIVES)
    if method not in METHODS:
        raise UnknownOptionError("method", method, METHODS)
    from qpo.optimization.classical import solve_classical

    t0 = time.perf_counter()
    w, info = solve_classical(problem, objective, solver)
    w = np.where(np.abs(w) < 1e-10, 0.0, w)
    broken = problem.constraints.violations(w)
    if broken:
        raise SolverError(f"{objective}: the solver's answer breaks constraints ({'; '.join(broken)}); "
                          "try solver='SCS' or another solver")
    ret, vol, sharpe = portfolio_statistics(problem, w)
    return OptimizationResult(
        weights=pd.Series(w, index=problem.tickers, name="weight"),
        expected_return=ret, volatility=vol, sharpe=sharpe,
        objective=objective, method=method, solver=info["solver"], status=info["status"],
        periods_per_year=problem.periods_per_year, risk_free_rate=problem.risk_free_rate,
        timings={"build_s": info["build_s"], "solve_s": info["solve_s"],
                 "total_s": time.perf_counter() - t0},
    )
