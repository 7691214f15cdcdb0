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

import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from qpo.errors import InvalidValueError, SolverError, UnknownOptionError

if TYPE_CHECKING:  # pragma: no cover
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import SparsePauliOp

MIXERS = ("x", "xy")
INITS = ("linear_ramp", "tqa", "random")
BACKENDS = ("numpy", "qiskit", "aer")
OPTIMIZERS = ("COBYLA", "Nelder-Mead", "L-BFGS-B", "Powell")
DICKE_PREPARATIONS = ("gates", "initialize")

#: default ``delta`` of the linear ramp: gamma_i = (i + 1/2)/p * delta, beta_i = -(1 - (i + 1/2)/p) * delta
#: (on the normalized cost, unit standard deviation, ramps with delta in 0.75..1.25 start lowest for p = 2..5)
LINEAR_RAMP_DELTA = 1.0
#: default time step of the TQA schedule (Sack & Serbyn, Quantum 5, 491 (2021): dt ~ 0.75 is near optimal)
TQA_DT = 0.75
#: ranges of the random initialization: gamma ~ U(0, RANDOM_GAMMA_MAX), beta ~ U(-RANDOM_BETA_MAX, RANDOM_BETA_MAX)
RANDOM_GAMMA_MAX = 1.5
RANDOM_BETA_MAX = math.pi / 4
#: initial trust-region radius of COBYLA (and initial simplex size of Nelder-Mead), in radians
INITIAL_STEP = 0.25
#: samples the qiskit/aer backends draw per CVaR evaluation when ``shots`` is not given
CVAR_SAMPLER_SHOTS = 10_000

_CHUNK = 1 << 15          # elements per chunk of the elementwise work (512 KiB of complex128)
_PARALLEL_MIN = 1 << 16   # below this dimension the elementwise work stays on the calling thread
_BLOCK = 4                # qubits per Kronecker block of the mixers
_LOW_QUBITS = 14          # phase + mixer blocks on qubits 0..13 run on chunks of 2**14 states (256 KiB, in cache); even
_TABLE_BITS = 16          # phase by table: diag on a grid of 2**16 levels ...
_TABLE_MIN = 1 << 17      # ... used from this dimension up (below it the table costs more than it saves)
_TABLE_MAX_ANGLE = 1e-3   # ... while |gamma| * (half a grid step) stays below this (Taylor error < 1e-16)
_POOL: ThreadPoolExecutor | None = None
_BLAS: Any = None


def _single_threaded_blas():
    """Context: BLAS on one thread. The mixers' matrix products are small; OpenBLAS's own threads
    gain nothing on them and, on a busy machine, their spin-waits slow an evaluation down 10-100x."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1)),
                                   thread_name_prefix="qpo-qaoa")
    return _POOL


# ----------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------

def _check_diag(diag) -> tuple[np.ndarray, int]:
    try:
        d = np.asarray(diag, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"diag must be a 1-d array of real energies, one per bitstring: {exc}") from None
    if d.ndim != 1:
        raise InvalidValueError(f"diag must be 1-d (the energy of each of the 2**n bitstrings), got shape {d.shape}")
    size = d.shape[0]
    if size < 2 or size & (size - 1):
        raise InvalidValueError(f"diag must have length 2**n with n >= 1 (one energy per bitstring), got length "
                                f"{size}")
    bad = ~np.isfinite(d)
    if bad.any():
        raise InvalidValueError(f"diag holds {int(bad.sum())} NaN/inf energies (first at index "
                                f"{int(np.flatnonzero(bad)[0])}); every energy must be finite")
    return np.ascontiguousarray(d), size.bit_length() - 1


def _check_mixer(mixer: str, k, n: int) -> int | None:
    if mixer not in MIXERS:
        raise UnknownOptionError("mixer", mixer, MIXERS)
    if mixer == "x":
        if k is not None:
            _check_k(k, n)  # a k given with the X mixer is still checked, though unused
        return None
    if k is None:
        raise InvalidValueError(f"the xy mixer needs k, the Hamming weight of the Dicke start (1..{n - 1} for "
                                f"n = {n} qubits)")
    return _check_k(k, n)


def _check_k(k, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InvalidValueError(f"k must be an integer in 1..{n - 1}, got {k!r}")
    if not 1 <= k <= n - 1:
        raise InvalidValueError(f"k must be in 1..n-1 = 1..{n - 1} for n = {n} qubits, got {k}")
    return int(k)


def _check_reps(reps) -> int:
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 1:
        raise InvalidValueError(f"reps (the number of QAOA layers p) must be an integer >= 1, got {reps!r}")
    return int(reps)


def _check_alpha(cvar_alpha) -> float:
    try:
        a = float(cvar_alpha)
    except (TypeError, ValueError):
        raise InvalidValueError(f"cvar_alpha must be a number in (0, 1], got {cvar_alpha!r}") from None
    if not 0.0 < a <= 1.0:
        raise InvalidValueError(f"cvar_alpha must be in (0, 1] (1 = plain expectation), got {cvar_alpha!r}")
    return a


def _check_angles(gammas, betas) -> tuple[np.ndarray, np.ndarray]:
    g = np.atleast_1d(np.asarray(gammas, dtype=float))
    b = np.atleast_1d(np.asarray(betas, dtype=float))
    if g.ndim != 1 or b.ndim != 1 or g.shape != b.shape or g.size == 0:
        raise InvalidValueError(f"gammas and betas must be 1-d of the same length p >= 1 (one per layer), got "
                                f"shapes {g.shape} and {b.shape}")
    if not (np.isfinite(g).all() and np.isfinite(b).all()):
        raise InvalidValueError("gammas and betas must be finite")
    return g, b


# ----------------------------------------------------------------------------------------------
# Dicke states and the XY ring
# ----------------------------------------------------------------------------------------------

def _popcount(n: int) -> np.ndarray:
    return np.bitwise_count(np.arange(1 << n, dtype=np.uint32)).astype(np.int8)


def dicke_state(n: int, k: int) -> np.ndarray:
    """The Dicke state ``|D^n_k>``: amplitude ``1/sqrt(C(n, k))`` on every weight-``k`` bitstring (float64)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InvalidValueError(f"n must be an integer >= 1, got {n!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise InvalidValueError(f"k must be an integer in 0..n = 0..{n}, got {k!r}")
    v = (_popcount(n) == k).astype(float)
    v /= math.sqrt(math.comb(n, k))
    return v


def ring_edges(n: int) -> list[tuple[int, int]]:
    """The XY-ring edges in the order the mixer applies them: even, odd, then the closing edge ``(n-1, 0)``."""
    if n < 2:
        raise InvalidValueError(f"the XY ring needs n >= 2 qubits, got {n}")
    if n == 2:
        return [(0, 1)]
    even = [(j, j + 1) for j in range(0, n - 1, 2)]
    odd = [(j, j + 1) for j in range(1, n - 1, 2)]
    return even + odd + [(n - 1, 0)]


def _pair_blocks(starts: list[int]) -> list[tuple[int, int, bool]]:
    """Group adjacent-pair starts ``j, j+2, ...`` into Kronecker blocks ``(first qubit, width, padded)``.
    A block that would start at qubit 1 starts at qubit 0 with an identity there (``padded``): a block
    on the lowest qubits is one flat matrix product, about twice as fast as the batched one."""
    per = _BLOCK // 2
    out = []
    for i in range(0, len(starts), per):
        j, w = starts[i], 2 * len(starts[i:i + per])
        out.append((0, w + 1, True) if j == 1 else (j, w, False))
    return out


def _x_blocks(n: int) -> list[tuple[int, int]]:
    count = -(-n // _BLOCK)
    base, extra = divmod(n, count)
    widths = [base + 1] * extra + [base] * (count - extra)
    out, j = [], 0
    for w in widths:
        out.append((j, w))
        j += w
    return out


def _kron_power(m: np.ndarray, times: int) -> np.ndarray:
    out = m
    for _ in range(times - 1):
        out = np.kron(out, m)
    return out


def _apply_block(src: np.ndarray, dst: np.ndarray, j: int, w: int, u: np.ndarray, threads: int = 1) -> None:
    """``dst = (I ⊗ u ⊗ I) src`` with ``u`` acting on qubits ``j .. j+w-1`` (``u``'s index little-endian).

    Blocks on the lowest qubits are one flat product ``(2**n/2**w, 2**w) @ u.T``; the others a batched
    ``u @ (A, 2**w, B)``. With ``threads > 1`` the work is split in contiguous parts over the pool (each
    part one BLAS call on one thread)."""
    dim = src.shape[0]
    a, m, b = dim >> (j + w), 1 << w, 1 << j
    if b == 1:
        sv, dv, ut = src.reshape(a, m), dst.reshape(a, m), u.T

        def part(lo: int, hi: int) -> None:
            np.matmul(sv[lo:hi], ut, out=dv[lo:hi])
        size = a
    else:
        sv, dv = src.reshape(a, m, b), dst.reshape(a, m, b)
        if a >= threads:
            def part(lo: int, hi: int) -> None:
                np.matmul(u, sv[lo:hi], out=dv[lo:hi])
            size = a
        else:
            def part(lo: int, hi: int) -> None:
                np.matmul(u, sv[:, :, lo:hi], out=dv[:, :, lo:hi])
            size = b
    if threads == 1 or dim < _PARALLEL_MIN:
        part(0, size)
        return
    step = -(-size // threads)
    futures = [_pool().submit(part, lo, min(lo + step, size)) for lo in range(step, size, step)]
    part(0, step)
    for f in futures:
        f.result()


# ----------------------------------------------------------------------------------------------
# the fast path
# ----------------------------------------------------------------------------------------------

class StatevectorQAOA:
    """Own statevector simulation of QAOA from the precomputed diagonal cost (numpy, complex128:
    ``16 * 2**n`` bytes per state buffer; two buffers are kept and reused).

    ``diag``: energies of all ``2**n`` bitstrings (little-endian: bit ``j`` of the index = qubit ``j``).
    ``mixer="x"``: start ``|+>^n``, mixer ``exp(-i beta sum_j X_j)``. ``mixer="xy"``: start ``|D^n_k>``,
    mixer = the XY ring in parity order (see the module docstring). ``threads``: threads for the
    elementwise work (default: up to 2). ``support``: the basis states the mixer can reach (all, or
    the weight-``k`` ones), sorted by energy once here for the exact CVaR. Memory: two state
    buffers (``32 * 2**n`` bytes) plus ``diag`` and its sorted copy. One instance is not meant to
    be evaluated from several threads at once (the buffers are shared).
    """

    def __init__(self, diag: np.ndarray, *, mixer: str = "x", k: int | None = None, threads: int | None = None):
        d, self.n = _check_diag(diag)
        self.diag = d.copy() if np.may_share_memory(d, np.asarray(diag)) else d  # own copy: the sort below stays valid
        self.dim = 1 << self.n
        self.k = _check_mixer(mixer, k, self.n)
        self.mixer = mixer
        if threads is None:
            threads = max(1, min(2, os.cpu_count() or 1))
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
            raise InvalidValueError(f"threads must be an integer >= 1, got {threads!r}")
        self.threads = int(threads)
        index = np.int32 if self.n < 31 else np.int64
        # the mixer as Kronecker blocks (first qubit, width, padded): those on the lowest ``_low`` qubits are
        # applied chunk by chunk with the phase (cache-sized chunks of 2**_low states), the rest on the whole state
        self._low = low = min(self.n, _LOW_QUBITS)
        if mixer == "x":
            self.support = np.arange(self.dim, dtype=index)
            self._chunk_blocks = [(j, w, False) for j, w in _x_blocks(low)]
            self._global_blocks = [(low + j, w, False) for j, w in _x_blocks(self.n - low)] if self.n > low else []
        else:
            self.support = np.flatnonzero(_popcount(self.n) == self.k).astype(index)
            even = [0] if self.n == 2 else list(range(0, self.n - 1, 2))
            odd = list(range(1, self.n - 1, 2))
            # pairs inside the chunk qubits first (even, then odd), then the others (even, odd, the closing
            # edge): with ``low`` even, the pairs moved past each other act on disjoint qubits and commute,
            # so this is the parity order of the definition
            self._chunk_blocks = (_pair_blocks([j for j in even if j + 1 < low])
                                  + _pair_blocks([j for j in odd if j + 1 < low]))
            self._global_blocks = (_pair_blocks([j for j in even if j + 1 >= low])
                                   + _pair_blocks([j for j in odd if j + 1 >= low]))
        self._grid = None
        lo, hi = float(self.diag.min()), float(self.diag.max())
        if self.dim >= _TABLE_MIN and hi > lo:
            # diag = lo + step * level + rest with level in 0..2**16-1 and |rest| <= step/2: the phase is
            # table[level] * exp(-i gamma rest), the table from 2 x 256 exponentials, the rest by Taylor
            self._step = (hi - lo) / ((1 << _TABLE_BITS) - 1)
            self._level = np.rint((self.diag - lo) / self._step).astype(np.uint16)
            self._rest = self.diag - (lo + self._level * self._step)
            self._grid = (lo + self._step * 256 * np.arange(256), self._step * np.arange(256))
        energies = self.diag[self.support]
        order = np.argsort(energies, kind="stable")
        self._sorted_states = self.support[order]
        self._sorted_energies = energies[order]
        self._bufs = (np.empty(self.dim, dtype=complex), np.empty(self.dim, dtype=complex))

    # -- public -------------------------------------------------------------------------------
    @property
    def n_qubits(self) -> int:
        return self.n

    def initial_state(self) -> np.ndarray:
        """The start state (``|+>^n`` or ``|D^n_k>``), complex128."""
        out = np.empty(self.dim, dtype=complex)
        self._start(out)
        return out

    def _start(self, psi: np.ndarray) -> None:
        if self.mixer == "x":
            psi.fill(1.0 / math.sqrt(self.dim))
        else:
            psi.fill(0.0)
            psi[self.support] = 1.0 / math.sqrt(self.support.size)

    def state(self, gammas, betas) -> np.ndarray:
        """Final state after ``p = len(gammas)`` layers (a new complex128 array)."""
        angles = _check_angles(gammas, betas)
        with _single_threaded_blas():
            return self._evolve(*angles).copy()

    def probabilities(self, gammas, betas) -> np.ndarray:
        """Probabilities ``|<i|psi>|^2`` of the final state, length ``2**n``."""
        angles = _check_angles(gammas, betas)
        with _single_threaded_blas():
            psi = self._evolve(*angles)
            return np.square(psi.real) + np.square(psi.imag)

    def expectation(self, gammas, betas, cvar_alpha: float = 1.0) -> float:
        """``<psi|C|psi>`` (``cvar_alpha=1``) or the exact ``CVaR_alpha`` of the energy distribution."""
        alpha = _check_alpha(cvar_alpha)
        angles = _check_angles(gammas, betas)
        with _single_threaded_blas():
            psi = self._evolve(*angles)
            if alpha == 1.0:
                return self._mean_energy(psi)
            return self.cvar(np.square(psi.real) + np.square(psi.imag), alpha)

    def cvar(self, probabilities: np.ndarray, alpha: float) -> float:
        """Exact ``CVaR_alpha`` of the energy under ``probabilities`` (mass outside the mixer's support,
        zero up to rounding for the XY mixer, is ignored)."""
        alpha = _check_alpha(alpha)
        p = np.asarray(probabilities, dtype=float)
        if p.shape != (self.dim,):
            raise InvalidValueError(f"probabilities must have length 2**n = {self.dim}, got shape {p.shape}")
        p = p[self._sorted_states]
        total = p.sum()
        cum = np.cumsum(p)
        target = alpha * total
        i = min(int(np.searchsorted(cum, target)), p.size - 1)
        below = cum[i - 1] if i > 0 else 0.0
        head = float(np.dot(p[:i], self._sorted_energies[:i]))
        return (head + (target - below) * float(self._sorted_energies[i])) / target

    # -- kernels ------------------------------------------------------------------------------
    def _chunked(self, work: Callable[[int, int], Any], size: int | None = None) -> list:
        """Run ``work(lo, hi)`` over ``[0, size)`` (default: the state) split in ``threads`` contiguous
        ranges (multiples of ``_CHUNK`` for the state); results in order."""
        if size is None:
            size, align = self.dim, _CHUNK
            if self.threads == 1 or self.dim < _PARALLEL_MIN:
                return [work(0, size)]
        else:
            align = 1
            if self.threads == 1 or size == 1:
                return [work(0, size)]
        step = -(-size // self.threads)
        step = -(-step // align) * align
        ranges = [(lo, min(lo + step, size)) for lo in range(0, size, step)]
        futures = [_pool().submit(work, lo, hi) for lo, hi in ranges[1:]]
        first = work(*ranges[0])
        return [first] + [f.result() for f in futures]

    def _mixer_matrices(self, beta: float) -> dict[tuple[int, bool], np.ndarray]:
        """The Kronecker blocks of the mixer at ``beta``, by ``(width, padded)``."""
        c, s = math.cos(beta), math.sin(beta)
        if self.mixer == "x":
            unit, per = np.array([[c, -1j * s], [-1j * s, c]]), 1
        else:
            unit, per = np.array([[1, 0, 0, 0], [0, c, -1j * s, 0], [0, -1j * s, c, 0], [0, 0, 0, 1]],
                                 dtype=complex), 2
        out: dict[tuple[int, bool], np.ndarray] = {}
        for _, w, padded in self._chunk_blocks + self._global_blocks:
            if (w, padded) not in out:
                u = _kron_power(unit, (w - padded) // per)
                out[(w, padded)] = np.kron(u, np.eye(2)) if padded else u
        return out

    def _layer_in_chunks(self, psi: np.ndarray, gamma: float, mats: dict) -> None:
        """Phase, then the mixer blocks on the lowest ``_LOW_QUBITS`` qubits, chunk by chunk (in cache)."""
        size = 1 << self._low
        table = None
        if self._grid is not None and abs(gamma) * self._step / 2 <= _TABLE_MAX_ANGLE:
            coarse, fine = self._grid
            table = np.multiply.outer(np.exp(-1j * gamma * coarse), np.exp(-1j * gamma * fine)).ravel()
        blocks = [(j, w, mats[(w, padded)]) for j, w, padded in self._chunk_blocks]
        diag = self.diag

        def work(c0: int, c1: int) -> None:
            t, t2 = np.empty(size), np.empty(size)
            ph, scratch = np.empty(size, dtype=complex), np.empty(size, dtype=complex)
            re, im = ph.real, ph.imag
            for ci in range(c0, c1):
                s, e = ci * size, (ci + 1) * size
                x = psi[s:e]
                if table is None:
                    np.multiply(diag[s:e], -gamma, out=t)
                    np.cos(t, out=re)
                    np.sin(t, out=im)
                else:
                    # exp(-i gamma diag) = table[level] * exp(-i t), t = gamma * rest, |t| <= 1e-3:
                    # cos t = 1 - t^2/2 + t^4/24, sin t = t - t^3/6 (dropped terms < 1e-17)
                    np.multiply(self._rest[s:e], gamma, out=t)
                    np.multiply(t, t, out=t2)
                    np.multiply(t2, 1.0 / 24.0, out=re)
                    re -= 0.5
                    re *= t2
                    re += 1.0
                    np.multiply(t2, 1.0 / 6.0, out=im)
                    im -= 1.0
                    im *= t
                    x *= np.take(table, self._level[s:e], out=scratch)
                x *= ph
                src, dst = x, scratch
                for j, w, u in blocks:
                    _apply_block(src, dst, j, w, u)
                    src, dst = dst, src
                if src is not x:
                    x[...] = src

        self._chunked(work, self.dim >> self._low)

    def _closing_edge(self, psi: np.ndarray, spare: np.ndarray, beta: float) -> None:
        """``exp(-i beta (X_{n-1} X_0 + Y_{n-1} Y_0)/2)``: rotate ``|q_{n-1} q_0> = |01>`` with ``|10>``."""
        c, s = math.cos(beta), math.sin(beta)
        v = psi.reshape(2, self.dim >> 2, 2)
        tmp = spare[: self.dim >> 2]

        def work(lo: int, hi: int) -> None:
            a, b, t = v[0, lo:hi, 1], v[1, lo:hi, 0], tmp[lo:hi]
            np.multiply(b, -1j * s, out=t)
            t += c * a  # the new a
            b *= c
            b += (-1j * s) * a
            a[...] = t

        if self.dim >> 2 >= _PARALLEL_MIN:
            self._chunked(work, self.dim >> 2)
        else:
            work(0, self.dim >> 2)

    def _mean_energy(self, psi: np.ndarray) -> float:
        diag = self.diag

        def work(lo: int, hi: int) -> float:
            acc = 0.0
            t = np.empty(min(_CHUNK, hi - lo))
            u = np.empty_like(t)
            for s in range(lo, hi, _CHUNK):
                e = min(s + _CHUNK, hi)
                m = e - s
                np.multiply(psi.real[s:e], psi.real[s:e], out=t[:m])
                np.multiply(psi.imag[s:e], psi.imag[s:e], out=u[:m])
                t[:m] += u[:m]
                acc += float(np.dot(t[:m], diag[s:e]))
            return acc

        return float(sum(self._chunked(work)))

    def _evolve(self, gammas: np.ndarray, betas: np.ndarray) -> np.ndarray:
        """Final state in an internal buffer (overwritten by the next call). Call it with BLAS on one
        thread (:func:`_single_threaded_blas`): the work is already split over the pool's threads."""
        psi, spare = self._bufs
        self._start(psi)
        for gamma, beta in zip(gammas, betas, strict=True):
            mats = self._mixer_matrices(float(beta))
            self._layer_in_chunks(psi, float(gamma), mats)
            for j, w, padded in self._global_blocks:
                _apply_block(psi, spare, j, w, mats[(w, padded)], self.threads)
                psi, spare = spare, psi
            if self.mixer == "xy" and self.n > 2:
                self._closing_edge(psi, spare, float(beta))
        return psi

# ----------------------------------------------------------------------------------------------
# Qiskit circuits
# ----------------------------------------------------------------------------------------------

def _ising_operator(ising) -> tuple[SparsePauliOp, float | None]:
    """Accept a SparsePauliOp or a ``(SparsePauliOp, offset)`` pair (``model.to_ising()``)."""
    from qiskit.quantum_info import SparsePauliOp

    offset = None
    if isinstance(ising, tuple):
        if len(ising) != 2:
            raise InvalidValueError("ising must be a SparsePauliOp or a (SparsePauliOp, offset) pair")
        ising, offset = ising
        offset = float(offset)
    if not isinstance(ising, SparsePauliOp):
        raise InvalidValueError(f"ising must be a qiskit.quantum_info.SparsePauliOp (Z / ZZ terms), got "
                                f"{type(ising).__name__}")
    coeffs = np.asarray(ising.coeffs)
    if np.abs(coeffs.imag).max(initial=0.0) > 1e-12 * max(1.0, np.abs(coeffs).max(initial=0.0)):
        raise InvalidValueError("ising has complex coefficients; a cost Hamiltonian needs real ones")
    if ising.paulis.x.any():
        labels = [lab for lab, x in zip(ising.paulis.to_labels(), ising.paulis.x.any(axis=1), strict=True) if x]
        raise InvalidValueError(f"ising must hold only Z / ZZ terms (a diagonal cost); found X/Y in {labels[:5]}")
    weights = ising.paulis.z.sum(axis=1)
    if (weights > 2).any():
        raise InvalidValueError(f"ising must hold only Z / ZZ terms; found a term on {int(weights.max())} qubits")
    return ising, offset


def ising_diagonal(ising) -> np.ndarray:
    """Diagonal of a Z/ZZ ``SparsePauliOp`` (plus the offset of a ``(op, offset)`` pair): ``E[i] = <i|H|i>``,
    little-endian, with ``Z|1> = -|1>``."""
    op, offset = _ising_operator(ising)
    n = op.num_qubits
    idx = np.arange(1 << n, dtype=np.int64)
    bits = [((idx >> j) & 1).astype(np.int8) for j in range(n)]
    out = np.full(1 << n, 0.0 if offset is None else offset)
    for z, coeff in zip(op.paulis.z, np.asarray(op.coeffs).real, strict=True):
        qs = np.flatnonzero(z)
        if qs.size == 0:
            out += coeff
        elif qs.size == 1:
            out += coeff * (1 - 2 * bits[qs[0]])
        else:
            out += coeff * (1 - 2 * (bits[qs[0]] ^ bits[qs[1]]))
    return out


def _dicke_gates(qc: QuantumCircuit, n: int, k: int) -> None:
    """Deterministic Dicke-state preparation (Bärtschi & Eidenbenz, FCT 2019), O(n k) CX and CRY gates.

    Starts from ``|0...0 1...1>`` (qubits ``0..k-1`` set) and applies the split-and-cyclic-shift
    unitaries ``SCS_{m, min(k, m-1)}`` for ``m = n .. 2``; qubit ``m-1`` (0-based) plays the role of
    the paper's qubit ``m`` with the order of the qubits reversed.
    """
    # Paper: qubits 1..n, start |0^{n-k} 1^k> with the ones on qubits n-k+1..n. Map paper qubit q -> n - q.
    def phys(q: int) -> int:
        return n - q

    for q in range(n - k + 1, n + 1):
        qc.x(phys(q))

    def scs(m: int, kk: int) -> None:
        # gate (i) on paper qubits m-1, m
        a, b = phys(m - 1), phys(m)
        qc.cx(a, b)
        qc.cry(2 * math.acos(math.sqrt(1 / m)), b, a)
        qc.cx(a, b)
        # gates (ii)_l on paper qubits m-l, m-l+1, m for l = 2..kk
        for ll in range(2, kk + 1):
            a, c = phys(m - ll), phys(m - ll + 1)
            half = math.acos(math.sqrt(ll / m))  # CCRY(2 half) controlled by b, c on a, as CRY(half)^2
            qc.cx(a, b)
            qc.cry(half, c, a)   # (Barenco et al. 1995: C^2 U from controlled V, V^2 = U)
            qc.cx(b, c)
            qc.cry(-half, c, a)
            qc.cx(b, c)
            qc.cry(half, b, a)
            qc.cx(a, b)

    for m in range(n, k, -1):
        scs(m, k)
    for m in range(k, 1, -1):
        scs(m, m - 1)


def qaoa_circuit(ising, reps: int, *, mixer: str = "x", k: int | None = None, measure: bool = False,
                 dicke: str = "gates") -> QuantumCircuit:
    """The QAOA ansatz as a parameterized Qiskit circuit.

    ``ising``: a ``SparsePauliOp`` with only Z / ZZ terms (or ``model.to_ising()``'s ``(op, offset)``; the
    offset is a global phase and is dropped). Parameters ``gamma[0..p-1]``, ``beta[0..p-1]``
    (``ParameterVector``; bind them by name: Qiskit sorts ``beta`` before ``gamma``). Cost layer:
    ``RZ(2 c gamma)`` per ``c Z_j`` and ``RZZ(2 c gamma)`` per ``c Z_i Z_j`` (``exp(-i gamma H)`` up to a
    global phase); X mixer ``RX(2 beta)``; XY mixer ``XXPlusYYGate(2 beta)`` (``= exp(-i beta (XX+YY)/2)``)
    on the ring edges in parity order. The Dicke start is built from gates (``dicke="gates"``,
    O(n k) CX / CRY) or by ``initialize`` of the exact vector (``dicke="initialize"``, small n).
    ``measure=True`` appends ``measure_all``.
    """
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector
    from qiskit.circuit.library import XXPlusYYGate

    op, _ = _ising_operator(ising)
    reps = _check_reps(reps)
    n = op.num_qubits
    k = _check_mixer(mixer, k, n)
    if dicke not in DICKE_PREPARATIONS:
        raise UnknownOptionError("Dicke-state preparation", dicke, DICKE_PREPARATIONS)
    gamma, beta = ParameterVector("gamma", reps), ParameterVector("beta", reps)
    qc = QuantumCircuit(n, name=f"QAOA(p={reps}, mixer={mixer})")
    if mixer == "x":
        qc.h(range(n))
    elif dicke == "initialize":
        qc.initialize(dicke_state(n, k), range(n))
    else:
        _dicke_gates(qc, n, k)
    terms = [(np.flatnonzero(z), float(c)) for z, c in zip(op.paulis.z, np.asarray(op.coeffs).real, strict=True)]
    terms = [(qs, c) for qs, c in terms if qs.size and c != 0.0]
    edges = ring_edges(n) if mixer == "xy" else []
    for layer in range(reps):
        for qs, c in terms:
            if qs.size == 1:
                qc.rz(2 * c * gamma[layer], int(qs[0]))
            else:
                qc.rzz(2 * c * gamma[layer], int(qs[0]), int(qs[1]))
        if mixer == "x":
            qc.rx(2 * beta[layer], range(n))
        else:
            for i, j in edges:
                qc.append(XXPlusYYGate(2 * beta[layer]), [i, j])
    if measure:
        qc.measure_all()
    return qc


def bind_angles(circuit: QuantumCircuit, gammas, betas) -> QuantumCircuit:
    """``circuit`` (from :func:`qaoa_circuit`) with ``gamma[i] = gammas[i]``, ``beta[i] = betas[i]`` bound."""
    g, b = _check_angles(gammas, betas)
    return circuit.assign_parameters(_parameter_values(circuit, g, b))


def _parameter_values(circuit: QuantumCircuit, gammas: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """Values in ``circuit.parameters`` order."""
    params = list(circuit.parameters)
    if len(params) != gammas.size + betas.size:
        raise InvalidValueError(f"the circuit has {len(params)} parameters; got {gammas.size} gammas and "
                                f"{betas.size} betas")
    out = np.empty(len(params))
    for i, prm in enumerate(params):
        vec = getattr(prm, "vector", None)
        if vec is None or vec.name not in ("gamma", "beta"):
            raise InvalidValueError(f"unexpected circuit parameter {prm.name!r}; expected gamma[i] / beta[i]")
        out[i] = (gammas if vec.name == "gamma" else betas)[prm.index]
    return out


# ----------------------------------------------------------------------------------------------
# parameters
# ----------------------------------------------------------------------------------------------

def initial_parameters(reps: int, init: str = "linear_ramp", *, rng: np.random.Generator | int | None = None,
                       delta: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Starting angles ``(gammas, betas)`` for ``reps`` layers (for the normalized cost of :func:`run_qaoa`).

    * ``"linear_ramp"``: ``gamma_i = (i + 1/2)/p * delta``, ``beta_i = -(1 - (i + 1/2)/p) * delta``
      (``delta`` default :data:`LINEAR_RAMP_DELTA` = 1.0, the same for every ``p``: the ramp's angles
      stay in ``(0, delta)``).
    * ``"tqa"``: the trotterized quantum annealing schedule (Sack & Serbyn 2021) with time step
      ``dt = delta`` (default :data:`TQA_DT` = 0.75): total time ``T = p dt``, ``t_i = (i + 1/2) dt``,
      ``gamma_i = (t_i / T) dt``, ``beta_i = -(1 - t_i / T) dt``.
    * ``"random"``: ``gamma ~ U(0, RANDOM_GAMMA_MAX = 1.5)``, ``beta ~ U(-pi/4, pi/4)`` from ``rng``.

    The negative betas follow the sign convention of the module docstring (annealing to the minimum).
    """
    reps = _check_reps(reps)
    if init not in INITS:
        raise UnknownOptionError("QAOA initialization", init, INITS)
    if delta is not None:
        delta = float(delta)
        if not math.isfinite(delta) or delta <= 0:
            raise InvalidValueError(f"delta must be a positive finite number, got {delta!r}")
    frac = (np.arange(reps) + 0.5) / reps
    if init == "linear_ramp":
        d = LINEAR_RAMP_DELTA if delta is None else delta
        return frac * d, -(1.0 - frac) * d
    if init == "tqa":
        dt = TQA_DT if delta is None else delta
        return frac * dt, -(1.0 - frac) * dt
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return gen.uniform(0.0, RANDOM_GAMMA_MAX, reps), gen.uniform(-RANDOM_BETA_MAX, RANDOM_BETA_MAX, reps)


# ----------------------------------------------------------------------------------------------
# the optimization loop
# ----------------------------------------------------------------------------------------------

@dataclass
class QAOARun:
    """Result of :func:`run_qaoa`.

    ``gammas``/``betas``: the best angles (for the normalized cost; see the module docstring).
    ``energy``: the optimized objective (expectation, or CVaR for ``cvar_alpha < 1``) in the caller's units.
    ``probabilities``: exact final distribution (numpy and qiskit backends; ``None`` for aer).
    ``counts``: ``shots`` samples of the final state, bitstring keys with qubit 0 rightmost (Qiskit's
    convention), or ``None``. ``restarts``: one dict per start (``init``, ``start_gammas``,
    ``start_betas``, ``start_energy``, ``final_energy``, ``evaluations``, ``gammas``, ``betas``).
    ``history``: the objective (caller's units) at every evaluation of the winning start.
    ``evaluations``: energy evaluations over all starts.
    """

    gammas: np.ndarray
    betas: np.ndarray
    energy: float
    probabilities: np.ndarray | None
    counts: dict[str, int] | None
    evaluations: int
    restarts: list[dict]
    history: list[float]
    wall_time_s: float
    backend: str
    mixer: str
    reps: int
    cvar_alpha: float
    optimizer: str
    seed: int
    energy_scale: float
    energy_shift: float = 0.0
    k: int | None = None
    n_qubits: int = 0
    versions: dict = field(default_factory=dict)

    @property
    def best_start(self) -> dict:
        """The restart that produced the result."""
        return min(self.restarts, key=lambda r: r["final_energy"])

    def most_likely(self, top: int = 1) -> list[tuple[int, float]]:
        """The ``top`` most probable basis states as ``(index, probability)`` (needs ``probabilities``)."""
        if self.probabilities is None:
            raise InvalidValueError("this run kept no exact probabilities (aer backend); use counts")
        idx = np.argsort(-self.probabilities, kind="stable")[:top]
        return [(int(i), float(self.probabilities[i])) for i in idx]


def _versions() -> dict:
    from qpo.quantum.formulation import package_versions

    return package_versions(("numpy", "scipy", "qiskit", "qiskit-aer"))


class _BudgetSpent(Exception):
    pass


def _minimize(fun: Callable[[np.ndarray], float], x0: np.ndarray, method: str, maxiter: int
              ) -> tuple[float, np.ndarray, list[float]]:
    """Minimize ``fun`` from ``x0`` with at most ``maxiter`` evaluations; the best point seen wins."""
    from scipy.optimize import minimize

    history: list[float] = []
    best = [math.inf, x0.copy()]

    def wrapped(x: np.ndarray) -> float:
        if len(history) >= maxiter:
            raise _BudgetSpent
        v = float(fun(np.asarray(x, dtype=float)))
        history.append(v)
        if v < best[0]:
            best[0], best[1] = v, np.array(x, dtype=float)
        return v

    options: dict[str, Any]
    if method == "COBYLA":
        # COBYLA wants at least n + 2 evaluations; the wrapper above enforces the budget either way
        options = {"maxiter": max(maxiter, x0.size + 2), "rhobeg": INITIAL_STEP, "tol": 1e-6}
    elif method == "Nelder-Mead":
        simplex = np.vstack([x0] + [x0 + INITIAL_STEP * e for e in np.eye(x0.size)])
        options = {"maxfev": maxiter, "xatol": 1e-6, "fatol": 1e-10, "initial_simplex": simplex}
    elif method == "Powell":
        options = {"maxfev": maxiter, "xtol": 1e-6, "ftol": 1e-10}
    else:  # L-BFGS-B, finite-difference gradient
        options = {"maxfun": maxiter, "ftol": 1e-12, "gtol": 1e-8}
    try:
        minimize(wrapped, x0, method=method, options=options)
    except _BudgetSpent:
        pass
    except (ValueError, ArithmeticError) as exc:
        raise SolverError(f"scipy {method} failed while optimizing the QAOA angles ({exc}); try another "
                          f"optimizer ({', '.join(OPTIMIZERS)}) or fewer layers") from exc
    if not history:
        raise SolverError(f"scipy {method} made no energy evaluation; check maxiter")
    return best[0], best[1], history


def _normalization(diag: np.ndarray, support: np.ndarray | None) -> tuple[float, float]:
    e = diag if support is None else diag[support]
    shift = float(e.mean())
    scale = float(e.std())
    if not math.isfinite(scale) or scale <= 1e-12 * max(1.0, abs(shift)):
        scale = 1.0
    return shift, scale


class _QiskitEvaluator:
    """Energy (or CVaR) evaluations through Qiskit primitives on :func:`qaoa_circuit`."""

    def __init__(self, backend: str, ising, diag: np.ndarray, reps: int, mixer: str, k: int | None,
                 cvar_alpha: float, shots: int | None, seed: int):
        op, offset = _ising_operator(ising)
        n = diag.size.bit_length() - 1
        if op.num_qubits != n:
            raise InvalidValueError(f"ising acts on {op.num_qubits} qubits but diag has 2**{n} entries")
        resid = diag - ising_diagonal(op)
        if offset is None:
            offset = float(resid.mean())
        tol = 1e-8 * max(1.0, float(np.abs(diag).max()))
        if np.abs(resid - offset).max() > tol:
            raise InvalidValueError(f"ising (+ offset) does not reproduce diag: largest difference "
                                    f"{float(np.abs(resid - offset).max()):.3g}; pass the model's own to_ising()")
        self.backend, self.op, self.offset, self.diag = backend, op, offset, diag
        self.cvar_alpha, self.seed = cvar_alpha, seed
        self.shots = shots if shots is not None else CVAR_SAMPLER_SHOTS
        self.circuit = qaoa_circuit(op, reps, mixer=mixer, k=k)
        self.measured = qaoa_circuit(op, reps, mixer=mixer, k=k, measure=True)
        if backend == "aer":
            from qiskit import transpile
            from qiskit_aer import AerSimulator
            from qiskit_aer.primitives import EstimatorV2, SamplerV2

            sim = AerSimulator(method="statevector")
            self.circuit = transpile(self.circuit, sim, optimization_level=0)
            self.measured = transpile(self.measured, sim, optimization_level=0)
            self.estimator = EstimatorV2(options={"backend_options": {"method": "statevector"},
                                                  "run_options": {"seed_simulator": seed}})
            self.sampler = SamplerV2(seed=seed, options={"backend_options": {"method": "statevector"}})
        else:
            from qiskit.primitives import StatevectorEstimator, StatevectorSampler

            self.estimator = StatevectorEstimator(seed=seed)
            self.sampler = StatevectorSampler(seed=seed)

    def energy(self, gammas: np.ndarray, betas: np.ndarray) -> float:
        """Expectation (or sampled CVaR) in the caller's units."""
        if self.cvar_alpha == 1.0:
            values = _parameter_values(self.circuit, gammas, betas)
            res = self.estimator.run([(self.circuit, self.op, values)]).result()
            return float(np.real(res[0].data.evs)) + self.offset
        counts = self.sample(gammas, betas, self.shots)
        idx = np.array([int(b, 2) for b in counts])
        freq = np.array(list(counts.values()), dtype=float)
        e = self.diag[idx]
        order = np.argsort(e, kind="stable")
        e, freq = e[order], freq[order] / freq.sum()
        cum = np.cumsum(freq)
        i = min(int(np.searchsorted(cum, self.cvar_alpha)), e.size - 1)
        below = cum[i - 1] if i > 0 else 0.0
        return float((np.dot(freq[:i], e[:i]) + (self.cvar_alpha - below) * e[i]) / self.cvar_alpha)

    def sample(self, gammas: np.ndarray, betas: np.ndarray, shots: int) -> dict[str, int]:
        values = _parameter_values(self.measured, gammas, betas)
        res = self.sampler.run([(self.measured, values)], shots=shots).result()
        return {key: int(v) for key, v in res[0].data.meas.get_counts().items()}

    def probabilities(self, gammas: np.ndarray, betas: np.ndarray) -> np.ndarray | None:
        if self.backend != "qiskit":
            return None
        from qiskit.quantum_info import Statevector

        bound = self.circuit.assign_parameters(_parameter_values(self.circuit, gammas, betas))
        return Statevector(bound).probabilities()


def run_qaoa(diag, *, reps: int = 1, mixer: str = "x", k: int | None = None, cvar_alpha: float = 1.0,
             inits: Sequence[str] = ("linear_ramp", "tqa"), n_random: int = 0, optimizer: str = "COBYLA",
             maxiter: int = 200, shots: int | None = None, seed: int = 0, backend: str = "numpy",
             ising=None) -> QAOARun:
    """Optimize QAOA angles for the cost ``diag`` (energy of each of the ``2**n`` bitstrings).

    Each start (one per name in ``inits``, plus ``n_random`` seeded random starts) is optimized by scipy
    ``optimizer`` (``COBYLA``, ``Nelder-Mead``, ``L-BFGS-B`` with a finite-difference gradient, ``Powell``)
    with at most ``maxiter`` energy evaluations; the best start wins. The objective is the expectation
    (``cvar_alpha=1``) or ``CVaR_alpha`` of the normalized cost (module docstring); ``energy`` and
    ``history`` are reported in ``diag``'s units.

    ``backend="numpy"``: :class:`StatevectorQAOA` (exact). ``"qiskit"`` / ``"aer"``: each evaluation runs
    :func:`qaoa_circuit` through Qiskit's ``StatevectorEstimator`` / qiskit-aer's ``EstimatorV2``
    (statevector, exact); with ``cvar_alpha < 1`` through the ``SamplerV2`` with ``shots`` (default
    :data:`CVAR_SAMPLER_SHOTS`) samples per evaluation. These need ``ising`` (``model.to_ising()`` or a
    Z/ZZ ``SparsePauliOp``, checked against ``diag``; a missing offset is inferred).

    ``shots=None``: exact probabilities only; an int: also ``shots`` seeded samples of the final state in
    ``counts`` (keys: Qiskit's convention, qubit 0 rightmost). Same ``seed`` -> identical result.
    """
    t0 = time.perf_counter()
    diag, n = _check_diag(diag)
    reps = _check_reps(reps)
    k = _check_mixer(mixer, k, n)
    alpha = _check_alpha(cvar_alpha)
    if optimizer not in OPTIMIZERS:
        raise UnknownOptionError("optimizer", optimizer, OPTIMIZERS)
    if backend not in BACKENDS:
        raise UnknownOptionError("QAOA backend", backend, BACKENDS)
    if isinstance(inits, str):
        inits = (inits,)
    for name in inits:
        if name not in INITS:
            raise UnknownOptionError("QAOA initialization", name, INITS)
    if isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer)) or n_random < 0:
        raise InvalidValueError(f"n_random must be an integer >= 0, got {n_random!r}")
    if not inits and n_random == 0:
        raise InvalidValueError("no starting point: give at least one name in inits or n_random >= 1")
    if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 1:
        raise InvalidValueError(f"maxiter (evaluations per start) must be an integer >= 1, got {maxiter!r}")
    if shots is not None and (isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1):
        raise InvalidValueError(f"shots must be None (exact probabilities) or an integer >= 1, got {shots!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidValueError(f"seed must be an integer >= 0, got {seed!r}")
    if backend != "numpy" and ising is None:
        raise InvalidValueError(f"backend {backend!r} runs the Qiskit circuit and needs ising (model.to_ising() or "
                                f"a Z/ZZ SparsePauliOp)")

    support = None if mixer == "x" else np.flatnonzero(_popcount(n) == k)
    shift, scale = _normalization(diag, support)
    sim = StatevectorQAOA((diag - shift) / scale, mixer=mixer, k=k) if backend == "numpy" else None
    if sim is not None:
        def objective(x: np.ndarray) -> float:
            return sim.expectation(x[:reps], x[reps:], alpha)
    else:
        qev = _QiskitEvaluator(backend, ising, diag, reps, mixer, k, alpha, shots, int(seed))

        def objective(x: np.ndarray) -> float:
            return (qev.energy(x[:reps] / scale, x[reps:]) - shift) / scale

    init_seq, shot_seq = np.random.SeedSequence(int(seed)).spawn(2)
    rng = np.random.default_rng(init_seq)
    starts = [(name, initial_parameters(reps, name, rng=rng)) for name in inits]
    starts += [("random", initial_parameters(reps, "random", rng=rng)) for _ in range(int(n_random))]

    restarts, best = [], None
    evaluations = 0
    for name, (g0, b0) in starts:
        x0 = np.concatenate([g0, b0])
        value, x, hist = _minimize(objective, x0, optimizer, int(maxiter))
        evaluations += len(hist)
        rec = {"init": name, "start_gammas": g0.tolist(), "start_betas": b0.tolist(),
               "start_energy": hist[0] * scale + shift, "final_energy": value * scale + shift,
               "evaluations": len(hist), "gammas": x[:reps].tolist(), "betas": x[reps:].tolist()}
        restarts.append(rec)
        if best is None or value < best[0]:
            best = (value, x, hist)
    value, x, hist = best
    gammas, betas = x[:reps].copy(), x[reps:].copy()

    counts = None
    if sim is not None:
        probs = sim.probabilities(gammas, betas)
        if shots is not None:
            draws = np.random.default_rng(shot_seq).choice(probs.size, size=int(shots), p=probs / probs.sum())
            idx, cnt = np.unique(draws, return_counts=True)
            counts = {format(int(i), f"0{n}b"): int(c) for i, c in zip(idx, cnt, strict=True)}
    else:
        probs = qev.probabilities(gammas / scale, betas)
        if shots is not None:
            counts = qev.sample(gammas / scale, betas, int(shots))

    return QAOARun(gammas=gammas, betas=betas, energy=value * scale + shift, probabilities=probs, counts=counts,
                   evaluations=evaluations, restarts=restarts, history=[h * scale + shift for h in hist],
                   wall_time_s=time.perf_counter() - t0, backend=backend, mixer=mixer, reps=reps,
                   cvar_alpha=alpha, optimizer=optimizer, seed=int(seed), energy_scale=scale,
                   energy_shift=shift, k=k, n_qubits=n, versions=_versions())
