"""Exact ``efficient_risk`` weights from an interior-point answer.

An interior-point solver stops when the duality gap is small (1e-11 here), but on the curved
volatility constraint the weights are then only right to about the square root of that (1e-6):
the objective barely changes along the constraint. For budget, bounds and groups the answer lies
on the efficient frontier, which is piecewise affine in the target return, ``w(t) = a + t b``
(:mod:`qpo.optimization.cla`). So: start on the frontier just below the solver's return (the
exact active-set QP), walk the critical lines a little past it, and solve
``(a + t b)' Sigma (a + t b) = sigma^2`` for ``t`` on the piece that reaches the volatility target.
All in the scaled units of :mod:`qpo.optimization._scale`.
"""
from __future__ import annotations

import numpy as np


def exact_efficient_risk(cov: np.ndarray, mu: np.ndarray, rc, target_vol: float, w: np.ndarray) -> np.ndarray | None:
    """The exact weights of the highest return with volatility ``target_vol`` near the solver's
    ``w`` (``cov`` annual and ``mu`` annual, both scaled), or None when the constraints are not
    bounds and linear rows, the volatility limit does not bind, or anything is in doubt."""
    from qpo.optimization import active_set
    from qpo.optimization.cla import ActiveSetFailure, frontier_pieces

    if (rc.leverage is not None or rc.max_turnover is not None or rc.has_costs or rc.max_tracking_error is not None
            or rc.is_mixed_integer):
        return None
    vol = float(np.sqrt(max(w @ cov @ w, 0.0)))
    if vol < target_vol * (1 - 1e-5):
        return None  # the volatility limit does not bind: the answer is a vertex, exact already
    r0 = float(mu @ w)
    delta = 1e-4 * max(1.0, abs(r0))
    n = rc.n
    C = np.vstack([np.ones((1, n)), rc.group_matrix, mu[None, :]])
    lo_rows = np.concatenate([[rc.budget], rc.group_lower, [r0 - delta]])
    hi_rows = np.concatenate([[rc.budget], rc.group_upper, [np.inf]])
    w = _on_budget(w, rc)
    start = active_set.solve(2.0 * cov, np.zeros(n), rc.lower, rc.upper, C, lo_rows, hi_rows, w)
    if start is None:
        return None
    A = np.vstack([np.eye(n), rc.group_matrix])
    lo = np.concatenate([rc.lower, rc.group_lower])
    hi = np.concatenate([rc.upper, rc.group_upper])
    try:
        pieces = frontier_pieces(cov, mu, rc.budget, A, lo, hi, start, r0 + delta)
    except (ActiveSetFailure, np.linalg.LinAlgError):
        return None
    best = None
    for t_from, t_to, a, b in pieces:
        qa, qb, qc = b @ cov @ b, 2.0 * (a @ cov @ b), a @ cov @ a - target_vol ** 2
        if qa <= 0:
            continue
        disc = qb * qb - 4.0 * qa * qc
        if disc < 0:
            continue
        t = (-qb + np.sqrt(disc)) / (2.0 * qa)  # the upper (efficient) branch
        span = 1e-9 * max(1.0, abs(t))
        if t_from - span <= t <= t_to + span:
            best = a + t * b
    if best is None:
        return None
    best = np.where(np.abs(best) < 1e-13, 0.0, best)  # round-off on assets at a zero bound
    if rc.violations(best, tol=1e-9) or abs(np.sqrt(max(best @ cov @ best, 0.0)) - target_vol) > 1e-9 * target_vol:
        return None
    return best


def _on_budget(w: np.ndarray, rc) -> np.ndarray:
    """``w`` with the solver's budget residual (its feasibility tolerance) spread over the assets
    strictly inside their bounds, in proportion to their size: a feasible start for the active set."""
    gap = rc.budget - w.sum()
    inside = (w > rc.lower + 1e-9) & (w < rc.upper - 1e-9)
    if gap == 0 or not inside.any():
        return w
    share = np.where(inside, np.abs(w), 0.0)
    share = share / share.sum() if share.sum() > 0 else inside / inside.sum()
    return np.clip(w + gap * share, rc.lower, rc.upper)
