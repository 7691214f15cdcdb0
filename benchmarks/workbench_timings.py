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

``--smoke`` (the suite runs it) measures the same things on tiny sizes: ``import qpo`` once next to
``import pandas``, ``qpo pipeline list`` instead of ``make run``, validation of the last 300 days of
the bundled panel only (not the shared bars), one repeat of min-variance.

``--quick`` takes fewer repeats of the imports and of min-variance.

Usage: ``python -m benchmarks.workbench_timings [--smoke | --quick] [--skip-shared] [--from-scratch] [--out DIR]``
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks._common import BARS, PY, ROOT, machine, mode, parser, write_results

NAME = "workbench_timings"
STACK = ("pandas", "cvxpy", "mlflow", "great_expectations", "qiskit", "torch", "plotly", "sqlalchemy", "papermill")


def _timed(cmd, cwd=ROOT, env=None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    return time.perf_counter() - t0, proc


def import_times(n: int = 7, stack: tuple[str, ...] = STACK, n_stack: int = 3) -> dict:
    def once(stmt):
        out = subprocess.run([PY, "-c", f"import time; t = time.perf_counter(); {stmt}; "
                              "print(time.perf_counter() - t)"], capture_output=True, text=True, check=True)
        return float(out.stdout.strip())

    qpo = statistics.median(once("import qpo") for _ in range(n))
    stack_s = statistics.median(once(f"import {', '.join(stack)}") for _ in range(n_stack))
    return {"import_qpo_s": qpo, "import_stack_s": stack_s, "import_stack": list(stack)}


def pipeline_installed(smoke: bool = False) -> dict:
    """``make run`` (the daily-report pipeline) twice in a fresh QPO_HOME; ``qpo pipeline list``
    with ``smoke``."""
    cmd, key = ([str(Path(PY).parent / "qpo"), "pipeline", "list"], "qpo_pipeline_list") if smoke else \
        (["make", "run"], "make_run_installed")
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, QPO_HOME=home)
        first, p1 = _timed(cmd, env=env)
        again, p2 = _timed(cmd, env=env)
    assert p1.returncode == 0 and p2.returncode == 0, (p1.stdout + p1.stderr)[-2000:]
    return {f"{key}_first_s": first, f"{key}_again_s": again}


def validation(smoke: bool = False, shared: bool = True) -> dict:
    import qpo

    out: dict = {}
    before = os.environ.get("QPO_HOME")
    with tempfile.TemporaryDirectory() as home:
        os.environ["QPO_HOME"] = home
        try:
            _validate(qpo, out, smoke, shared)
        finally:  # the next script of a smoke run must not see a removed home
            if before is None:
                os.environ.pop("QPO_HOME", None)
            else:
                os.environ["QPO_HOME"] = before
    return out


def _validate(qpo, out: dict, smoke: bool, shared: bool) -> None:
    panel = qpo.load_prices("sp500")
    if smoke:
        panel = panel.iloc[-300:]
    else:
        qpo.validate_prices(panel.iloc[:100])  # warm: imports Great Expectations
    t0 = time.perf_counter()
    rep = qpo.validate_prices(panel)
    out["validate_bundled_panel_s"] = time.perf_counter() - t0
    out["validate_bundled_panel_rows"] = rep.n_rows
    out["validate_bundled_panel_failed"] = rep.failed_checks
    if shared and BARS.exists() and not smoke:
        t0 = time.perf_counter()
        bars = qpo.load_ohlcv(BARS)
        out["load_shared_bars_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep = qpo.validate_ohlcv(bars)
        out["validate_shared_bars_s"] = time.perf_counter() - t0
        out["validate_shared_bars_rows"] = rep.n_rows
        out["validate_shared_bars_failed"] = {f.check: f.unexpected_count for f in rep.failures}


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


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--from-scratch", action="store_true", help="also time a fresh clone's make run and make test")
    args = ap.parse_args(argv)
    smoke, m = args.smoke, machine()
    results = {"machine": f"{m['cpu']}, {m['cpu_count']} cores, Python {m['python']}", "date": time.strftime("%Y-%m-%d"),
               "mode": mode(args)}
    results.update(import_times(*{"smoke": (1, ("pandas",), 1), "quick": (3, STACK, 1), "full": ()}[results["mode"]]))
    results.update(min_variance_peers({"smoke": 1, "quick": 5, "full": 15}[results["mode"]]))
    results.update(validation(smoke, shared=not args.skip_shared))
    results.update(pipeline_installed(smoke))
    if args.from_scratch:
        results.update(from_scratch())
    previous = Path(args.out) / f"{NAME}.json"
    if previous.exists() and not args.from_scratch:  # keep the last from-scratch figures
        kept = {k: v for k, v in json.loads(previous.read_text()).items() if k not in results}
        results.update({k: v for k, v in kept.items() if k.startswith(("make_run_from", "make_test", "postgres"))})
    text = write_table(results)
    write_results(args.out, NAME, results, text)
    print(text)


def write_table(results: dict) -> str:
    lines = ["| figure | value |", "| --- | --- |"]
    for k, v in results.items():
        lines.append(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
