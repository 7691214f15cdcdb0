"""Solvers speak only when asked: no HiGHS banner in a notebook, a log or the CLI's output."""
from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import numpy as np, pandas as pd, qpo
r = pd.DataFrame(np.random.default_rng(0).normal(0.0005, 0.01, (300, 6)), columns=list("ABCDEF"),
                 index=pd.bdate_range("2020-01-01", periods=300))
p = qpo.PortfolioProblem.from_returns(r)
res = qpo.optimize(p, "min_cvar")
print("solver", res.solver)
res = qpo.optimize(qpo.PortfolioProblem.from_returns(r, constraints=qpo.Constraints(max_assets=3)), "min_cvar")
print("solver", res.solver)
"""


def test_lp_solves_print_nothing_but_what_the_caller_prints():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "solver HIGHS", out.stdout  # the LP went to HiGHS, which used to print its banner
    assert all(line.startswith("solver ") for line in lines), out.stdout
    assert "HiGHS" not in out.stdout and "Running" not in out.stdout
