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


VERBOSE = """
import numpy as np, pandas as pd, qpo
r = pd.DataFrame(np.random.default_rng(0).normal(0.0005, 0.01, (300, 6)), columns=list("ABCDEF"),
                 index=pd.bdate_range("2020-01-01", periods=300))
p = qpo.PortfolioProblem.from_returns(r)
print("quiet", qpo.optimize(p, "min_cvar").solver, flush=True)
print("asked", qpo.optimize(p, "min_cvar", solver_options={"verbose": True}).solver, flush=True)
print("asked", qpo.optimize(p, "min_variance", solver_options={"verbose": True}).solver, flush=True)
"""


def test_a_caller_who_asks_for_the_solver_log_gets_it():
    """``solver_options={"verbose": True}`` is handed to the solver: its log (HiGHS's, from C, to the
    process's stdout; Clarabel's) and cvxpy's appear, and only for the solves that asked."""
    out = subprocess.run([sys.executable, "-c", VERBOSE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    quiet, rest = out.stdout.split("quiet HIGHS\n", 1)
    assert quiet == ""  # the default solve said nothing
    first, second = rest.split("asked HIGHS\n", 1)
    assert "HiGHS run time" in first and "CVXPY" in first  # the LP's log, from HiGHS itself
    assert "Clarabel" in second and second.endswith("asked CLARABEL\n")  # the QP's, from Clarabel
    assert out.stderr.count("Your problem has") == 2  # cvxpy's own log, to stderr: the two solves that asked
