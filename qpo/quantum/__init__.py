"""Quantum (and quantum-inspired) optimizers on binary formulations of the shared problem.

- :mod:`qpo.quantum.formulation`: selection and integer-lot models (QUBO, BQM, CQM, QuadraticProgram, Ising);
- :mod:`qpo.quantum.exact`: the exact references (brute force, SCIP), also the fallback;
- :mod:`qpo.quantum.qaoa`: QAOA (own statevector fast path; Qiskit and Aer);
- :mod:`qpo.quantum.annealing`: simulated annealing, tabu, steepest descent (dwave-samplers, local).

``qpo.optimize(problem, "asset_selection" | "integer_lots", method="qaoa" | "annealing" | "exact" | "auto")``
runs them and checks every answer against the exact optimum.
"""
from qpo.quantum.formulation import (
    BinaryModel,
    LinearConstraint,
    lots_model,
    selection_model,
)

__all__ = ["BinaryModel", "LinearConstraint", "lots_model", "selection_model"]
