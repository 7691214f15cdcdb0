"""Quantum (and quantum-inspired) optimizers on binary formulations of the shared problem.

- :mod:`qpo.quantum.formulation`: selection and integer-lot models (QUBO, BQM, CQM, QuadraticProgram, Ising);
- :mod:`qpo.quantum.exact`: the exact references (brute force, SCIP), also the fallback;
- :mod:`qpo.quantum.qaoa`: QAOA (own statevector fast path; Qiskit and Aer);
- :mod:`qpo.quantum.annealing`: simulated annealing, tabu, steepest descent (dwave-samplers, local);
- :mod:`qpo.quantum.engine`: the solve behind ``qpo.optimize`` (check, repair, fall back, judge);
- :mod:`qpo.quantum.result`: its typed result, :class:`BinaryOutcome` (``OptimizationResult.binary``).

``qpo.optimize(problem, "asset_selection" | "integer_lots", method="qaoa" | "annealing" | "exact" | "auto")``
runs them and checks every answer against the exact optimum. qpo.quantum sits below qpo.optimization:
it takes the problem duck-typed and never imports qpo.optimization.
"""
from qpo.quantum.formulation import (
    BinaryModel,
    LinearConstraint,
    lots_model,
    selection_model,
)
from qpo.quantum.result import (
    BinaryOutcome,
    DistributionKind,
    GapConvention,
    QubitLimit,
    SampleDistribution,
    SolutionQuality,
)

__all__ = ["BinaryModel", "BinaryOutcome", "DistributionKind", "GapConvention", "LinearConstraint", "QubitLimit",
           "SampleDistribution", "SolutionQuality", "lots_model", "selection_model"]
