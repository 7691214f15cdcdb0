"""The cvxpy model behind every convex objective, built from named constraint *families*.

One builder serves the optimizer (data as ``cp.Parameter`` values: compiled once, re-solved by
setting parameters, DPP) and the infeasibility diagnosis (data as constants, families switched
on and off). Scale-invariant objectives (``max_sharpe``, ``max_diversification``,
``risk_parity``) use the homogenized variable ``x = s w`` (Cornuejols-Tutuncu): every family
is then written with ``s``, so the same constraints hold on ``w = x / s``.

Units: the covariance factor ``F`` (``F'F = P Sigma / s^2``) and ``mu`` (``/ s``) are annualized
and divided by the problem's return scale ``s`` (:mod:`qpo.optimization._scale`), so the solver sees
numbers near 1 whatever the units of the returns; CVaR scenarios are per-period returns ``/ s``;
targets, limits and costs are scaled alike (``data_values(...)["scale"]`` is ``s``).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from qpo.errors import SolverError
from qpo.optimization.constraints import ResolvedConstraints

if TYPE_CHECKING:
    import cvxpy as cp

HOMOGENIZED = frozenset({"max_sharpe", "max_diversification", "risk_parity"})


def cov_factor(cov: np.ndarray) -> np.ndarray:
    """F with F.T @ F == cov: the transposed Cholesky factor (triangular: half the nonzeros for the
    solver) when cov is positive definite, else the symmetric square root (exact for PSD-singular)."""
    try:
        return np.linalg.cholesky((cov + cov.T) / 2).T
    except np.linalg.LinAlgError:
        pass
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
    vals = np.clip(vals, 0.0, None)
    return (vecs * np.sqrt(vals)) @ vecs.T


def data_values(problem, objective: str, options: dict) -> dict[str, np.ndarray | float]:
    """Numeric values of every model datum for ``problem`` (names match :func:`build`'s)."""
    from qpo.optimization._scale import cost_scale, return_scale

    rc = problem.resolved
    s = return_scale(problem)
    F = cov_factor(problem.annual_cov() / (s * s))
    mu = problem.annual_mu() / s
    cs = cost_scale(objective, s)
    lo_rows, hi_rows = rc.group_rows
    d: dict = {
        "F": F, "mu": mu, "lo": rc.lower, "hi": rc.upper, "budget": rc.budget,
        "G_lo": rc.group_matrix[lo_rows], "g_lo": rc.group_lower[lo_rows],
        "G_hi": rc.group_matrix[hi_rows], "g_hi": rc.group_upper[hi_rows],
        "w0": rc.reference, "cost": rc.costs / cs, "impact": rc.impact / cs,
        "hi_pos": np.maximum(rc.upper, 0.0), "lo_neg": np.maximum(-rc.lower, 0.0),
        "scale": s,  # not a model parameter: what the returns were divided by
    }
    if rc.leverage is not None:
        d["leverage"] = rc.leverage
    if rc.max_turnover is not None:
        d["turnover"] = rc.max_turnover
    if rc.max_tracking_error is not None:
        d["Fb"] = F @ rc.benchmark
        d["te"] = rc.max_tracking_error / s
    if rc.max_assets is not None:
        d["K"] = float(rc.max_assets)
    if rc.min_position is not None:
        d["m"] = rc.min_position
    if objective == "max_sharpe":
        d["vec"] = mu - problem.risk_free_rate / s
    elif objective == "max_diversification":
        d["vec"] = np.sqrt(np.clip(np.diag(problem.annual_cov()), 0.0, None)) / s
    elif objective == "efficient_return":
        d["target"] = options["target_return"] / s
    elif objective == "efficient_risk":
        d["target"] = options["target_volatility"] / s
    elif objective == "max_utility":
        d["F_ra"] = np.sqrt(options["risk_aversion"] * s / 2.0) * F  # keeps the model DPP
    elif objective == "min_cvar":
        R = problem.returns.to_numpy(dtype=float) / s
        d["R"] = R
        d["cvar_scale"] = 1.0 / ((1.0 - options["confidence"]) * len(R))
    elif objective == "risk_parity":
        d["budgets"] = options["risk_budgets"]
    return d


def _params(structure: tuple, objective: str, n_scenarios: int) -> SimpleNamespace:
    import cvxpy as cp

    (n, long_only, has_lev, k_lo, k_hi, has_turn, has_costs, has_impact, has_te, has_card, has_minpos) = structure
    p = SimpleNamespace(
        F=cp.Parameter((n, n), name="F"), mu=cp.Parameter(n, name="mu"),
        lo=cp.Parameter(n, name="lo"), hi=cp.Parameter(n, name="hi"), budget=cp.Parameter(name="budget"),
        G_lo=cp.Parameter((k_lo, n), name="G_lo") if k_lo else None, g_lo=cp.Parameter(k_lo) if k_lo else None,
        G_hi=cp.Parameter((k_hi, n), name="G_hi") if k_hi else None, g_hi=cp.Parameter(k_hi) if k_hi else None,
        w0=cp.Parameter(n, name="w0"), cost=cp.Parameter(n, nonneg=True, name="cost"),
        impact=cp.Parameter(n, nonneg=True, name="impact"),
        hi_pos=cp.Parameter(n, nonneg=True), lo_neg=cp.Parameter(n, nonneg=True),
        leverage=cp.Parameter(nonneg=True) if has_lev else None,
        turnover=cp.Parameter(nonneg=True) if has_turn else None,
        Fb=cp.Parameter(n) if has_te else None, te=cp.Parameter(nonneg=True) if has_te else None,
        K=cp.Parameter(nonneg=True) if has_card else None, m=cp.Parameter(nonneg=True) if has_minpos else None,
        vec=cp.Parameter(n, name="vec") if objective in ("max_sharpe", "max_diversification") else None,
        target=cp.Parameter(name="target") if objective in ("efficient_return", "efficient_risk") else None,
        F_ra=cp.Parameter((n, n), name="F_ra") if objective == "max_utility" else None,
        R=cp.Parameter((n_scenarios, n), name="R") if objective == "min_cvar" else None,
        cvar_scale=cp.Parameter(nonneg=True) if objective == "min_cvar" else None,
        budgets=cp.Parameter(n, nonneg=True) if objective == "risk_parity" else None,
    )
    return p


def families(rc_structure: tuple, x, s, d, *, group_lo_names=(), group_hi_names=()):
    """Named constraint families on ``x`` (= ``s w``), from data ``d`` (parameters or arrays).
    Returns ``(families, extra_variables)``; each family is a list of cvxpy constraints."""
    import cvxpy as cp

    (n, long_only, has_lev, k_lo, k_hi, has_turn, has_costs, has_impact, has_te, has_card, has_minpos) = rc_structure
    fam: dict[str, list] = {}
    fam["budget"] = [cp.sum(x) == d.budget * s]
    mi = has_card or has_minpos
    fam["min_weight"] = [x >= cp.multiply(d.lo, s) if not isinstance(s, float) else x >= d.lo]
    fam["max_weight"] = [x <= cp.multiply(d.hi, s) if not isinstance(s, float) else x <= d.hi]
    if k_lo:
        for i, name in enumerate(group_lo_names or [f"#{i}" for i in range(k_lo)]):
            fam[f"group {name} min"] = [d.G_lo[i] @ x >= d.g_lo[i] * s]
    if k_hi:
        for i, name in enumerate(group_hi_names or [f"#{i}" for i in range(k_hi)]):
            fam[f"group {name} max"] = [d.G_hi[i] @ x <= d.g_hi[i] * s]
    if has_lev:
        fam["leverage"] = [cp.norm1(x) <= d.leverage * s]
    if has_turn:
        fam["max_turnover"] = [cp.norm1(x - d.w0 * s) <= d.turnover * s]
    if has_te:
        fam["max_tracking_error"] = [cp.norm(d.F @ x - d.Fb * s, 2) <= d.te * s]
    extra = {}
    if mi:
        if long_only:
            z = cp.Variable(n, boolean=True, name="held")
            extra["z"] = z
            cons = [x <= cp.multiply(d.hi_pos, z)]
            fam_mp = [x >= d.m * z] if has_minpos else []
            count = cp.sum(z)
        else:
            zp = cp.Variable(n, boolean=True, name="long")
            zq = cp.Variable(n, boolean=True, name="short")
            pos, neg = cp.Variable(n, nonneg=True), cp.Variable(n, nonneg=True)
            extra.update(zp=zp, zq=zq)
            cons = [x == pos - neg, pos <= cp.multiply(d.hi_pos, zp), neg <= cp.multiply(d.lo_neg, zq), zp + zq <= 1]
            fam_mp = [pos >= d.m * zp, neg >= d.m * zq] if has_minpos else []
            count = cp.sum(zp + zq)
        fam["holdings"] = cons  # links weights to the held indicators (always kept)
        if has_card:
            fam["max_assets"] = [count <= d.K]
        if has_minpos:
            fam["min_position"] = fam_mp
    return fam, extra


@dataclass
class Model:
    """A cvxpy problem with its parameters and the variables to read weights from."""

    objective: str
    structure: tuple[Any, ...]
    problem: cp.Problem
    params: SimpleNamespace
    x: cp.Variable
    s: cp.Variable | float  # the homogenizing scale (a variable) for HOMOGENIZED objectives, else 1.0
    aux: dict[str, cp.Variable]

    def set(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            par = getattr(self.params, name, None)
            if par is not None:
                par.value = value

    def weights(self) -> np.ndarray:
        if self.x.value is None:
            raise SolverError(f"{self.objective}: the model has no solution to read weights from (solve it first)")
        x = np.asarray(self.x.value, dtype=float)
        if self.objective in HOMOGENIZED:
            scale = cast("cp.Variable", self.s).value  # a variable for every homogenized objective
            if scale is None:
                raise SolverError(f"{self.objective}: the model has no solution to read weights from (solve it first)")
            s = float(scale)
            return x / s if s > 1e-14 else np.full_like(x, np.nan)
        return x


def build(objective: str, structure: tuple, n_scenarios: int = 0) -> Model:
    """The compiled (parameterized) model of ``objective`` for constraints of ``structure``."""
    import cvxpy as cp

    p = _params(structure, objective, n_scenarios)
    n = structure[0]
    x = cp.Variable(n, name="x")
    homog = objective in HOMOGENIZED
    s = cp.Variable(nonneg=True, name="s") if homog else 1.0
    fam, extra = families(structure, x, s, p)
    cons = [c for cs in fam.values() for c in cs]
    has_costs, has_impact = structure[6], structure[7]
    cost = 0
    if has_costs or has_impact:  # d >= |trade| keeps cost' d DPP (a parameter times a variable)
        d = cp.Variable(n, nonneg=True, name="traded")
        trade = x - p.w0 * s if homog else x - p.w0
        cons += [d >= trade, d >= -trade]
        impact = p.impact @ cp.power(d, 1.5, approx=False) if has_impact and not homog else 0  # power cone
        cost = (p.cost @ d if has_costs else 0) + impact
    risk_sq = cp.sum_squares(p.F @ x)
    aux = dict(extra)
    mixed_integer = structure[9] or structure[10]
    obj: cp.Minimize | cp.Maximize
    if objective == "min_variance" and mixed_integer and not (has_costs or has_impact):
        obj = cp.Minimize(cp.norm(p.F @ x, 2))  # same minimizer; SCIP branches faster on the norm (SOC)
    elif objective == "min_variance":
        obj = cp.Minimize(risk_sq + cost)
    elif objective == "efficient_return":
        cons.append(p.mu @ x >= p.target)
        obj = cp.Minimize(risk_sq + cost)
    elif objective == "efficient_risk":
        cons.append(cp.norm(p.F @ x, 2) <= p.target)
        obj = cp.Maximize(p.mu @ x - cost)
    elif objective == "max_utility":
        obj = cp.Maximize(p.mu @ x - cost - cp.sum_squares(p.F_ra @ x))
    elif objective in ("max_sharpe", "max_diversification"):
        cons.append(p.vec @ x - cost == 1)
        obj = cp.Minimize(risk_sq)
    elif objective == "min_cvar":
        alpha = cp.Variable(name="var")
        u = cp.Variable(n_scenarios, nonneg=True, name="excess_loss")
        cons.append(u >= -(p.R @ x) - alpha)
        aux["var"] = alpha
        obj = cp.Minimize(alpha + p.cvar_scale * cp.sum(u) + cost)
    elif objective == "risk_parity":
        cons.append(p.budgets @ cp.log(x) >= 0)
        obj = cp.Minimize(risk_sq)
    else:  # pragma: no cover - guarded by the engine
        raise ValueError(objective)
    problem = cp.Problem(obj, cons)
    return Model(objective, structure, problem, p, x, s, aux)


def numeric_families(rc: ResolvedConstraints, values: dict):
    """Families with constant data (for the infeasibility diagnosis), on fresh variables."""
    import cvxpy as cp

    structure = rc.structure()
    d = SimpleNamespace(**{k: v for k, v in values.items()})
    for name in ("leverage", "turnover", "Fb", "te", "K", "m", "G_lo", "g_lo", "G_hi", "g_hi"):
        if not hasattr(d, name):
            setattr(d, name, None)
    x = cp.Variable(rc.n)
    lo_rows, hi_rows = rc.group_rows
    fam, _ = families(structure, x, 1.0, d, group_lo_names=[rc.group_names[i] for i in lo_rows],
                      group_hi_names=[rc.group_names[i] for i in hi_rows])
    return x, fam
