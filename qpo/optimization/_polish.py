"""Exact ``efficient_risk`` weights from an interior-point answer.

An interior-point solver stops when the duality gap is small (1e-11 here), but on the curved
volatility constraint the weights are then only right to about the square root of that (1e-6):
the objective barely changes along the constraint. For budget, bounds and groups the answer lies
on the efficient frontier, which is piecewise affine in the target return, ``w(t) = a + t b``
(:mod:`qpo.optimization.cla`). So: start on the frontier just below the solver's return (the
exact active-set QP), walk the critical lines a little past it, and solve
``(a + t b)' Sigma (a + t b) = sigma^2`` for ``t`` on the piece that reaches the volatility target.
All in the scaled units of :mod:`qpo.optimization._scale`.

A leverage or turnover limit (a sum of absolute values) is made linear first. When the solver's
answer leaves it slack, it is dropped: the exact answer without it, when it meets the limit, is the
answer with it. When it binds, the answer is kept in the solver's orthant (each weight, or trade,
keeps its sign; one at round-off is held at zero), where the limit is one linear row; that exact
answer is kept only when it meets every constraint, returns what the solver's did (to 1e-6) and lies
near it (an interior-point answer is right to ~1e-5 in its weights).
"""
from __future__ import annotations

import numpy as np


def exact_efficient_risk(cov: np.ndarray, mu: np.ndarray, rc, target_vol: float, w: np.ndarray) -> np.ndarray | None:
    """The exact weights of the highest return with volatility ``target_vol`` near the solver's
    ``w`` (``cov`` annual and ``mu`` annual, both scaled), or None when the constraints are not
    bounds, linear rows, leverage and turnover, the volatility limit does not bind, or anything is
    in doubt."""
    if rc.has_costs or rc.max_tracking_error is not None or rc.is_mixed_integer:
        return None
    lin = _linear(rc, w)
    if lin is None:
        return None
    best = _exact(cov, mu, lin, target_vol, np.clip(w, lin.lower, lin.upper))
    if best is None or rc.violations(best, tol=1e-9):
        return None
    if lin.restricted and (mu @ best < mu @ w - 1e-6 * max(1.0, abs(float(mu @ w)))
                           or np.abs(best - w).max() > 1e-3):
        return None  # the orthant was not the optimum's: keep the solver's answer
    return best


class _Linear:
    """Bounds and linear rows (the attributes of a resolved constraint set that the exact path reads)."""

    def __init__(self, rc, lower, upper, G, g_lo, g_hi, restricted):
        self.n, self.budget = rc.n, rc.budget
        self.lower, self.upper = lower, upper
        self.group_matrix, self.group_lower, self.group_upper = G, g_lo, g_hi
        self.restricted = restricted

    def violations(self, w: np.ndarray, tol: float) -> list[str]:
        rows = self.group_matrix @ w
        bad = ((w < self.lower - tol).any() or (w > self.upper + tol).any() or (rows < self.group_lower - tol).any()
               or (rows > self.group_upper + tol).any() or abs(w.sum() - self.budget) > tol)
        return ["outside"] if bad else []


def _linear(rc, w: np.ndarray) -> _Linear | None:
    """``rc`` with its leverage and turnover limits dropped (slack at ``w``) or made one linear row in
    ``w``'s orthant (binding); None when the orthant leaves no room."""
    lower, upper = rc.lower.astype(float).copy(), rc.upper.astype(float).copy()
    G, g_lo, g_hi = [rc.group_matrix], [rc.group_lower], [rc.group_upper]
    restricted = False
    for limit, center in ((rc.leverage, np.zeros(rc.n)), (rc.max_turnover, rc.reference)):
        if limit is None:
            continue
        d = w - center
        if np.abs(d).sum() < limit - 1e-6 * max(1.0, limit):
            continue  # slack: dropped (the exact answer is checked against it)
        restricted = True
        sign = np.where(d > 1e-7, 1.0, np.where(d < -1e-7, -1.0, 0.0))
        lower = np.where(sign > 0, np.maximum(lower, center), np.where(sign == 0, center, lower))
        upper = np.where(sign < 0, np.minimum(upper, center), np.where(sign == 0, center, upper))
        G.append(sign[None, :])
        g_lo.append(np.array([-np.inf]))
        g_hi.append(np.array([limit + sign @ center]))
    if (lower > upper).any():
        return None
    return _Linear(rc, lower, upper, np.vstack(G), np.concatenate(g_lo), np.concatenate(g_hi), restricted)


def _exact(cov: np.ndarray, mu: np.ndarray, rc, target_vol: float, w: np.ndarray) -> np.ndarray | None:
    from qpo.optimization import active_set
    from qpo.optimization.cla import ActiveSetFailure, frontier_pieces

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


def exact_risk_parity(cov: np.ndarray, budgets: np.ndarray, rc, w: np.ndarray) -> np.ndarray | None:
    """The exact ``risk_parity`` weights when constraints bind (the unconstrained Newton step of
    :mod:`qpo.optimization.classical` handles the rest), from the solver's ``w``: Newton's method on
    the KKT conditions of the homogenized problem (minimize ``x' Sigma x`` subject to
    ``sum(b log x) >= 0`` and the constraints on ``x = s w``), with the constraints active at ``w``
    (bounds, groups, a turnover limit in ``w``'s orthant) held as equalities. The answer is kept
    only when it is certified: every multiplier has the right sign (the problem is convex, so this
    is the optimum) and every constraint holds; else None (the solver's answer stands)."""
    if (rc.has_costs or rc.max_tracking_error is not None or rc.is_mixed_integer or (w <= 0).any()
            or rc.leverage is not None and rc.leverage < rc.budget):
        return None
    rows, kinds = _homogeneous_rows(rc, w)
    n = rc.n
    t = float(np.exp(-(budgets @ np.log(w)) / budgets.sum()))  # x = t w meets sum(b log x) = 0
    z = np.append(t * w, t)
    active = [i for i, (g, _) in enumerate(rows) if abs(g @ z) <= 1e-6 * t] + [i for i, (_, k) in enumerate(rows)
                                                                               if k in ("eq", "zero")]
    active = sorted(set(active))
    for _ in range(8):
        sol = _kkt_newton(cov, budgets, np.array([rows[i][0] for i in active]).reshape(len(active), n + 1), z)
        if sol is None:
            return None
        z_new, lam, nu = sol
        slack = np.array([g @ z_new for g, _ in rows])
        violated = [i for i in range(len(rows)) if i not in active and slack[i] > 1e-12 * z_new[-1]]
        if violated:
            active = sorted(set(active) | {max(violated, key=lambda i: slack[i])})
            continue
        tol = 1e-10 * max(1.0, abs(lam))
        wrong = [(nu[j], i) for j, i in enumerate(active) if kinds[i] != "eq" and kinds[i] != "zero" and nu[j] < -tol]
        if wrong:
            active.remove(min(wrong)[1])
            continue
        # where a trade is zero the turnover limit has a kink: its multiplier mu bounds the others there
        mu = sum(nu[j] for j, i in enumerate(active) if kinds[i] == "turnover")
        if any(kinds[i] == "zero" and abs(nu[j]) > mu + tol or kinds[i] == "orthant" and nu[j] > 2 * mu + tol
               for j, i in enumerate(active)):
            return None
        if lam < 0 or (z_new[:n] <= 0).any():
            return None
        exact = z_new[:n] / z_new[-1]
        if rc.violations(exact, tol=1e-9) or np.abs(exact - w).max() > 1e-3:
            return None
        return exact
    return None


def _homogeneous_rows(rc, w: np.ndarray):
    """The constraints on ``z = (x, s)`` as rows ``g``: ``g' z <= 0`` (``"le"``) or ``== 0`` (``"eq"``);
    a turnover limit in ``w``'s orthant: its row (``"turnover"``, ``<= 0``), each trade keeping its sign
    (``"orthant"``, ``<= 0``) and a trade at round-off held at zero (``"zero"``, ``== 0``)."""
    n = rc.n
    rows: list[tuple[np.ndarray, str]] = [(np.append(np.ones(n), -rc.budget), "eq")]
    eye = np.eye(n)
    for i in range(n):
        if np.isfinite(rc.lower[i]):
            rows.append((np.append(-eye[i], rc.lower[i]), "le"))
        if np.isfinite(rc.upper[i]):
            rows.append((np.append(eye[i], -rc.upper[i]), "le"))
    for g, lo, hi in zip(rc.group_matrix, rc.group_lower, rc.group_upper):
        if np.isfinite(lo):
            rows.append((np.append(-g, lo), "le"))
        if np.isfinite(hi):
            rows.append((np.append(g, -hi), "le"))
    if rc.max_turnover is not None:
        d = w - rc.reference
        if np.abs(d).sum() >= rc.max_turnover - 1e-6 * max(1.0, rc.max_turnover):
            sign = np.where(d > 1e-7, 1.0, np.where(d < -1e-7, -1.0, 0.0))
            for j in np.flatnonzero(sign == 0):
                rows.append((np.append(eye[j], -rc.reference[j]), "zero"))
            rows.append((np.append(sign, -(sign @ rc.reference) - rc.max_turnover), "turnover"))
            for j in np.flatnonzero(sign != 0):  # the orthant: the trade keeps its sign
                rows.append((np.append(-sign[j] * eye[j], sign[j] * rc.reference[j]), "orthant"))
    return rows, [k for _, k in rows]


def _kkt_newton(cov: np.ndarray, b: np.ndarray, E: np.ndarray, z: np.ndarray):
    """Newton's method on the KKT system of: minimize x' Sigma x s.t. sum(b log x) = 0, E z = 0
    (``z = (x, s)``); multipliers first fitted by least squares. Returns (z, lambda, nu) or None."""
    n, m = len(b), len(E)
    x = z[:n]

    def residual(z, lam, nu):
        x = z[:n]
        gx = 2.0 * cov @ x - lam * b / x + E[:, :n].T @ nu
        gs = E[:, n] @ nu
        return np.concatenate([gx, [gs, b @ np.log(x)], E @ z])

    A = np.vstack([np.append(-b / x, 0.0), np.hstack([E[:, :n], E[:, n:]])]).T  # columns: lambda, nu
    coef, *_ = np.linalg.lstsq(A, -np.append(2.0 * cov @ x, 0.0), rcond=None)
    lam, nu = float(coef[0]), coef[1:]
    for _ in range(60):
        r = residual(z, lam, nu)
        if np.abs(r).max() < 1e-14 * max(1.0, np.abs(2.0 * cov @ z[:n]).max()):
            return z, lam, nu
        x = z[:n]
        J = np.zeros((n + 2 + m, n + 2 + m))
        J[:n, :n] = 2.0 * cov + lam * np.diag(b / x ** 2)
        J[:n, n + 1] = -b / x
        J[:n, n + 2:] = E[:, :n].T
        J[n, n + 2:] = E[:, n]
        J[n + 1, :n] = b / x
        J[n + 2:, :n + 1] = E
        try:
            step = np.linalg.solve(J, -r)
        except np.linalg.LinAlgError:
            return None
        alpha = 1.0
        while (z[:n] + alpha * step[:n] <= 0).any():
            alpha /= 2
            if alpha < 1e-8:
                return None
        z = z + alpha * step[:n + 1]
        lam, nu = lam + alpha * step[n + 1], nu + alpha * step[n + 2:]
    return None
