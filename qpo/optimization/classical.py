"""Classical solves: compiled cvxpy models, a solver fallback chain, named infeasibility.

Each (objective, constraint structure) is compiled once per process (:func:`compiled_model`);
a solve only sets ``cp.Parameter`` values and re-solves, warm-started, so frontiers, sweeps and
backtests never rebuild a problem.
"""
from __future__ import annotations

import functools
import threading
import time
import warnings
from typing import Any, NoReturn

import numpy as np

from qpo.errors import InfeasibleError, ProblemError, SolverError, UnknownOptionError
from qpo.optimization._direct import DIRECT_OBJECTIVES, direct_qp
from qpo.optimization._quiet import silence_highs_banner
from qpo.optimization.feasibility import conflicting_families, explain
from qpo.optimization.model import (
    HOMOGENIZED,
    Model,
    build,
    data_values,
    numeric_families,
)
from qpo.optimization.problem import PortfolioProblem

CONTINUOUS_SOLVERS = ("CLARABEL", "SCS")
LP_SOLVERS = ("HIGHS", "CLARABEL", "SCS")
MI_SOLVERS = ("SCIP",)
MILP_SOLVERS = ("SCIP", "HIGHS")
#: how far (relative to the target, or to the returns' scale when larger) an answer may miss a return or
#: volatility target: continuous solvers' answers, and mixed-integer ones' (their feasibility tolerance, 1e-6)
TARGET_TOLERANCE = 1e-7
MI_TARGET_TOLERANCE = 1e-6
#: how far a mixed-integer answer may break a limit and still be re-solved on its holdings (then exact)
MI_LOOSE_TOLERANCE = 1e-4
#: Clarabel's defaults (1e-8) leave weights ~1e-6 off their bounds; these keep them to ~1e-9
CLARABEL_TIGHT = {"tol_gap_abs": 1e-11, "tol_gap_rel": 1e-11, "tol_feas": 1e-11, "tol_ktratio": 1e-9}
#: SCS's defaults (1e-4) can leave a tracking-error or volatility limit ~1e-5 broken; when they do, SCS
#: is asked again with these (~1e-11)
SCS_TIGHT = {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 100_000}


def default_chain(problem: PortfolioProblem, objective: str) -> tuple[str, ...]:
    """The solvers tried, in order, for ``objective`` on ``problem``'s constraints."""
    rc = problem.resolved
    linear = objective == "min_cvar" and not rc.has_impact and rc.max_tracking_error is None
    if rc.is_mixed_integer:
        return MILP_SOLVERS if linear else MI_SOLVERS
    return LP_SOLVERS if linear else CONTINUOUS_SOLVERS


def solver_chain(problem: PortfolioProblem, objective: str, solver) -> tuple[str, ...]:
    chain = default_chain(problem, objective)
    if solver is None:
        return chain
    installed = _installed_solvers()
    asked = [solver] if isinstance(solver, str) else list(solver)
    if not asked:
        raise ProblemError("solver must be a solver name or a non-empty list of names")
    for name in asked:
        if not isinstance(name, str) or name.upper() not in installed:
            raise UnknownOptionError("solver", name, installed)
    asked = [a.upper() for a in asked]
    if isinstance(solver, str):  # the one asked for first, then the usual chain
        return tuple(dict.fromkeys(asked + list(chain)))
    return tuple(asked)


@functools.lru_cache(maxsize=1)
def _installed_solvers() -> list[str]:
    """cvxpy's installed solvers, probed once (the probe tries to import some thirty packages)."""
    import cvxpy as cp

    return cp.installed_solvers()


class _Compiled:
    def __init__(self, model: Model):
        self.model = model
        self.lock = threading.Lock()


@functools.lru_cache(maxsize=64)
def compiled_model(objective: str, structure: tuple, n_scenarios: int = 0) -> _Compiled:
    """The parameterized model for ``objective`` and a constraint ``structure``, built once per
    process: later calls (a frontier, a backtest, the dashboard) only set its parameters."""
    return _Compiled(build(objective, structure, n_scenarios))


_NEEDS_RISK = {"risk_parity": "gives each asset a share of the risk", "hrp": "divides by each asset's volatility",
               "max_diversification": "weighs each asset by its volatility"}


def refuse_riskless(problem: PortfolioProblem, objective: str) -> None:
    """``objective`` (risk parity, HRP, max diversification) is undefined with an asset whose
    variance is zero: refused naming it, not answered 100 % in it (risk parity) or by a NaN
    distance deep in scipy (HRP)."""
    flat = problem.riskless()
    if flat:
        shown = ", ".join(flat[:10]) + (f" and {len(flat) - 10} more" if len(flat) > 10 else "")
        raise ProblemError(f"{objective} {_NEEDS_RISK[objective]}, but {shown} ha{'s' if len(flat) == 1 else 've'} "
                           "zero variance over the returns (cash, or a price that did not move in the window); "
                           "leave it out of the problem, or use a longer window")


def check_supported(problem: PortfolioProblem, objective: str) -> None:
    """Objectives that cannot take some constraints say so up front."""
    rc = problem.resolved
    if objective in HOMOGENIZED:
        if rc.is_mixed_integer:
            raise ProblemError(f"{objective} cannot take max_assets/min_position (its scale-free form has no "
                               "mixed-integer version); use efficient_risk, efficient_return or max_utility with "
                               "the cardinality constraint")
        if rc.has_impact:
            raise ProblemError(f"{objective} cannot take market_impact (the x^1.5 cost is not scale-free); use "
                               "max_utility or efficient_risk")
        if objective != "max_sharpe" and rc.has_costs:
            raise ProblemError(f"{objective} does not charge transaction costs; use max_utility, min_variance "
                               "or efficient_* with costs")
        if rc.budget <= 0:
            raise ProblemError(f"{objective} needs a positive budget (got {rc.budget:g})")
    if objective in ("risk_parity", "max_diversification"):
        refuse_riskless(problem, objective)
    if objective == "risk_parity":
        if not rc.long_only:
            raise ProblemError("risk_parity needs long_only=True: risk budgets are shares of risk held long")
        if (rc.upper <= 0).any():
            raise ProblemError("risk_parity holds every asset: every max_weight must be > 0")
    if objective == "min_cvar" and problem.returns is None:
        raise ProblemError("min_cvar needs return scenarios: build the problem with PortfolioProblem.from_returns, "
                           "or pass returns= to from_moments")


def _try_solvers(compiled: _Compiled, problem: PortfolioProblem, objective: str, chain, solver_options,
                 polished_after: bool = False):
    """The first answer of ``chain`` that meets every constraint (``None, info`` when a solver proves
    the problem infeasible). With ``polished_after`` (the caller re-solves a mixed-integer answer on the
    holdings it chose, :func:`_polish_support`), a mixed-integer solver's answer that misses a limit
    by no more than :data:`MI_LOOSE_TOLERANCE` (its feasibility tolerance on a cone, such as a tracking
    error) is accepted too, marked ``info["loose"]``: the caller must polish it or refuse it."""
    import cvxpy as cp

    rc = problem.resolved
    cov_a = problem.annual_cov()
    tried: list[str] = []
    inaccurate = None
    model = compiled.model
    attempts: list[tuple[str, dict[str, Any], bool]] = []  # (solver, options, only after a failed try of it)
    for i, name in enumerate(chain):
        opts: dict[str, Any] = dict(solver_options or {}) if i == 0 else {}
        if name == "CLARABEL" and not opts:  # tight first; Clarabel's own defaults if that stalls
            attempts += [(name, dict(CLARABEL_TIGHT), False), (name, {}, True)]
        elif name == "SCS" and not opts:  # SCS's defaults first; tight if their answer breaks a limit
            attempts += [(name, {}, False), (name, dict(SCS_TIGHT), True)]
        else:
            attempts.append((name, opts, False))
    silence_highs_banner()
    for name, opts, retry in attempts:
        if retry and not (tried and tried[-1].startswith(name)):
            continue  # a retry only follows a failed, stalled or constraint-breaking try of the same solver
        if name == "SCIP" and "scip_params" not in opts:
            opts["scip_params"] = {"limits/gap": 0.0, "limits/absgap": 0.0}
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():  # inaccurate answers are handled below, by status
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                # cold: the same inputs give the same weights whatever was solved before (no warm start
                # from another window or another problem's last answer)
                model.problem.solve(solver=name, warm_start=False, **opts)
        except (cp.error.SolverError, ValueError, ArithmeticError) as exc:
            tried.append(f"{name}: failed ({str(exc).splitlines()[0][:160]})")
            continue
        solve_s = time.perf_counter() - t0
        status = model.problem.status
        if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            return None, {"status": "infeasible", "solver": name, "tried": tried, "solve_s": solve_s}
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or model.x.value is None:
            tried.append(f"{name}: status {status}")
            continue
        w = model.weights()
        if not np.isfinite(w).all():
            tried.append(f"{name}: degenerate answer (scale s = 0)")
            continue
        w = _snap(w, model, rc)
        # a mixed-integer solver meets its constraints to its feasibility tolerance (SCIP: 1e-6, relative to the
        # scaled data): its answer is then re-solved exactly on the holdings it chose (_polish_support)
        rel = MI_TARGET_TOLERANCE if rc.is_mixed_integer and name in MILP_SOLVERS else TARGET_TOLERANCE
        broken = rc.violations(w, cov_a, tol=1e-6 * max(1.0, np.abs(w).max())) + _target_broken(problem, model, w, rel)
        info = {"status": status, "solver": name, "tried": tried, "solve_s": solve_s}
        if broken and polished_after and name in MILP_SOLVERS and not (
                rc.violations(w, cov_a, tol=MI_LOOSE_TOLERANCE * max(1.0, np.abs(w).max()))
                + _target_broken(problem, model, w, MI_LOOSE_TOLERANCE)):
            info["loose"] = broken
            broken = []
        if broken:
            tried.append(f"{name}: answer breaks constraints ({'; '.join(broken)})")
            continue
        if status == cp.OPTIMAL_INACCURATE:
            tried.append(f"{name}: optimal_inaccurate")
            inaccurate = inaccurate or (w, info)
            continue
        if name == "SCIP":
            info["mip_gap"] = _scip_gap(model)
        return w, info
    if inaccurate is not None:
        return inaccurate
    raise SolverError(f"{objective}: no solver answered; tried {'; '.join(tried)}. Try other solvers "
                      "(solver=[...]), a shrunk covariance (covariance='ledoit_wolf') or looser constraints")


def _target_broken(problem: PortfolioProblem, model: Model, w: np.ndarray, rel: float = 1e-7) -> list[str]:
    """The return or volatility target of ``model`` (set in its scaled units) that ``w`` misses by more
    than ``rel`` of the target or of the returns' scale (:mod:`qpo.optimization._scale`), whichever is larger."""
    from qpo.optimization._scale import return_scale

    if model.objective not in ("efficient_return", "efficient_risk") or model.params.target.value is None:
        return []
    s = return_scale(problem)
    target = float(model.params.target.value) * s
    tol = rel * max(abs(target), s)
    if model.objective == "efficient_return":
        got = float(problem.annual_mu() @ w)
        return [f"expected return {got:.9g} below target_return {target:.9g}"] if got < target - tol else []
    got = float(np.sqrt(max(w @ problem.annual_cov() @ w, 0.0)))
    return [f"volatility {got:.9g} above target_volatility {target:.9g}"] if got > target + tol else []


def _scip_gap(model: Model):
    stats = getattr(model.problem, "solver_stats", None)
    extra = getattr(stats, "extra_stats", None)
    model_ = extra.get("model") if isinstance(extra, dict) else extra
    if model_ is None:
        return None
    try:
        return float(model_.getGap())
    except Exception:  # noqa: BLE001 - a missing gap is reported as unknown (None), never as proof
        return None


def _newton_risk_parity(cov: np.ndarray, budgets: np.ndarray, w: np.ndarray, rc) -> np.ndarray | None:
    """Newton's method on Spinu's optimality condition ``Sigma x = b / x`` from the solver's answer.
    The unconstrained risk-budgeting portfolio is unique; when it also meets every constraint it
    is the answer, exact to round-off (interior-point solvers stop near 1e-6 in contributions).
    Returns None when it breaks a constraint (the constraints bind: the solver's answer stands)."""
    if (w <= 0).any():
        return None
    x = w / np.sqrt(w @ cov @ w)  # at the optimum x' Sigma x = sum(b) = 1
    for _ in range(50):
        g = cov @ x - budgets / x
        if np.abs(g).max() < 1e-14 * max(1.0, np.abs(budgets / x).max()):
            break
        step = np.linalg.solve(cov + np.diag(budgets / x ** 2), g)
        t = 1.0
        while (x - t * step <= 0).any():
            t /= 2
        x = x - t * step
    else:
        return None
    exact = x / x.sum() * rc.budget
    return None if rc.violations(exact, cov, tol=1e-9) else exact


def _polish_support(problem: PortfolioProblem, objective: str, options: dict, w: np.ndarray):
    """Re-solve the continuous problem on the holdings a mixed-integer solver chose: its weights
    are then exact to the interior-point tolerance, not to the MIP's feasibility tolerance (1e-6)."""
    from dataclasses import replace as dc_replace

    rc = problem.resolved
    held = np.abs(w) > 0
    m = rc.min_position or 0.0
    lo = np.where(held, np.where(w > 0, np.maximum(rc.lower, m), rc.lower), 0.0)
    hi = np.where(held, np.where(w > 0, rc.upper, np.minimum(rc.upper, -m)), 0.0)
    cons = dc_replace(rc.source, max_assets=None, min_position=None, long_only=rc.long_only,
                      min_weight=dict(zip(problem.tickers, lo)), max_weight=dict(zip(problem.tickers, hi)))
    fixed = problem.with_constraints(cons)
    chain = solver_chain(fixed, objective, None)
    n_scen = 0 if problem.returns is None or objective != "min_cvar" else len(problem.returns)
    compiled = compiled_model(objective, fixed.resolved.structure(), n_scen)
    with compiled.lock:
        compiled.model.set(data_values(fixed, objective, options))
        try:
            w2, info = _try_solvers(compiled, fixed, objective, chain, None)
        except SolverError:
            return None
    if w2 is None:
        return None
    w2 = np.where(held, w2, 0.0)
    if rc.violations(w2, problem.annual_cov(), tol=1e-7):
        return None
    return w2


def _snap(w: np.ndarray, model: Model, rc) -> np.ndarray:
    """Zero the weights the solver left at round-off (and those a binary says are not held)."""
    w = np.where(np.abs(w) < 1e-10, 0.0, w)
    z = model.aux["z"].value if "z" in model.aux else None
    zp = model.aux["zp"].value if "zp" in model.aux else None
    if z is not None:
        w = np.where(z > 0.5, w, 0.0)
    elif zp is not None:
        zq = model.aux["zq"].value
        if zq is None:  # zp and zq come from one solve: both are set or neither
            raise SolverError("the solver set the long indicators but not the short ones")
        held = (zp > 0.5) | (zq > 0.5)
        w = np.where(held, w, 0.0)
    return w


def extreme_value(problem: PortfolioProblem, objective: str, vec: np.ndarray | None = None,
                  net: bool = False) -> float:
    """The highest ``vec' w`` (``vec`` = annual mu by default; less the costs when ``net``) or, with ``objective=
    'min_volatility'``, the lowest annual volatility, over the problem's constraints (a fresh,
    small solve: used to explain an infeasible target)."""
    import cvxpy as cp

    rc = problem.resolved
    values = data_values(problem, "min_variance", {})
    s = float(values["scale"])  # solved in the scaled units, answered in the caller's
    x, fam = numeric_families(rc, values)
    cons = [c for cs in fam.values() for c in cs]
    trade = x - rc.reference
    cost = (rc.costs / s @ cp.abs(trade) if rc.has_costs else 0) + (
        rc.impact / s @ cp.power(cp.abs(trade), 1.5, approx=False) if rc.has_impact else 0)
    if objective == "min_volatility":
        prob = cp.Problem(cp.Minimize(cp.norm(values["F"] @ x, 2)), cons)
    else:
        v = values["mu"] if vec is None else np.asarray(vec, dtype=float) / s
        prob = cp.Problem(cp.Maximize(v @ x - (cost if net else 0)), cons)
    silence_highs_banner()
    for name in (MI_SOLVERS if rc.is_mixed_integer else ("CLARABEL", "SCS")):
        try:
            prob.solve(solver=name)
        except (cp.error.SolverError, ValueError, ArithmeticError):
            continue
        if prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) and prob.value is not None:
            return float(prob.value) * s
    return float("nan")


def _raise_infeasible(problem: PortfolioProblem, objective: str, options: dict, values: dict) -> NoReturn:
    rc = problem.resolved
    conflict = conflicting_families(rc, values)
    if conflict:
        raise InfeasibleError(f"{objective}: the constraints cannot hold together: {explain(conflict, rc)}")
    if objective == "max_sharpe":
        excess = problem.annual_mu() - problem.risk_free_rate
        best = extreme_value(problem, "max", excess, net=True)
        raise InfeasibleError(
            "max_sharpe needs a portfolio whose expected return exceeds the risk-free rate "
            f"{problem.risk_free_rate:g}; within these constraints the highest is "
            f"{best + problem.risk_free_rate:.4g} (annualized{', net of costs' if rc.has_costs else ''}; the best "
            f"single asset has {excess.max() + problem.risk_free_rate:.4g}). Use min_variance, loosen the "
            "constraints, or use other expected returns")
    if objective == "efficient_return":
        best = extreme_value(problem, "max")
        raise InfeasibleError(f"efficient_return: target_return {options['target_return']:g} is above the highest "
                              f"expected return these constraints allow, {best:.4g} (annualized)")
    if objective == "efficient_risk":
        low = extreme_value(problem, "min_volatility")
        raise InfeasibleError(f"efficient_risk: target_volatility {options['target_volatility']:g} is below the "
                              f"lowest volatility these constraints allow, {low:.4g} (annualized)")
    raise InfeasibleError(f"{objective}: the solver found the problem infeasible although each constraint "
                          f"family holds ({rc.source!r}); check the objective's own requirements")


#: from this many assets, QPs with linear constraints go to OSQP directly first (their dense
#: covariance makes each interior-point iteration cost a full factorization)
DIRECT_QP_MIN_ASSETS = 200


def solve_classical(problem: PortfolioProblem, objective: str, options: dict, solver=None,
                    solver_options: dict | None = None):
    """Weights and solve information for a convex (or mixed-integer) ``objective``."""
    from qpo.optimization.qp import qp_representable

    check_supported(problem, objective)
    rc = problem.resolved
    chain = solver_chain(problem, objective, solver)
    direct_failed = None
    if (solver is None and objective in DIRECT_OBJECTIVES and rc.n >= DIRECT_QP_MIN_ASSETS
            and qp_representable(rc)):
        w, info = direct_qp(problem, objective, options)
        if w is not None:
            info["chain"] = ("OSQP-direct", *chain)
            info["aux"] = {}
            return w, info
        direct_failed = info
    values = data_values(problem, objective, options)
    n_scen = 0 if problem.returns is None or objective != "min_cvar" else len(problem.returns)
    t0 = time.perf_counter()
    compiled = compiled_model(objective, rc.structure(), n_scen)
    build_s = time.perf_counter() - t0
    with compiled.lock:  # one cvxpy problem object: one solve at a time
        compiled.model.set(values)
        w, info = _try_solvers(compiled, problem, objective, chain, solver_options,
                               polished_after=rc.is_mixed_integer)
        aux = {k: (None if v.value is None else np.array(v.value)) for k, v in compiled.model.aux.items()}
    if w is None:
        _raise_infeasible(problem, objective, options, values)
    if objective == "risk_parity":  # Newton on the scaled covariance: its tolerances are absolute
        s = float(values["scale"])
        exact = _newton_risk_parity(problem.annual_cov() / (s * s), options["risk_budgets"], w, rc)
        if exact is not None:
            w = exact
            info["polished"] = "Newton steps on the risk-budget equations (exact to round-off)"
        else:  # constraints bind: Newton on the KKT conditions with the active ones
            from qpo.optimization._polish import exact_risk_parity

            exact = exact_risk_parity(problem.annual_cov() / (s * s), options["risk_budgets"], rc, w)
            if exact is not None:
                w = exact
                info["polished"] = "Newton steps on the KKT conditions with the binding constraints (exact to round-off)"
    if objective == "efficient_risk":
        from qpo.optimization._polish import exact_efficient_risk

        s = float(values["scale"])
        exact = exact_efficient_risk(problem.annual_cov() / (s * s), problem.annual_mu() / s, rc,
                                     options["target_volatility"] / s, w)
        if exact is not None:
            w = exact
            info["polished"] = "exact on the efficient frontier's critical lines (volatility at the target to 1e-9)"
    # min_cvar's linear program may have many optima: SCIP's stands unless it must be re-solved (loose)
    if rc.is_mixed_integer and (objective != "min_cvar" or info.get("loose")):
        polished = _polish_support(problem, objective, options, w)
        if polished is not None:
            w = polished
            info["polished"] = "weights re-solved on the chosen holdings (continuous, interior point)"
        elif info.get("loose"):
            raise SolverError(f"{objective}: {info['solver']}'s answer breaks constraints ({'; '.join(info['loose'])}) "
                              "and re-solving it on the holdings it chose failed. Try looser constraints, a shrunk "
                              "covariance (covariance='ledoit_wolf') or another max_assets")
    info["build_s"] = build_s
    info["chain"] = chain
    if direct_failed:
        info["chain"] = ("OSQP-direct", *chain)
        info["tried"] = [direct_failed, *info["tried"]]
    info["aux"] = aux
    return w, info
