"""qpo's benchmarks: timing and quality scripts that measure qpo against its peers on this
machine, in the same run, and write ``benchmarks/results/<script>.{json,md}``.

:data:`SCRIPTS` is the one list of them, in the order they run: ``make benchmark`` runs
``python -m benchmarks`` (every script, each in its own process), and the suite's smoke test
(``tests/test_benchmarks.py``) runs every one's ``--smoke`` mode but those in
:data:`SMOKE_TESTED_APART`, which have a smoke test of their own. Run one from the project root
as a module::

    python -m benchmarks.classical_optimizers   # qpo vs PyPortfolioOpt, skfolio, Riskfolio-Lib
    python -m benchmarks.backtest_walkforward   # walk-forward min-variance vs skfolio
    python -m benchmarks.validation_scale       # price validation at 2,000 x 5,000: time, memory
    python -m benchmarks.fuzz_optimizer         # 10,000 random constraint sets, every result checked
    python -m benchmarks.risk_analytics         # Monte Carlo VaR, the full risk report
    python -m benchmarks.rebalance_proposals    # propose and accept, 20 and 500 names
    python -m benchmarks.dashboard_browser      # the dashboard timed in Chromium
    python -m benchmarks.quantum_qaoa           # QAOA fast path vs Qiskit/Aer, QAOA on real data
    python -m benchmarks.quantum_annealing      # annealing samplers vs SCIP's optimum
    python -m benchmarks.return_forecaster      # PyTorch forecasters: time, memory, quality
    python -m benchmarks.workbench_timings      # import, pipeline, validation, min-variance
    python -m benchmarks.book_risk              # the book's risk: 1,000 and 10,000 portfolios
    python -m benchmarks.book_nightly           # nightly valuation and risk runs on Dask workers
    python -m benchmarks.sweep                  # parameter sweeps of Papermill cells on workers

Every script takes ``--smoke`` (tiny sizes, seconds), ``--quick`` (fewer repeats) and ``--out DIR``
(default ``benchmarks/results/``). ``python -m benchmarks [--smoke | --quick] [--out DIR] [script ...]``
runs several (default: all of :data:`SCRIPTS`): full and quick runs each in its own process, smoke
runs one after the other in one process. The shared helpers (paths, the command line, the timer,
machine and version records, subprocess workers, the result writer) are in
:mod:`benchmarks._common`; a script imports nothing from another script. Riskfolio-Lib is the
``bench`` extra: without it the classical benchmark leaves that peer out and says so.
"""

#: every benchmark script (a module ``benchmarks.<name>``), in the order ``python -m benchmarks`` and
#: ``make benchmark`` run them
SCRIPTS: tuple[str, ...] = (
    "classical_optimizers", "backtest_walkforward", "validation_scale", "fuzz_optimizer", "risk_analytics",
    "rebalance_proposals", "dashboard_browser", "quantum_qaoa", "quantum_annealing", "return_forecaster",
    "workbench_timings", "book_risk", "book_nightly", "sweep")
#: scripts whose ``--smoke`` mode the suite runs in a test of its own (not in the shared smoke run), and where
SMOKE_TESTED_APART: dict[str, str] = {
    "validation_scale": "tests/test_benchmarks.py::test_validation_scale (its own process: its peak memory is measured)",
    "dashboard_browser": "tests/test_benchmarks.py::test_dashboard_browser_benchmark_smoke (needs Chromium; skipped "
                         "without it)",
}
