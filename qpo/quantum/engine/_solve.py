"""The whole binary solve behind ``qpo.optimize``: build the model, solve it exactly for reference, run
the method, check, repair or replace its answer, judge it; the result is a typed
:class:`~qpo.quantum.result.BinaryOutcome`."""
from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

import numpy as np

from qpo._checks import package_versions
from qpo.errors import SolverError
from qpo.quantum.engine._methods import MethodAnswer, run_annealing_on, run_qaoa_on
from qpo.quantum.engine._options import build_model, resolve_binary_options
from qpo.quantum.engine._quality import assess
from qpo.quantum.engine._repair import broken_constraints, repair
from qpo.quantum.exact import ExactSolution, solve_exact
from qpo.quantum.formulation import BinaryModel
from qpo.quantum.qaoa import check_memory
from qpo.quantum.result import BinaryOutcome, QubitLimit

if TYPE_CHECKING:  # pragma: no cover - annotations only: qpo.optimization sits above qpo.quantum
    from qpo.optimization.problem import PortfolioProblem
    from qpo.quantum.annealing import AnnealingRun
    from qpo.quantum.qaoa import QAOARun


def solve_binary(problem: PortfolioProblem, objective: str, method: str, options: dict, seed: int
                 ) -> tuple[BinaryOutcome, float, float]:
    """``(outcome, build_s, solve_s)`` for ``qpo.optimize``: the typed outcome (answer, reference, quality,
    distribution, run record; see :mod:`qpo.quantum.engine`) and the seconds spent building the model
    and solving it."""
    t0 = time.perf_counter()
    obj_opts, meth_opts = resolve_binary_options(objective, method, options)
    model = build_model(problem, objective, obj_opts)
    build_s = time.perf_counter() - t0
    chosen, why = method, None
    if method == "auto":
        chosen = "qaoa" if model.n_qubits <= meth_opts["auto_qaoa_qubits"] else "annealing"
        why = (f"{model.n_qubits} qubits {'<=' if chosen == 'qaoa' else '>'} auto_qaoa_qubits="
               f"{meth_opts['auto_qaoa_qubits']}: {chosen}")

    if chosen == "qaoa" and model.n_qubits <= meth_opts["max_qubits"]:
        # refused now, before the exact reference is solved, when the statevector cannot fit
        check_memory(model.n_qubits, f"qaoa (max_qubits={meth_opts['max_qubits']})")
    t1 = time.perf_counter()
    reference: ExactSolution | None
    reference_error: str | None = None
    answer: MethodAnswer | None = None
    x: np.ndarray | None
    solver: str | None
    fallback: str | None = None
    if chosen == "exact":
        reference = solve_exact(model, method=meth_opts["exact_method"], time_limit=meth_opts["time_limit"])
        run: QAOARun | AnnealingRun | ExactSolution | QubitLimit = reference
        x, solver = reference.x, reference.solver_name
        status = "optimal" if reference.proven_optimal else "feasible"
    else:
        reference, reference_error = _reference(model, meth_opts["reference_time_limit"])
        answer = (run_qaoa_on if chosen == "qaoa" else run_annealing_on)(model, meth_opts, seed)
        run, x, solver, fallback, status = answer.run, answer.x, answer.solver, answer.refusal, "feasible"
    solve_s = time.perf_counter() - t1

    # check, repair, fall back
    if x is not None and not model.is_feasible(x):
        repaired = repair(model, x)
        if repaired is not None:
            fallback = (f"{chosen}: no sample satisfies the constraints; the most likely one breaks the "
                        f"{broken_constraints(model, x)} constraint and was repaired greedily (objective "
                        f"{model.objective(x):.6g} -> {model.objective(repaired):.6g})")
            x, status = repaired, "repaired"
        else:
            fallback = f"{chosen}'s best answer breaks the {broken_constraints(model, x)} constraint and cannot be repaired"
            x = None
    if x is None:
        if reference is None:
            raise SolverError(f"{fallback}; and {reference_error}. Raise reference_time_limit or shrink the problem")
        x = reference.x
        solver = f"{reference.solver_name} (fallback)"
        status = "fallback"

    # judge it (a method's distribution too; annealing's reads also before polishing)
    if answer is None:
        quality, before = assess(model, x, reference), None
    else:
        quality = assess(model, x, reference, answer.p, answer.samples_per_run, answer.wall_time_s)
        before = None if answer.p_before_polish is None else assess(model, x, reference, answer.p_before_polish)
    run = _lean(run)
    outcome = BinaryOutcome(model=model, method=chosen, x=x, solver=solver or "", status=status, quality=quality,
                            reference=reference, run=run, distribution=None if answer is None else answer.distribution,
                            quality_before_polish=before, reference_error=reference_error, fallback_reason=fallback,
                            auto_choice=why, seed=int(seed), versions=versions())
    return outcome, build_s, solve_s


#: a QAOA run's exact final state is kept on the result up to this many amplitudes (512 KiB); a larger
#: one (up to 2**24, 128 MiB) would be held as long as the result lives, so only its top samples stay
#: (``result.binary.distribution``); ``qpo.quantum.qaoa.run_qaoa`` returns the whole state when needed
KEEP_STATE_MAX_AMPLITUDES = 1 << 16


def _lean(run):
    from qpo.quantum.qaoa import QAOARun

    if isinstance(run, QAOARun) and run.probabilities is not None and run.probabilities.size > KEEP_STATE_MAX_AMPLITUDES:
        return dataclasses.replace(run, probabilities=None)
    return run


def _reference(model: BinaryModel, time_limit: float | None) -> tuple[ExactSolution | None, str | None]:
    """The exact optimum, or None (with the reason) when the exact solver finds nothing in time."""
    try:
        return solve_exact(model, method="auto", time_limit=time_limit), None
    except SolverError as e:
        return None, f"the exact reference failed within reference_time_limit={time_limit} s: {e}"


def versions() -> dict[str, str | None]:
    """The versions of the packages a binary solve may use, for the record of the run."""
    return package_versions(("numpy", "scipy", "qiskit", "qiskit-aer", "qiskit-optimization", "dimod",
                             "dwave-samplers", "cvxpy", "PySCIPOpt"))
