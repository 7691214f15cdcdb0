"""The risk of a whole book in bulk (:func:`qpo.risk.book.book_risk`), measured on this machine and
written to ``benchmarks/results/book_risk.{json,md}``.

Books of 1,000 and 10,000 random portfolios of 20-500 names (long-only, Dirichlet weights, house
limits with sector caps) on three years of daily returns (the last 756 days of
``../shared/data``, the names fully priced over them; stress windows replayed over the whole
1999-2021 history; the bundled S&P 500 index as the benchmark; sectors from
``../shared/data/sp500_sectors.csv``). Without the shared data the book is built on the 20
bundled names (5-20 names each) and the page says so.

For each size: wall time of ``book_risk`` (median of repeats after a first call), peak traced
memory (tracemalloc) and the process' peak RSS; against it, a loop of :func:`qpo.risk_report`
(the daily report's call: every table, 100,000 Monte Carlo scenarios per method) over a sample of
the portfolios, its time per portfolio extrapolated to the book, and the largest difference
between the two on the sample's numbers.

``--smoke`` runs 50 portfolios of the bundled panel and 2 reports (the suite runs it).

Usage: ``python -m benchmarks.book_risk [--smoke | --quick] [--skip-shared] [--out DIR]``
"""
from __future__ import annotations

import gc
import resource
import statistics
import time
import tracemalloc

from benchmarks._common import (
    SECTORS,
    finish,
    header,
    parser,
    shared_closes,
    shared_data,
    start,
    write_results,
)

NAME = "book_risk"
PACKAGES = ("qpo", "numpy", "pandas", "scipy")
LOOKBACK = 756

MODES = {
    "full": {"sizes": [1000, 10000], "repeats": 2, "sample": 20, "shared": True},
    "quick": {"sizes": [1000, 10000], "repeats": 0, "sample": 5, "shared": True},
    "smoke": {"sizes": [50], "repeats": 0, "sample": 2, "shared": False},
}


def market(use_shared: bool) -> dict:
    import qpo

    index = qpo.load_prices("sp500_index")["SP500"]
    if use_shared:
        closes = shared_closes()
        window = closes.iloc[-(LOOKBACK + 1):].dropna(axis=1)
        sectors = qpo.load_sectors(SECTORS)
        label = (f"{window.shape[1]} names of ../shared/data fully priced over the last {LOOKBACK} days "
                 f"({window.index[0].date()} to {window.index[-1].date()}); stress history from "
                 f"{closes.index[0].date()}")
        history = qpo.prices_to_returns(closes[window.columns], dropna="none")
        lo, hi = 20, 500
    else:
        closes = qpo.load_prices("sp500")
        window = closes.iloc[-(LOOKBACK + 1):]
        sectors = qpo.load_sectors()
        history = qpo.prices_to_returns(closes, dropna="none")
        label = f"the {window.shape[1]} bundled names (../shared/data absent, skipped or a smoke run)"
        lo, hi = 5, 20
    returns = qpo.prices_to_returns(window)
    bench = qpo.prices_to_returns(index.to_frame(), dropna="none").iloc[:, 0].reindex(returns.index)
    return {"returns": returns, "history": history, "bench": bench, "sectors": sectors, "label": label,
            "names": (lo, min(hi, returns.shape[1]))}


def book(m: dict, n: int, seed: int = 0):
    import numpy as np
    import pandas as pd

    from qpo.risk import Limits

    rng = np.random.default_rng(seed)
    tickers = np.array(m["returns"].columns)
    lo, hi = m["names"]
    W = np.zeros((n, len(tickers)))
    sizes = rng.integers(lo, hi + 1, size=n)
    for i, k in enumerate(sizes):
        cols = rng.choice(len(tickers), size=k, replace=False)
        W[i, cols] = rng.dirichlet(np.ones(k)) * 0.98
    house = Limits(max_weight=0.10, sector_max=0.35, min_names=25, var_limit=0.03)
    limits = [house if i % 4 else Limits(max_weight=0.2, var_limit=0.025, var_method="normal") for i in range(n)]
    return pd.DataFrame(W, index=pd.RangeIndex(n, name="portfolio_id"), columns=tickers), limits, sizes


def _run(m, W, limits):
    from qpo.risk.book import book_risk

    return book_risk(W, m["returns"], benchmark_returns=m["bench"], limits=limits, sectors=m["sectors"],
                     history=m["history"])


def measure_book(m: dict, n: int, repeats: int) -> dict:
    W, limits, sizes = book(m, n)
    gc.collect()
    t0 = time.perf_counter()
    res = _run(m, W, limits)
    times = [time.perf_counter() - t0]
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        res = _run(m, W, limits)
        times.append(time.perf_counter() - t0)
    gc.collect()
    tracemalloc.start()
    _run(m, W, limits)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    best = times[1:] or times
    return {"n_portfolios": n, "names_min": int(sizes.min()), "names_max": int(sizes.max()),
            "names_mean": float(sizes.mean()), "first_s": times[0], "median_s": statistics.median(best),
            "repeats": repeats, "peak_traced_mib": peak / 2 ** 20,
            "weights_mib": W.memory_usage(deep=True).sum() / 2 ** 20,
            "n_breaches": len(res.breaches), "compliant_share": float(res.table["compliant"].mean()),
            "skipped": len(res.skipped), "result": res, "W": W, "limits": limits}


def measure_reports(m: dict, W, limits, res, sample: int) -> dict:
    """The daily report's ``risk_report`` on ``sample`` portfolios of the book: time each, and the
    largest difference to the bulk numbers."""
    import numpy as np

    from qpo.risk import risk_report
    from qpo.risk.book import COLUMNS

    idx = np.linspace(0, len(W) - 1, sample).round().astype(int)
    times, diff = [], 0.0
    for i in idx:
        row = W.iloc[i]
        w = row[row != 0]
        held = list(w.index)
        hist = m["history"][held].dropna(how="all")
        t0 = time.perf_counter()
        ref = risk_report(w, m["returns"][held], benchmark=m["bench"], history=hist, limits=limits[i],
                          sectors=m["sectors"], n_scenarios=100_000)
        times.append(time.perf_counter() - t0)
        vt = ref.var_table
        want = [ref.volatility, vt.loc["historical", "var"], vt.loc["historical", "cvar"], vt.loc["normal", "var"],
                vt.loc["normal", "cvar"], ref.benchmark["beta"], ref.max_drawdown, float(np.nanmax(ref.stress["loss"]))]
        got = res.table.iloc[i][list(COLUMNS)].to_numpy(dtype=float)
        diff = max(diff, float(np.nanmax(np.abs(got - np.array(want)))))
        assert res.table.iloc[i]["breaches"] == len(ref.breaches)
    per = statistics.mean(times)
    return {"sample": int(len(idx)), "per_portfolio_s": per, "median_s": statistics.median(times),
            "max_abs_diff_vs_bulk": diff}


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__).parse_args(argv)
    t_start = time.perf_counter()
    results = start(args, PACKAGES)
    p = MODES[results["mode"]]
    results["parameters"] = p
    use_shared = p["shared"] and shared_data(args, SECTORS) is None
    m = market(use_shared)
    results["data"] = m["label"]
    results["n_days"] = len(m["returns"])
    results["n_tickers"] = m["returns"].shape[1]
    results["books"] = {}
    for n in p["sizes"]:
        print(f"book of {n:,} portfolios:", flush=True)
        b = measure_book(m, n, p["repeats"])
        res, W, limits = b.pop("result"), b.pop("W"), b.pop("limits")
        loop = measure_reports(m, W, limits, res, min(p["sample"], n))
        b["risk_report_loop"] = loop
        b["risk_report_loop_extrapolated_s"] = loop["per_portfolio_s"] * n
        b["speedup"] = b["risk_report_loop_extrapolated_s"] / b["median_s"]
        results["books"][str(n)] = b
        print(f"  book_risk {b['median_s']:.2f} s (first {b['first_s']:.2f} s), peak traced {b['peak_traced_mib']:.0f} MiB; "
              f"risk_report loop {loop['per_portfolio_s'] * 1e3:.0f} ms/portfolio -> "
              f"{b['risk_report_loop_extrapolated_s']:.0f} s extrapolated ({b['speedup']:.0f}x); "
              f"max diff {loop['max_abs_diff_vs_bulk']:.2e}", flush=True)
        del res, W, limits
        gc.collect()
    sizes = [str(n) for n in p["sizes"]]
    if len(sizes) > 1:
        a, z = results["books"][sizes[0]], results["books"][sizes[-1]]
        results["growth"] = {"portfolios_ratio": int(sizes[-1]) / int(sizes[0]),
                             "time_ratio": z["median_s"] / a["median_s"]}
    results["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finish(results, t_start)
    path = write_results(args.out, NAME, results, write_table(results))
    print(f"wrote {path}")


def write_table(r: dict) -> str:
    lines = header(r, "Book risk in bulk", NAME,
                   "book_risk times are medians of repeats after a first call (the first call when there are "
                   "no repeats); the risk_report loop is timed on a sample and extrapolated.")
    lines += ["", f"Data: {r['data']}; {r['n_days']} daily returns, {r['n_tickers']} tickers. Each portfolio: "
              "volatility, historical and parametric VaR/CVaR (95 %, 1 day), beta on the S&P 500, max drawdown, "
              "five historical stress windows, four shocks and every compliance check of its limits.", "",
              "| portfolios | names (mean) | book_risk | first call | peak traced memory | risk_report per portfolio "
              "(sample) | risk_report loop, extrapolated | speed-up | max abs diff (sample) | breaches |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n, b in r["books"].items():
        loop = b["risk_report_loop"]
        lines.append(f"| {int(n):,} | {b['names_min']}-{b['names_max']} ({b['names_mean']:.0f}) | {b['median_s']:.2f} s | "
                     f"{b['first_s']:.2f} s | {b['peak_traced_mib']:.0f} MiB | {loop['per_portfolio_s'] * 1e3:.0f} ms "
                     f"({loop['sample']}) | {b['risk_report_loop_extrapolated_s']:.0f} s | {b['speedup']:.0f}x | "
                     f"{loop['max_abs_diff_vs_bulk']:.1e} | {b['n_breaches']:,} |")
    if "growth" in r:
        g = r["growth"]
        lines += ["", f"From {min(r['books'], key=int)} to {max(r['books'], key=int)} portfolios "
                  f"({g['portfolios_ratio']:.0f}x) the time grows {g['time_ratio']:.1f}x."]
    lines += ["", f"Peak RSS of the benchmark process: {r['peak_rss_mib']:.0f} MiB (data, books and the reference "
              "reports included).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
