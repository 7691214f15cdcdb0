"""An exact primal active-set method (Nocedal & Wright, algorithm 16.3) for the QP

    minimize  1/2 x'Hx + q'x   s.t.  lo <= x <= hi,  l <= C x <= u   (rows with l == u are equalities)

started from a feasible point: the last answer of a problem of the same shape (a backtest's
previous window; bounds and rows unchanged, the covariance moved) or an iterative solver's
answer. Each step solves the KKT system of the free variables only (bounds are eliminated), so
an iteration costs a small dense solve however many assets are at a bound. One constraint
enters (the first that blocks the step) or leaves (the most wrongly signed multiplier) per
iteration, which keeps the working set linearly independent. The answer is exact to round-off
and certified by the KKT conditions; on any doubt :func:`solve` returns None and the caller
uses an iterative solver.
"""
from __future__ import annotations

import numpy as np


def solve(H: np.ndarray, q: np.ndarray, lo: np.ndarray, hi: np.ndarray, C: np.ndarray, l: np.ndarray,
          u: np.ndarray, x0: np.ndarray, max_iter: int | None = None) -> np.ndarray | None:
    n, m = len(q), len(l)
    s = max(1.0, np.abs(x0).max())
    feas = 1e-8 * s
    Cx0 = C @ x0
    if (x0 < lo - feas).any() or (x0 > hi + feas).any() or (Cx0 > u + feas).any() or (Cx0 < l - feas).any():
        return None  # the start must be feasible
    x = np.clip(x0, lo, hi)
    box = np.zeros(n, dtype=int)
    box[x <= lo + feas] = -1
    box[x >= hi - feas] = 1
    box[(hi - lo) <= 1e-14] = 1
    eq = np.isfinite(l) & np.isfinite(u) & (u - l <= 1e-14)
    row = np.zeros(m, dtype=int)
    row[eq] = 2
    near_u = ~eq & np.isfinite(u) & (Cx0 >= u - feas)
    near_l = ~eq & np.isfinite(l) & (Cx0 <= l + feas)
    for r in np.flatnonzero(near_u | near_l):  # add the active rows that keep the working set independent
        trial = row.copy()
        trial[r] = 1 if near_u[r] else -1
        if _independent(C, trial, box):
            row = trial
    if not _independent(C, row, box):
        return None
    x[box == 1], x[box == -1] = hi[box == 1], lo[box == -1]
    gscale = max(1.0, np.abs(H).max() * s, np.abs(q).max())
    dual_tol = 1e-10 * gscale
    for _ in range(max_iter or 4 * (n + m) + 50):
        sol = _eqp(H, q, C, l, u, box, row, lo, hi)
        if sol is None:
            return None
        x_eq, lam = sol
        p = x_eq - x
        if np.abs(p).max() <= 1e-13 * s:
            x = x_eq
            g = H @ x + q + C.T @ lam
            wrong_box = np.where(box == 1, g, 0.0) + np.where(box == -1, -g, 0.0)  # > 0 is a wrong sign
            wrong_box[(hi - lo) <= 1e-14] = 0.0
            wrong_row = np.where(row == 1, -lam, 0.0) + np.where(row == -1, lam, 0.0)
            i, j = int(np.argmax(wrong_box)), int(np.argmax(wrong_row)) if m else -1
            worst_box = wrong_box[i]
            worst_row = wrong_row[j] if m else -np.inf
            if max(worst_box, worst_row) <= dual_tol:
                return x
            if worst_box >= worst_row:
                box[i] = 0
            else:
                row[j] = 0
            continue
        # step towards x_eq until the first constraint outside the working set blocks it
        alpha, block = 1.0, None
        free = np.flatnonzero(box == 0)
        pf = p[free]
        with np.errstate(divide="ignore", invalid="ignore"):
            a_hi = np.where(pf > 1e-15, (hi[free] - x[free]) / pf, np.inf)
            a_lo = np.where(pf < -1e-15, (lo[free] - x[free]) / pf, np.inf)
        for arr, side in ((a_hi, 1), (a_lo, -1)):
            if arr.size:
                k = int(np.argmin(arr))
                if arr[k] < alpha:
                    alpha, block = max(arr[k], 0.0), ("box", free[k], side)
        if m:
            Cx, Cp = C @ x, C @ p
            idle = row == 0
            with np.errstate(divide="ignore", invalid="ignore"):
                r_hi = np.where(idle & (Cp > 1e-15) & np.isfinite(u), (u - Cx) / Cp, np.inf)
                r_lo = np.where(idle & (Cp < -1e-15) & np.isfinite(l), (l - Cx) / Cp, np.inf)
            for arr, side in ((r_hi, 1), (r_lo, -1)):
                k = int(np.argmin(arr))
                if arr[k] < alpha:
                    alpha, block = max(arr[k], 0.0), ("row", k, side)
        x = x + alpha * p
        if block is not None:
            kind, k, side = block
            if kind == "box":
                box[k] = side
                x[k] = hi[k] if side == 1 else lo[k]
            else:
                row[k] = side
    return None


def _independent(C, row, box) -> bool:
    S = np.flatnonzero(row != 0)
    if not len(S):
        return True
    F = np.flatnonzero(box == 0)
    if len(F) < len(S):
        return False
    return np.linalg.matrix_rank(C[np.ix_(S, F)]) == len(S)


def _eqp(H, q, C, l, u, box, row, lo, hi):
    """The minimizer with the working set held as equalities, and the rows' multipliers."""
    n, m = len(q), len(l)
    F = np.flatnonzero(box == 0)
    B = np.flatnonzero(box != 0)
    xB = np.where(box[B] == 1, hi[B], lo[B])
    S = np.flatnonzero(row != 0)
    CS = C[S]
    d = np.where(row[S] == -1, l[S], u[S])
    k = len(F)
    K = np.zeros((k + len(S), k + len(S)))
    K[:k, :k] = H[np.ix_(F, F)]
    K[:k, k:] = CS[:, F].T
    K[k:, :k] = CS[:, F]
    rhs = np.concatenate([-q[F] - H[np.ix_(F, B)] @ xB, d - CS[:, B] @ xB])
    try:
        sol = np.linalg.solve(K, rhs)
    except np.linalg.LinAlgError:
        return None
    if not np.isfinite(sol).all() or np.abs(K @ sol - rhs).max() > 1e-9 * max(1.0, np.abs(rhs).max()):
        return None
    x = np.empty(n)
    x[F] = sol[:k]
    x[B] = xB
    lam = np.zeros(m)
    lam[S] = sol[k:]
    return x, lam
