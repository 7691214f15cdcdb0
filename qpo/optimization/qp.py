"""The linear-constraint portfolio QP in solver form, solved by OSQP directly.

For constraints that are all linear once absolute values get auxiliary variables (budget, box,
groups, leverage, turnover, linear costs), the mean-variance problems are QPs

    minimize  w' Sigma w + c' d      s.t.  l <= A [w; g; d] <= u

with ``g >= |w|`` (leverage) and ``d >= |w - w0|`` (turnover, costs). Building A once and
updating only ``l``/``u`` (a target return) or ``q``, warm-started, skips cvxpy's per-solve
canonicalization: this is what makes a frontier or a large re-solve fast. Polishing (an active-set
step after ADMM) makes the answer exact to round-off; an unpolished or failed point is reported
so the caller can re-solve it with the interior-point chain.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from qpo.optimization.constraints import ResolvedConstraints

if TYPE_CHECKING:
    from scipy.sparse import csc_matrix

OSQP_SETTINGS = dict(verbose=False, eps_abs=1e-9, eps_rel=1e-9, polishing=True, warm_starting=True,
                     max_iter=200_000, polish_refine_iter=10, delta=1e-9)


def qp_representable(rc: ResolvedConstraints) -> bool:
    """True when every constraint is linear (no tracking error, market impact or integers)."""
    return rc.max_tracking_error is None and not rc.has_impact and not rc.is_mixed_integer


@dataclass
class LinearQP:
    """``A``, bounds and cost vector of the QP; ``ret_row`` is the target-return row."""

    n: int
    n_vars: int
    P: csc_matrix  # upper triangle
    q: np.ndarray
    A: csc_matrix
    l: np.ndarray
    u: np.ndarray
    ret_row: int

    @classmethod
    def build(cls, rc: ResolvedConstraints, cov_annual: np.ndarray, mu_annual: np.ndarray,
              costs: np.ndarray | None = None) -> LinearQP:
        """The QP of ``rc`` with this covariance and mean; ``costs`` (default ``rc.costs``) in the
        covariance's units (the caller's scaled ones, :mod:`qpo.optimization._scale`)."""
        import scipy.sparse as sp

        n = rc.n
        lev = rc.leverage is not None
        trade = rc.max_turnover is not None or rc.has_costs
        n_vars = n * (1 + lev + trade)
        g0, d0 = n, n * (1 + lev)  # offsets of g and d
        rows: list[np.ndarray] = []
        lo: list[npt.ArrayLike] = []
        hi: list[npt.ArrayLike] = []
        eye = np.eye(n)
        Z = np.zeros

        def block(w: np.ndarray | None = None, g: np.ndarray | None = None,
                  d: np.ndarray | None = None) -> np.ndarray:  # one row block with matrices at the w/g/d offsets
            parts = [np.atleast_2d(v) for v in (w, g, d) if v is not None]
            out = Z((parts[0].shape[0], n_vars))
            for v, off in ((w, 0), (g, g0), (d, d0)):
                if v is not None:
                    out[:, off:off + n] = v
            return out

        rows.append(block(w=np.ones((1, n))))
        lo.append([rc.budget])
        hi.append([rc.budget])
        rows.append(block(w=mu_annual.reshape(1, n)))
        lo.append([-np.inf])
        hi.append([np.inf])
        ret_row = 1
        rows.append(block(w=eye))
        lo.append(rc.lower)
        hi.append(rc.upper)
        if len(rc.group_names):
            rows.append(block(w=rc.group_matrix))
            lo.append(rc.group_lower)
            hi.append(rc.group_upper)
        if rc.leverage is not None:  # same as lev, written so the type checker sees a float
            rows += [block(w=-eye, g=eye), block(w=eye, g=eye), block(g=np.ones((1, n)))]
            lo += [np.zeros(n), np.zeros(n), [-np.inf]]
            hi += [np.full(n, np.inf), np.full(n, np.inf), [rc.leverage]]
        if trade:
            w0 = rc.reference
            rows += [block(w=-eye, d=eye), block(w=eye, d=eye)]
            lo += [-w0, w0]
            hi += [np.full(n, np.inf), np.full(n, np.inf)]
            if rc.max_turnover is not None:
                rows.append(block(d=np.ones((1, n))))
                lo.append([-np.inf])
                hi.append([rc.max_turnover])
        A = sp.csc_matrix(np.vstack(rows))
        iu = np.triu_indices(n)  # the whole upper triangle, zeros included: a fixed pattern to update
        P = sp.csc_matrix(((2.0 * cov_annual)[iu], iu), shape=(n_vars, n_vars))
        q = np.zeros(n_vars)
        if trade and rc.has_costs:
            q[d0:d0 + n] = rc.costs if costs is None else costs
        return cls(n, n_vars, P, q, A, np.concatenate([np.ravel(v) for v in lo]).astype(float),
                   np.concatenate([np.ravel(v) for v in hi]).astype(float), ret_row)

    def max_return(self, mu_annual: np.ndarray) -> tuple[float, np.ndarray] | None:
        """The highest gross expected return the constraints allow (an LP, HiGHS), and its weights."""
        from scipy.optimize import linprog

        if self.A.shape[0] == self.n + 2 and self.n_vars == self.n:  # budget and box only: greedy is exact
            lo, hi, budget = self.l[2:], self.u[2:], self.l[0]
            w = lo.copy()
            left = budget - w.sum()
            if left < -1e-12 or hi.sum() < budget - 1e-12:
                return None
            for i in np.argsort(-mu_annual, kind="stable"):
                add = min(hi[i] - lo[i], max(left, 0.0))
                w[i] += add
                left -= add
            return float(mu_annual @ w), w
        c = np.zeros(self.n_vars)
        c[:self.n] = -mu_annual
        A = self.A.tocsr()
        keep = np.arange(A.shape[0]) != self.ret_row
        A, l, u = A[keep], self.l[keep], self.u[keep]
        eq = np.isfinite(l) & np.isfinite(u) & (np.abs(u - l) <= 1e-15)
        up = np.isfinite(u) & ~eq
        dn = np.isfinite(l) & ~eq
        import scipy.sparse as sp

        A_ub = sp.vstack([A[up], -A[dn]], format="csr")
        b_ub = np.concatenate([u[up], -l[dn]])
        res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A[eq], b_eq=l[eq], bounds=(None, None), method="highs")
        if res.status != 0:
            return None
        return float(mu_annual @ res.x[:self.n]), res.x[:self.n]


class OSQPSession:
    """One OSQP workspace, set up once; :meth:`solve_target` re-solves with a new return floor,
    :meth:`load` swaps in another problem of the same sparsity (new covariance, bounds, costs)
    without a new setup."""

    def __init__(self, qp: LinearQP):
        import osqp

        self.qp = qp
        self.solver = osqp.OSQP()
        self.solver.setup(qp.P, qp.q, qp.A, qp.l, qp.u, **OSQP_SETTINGS)
        self.l = qp.l.copy()
        self.pattern = _pattern(qp)

    def load(self, qp: LinearQP) -> bool:
        """Use ``qp``'s data; False when its sparsity differs (a new session is needed)."""
        if _pattern(qp) != self.pattern:
            return False
        self.solver.update(Px=qp.P.data, Ax=qp.A.data, q=qp.q, l=qp.l, u=qp.u)
        self.qp, self.l = qp, qp.l.copy()
        return True

    def solve_target(self, target: float | None) -> tuple[np.ndarray | None, str]:
        self.l[self.qp.ret_row] = -np.inf if target is None else target
        self.solver.update(l=self.l)
        res = self.solver.solve(raise_error=False)
        status = res.info.status
        if status != "solved" or res.info.status_polish != 1:
            return None, f"OSQP {status}, polish {res.info.status_polish}"
        return np.asarray(res.x[:self.qp.n], dtype=float), "optimal"


def _pattern(qp: LinearQP) -> tuple[Any, ...]:
    return (qp.n_vars, qp.A.shape, qp.P.indices.tobytes(), qp.P.indptr.tobytes(), qp.A.indices.tobytes(),
            qp.A.indptr.tobytes())
