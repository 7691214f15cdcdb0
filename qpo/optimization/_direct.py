"""Large linear-constraint QPs solved on their solver form, without cvxpy: the exact active-set
method warm-started from the last answer of the same shape (a backtest's previous window), else
OSQP re-using the session of the last problem of the same shape. :func:`qpo.optimization.classical.solve_classical`
sends min-variance, efficient-return and max-utility problems here from ``DIRECT_QP_MIN_ASSETS`` assets."""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from qpo.optimization.problem import PortfolioProblem
    from qpo.optimization.qp import OSQPSession

DIRECT_OBJECTIVES = ("min_variance", "efficient_return", "max_utility")
_sessions: dict[tuple[Any, ...], OSQPSession] = {}
_sessions_lock = threading.Lock()
_last_answer: dict[tuple[Any, ...], np.ndarray] = {}


def direct_qp(problem: PortfolioProblem, objective: str, options: dict):
    """Solve a linear-constraint QP on its solver form: by the exact active-set method started from
    the last answer of the same shape (a backtest's previous window), else by OSQP re-using the
    session of the last problem of the same shape (warm start, same factorization pattern), its
    answer then made exact by the active-set method when the constraints are bounds and rows."""
    from qpo.optimization import active_set
    from qpo.optimization._scale import cost_scale, return_scale
    from qpo.optimization.qp import LinearQP, OSQPSession

    rc = problem.resolved
    # solved in units where the assets' volatility is near 1 (the tolerances below are absolute)
    s = return_scale(problem)
    cov, mu = problem.annual_cov() / (s * s), problem.annual_mu() / s
    costs = rc.costs / cost_scale(objective, s)
    ra = options["risk_aversion"] * s if objective == "max_utility" else 1.0
    target: float | None = options["target_return"] / s if objective == "efficient_return" else None
    t0 = time.perf_counter()
    key = (objective, rc.structure())
    simple = rc.leverage is None and rc.max_turnover is None and not rc.has_costs
    if simple:
        H = cov * ra if objective == "max_utility" else 2.0 * cov
        q = -mu if objective == "max_utility" else np.zeros(rc.n)
        C = np.vstack([np.ones((1, rc.n)), rc.group_matrix] + ([mu[None, :]] if objective == "efficient_return" else []))
        l_parts: list[npt.ArrayLike] = [[rc.budget], rc.group_lower]
        u_parts: list[npt.ArrayLike] = [[rc.budget], rc.group_upper]
        if objective == "efficient_return":
            l_parts.append([float(options["target_return"]) / s])
            u_parts.append([np.inf])
        l, u = np.concatenate(l_parts), np.concatenate(u_parts)
        x0 = _last_answer.get(key)
        if x0 is not None and len(x0) == rc.n:
            w = active_set.solve(H, q, rc.lower, rc.upper, C, l, u, x0)
            if w is not None:
                _last_answer[key] = w
                return w, {"status": "optimal", "solver": "active-set", "tried": [], "build_s": 0.0,
                           "solve_s": time.perf_counter() - t0}
    if objective == "max_utility":
        qp = LinearQP.build(rc, cov * ra / 2.0, mu, costs)
        qp.q[:rc.n] -= mu
    else:
        qp = LinearQP.build(rc, cov, mu, costs)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None or not session.load(qp):
            session = _sessions[key] = OSQPSession(qp)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        w, status = session.solve_target(target)
    info = {"status": "optimal", "solver": "OSQP-direct", "tried": [], "solve_s": time.perf_counter() - t0,
            "build_s": build_s}
    if w is None:
        return None, f"OSQP-direct: {status}"
    if simple:
        exact = active_set.solve(H, q, rc.lower, rc.upper, C, l, u, w)
        if exact is not None:
            w = exact
            info["solver"] = "OSQP-direct+active-set"
    w = np.where(np.abs(w) < 1e-10, 0.0, w)
    broken = rc.violations(w, cov * (s * s), tol=1e-7)
    if broken:
        return None, f"OSQP-direct: answer breaks constraints ({'; '.join(broken)})"
    if simple:
        _last_answer[key] = w
    return w, info
