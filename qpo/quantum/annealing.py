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

import numbers
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qpo.errors import InvalidValueError, ProblemError, SolverError, UnknownOptionError
from qpo.quantum.formulation import _positive, bitstring, package_versions

SAMPLERS = ("simulated_annealing", "tabu", "steepest_descent", "exact")
#: ExactCQMSolver enumerates 2**n_variables strings; 20 bits are ~1M rows (a few seconds)
EXACT_MAX_VARIABLES = 20
#: how many distinct reads (best first) get the greedy repair / the feasible local search
POLISH_REPAIR_STATES = 32
POLISH_SEARCH_STATES = 16

# parameters run_annealing sets itself (not accepted among **sampler_options)
_MANAGED = {
    "simulated_annealing": {"num_reads", "num_sweeps", "seed", "interrupt_function"},
    "tabu": {"num_reads", "seed"},
    "steepest_descent": {"num_reads", "seed"},
    "exact": set(),
}


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
    base = model.penalty if penalty is None else _positive("penalty", penalty)
    multipliers = _multipliers(penalty_sweep)
    if time_limit is not None:
        time_limit = _positive("time_limit", time_limit)
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


def local_search(model, x) -> np.ndarray:
    """Steepest descent of ``model.objective`` from the feasible bits ``x`` over feasible single
    flips and 1-swaps (one set bit cleared, one clear bit set: for a selection model with exactly
    ``k`` assets, the cardinality-preserving asset swap), until no move improves; the polish step's
    local search, for a single state."""
    _check_model(model)
    x = np.asarray(x, dtype=float)
    if x.shape != (model.n_variables,) or not model.is_feasible(x):
        raise InvalidValueError(f"local_search starts from one feasible vector of {model.n_variables} bits "
                                f"(model.is_feasible(x)); got shape {x.shape}")
    return _LinearSystem(model).local_search(np.round(x))


# -- one penalty step ----------------------------------------------------------------------------
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


# -- polishing -----------------------------------------------------------------------------------
def _polish(model, bqm, labels, raw, raw_e, raw_f, raw_ok, descend: bool):
    from dwave.samplers import SteepestDescentSolver

    m = model.n_variables
    info = {"descent_improved": 0, "repaired": 0, "search_improved": 0, "kept_raw": 0}
    cur = raw.copy()
    if descend:
        ds = SteepestDescentSolver().sample(bqm, initial_states=(raw, labels))
        cur = _ordered(ds, labels)
        e_desc = np.asarray(bqm.energies((cur, labels)), dtype=float)
        info["descent_improved"] = int((e_desc < raw_e - _tol(raw_e)).sum())

    # repair / local search on distinct decision states, best first
    X = cur[:, :m].astype(float)
    ok = np.asarray(model.is_feasible(X), dtype=bool).reshape(-1)
    e = np.asarray(bqm.energies((cur, labels)), dtype=float)
    uniq, first, inverse = np.unique(cur[:, :m], axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    lin = _LinearSystem(model)
    new_states: dict[int, np.ndarray] = {}
    # repair: infeasible distinct states with the lowest energies
    bad = [u for u in np.argsort(e[first]) if not ok[first[u]]][:POLISH_REPAIR_STATES]
    for u in bad:
        y = lin.repair(uniq[u].astype(float))
        if y is not None:
            new_states[int(u)] = y
            info["repaired"] += int((inverse == u).sum())
    # local search: the best distinct feasible states (after repair)
    cand = []
    for u in range(len(uniq)):
        y = new_states.get(u, uniq[u].astype(float) if ok[first[u]] else None)
        if y is not None:
            cand.append((float(model.objective(y)), u, y))
    cand.sort(key=lambda t: t[0])
    for f0, u, y in cand[:POLISH_SEARCH_STATES]:
        z = lin.local_search(y)
        if model.objective(z) < f0 - 1e-12 * max(1.0, abs(f0)):
            info["search_improved"] += int((inverse == u).sum())
            new_states[u] = z
    for u, y in new_states.items():
        cur[inverse == u, :m] = np.round(y).astype(cur.dtype)
    if new_states:
        cur = _fit_slack(model, cur)

    # keep the polished read only if it is no worse than the raw one
    e = np.asarray(bqm.energies((cur, labels)), dtype=float)
    f = np.asarray(model.objective(cur[:, :m].astype(float)), dtype=float).reshape(-1)
    ok = np.asarray(model.is_feasible(cur[:, :m].astype(float)), dtype=bool).reshape(-1)
    worse = np.where(raw_ok, ~ok | (f > raw_f + _tol(raw_f)), ~ok & (e > raw_e + _tol(raw_e)))
    if worse.any():
        cur[worse], e[worse], f[worse], ok[worse] = raw[worse], raw_e[worse], raw_f[worse], raw_ok[worse]
    info["kept_raw"] = int(worse.sum())
    better = np.where(raw_ok, ok & (f < raw_f - _tol(raw_f)), ok | (e < raw_e - _tol(raw_e)))
    info["improved"] = int(better.sum())
    info["changed"] = int((cur != raw).any(axis=1).sum())
    return cur, e, f, ok, info


class _LinearSystem:
    """The model's objective and native linear constraints, for moves of one or two bits."""

    def __init__(self, model):
        self.Q = np.asarray(model.Q, dtype=float)
        self.c = np.asarray(model.c, dtype=float)
        self.d = np.diag(self.Q).copy()
        cons = model.constraints
        m = model.n_variables
        self.A = np.array([c.coefficients for c in cons], dtype=float).reshape(len(cons), m)
        self.rhs = np.array([c.rhs for c in cons], dtype=float)
        self.eq = np.array([c.sense == "==" for c in cons], dtype=bool)
        self.unit = np.array([c.unit for c in cons], dtype=float)
        scale = max((abs(c.rhs) for c in cons), default=1.0) or 1.0
        self.tol = 1e-9 * max(scale, 1.0)  # as model.is_feasible

    def _viol(self, lhs: np.ndarray) -> np.ndarray:
        """Violation per constraint (axis 0) of left-hand sides of any trailing shape."""
        r = lhs - self.rhs.reshape((-1,) + (1,) * (lhs.ndim - 1))
        v = np.where(self.eq.reshape((-1,) + (1,) * (lhs.ndim - 1)), np.abs(r), np.maximum(r, 0.0))
        return np.where(v <= self.tol, 0.0, v)

    def repair(self, x: np.ndarray, max_steps: int | None = None) -> np.ndarray | None:
        """Flip one bit at a time, each flip the cheapest (in ``f``) per unit of violation it
        removes, until every constraint holds; None when no flip reduces the violation."""
        x = x.copy()
        g = 2.0 * self.Q @ x + self.c
        units = self.unit.reshape(-1, 1)
        for _ in range(max_steps or len(x)):
            lhs = self.A @ x
            cur = (self._viol(lhs) / self.unit).sum()
            if cur == 0:
                return x
            s = 1.0 - 2.0 * x
            new = (self._viol(lhs[:, None] + self.A * s[None, :]) / units).sum(axis=0)
            red = cur - new
            cand = red > 1e-12
            if not cand.any():
                return None
            df = g * s + self.d
            neg = cand & (df <= 0)
            if neg.any():
                j = int(np.flatnonzero(neg)[np.argmin(df[neg])])
            else:
                score = np.where(cand, df / np.where(cand, red, 1.0), np.inf)
                j = int(np.argmin(score))
            x[j] += s[j]
            g += 2.0 * self.Q[:, j] * s[j]
        return x if (self._viol(self.A @ x) == 0).all() else None

    def local_search(self, x: np.ndarray, max_iter: int = 10_000) -> np.ndarray:
        """Steepest descent of ``f`` over feasible single flips and 1-swaps (one set bit cleared,
        one clear bit set) from a feasible ``x``, until no move improves."""
        x = x.copy()
        g = 2.0 * self.Q @ x + self.c
        f = float(x @ self.Q @ x + self.c @ x)
        for _ in range(max_iter):
            lhs = self.A @ x
            s = 1.0 - 2.0 * x
            d_flip = g * s + self.d
            ok_flip = (self._viol(lhs[:, None] + self.A * s[None, :]) == 0).all(axis=0)
            d_flip = np.where(ok_flip, d_flip, np.inf)
            on, off = np.flatnonzero(x > 0.5), np.flatnonzero(x < 0.5)
            best_flip = int(np.argmin(d_flip))
            move, delta = ("flip", best_flip, -1), d_flip[best_flip]
            if len(on) and len(off):
                d_swap = (g[off][None, :] - g[on][:, None] + self.d[on][:, None] + self.d[off][None, :]
                          - 2.0 * self.Q[np.ix_(on, off)])
                lhs_swap = lhs[:, None, None] - self.A[:, on][:, :, None] + self.A[:, off][:, None, :]
                ok_swap = (self._viol(lhs_swap) == 0).all(axis=0)
                d_swap = np.where(ok_swap, d_swap, np.inf)
                a, b = np.unravel_index(int(np.argmin(d_swap)), d_swap.shape)
                if d_swap[a, b] < delta:
                    move, delta = ("swap", int(on[a]), int(off[b])), d_swap[a, b]
            if not delta < -1e-12 * max(1.0, abs(f)):
                break
            for j in move[1:]:
                if j >= 0:
                    sj = 1.0 - 2.0 * x[j]
                    x[j] += sj
                    g += 2.0 * self.Q[:, j] * sj
            f += float(delta)
        return x


def _fit_slack(model, samples: np.ndarray) -> np.ndarray:
    """Set each read's slack bits to the value that minimizes its penalty (the residual closest to
    zero) for its decision bits; the penalty is the only term that involves the slack."""
    if not model.slack:
        return samples
    from qpo.quantum.formulation import bounded_coefficients

    out = samples.copy()
    m = model.n_variables
    X = samples[:, :m].astype(float)
    pos = m
    by_name = {c.name: c for c in model.constraints}
    for gi, (name, _, coefs) in enumerate(model.slack):
        coefs = np.asarray(coefs, dtype=int)
        nb = len(coefs)
        con = by_name[name]
        upper = int(coefs.sum())
        if not np.array_equal(coefs, bounded_coefficients(upper)):
            pos += nb
            continue  # an encoding this helper does not know: leave the sampler's slack bits
        free = (con.rhs - X @ con.coefficients) / model.slack_unit[gi]
        val = np.clip(np.round(free), 0, upper).astype(np.int64)
        bits = np.zeros((len(X), nb), dtype=np.int64)
        if nb:
            top = val > (1 << (nb - 1)) - 1
            bits[:, -1] = top
            rest = np.where(top, val - coefs[-1], val)
            bits[:, :-1] = (rest[:, None] >> np.arange(nb - 1)) & 1
        out[:, pos:pos + nb] = bits
        pos += nb
    return out


# -- helpers -------------------------------------------------------------------------------------
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
    from qpo.quantum.formulation import BinaryModel

    if not isinstance(model, BinaryModel):
        raise ProblemError(f"model must be a qpo.quantum.BinaryModel (from selection_model or lots_model), "
                           f"got {type(model).__name__}")


def _opt_int(name: str, v) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise InvalidValueError(f"{name} must be a whole number >= 1 (or None for the default), got {v!r}")
    return int(v)


def _multipliers(sweep) -> tuple[float, ...]:
    if sweep is None:
        return (1.0,)
    if isinstance(sweep, (str, bytes)) or not isinstance(sweep, (Sequence, np.ndarray)):
        raise InvalidValueError(f"penalty_sweep must be a sequence of positive multipliers such as (0.5, 1, 2, 4), "
                                f"got {sweep!r}")
    vals = list(sweep)
    if not vals:
        raise InvalidValueError("penalty_sweep is empty; give at least one multiplier, e.g. (0.5, 1, 2, 4)")
    return tuple(_positive("penalty_sweep multiplier", v) for v in vals)


def _seed(seed) -> int:
    if seed is None:
        return int(np.random.default_rng().integers(2 ** 31))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2 ** 31:
        raise InvalidValueError(f"seed must be an integer in 0..2**31-1 or None, got {seed!r}")
    return int(seed)


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
