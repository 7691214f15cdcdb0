"""Running a sampling method on a binary model: QAOA (:func:`run_qaoa_on`) and annealing
(:func:`run_annealing_on`). Each returns a :class:`MethodAnswer`: its best string, the record of the
run, what its samples were, and the full distribution the engine judges."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qpo.errors import ProblemError, UnknownOptionError
from qpo.quantum import annealing, qaoa
from qpo.quantum.annealing import AnnealingRun
from qpo.quantum.engine._quality import Distribution
from qpo.quantum.exact import index_to_bits
from qpo.quantum.formulation import BinaryModel, bitstring
from qpo.quantum.qaoa import QAOARun, statevector_bytes
from qpo.quantum.result import DistributionKind, QubitLimit, SampleDistribution

#: the most likely strings kept in diagnostics["samples"]
TOP_SAMPLES = 256

_QAOA_SOLVERS = {"numpy": "QAOA (qpo numpy statevector)", "qiskit": "QAOA (qiskit StatevectorEstimator)",
                 "aer": "QAOA (qiskit-aer)"}
_ANNEALING_SOLVERS = {"simulated_annealing": "simulated annealing (dwave-samplers)",
                      "tabu": "tabu search (dwave-samplers)", "steepest_descent": "steepest descent (dwave-samplers)",
                      "exact": "ExactCQMSolver (dimod)"}


@dataclass
class MethodAnswer:
    """What a method returned: ``x`` its best string (None when it did not run: ``refusal`` says why),
    ``run`` its record, ``distribution`` what its samples were, ``p`` (and ``p_before_polish``) the full
    distribution over decision strings for :func:`~qpo.quantum.engine.assess`."""

    x: np.ndarray | None
    solver: str | None
    run: QAOARun | AnnealingRun | QubitLimit
    distribution: SampleDistribution | None = None
    p: Distribution | None = None
    p_before_polish: Distribution | None = None
    refusal: str | None = None

    @property
    def samples_per_run(self) -> int | None:
        return None if self.distribution is None else self.distribution.samples_per_run

    @property
    def wall_time_s(self) -> float | None:
        return None if isinstance(self.run, QubitLimit) else self.run.wall_time_s


def run_qaoa_on(model: BinaryModel, o: dict, seed: int) -> MethodAnswer:
    """QAOA on ``model`` with the resolved options ``o`` (refused above ``max_qubits``)."""
    nq = model.n_qubits
    limit = o["max_qubits"]
    if nq > limit:
        reason = (f"qaoa: the model needs {nq} qubits; a statevector of {nq} qubits takes "
                  f"{_bytes(statevector_bytes(nq))} (16 x 2^{nq} bytes), above max_qubits={limit} "
                  f"({_bytes(statevector_bytes(limit))}); the exact solver answered")
        return MethodAnswer(x=None, solver=None, run=QubitLimit(qubits=nq, max_qubits=limit), refusal=reason)
    qaoa.check_memory(nq, f"qaoa (max_qubits={limit})")  # before the 2**n energies are built
    mixer = _mixer(model, o["mixer"])
    if o["backend"] == "aer" and not o["shots"]:
        raise ProblemError("backend='aer' keeps no exact probabilities of the final state, so the answer is read "
                           "from its shots: give shots= (e.g. shots=1024)")
    diagonal = model.energies()
    ising = model.to_ising()[0] if o["backend"] != "numpy" else None
    run = qaoa.run_qaoa(diagonal, reps=o["reps"], mixer=mixer, k=model.k if mixer == "xy" else None,
                        cvar_alpha=o["cvar_alpha"], inits=tuple(o["inits"]), n_random=o["n_random"],
                        optimizer=o["optimizer"], maxiter=o["maxiter"], shots=o["shots"], seed=seed,
                        backend=o["backend"], ising=ising)
    m = model.n_variables
    mask = (1 << m) - 1
    # the distribution over decision strings (slack bits summed out)
    p: np.ndarray | None
    if run.probabilities is not None:
        p = np.bincount(np.arange(len(run.probabilities)) & mask, weights=run.probabilities, minlength=1 << m)
        kind = DistributionKind.EXACT_STATEVECTOR
    else:
        p = _counts_to_decision(run.counts, m)
        kind = DistributionKind.SAMPLED
    # the answer: the best feasible string the shots saw (or the most likely feasible one without shots)
    counts = _counts_to_decision(run.counts, m) if run.counts else None
    if counts is not None:
        x = _best_string(model, counts)
    elif p is not None:
        x = _most_likely_string(model, p)
    else:  # refused above: aer without shots
        raise ProblemError("the QAOA run kept neither its final state nor any shot")
    shot_counts = None
    if counts is not None:
        shot_counts = {bitstring(index_to_bits(i, m)): int(c) for i, c in
                       sorted(((i, c) for i, c in enumerate(counts) if c), key=lambda t: -t[1])[:TOP_SAMPLES]}
    dist = SampleDistribution(kind=kind, samples=_top_samples(p, m, kind), counts=shot_counts,
                              samples_per_run=int(o["shots"]) if o["shots"] else None)
    solver = _QAOA_SOLVERS.get(run.backend, f"QAOA ({run.backend})")
    return MethodAnswer(x=x, solver=solver, run=run, distribution=dist, p=p)


def run_annealing_on(model: BinaryModel, o: dict, seed: int) -> MethodAnswer:
    """An annealing sampler on ``model`` with the resolved options ``o``."""
    run = annealing.run_annealing(model, sampler=o["sampler"], num_reads=o["num_reads"], num_sweeps=o["num_sweeps"],
                                  penalty_sweep=o["penalty_sweep"], polish=o["polish"], seed=seed,
                                  time_limit=o["time_limit"])
    raw = SampleDistribution(kind=DistributionKind.SAMPLED, samples=_top_counts(run.raw_counts),
                             samples_per_run=run.n_reads)
    dist = SampleDistribution(kind=DistributionKind.SAMPLED, samples=_top_counts(run.counts),
                              samples_per_run=run.n_reads, before_polish=raw)
    return MethodAnswer(x=np.asarray(run.x, float), solver=_ANNEALING_SOLVERS.get(run.sampler, run.sampler), run=run,
                        distribution=dist, p=_sparse_counts(run.counts), p_before_polish=_sparse_counts(run.raw_counts))


def _mixer(model: BinaryModel, mixer: str) -> str:
    exact_k = model.kind == "selection" and model.cardinality == "exact"
    if mixer == "auto":
        return "xy" if exact_k and model.k is not None and 0 < model.k < model.n_assets else "x"
    if mixer == "xy" and not exact_k:
        raise ProblemError("the XY mixer keeps the number of chosen assets fixed, so it needs an exact-cardinality "
                           f"selection (cardinality='exact'); this is a {model.kind} model"
                           + (f" with cardinality={model.cardinality!r}" if model.kind == "selection" else "")
                           + ". Use mixer='x' (penalties)")
    if mixer not in ("x", "xy"):
        raise UnknownOptionError("QAOA mixer", mixer, ("auto", "x", "xy"))
    return mixer


def _top_counts(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda t: -t[1])[:TOP_SAMPLES])


def _sparse_counts(counts: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Reads as (bits (s, m), counts (s,)), bitstrings in variable order (left = variable 0)."""
    strings = list(counts)
    X = np.array([[c == "1" for c in s] for s in strings], dtype=float)
    return X, np.array([counts[s] for s in strings], dtype=float)


def _counts_to_decision(counts: dict | None, m: int) -> np.ndarray | None:
    """Qiskit-ordered counts (qubit 0 rightmost, slack bits on the left) -> counts per decision index."""
    if not counts:
        return None
    out = np.zeros(1 << m)
    mask = (1 << m) - 1
    for s, c in counts.items():
        out[int(s, 2) & mask] += c
    return out


def _most_likely_string(model: BinaryModel, p: np.ndarray) -> np.ndarray:
    """Without shots: the most likely feasible string of the exact distribution (else the most likely)."""
    m = model.n_variables
    order = np.argsort(-p, kind="stable")
    for start in range(0, len(order), 4096):
        idx = order[start:start + 4096]
        idx = idx[p[idx] > 0]
        if not len(idx):
            break
        ok = model.is_feasible(index_to_bits(idx, m))
        if np.any(ok):
            return index_to_bits(int(idx[int(np.argmax(ok))]), m)
    return index_to_bits(int(order[0]), m)


def _best_string(model: BinaryModel, weights: np.ndarray) -> np.ndarray:
    """The lowest-objective feasible string with positive weight; if none is feasible, the most likely."""
    m = model.n_variables
    support = np.flatnonzero(weights > 0)
    X = index_to_bits(support, m)
    ok = model.is_feasible(X) if len(support) else np.zeros(0, bool)
    if np.any(ok):
        f = model.objective(X[ok])
        return X[ok][int(np.argmin(f))]
    return index_to_bits(int(np.argmax(weights)), m)


def _top_samples(p: np.ndarray | None, m: int, kind: DistributionKind) -> dict:
    if p is None:
        return {}
    nz = np.flatnonzero(p)
    top = nz[np.argsort(-p[nz], kind="stable")[:TOP_SAMPLES]]
    conv = float if kind is DistributionKind.EXACT_STATEVECTOR else int
    return {bitstring(index_to_bits(i, m)): conv(p[i]) for i in top}


def _bytes(n: int) -> str:
    for unit, size in (("TiB", 2 ** 40), ("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"
