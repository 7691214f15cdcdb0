"""qpo's classical optimizers against PyPortfolioOpt, skfolio and Riskfolio-Lib, measured on this
machine, on the same data in the same run, and written to
``benchmarks/results/classical_optimizers.{json,md}``.

1. a 50-point efficient frontier of the 20 bundled S&P 500 assets (2018-2022), long-only, weights
   in [0, 1] and in [0, 0.3]; every library gets the same annualized sample moments, and the
   frontiers are checked against each other (volatility at the same expected return);
2. min-variance on ~500 assets of ``../shared/data`` (2016-2020) with a 2 % cap per asset and a
   15 % cap per GICS sector, Ledoit-Wolf covariance: one problem, then 12 rolling one-year windows;
3. min-variance with a cardinality limit (10 of 100 assets, 20 % cap): qpo and Riskfolio-Lib, both
   through SCIP, each in a subprocess with a time limit.

Sections 2 and 3 need ``../shared/data`` and are skipped, with a message, when it is absent.
Every figure is the median of repeats after a first (cold) call, which is reported apart.

``--smoke`` runs every section on tiny sizes (5 points, one weight cap, 100 assets and 3 windows,
3 of 12 assets) once each, in seconds: the suite runs it.

Usage: ``python -m benchmarks.classical_optimizers [--smoke | --quick] [--skip-shared] [--mip-time-limit 300]
[--out DIR]``
"""
from __future__ import annotations

import importlib.util
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from benchmarks._common import (
    BARS,
    SECTORS,
    add_worker_options,
    finish,
    fmt,
    header,
    module_name,
    ms,
    parser,
    run_worker,
    serve_worker,
    shared_closes,
    shared_data,
    start,
    strip,
    timeit,
    write_results,
)

NAME = "classical_optimizers"
PEERS = ("pypfopt", "skfolio", "riskfolio")
PEER_MODULES = {"pypfopt": "pypfopt", "skfolio": "skfolio", "riskfolio": "riskfolio"}
MISSING = "not installed: `pip install -e '.[test,bench]'` (make benchmark does it) installs the peers"
PACKAGES = ("qpo", "pyportfolioopt", "skfolio", "riskfolio-lib", "cvxpy", "osqp", "clarabel", "pyscipopt", "numpy",
            "scipy", "pandas", "scikit-learn")

#: sizes and repeats of each mode: ``--smoke`` runs every section on tiny sizes in seconds
MODES = {
    "full": {"n_points": 50, "max_weights": (1.0, 0.3), "sector_assets": None, "n_windows": 12,
             "card_assets": 100, "card_k": 10, "card_max_weight": 0.2,
             "repeats": {"qpo": 30, "peer": 10, "riskfolio": 5, "qpo_500": 10, "peer_500": 5, "peer_windows": 5}},
    "quick": {"n_points": 50, "max_weights": (1.0, 0.3), "sector_assets": None, "n_windows": 12,
              "card_assets": 100, "card_k": 10, "card_max_weight": 0.2,
              "repeats": {"qpo": 5, "peer": 2, "riskfolio": 2, "qpo_500": 3, "peer_500": 2, "peer_windows": 3}},
    "smoke": {"n_points": 5, "max_weights": (0.3,), "sector_assets": 100, "n_windows": 3,
              "card_assets": 12, "card_k": 3, "card_max_weight": 0.5,
              "repeats": {"qpo": 0, "peer": 0, "riskfolio": 0, "qpo_500": 0, "peer_500": 0, "peer_windows": 2}},
}


def _vol(W, cov):
    import numpy as np

    W = np.atleast_2d(W)
    return np.sqrt(np.clip(np.einsum("ij,jk,ik->i", W, cov, W), 0.0, None))


# -- 1. efficient frontier, 20 assets ------------------------------------------------------------
def frontier_section(p: dict, peers: tuple[str, ...] = PEERS) -> dict:
    """Section 1 with the sizes and repeats ``p`` of a mode (:data:`MODES`), against ``peers``."""
    import qpo

    returns = qpo.prices_to_returns(qpo.load_prices("sp500").loc["2018-01-01":"2022-12-31"])
    mu_a = returns.mean() * 252  # the annualized moments every library gets
    cov_a = returns.cov() * 252
    out = {"data": f"bundled sp500 panel, {returns.index[0].date()}..{returns.index[-1].date()}, "
                   f"{len(returns)} daily returns x {returns.shape[1]} assets",
           "moments": "sample mean x 252, sample covariance (ddof=1) x 252", "cases": {}}
    for max_w in p["max_weights"]:
        out["cases"][f"max_weight_{max_w:g}"] = _frontier_case(returns, mu_a, cov_a, max_w, p["repeats"], p["n_points"],
                                                               peers)
    ratios = [c["fastest_peer_over_qpo"] for c in out["cases"].values() if c["fastest_peer"]]
    out["fastest_peer_over_qpo_min"] = min(ratios) if ratios else None
    out["target_met"] = bool(ratios) and min(ratios) >= 3.0
    return out


def _frontier_case(returns, mu_a, cov_a, max_w: float, repeats: dict, n_points: int, peers: tuple[str, ...]) -> dict:
    import numpy as np

    import qpo

    tickers = list(returns.columns)
    S = cov_a.to_numpy()
    mu = mu_a.to_numpy()
    problem = qpo.PortfolioProblem.from_returns(returns, constraints=qpo.Constraints(max_weight=max_w))
    moments_diff = max(float(np.abs(problem.annual_mu() - mu).max()), float(np.abs(problem.annual_cov() - S).max()))
    case: dict = {"n_points": n_points, "weight_bounds": [0.0, max_w], "qpo_moments_max_abs_diff": moments_diff}

    # qpo
    t = timeit(lambda: qpo.efficient_frontier(problem, n_points=n_points), repeats["qpo"])
    frame = t["output"]
    Wq = frame[tickers].to_numpy()
    targets = frame["target_return"].to_numpy()
    ret_q, vol_q = Wq @ mu, _vol(Wq, S)
    case["qpo"] = {**strip(t), "path": frame.attrs.get("path"), "solver": frame.attrs.get("solver"),
                   "critical_lines": frame.attrs.get("critical_lines"),
                   "fallback_points": frame.attrs.get("fallback_points"),
                   "return_range": [float(ret_q[0]), float(ret_q[-1])], "vol_range": [float(vol_q[0]), float(vol_q[-1])]}

    def reference_vol(r: float) -> float:
        """qpo's least volatility for an expected return of at least ``r`` (exact re-solve)."""
        r = min(max(r, targets[0]), targets[-1])
        if r <= targets[0] + 1e-12:
            return float(vol_q[0])
        return qpo.optimize(problem, "efficient_return", target_return=float(r), confidence_level=None).volatility

    def compare(W, name, same_targets=False) -> dict:
        ret, vol = W @ mu, _vol(W, S)
        viol = max(float(np.abs(W.sum(axis=1) - 1).max()), float((W - max_w).max()), float((-W).max()), 0.0)
        if same_targets:
            ref, shortfall = vol_q, float(np.max(targets - ret))
            dw = float(np.abs(W - Wq).max())
        else:
            ref, shortfall, dw = np.array([reference_vol(float(r)) for r in ret]), None, None
        d = vol - ref
        return {"return_range": [float(ret.min()), float(ret.max())], "vol_range": [float(vol.min()), float(vol.max())],
                "max_abs_vol_diff": float(np.abs(d).max()), "max_vol_excess_over_qpo": float(d.max()),
                "min_vol_excess_over_qpo": float(d.min()), "min_variance_end_vol_diff": float(d[np.argmin(ret)]),
                "max_constraint_violation": viol, "max_abs_weight_diff_same_targets": dw,
                "max_return_shortfall_vs_target": shortfall,
                "compared_at": (f"qpo's {n_points} targets" if same_targets else
                                "the peer's own points: qpo re-solved (efficient_return) at each peer point's "
                                "expected return")}

    warnings.filterwarnings("ignore")
    ctx = {"returns": returns, "mu_a": mu_a, "cov_a": cov_a, "mu": mu, "S": S, "max_w": max_w, "n_points": n_points,
           "repeats": repeats, "targets": targets, "tickers": tickers, "compare": compare}
    for peer in peers:
        case[peer] = FRONTIER_PEERS[peer](ctx)
    warnings.resetwarnings()

    q = case["qpo"]["median_s"]
    for peer in peers:
        case[peer]["ratio_peer_over_qpo"] = case[peer]["median_s"] / q
    fastest = min(peers, key=lambda peer: case[peer]["median_s"]) if peers else None
    case["fastest_peer"] = fastest
    case["fastest_peer_over_qpo"] = case[fastest]["median_s"] / q if fastest else None
    return case


def _frontier_pypfopt(c: dict) -> dict:
    """PyPortfolioOpt: one instance re-used over the targets (cvxpy parameter), checked against one per point."""
    import numpy as np
    from pypfopt import EfficientFrontier

    mu_a, cov_a, S, max_w, n_points, repeats = (c[k] for k in ("mu_a", "cov_a", "S", "max_w", "n_points", "repeats"))
    targets, tickers, compare = c["targets"], c["tickers"], c["compare"]

    def pp_frontier(reuse: bool):
        W, clipped = [], 0
        ef = EfficientFrontier(mu_a, cov_a, weight_bounds=(0, max_w))
        for tr in targets:
            if not reuse:
                ef = EfficientFrontier(mu_a, cov_a, weight_bounds=(0, max_w))
            tr = float(tr)
            if ef._max_return_value is not None and tr > ef._max_return_value:  # its own max, solved by OSQP
                tr, clipped = float(ef._max_return_value), clipped + 1
            w = ef.efficient_return(tr)
            W.append([w[k] for k in tickers])
        return np.array(W), clipped, ef._opt.solver_stats.solver_name

    fresh_t0 = time.perf_counter()
    W_fresh, _, _ = pp_frontier(False)
    fresh_s = time.perf_counter() - fresh_t0
    t = timeit(lambda: pp_frontier(True), repeats["peer"])
    W_pp, clipped, solver = t["output"]
    reuse_ok = float(np.abs(_vol(W_pp, S) - _vol(W_fresh, S)).max()) < 1e-4
    if not reuse_ok:  # re-use not trustworthy: time one instance per point instead
        t = timeit(lambda: pp_frontier(False), repeats["peer"])
        W_pp, clipped, solver = t["output"]
    return {**strip(t), **compare(W_pp, "pypfopt", same_targets=True), "solver": solver,
            "method": (f"one EfficientFrontier re-used for all {n_points} efficient_return(t) calls (1.6 updates "
                       "its target_return cvxpy parameter)" if reuse_ok else
                       "one EfficientFrontier per point (re-use disagreed with fresh instances)"),
            "instance_reused": reuse_ok,
            "one_instance_per_point_s_single_run": fresh_s,
            "reuse_vs_fresh_max_abs_weight_diff": float(np.abs(W_pp - W_fresh).max()),
            "reuse_vs_fresh_max_abs_vol_diff": float(np.abs(_vol(W_pp, S) - _vol(W_fresh, S)).max()),
            "targets_clipped_to_its_max_return": clipped}


def _frontier_skfolio(c: dict) -> dict:
    """skfolio: MeanRisk's own frontier, sample moments through EmpiricalPrior (daily; weights are scale-free)."""
    import numpy as np
    from skfolio import RiskMeasure
    from skfolio.moments import EmpiricalCovariance, EmpiricalMu
    from skfolio.optimization import MeanRisk
    from skfolio.prior import EmpiricalPrior

    returns, mu, S, max_w, n_points, repeats = (c[k] for k in ("returns", "mu", "S", "max_w", "n_points", "repeats"))
    compare = c["compare"]

    def sk_fit():
        return MeanRisk(risk_measure=RiskMeasure.VARIANCE, efficient_frontier_size=n_points, max_weights=max_w,
                        prior_estimator=EmpiricalPrior(mu_estimator=EmpiricalMu(),
                                                       covariance_estimator=EmpiricalCovariance(ddof=1, nearest=False))
                        ).fit(returns)

    t = timeit(sk_fit, repeats["peer"])
    model = t["output"]
    rd = model.prior_estimator_.return_distribution_
    W_sk = np.asarray(model.weights_)
    return {**strip(t), **compare(W_sk, "skfolio"), "solver": model.solver,
            "method": f"MeanRisk(VARIANCE, efficient_frontier_size={n_points}).fit: targets from 1.01 x min-risk "
                      "return to max return",
            "moments_max_abs_diff_annualized": max(float(np.abs(rd.mu * 252 - mu).max()),
                                                   float(np.abs(rd.covariance * 252 - S).max()))}


def _frontier_riskfolio(c: dict) -> dict:
    """Riskfolio-Lib: its frontier (points spaced in risk, max return under each risk cap)."""
    import numpy as np
    import riskfolio as rp

    returns, mu, S, max_w, n_points, repeats = (c[k] for k in ("returns", "mu", "S", "max_w", "n_points", "repeats"))
    tickers, compare = c["tickers"], c["compare"]

    def rp_setup():
        port = rp.Portfolio(returns=returns)
        port.assets_stats(method_mu="hist", method_cov="hist")
        port.upperlng = max_w
        return port

    t = timeit(lambda port: port.efficient_frontier(model="Classic", rm="MV", points=n_points, rf=0, hist=True),
               repeats["riskfolio"], setup=rp_setup)
    port = rp_setup()
    W_rp = t["output"].reindex(tickers).to_numpy().T
    return {**strip(t), **compare(W_rp, "riskfolio"), "solver": port.solvers[0],
            "method": f"Portfolio.efficient_frontier(model='Classic', rm='MV', points={n_points}) after "
                      "assets_stats('hist', 'hist') (untimed), upperlng=max_weight",
            "moments_max_abs_diff_annualized": max(
                float(np.abs(port.mu.to_numpy().ravel() * 252 - mu).max()),
                float(np.abs(port.cov.to_numpy() * 252 - S).max()))}


FRONTIER_PEERS = {"pypfopt": _frontier_pypfopt, "skfolio": _frontier_skfolio, "riskfolio": _frontier_riskfolio}


# -- shared data ---------------------------------------------------------------------------------
def shared_returns():
    """Daily returns 2016-2020 of the shared vendor panel, tickers with no NaN and no |return| >= 0.5."""
    import qpo

    prices = shared_closes().loc["2016-01-01":"2020-12-31"]
    n_all = prices.shape[1]
    prices = prices.dropna(axis=1, how="any")
    returns = qpo.prices_to_returns(prices)
    defects = sorted(returns.columns[(returns.abs() >= 0.5).any()])
    returns = returns.drop(columns=defects)
    info = {"tickers_in_file": n_all, "dropped_for_nan": n_all - prices.shape[1],
            "dropped_for_abs_return_ge_0.5": defects, "n_assets": returns.shape[1], "n_returns": len(returns),
            "period": f"{returns.index[0].date()}..{returns.index[-1].date()}"}
    return returns, info


# -- 2. min-variance, ~500 assets, box and sector caps ------------------------------------------
def sector_section(returns, info, p: dict, peers: tuple[str, ...] = PEERS) -> dict:
    """Section 2 with the sizes and repeats ``p`` of a mode (:data:`MODES`): every asset with a
    sector, or the first ``p["sector_assets"]`` of them alphabetically."""
    import numpy as np
    import pandas as pd

    import qpo

    sectors = pd.read_csv(SECTORS)
    mapper = dict(zip(sectors["ticker"], sectors["sector"]))
    missing = [t for t in returns.columns if t not in mapper]
    returns = returns.drop(columns=missing)
    if p["sector_assets"]:
        returns = returns[sorted(returns.columns)[:p["sector_assets"]]]
    repeats = p["repeats"]
    tickers = list(returns.columns)
    groups = {t: mapper[t] for t in tickers}
    names = sorted(set(groups.values()))
    cons = qpo.Constraints(max_weight=0.02, groups=groups, group_max={s: 0.15 for s in names})
    out = {"data": {**info, "no_sector": missing, "n_assets": len(tickers), "n_sectors": len(names)},
           "constraints": "long-only, fully invested, w_i <= 0.02, every GICS sector <= 0.15",
           "covariance": "Ledoit-Wolf (scikit-learn, via qpo covariance='ledoit_wolf'); the peers get qpo's "
                         "matrix x 252"}
    G = np.array([[1.0 if groups[t] == s else 0.0 for t in tickers] for s in names])

    def violation(w):
        return max(float(abs(w.sum() - 1)), float((w - 0.02).max()), float((-w).max()),
                   float((G @ w - 0.15).max()), 0.0)

    warnings.filterwarnings("ignore")
    peer_solvers = _sector_peers(tickers, groups, names, peers)

    # one problem: the whole period
    t0 = time.perf_counter()
    problem = qpo.PortfolioProblem.from_returns(returns, covariance="ledoit_wolf", constraints=cons)
    build_s = time.perf_counter() - t0
    t = timeit(lambda: qpo.optimize(problem, "min_variance", confidence_level=None), repeats["qpo_500"])
    res = t["output"]
    w_q = res.weights.to_numpy()
    S = problem.annual_cov()
    single = {"qpo": {**strip(t), "problem_build_s_untimed": build_s, "solver": res.solver, "status": res.status,
                      "solve_s_inside_optimize_last": res.timings.get("solve_s"),
                      "volatility": res.volatility, "holdings": int((w_q > 1e-8).sum()),
                      "max_constraint_violation": violation(w_q),
                      "note": "repeats re-solve the identical problem: qpo re-uses its OSQP session warm-started "
                              "from the last answer; the rolling case below is the fairer per-solve figure"}}
    for name, (setup, solve, meta) in peer_solvers.items():
        n_rep = repeats["peer_500"]
        t = timeit(solve, n_rep, setup=lambda setup=setup: setup(returns, problem.cov))
        w = t["output"]
        single[name] = {**strip(t), **meta, "volatility": float(_vol(w, S)[0]),
                        "vol_diff_vs_qpo": float(_vol(w, S)[0] - res.volatility),
                        "max_abs_weight_diff_vs_qpo": float(np.abs(w - w_q).max()),
                        "holdings": int((w > 1e-6).sum()), "max_constraint_violation": violation(w),
                        "ratio_peer_over_qpo": t["median_s"] / single["qpo"]["median_s"]}
    out["single"] = single

    # rolling: n_windows (12) one-year windows sliding by 21 days, ending on the last day of 2020
    n_win, span, step = p["n_windows"], 252, 21
    starts = [len(returns) - span - step * (n_win - 1 - k) for k in range(n_win)]
    windows = [returns.iloc[s:s + span] for s in starts]
    problems = [qpo.PortfolioProblem.from_returns(r, covariance="ledoit_wolf", constraints=cons) for r in windows]
    q_times, q_w, q_vol = [], [], []
    for prob in problems:
        t0 = time.perf_counter()
        r = qpo.optimize(prob, "min_variance", confidence_level=None)
        q_times.append(time.perf_counter() - t0)
        q_w.append(r.weights.to_numpy())
        q_vol.append(r.volatility)
    after_first = q_times[1:]
    rolling = {"windows": [f"{w.index[0].date()}..{w.index[-1].date()}" for w in windows],
               "qpo": {"first_s": q_times[0], "median_s": statistics.median(after_first), "max_s": max(after_first),
                       "per_window_s": q_times, "solves": len(q_times),
                       "max_constraint_violation": max(violation(w) for w in q_w)}}
    n_peer = min(repeats["peer_windows"], n_win)
    peer_windows = sorted({round(float(x)) for x in np.linspace(0, n_win - 1, n_peer)})  # spread over the period
    q_same = statistics.median(q_times[k] for k in peer_windows)
    rolling["peer_windows"] = peer_windows
    rolling["qpo"]["median_s_on_peer_windows"] = q_same
    for name, (setup, solve, meta) in peer_solvers.items():
        times, dws, dvols, viols = [], [], [], []
        for k in peer_windows:
            arg = setup(windows[k], problems[k].cov)
            t0 = time.perf_counter()
            w = solve(arg)
            times.append(time.perf_counter() - t0)
            Sk = problems[k].annual_cov()
            dws.append(float(np.abs(w - q_w[k]).max()))
            dvols.append(float(_vol(w, Sk)[0] - q_vol[k]))
            viols.append(violation(w))
        rolling[name] = {**meta, "windows_solved": len(peer_windows), "median_s": statistics.median(times),
                         "max_s": max(times), "per_window_s": times, "max_abs_weight_diff_vs_qpo": max(dws),
                         "max_abs_vol_diff_vs_qpo": max(map(abs, dvols)), "max_constraint_violation": max(viols),
                         "ratio_peer_over_qpo": statistics.median(times) / q_same,
                         "ratio_basis": "median on the same windows (qpo's solves there included)"}
    warnings.resetwarnings()
    out["rolling"] = rolling
    out["target"] = "qpo under 200 ms per solve after the first"
    out["target_met"] = bool(rolling["qpo"]["median_s"] < 0.2 and single["qpo"]["median_s"] < 0.2)
    return out


def _sector_peers(tickers, groups, names, peers: tuple[str, ...]) -> dict:
    """peer -> (setup(returns, daily_cov) untimed, solve(arg) timed -> weights in ``tickers`` order, meta)."""
    makers = {"pypfopt": _sector_pypfopt, "skfolio": _sector_skfolio, "riskfolio": _sector_riskfolio}
    return {peer: makers[peer](tickers, groups, names) for peer in peers}


def _sector_pypfopt(tickers, groups, names):
    import numpy as np
    from pypfopt import EfficientFrontier

    upper = {s: 0.15 for s in names}

    def pp_setup(returns, cov):
        ef = EfficientFrontier(None, cov * 252, weight_bounds=(0, 0.02))
        ef.add_sector_constraints(groups, {}, upper)
        return ef

    def pp_solve(ef):
        w = ef.min_volatility()
        return np.array([w[t] for t in tickers])

    return pp_setup, pp_solve, {"timed": "min_volatility() (EfficientFrontier + add_sector_constraints built untimed)",
                                "solver": "cvxpy default (OSQP)"}


def _sector_skfolio(tickers, groups, names):
    import numpy as np
    from skfolio.moments.covariance._base import BaseCovariance
    from skfolio.optimization import MeanRisk
    from skfolio.prior import EmpiricalPrior

    class FixedCovariance(BaseCovariance):
        """A given covariance matrix (qpo's Ledoit-Wolf), so skfolio solves on the same moments."""

        def __init__(self, covariance=None):
            super().__init__(nearest=False)
            self.covariance = covariance

        def fit(self, X, y=None):
            self._set_covariance(np.asarray(self.covariance, dtype=float))
            return self

    label = {s: s.replace(" ", "_") for s in names}  # skfolio's constraint parser reads one token per group

    def sk_setup(returns, cov):
        model = MeanRisk(max_weights=0.02, groups={t: [label[groups[t]]] for t in tickers},
                         linear_constraints=[f"{label[s]} <= 0.15" for s in names],
                         prior_estimator=EmpiricalPrior(covariance_estimator=FixedCovariance(cov.to_numpy() * 252)))
        return model, returns

    def sk_solve(arg):
        model, returns = arg
        return np.asarray(model.fit(returns).weights_)

    return sk_setup, sk_solve, {"timed": "MeanRisk(groups, linear_constraints, max_weights=0.02).fit (covariance fixed "
                                         "to qpo's Ledoit-Wolf)", "solver": "CLARABEL"}


def _sector_riskfolio(tickers, groups, names):
    import pandas as pd
    import riskfolio as rp

    asset_classes = pd.DataFrame({"Assets": tickers, "Sector": [groups[t] for t in tickers]})
    rows = pd.DataFrame([{"Disabled": False, "Type": "Classes", "Set": "Sector", "Position": s, "Sign": "<=",
                          "Weight": 0.15, "Type Relative": "", "Relative Set": "", "Relative": "", "Factor": ""}
                         for s in names])
    A, B = rp.assets_constraints(rows, asset_classes)

    def rp_setup(returns, cov):
        port = rp.Portfolio(returns=returns, upperlng=0.02)
        port.assets_stats(method_mu="hist", method_cov="hist")
        port.cov = cov * 252
        port.ainequality, port.binequality = A, B
        return port

    def rp_solve(port):
        w = port.optimization(model="Classic", rm="MV", obj="MinRisk", rf=0, l=0, hist=True)
        return w["weights"].reindex(tickers).to_numpy()

    return rp_setup, rp_solve, {"timed": "Portfolio.optimization(model='Classic', rm='MV', obj='MinRisk') "
                                         "(assets_stats, cov and ainequality/binequality set untimed)",
                                "solver": "CLARABEL (first of its solver list)"}


# -- 3. cardinality, 10 of 100 -------------------------------------------------------------------
def cardinality_section(returns, p: dict, time_limit: float, in_process: bool = False,
                        peers: tuple[str, ...] = PEERS) -> dict:
    """Section 3: qpo and Riskfolio-Lib, both through SCIP, each in its own process (in this one
    with ``in_process``: the smoke run) on the first ``p["card_assets"]`` tickers of ``returns``."""
    out = {"problem": f"min-variance, long-only, w_i <= {p['card_max_weight']:g}, at most {p['card_k']} holdings; "
                      f"first {p['card_assets']} tickers (alphabetical) of the section-2 universe; sample covariance",
           "mip_time_limit_s": time_limit}
    with tempfile.TemporaryDirectory(prefix="qpo_bench_card_") as tmp:
        data = Path(tmp) / "returns.pkl"
        returns[sorted(returns.columns)[:p["card_assets"]]].to_pickle(data)
        card = {"returns": str(data), "k": p["card_k"], "max_weight": p["card_max_weight"], "time_limit": time_limit}
        out["riskfolio"] = {"skipped": MISSING}
        for who in ("qpo", "riskfolio") if "riskfolio" in peers else ("qpo",):
            out[who] = run_worker(module_name(__file__), f"card-{who}", card, timeout=time_limit + 180,
                                  in_process=WORKERS if in_process else None)
    q, r = out.get("qpo", {}), out.get("riskfolio", {})
    if "variance_annual" in q and "variance_annual" in r:
        out["riskfolio_minus_qpo_variance"] = r["variance_annual"] - q["variance_annual"]
        out["same_holdings"] = sorted(q["holdings"]) == sorted(r["holdings"])
        out["ratio_riskfolio_over_qpo"] = r["solve_s"] / q["solve_s"]
    return out


def _card_data(a: dict):
    import pandas as pd

    import qpo

    returns = pd.read_pickle(a["returns"])
    cons = qpo.Constraints(max_weight=a["max_weight"], max_assets=a["k"])
    return returns, qpo.PortfolioProblem.from_returns(returns, constraints=cons)


def _best_on_support(cov, holdings, max_weight: float) -> float:
    """The least annual variance on exactly these holdings (continuous, w_i in [0, max_weight]),
    solved apart with cvxpy (Clarabel, tight tolerances): neither library's own answer."""
    import cvxpy as cp
    import numpy as np

    sub = cov.loc[holdings, holdings].to_numpy() * 252
    x = cp.Variable(len(holdings))
    cp.Problem(cp.Minimize(cp.quad_form(x, cp.psd_wrap(sub))), [cp.sum(x) == 1, x >= 0, x <= max_weight]).solve(
        solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    w = np.clip(np.asarray(x.value), 0.0, max_weight)
    w /= w.sum()
    return float(w @ sub @ w)


def w_card_qpo(a: dict) -> dict:
    """qpo's min-variance with a cardinality limit, through SCIP (its default for mixed-integer)."""
    import qpo

    warnings.filterwarnings("ignore")
    returns, problem = _card_data(a)
    cov = problem.cov
    t0 = time.perf_counter()
    res = qpo.optimize(problem, "min_variance", confidence_level=None,
                       solver_options={"scip_params": {"limits/time": float(a["time_limit"])}})
    solve_s = time.perf_counter() - t0
    w = res.weights
    held = [t for t in w.index if abs(w[t]) > 1e-8]
    x = w.to_numpy()
    return {"solve_s": solve_s, "solver": res.solver, "status": res.status,
            "proven_optimal": res.diagnostics.get("proven_optimal"), "mip_gap": res.diagnostics.get("mip_gap"),
            "n_holdings": res.diagnostics.get("n_holdings", len(held)), "holdings": held,
            "weights": {t: float(w[t]) for t in held}, "variance_annual": float(x @ cov.to_numpy() @ x) * 252,
            "best_variance_on_its_holdings": _best_on_support(cov, held, a["max_weight"]),
            "timings": res.timings, "solvers_tried": res.diagnostics.get("solvers_tried")}


def w_card_riskfolio(a: dict) -> dict:
    """Riskfolio-Lib's min-variance with ``card``, through SCIP."""
    import numpy as np
    import riskfolio as rp

    warnings.filterwarnings("ignore")
    returns, problem = _card_data(a)
    cov = problem.cov
    port = rp.Portfolio(returns=returns, upperlng=a["max_weight"])
    port.assets_stats(method_mu="hist", method_cov="hist")
    port.card = a["k"]
    port.solvers = ["SCIP"]
    port.sol_params = {"SCIP": {"scip_params": {"limits/time": float(a["time_limit"])}}}
    t0 = time.perf_counter()
    out = port.optimization(model="Classic", rm="MV", obj="MinRisk", rf=0, l=0, hist=True)
    solve_s = time.perf_counter() - t0
    if out is None:
        return {"solve_s": solve_s, "error": "Riskfolio-Lib returned no weights (SCIP found no solution)"}
    w = out["weights"].reindex(cov.index).fillna(0.0)
    held = [t for t in w.index if abs(w[t]) > 1e-8]
    x = w.to_numpy()
    return {"solve_s": solve_s, "solver": "SCIP (via cvxpy, Riskfolio's MISOCP form)",
            "status": "not exposed by Riskfolio-Lib", "n_holdings": len(held), "holdings": held,
            "weights": {t: float(w[t]) for t in held}, "variance_annual": float(x @ cov.to_numpy() @ x) * 252,
            "best_variance_on_its_holdings": _best_on_support(cov, held, a["max_weight"]),
            "covariance_max_abs_diff_vs_qpo": float(np.abs(port.cov.to_numpy() - cov.to_numpy()).max())}


WORKERS = {"card-qpo": w_card_qpo, "card-riskfolio": w_card_riskfolio}


# -- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--mip-time-limit", type=float, default=None,
                    help="SCIP time limit (s) in section 3 (default 300; 20 with --smoke)")
    add_worker_options(ap)
    args = ap.parse_args(argv)
    if args.worker:
        serve_worker(WORKERS, args.worker, args.worker_args)
        return
    t_start = time.perf_counter()
    results = start(args, PACKAGES)
    p = MODES[results["mode"]]
    results["repeats"] = p["repeats"]
    results["parameters"] = {k: v for k, v in p.items() if k != "repeats"}
    time_limit = args.mip_time_limit or (20.0 if args.smoke else 300.0)
    peers = tuple(peer for peer in PEERS if importlib.util.find_spec(PEER_MODULES[peer]) is not None)
    results["peers"] = list(peers)
    results["peers_missing"] = {peer: MISSING for peer in PEERS if peer not in peers}
    if results["peers_missing"]:
        print(f"peers {', '.join(results['peers_missing'])} {MISSING}", flush=True)
    print("1. efficient frontier, 20 assets ...", flush=True)
    results["frontier_20"] = frontier_section(p, peers)
    skipped = shared_data(args, BARS, SECTORS)
    if skipped:
        print(skipped, flush=True)
        results["sector_500"] = {"skipped": skipped}
        results["cardinality_100"] = {"skipped": skipped}
    else:
        print("2. min-variance, ~500 assets, sector caps ...", flush=True)
        returns, info = shared_returns()
        results["sector_500"] = sector_section(returns, info, p, peers)
        print(f"3. cardinality {p['card_k']} of {p['card_assets']} ...", flush=True)
        results["cardinality_100"] = cardinality_section(returns, p, time_limit, in_process=args.smoke, peers=peers)
    finish(results, t_start)
    results["notes"] = findings(results)
    text = write_table(results)
    write_results(args.out, NAME, results, text)
    print(text)


def findings(res: dict) -> list[str]:
    """Facts worth a reader's attention, derived from the figures."""
    notes, r_peers = [], res["peers"]
    for case, c in res["frontier_20"]["cases"].items():
        if c["qpo"].get("fallback_points"):
            notes.append(f"frontier {case}: qpo fell back on some points: {c['qpo']['fallback_points']}")
        for p in r_peers:
            d = c[p]
            if d["min_vol_excess_over_qpo"] < -1e-6:
                slack = max(d["max_constraint_violation"], d["max_return_shortfall_vs_target"] or 0.0)
                if slack > 1e-7:
                    notes.append(f"frontier {case}: {p}'s points reach up to {-d['min_vol_excess_over_qpo']:.2g} less "
                                 f"volatility than qpo's only by breaking the constraints (weights off the budget/"
                                 f"bounds by up to {d['max_constraint_violation']:.2g}, return short of the target by "
                                 f"up to {fmt(d['max_return_shortfall_vs_target'], 2)}): solver tolerance, not a better "
                                 "portfolio")
                else:
                    notes.append(f"frontier {case}: {p} found {-d['min_vol_excess_over_qpo']:.2g} less volatility "
                                 "than qpo at the same return with feasible weights: qpo not optimal there")
    card = res.get("cardinality_100", {})
    q = card.get("qpo", {})
    if q.get("solver") == "SCIP" and q.get("mip_gap") is None:
        notes.append("qpo: result.diagnostics['mip_gap'] is None although SCIP solved the problem; "
                     "'proven_optimal' then rests on the status alone")
    if "ratio_riskfolio_over_qpo" in card and card["ratio_riskfolio_over_qpo"] < 1:
        notes.append(f"cardinality: Riskfolio-Lib+SCIP was {1 / card['ratio_riskfolio_over_qpo']:.1f}x faster than "
                     "qpo+SCIP on the same problem")
    for who in ("qpo", "riskfolio"):
        w = card.get(who, {})
        if "best_variance_on_its_holdings" in w and w["variance_annual"] - w["best_variance_on_its_holdings"] > 1e-7:
            notes.append(f"cardinality: {who}'s weights are not the best on its own {len(w['holdings'])} holdings (variance "
                         f"{w['variance_annual']:.7g} vs {w['best_variance_on_its_holdings']:.7g} attainable)")
        if "error" in w:
            notes.append(f"cardinality: {who}: {w['error']}")
    sec = res.get("sector_500", {})
    if "rolling" in sec:
        ro = sec["rolling"]
        if not sec["target_met"]:
            notes.append(f"sector_500: qpo missed the 200 ms per-solve target (rolling median "
                         f"{ro['qpo']['median_s'] * 1e3:.0f} ms, max {ro['qpo']['max_s'] * 1e3:.0f} ms; one problem "
                         f"re-solved: {sec['single']['qpo']['median_s'] * 1e3:.0f} ms)")
        for p in r_peers:
            if ro[p]["ratio_peer_over_qpo"] < 1 or sec["single"][p]["ratio_peer_over_qpo"] < 1:
                notes.append(f"sector_500: {p} was faster than qpo (rolling: {ro[p]['ratio_peer_over_qpo']:.2f}x, "
                             f"one problem: {sec['single'][p]['ratio_peer_over_qpo']:.2f}x peer/qpo)")
    return notes


# -- markdown ------------------------------------------------------------------------------------
def write_table(r: dict) -> str:
    L = header(r, "Classical optimizers: qpo vs PyPortfolioOpt, skfolio, Riskfolio-Lib", NAME,
               "Times are medians of repeats after a first call (reported apart); every library solves the same "
               "data in the same run.")
    L += [f"- repeats: {r['repeats']}", ""]
    sizes, r_peers = r["parameters"], r["peers"]
    if r["peers_missing"]:
        L += [f"- peers left out: {', '.join(r['peers_missing'])} ({MISSING})", ""]

    fr = r["frontier_20"]
    L += [f"## 1. {sizes['n_points']}-point efficient frontier, 20 assets", "", f"{fr['data']}; {fr['moments']}.", ""]
    L += [("| case | library | how | first | median | peer / qpo | max abs dvol vs qpo | vol excess range | "
          "min-var end dvol | max viol. |"), "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for case, c in fr["cases"].items():
        q = c["qpo"]
        L.append(f"| {case} | qpo | efficient_frontier, path {q['path']} ({q['solver']}) | {ms(q['first_s'])} | "
                 f"{ms(q['median_s'])} | 1 | 0 | - | - | - |")
        for p in r_peers:
            d = c[p]
            how = (("one instance re-used" if d["instance_reused"] else "one instance per point") if p == "pypfopt"
                   else {"skfolio": "MeanRisk frontier", "riskfolio": "efficient_frontier"}[p])
            L.append(f"| {case} | {p} | {how}, {d['solver']} | {ms(d['first_s'])} | {ms(d['median_s'])} | "
                     f"{d['ratio_peer_over_qpo']:.1f}x | {fmt(d['max_abs_vol_diff'], 2)} | "
                     f"[{fmt(d['min_vol_excess_over_qpo'], 2)}, {fmt(d['max_vol_excess_over_qpo'], 2)}] | "
                     f"{fmt(d['min_variance_end_vol_diff'], 2)} | {fmt(d['max_constraint_violation'], 2)} |")
    L += ["", "Fastest peer / qpo: " + "; ".join(
        f"{case}: {c['fastest_peer']} {fmt(c['fastest_peer_over_qpo'], 3)}x" for case, c in fr["cases"].items())
        + f" (target >= 3x: {'met' if fr['target_met'] else 'NOT met'}).", "",
        ("dvol = peer volatility - qpo volatility (annualized) at the same expected return: PyPortfolioOpt at qpo's "
        f"{sizes['n_points']} targets; skfolio and Riskfolio-Lib at their own points, qpo re-solved (efficient_return) at each "
        "point's return. A positive excess means the peer's portfolio is (slightly) less efficient."), ""]
    for case, c in fr["cases"].items():
        if "pypfopt" not in c:
            continue
        pp = c["pypfopt"]
        L.append(f"- {case}: PyPortfolioOpt {pp['method']}; one instance per point took "
                 f"{ms(pp['one_instance_per_point_s_single_run'])} (single run); re-use vs fresh max |dw| "
                 f"{fmt(pp['reuse_vs_fresh_max_abs_weight_diff'], 2)}, max |dw| vs qpo "
                 f"{fmt(pp['max_abs_weight_diff_same_targets'], 2)}, its worst constraint violation "
                 f"{fmt(pp['max_constraint_violation'], 2)} and return shortfall "
                 f"{fmt(pp['max_return_shortfall_vs_target'], 2)} (OSQP at cvxpy's default tolerance); targets clipped "
                 "to its own max return: "
                 f"{pp['targets_clipped_to_its_max_return']}. Moments identical to qpo's: " + ", ".join(
                     f"{peer} {fmt(c[peer]['moments_max_abs_diff_annualized'], 2)}" for peer in ("skfolio", "riskfolio")
                     if peer in c) + " (max abs diff).")
    L.append("")

    sec = r["sector_500"]
    L += ["## 2. Min-variance, ~500 assets, box and sector caps", ""]
    if "skipped" in sec:
        L += [sec["skipped"], ""]
    else:
        d = sec["data"]
        L += [(f"{d['n_assets']} assets of {d['tickers_in_file']} ({d['period']}, {d['n_returns']} returns; "
              f"{d['dropped_for_nan']} dropped for NaN, dropped for |daily return| >= 0.5: "
              f"{', '.join(d['dropped_for_abs_return_ge_0.5']) or 'none'}), {d['n_sectors']} sectors. "
              f"{sec['constraints']}; {sec['covariance']}."), "",
              "### One problem (whole period)", "",
              ("| library | timed | solver | first | median (n) | peer / qpo | vol | max abs dw vs qpo | holdings | "
              "max viol. |"), "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        s = sec["single"]
        q = s["qpo"]
        L.append(f"| qpo | optimize(min_variance) | {q['solver']} | {ms(q['first_s'])} | {ms(q['median_s'])} "
                 f"({q['repeats']}) | 1 | {fmt(q['volatility'], 6)} | 0 | {q['holdings']} | "
                 f"{fmt(q['max_constraint_violation'], 2)} |")
        for p in r_peers:
            x = s[p]
            L.append(f"| {p} | {x['timed']} | {x['solver']} | {ms(x['first_s'])} | {ms(x['median_s'])} "
                     f"({x['repeats']}) | {x['ratio_peer_over_qpo']:.2f}x | {fmt(x['volatility'], 6)} | "
                     f"{fmt(x['max_abs_weight_diff_vs_qpo'], 2)} | {x['holdings']} | "
                     f"{fmt(x['max_constraint_violation'], 2)} |")
        ro = sec["rolling"]
        q = ro["qpo"]
        L += ["", f"qpo repeats: {s['qpo']['note']}.", "",
              (f"### Rolling: {len(ro['windows'])} one-year windows sliding by 21 days ({ro['windows'][0]} ... "
               f"{ro['windows'][-1]})"), "",
              ("Problems built untimed; only the solve is timed. qpo solves all the windows in order (median per solve "
              "after the first); the peers, capped, solve windows "
              f"{', '.join(str(k + 1) for k in ro['peer_windows'])}, and peer / qpo compares medians on those same "
              f"windows (qpo's median there: {ms(q['median_s_on_peer_windows'])})."), "",
              ("| library | solves | median per solve | max | peer / qpo (same windows) | max abs dw vs qpo | "
              "max abs dvol | max viol. |"),
              "| --- | --- | --- | --- | --- | --- | --- | --- |",
              (f"| qpo | {q['solves']} (first {ms(q['first_s'])}) | {ms(q['median_s'])} | {ms(q['max_s'])} | 1 | 0 "
              f"| 0 | {fmt(q['max_constraint_violation'], 2)} |")]
        for p in r_peers:
            x = ro[p]
            L.append(f"| {p} | {x['windows_solved']} | {ms(x['median_s'])} | {ms(x['max_s'])} | "
                     f"{x['ratio_peer_over_qpo']:.2f}x | {fmt(x['max_abs_weight_diff_vs_qpo'], 2)} | "
                     f"{fmt(x['max_abs_vol_diff_vs_qpo'], 2)} | {fmt(x['max_constraint_violation'], 2)} |")
        L += ["", "Per window (s): qpo " + ", ".join(f"{x:.3f}" for x in q["per_window_s"]) + "; " + "; ".join(
            f"{p} " + ", ".join(f"{x:.3f}" for x in ro[p]["per_window_s"]) for p in r_peers) + "."]
        L += ["", f"Target ({sec['target']}): {'met' if sec['target_met'] else 'NOT met'}.", ""]

    card = r["cardinality_100"]
    L += [f"## 3. Cardinality: {sizes['card_k']} of {sizes['card_assets']} assets", ""]
    if "skipped" in card:
        L += [card["skipped"], ""]
    else:
        where = ("one after the other in the benchmark's process (smoke run)" if card.get("qpo", {}).get("in_process")
                 else "each library in its own subprocess")
        L += [f"{card['problem']}. SCIP time limit {card['mip_time_limit_s']:.0f} s, {where}.", "",
              ("| library | solve time | solver | status | proven_optimal | mip_gap (qpo) | holdings | "
              "variance (annual) | best variance on its holdings |"),
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for who in ("qpo", "riskfolio"):
            x = card.get(who, {})
            if "error" in x or "skipped" in x:
                why = f"error: {x['error'][:200]}" if "error" in x else x["skipped"]
                L.append(f"| {who} | {ms(x.get('solve_s'))} | - | {why} | | | | | |")
                continue
            L.append(f"| {who} | {ms(x['solve_s'])} | {x['solver']} | {x['status']} | "
                     f"{fmt(x.get('proven_optimal'))} | {fmt(x.get('mip_gap'))} | "
                     f"{x['n_holdings']} | {fmt(x['variance_annual'], 7)} | {fmt(x['best_variance_on_its_holdings'], 7)} |")
        if "riskfolio_minus_qpo_variance" in card:
            L += ["", (f"Riskfolio - qpo variance: {card['riskfolio_minus_qpo_variance']:.3g}; same holdings: "
                      f"{fmt(card['same_holdings'])}; Riskfolio time / qpo time: {card['ratio_riskfolio_over_qpo']:.2f}.")]
        q = card.get("qpo", {})
        if "holdings" in q:
            L += ["", "qpo holdings: " + ", ".join(f"{t} {w:.3f}" for t, w in q["weights"].items())]
        L.append("")
    if r["notes"]:
        L += ["## Notes", ""] + [f"- {n}" for n in r["notes"]] + [""]
    return "\n".join(L)


if __name__ == "__main__":
    main()
