"""The annealing run: :func:`run_annealing` samples the penalized model once per penalty step, polishes
the reads and returns an :class:`AnnealingRun`, the record of the run."""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qpo._checks import positive
from qpo.errors import InvalidValueError, SolverError, UnknownOptionError
from qpo.quantum.annealing._polish import _fit_slack, _polish
from qpo.quantum.annealing._samplers import (
    EXACT_MAX_VARIABLES,
    SAMPLERS,
    _check_model,
    _jsonable,
    _make_sampler,
    _multipliers,
    _opt_int,
    _ordered,
    _seed,
    _valid_options,
    _versions,
    default_budget,
)
from qpo.quantum.formulation import bitstring


@dataclass
class AnnealingRun:
    """The answer of :func:`run_annealing` and how it was found.

    ``x`` are the best decision bits (feasible ones when any read was feasible), ``objective`` is
    ``model.objective(x)`` and ``weights`` their portfolio. ``counts`` maps the decision bit string
    where each read ended (after polishing) to its number of reads; ``raw_counts`` the same before
    polishing. ``penalty_sweep`` has one row per penalty tried: ``multiplier``, ``penalty``,
    ``best_feasible_objective`` (after polishing; None when no read was feasible),
    ``raw_best_feasible_objective``, ``p_feasible`` (raw reads), ``p_feasible_polished``,
    ``best_energy``, ``lowest_energy_read_feasible`` (of the raw reads: False when the penalty is
    too small for the constraints), ``n_reads`` and ``time_s``. ``polish`` counts what polishing changed (reads
    improved by the descent, repaired, improved by the local search, kept raw because polishing did
    not help). ``samples`` / ``raw_samples`` are the reads (decision then slack bits, int8) of the
    winning penalty with their BQM energies ``energies`` / ``raw_energies``.
    """

    sampler: str
    x: np.ndarray
    feasible: bool
    objective: float
    violation: float
    weights: pd.Series = field(repr=False)
    counts: dict[str, int] = field(repr=False)
    raw_counts: dict[str, int] = field(repr=False)
    n_reads: int = 0
    penalty: float = float("nan")
    penalty_sweep: list[dict] = field(default_factory=list, repr=False)
    polished: bool = False
    n_improved_by_polish: int = 0
    polish: dict = field(default_factory=dict, repr=False)
    p_feasible: float = 0.0
    wall_time_s: float = 0.0
    seed: int | None = None
    parameters: dict = field(default_factory=dict, repr=False)
    versions: dict = field(default_factory=dict, repr=False)
    variables: tuple[str, ...] = field(default=(), repr=False)
    samples: np.ndarray | None = field(default=None, repr=False)
    raw_samples: np.ndarray | None = field(default=None, repr=False)
    energies: np.ndarray | None = field(default=None, repr=False)
    raw_energies: np.ndarray | None = field(default=None, repr=False)

    @property
    def bitstring(self) -> str:
        """``x`` as a string in variable order, left to right (the ``counts`` key)."""
        return bitstring(self.x)

    def to_dict(self) -> dict:
        """JSON-ready summary (no sample arrays)."""
        return {"sampler": self.sampler, "x": [int(v) for v in self.x], "bitstring": self.bitstring,
                "feasible": self.feasible, "objective": self.objective, "violation": self.violation,
                "weights": {str(k): float(v) for k, v in self.weights.items() if v != 0},
                "n_reads": self.n_reads, "penalty": self.penalty, "penalty_sweep": self.penalty_sweep,
                "polished": self.polished, "n_improved_by_polish": self.n_improved_by_polish,
                "polish": self.polish, "p_feasible": self.p_feasible, "wall_time_s": self.wall_time_s,
                "seed": self.seed, "parameters": _jsonable(self.parameters), "versions": self.versions,
                "counts": dict(sorted(self.counts.items(), key=lambda kv: -kv[1])[:20])}


def run_annealing(model, *, sampler: str = "simulated_annealing", num_reads: int | None = None,
                  num_sweeps: int | None = None, penalty: float | None = None,
                  penalty_sweep: Sequence[float] | None = None, polish: bool = True, seed: int | None = 0,
                  time_limit: float | None = None, **sampler_options) -> AnnealingRun:
    """Sample the penalized model with a local dwave-samplers sampler and return the best answer.

    Parameters
    ----------
    model
        A :class:`~qpo.quantum.formulation.BinaryModel` (``selection_model`` / ``lots_model``).
    sampler
        One of :data:`SAMPLERS`.
    num_reads, num_sweeps
        Reads per penalty (anneals, tabu searches, descents) and, for simulated annealing, sweeps
        per read; ``None`` takes :func:`default_budget`.
    penalty
        The base penalty ``P`` (default ``model.penalty``).
    penalty_sweep
        Multipliers of the base penalty to try in turn (e.g. ``(0.5, 1, 2, 4)``); the best
        feasible answer over all of them wins and every step is recorded.
    polish
        Steepest descent on every read, then repair and a feasible flip/swap local search on the
        best distinct reads (see the module notes).
    seed
        Integer in ``0 .. 2**31 - 1`` (``None``: a random one, recorded).
    time_limit
        Seconds for the whole call, shared by the penalty steps: simulated annealing stops between
        reads, tabu gets a per-read timeout (then results depend on the clock).
    sampler_options
        Passed to the sampler (``beta_range``, ``beta_schedule_type``, ``tenure``, ``timeout``,
        ``num_restarts``, ...); :func:`sampler_parameters` lists them.

    The ``"exact"`` sampler solves the constrained model itself (``model.to_cqm()``): it ignores
    ``penalty_sweep``, ``polish`` and ``time_limit`` and returns one read, the optimum.
    """
    t_start = time.perf_counter()
    _check_model(model)
    if sampler not in SAMPLERS:
        raise UnknownOptionError("sampler", sampler, SAMPLERS)
    num_reads = _opt_int("num_reads", num_reads)
    num_sweeps = _opt_int("num_sweeps", num_sweeps)
    if num_sweeps is not None and sampler != "simulated_annealing":
        raise InvalidValueError(f"num_sweeps applies to simulated_annealing only, not {sampler!r} "
                                "(tabu takes num_restarts / timeout options)")
    base = model.penalty if penalty is None else positive("penalty", penalty)
    multipliers = _multipliers(penalty_sweep)
    if time_limit is not None:
        time_limit = positive("time_limit", time_limit)
    if not isinstance(polish, (bool, np.bool_)):
        raise InvalidValueError(f"polish must be True or False, got {polish!r}")
    seed = _seed(seed)
    s = _make_sampler(sampler)
    valid = _valid_options(sampler, s)
    for name in sampler_options:
        if name not in valid:
            raise UnknownOptionError(f"{sampler} option", name, valid)
    versions = _versions()

    if sampler == "exact":
        if num_reads not in (None, 1):
            raise InvalidValueError(f"the exact sampler returns one answer; num_reads must be 1 or None, got {num_reads}")
        return _run_exact(model, s, base, seed, versions, t_start, sampler_options)

    budget = default_budget(sampler, model.n_qubits)
    reads = num_reads if num_reads is not None else budget["num_reads"]
    params: dict = {"num_reads": reads}
    call_opts: dict = {}
    if sampler == "simulated_annealing":
        params["num_sweeps"] = num_sweeps if num_sweeps is not None else budget["num_sweeps"]
        call_opts["num_sweeps"] = params["num_sweeps"]
    elif sampler == "tabu":
        if "timeout" not in sampler_options and time_limit is None:
            call_opts["timeout"] = None  # deterministic: bounded by restarts, not by the clock
        if "num_restarts" not in sampler_options:
            call_opts["num_restarts"] = budget["num_restarts"]
    call_opts.update(sampler_options)
    params.update(_jsonable(call_opts))
    if sampler == "tabu":
        params.setdefault("tenure", min(20, model.n_qubits // 4))
    params.update(polish=bool(polish), base_penalty=base, penalty_multipliers=list(multipliers),
                  time_limit=time_limit, n_qubits=model.n_qubits)

    labels = list(model.variables) + list(model.slack_variables)
    steps: list[dict] = []
    outcomes: list[_Outcome] = []
    for i, mult in enumerate(multipliers):
        remaining = None if time_limit is None else time_limit - (time.perf_counter() - t_start)
        if remaining is not None and remaining <= 0 and outcomes:
            steps.append({"multiplier": mult, "penalty": base * mult, "skipped": "time_limit reached"})
            continue
        share = None if remaining is None else max(remaining, 1e-3) / (len(multipliers) - i)
        t0 = time.perf_counter()
        out = _run_step(model, s, sampler, base * mult, labels, reads, seed, call_opts, polish, share)
        out.time_s = time.perf_counter() - t0
        outcomes.append(out)
        steps.append(out.row(mult))
        if "beta_range" in out.info:  # the sampler's default range depends on the penalty
            steps[-1]["beta_range"] = params["beta_range"] = [float(b) for b in out.info["beta_range"]]

    best = min(outcomes, key=lambda o: o.rank_key())
    x = best.x
    w, _ = model.decode(x)
    return AnnealingRun(
        sampler=sampler, x=x, feasible=bool(best.feasible), objective=float(model.objective(x)),
        violation=float(model.violation(x)), weights=w, counts=best.counts(final=True),
        raw_counts=best.counts(final=False), n_reads=best.n_reads, penalty=best.penalty, penalty_sweep=steps,
        polished=bool(polish), n_improved_by_polish=int(best.polish.get("improved", 0)), polish=best.polish,
        p_feasible=best.p_feasible, wall_time_s=time.perf_counter() - t_start, seed=seed, parameters=params,
        versions=versions, variables=tuple(labels), samples=best.samples, raw_samples=best.raw_samples,
        energies=best.energies, raw_energies=best.raw_energies)


@dataclass
class _Outcome:
    penalty: float
    m: int
    raw_samples: np.ndarray
    raw_energies: np.ndarray
    raw_feasible: np.ndarray
    raw_f: np.ndarray
    samples: np.ndarray
    energies: np.ndarray
    feasible_reads: np.ndarray
    f: np.ndarray
    polish: dict
    info: dict
    time_s: float = 0.0

    @property
    def n_reads(self) -> int:
        return len(self.samples)

    @property
    def p_feasible(self) -> float:
        return float(self.raw_feasible.mean()) if len(self.raw_feasible) else 0.0

    def _best_index(self) -> int:
        if self.feasible_reads.any():
            idx = np.flatnonzero(self.feasible_reads)
            return int(idx[np.argmin(self.f[idx])])
        return int(np.argmin(self.energies))

    @property
    def feasible(self) -> bool:
        return bool(self.feasible_reads.any())

    @property
    def x(self) -> np.ndarray:
        return self.samples[self._best_index(), :self.m].astype(float)

    def rank_key(self) -> tuple:
        i = self._best_index()
        return (0, float(self.f[i])) if self.feasible else (1, float(self.energies[i]))

    def counts(self, final: bool) -> dict[str, int]:
        arr = self.samples if final else self.raw_samples
        return dict(Counter(bitstring(row[:self.m]) for row in arr))

    def row(self, mult: float) -> dict:
        raw_best = float(self.raw_f[self.raw_feasible].min()) if self.raw_feasible.any() else None
        best = float(self.f[self.feasible_reads].min()) if self.feasible_reads.any() else None
        return {"multiplier": float(mult), "penalty": self.penalty, "best_feasible_objective": best,
                "raw_best_feasible_objective": raw_best, "p_feasible": self.p_feasible,
                "p_feasible_polished": float(self.feasible_reads.mean()) if self.n_reads else 0.0,
                "best_energy": float(self.energies.min()),
                "lowest_energy_read_feasible": bool(self.raw_feasible[int(np.argmin(self.raw_energies))]),
                "n_reads": self.n_reads, "time_s": self.time_s}


def _run_step(model, s, sampler: str, P: float, labels: list[str], reads: int, seed: int, call_opts: dict,
              polish: bool, time_share: float | None) -> _Outcome:
    bqm = model.to_bqm(P)
    opts = dict(call_opts)
    if time_share is not None:
        if sampler == "simulated_annealing":
            deadline = time.perf_counter() + time_share
            opts["interrupt_function"] = lambda: time.perf_counter() > deadline
        elif sampler == "tabu" and "timeout" not in call_opts:
            opts["timeout"] = max(1, int(1000 * time_share / reads))
    try:
        ss = s.sample(bqm, num_reads=reads, seed=seed, **opts)
    except (ValueError, TypeError) as e:
        raise InvalidValueError(f"{sampler} rejected its options {sorted(_jsonable(opts))}: {e}") from None
    if len(ss) == 0:
        raise SolverError(f"{sampler} returned no read (time_limit too short?)")
    raw = _ordered(ss, labels)
    raw_e = np.asarray(bqm.energies((raw, labels)), dtype=float)
    m = model.n_variables
    raw_f = np.asarray(model.objective(raw[:, :m]), dtype=float).reshape(-1)
    raw_ok = np.asarray(model.is_feasible(raw[:, :m]), dtype=bool).reshape(-1)
    if polish:
        samples, energies, f, ok, pinfo = _polish(model, bqm, labels, raw, raw_e, raw_f, raw_ok,
                                                  descend=sampler != "steepest_descent")
    else:
        samples, energies, f, ok, pinfo = raw.copy(), raw_e.copy(), raw_f.copy(), raw_ok.copy(), {}
    return _Outcome(penalty=float(P), m=m, raw_samples=raw, raw_energies=raw_e, raw_feasible=raw_ok, raw_f=raw_f,
                    samples=samples, energies=energies, feasible_reads=ok, f=f, polish=pinfo, info=dict(ss.info))


def _run_exact(model, s, base: float, seed: int, versions: dict, t_start: float, options: dict) -> AnnealingRun:
    m = model.n_variables
    if m > EXACT_MAX_VARIABLES:
        raise InvalidValueError(f"the exact sampler enumerates all 2^{m} strings; it takes at most "
                                f"{EXACT_MAX_VARIABLES} decision variables, this model has {m}: use "
                                "'simulated_annealing' or 'tabu' (or qpo.quantum.exact.solve_exact for a proof)")
    cqm = model.to_cqm()
    ss = s.sample_cqm(cqm, **options)
    labels = list(model.variables)
    X = _ordered(ss, labels)
    ok = np.asarray(model.is_feasible(X), dtype=bool) if len(X) else np.zeros(0, bool)
    if not ok.any():
        raise SolverError(f"no assignment of the {m} variables satisfies the {model.kind} model's constraints")
    f = np.asarray(model.objective(X), dtype=float)
    idx = np.flatnonzero(ok)
    best = idx[np.argmin(f[idx])]
    x = X[best].astype(float)
    key = bitstring(x)
    w, _ = model.decode(x)
    Xq = np.zeros((1, model.n_qubits), dtype=np.int8)
    Xq[0, :m] = X[best]
    Xq = _fit_slack(model, Xq)
    e = np.asarray(model.to_bqm(base).energies((Xq, labels + list(model.slack_variables))), dtype=float)
    params = {"n_states_enumerated": len(X), "n_feasible_states": int(ok.sum()),
              "note": "ExactCQMSolver on model.to_cqm(): native constraints, no penalty", **_jsonable(options)}
    return AnnealingRun(sampler="exact", x=x, feasible=True, objective=float(model.objective(x)),
                        violation=float(model.violation(x)), weights=w, counts={key: 1}, raw_counts={key: 1},
                        n_reads=1, penalty=base, penalty_sweep=[], polished=False, n_improved_by_polish=0,
                        polish={}, p_feasible=1.0, wall_time_s=time.perf_counter() - t_start, seed=seed,
                        parameters=params, versions=versions, variables=tuple(labels) + model.slack_variables,
                        samples=Xq, raw_samples=Xq.copy(), energies=e, raw_energies=e.copy())
