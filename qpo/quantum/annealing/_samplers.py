"""The local samplers of dwave-samplers and dimod, their default budgets and options, and the checks of
:func:`run_annealing`'s inputs."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qpo._checks import package_versions, positive, whole
from qpo.errors import InvalidValueError, ProblemError, UnknownOptionError
from qpo.quantum.formulation import BinaryModel

SAMPLERS = ("simulated_annealing", "tabu", "steepest_descent", "exact")
#: ExactCQMSolver enumerates 2**n_variables strings; 20 bits are ~1M rows (a few seconds)
EXACT_MAX_VARIABLES = 20
#: how many distinct reads (best first) get the greedy repair / the feasible local search

# parameters run_annealing sets itself (not accepted among **sampler_options)
_MANAGED = {
    "simulated_annealing": {"num_reads", "num_sweeps", "seed", "interrupt_function"},
    "tabu": {"num_reads", "seed"},
    "steepest_descent": {"num_reads", "seed"},
    "exact": set(),
}


def default_budget(sampler: str, n_qubits: int) -> dict:
    """The default effort of ``sampler`` on a BQM of ``n_qubits`` variables (see the module notes)."""
    m = max(int(n_qubits), 1)
    if sampler == "simulated_annealing":
        return {"num_reads": 16, "num_sweeps": int(np.clip(5 * m, 100, 1000))}
    if sampler == "tabu":
        return {"num_reads": 8, "num_restarts": 4, "timeout": None}
    if sampler == "steepest_descent":
        return {"num_reads": int(np.clip(m, 100, 1000))}
    if sampler == "exact":
        return {}
    raise UnknownOptionError("sampler", sampler, SAMPLERS)


def sampler_parameters(sampler: str) -> tuple[str, ...]:
    """The options ``run_annealing(..., sampler=sampler, **options)`` accepts (from the sampler's
    ``parameters``, without those run_annealing sets itself)."""
    return tuple(sorted(_valid_options(sampler, _make_sampler(sampler))))


def _valid_options(sampler: str, s) -> set[str]:
    if sampler == "exact":  # ExactCQMSolver lists no parameters but takes its feasibility tolerances
        return {"rtol", "atol"}
    return set(s.parameters) - _MANAGED[sampler]


def _make_sampler(sampler: str):
    if sampler == "simulated_annealing":
        from dwave.samplers import SimulatedAnnealingSampler
        return SimulatedAnnealingSampler()
    if sampler == "tabu":
        from dwave.samplers import TabuSampler
        return TabuSampler()
    if sampler == "steepest_descent":
        from dwave.samplers import SteepestDescentSolver
        return SteepestDescentSolver()
    if sampler == "exact":
        from dimod import ExactCQMSolver
        return ExactCQMSolver()
    raise UnknownOptionError("sampler", sampler, SAMPLERS)


def _ordered(ss, labels: list[str]) -> np.ndarray:
    """The sample set's reads as an int8 array with columns in ``labels`` order (one row per read,
    repeated by ``num_occurrences``)."""
    rec = ss.record
    cols = [ss.variables.index(v) for v in labels]
    arr = np.asarray(rec.sample, dtype=np.int8)[:, cols]
    occ = np.asarray(rec.num_occurrences, dtype=np.int64)
    return np.repeat(arr, occ, axis=0) if (occ != 1).any() else np.ascontiguousarray(arr)


def _tol(v: np.ndarray) -> np.ndarray:
    return 1e-9 * np.maximum(1.0, np.abs(v))


def _check_model(model) -> None:
    if not isinstance(model, BinaryModel):
        raise ProblemError(f"model must be a qpo.quantum.BinaryModel (from selection_model or lots_model), "
                           f"got {type(model).__name__}")


def _opt_int(name: str, v) -> int | None:
    if v is None:
        return None
    return whole(name, v, 1, hint="or None for the default")


def _multipliers(sweep) -> tuple[float, ...]:
    if sweep is None:
        return (1.0,)
    if isinstance(sweep, (str, bytes)) or not isinstance(sweep, (Sequence, np.ndarray)):
        raise InvalidValueError(f"penalty_sweep must be a sequence of positive multipliers such as (0.5, 1, 2, 4), "
                                f"got {sweep!r}")
    vals = list(sweep)
    if not vals:
        raise InvalidValueError("penalty_sweep is empty; give at least one multiplier, e.g. (0.5, 1, 2, 4)")
    return tuple(positive("penalty_sweep multiplier", v) for v in vals)


def _seed(seed) -> int:
    if seed is None:
        return int(np.random.default_rng().integers(2 ** 31))
    return whole("seed", seed, 0, 2 ** 31 - 1, hint="0..2**31-1, or None for a fresh random seed")


def _versions() -> dict:
    return package_versions(("dimod", "dwave-samplers"))


def _jsonable(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if callable(v):
            continue
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out
