"""Polishing the reads: steepest descent on the BQM, a greedy repair of violated constraints and a local
search over feasible flips and swaps (see the package docstring); never a worse read."""
from __future__ import annotations

import numpy as np

from qpo.errors import InvalidValueError
from qpo.quantum.annealing._samplers import _check_model, _ordered, _tol
from qpo.quantum.formulation import bounded_coefficients

#: how many distinct reads (best first) get the greedy repair / the feasible local search
POLISH_REPAIR_STATES = 32
POLISH_SEARCH_STATES = 16


def local_search(model, x) -> np.ndarray:
    """Steepest descent of ``model.objective`` from the feasible bits ``x`` over feasible single
    flips and 1-swaps (one set bit cleared, one clear bit set: for a selection model with exactly
    ``k`` assets, the cardinality-preserving asset swap), until no move improves; the polish step's
    local search, for a single state."""
    _check_model(model)
    x = np.asarray(x, dtype=float)
    if x.shape != (model.n_variables,) or not model.is_feasible(x):
        raise InvalidValueError(f"local_search starts from one feasible vector of {model.n_variables} bits "
                                f"(model.is_feasible(x)); got shape {x.shape}")
    return _LinearSystem(model).local_search(np.round(x))


def _polish(model, bqm, labels, raw, raw_e, raw_f, raw_ok, descend: bool):
    from dwave.samplers import SteepestDescentSolver

    m = model.n_variables
    info = {"descent_improved": 0, "repaired": 0, "search_improved": 0, "kept_raw": 0}
    cur = raw.copy()
    if descend:
        ds = SteepestDescentSolver().sample(bqm, initial_states=(raw, labels))
        cur = _ordered(ds, labels)
        e_desc = np.asarray(bqm.energies((cur, labels)), dtype=float)
        info["descent_improved"] = int((e_desc < raw_e - _tol(raw_e)).sum())

    # repair / local search on distinct decision states, best first
    X = cur[:, :m].astype(float)
    ok = np.asarray(model.is_feasible(X), dtype=bool).reshape(-1)
    e = np.asarray(bqm.energies((cur, labels)), dtype=float)
    uniq, first, inverse = np.unique(cur[:, :m], axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    lin = _LinearSystem(model)
    new_states: dict[int, np.ndarray] = {}
    # repair: infeasible distinct states with the lowest energies
    bad = [u for u in np.argsort(e[first]) if not ok[first[u]]][:POLISH_REPAIR_STATES]
    for u in bad:
        y = lin.repair(uniq[u].astype(float))
        if y is not None:
            new_states[int(u)] = y
            info["repaired"] += int((inverse == u).sum())
    # local search: the best distinct feasible states (after repair)
    cand = []
    for u in range(len(uniq)):
        y = new_states.get(u, uniq[u].astype(float) if ok[first[u]] else None)
        if y is not None:
            cand.append((float(model.objective(y)), u, y))
    cand.sort(key=lambda t: t[0])
    for f0, u, y in cand[:POLISH_SEARCH_STATES]:
        z = lin.local_search(y)
        if model.objective(z) < f0 - model.tie_tolerance:
            info["search_improved"] += int((inverse == u).sum())
            new_states[u] = z
    for u, y in new_states.items():
        cur[inverse == u, :m] = np.round(y).astype(cur.dtype)
    if new_states:
        cur = _fit_slack(model, cur)

    # keep the polished read only if it is no worse than the raw one
    e = np.asarray(bqm.energies((cur, labels)), dtype=float)
    f = np.asarray(model.objective(cur[:, :m].astype(float)), dtype=float).reshape(-1)
    ok = np.asarray(model.is_feasible(cur[:, :m].astype(float)), dtype=bool).reshape(-1)
    worse = np.where(raw_ok, ~ok | (f > raw_f + _tol(raw_f)), ~ok & (e > raw_e + _tol(raw_e)))
    if worse.any():
        cur[worse], e[worse], f[worse], ok[worse] = raw[worse], raw_e[worse], raw_f[worse], raw_ok[worse]
    info["kept_raw"] = int(worse.sum())
    better = np.where(raw_ok, ok & (f < raw_f - _tol(raw_f)), ok | (e < raw_e - _tol(raw_e)))
    info["improved"] = int(better.sum())
    info["changed"] = int((cur != raw).any(axis=1).sum())
    return cur, e, f, ok, info


class _LinearSystem:
    """The model's objective and native linear constraints, for moves of one or two bits."""

    def __init__(self, model):
        self.Q = np.asarray(model.Q, dtype=float)
        self.tol = model.tie_tolerance  # an improvement smaller than this is round-off
        self.c = np.asarray(model.c, dtype=float)
        self.d = np.diag(self.Q).copy()
        cons = model.constraints
        m = model.n_variables
        self.A = np.array([c.coefficients for c in cons], dtype=float).reshape(len(cons), m)
        self.rhs = np.array([c.rhs for c in cons], dtype=float)
        self.eq = np.array([c.sense == "==" for c in cons], dtype=bool)
        self.unit = np.array([c.unit for c in cons], dtype=float)
        scale = max((abs(c.rhs) for c in cons), default=1.0) or 1.0
        self.tol = 1e-9 * max(scale, 1.0)  # as model.is_feasible

    def _viol(self, lhs: np.ndarray) -> np.ndarray:
        """Violation per constraint (axis 0) of left-hand sides of any trailing shape."""
        r = lhs - self.rhs.reshape((-1,) + (1,) * (lhs.ndim - 1))
        v = np.where(self.eq.reshape((-1,) + (1,) * (lhs.ndim - 1)), np.abs(r), np.maximum(r, 0.0))
        return np.where(v <= self.tol, 0.0, v)

    def repair(self, x: np.ndarray, max_steps: int | None = None) -> np.ndarray | None:
        """Flip one bit at a time, each flip the cheapest (in ``f``) per unit of violation it
        removes, until every constraint holds; None when no flip reduces the violation."""
        x = x.copy()
        g = 2.0 * self.Q @ x + self.c
        units = self.unit.reshape(-1, 1)
        for _ in range(max_steps or len(x)):
            lhs = self.A @ x
            cur = (self._viol(lhs) / self.unit).sum()
            if cur == 0:
                return x
            s = 1.0 - 2.0 * x
            new = (self._viol(lhs[:, None] + self.A * s[None, :]) / units).sum(axis=0)
            red = cur - new
            cand = red > 1e-12
            if not cand.any():
                return None
            df = g * s + self.d
            neg = cand & (df <= 0)
            if neg.any():
                j = int(np.flatnonzero(neg)[np.argmin(df[neg])])
            else:
                score = np.where(cand, df / np.where(cand, red, 1.0), np.inf)
                j = int(np.argmin(score))
            x[j] += s[j]
            g += 2.0 * self.Q[:, j] * s[j]
        return x if (self._viol(self.A @ x) == 0).all() else None

    def local_search(self, x: np.ndarray, max_iter: int = 10_000) -> np.ndarray:
        """Steepest descent of ``f`` over feasible single flips and 1-swaps (one set bit cleared,
        one clear bit set) from a feasible ``x``, until no move improves."""
        x = x.copy()
        g = 2.0 * self.Q @ x + self.c
        f = float(x @ self.Q @ x + self.c @ x)
        for _ in range(max_iter):
            lhs = self.A @ x
            s = 1.0 - 2.0 * x
            d_flip = g * s + self.d
            ok_flip = (self._viol(lhs[:, None] + self.A * s[None, :]) == 0).all(axis=0)
            d_flip = np.where(ok_flip, d_flip, np.inf)
            on, off = np.flatnonzero(x > 0.5), np.flatnonzero(x < 0.5)
            best_flip = int(np.argmin(d_flip))
            move, delta = ("flip", best_flip, -1), d_flip[best_flip]
            if len(on) and len(off):
                d_swap = (g[off][None, :] - g[on][:, None] + self.d[on][:, None] + self.d[off][None, :]
                          - 2.0 * self.Q[np.ix_(on, off)])
                lhs_swap = lhs[:, None, None] - self.A[:, on][:, :, None] + self.A[:, off][:, None, :]
                ok_swap = (self._viol(lhs_swap) == 0).all(axis=0)
                d_swap = np.where(ok_swap, d_swap, np.inf)
                a, b = np.unravel_index(int(np.argmin(d_swap)), d_swap.shape)
                if d_swap[a, b] < delta:
                    move, delta = ("swap", int(on[a]), int(off[b])), d_swap[a, b]
            if not delta < -self.tol:
                break
            for j in move[1:]:
                if j >= 0:
                    sj = 1.0 - 2.0 * x[j]
                    x[j] += sj
                    g += 2.0 * self.Q[:, j] * sj
            f += float(delta)
        return x


def _fit_slack(model, samples: np.ndarray) -> np.ndarray:
    """Set each read's slack bits to the value that minimizes its penalty (the residual closest to
    zero) for its decision bits; the penalty is the only term that involves the slack."""
    if not model.slack:
        return samples
    out = samples.copy()
    m = model.n_variables
    X = samples[:, :m].astype(float)
    pos = m
    by_name = {c.name: c for c in model.constraints}
    for gi, (name, _, coefs) in enumerate(model.slack):
        coefs = np.asarray(coefs, dtype=int)
        nb = len(coefs)
        con = by_name[name]
        upper = int(coefs.sum())
        if not np.array_equal(coefs, bounded_coefficients(upper)):
            pos += nb
            continue  # an encoding this helper does not know: leave the sampler's slack bits
        free = (con.rhs - X @ con.coefficients) / model.slack_unit[gi]
        val = np.clip(np.round(free), 0, upper).astype(np.int64)
        bits = np.zeros((len(X), nb), dtype=np.int64)
        if nb:
            top = val > (1 << (nb - 1)) - 1
            bits[:, -1] = top
            rest = np.where(top, val - coefs[-1], val)
            bits[:, :-1] = (rest[:, None] >> np.arange(nb - 1)) & 1
        out[:, pos:pos + nb] = bits
        pos += nb
    return out
