"""Binary formulations of asset selection, built from the shared :class:`~qpo.PortfolioProblem`.

Two problems, one type (:class:`BinaryModel`):

- **selection** (:func:`selection_model`): choose exactly (``cardinality="exact"``) or at most
  (``"at_most"``) ``k`` of the ``n`` assets; each chosen asset weighs ``1/k`` (with ``at_most`` the
  empty slots stay in cash). ``x_i = 1`` when asset ``i`` is chosen.
- **lots** (:func:`lots_model`): whole lots of each asset (``lot_size`` shares at ``price``) under a
  cash budget, ``sum_i price_i lot_size_i n_i <= cash``; ``n_i`` in ``0..max_lots_i`` is encoded in
  binary with the bounded integer coefficients ``1, 2, 4, ..., 2^(b-2), max_lots - (2^(b-1) - 1)``
  (every value in range has a code, none above it; ``model.encoding`` records them). The weight
  of asset ``i`` is the cash it takes, ``price_i lot_size_i n_i / cash``; the rest stays in cash.

Objective, in both: the annual mean-variance utility of the weights ``w = W x`` (the same convention
as ``optimize(..., "max_utility")``), to be minimized::

    f(x) = risk_aversion / 2 * w' Sigma w - mu' w = x' Q x + c' x + offset

with ``Sigma``, ``mu`` the problem's annualized moments (``Q = risk_aversion/2 W' Sigma W``,
``c = -W' mu``). For selection with exactly ``k`` this is the issue's ``q x' Sigma x - mu' x``
with ``q = risk_aversion / (2 k)`` and ``mu, Sigma`` divided by ``k``.

Constraints are kept native (``model.constraints``: linear, ``==`` or ``<=``) for the CQM, the
``QuadraticProgram`` and the exact solvers. Samplers that take an unconstrained model (QAOA with the
X mixer, annealing) get the **penalized** form ``E(x, s) = f(x) + P * sum_j r_j(x, s)^2`` where an
inequality gets slack bits ``s`` (bounded binary encoding, integer coefficients) and ``r_j`` is the
residual in the constraint's *unit* (one asset for the cardinality; the cheapest lot's cost for
the budget).

**Penalty default** (``penalty_rule``): ``P = 2 * D`` where ``D = max_i (|Q_ii + c_i| + 2 sum_{j!=i}
|Q_ij|)`` bounds how much one bit flip can change ``f``. For the cardinality (unit residuals) any
string that misses the constraint by ``r`` can reach a feasible one with ``|r|`` flips that raise
``f`` by at most ``|r| D < P r^2``: the penalized minimum is feasible and is the constrained one.
For the budget, an overspend smaller than one cheapest lot is penalized less than that; the engine
checks every answer and repairs or falls back (see :mod:`qpo.quantum.engine`). ``penalty=`` overrides
it; the value used is always recorded.

Bit order everywhere: variable ``j`` is bit ``j`` of a state's index (little-endian) and Qiskit's
qubit ``j``; the Ising form uses ``x_j = (1 - z_j) / 2``. Decision variables come first, slack
bits after them.
"""
from qpo.quantum.formulation._builders import lots_model, selection_model
from qpo.quantum.formulation._model import CARDINALITIES, KINDS, BinaryModel, LinearConstraint
from qpo.quantum.formulation._qubo import (
    bitstring,
    bounded_coefficients,
    linear_energies,
    n_feasible_selection,
    qubo_energies,
    qubo_to_ising,
)

__all__ = ["CARDINALITIES", "KINDS", "BinaryModel", "LinearConstraint", "bitstring", "bounded_coefficients",
           "linear_energies", "lots_model", "n_feasible_selection", "qubo_energies", "qubo_to_ising", "selection_model"]
