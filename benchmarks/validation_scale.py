"""Validating a large price file: time, peak memory and report size, written to
``benchmarks/results/validation_scale.{json,md}``.

A synthetic wide panel, 2,000 tickers x 5,000 business days (10 M prices; random walks with 1 %
daily volatility, seed 0), written as a CSV file (dates in the first column, six decimals:
about 140 MB) in two versions:

* ``clean``: passes every check;
* ``defective``: one bad cell in every row, a different ticker each day (day ``t``, ticker
  ``t mod 2000``), in turn a missing price, ``inf``, a negative price and a tenfold jump: every
  error check of a wide panel but the duplicate and unsorted dates (which the loader refuses
  before validation) fails on thousands of rows;
* ``systematic``: a systematic defect in every row of every ticker (the case that took over 15
  minutes and 7.9 GB): the even tickers' prices negated (5 M non-positive prices), the odd
  tickers' prices frozen at their first value (5 M stale prices).

The clean file is also only loaded (``load_price_file``) in a process of its own: the share of
the time and memory that reading the CSV takes.

Each file is validated through the path the pipelines use, ``qpo.validation.validate_source(path)``
(load, check, write the Data Docs page), in a fresh subprocess: its wall time (Great Expectations
and qpo imported first, not timed), its peak resident set (``ru_maxrss``, the whole process, imports
included) and the size of the report's JSON (``validation.json``). Goal (issue 16): each under 60 s
and 2 GB, the report under 100 kB.

Usage: ``python -m benchmarks.validation_scale [--smoke] [--format csv|parquet] [--out DIR]``
(``--smoke``: 50 tickers x 300 days, in seconds, validated in this process, so its peak memory is
this process's; ``--quick``: 1,000 x 5,000).
"""
from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from benchmarks._common import (
    add_worker_options,
    finish,
    header,
    module_name,
    parser,
    run_worker,
    serve_worker,
    start,
    write_results,
)

NAME = "validation_scale"
PACKAGES = ("qpo", "great_expectations", "numpy", "pandas", "pyarrow")
SIZES = {"full": (2000, 5000), "quick": (1000, 5000), "smoke": (50, 300)}
GOAL_S, GOAL_GB, GOAL_KB = 60.0, 2.0, 100.0


def synthetic_panel(n_tickers: int, n_days: int, defect: str | bool = "", seed: int = 0):
    """The benchmark's panel; ``defect="defective"`` (or True): one bad cell per row (NaN, inf, -1, x10
    in turn); ``"systematic"``: even tickers negated, odd tickers frozen."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 0.01, size=(n_days, n_tickers))
    np.cumsum(values, axis=0, out=values)
    np.exp(values, out=values)
    values *= 50.0
    if defect == "systematic":
        values[:, 0::2] *= -1.0
        values[:, 1::2] = values[0, 1::2]
    elif defect:
        t = np.arange(1, n_days - 1)
        j = t % n_tickers
        kind = t % 4
        values[t[kind == 0], j[kind == 0]] = np.nan
        values[t[kind == 1], j[kind == 1]] = np.inf
        values[t[kind == 2], j[kind == 2]] = -1.0
        values[t[kind == 3], j[kind == 3]] *= 10.0
    return pd.DataFrame(values, index=pd.bdate_range("2000-01-03", periods=n_days, name="date"),
                        columns=[f"T{k:04d}" for k in range(n_tickers)])


def write_panel(frame, path: Path) -> None:
    if path.suffix == ".csv":
        frame.to_csv(path, float_format="%.6f")
    else:
        frame.to_parquet(path)


def _validate_worker(args: dict) -> dict:
    """In a fresh process: import, then ``validate_source`` the file; time, peak RSS, report size."""
    t0 = time.perf_counter()
    import great_expectations  # noqa: F401 - imported before the clock starts, as a warm pipeline has it

    from qpo.validation import validate_source

    imports_s = time.perf_counter() - t0
    rss_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    report, prices = validate_source(args["path"])
    seconds = time.perf_counter() - t0
    text = report.to_json()
    return {"seconds": seconds, "imports_s": imports_s, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_after_imports_mib": rss_imports, "report_bytes": len(text.encode()), "success": report.success,
            "n_rows": report.n_rows, "n_tickers": report.n_tickers,
            "failures": {f.check: f.unexpected_count for f in report.failures},
            "warnings": {f.check: f.unexpected_count for f in report.warnings}}


def _load_worker(args: dict) -> dict:
    """In a fresh process: only read the file as the pipelines do (``load_price_file``)."""
    from qpo.data.loaders import load_price_file

    rss_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    frame = load_price_file(args["path"])
    return {"seconds": time.perf_counter() - t0, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_after_imports_mib": rss_imports, "shape": list(frame.shape)}


WORKERS = {"validate": _validate_worker, "load": _load_worker}


def write_table(r: dict) -> str:
    n_t, n_d = r["parameters"]["n_tickers"], r["parameters"]["n_days"]
    lines = header(r, "Validation at scale", NAME,
                   f"A {n_t:,}-ticker x {n_d:,}-day panel ({n_t * n_d / 1e6:.1f} M prices) in a "
                   f"{r['parameters']['format'].upper()} file, validated by `validate_source` (the pipelines' path) "
                   "in a fresh process per case. Goal: under 60 s and 2 GB each, report under 100 kB.")
    lines += ["", "| case | file | time | peak memory (process) | report JSON | result |", "| --- | --- | --- | --- | --- | --- |"]
    for name, c in r["cases"].items():
        if "error" in c:
            lines.append(f"| {name} | - | failed | - | - | {c['error'][:200]} |")
            continue
        verdict = "passed" if c["success"] else f"failed {len(c['failures'])} checks ({sum(c['failures'].values()):,} rows)"
        lines.append(f"| {name} | {c['file_mb']:.0f} MB | {c['seconds']:.1f} s | {c['peak_rss_mib'] / 1024:.2f} GB "
                     f"(after imports {c['rss_after_imports_mib'] / 1024:.2f} GB) | {c['report_bytes'] / 1000:.1f} kB | {verdict} |")
    load = r.get("load_only", {})
    if "seconds" in load:
        lines += ["", f"Reading the clean file alone (`load_price_file`, its own process): {load['seconds']:.1f} s, "
                  f"peak {load['peak_rss_mib'] / 1024:.2f} GB."]
    for name in ("defective", "systematic"):
        lines += ["", f"Failed checks of the {name} file (rows): "
                  + "; ".join(f"{k}: {v:,}" for k, v in r["cases"].get(name, {}).get("failures", {}).items())]
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__, shared=False)
    ap.add_argument("--format", choices=("csv", "parquet"), default="csv", help="the file format (default csv)")
    add_worker_options(ap)
    args = ap.parse_args(argv)
    if args.worker:
        serve_worker(WORKERS, args.worker, args.worker_args)
        return
    t_start = time.perf_counter()
    results = start(args, PACKAGES)
    n_tickers, n_days = SIZES[results["mode"]]
    results["parameters"] = {"n_tickers": n_tickers, "n_days": n_days, "format": args.format}
    results["cases"] = {}
    with tempfile.TemporaryDirectory(prefix="qpo-validation-scale-") as tmp:
        for name in ("clean", "defective", "systematic"):
            path = Path(tmp) / f"{name}.{args.format}"
            t0 = time.perf_counter()
            write_panel(synthetic_panel(n_tickers, n_days, "" if name == "clean" else name), path)
            print(f"{name}: wrote {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.0f} s", flush=True)
            out = run_worker(module_name(__file__), "validate", {"path": str(path)}, timeout=1800,
                             in_process=WORKERS if results["mode"] == "smoke" else None)
            out["file_mb"] = path.stat().st_size / 1e6
            results["cases"][name] = out
            if "error" not in out:
                print(f"  validated in {out['seconds']:.1f} s, peak {out['peak_rss_mib'] / 1024:.2f} GB, "
                      f"report {out['report_bytes'] / 1000:.1f} kB, success={out['success']}", flush=True)
            if name == "clean":
                results["load_only"] = run_worker(module_name(__file__), "load", {"path": str(path)}, timeout=1800,
                                                  in_process=WORKERS if results["mode"] == "smoke" else None)
    results["goal"] = {"seconds": GOAL_S, "peak_gb": GOAL_GB, "report_kb": GOAL_KB}
    results["met_goal"] = all("error" not in c and c["seconds"] < GOAL_S and c["peak_rss_mib"] / 1024 < GOAL_GB
                              and c["report_bytes"] / 1000 < GOAL_KB for c in results["cases"].values())
    finish(results, t_start)
    path = write_results(args.out, NAME, results, write_table(results))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
