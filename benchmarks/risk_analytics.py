"""qpo's risk analytics, measured on this machine and written to
``benchmarks/results/risk_analytics.{json,md}``.

1. Monte Carlo VaR/CVaR at 99 % with Euler contributions, 1,000,000 scenarios x 100 assets (100
   names of ``../shared/data``, 2016-2020; without it the section runs on the 20 bundled names and
   says so): qpo's
   ``conditional`` and ``full`` sampling and its bootstrap, against the textbook numpy way
   (``Generator.multivariate_normal`` of the whole float64 matrix, then the tail), each in the same
   run: wall time (median of repeats after a first call) and peak traced memory (tracemalloc),
   and the answers against the closed-form normal VaR/CVaR;
2. the full risk report (every table, 100,000 Monte Carlo scenarios per method) of a 10-name
   portfolio over three years, with stress windows over 2000-2022, on the bundled data.

``--smoke`` runs both sections on tiny sizes (20,000 scenarios on the 20 bundled names; the report
with 5,000 scenarios per method), one timed call each: the suite runs it.

Usage: ``python -m benchmarks.risk_analytics [--smoke | --quick] [--skip-shared] [--out DIR]``
"""
from __future__ import annotations

import gc
import math
import statistics
import time
import tracemalloc

from benchmarks._common import finish, header, parser, shared_closes, shared_data, start, write_results

NAME = "risk_analytics"
PACKAGES = ("qpo", "numpy", "scipy", "pandas")

#: sizes and repeats of each mode
MODES = {
    "full": {"n_scenarios": 1_000_000, "report_scenarios": 100_000, "repeats": 5, "shared": True},
    "quick": {"n_scenarios": 1_000_000, "report_scenarios": 100_000, "repeats": 2, "shared": True},
    "smoke": {"n_scenarios": 20_000, "report_scenarios": 5_000, "repeats": 0, "shared": False},
}


def _measure(fn, repeats: int) -> dict:
    """Wall time (median of ``repeats`` after a first call; the first call itself when
    ``repeats`` is 0) and the peak traced memory of one more call."""
    gc.collect()
    t0 = time.perf_counter()
    out = fn()  # first call: imports, caches
    times = [] if repeats else [time.perf_counter() - t0]
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    gc.collect()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": repeats,
            "peak_mib": peak / 2 ** 20, "output": out}


def _returns_100(use_shared: bool):
    import qpo

    if use_shared:
        prices = shared_closes().loc["2016-01-01":"2020-12-31"].dropna(axis=1)
        rets = qpo.prices_to_returns(prices)
        rets = rets.loc[:, ~(rets.abs() >= 0.5).any()]
        return rets.iloc[:, :100], "100 names of ../shared/data, 2016-2020"
    rets = qpo.prices_to_returns(qpo.load_prices("sp500", start="2016-01-01", end="2020-12-31"))
    return rets, f"{rets.shape[1]} bundled names (../shared/data absent, skipped or a smoke run), 2016-2020"


def monte_carlo_section(p: dict, use_shared: bool) -> dict:
    import numpy as np
    import pandas as pd

    from qpo.risk import monte_carlo_var, parametric_var

    rets, label = _returns_100(use_shared)
    n = rets.shape[1]
    w = pd.Series(1.0 / n, index=rets.columns)
    N, c, repeats = p["n_scenarios"], 0.99, p["repeats"]
    R = rets.to_numpy()
    mu, cov = R.mean(axis=0), np.cov(R, rowvar=False)
    exact_var, exact_cvar = parametric_var(float(mu @ w), math.sqrt(float(w @ cov @ w)), c)

    def numpy_textbook():
        x = np.random.default_rng(0).multivariate_normal(mu, cov, size=N, method="cholesky")
        p = x @ w.to_numpy()
        k = int((1 - c) * N)
        tail = np.argpartition(p, k - 1)[:k]
        comp = -w.to_numpy() * x[tail].mean(axis=0)
        return float(-p[tail].max()), float(comp.sum())

    runs = {
        "qpo conditional": lambda: monte_carlo_var(w, rets, confidence=c, n_scenarios=N, seed=0),
        "qpo full (float32 blocks, 2 threads)": lambda: monte_carlo_var(w, rets, confidence=c, n_scenarios=N,
                                                                        seed=0, sampling="full"),
        "qpo full, 1 thread": lambda: monte_carlo_var(w, rets, confidence=c, n_scenarios=N, seed=0,
                                                      sampling="full", threads=1),
        "qpo bootstrap (the empirical, fat-tailed distribution: not meant to match the normal)":
            lambda: monte_carlo_var(w, rets, confidence=c, n_scenarios=N, seed=0, method="bootstrap"),
        "numpy multivariate_normal (float64, whole matrix)": numpy_textbook,
    }
    out = {"data": label, "n_assets": n, "n_scenarios": N, "confidence": c,
           "closed_form": {"var": exact_var, "cvar": exact_cvar}, "runs": {}}
    for name, fn in runs.items():
        m = _measure(fn, repeats)
        res = m.pop("output")
        var, cvar = (res.var, res.cvar) if hasattr(res, "var") else res
        m.update(var=var, cvar=cvar, var_rel_error=var / exact_var - 1, cvar_rel_error=cvar / exact_cvar - 1)
        out["runs"][name] = m
        print(f"  {name:52s} {m['median_s'] * 1e3:8.1f} ms  peak {m['peak_mib']:7.1f} MiB  "
              f"VaR {var:.5f} (closed form {exact_var:.5f})", flush=True)
    return out


def report_section(p: dict) -> dict:
    import qpo
    from qpo.risk import Limits, risk_report

    prices = qpo.load_prices("sp500", start="2000-01-01")
    history = qpo.prices_to_returns(prices, dropna="none")
    window = history.iloc[-756:]
    bench = qpo.prices_to_returns(qpo.load_prices("sp500_index", start="2000-01-01"))["SP500"].reindex(window.index)
    w = qpo.optimize(qpo.PortfolioProblem.from_returns(window, constraints=qpo.Constraints(max_weight=0.15)),
                     "min_variance").weights
    w = w[w > 1e-6]
    w /= w.sum()
    fn = lambda: risk_report(w, window, benchmark=bench, history=history,  # noqa: E731
                             limits=Limits(max_weight=0.2, sector_max=0.4, min_names=5, var_limit=0.03),
                             n_scenarios=p["report_scenarios"])
    m = _measure(fn, p["repeats"])
    rep = m.pop("output")
    print(f"  full risk report, {len(w)} names, {len(window)} days: {m['median_s'] * 1e3:.0f} ms", flush=True)
    return {**m, "n_names": len(w), "n_days": len(window), "n_scenarios": p["report_scenarios"],
            "breaches": rep.breaches}


def write_table(r: dict) -> str:
    mc = r["monte_carlo"]
    lines = header(r, "Risk analytics", NAME, "Times are medians of repeats after a first call.")
    lines += ["", f"## Monte Carlo VaR/CVaR {mc['confidence']:.0%}, {mc['n_scenarios']:,} scenarios x {mc['n_assets']} "
             f"assets ({mc['data']})", "",
             "| method | median time | peak memory | VaR (closed form "
             f"{mc['closed_form']['var']:.5f}) | CVaR (closed form {mc['closed_form']['cvar']:.5f}) |",
             "| --- | --- | --- | --- | --- |"]
    for name, m in mc["runs"].items():
        lines.append(f"| {name} | {m['median_s'] * 1e3:.0f} ms | {m['peak_mib']:.0f} MiB | {m['var']:.5f} "
                     f"({m['var_rel_error']:+.2%}) | {m['cvar']:.5f} ({m['cvar_rel_error']:+.2%}) |")
    rp = r["report"]
    lines += ["", "## Full risk report", "",
              f"{rp['n_names']} names, {rp['n_days']} days, every table (VaR by five methods with {rp['n_scenarios']:,} Monte "
              f"Carlo scenarios each, contributions, five stress windows over 2000-2022, four shocks, "
              f"compliance): {rp['median_s'] * 1e3:.0f} ms (median of {rp['repeats']}), peak {rp['peak_mib']:.0f} MiB.",
              ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__).parse_args(argv)
    t_start = time.perf_counter()
    results = start(args, PACKAGES)
    p = MODES[results["mode"]]
    results["parameters"] = p
    use_shared = p["shared"] and shared_data(args) is None
    print("Monte Carlo VaR:", flush=True)
    results["monte_carlo"] = monte_carlo_section(p, use_shared)
    print("risk report:", flush=True)
    results["report"] = report_section(p)
    finish(results, t_start)
    path = write_results(args.out, NAME, results, write_table(results))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
