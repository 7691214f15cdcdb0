"""``qpo.optimize``: one entry point, every objective and method."""
from __future__ import annotations

import functools
import time
from collections.abc import Mapping

import numpy as np
import pandas as pd

from qpo import measures
from qpo._checks import REQUIRED, check_confidence, number, whole
from qpo.errors import InvalidValueError, ProblemError, UnknownOptionError
from qpo.optimization.problem import PortfolioProblem
from qpo.optimization.result import OptimizationResult

#: objective -> its own options and their defaults (targets are annualized)
OBJECTIVE_OPTIONS: dict[str, dict[str, object]] = {
    "min_variance": {},
    "max_sharpe": {},
    "efficient_return": {"target_return": REQUIRED},
    "efficient_risk": {"target_volatility": REQUIRED},
    "max_utility": {"risk_aversion": 1.0},
    "min_cvar": {"confidence": 0.95},
    "risk_parity": {"risk_budgets": None},
    "hrp": {"linkage": "single"},
    "max_diversification": {},
}
OBJECTIVES = tuple(OBJECTIVE_OPTIONS)
#: binary objectives (asset selection, integer lots) that the exact, quantum and annealing methods solve
BINARY_OBJECTIVES = ("asset_selection", "integer_lots")
METHODS = ("classical", "exact", "qaoa", "annealing", "auto")


def portfolio_statistics(problem: PortfolioProblem, weights: np.ndarray) -> tuple[float, float, float]:
    """Annualized (expected return, volatility, Sharpe) of ``weights`` under the problem's moments."""
    P = problem.periods_per_year
    ret = float(problem.mu.to_numpy() @ weights) * P
    vol = float(np.sqrt(max(weights @ problem.cov.to_numpy() @ weights, 0.0) * P))
    sharpe = (ret - problem.risk_free_rate) / vol if vol > 0 else float("nan")
    return ret, vol, sharpe


def resolve_options(problem: PortfolioProblem, objective: str, options: dict) -> dict:
    """``options`` checked against ``objective``'s valid ones, with defaults filled in."""
    valid = OBJECTIVE_OPTIONS[objective]
    for name in options:
        if name not in valid:
            raise UnknownOptionError(f"option for {objective}", name,
                                     list(valid) or ["(none: this objective takes no options)"])
    out = {k: options.get(k, v) for k, v in valid.items()}
    missing = [k for k, v in out.items() if v is REQUIRED]
    if missing:
        raise ProblemError(f"{objective} needs {', '.join(missing)} (annualized), e.g. "
                           f"optimize(problem, {objective!r}, {missing[0]}=0.15)")
    if "target_return" in out:
        out["target_return"] = number("target_return", out["target_return"])
    if "target_volatility" in out:
        out["target_volatility"] = number("target_volatility", out["target_volatility"], lo=0, lo_open=True)
    if "risk_aversion" in out:
        out["risk_aversion"] = number("risk_aversion", out["risk_aversion"], lo=0, lo_open=True)
    if "confidence" in out:
        out["confidence"] = check_confidence(out["confidence"])
    if objective == "risk_parity":
        out["risk_budgets"] = _risk_budgets(problem, out["risk_budgets"])
    return out


def _risk_budgets(problem: PortfolioProblem, budgets) -> np.ndarray:
    n = problem.n_assets
    if budgets is None:
        return np.full(n, 1.0 / n)
    if isinstance(budgets, (Mapping, pd.Series)):
        d = dict(budgets)
        unknown = sorted(map(str, set(d) - set(problem.tickers)))
        if unknown:
            raise ProblemError(f"risk_budgets names tickers outside the universe: {unknown}")
        missing = [t for t in problem.tickers if t not in d]
        if missing:
            raise ProblemError(f"risk_budgets has no budget for {missing[:10]}; give every asset one (> 0)")
        b = np.array([d[t] for t in problem.tickers], dtype=float)
    else:
        b = np.asarray(budgets, dtype=float).ravel()
        if b.size != n:
            raise ProblemError(f"risk_budgets has {b.size} entries for {n} assets")
    if not np.isfinite(b).all() or (b <= 0).any():
        raise InvalidValueError("risk_budgets must be positive finite numbers (every asset carries some risk "
                                f"in risk parity), got {b.tolist()[:10]}")
    return b / b.sum()


def optimize(problem: PortfolioProblem, objective: str | None = None, method: str = "classical", *,
             solver: str | list[str] | None = None, solver_options: dict | None = None,
             confidence_level: float | None = 0.95, n_bootstrap: int = 1000, seed: int = 0,
             **options) -> OptimizationResult:
    """Optimize ``problem`` for ``objective`` with ``method``.

    Parameters
    ----------
    objective
        One of :data:`OBJECTIVES` (continuous weights, ``method="classical"``; the default is
        ``min_variance``) or of :data:`BINARY_OBJECTIVES` (the default for the other methods):

        - ``asset_selection`` (``k=``, ``cardinality="exact"|"at_most"``, ``risk_aversion=1``,
          ``penalty=None``): choose ``k`` assets, each weighing ``1/k``, minimizing
          ``risk_aversion/2 w'Sigma w - mu'w`` (annual);
        - ``integer_lots`` (``prices=``, ``cash=``, ``lot_size=1``, ``max_lots=None``,
          ``risk_aversion=1``, ``penalty=None``, ``slack_resolution=0.25``): whole lots under a cash
          budget, the same objective with ``w`` the cash each asset takes.

        See :mod:`qpo.quantum.formulation`. The continuous objectives:

        - ``min_variance``; ``max_sharpe`` (risk-free rate from the problem);
        - ``efficient_return`` (``target_return=``, annual): least variance reaching it;
        - ``efficient_risk`` (``target_volatility=``, annual): most return within it;
        - ``max_utility`` (``risk_aversion=1``): ``mu'w - risk_aversion/2 w'Sigma w`` (annual);
        - ``min_cvar`` (``confidence=0.95``): least historical CVaR of the problem's return
          scenarios (Rockafellar-Uryasev; per period, a loss is positive);
        - ``risk_parity`` (``risk_budgets=None``: equal): each asset's share of the variance equals
          its budget (Spinu's convex form, homogenized so constraints still hold);
        - ``hrp`` (``linkage='single'``): hierarchical risk parity;
        - ``max_diversification``: the highest ``w'sigma / sqrt(w'Sigma w)``.

        Transaction costs and market impact, when the constraints set them, are added to the risk
        of risk-minimizing objectives and subtracted from the return of return-seeking ones;
        ``expected_return`` is reported gross, the costs in ``diagnostics``.
    method
        ``"classical"`` (cvxpy; continuous objectives), or for the binary objectives:
        ``"exact"`` (brute force up to 20 bits, SCIP above), ``"qaoa"`` (Qiskit-compatible QAOA on
        qpo's own statevector fast path; options ``reps``, ``mixer="auto"|"x"|"xy"``, ``cvar_alpha``,
        ``inits``, ``n_random``, ``optimizer``, ``maxiter``, ``shots``, ``backend="numpy"|"qiskit"|"aer"``,
        ``max_qubits=24``), ``"annealing"`` (dwave-samplers, local; ``sampler``, ``num_reads``,
        ``num_sweeps``, ``penalty_sweep``, ``polish``, ``time_limit``) or ``"auto"`` (QAOA up to
        ``auto_qaoa_qubits=12`` qubits, annealing above). Every binary answer is checked, repaired
        or replaced by the exact one (``fallback_reason``), and reported next to the exact optimum
        (``diagnostics``: ``f_star``, ``gap``, ``approximation_ratio``, ``p_optimum``,
        ``p_feasible``, ``tts99_s``, ...; see :mod:`qpo.quantum.engine`). ``seed`` seeds them.
    solver
        A solver name to try first (then the usual chain), or a list: exactly the solvers to try.
        The default chain is Clarabel then SCS (HiGHS first for linear programs; SCIP, or HiGHS
        then SCIP, for mixed-integer ones). The result's ``solver`` says which answered and
        ``diagnostics['solvers_tried']`` why the others did not.
    confidence_level, n_bootstrap, seed
        The confidence interval of the expected return: an iid bootstrap of the portfolio's mean
        return over the problem's return scenarios (annualized, percentile interval). ``None``
        skips it.

    Raises
    ------
    InfeasibleError
        the constraints cannot hold together (the message names the conflicting ones).
    SolverError
        no solver answered; the message lists what was tried.
    ProblemError, UnknownOptionError, InvalidValueError
        invalid objective, options or combination.
    """
    if not isinstance(problem, PortfolioProblem):
        raise TypeError(f"problem must be a qpo.PortfolioProblem, got {type(problem).__name__}")
    if method not in METHODS:
        raise UnknownOptionError("method", method, METHODS)
    if objective is None:
        objective = "min_variance" if method == "classical" else "asset_selection"
    if objective not in OBJECTIVE_OPTIONS and objective not in BINARY_OBJECTIVES:
        raise UnknownOptionError("objective", objective, OBJECTIVES + BINARY_OBJECTIVES)
    if confidence_level is not None:
        number("confidence_level", confidence_level, lo=0, hi=1, lo_open=True, hi_open=True)
    if objective in BINARY_OBJECTIVES or method != "classical":
        if solver is not None or solver_options is not None:
            raise ProblemError("solver= and solver_options= choose the classical cvxpy solver; the binary methods "
                               "take their own options (exact_method='brute_force'|'scip', sampler=, backend=, ...)")
        return _optimize_binary(problem, objective, method, options, confidence_level, n_bootstrap, seed)
    opts = resolve_options(problem, objective, options)
    t0 = time.perf_counter()
    diagnostics: dict = {}
    if objective == "hrp":
        w, info = _solve_hrp(problem, opts)
    else:
        from qpo.optimization.classical import solve_classical

        w, info = solve_classical(problem, objective, opts, solver, solver_options)
    ret, vol, sharpe = portfolio_statistics(problem, w)
    diagnostics.update(_objective_diagnostics(problem, objective, w, opts, info))
    if info.get("tried"):
        diagnostics["solvers_tried"] = list(info["tried"])
    fallback = None
    if info.get("tried") and info.get("chain") and info["solver"] != info["chain"][0]:
        fallback = f"{info['solver']} answered after {'; '.join(info['tried'])}"
    if problem.repairs:
        diagnostics["repairs"] = list(problem.repairs)
    if opts:
        diagnostics["options"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in opts.items()}
    ci = None
    if confidence_level is not None:
        ci, note = bootstrap_interval(problem, w, confidence_level, n_bootstrap, seed)
        diagnostics["confidence_interval"] = note
    timings = {"build_s": info.get("build_s", 0.0), "solve_s": info.get("solve_s", 0.0),
               "total_s": time.perf_counter() - t0}
    return OptimizationResult(
        weights=pd.Series(w, index=problem.tickers, name="weight"),
        expected_return=ret, volatility=vol, sharpe=sharpe,
        objective=objective, method=method, solver=info["solver"], status=str(info["status"]),
        periods_per_year=problem.periods_per_year, risk_free_rate=problem.risk_free_rate,
        timings=timings, confidence_interval=ci, fallback_reason=fallback, diagnostics=diagnostics,
    )


def _optimize_binary(problem, objective, method, options, confidence_level, n_bootstrap, seed) -> OptimizationResult:
    if objective not in BINARY_OBJECTIVES:
        raise ProblemError(f"method {method!r} solves the binary objectives {list(BINARY_OBJECTIVES)} (choose assets "
                           f"or whole lots); {objective!r} has continuous weights: use method='classical'")
    if method == "classical":
        raise ProblemError(f"{objective} is a binary problem; solve it with method='exact' (brute force / SCIP), "
                           "'qaoa', 'annealing' or 'auto'")
    seed = whole("seed", seed, lo=0)
    from qpo.quantum.engine import solve_binary

    t0 = time.perf_counter()
    outcome, build_s, solve_s = solve_binary(problem, objective, method, options, int(seed))
    w = outcome.weights.to_numpy()
    diagnostics = outcome.diagnostics()
    ret, vol, sharpe = portfolio_statistics(problem, w)
    ci = None
    if confidence_level is not None:
        ci, note = bootstrap_interval(problem, w, confidence_level, n_bootstrap, int(seed))
        diagnostics["confidence_interval"] = note
    if problem.repairs:
        diagnostics["repairs"] = list(problem.repairs)
    timings = {"build_s": build_s, "solve_s": solve_s, "total_s": time.perf_counter() - t0}
    return OptimizationResult(
        weights=pd.Series(w, index=problem.tickers, name="weight"), expected_return=ret, volatility=vol,
        sharpe=sharpe, objective=objective, method=method, solver=outcome.solver, status=outcome.status,
        periods_per_year=problem.periods_per_year, risk_free_rate=problem.risk_free_rate, timings=timings,
        confidence_interval=ci, fallback_reason=outcome.fallback_reason, diagnostics=diagnostics, binary=outcome)


def _solve_hrp(problem: PortfolioProblem, opts: dict):
    from qpo.optimization.classical import refuse_riskless
    from qpo.optimization.hrp import hrp_weights

    refuse_riskless(problem, "hrp")
    if problem.constraints.describe():
        raise ProblemError("hrp allocates by its own recursive rule and takes no constraints beyond the default "
                           f"long-only, fully invested ones; got {problem.constraints!r}. Use risk_parity or "
                           "min_variance for constrained portfolios")
    t0 = time.perf_counter()
    w, order = hrp_weights(problem.cov.to_numpy(), opts["linkage"])
    return w, {"solver": "hrp (scipy linkage)", "status": "optimal", "solve_s": time.perf_counter() - t0,
               "order": [problem.tickers[i] for i in order]}


def _objective_diagnostics(problem, objective, w, opts, info) -> dict:
    rc = problem.resolved
    out: dict = {}
    cov = problem.cov.to_numpy()
    if objective in ("risk_parity", "hrp", "max_diversification", "min_variance"):
        var = float(w @ cov @ w)
        if var > 0:
            rc_share = w * (cov @ w) / var
            out["risk_contributions"] = dict(zip(problem.tickers, rc_share.round(12).tolist()))
    if objective == "max_diversification":
        sd = np.sqrt(np.diag(cov))
        out["diversification_ratio"] = float(w @ sd / np.sqrt(w @ cov @ w))
    if objective == "min_cvar":
        # the one VaR rule of qpo (qpo.measures), the same number qpo.risk reports for these weights
        out["var"], out["cvar"] = measures.var_cvar(problem.returns.to_numpy() @ w, opts["confidence"])
        out["cvar_convention"] = ("per-period historical CVaR of the scenarios (Rockafellar-Uryasev), "
                                  "a loss is positive")
    if objective == "hrp":
        out["leaf_order"] = info["order"]
    if rc.has_costs or rc.max_turnover is not None or rc.current is not None:
        trade = np.abs(w - rc.reference)
        out["turnover"] = float(trade.sum())
        out["transaction_cost"] = float(rc.costs @ trade)
        out["market_impact_cost"] = float(rc.impact @ trade ** 1.5)
    if rc.max_tracking_error is not None:
        d = w - rc.benchmark
        out["tracking_error"] = float(np.sqrt(max(d @ cov @ d, 0.0) * problem.periods_per_year))
    if rc.is_mixed_integer:
        out["n_holdings"] = int((np.abs(w) > 0).sum())
        out["mip_gap"] = info.get("mip_gap")
        gap = info.get("mip_gap")
        out["proven_optimal"] = bool(info.get("status") == "optimal" and gap is not None and gap <= 1e-9)
        if info.get("polished"):
            out["polished"] = info["polished"]
    return out


@functools.lru_cache(maxsize=4)
def _resample_counts(T: int, n_bootstrap: int, seed: int) -> np.ndarray:
    """How often each of ``T`` periods appears in each of ``n_bootstrap`` iid resamples (drawn as
    ``default_rng(seed).integers(0, T, (n_bootstrap, T))``), cached: a backtest or a sweep
    re-uses them, and a resample's mean is then one matrix-vector product."""
    idx = np.random.default_rng(seed).integers(0, T, size=(n_bootstrap, T))
    flat = (idx + (np.arange(n_bootstrap) * T)[:, None]).ravel()
    counts = np.bincount(flat, minlength=n_bootstrap * T).reshape(n_bootstrap, T).astype(float)
    counts.flags.writeable = False
    return counts


def bootstrap_interval(problem: PortfolioProblem, w: np.ndarray, level: float, n_bootstrap: int, seed: int):
    """Percentile bootstrap interval of the annualized mean portfolio return, and a note saying how
    it was made (or why there is none)."""
    n_bootstrap = whole("n_bootstrap", n_bootstrap, lo=100)
    if problem.returns is None:
        return None, ("none: the problem has no return scenarios (build it with from_returns, or pass returns= "
                      "to from_moments)")
    r = problem.returns.to_numpy() @ w
    T = len(r)
    means = _resample_counts(T, int(n_bootstrap), int(seed)) @ r / T
    P = problem.periods_per_year
    a = (1 - level) / 2
    lo, hi = np.quantile(means, [a, 1 - a]) * P
    return (float(lo), float(hi)), (f"{level:.0%} percentile interval of the annualized mean return, iid bootstrap "
                                    f"of the {T} return scenarios, {n_bootstrap} resamples, seed {seed}")
