"""qpo's walk-forward backtester against skfolio's WalkForward + cross_val_predict, measured on this
machine, on the same data and the same folds in the same run, and written to
``benchmarks/results/backtest_walkforward.{json,md}``.

1. the 20 bundled S&P 500 stocks, 2010-2022, min-variance (sample covariance), rebalanced on the
   last trading day of each month from a one-year (252-return) window: ``qpo.backtest`` against
   skfolio's ``cross_val_predict(MeanRisk(), X, cv=<qpo's folds>)``; weights and out-of-sample
   returns compared fold by fold;
2. ~500 stocks of ``../shared/data`` (leading NaNs kept: the gaps policy admits each stock once it
   has a year of prices), monthly min-variance with a 2 % cap per name and Ledoit-Wolf covariance,
   2010-2020: the time per rebalance, and skfolio on a few of the same folds.

Section 2 needs ``../shared/data`` and is skipped, with a message, when it is absent. Whole-backtest
times are medians of repeats after a first (cold) run, which is reported apart.

``--smoke`` runs both sections on tiny sizes (2019-2020, one year of monthly rebalances; 80 shared
assets; two skfolio folds), once each: the suite runs it.

Usage: ``python -m benchmarks.backtest_walkforward [--smoke | --quick] [--skip-shared] [--out DIR]``
"""
from __future__ import annotations

import statistics
import time
import warnings

from benchmarks._common import (
    finish,
    fmt,
    header,
    ms,
    parser,
    shared_closes,
    shared_data,
    start,
    strip,
    timeit,
    write_results,
)

NAME = "backtest_walkforward"
PACKAGES = ("qpo", "skfolio", "cvxpy", "osqp", "clarabel", "numpy", "scipy", "pandas", "scikit-learn")

#: sizes and repeats of each mode
MODES = {
    "full": {"period": ("2009-01-01", "2022-12-31"), "start": "2010-01-01", "shared_period": ("2009-01-01", "2020-12-31"),
             "shared_assets": None, "repeats": {"qpo": 5, "peer": 3, "qpo_500": 2, "peer_folds": 6}},
    "quick": {"period": ("2009-01-01", "2022-12-31"), "start": "2010-01-01", "shared_period": ("2009-01-01", "2020-12-31"),
              "shared_assets": None, "repeats": {"qpo": 2, "peer": 1, "qpo_500": 1, "peer_folds": 3}},
    "smoke": {"period": ("2019-01-01", "2020-12-31"), "start": "2020-01-01", "shared_period": ("2019-01-01", "2020-12-31"),
              "shared_assets": 80, "repeats": {"qpo": 0, "peer": 0, "qpo_500": 0, "peer_folds": 2}},
}

#: tight Clarabel tolerances, skfolio's objective scaled (its defaults stop up to ~6e-5 from the
#: optimum: a daily variance is ~1e-5 against an absolute gap tolerance of 1e-8)
SK_TIGHT = dict(scale_objective=1e4, solver_params={"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12,
                                                    "tol_ktratio": 1e-10})


def qpo_folds(res, X):
    """qpo's rebalances as (train, test) row indices of the returns X: the window ending at the
    rebalance date, the days until the next one (the last to the end)."""
    import numpy as np

    window = res.parameters["window"]
    pos = X.index.get_indexer(res.target_weights.index)
    ends = [*pos[1:], len(X) - 1]
    return [(np.arange(p - window + 1, p + 1), np.arange(p + 1, e + 1)) for p, e in zip(pos, ends)]


# -- 1. 20 assets ---------------------------------------------------------------------------------
def bundled_section(p: dict) -> dict:
    import numpy as np
    from skfolio.model_selection import cross_val_predict
    from skfolio.optimization import MeanRisk

    import qpo

    repeats = p["repeats"]
    prices = qpo.load_prices("sp500").loc[p["period"][0]:p["period"][1]]
    X = qpo.prices_to_returns(prices)
    kw = dict(rebalance="M", window=252, start=p["start"])
    t = timeit(lambda: qpo.backtest(prices, "min_variance", **kw), repeats["qpo"])
    res = t["output"]
    folds = qpo_folds(res, X)
    out = {"data": f"bundled sp500 panel, {X.shape[1]} assets, returns {X.index[0].date()}..{X.index[-1].date()}",
           "strategy": "min-variance, long-only, fully invested, sample covariance (ddof=1 in both)",
           "schedule": f"last trading day of each month from {res.target_weights.index[0].date()}, 252-return "
                       f"window, {len(folds)} folds, out-of-sample {res.returns.index[0].date()}.."
                       f"{res.returns.index[-1].date()}"}
    out["qpo"] = {**strip(t), "timed": "qpo.backtest(prices, 'min_variance', rebalance='M', window=252) end to end "
                                        "(checks, every solve, drift, risk report)",
                  "solve_median_s": res.timings["solve_median_s"], "solve_max_s": res.timings["solve_max_s"],
                  "solve_total_s": res.timings["solve_total_s"], "rebalances": len(res.rebalances),
                  "failures": len(res.failures), "solvers": sorted(set(res.rebalances["solver"]))}

    def sk_run(model):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cross_val_predict(model, X, cv=folds)

    t = timeit(lambda: sk_run(MeanRisk()), repeats["peer"])
    mpp = t["output"]
    W_q = res.target_weights.to_numpy()
    W_sk = np.array([pf.weights for pf in mpp.portfolios])
    sk_r = np.concatenate([pf.returns for pf in mpp.portfolios])
    const_q = np.concatenate([X.iloc[test].to_numpy() @ W_q[k] for k, (_, test) in enumerate(folds)])
    q_r = res.returns.to_numpy()
    out["skfolio"] = {**strip(t), "timed": "cross_val_predict(MeanRisk(), X, cv=qpo's folds) (defaults: Clarabel, "
                                            "EmpiricalCovariance ddof=1)",
                      "folds": len(mpp.portfolios), "max_abs_weight_diff_vs_qpo": float(np.abs(W_sk - W_q).max()),
                      "median_fold_weight_diff": float(np.median(np.abs(W_sk - W_q).max(axis=1))),
                      "ratio_peer_over_qpo": t["median_s"] / out["qpo"]["median_s"]}
    t0 = time.perf_counter()
    tight = sk_run(MeanRisk(**SK_TIGHT))
    tight_s = time.perf_counter() - t0
    W_t = np.array([pf.weights for pf in tight.portfolios])
    sk_r_tight = np.concatenate([pf.returns for pf in tight.portfolios])
    gaps = np.abs(W_t - W_q).max(axis=1)
    out["skfolio_tight"] = {"timed": "one run, cross_val_predict(MeanRisk(scale_objective=1e4, tight Clarabel))",
                            "s": tight_s, "max_abs_weight_diff_vs_qpo": float(gaps.max()),
                            "median_fold_weight_diff": float(np.median(gaps)),
                            "ratio_peer_over_qpo": tight_s / out["qpo"]["median_s"]}
    drift_gap = np.abs(q_r - sk_r)
    out["returns"] = {
        "skfolio_convention": "weights constant within each fold (weight_drift=False, its default)",
        "qpo_convention": "weights drift between rebalances",
        "qpo_weights_as_constant_vs_skfolio_max_abs": float(np.abs(const_q - sk_r).max()),
        "qpo_weights_as_constant_vs_skfolio_tight_max_abs": float(np.abs(const_q - sk_r_tight).max()),
        "qpo_drifted_vs_skfolio_max_abs": float(drift_gap.max()),
        "qpo_drifted_vs_skfolio_mean_abs": float(drift_gap.mean()),
        "final_wealth_qpo": float(np.prod(1 + q_r)), "final_wealth_skfolio": float(np.prod(1 + sk_r)),
    }
    out["target"] = "qpo >= 2x faster than skfolio on the same folds"
    out["target_met"] = bool(out["skfolio"]["ratio_peer_over_qpo"] >= 2.0)
    return out


# -- 2. ~500 assets -------------------------------------------------------------------------------
def shared_prices(start="2009-01-01", end="2020-12-31", n_assets: int | None = None):
    """The vendor panel with its leading NaNs kept; tickers with internal gaps, an early end or a
    |daily return| >= 0.5 (vendor defects) dropped; the first ``n_assets`` alphabetically if given."""
    import numpy as np

    prices = shared_closes().loc[start:end]
    n_all = prices.shape[1]
    prices = prices.dropna(axis=1, how="all")
    valid = prices.notna().to_numpy()
    first = valid.argmax(axis=0)
    last = len(valid) - 1 - valid[::-1].argmax(axis=0)
    rows = np.arange(len(valid))[:, None]
    gaps = ((rows > first) & (rows < last) & ~valid).any(axis=0) | (last < len(valid) - 1)
    gappy = sorted(prices.columns[gaps])
    prices = prices.loc[:, ~gaps]
    jumps = (prices / prices.shift(1) - 1).abs() >= 0.5
    defects = sorted(prices.columns[jumps.any()])
    prices = prices.drop(columns=defects)
    if n_assets:
        prices = prices[sorted(prices.columns)[:n_assets]]
    late = int(prices.iloc[0].isna().sum())
    info = {"tickers_in_file": n_all, "dropped_no_price_in_period": n_all - len(valid[0]),
            "dropped_internal_gap_or_early_end": gappy, "dropped_for_abs_return_ge_0.5": defects,
            "n_assets": prices.shape[1], "listed_after_start": late,
            "period": f"{prices.index[0].date()}..{prices.index[-1].date()}"}
    return prices, info


def shared_section(p: dict) -> dict:
    import numpy as np
    from skfolio.moments import LedoitWolf as SkLedoitWolf
    from skfolio.optimization import MeanRisk
    from skfolio.prior import EmpiricalPrior

    import qpo

    repeats = p["repeats"]
    prices, info = shared_prices(*p["shared_period"], n_assets=p["shared_assets"])
    strat = qpo.Strategy("min_variance", covariance="ledoit_wolf", constraints=qpo.Constraints(max_weight=0.02))
    kw = dict(rebalance="M", window=252, start=p["start"])
    runs = []
    for _ in range(1 + repeats["qpo_500"]):
        t0 = time.perf_counter()
        res = qpo.backtest(prices, strat, **kw)
        runs.append((time.perf_counter() - t0, res))
    first_s, res = runs[0]
    later = [r for _, r in runs[1:]] or [res]
    rb = res.rebalances
    per = rb["solve_s"].to_numpy()
    warm = later[-1].rebalances["solve_s"].to_numpy()
    out = {"data": info, "strategy": "min-variance, long-only, fully invested, w_i <= 0.02, Ledoit-Wolf covariance",
           "schedule": f"month ends {rb['date'].iloc[0].date()}..{rb['date'].iloc[-1].date()}, 252-return window, "
                       f"{len(rb)} rebalances",
           "qpo": {"first_run_s": first_s, "median_run_s_after_first": statistics.median(t for t, _ in runs[1:])
                   if len(runs) > 1 else first_s, "runs": len(runs),
                   "per_rebalance_first_run": {"median_s": float(np.median(per)), "max_s": float(per.max()),
                                               "first_s": float(per[0]),
                                               "max_after_first_s": float(per[1:].max())},
                   "per_rebalance_later_run": {"median_s": float(np.median(warm)), "max_s": float(warm.max())},
                   "per_rebalance_includes": "the window's problem (Ledoit-Wolf on a 252 x n numpy slice, PSD "
                                             "check) and optimize()",
                   "n_assets_range": [int(rb["n_assets"].min()), int(rb["n_assets"].max())],
                   "failures": len(res.failures), "solvers": sorted(set(rb["solver"].dropna()))}}
    # skfolio on a few of the same folds, on the same eligible universe and window
    X_all = prices / prices.shift(1) - 1
    k_idx = sorted({round(float(x)) for x in np.linspace(0, len(rb) - 1, repeats["peer_folds"])})
    times, dws, dvols = [], [], []
    tight_dws = []
    for k in k_idx:
        t = rb["date"].iloc[k]
        w_q = res.target_weights.iloc[k]
        window = X_all.loc[:t].iloc[-252:]
        window = window.loc[:, window.notna().all() & prices.loc[:t].iloc[-253:].notna().all()]
        assert window.shape[1] == rb["n_assets"].iloc[k]
        model = MeanRisk(max_weights=0.02, prior_estimator=EmpiricalPrior(covariance_estimator=SkLedoitWolf()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            w = np.asarray(model.fit(window).weights_)
            times.append(time.perf_counter() - t0)
            tight = MeanRisk(max_weights=0.02, prior_estimator=EmpiricalPrior(covariance_estimator=SkLedoitWolf()),
                             **SK_TIGHT)
            w_t = np.asarray(tight.fit(window).weights_)
        wq = w_q[window.columns].to_numpy()
        cov = window.cov().to_numpy()
        dws.append(float(np.abs(w - wq).max()))
        tight_dws.append(float(np.abs(w_t - wq).max()))
        dvols.append(float(np.sqrt(w @ cov @ w * 252) - np.sqrt(wq @ cov @ wq * 252)))
    q_same = float(np.median(warm[k_idx]))
    out["skfolio"] = {"timed": "MeanRisk(max_weights=0.02, EmpiricalPrior(LedoitWolf())).fit(window) per fold",
                      "folds": [str(rb["date"].iloc[k].date()) for k in k_idx],
                      "median_s": statistics.median(times), "max_s": max(times), "per_fold_s": times,
                      "max_abs_weight_diff_vs_qpo": max(dws), "max_abs_weight_diff_vs_qpo_tight": max(tight_dws),
                      "vol_diff_vs_qpo_sample_cov": dvols,
                      "qpo_median_s_same_folds": q_same, "ratio_peer_over_qpo": statistics.median(times) / q_same}
    return out


# -- main -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__).parse_args(argv)
    t_start = time.perf_counter()
    results = start(args, PACKAGES)
    p = MODES[results["mode"]]
    results["repeats"] = p["repeats"]
    print("1. walk-forward min-variance, 20 assets ...", flush=True)
    results["bundled_20"] = bundled_section(p)
    skipped = shared_data(args)
    if skipped:
        print(skipped, flush=True)
        results["shared_500"] = {"skipped": skipped}
    else:
        print("2. walk-forward min-variance, ~500 assets ...", flush=True)
        results["shared_500"] = shared_section(p)
    finish(results, t_start)
    text = write_table(results)
    write_results(args.out, NAME, results, text)
    print(text)


def write_table(r: dict) -> str:
    L = header(r, "Walk-forward backtests: qpo vs skfolio", NAME,
               "Both libraries run the same data and the same folds in the same run.")
    L += [f"- repeats: {r['repeats']}", ""]
    b = r["bundled_20"]
    q, s, st, ret = b["qpo"], b["skfolio"], b["skfolio_tight"], b["returns"]
    L += ["## 1. Monthly min-variance, 20 bundled assets, one-year window", "",
          f"{b['data']}; {b['strategy']}; {b['schedule']}.", "",
          "| library | timed | first | median (n) | peer / qpo | max abs dw vs qpo (median fold) |",
          "| --- | --- | --- | --- | --- | --- |",
          f"| qpo | {q['timed']} | {ms(q['first_s'])} | {ms(q['median_s'])} ({q['repeats']}) | 1 | 0 |",
          f"| skfolio | {s['timed']} | {ms(s['first_s'])} | {ms(s['median_s'])} ({s['repeats']}) | "
          f"{s['ratio_peer_over_qpo']:.1f}x | {fmt(s['max_abs_weight_diff_vs_qpo'], 2)} "
          f"({fmt(s['median_fold_weight_diff'], 2)}) |",
          f"| skfolio, tight | {st['timed']} | {ms(st['s'])} | - | {st['ratio_peer_over_qpo']:.1f}x | "
          f"{fmt(st['max_abs_weight_diff_vs_qpo'], 2)} ({fmt(st['median_fold_weight_diff'], 2)}) |", "",
          (f"qpo per rebalance: median {ms(q['solve_median_s'])}, max {ms(q['solve_max_s'])} (the first run's first "
           f"solve compiles the model); {q['rebalances']} rebalances, {q['failures']} failed, solvers "
           f"{', '.join(q['solvers'])}. Target ({b['target']}): {'met' if b['target_met'] else 'NOT met'}."), "",
          (f"Out-of-sample returns: skfolio holds each fold's weights constant (weight_drift=False, its default); qpo's "
           f"weights applied that way reproduce skfolio's returns to "
           f"{fmt(ret['qpo_weights_as_constant_vs_skfolio_tight_max_abs'], 2)} (tight skfolio; "
           f"{fmt(ret['qpo_weights_as_constant_vs_skfolio_max_abs'], 2)} with its defaults; max abs, daily). "
           f"qpo's own returns drift: they differ from skfolio's by up to "
           f"{fmt(ret['qpo_drifted_vs_skfolio_max_abs'], 2)} a day ({fmt(ret['qpo_drifted_vs_skfolio_mean_abs'], 2)} on "
           f"average); final wealth {ret['final_wealth_qpo']:.4f} (qpo, drifting) vs {ret['final_wealth_skfolio']:.4f} "
           "(skfolio, constant weights)."), ""]
    sec = r["shared_500"]
    L += ["## 2. Monthly min-variance, ~500 shared assets, 2 % per name", ""]
    if "skipped" in sec:
        L += [sec["skipped"], ""]
    else:
        d, q, s = sec["data"], sec["qpo"], sec["skfolio"]
        L += [(f"{d['n_assets']} of {d['tickers_in_file']} tickers ({d['period']}; {d['listed_after_start']} listed "
               f"after the start, admitted by the gaps policy once they have a year of prices; dropped: "
               f"{len(d['dropped_internal_gap_or_early_end'])} with an internal gap or early end, "
               f"{', '.join(d['dropped_for_abs_return_ge_0.5']) or 'none'} for a |daily return| >= 0.5). "
               f"{sec['strategy']}; {sec['schedule']}; eligible universe {q['n_assets_range'][0]}-"
               f"{q['n_assets_range'][1]} assets."), "",
              "| | first run | later run |", "| --- | --- | --- |",
              f"| whole backtest | {ms(q['first_run_s'])} | {ms(q['median_run_s_after_first'])} |",
              f"| per rebalance, median | {ms(q['per_rebalance_first_run']['median_s'])} | "
              f"{ms(q['per_rebalance_later_run']['median_s'])} |",
              f"| per rebalance, max | {ms(q['per_rebalance_first_run']['max_s'])} (first solve "
              f"{ms(q['per_rebalance_first_run']['first_s'])}; after it "
              f"{ms(q['per_rebalance_first_run']['max_after_first_s'])}) | "
              f"{ms(q['per_rebalance_later_run']['max_s'])} |", "",
              f"Per rebalance = {q['per_rebalance_includes']}. Solvers: {', '.join(q['solvers'])}; "
              f"{q['failures']} failed.", "",
              (f"skfolio on {len(s['folds'])} of the same folds ({', '.join(s['folds'])}; {s['timed']}): median "
               f"{ms(s['median_s'])}, max {ms(s['max_s'])} per fold, {s['ratio_peer_over_qpo']:.1f}x qpo's "
               f"{ms(s['qpo_median_s_same_folds'])} on those folds; weights differ from qpo's by up to "
               f"{fmt(s['max_abs_weight_diff_vs_qpo'], 2)} (default tolerances) and "
               f"{fmt(s['max_abs_weight_diff_vs_qpo_tight'], 2)} (scaled objective, tight Clarabel)."), ""]
    return "\n".join(L)


if __name__ == "__main__":
    main()
