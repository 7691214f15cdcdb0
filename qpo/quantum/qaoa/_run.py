"""The QAOA run loop: :func:`run_qaoa` optimizes the angles from several starts with scipy and returns
a :class:`QAOARun`, the record of the run."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qpo._checks import package_versions, whole
from qpo.errors import InvalidValueError, SolverError, UnknownOptionError
from qpo.quantum.qaoa._backends import _QiskitEvaluator
from qpo.quantum.qaoa._inputs import BACKENDS, INITS, OPTIMIZERS, _check_alpha, _check_diag, _check_mixer, _check_reps
from qpo.quantum.qaoa._ring import _popcount
from qpo.quantum.qaoa._schedules import initial_parameters
from qpo.quantum.qaoa._statevector import StatevectorQAOA, check_memory

#: initial trust-region radius of COBYLA (and initial simplex size of Nelder-Mead), in radians
INITIAL_STEP = 0.25



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
            raise InvalidValueError("this run kept no exact probabilities (the aer backend; or a state over 2**16 "
                                    "amplitudes, which an optimize() result does not keep: its top samples are in "
                                    "result.binary.distribution, and qpo.quantum.qaoa.run_qaoa returns the whole "
                                    "state); use counts")
        idx = np.argsort(-self.probabilities, kind="stable")[:top]
        return [(int(i), float(self.probabilities[i])) for i in idx]


def _versions() -> dict:
    return package_versions(("numpy", "scipy", "qiskit", "qiskit-aer"))


class _BudgetSpent(Exception):
    pass


def _minimize(fun: Callable[[np.ndarray], float], x0: np.ndarray, method: str, maxiter: int
              ) -> tuple[float, np.ndarray, list[float]]:
    """Minimize ``fun`` from ``x0`` with at most ``maxiter`` evaluations; the best point seen wins."""
    from scipy.optimize import minimize

    history: list[float] = []
    best_value, best_x = math.inf, x0.copy()

    def wrapped(x: np.ndarray) -> float:
        nonlocal best_value, best_x
        if len(history) >= maxiter:
            raise _BudgetSpent
        v = float(fun(np.asarray(x, dtype=float)))
        history.append(v)
        if v < best_value:
            best_value, best_x = v, np.array(x, dtype=float)
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
    return best_value, best_x, history


def _normalization(diag: np.ndarray, support: np.ndarray | None) -> tuple[float, float]:
    e = diag if support is None else diag[support]
    shift = float(e.mean())
    scale = float(e.std())
    if not math.isfinite(scale) or scale <= 1e-12 * max(1.0, abs(shift)):
        scale = 1.0
    return shift, scale


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
    check_memory(n)
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
    n_random = whole("n_random", n_random, 0)
    if not inits and n_random == 0:
        raise InvalidValueError("no starting point: give at least one name in inits or n_random >= 1")
    maxiter = whole("maxiter (evaluations per start)", maxiter, 1)
    if shots is not None:
        shots = whole("shots", shots, 1, hint="or None for exact probabilities")
    seed = whole("seed", seed, 0)
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

    restarts: list[dict] = []
    finals: list[tuple[float, np.ndarray, list[float]]] = []
    evaluations = 0
    for name, (g0, b0) in starts:
        x0 = np.concatenate([g0, b0])
        value, x, hist = _minimize(objective, x0, optimizer, int(maxiter))
        evaluations += len(hist)
        rec = {"init": name, "start_gammas": g0.tolist(), "start_betas": b0.tolist(),
               "start_energy": hist[0] * scale + shift, "final_energy": value * scale + shift,
               "evaluations": len(hist), "gammas": x[:reps].tolist(), "betas": x[reps:].tolist()}
        restarts.append(rec)
        finals.append((value, x, hist))
    value, x, hist = min(finals, key=lambda t: t[0])  # the first of the best starts
    gammas, betas = x[:reps].copy(), x[reps:].copy()

    counts = None
    probs: np.ndarray | None
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
