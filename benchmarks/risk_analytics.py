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

Usage: ``python benchmarks/risk_analytics.py [--quick] [--skip-shared]``
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
BARS = ROOT.parent / "shared" / "data" / "sp500_daily_adjusted.parquet"


def _measure(fn, repeats: int) -> dict:
    fn()  # first call: imports, caches
    times = []
    out = None
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


def _returns_100(skip_shared: bool):
    import qpo

    if BARS.exists() and not skip_shared:
        prices = qpo.ohlcv_to_prices(qpo.load_ohlcv(BARS)).loc["2016-01-01":"2020-12-31"].dropna(axis=1)
        rets = qpo.prices_to_returns(prices)
        rets = rets.loc[:, ~(rets.abs() >= 0.5).any()]
        return rets.iloc[:, :100], "100 names of ../shared/data, 2016-2020"
    rets = qpo.prices_to_returns(qpo.load_prices("sp500", start="2016-01-01", end="2020-12-31"))
    return rets, f"{rets.shape[1]} bundled names (../shared/data absent), 2016-2020"


def monte_carlo_section(repeats: int, skip_shared: bool) -> dict:
    import numpy as np
    import pandas as pd

    from qpo.risk import monte_carlo_var, parametric_var

    rets, label = _returns_100(skip_shared)
    n = rets.shape[1]
    w = pd.Series(1.0 / n, index=rets.columns)
    N, c = 1_000_000, 0.99
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
        "qpo bootstrap (the empirical, fat-tailed distribution: not meant to match the normal)": lambda: monte_carlo_var(w, rets, confidence=c, n_scenarios=N, seed=0, method="bootstrap"),
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


def report_section(repeats: int) -> dict:
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
                             limits=Limits(max_weight=0.2, sector_max=0.4, min_names=5, var_limit=0.03))
    m = _measure(fn, repeats)
    rep = m.pop("output")
    print(f"  full risk report, {len(w)} names, {len(window)} days: {m['median_s'] * 1e3:.0f} ms", flush=True)
    return {**m, "n_names": len(w), "n_days": len(window), "breaches": rep.breaches}


def write_table(r: dict) -> str:
    mc = r["monte_carlo"]
    lines = [f"# Risk analytics ({r['machine']})", "",
             f"## Monte Carlo VaR/CVaR {mc['confidence']:.0%}, {mc['n_scenarios']:,} scenarios x {mc['n_assets']} "
             f"assets ({mc['data']})", "",
             "| method | median time | peak memory | VaR (closed form "
             f"{mc['closed_form']['var']:.5f}) | CVaR (closed form {mc['closed_form']['cvar']:.5f}) |",
             "| --- | --- | --- | --- | --- |"]
    for name, m in mc["runs"].items():
        lines.append(f"| {name} | {m['median_s'] * 1e3:.0f} ms | {m['peak_mib']:.0f} MiB | {m['var']:.5f} "
                     f"({m['var_rel_error']:+.2%}) | {m['cvar']:.5f} ({m['cvar_rel_error']:+.2%}) |")
    rp = r["report"]
    lines += ["", "## Full risk report", "",
              f"{rp['n_names']} names, {rp['n_days']} days, every table (VaR by five methods with 100,000 Monte "
              f"Carlo scenarios each, contributions, five stress windows over 2000-2022, four shocks, "
              f"compliance): {rp['median_s'] * 1e3:.0f} ms (median of {rp['repeats']}), peak {rp['peak_mib']:.0f} MiB.",
              ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--skip-shared", action="store_true", help="do not read ../shared/data")
    args = ap.parse_args()
    repeats = 2 if args.quick else 5
    print("Monte Carlo VaR:", flush=True)
    results = {"machine": f"{platform.processor() or platform.machine()}, Python {sys.version.split()[0]}",
               "monte_carlo": monte_carlo_section(repeats, args.skip_shared)}
    print("risk report:", flush=True)
    results["report"] = report_section(repeats)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "risk_analytics.json").write_text(json.dumps(results, indent=2, default=str))
    (OUT / "risk_analytics.md").write_text(write_table(results))
    print(f"wrote {OUT / 'risk_analytics.md'}")


if __name__ == "__main__":
    main()
