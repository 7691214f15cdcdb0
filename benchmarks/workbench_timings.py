"""Timings of the workbench itself, measured on this machine and written to
``benchmarks/results/workbench_timings.{json,md}``.

* ``import qpo`` (median of 7 fresh interpreters), next to importing the stack it wraps;
* the daily-report pipeline (``make run``) from an installed environment;
* Great Expectations validation of the bundled panel and, when ``../shared/data`` is present,
  of the 2.4 million vendor bars;
* min-variance (20 assets, long-only, 10 % cap): qpo vs PyPortfolioOpt and skfolio, same data,
  same run, median of repeats;
* with ``--from-scratch``: a fresh clone's ``make run`` (virtual environment, install, run) and
  ``make test``.

Usage: ``python benchmarks/workbench_timings.py [--from-scratch]``
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
PY = sys.executable


def _timed(cmd, cwd=ROOT, env=None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    return time.perf_counter() - t0, proc


def import_times(n: int = 7) -> dict:
    def once(stmt):
        out = subprocess.run([PY, "-c", f"import time; t = time.perf_counter(); {stmt}; "
                              "print(time.perf_counter() - t)"], capture_output=True, text=True, check=True)
        return float(out.stdout.strip())

    qpo = statistics.median(once("import qpo") for _ in range(n))
    stack = statistics.median(once("import pandas, cvxpy, mlflow, great_expectations, qiskit, torch, plotly, "
                                   "sqlalchemy, papermill") for _ in range(3))
    return {"import_qpo_s": qpo, "import_stack_s": stack}


def pipeline_installed() -> dict:
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, QPO_HOME=home)
        first, p1 = _timed(["make", "run"], env=env)
        again, p2 = _timed(["make", "run"], env=env)
    assert p1.returncode == 0 and p2.returncode == 0, (p1.stdout + p1.stderr)[-2000:]
    return {"make_run_installed_first_s": first, "make_run_installed_again_s": again}


def validation() -> dict:
    import qpo

    out = {}
    with tempfile.TemporaryDirectory() as home:
        os.environ["QPO_HOME"] = home
        panel = qpo.load_prices("sp500")
        qpo.validate_prices(panel.iloc[:100])  # warm: imports Great Expectations
        t0 = time.perf_counter()
        rep = qpo.validate_prices(panel)
        out["validate_bundled_panel_s"] = time.perf_counter() - t0
        out["validate_bundled_panel_rows"] = rep.n_rows
        out["validate_bundled_panel_failed"] = rep.failed_checks
        shared = ROOT.parent / "shared" / "data" / "sp500_daily_adjusted.parquet"
        if shared.exists():
            t0 = time.perf_counter()
            bars = qpo.load_ohlcv(shared)
            out["load_shared_bars_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            rep = qpo.validate_ohlcv(bars)
            out["validate_shared_bars_s"] = time.perf_counter() - t0
            out["validate_shared_bars_rows"] = rep.n_rows
            out["validate_shared_bars_failed"] = {f.check: f.unexpected_count for f in rep.failures}
    return out


def min_variance_peers(repeats: int = 15) -> dict:
    import numpy as np
    from pypfopt import EfficientFrontier
    from skfolio.optimization import MeanRisk

    import qpo

    rets = qpo.prices_to_returns(qpo.load_prices("sp500", start="2018-01-01"))

    def median_time(fn):
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    problem = qpo.PortfolioProblem.from_returns(rets, constraints=qpo.Constraints(max_weight=0.10))
    w_qpo = qpo.optimize(problem, "min_variance").weights.to_numpy()
    w_pp = np.array(list(EfficientFrontier(None, rets.cov() * 252, weight_bounds=(0, 0.1)).min_volatility().values()))
    return {
        "min_variance_20_qpo_s": median_time(lambda: qpo.optimize(
            qpo.PortfolioProblem.from_returns(rets, constraints=qpo.Constraints(max_weight=0.10)), "min_variance")),
        "min_variance_20_pypfopt_s": median_time(lambda: EfficientFrontier(
            None, rets.cov() * 252, weight_bounds=(0, 0.1)).min_volatility()),
        "min_variance_20_skfolio_s": median_time(lambda: MeanRisk(max_weights=0.10).fit(rets)),
        "min_variance_20_max_abs_weight_diff_vs_pypfopt": float(np.abs(w_qpo - w_pp).max()),
    }


def from_scratch() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "qpo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QPO_HOME", "VIRTUAL_ENV"))}
        run_s, p = _timed(["make", "run"], cwd=clone, env=env)
        assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
        test_s, t = _timed(["make", "test"], cwd=clone, env=env)
        summary = (t.stdout.strip().splitlines() or [""])[-1]
        return {"make_run_from_nothing_s": run_s, "make_test_s": test_s, "make_test_ok": t.returncode == 0,
                "make_test_summary": summary, "make_run_tail": p.stdout.strip().splitlines()[-6:],
                "postgres_in_tests": bool(os.environ.get("QPO_TEST_DATABASE_URL"))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--from-scratch", action="store_true", help="also time a fresh clone's make run and make test")
    args = ap.parse_args()
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
               "date": time.strftime("%Y-%m-%d")}
    results.update(import_times())
    results.update(min_variance_peers())
    results.update(validation())
    results.update(pipeline_installed())
    if args.from_scratch:
        results.update(from_scratch())
    OUT.mkdir(parents=True, exist_ok=True)
    previous = OUT / "workbench_timings.json"
    if previous.exists() and not args.from_scratch:  # keep the last from-scratch figures
        kept = {k: v for k, v in json.loads(previous.read_text()).items() if k not in results}
        results.update({k: v for k, v in kept.items() if k.startswith(("make_run_from", "make_test", "postgres"))})
    (OUT / "workbench_timings.json").write_text(json.dumps(results, indent=2) + "\n")
    print(write_table(results))


def write_table(results: dict) -> str:
    lines = ["| figure | value |", "| --- | --- |"]
    for k, v in results.items():
        lines.append(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |")
    text = "\n".join(lines) + "\n"
    (OUT / "workbench_timings.md").write_text(text)
    return text


if __name__ == "__main__":
    main()
