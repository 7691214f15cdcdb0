"""qpo's benchmarks: timing and quality scripts that measure qpo against its peers on this
machine, in the same run, and write ``benchmarks/results/<script>.{json,md}``.

Run them from the project root as modules (``make benchmark`` runs them all)::

    python -m benchmarks.classical_optimizers   # qpo vs PyPortfolioOpt, skfolio, Riskfolio-Lib
    python -m benchmarks.backtest_walkforward   # walk-forward min-variance vs skfolio
    python -m benchmarks.risk_analytics         # Monte Carlo VaR, the full risk report
    python -m benchmarks.quantum_qaoa           # QAOA fast path vs Qiskit/Aer, QAOA on real data
    python -m benchmarks.quantum_annealing      # annealing samplers vs SCIP's optimum
    python -m benchmarks.return_forecaster      # PyTorch forecasters: time, memory, quality
    python -m benchmarks.workbench_timings      # import, pipeline, validation, min-variance

Every script takes ``--smoke`` (tiny sizes, seconds), ``--quick`` (fewer repeats) and ``--out DIR``
(default ``benchmarks/results/``). ``python -m benchmarks [--smoke | --quick] [--out DIR] [script ...]``
runs several: full and quick runs each in its own process, smoke runs one after the other in one
process (``tests/test_benchmarks.py`` runs ``python -m benchmarks --smoke --out <tmp>``). The
shared helpers (paths, the command line, the timer, machine and version records, subprocess
workers, the result writer) are in :mod:`benchmarks._common`; a script imports nothing from
another script. Riskfolio-Lib is the ``bench`` extra: without it the classical benchmark leaves
that peer out and says so.
"""
