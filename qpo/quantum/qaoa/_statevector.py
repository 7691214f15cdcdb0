"""The fast path: :class:`StatevectorQAOA`, qpo's own statevector simulation of QAOA (numpy, complex128)."""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from qpo.errors import InvalidValueError, ProblemError
from qpo.quantum.qaoa._inputs import _check_alpha, _check_angles, _check_diag, _check_mixer
from qpo.quantum.qaoa._kernels import (
    _CHUNK,
    _PARALLEL_MIN,
    _apply_block,
    _kron_power,
    _pair_blocks,
    _pool,
    _single_threaded_blas,
    _x_blocks,
)
from qpo.quantum.qaoa._ring import _popcount

_LOW_QUBITS = 14          # phase + mixer blocks on qubits 0..13 run on chunks of 2**14 states (256 KiB, in cache); even
_TABLE_BITS = 16          # phase by table: diag on a grid of 2**16 levels ...
_TABLE_MIN = 1 << 17      # ... used from this dimension up (below it the table costs more than it saves)
_TABLE_MAX_ANGLE = 1e-3   # ... while |gamma| * (half a grid step) stays below this (Taylor error < 1e-16)


def statevector_bytes(n_qubits: int) -> int:
    """Memory of one complex128 statevector: ``16 * 2**n`` bytes."""
    return 16 * 2 ** int(n_qubits)


#: bytes a QAOA run holds per basis state: two complex128 state buffers (32); the cost diagonal as
#: built (the QUBO table doubles: 8 + 4 while it grows), its normalized copy and the simulator's own
#: copy (16); the exact CVaR's support, energies, order and sorted states and energies (40); the phase
#: table's levels and remainders (10); the final probabilities (8). 8 statevectors' worth, rounded up.
QAOA_BYTES_PER_STATE = 128


def qaoa_memory_bytes(n_qubits: int) -> int:
    """Peak memory of a QAOA run on ``n_qubits`` qubits (``128 * 2**n`` bytes: the statevector and the
    copies the simulator keeps; see :data:`QAOA_BYTES_PER_STATE`)."""
    return QAOA_BYTES_PER_STATE * 2 ** int(n_qubits)


#: where the kernel mounts the cgroup file systems, and where it says which cgroups this process is in
CGROUP_ROOT = "/sys/fs/cgroup"
SELF_CGROUP = "/proc/self/cgroup"
_V1_UNLIMITED = 2 ** 60  # cgroup v1 writes "no limit" as a page-rounded 2**63 - 1


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None  # "max" (v2's no limit) and anything unreadable: None


def _cgroup_paths(self_cgroup: str | os.PathLike) -> tuple[str, str]:
    """This process's cgroup v2 path and v1 memory-controller path (``/`` when not listed)."""
    v2 = v1 = "/"
    try:
        lines = Path(self_cgroup).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return v2, v1
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2] or "/"
        elif "memory" in parts[1].split(","):
            v1 = parts[2] or "/"
    return v2, v1


def _walk_up(base: Path, sub: str) -> list[Path]:
    """``base/sub`` and each of its parents up to ``base`` (only ``base`` when ``base/sub`` is absent,
    as inside a container whose cgroup is its root)."""
    leaf = base / sub.lstrip("/")
    if not leaf.is_dir():
        return [base]
    dirs = [leaf]
    while dirs[-1] != base and base in dirs[-1].parents:
        dirs.append(dirs[-1].parent)
    return dirs


def cgroup_memory_bytes(root: str | os.PathLike | None = None,
                        self_cgroup: str | os.PathLike | None = None) -> int | None:
    """The memory this process's cgroups still allow (their limit less their usage, the least over the
    cgroup and its parents): cgroup v2 ``memory.max - memory.current``, v1 ``memory.limit_in_bytes -
    memory.usage_in_bytes`` under ``root/memory``; None when no cgroup sets a memory limit.
    ``root`` (default :data:`CGROUP_ROOT`) and ``self_cgroup`` (the ``/proc/self/cgroup`` listing,
    :data:`SELF_CGROUP`) are parameters for tests."""
    root = Path(CGROUP_ROOT if root is None else root)
    v2_path, v1_path = _cgroup_paths(SELF_CGROUP if self_cgroup is None else self_cgroup)
    left: list[int] = []
    v2_base = root if (root / "cgroup.controllers").exists() else root / "unified"
    for d in _walk_up(v2_base, v2_path):
        limit = _read_int(d / "memory.max")
        if limit is not None:
            left.append(limit - (_read_int(d / "memory.current") or 0))
    for d in _walk_up(root / "memory", v1_path):
        limit = _read_int(d / "memory.limit_in_bytes")
        if limit is not None and limit < _V1_UNLIMITED:
            left.append(limit - (_read_int(d / "memory.usage_in_bytes") or 0))
    return max(0, min(left)) if left else None


def available_memory_bytes(cgroup_root: str | os.PathLike | None = None,
                           self_cgroup: str | os.PathLike | None = None) -> int | None:
    """The memory available to a new allocation: the machine's (``MemAvailable`` of ``/proc/meminfo``, else
    the free physical pages from ``os.sysconf``), or what this process's cgroup memory limit still allows
    when that is less (:func:`cgroup_memory_bytes`: a container's or a systemd slice's limit); None when
    none of them can be read."""
    machine: int | None = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    machine = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if machine is None:
        try:
            machine = int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, OSError, ValueError):
            machine = None
    limited = cgroup_memory_bytes(cgroup_root, self_cgroup)
    known = [m for m in (machine, limited) if m is not None]
    return min(known) if known else None


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 2 ** 30:,.1f} GiB"


def check_memory(n_qubits: int, what: str = "QAOA") -> None:
    """Refuse, before anything is allocated, a run whose statevector and copies would not fit in the
    memory available now: a :class:`~qpo.errors.ProblemError` with the estimate and the free memory."""
    need = qaoa_memory_bytes(n_qubits)
    free = available_memory_bytes()
    if free is not None and need > free:
        raise ProblemError(
            f"{what} on {n_qubits} qubits needs about {gib(need)} (a {gib(statevector_bytes(n_qubits))} complex128 "
            f"statevector of 2^{n_qubits} amplitudes, plus the copies the simulator keeps: {QAOA_BYTES_PER_STATE} "
            f"bytes per basis state), but this machine has {gib(free)} available (free memory, within this process's "
            f"cgroup memory limit); lower max_qubits, choose fewer "
            f"assets, or use method='annealing' or 'exact'")


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
        check_memory(self.n, "the statevector simulation")
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
