"""The engine behind ``qpo.optimize`` for the binary objectives (``asset_selection``,
``integer_lots``) and the methods ``exact``, ``qaoa``, ``annealing`` and ``auto``.

Every answer is checked: a sampler's best string must satisfy the model's constraints (to 1e-9 of
their scale). An infeasible answer is repaired greedily (selection: drop or add the asset that
changes the objective least; lots: sell the lot whose sale costs least, until the budget holds);
when no repair is possible, or the model is too large for the requested method (QAOA's statevector
needs ``16 * 2**n_qubits`` bytes; the default limit is 24 qubits, 256 MiB), the exact solver
answers and ``fallback_reason`` says why.

Every result carries the exact optimum next to it (brute force up to 20 bits, SCIP above, with a
time limit that is recorded) and the figures that compare them. They are typed parts of the result
(``result.binary``, a :class:`~qpo.quantum.result.BinaryOutcome`: ``.quality``, ``.reference``,
``.distribution``, ``.run``); ``result.diagnostics`` is their flat view, under these keys:

- ``gap``: ``(f - f*) / |f*|`` (``|f - f*|`` when ``f* = 0``); 0 means the answer is optimal;
- ``approximation_ratio``: ``(f_max - f) / (f_max - f*)`` over the feasible set (1 optimal, 0 the
  worst feasible answer; brute force only, since ``f_max`` of a convex objective is hard to get);
  ``expected_approximation_ratio``: the same of the mean objective of the method's feasible samples;
- ``p_optimum``, ``p_feasible``: the probability (QAOA, exact from the final state) or fraction of
  reads (annealing) that are optimal / feasible; ``uniform_p_optimum``: the same for a uniformly
  random feasible string, the baseline;
- ``tts99_samples``: samples needed to see an optimum with 99 % probability,
  ``ln(0.01) / ln(1 - p_optimum)``; ``tts99_s``: the wall time of the run times the number of runs
  needed, ``ln(0.01) / ln(1 - (1 - (1 - p)^S))`` for ``S`` samples per run (``inf`` when no
  sample was optimal);
- annealing: the figures above are of the reads after polishing (steepest descent, repair, swap
  search); ``p_feasible_raw``, ``p_optimum_raw`` and ``expected_approximation_ratio_raw`` are the
  sampler's own reads before it;
- ``evaluations``, ``wall_time_s``, ``penalty`` (and its rule), ``reps``, ``seed``, ``backend``,
  ``versions``.

``diagnostics["samples"]`` (``binary.distribution.samples``): bitstring -> probability (QAOA: the most
likely 256 strings of the exact distribution) or count (annealing reads, QAOA shots in
``diagnostics["counts"]``); a bitstring lists the model's variables left to right in ticker order,
``1`` = chosen (not Qiskit's reversed order). ``diagnostics["distribution"]`` says which
(``binary.distribution.kind``, a :class:`~qpo.quantum.result.DistributionKind`).

The jobs: :mod:`._options` (the options of each objective and method, the model to build),
:mod:`._methods` (running QAOA and annealing on the model), :mod:`._repair` (making an answer
feasible), :mod:`._quality` (judging it against the reference) and :mod:`._solve` (the whole solve).
"""
from qpo.quantum.engine._methods import TOP_SAMPLES
from qpo.quantum.engine._options import (
    BINARY_OBJECTIVE_OPTIONS,
    BINARY_OBJECTIVES,
    METHOD_OPTIONS,
    QUANTUM_METHODS,
    build_model,
    resolve_binary_options,
)
from qpo.quantum.engine._quality import assess
from qpo.quantum.engine._repair import encode_lots, repair
from qpo.quantum.engine._solve import solve_binary, versions
from qpo.quantum.qaoa import statevector_bytes

__all__ = ["BINARY_OBJECTIVES", "BINARY_OBJECTIVE_OPTIONS", "METHOD_OPTIONS", "QUANTUM_METHODS", "TOP_SAMPLES", "assess",
           "build_model", "encode_lots", "repair", "resolve_binary_options", "solve_binary", "statevector_bytes",
           "versions"]
