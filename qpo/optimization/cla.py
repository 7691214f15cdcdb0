"""An exact efficient frontier by parametric active sets (the critical line algorithm,
generalized from box constraints to any linear rows ``l <= A w <= u``).

Along the frontier ``min w'Sigma w  s.t.  1'w = budget, mu'w = t, l <= A w <= u`` the solution
is piecewise affine in the target ``t``: while the set of constraints at a bound does not change,
the KKT system is linear and ``w(t) = a + t b``. Starting from the minimum-variance portfolio's
active set, the algorithm walks ``t`` upwards and stops at each *critical line* crossing: a free
row reaching a bound, or an active row's multiplier changing sign (the row frees itself). Every
point between two crossings is then exact, with no iterative solver at all.
"""
from __future__ import annotations

import numpy as np

_TOL = 1e-9


class ActiveSetFailure(RuntimeError):
    """The walk met a degenerate or singular step; the caller falls back to a solver."""


def frontier_pieces(cov: np.ndarray, mu: np.ndarray, budget: float, A: np.ndarray, lo: np.ndarray,
                    hi: np.ndarray, w_start: np.ndarray, t_end: float) -> list[tuple[float, float, np.ndarray, np.ndarray]]:
    """Affine pieces ``(t_from, t_to, a, b)`` with ``w(t) = a + t b`` from ``mu'w_start`` towards
    ``t_end``. When a crossing makes the active rows linearly dependent (a degenerate vertex), the
    walk stops there: the last piece's ``t_to`` says how far it got."""
    n, m = len(mu), A.shape[0]
    Aw = A @ w_start
    scale = 1e-7 * max(1.0, np.abs(w_start).max())
    side = np.zeros(m, dtype=int)  # 0 free, +1 at upper, -1 at lower, 2 fixed (lo == hi)
    side[np.isfinite(hi) & (np.abs(Aw - hi) <= scale)] = 1
    side[np.isfinite(lo) & (np.abs(Aw - lo) <= scale)] = -1
    side[np.isfinite(lo) & np.isfinite(hi) & (hi - lo <= 1e-12)] = 2
    E = np.vstack([np.ones(n), mu])
    H = 2.0 * cov
    t = float(mu @ w_start)
    pieces: list[tuple[float, float, np.ndarray, np.ndarray]] = []
    for _ in range(4 * (n + m) + 10):
        S = np.flatnonzero(side != 0)
        A_S = A[S]
        k = 2 + len(S)
        K = np.zeros((n + k, n + k))
        K[:n, :n] = H
        K[:n, n:n + 2] = E.T
        K[n:n + 2, :n] = E
        K[:n, n + 2:] = A_S.T
        K[n + 2:, :n] = A_S
        bound = np.where(side[S] == 1, hi[S], lo[S])
        r0 = np.concatenate([np.zeros(n), [budget, 0.0], bound])
        r1 = np.zeros(n + k)
        r1[n + 1] = 1.0
        try:
            sol = np.linalg.solve(K, np.column_stack([r0, r1]))
            ok = np.isfinite(sol).all() and np.abs(K @ sol - np.column_stack([r0, r1])).max() <= 1e-8
        except np.linalg.LinAlgError:
            ok = False
        if not ok:  # a degenerate active set (dependent rows): the exact walk stops here
            if not pieces:
                raise ActiveSetFailure(f"singular KKT system at t={t:.6g}")
            return pieces
        a, b = sol[:n, 0], sol[:n, 1]
        nu0, nu1 = sol[n + 2:, 0], sol[n + 2:, 1]
        # next crossing
        t_next, event = t_end, None
        free = np.flatnonzero(side == 0)
        if len(free):
            Af = A[free]
            fa, fb = Af @ a, Af @ b
            with np.errstate(divide="ignore", invalid="ignore"):
                t_hi = np.where((fb > _TOL) & np.isfinite(hi[free]), (hi[free] - fa) / fb, np.inf)
                t_lo = np.where((fb < -_TOL) & np.isfinite(lo[free]), (lo[free] - fa) / fb, np.inf)
            for arr, s in ((t_hi, 1), (t_lo, -1)):
                j = int(np.argmin(arr))
                if arr[j] < t_next and arr[j] >= t - 1e-12:
                    t_next, event = max(arr[j], t), ("add", free[j], s)
        # multipliers: an upper row needs nu >= 0, a lower row nu <= 0 (2 Sigma w + E'lam + A_S'nu = 0)
        for pos, row in enumerate(S):
            if side[row] == 2:
                continue
            sgn = side[row]
            v0, v1 = sgn * nu0[pos], sgn * nu1[pos]  # must stay >= 0
            if v1 < -_TOL:
                t_cross = -v0 / v1
                if t_cross < t_next and t_cross >= t - 1e-12:
                    t_next, event = max(t_cross, t), ("drop", row, 0)
        pieces.append((t, min(t_next, t_end), a, b))
        if event is None or t_next >= t_end:
            return pieces
        kind, row, s = event
        side[row] = s if kind == "add" else 0
        t = t_next
    raise ActiveSetFailure("too many active-set changes (cycling on a degenerate frontier)")


def weights_at(pieces, targets: np.ndarray) -> np.ndarray:
    """The frontier weights at each target (targets within the pieces' range; beyond the last
    piece's end the caller solves the points another way)."""
    starts = np.array([p[0] for p in pieces])
    out = np.empty((len(targets), len(pieces[0][2])))
    for i, t in enumerate(targets):
        j = max(int(np.searchsorted(starts, t, side="right")) - 1, 0)
        _, _, a, b = pieces[j]
        out[i] = a + t * b
    return out
