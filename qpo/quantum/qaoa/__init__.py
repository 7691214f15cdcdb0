"""QAOA (quantum approximate optimization algorithm) for qpo's binary portfolio models.

Everything here works on plain arrays: the cost is given by its *diagonal* ``diag`` (the energy of
every basis state, e.g. ``model.energies()`` of :mod:`qpo.quantum.formulation`), and, for the Qiskit
circuits, by the matching Ising Hamiltonian (``model.to_ising()``).

Conventions
-----------
* Bit order is little-endian, as in Qiskit: bit ``j`` of a basis-state index is qubit ``j``
  (``diag[0b011]`` is the state with qubits 0 and 1 set). Bitstring keys of ``counts`` follow
  Qiskit's convention too: qubit 0 is the *rightmost* character.
* One QAOA layer is the phase ``exp(-i gamma C)`` (``C = diag(diag)``) followed by the mixer
  ``exp(-i beta B)``. ``p = reps = len(gammas) = len(betas)``.
* Mixer ``"x"``: start ``|+>^n``, ``B = sum_j X_j`` (Qiskit: ``RX(2 beta)`` on every qubit).
  Mixer ``"xy"``: start the Dicke state ``|D^n_k>`` (uniform over the ``C(n, k)`` bitstrings of
  Hamming weight ``k``); ``exp(-i beta B)`` is the product of ``exp(-i beta (X_i X_j + Y_i Y_j)/2)``
  over the ring edges ``(j, j+1 mod n)`` in *parity order*: the even edges ``(0,1), (2,3), ...``,
  then the odd edges ``(1,2), (3,4), ...``, then the closing edge ``(n-1, 0)`` (which, for even
  ``n``, belongs to the odd layer and commutes with it). For ``n = 2`` the ring is the single edge
  ``(0, 1)``. This gate order is the definition; :func:`qaoa_circuit` uses the same order
  (Qiskit: ``XXPlusYYGate(2 beta)``). The XY mixer preserves the Hamming weight, so all probability
  stays on weight-``k`` strings (the feasible set of an exact-cardinality selection).
* Sign of the angles: ``|+>^n`` is the *top* eigenstate of ``B`` (and the Dicke state lies mostly
  in the top of the XY ring's spectrum within its weight sector; it is the top eigenstate for
  ``k = 1``); a discretized anneal towards the *minimum* of ``C`` therefore has ``gamma > 0`` and
  ``beta < 0``. The ramp initializations below follow that sign. ``(gamma, beta)``
  and ``(-gamma, -beta)`` give complex-conjugate states, hence the same probabilities.
* Units: :func:`run_qaoa` optimizes the *normalized* cost ``(diag - shift) / scale`` where ``shift``
  and ``scale`` are the mean and standard deviation of ``diag`` over the states the mixer can reach
  (all states for ``"x"``, the weight-``k`` states for ``"xy"``), so that angle ranges do not depend
  on the problem's units; it reports energies in the caller's units (``energy_scale`` = ``scale``,
  ``energy_shift`` = ``shift``). Its angles are those of the normalized cost: to replay them on the
  raw ``diag`` multiply the gammas by ``1 / energy_scale``.
* CVaR: ``CVaR_alpha`` is the mean energy of the lowest-energy ``alpha`` of the probability mass
  (Barkoutsos et al., 2020), computed exactly from the probabilities (the boundary state counted
  with its fractional mass). ``alpha = 1`` is the plain expectation.

The fast path :class:`StatevectorQAOA` holds the state as a complex128 vector (``16 * 2**n`` bytes,
plus a second buffer of the same size, the float64 ``diag`` and the sorted energies). The phase is
computed in cache-sized chunks over two threads; from ``2**17`` states on, ``diag`` is split once
into a level on a grid of ``2**16`` values and a small rest, so each layer needs 512 complex
exponentials (the table) and a short Taylor series instead of ``2**n`` cosines and sines (exact to
rounding: the rest's angle is kept below 1e-3, else cos/sin are used). The mixers act as small
Kronecker blocks (``2**w x 2**w``, ``w`` <= 5 qubits at a time), one BLAS matrix product per block,
BLAS on one thread. Measured alternatives (a 2x2 rotation per qubit on a reshaped view; rotating
the qubit order so every block is a flat product) were 2-6x slower. Heavy libraries (scipy, qiskit,
qiskit-aer, threadpoolctl) are imported only inside the functions that use them.
"""
from __future__ import annotations

from qpo.quantum.qaoa._backends import CVAR_SAMPLER_SHOTS
from qpo.quantum.qaoa._circuits import bind_angles, ising_diagonal, parameter_values, qaoa_circuit
from qpo.quantum.qaoa._inputs import BACKENDS, DICKE_PREPARATIONS, INITS, MIXERS, OPTIMIZERS
from qpo.quantum.qaoa._ring import dicke_state, ring_edges
from qpo.quantum.qaoa._run import INITIAL_STEP, QAOARun, run_qaoa
from qpo.quantum.qaoa._schedules import (
    LINEAR_RAMP_DELTA,
    RANDOM_BETA_MAX,
    RANDOM_GAMMA_MAX,
    TQA_DT,
    initial_parameters,
)
from qpo.quantum.qaoa._statevector import (
    QAOA_BYTES_PER_STATE,
    StatevectorQAOA,
    available_memory_bytes,
    cgroup_memory_bytes,
    check_memory,
    qaoa_memory_bytes,
    statevector_bytes,
)

__all__ = ["BACKENDS", "CVAR_SAMPLER_SHOTS", "DICKE_PREPARATIONS", "INITIAL_STEP", "INITS", "LINEAR_RAMP_DELTA",
           "MIXERS", "OPTIMIZERS", "QAOARun", "QAOA_BYTES_PER_STATE", "RANDOM_BETA_MAX", "RANDOM_GAMMA_MAX",
           "StatevectorQAOA", "TQA_DT", "available_memory_bytes", "bind_angles", "cgroup_memory_bytes",
           "check_memory", "dicke_state",
           "initial_parameters", "ising_diagonal", "parameter_values", "qaoa_circuit", "qaoa_memory_bytes",
           "ring_edges", "run_qaoa", "statevector_bytes"]
