"""Notebook sweeps on Dask, measured on this machine and written to
``benchmarks/results/sweep.{json,md}``.

A 12-cell sweep of the backtest pipeline (``costs`` 0, 10, 20, 30 bp x ``window`` 126, 252, 504
trading days: 6, 12 and 24 months, as issue 20 asks; min-variance and equal weight, quarterly,
2015-2018 of the bundled panel), as
``qpo pipeline sweep backtest -p costs ... -p window ...`` runs it (:func:`qpo.workbench.sweep.run_sweep`),
on a fresh local Dask cluster of 1 and of 2 one-thread worker processes, in a fresh ``QPO_HOME``
(its MLflow store created before the clock starts). Measured: the sweep's wall time
and the speed-up from 1 to 2 workers; per cell, the notebook's own compute (the sum of its cells'
durations, from Papermill's metadata) against the cell's whole time in its worker; and the parts of
the overhead measured on their own: a kernel start (IPC transport, ready to execute), the price
data's validation (Great Expectations) and the rest (Papermill, MLflow logging, the HTML report).

``--smoke``: 2 small cells on 2 workers (seconds); ``--quick``: 6 cells.

Usage: ``python -m benchmarks.sweep [--smoke | --quick] [--out DIR]``
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks._common import finish, header, mode, parser, start, write_results

NAME = "sweep"
PACKAGES = ("qpo", "papermill", "nbclient", "jupyter_client", "mlflow", "dask", "distributed")
BASE = {"history_start": "2015-01-01", "history_end": "2018-12-31", "strategies": "min_variance,equal_weight",
        "rebalance": "Q"}
GRIDS = {"full": {"costs": [0.0, 0.001, 0.002, 0.003], "window": [126, 252, 504]},  # 6, 12, 24 months
         "quick": {"costs": [0.0, 0.002, 0.003], "window": [126, 504]},
         "smoke": {"costs": [0.0, 0.002], "window": [126]}}


def kernel_start(repeats: int) -> dict:
    """A python3 kernel on the IPC transport started until it answers, then shut down."""
    from jupyter_client.manager import KernelManager

    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="qpo-k") as d:
            km = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(d) / "k"))
            t0 = time.perf_counter()
            km.start_kernel()
            client = km.client()
            client.start_channels()
            client.wait_for_ready(timeout=300)
            times.append(time.perf_counter() - t0)
            client.stop_channels()
            km.shutdown_kernel(now=True)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": len(times)}


def validation(repeats: int) -> dict:
    from qpo.workbench.prices import validate_price_source

    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        validate_price_source("sp500", start=BASE["history_start"])
        times.append(time.perf_counter() - t0)
    return {"first_s": times[0], "median_s": statistics.median(times[1:] or times)}


def one_sweep(grid: dict, workers: int) -> dict:
    from qpo.tracking import configure
    from qpo.workbench.sweep import run_sweep

    configure()  # the MLflow store: created once, before the clock
    t0 = time.perf_counter()
    result = run_sweep("backtest", grid, parameters=BASE, workers=workers)
    wall = time.perf_counter() - t0
    cells = [c.timings for c in result.cells if c.status == "FINISHED"]
    cell_wall = [c["wall_s"] for c in cells]
    compute = [c["cells_s"] for c in cells]
    papermill = [c["papermill_s"] for c in cells if c.get("papermill_s") is not None]
    sharpe = {f"costs={c.parameters['costs']} window={c.parameters['window']}": c.metrics.get(result.metric)
              for c in result.cells}
    return {"workers": workers, "cells": len(result.cells), "status": result.status,
            "finished": len(cells), "wall_s": wall, "cell_wall_sum_s": sum(cell_wall),
            "cell_wall_median_s": statistics.median(cell_wall) if cell_wall else None,
            "compute_median_s": statistics.median(compute) if compute else None,
            "papermill_median_s": statistics.median(papermill) if papermill else None,
            "overhead_median_s": statistics.median(w - c for w, c in zip(cell_wall, compute, strict=True))
            if cells else None,
            "metric": result.metric, "metric_by_cell": sharpe,
            **({"error": "; ".join(f"{c.index}: {c.error}" for c in result.failed)} if result.failed else {})}


def markdown(r: dict) -> str:
    lines = header(r, "Notebook sweeps on Dask", NAME,
                   f"A {r['cells']}-cell sweep of the backtest pipeline ({', '.join(r['grid'])}) on a local Dask "
                   "cluster of one-thread worker processes; every cell one Papermill run with its own notebook, "
                   "HTML report and child MLflow run.")
    lines += ["", "| workers | sweep wall | speed-up | cells | cell in its worker (median) | notebook compute (median) "
                  "| overhead per cell (median) |", "|---|---|---|---|---|---|---|"]
    base = r["sweeps"][0]["wall_s"]
    for s in r["sweeps"]:
        lines.append(f"| {s['workers']} | {s['wall_s']:.1f} s | {base / s['wall_s']:.2f}x | {s['finished']}/{s['cells']} "
                     f"| {s['cell_wall_median_s']:.2f} s | {s['compute_median_s']:.2f} s | {s['overhead_median_s']:.2f} s |")
    k, v = r["kernel_start"], r["validation"]
    last = r["sweeps"][-1]
    around = last["papermill_median_s"] - last["compute_median_s"]
    rest = last["overhead_median_s"] - around - v["median_s"]
    lines += ["", f"Where a cell's overhead goes ({last['workers']} workers; medians):", "",
              f"- Papermill around the notebook's cells (its run minus the cells' own time, the kernel's start and "
              f"shutdown included): {around:.2f} s; a kernel start alone (IPC transport, until it answers), measured "
              f"on its own: {k['median_s']:.2f} s (median of {k['repeats']})",
              f"- price data validation (Great Expectations), measured on its own: {v['median_s']:.2f} s (the "
              f"first in a process {v['first_s']:.2f} s)",
              f"- the rest (parameters, MLflow runs and logging, the HTML report, reading the records): about "
              f"{rest:.2f} s",
              "", f"The sweep's wall time also holds the cluster's start and each worker's first imports "
              f"(qpo, Papermill, MLflow), paid once per worker. Figure metric: `{last['metric']}`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__, shared=False).parse_args(argv)
    t_start = time.perf_counter()
    m = mode(args)
    grid = GRIDS[m]
    results = start(args, PACKAGES)
    results["grid"] = {k: list(v) for k, v in grid.items()}
    results["parameters"] = BASE
    results["cells"] = len(grid["costs"]) * len(grid["window"])
    results["kernel_start"] = kernel_start(1 if m == "smoke" else 5)
    results["validation"] = validation(1 if m == "smoke" else 3)
    with tempfile.TemporaryDirectory(prefix="qpo-bench-sweep-") as home:  # one fresh home: store, runs, MLflow
        old = os.environ.get("QPO_HOME")
        os.environ["QPO_HOME"] = home
        try:
            results["sweeps"] = [one_sweep(grid, w) for w in ((2,) if m == "smoke" else (1, 2))]
        finally:
            if old is None:
                os.environ.pop("QPO_HOME", None)
            else:
                os.environ["QPO_HOME"] = old
    finish(results, t_start)
    path = write_results(args.out, NAME, results, markdown(results))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
