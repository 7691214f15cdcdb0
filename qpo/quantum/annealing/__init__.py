"""Annealing-style samplers on the penalized form of a :class:`~qpo.quantum.formulation.BinaryModel`.

Local, classical samplers from ``dwave-samplers`` (never a cloud solver):

- ``"simulated_annealing"``: :class:`dwave.samplers.SimulatedAnnealingSampler` (Metropolis sweeps
  on a geometric temperature schedule, one anneal per read);
- ``"tabu"``: :class:`dwave.samplers.TabuSampler` (MST2 multistart tabu search, one search per read);
- ``"steepest_descent"``: :class:`dwave.samplers.SteepestDescentSolver` (greedy descent from
  random starts);
- ``"exact"``: :class:`dimod.ExactCQMSolver` on ``model.to_cqm()`` (native constraints, every one
  of the ``2**n_variables`` strings; for small checks, at most :data:`EXACT_MAX_VARIABLES` bits).

Conventions
-----------
* The samplers minimize the penalized energy ``E(x, s) = f(x) + P * sum_j r_j(x, s)^2`` of
  ``model.to_bqm(P)`` over decision bits ``x`` then slack bits ``s`` (``model.variables +
  model.slack_variables``); answers are judged by the objective ``f(x)`` and the native constraints.
* ``counts`` keys are decision bit strings in the model's variable order, left to right
  (``"0110"``: variables 1 and 2 set) -- not Qiskit's reversed (little-endian) order.
* Polishing (``polish=True``) never makes a read worse: each read goes through steepest descent on
  the BQM, then (for the best distinct reads) a greedy repair of violated constraints and a local
  search over feasible single flips and 1-swaps (one bit out, one in; for a selection model the
  cardinality-preserving asset swap) while ``f`` improves. A read keeps its polished state only
  if that is at least as good as the raw one (feasible beats infeasible; then lower ``f`` for
  feasible reads, lower energy for infeasible ones). ``p_feasible`` is measured before polishing.
* Default budgets scale with the number of BQM variables ``m`` (:func:`default_budget`): simulated
  annealing ``num_reads = 16``, ``num_sweeps = 5 * m`` clipped to 100..1000; tabu ``num_reads =
  8`` searches, each with ``num_restarts = 4`` restarts and no wall-clock timeout (so a seed fixes
  the answer); steepest descent ``num_reads = m`` clipped to 100..1000. They were measured
  (``benchmarks/quantum_annealing.py``) to reach the SCIP optimum within 1 % for ``n = 100``,
  ``k = 10`` on real data in less time than SCIP takes to prove it.
* What the benchmark found (``benchmarks/results/quantum_annealing.md``, real data, ``n = 50..200``,
  ``k = n/10``, risk aversion 1/10/50): every polished run reached the SCIP optimum, in 0.03-0.5 s
  where SCIP took 0.5 s to over 120 s (at ``n = 100``: about 0.1 s against 0.5-18 s). Raw simulated
  annealing on the penalized QUBO stays 28-140 % off: with a penalty that keeps reads feasible,
  moving between feasible selections crosses a barrier of about ``P``, so each anneal freezes in
  the first feasible selection; raw tabu is 0-18 % off. The swap search does most of the work.
* ``penalty_sweep`` multiplies the base penalty (``penalty`` or ``model.penalty``); every step is
  recorded and the best feasible answer over all steps wins.
* Seeds: one integer seed drives every sampler (same seed and parameters -> same answer), except
  when ``time_limit`` or a tabu ``timeout`` makes a run depend on the clock.
"""
from __future__ import annotations

from qpo.quantum.annealing._polish import POLISH_REPAIR_STATES, POLISH_SEARCH_STATES, local_search
from qpo.quantum.annealing._run import AnnealingRun, run_annealing
from qpo.quantum.annealing._samplers import EXACT_MAX_VARIABLES, SAMPLERS, default_budget, sampler_parameters

__all__ = ["EXACT_MAX_VARIABLES", "POLISH_REPAIR_STATES", "POLISH_SEARCH_STATES", "SAMPLERS", "AnnealingRun",
           "default_budget", "local_search", "run_annealing", "sampler_parameters"]
