"""The engine behind ``qpo.optimize`` for the binary objectives (``asset_selection``,
``integer_lots``) and the methods ``exact``, ``qaoa``, ``annealing`` and ``auto``.

Every answer is checked: a sampler's best string must satisfy the model's constraints (to 1e-9 of
their scale). An infeasible answer is repaired greedily (selection: drop or add the asset that
changes the objective least; lots: sell the lot whose sale costs least, until the budget holds);
when no repair is possible, or the model is too large for the requested method (QAOA's statevector
needs ``16 * 2**n_qubits`` bytes; the default limit is 24 qubits, 256 MiB), the exact solver
answers and ``fallback_reason`` says why.

Every result carries the exact optimum next to it (``diagnostics["f_star"]``: brute force up to
20 bits, SCIP above, with a time limit that is recorded) and the figures that compare them:

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

``diagnostics["samples"]``: bitstring -> probability (QAOA: the most likely 256 strings of the exact
distribution) or count (annealing reads, QAOA shots in ``diagnostics["counts"]``); a bitstring lists
the model's variables left to right in ticker order, ``1`` = chosen (not Qiskit's reversed order).
"""
from __future__ import annotations

import math
import numbers
import time

import numpy as np

from qpo.errors import InvalidValueError, ProblemError, UnknownOptionError
from qpo.quantum.exact import (
    BRUTE_FORCE_MAX_VARIABLES,
    bits_to_index,
    index_to_bits,
    landscape,
    solve_exact,
    solve_scip,
)
from qpo.quantum.formulation import (
    BinaryModel,
    bitstring,
    lots_model,
    package_versions,
    selection_model,
)

_REQUIRED = object()
QUANTUM_METHODS = ("exact", "qaoa", "annealing", "auto")

#: binary objective -> its options and defaults
BINARY_OBJECTIVE_OPTIONS: dict[str, dict[str, object]] = {
    "asset_selection": {"k": None, "cardinality": "exact", "risk_aversion": 1.0, "penalty": None},
    "integer_lots": {"prices": _REQUIRED, "cash": _REQUIRED, "lot_size": 1, "max_lots": None, "risk_aversion": 1.0,
                     "penalty": None, "slack_resolution": 0.25},
}
BINARY_OBJECTIVES = tuple(BINARY_OBJECTIVE_OPTIONS)

_COMMON = {"reference_time_limit": 120.0}
#: method -> its options and defaults
METHOD_OPTIONS: dict[str, dict[str, object]] = {
    "exact": {"exact_method": "auto", "time_limit": None},
    "qaoa": {"reps": 1, "mixer": "auto", "cvar_alpha": 1.0, "inits": ("linear_ramp", "tqa"), "n_random": 0,
             "optimizer": "COBYLA", "maxiter": 200, "shots": 1024, "backend": "numpy", "max_qubits": 24, **_COMMON},
    "annealing": {"sampler": "simulated_annealing", "num_reads": None, "num_sweeps": None, "penalty_sweep": None,
                  "polish": True, "time_limit": None, **_COMMON},
}
METHOD_OPTIONS["auto"] = {**METHOD_OPTIONS["qaoa"], **METHOD_OPTIONS["annealing"], "auto_qaoa_qubits": 12}
#: the most likely strings kept in diagnostics["samples"]
TOP_SAMPLES = 256


def statevector_bytes(n_qubits: int) -> int:
    """Memory of one complex128 statevector: ``16 * 2**n`` bytes."""
    return 16 * 2 ** int(n_qubits)


def build_model(problem, objective: str, opts: dict) -> BinaryModel:
    if objective == "asset_selection":
        return selection_model(problem, opts["k"], cardinality=opts["cardinality"],
                               risk_aversion=opts["risk_aversion"], penalty=opts["penalty"])
    return lots_model(problem, opts["prices"], opts["cash"], lot_size=opts["lot_size"], max_lots=opts["max_lots"],
                      risk_aversion=opts["risk_aversion"], penalty=opts["penalty"],
                      slack_resolution=opts["slack_resolution"])


def resolve_binary_options(objective: str, method: str, options: dict) -> tuple[dict, dict]:
    """Split ``options`` into the objective's and the method's, check the names, fill defaults."""
    obj_valid = BINARY_OBJECTIVE_OPTIONS[objective]
    meth_valid = METHOD_OPTIONS[method]
    for name in options:
        if name not in obj_valid and name not in meth_valid:
            raise UnknownOptionError(f"option for {objective} with method {method!r}", name,
                                     list(obj_valid) + list(meth_valid))
    obj = {k: options.get(k, v) for k, v in obj_valid.items()}
    missing = [k for k, v in obj.items() if v is _REQUIRED]
    if missing:
        raise ProblemError(f"{objective} needs {', '.join(missing)}, e.g. optimize(problem, {objective!r}, "
                           "method='exact', prices=last_closes, cash=100_000)")
    meth = {k: options.get(k, v) for k, v in meth_valid.items()}
    for name in ("max_qubits", "auto_qaoa_qubits"):
        if name in meth:
            meth[name] = _whole(name, meth[name], 1)
    for name in ("reference_time_limit", "time_limit"):
        lim = meth.get(name)
        if lim is not None and (isinstance(lim, bool) or not isinstance(lim, numbers.Real) or not lim > 0):
            raise InvalidValueError(f"{name} must be a positive number of seconds or None, got {lim!r}")
    if isinstance(meth.get("inits"), str):
        meth["inits"] = (meth["inits"],)
    return obj, meth


def solve_binary(problem, objective: str, method: str, options: dict, seed: int):
    """``(weights, info)`` for ``qpo.optimize``: ``info`` holds solver, status, fallback reason and the
    diagnostics described in this module's docstring."""
    t0 = time.perf_counter()
    obj_opts, meth_opts = resolve_binary_options(objective, method, options)
    model = build_model(problem, objective, obj_opts)
    build_s = time.perf_counter() - t0
    chosen, why = method, None
    if method == "auto":
        chosen = "qaoa" if model.n_qubits <= meth_opts["auto_qaoa_qubits"] else "annealing"
        why = (f"{model.n_qubits} qubits {'<=' if chosen == 'qaoa' else '>'} auto_qaoa_qubits="
               f"{meth_opts['auto_qaoa_qubits']}: {chosen}")
    diag: dict = {"model": model.describe(), "penalty": model.penalty, "penalty_rule": model.penalty_rule,
                  "seed": int(seed), "versions": versions()}
    if why:
        diag["auto_choice"] = why
    if model.kind == "lots":
        diag["encoding"] = model.encoding["note"]

    t1 = time.perf_counter()
    if chosen == "exact":
        sol = solve_exact(model, method=meth_opts["exact_method"], time_limit=meth_opts["time_limit"])
        x, solver, status, fallback = sol.x, _exact_solver_name(sol), "optimal" if sol.proven_optimal else "feasible", None
        reference = sol
        run_diag = {"evaluations": 2 ** model.n_variables if sol.method == "brute_force" else None,
                    "proven_optimal": sol.proven_optimal}
        if sol.mip_gap is not None:
            run_diag["mip_gap"] = sol.mip_gap
        p_dist = None
    else:
        reference, ref_error = _reference(model, meth_opts["reference_time_limit"])
        if ref_error:
            diag["reference_error"] = ref_error
        if chosen == "qaoa":
            x, solver, status, fallback, run_diag, p_dist = _run_qaoa(model, meth_opts, seed, reference)
        else:
            x, solver, status, fallback, run_diag, p_dist = _run_annealing(model, meth_opts, seed)
    solve_s = time.perf_counter() - t1
    diag.update(run_diag)

    # check, repair, fall back
    if x is not None and not model.is_feasible(x):
        repaired = repair(model, x)
        if repaired is not None:
            fallback = (f"{chosen}: no sample satisfies the constraints; the most likely one breaks the "
                        f"{_broken(model, x)} constraint and was repaired greedily (objective "
                        f"{model.objective(x):.6g} -> {model.objective(repaired):.6g})")
            x, status = repaired, "repaired"
        else:
            fallback = f"{chosen}'s best answer breaks the {_broken(model, x)} constraint and cannot be repaired"
            x = None
    if x is None:
        if reference is None:
            from qpo.errors import SolverError

            raise SolverError(f"{fallback}; and {diag['reference_error']}. Raise reference_time_limit or shrink the "
                              "problem")
        x = reference.x
        solver = f"{_exact_solver_name(reference)} (fallback)"
        status = "fallback"
    if fallback:
        diag["fallback_reason"] = fallback
    diag.update(compare(model, x, reference, p_dist, run_diag))
    if p_dist is not None and p_dist.get("raw_p") is not None:  # annealing: the sampler's reads before polishing
        raw = compare(model, x, reference, {"kind": "counts", "p": p_dist["raw_p"]}, {})
        diag["p_feasible_raw"], diag["p_optimum_raw"] = raw.get("p_feasible"), raw.get("p_optimum")
        if "expected_approximation_ratio" in raw:
            diag["expected_approximation_ratio_raw"] = raw["expected_approximation_ratio"]
    w, info = model.decode(x)
    diag.update(info)
    diag["bitstring"] = bitstring(x)
    if reference is not None:
        diag["exact_bitstring"] = bitstring(reference.x)
        diag["exact_selected"] = model.decode(reference.x)[1]["selected"]
        diag["exact_method"] = reference.method
        diag["exact_proven_optimal"] = reference.proven_optimal
        diag["exact_wall_time_s"] = reference.wall_time_s
        if reference.mip_gap is not None:
            diag["exact_mip_gap"] = reference.mip_gap
    if method != chosen:
        diag["method_used"] = chosen
    return w.to_numpy(), {"solver": solver, "status": status, "fallback": fallback, "diagnostics": diag,
                          "build_s": build_s, "solve_s": solve_s}


# -- methods ---------------------------------------------------------------------------------------
def _reference(model: BinaryModel, time_limit):
    """The exact optimum, or None (with the reason) when the exact solver finds nothing in time."""
    from qpo.errors import SolverError

    try:
        return solve_exact(model, method="auto", time_limit=time_limit), None
    except SolverError as e:
        return None, f"the exact reference failed within reference_time_limit={time_limit} s: {e}"


def _exact_solver_name(sol) -> str:
    return "brute force" if sol.method == "brute_force" else "SCIP (cvxpy)"


def _run_qaoa(model: BinaryModel, o: dict, seed: int, reference):
    nq = model.n_qubits
    limit = o["max_qubits"]
    if nq > limit:
        reason = (f"qaoa: the model needs {nq} qubits; a statevector of {nq} qubits takes "
                  f"{_bytes(statevector_bytes(nq))} (16 x 2^{nq} bytes), above max_qubits={limit} "
                  f"({_bytes(statevector_bytes(limit))}); the exact solver answered")
        return None, None, None, reason, {"qubits": nq, "max_qubits": limit}, None
    mixer = o["mixer"]
    exact_k = model.kind == "selection" and model.cardinality == "exact"
    if mixer == "auto":
        mixer = "xy" if exact_k and 0 < model.k < model.n_assets else "x"
    elif mixer == "xy" and not exact_k:
        raise ProblemError("the XY mixer keeps the number of chosen assets fixed, so it needs an exact-cardinality "
                           f"selection (cardinality='exact'); this is a {model.kind} model"
                           + (f" with cardinality={model.cardinality!r}" if model.kind == "selection" else "")
                           + ". Use mixer='x' (penalties)")
    elif mixer not in ("x", "xy"):
        raise UnknownOptionError("QAOA mixer", mixer, ("auto", "x", "xy"))
    from qpo.quantum import qaoa

    diagonal = model.energies()
    ising = model.to_ising()[0] if o["backend"] != "numpy" else None
    run = qaoa.run_qaoa(diagonal, reps=o["reps"], mixer=mixer, k=model.k if mixer == "xy" else None,
                        cvar_alpha=o["cvar_alpha"], inits=tuple(o["inits"]), n_random=o["n_random"],
                        optimizer=o["optimizer"], maxiter=o["maxiter"], shots=o["shots"], seed=seed,
                        backend=o["backend"], ising=ising)
    m = model.n_variables
    mask = (1 << m) - 1
    # the distribution over decision strings (slack bits summed out)
    if run.probabilities is not None:
        dec = np.bincount(np.arange(len(run.probabilities)) & mask, weights=run.probabilities, minlength=1 << m)
        dist = {"kind": "probability", "p": dec}
    else:
        dist = {"kind": "counts", "p": _counts_to_decision(run.counts, m)}
    # the answer: the best feasible string the shots saw (or the most likely feasible one without shots)
    counts = _counts_to_decision(run.counts, m) if run.counts else None
    x = _best_string(model, counts) if counts is not None else _most_likely_string(model, dist["p"])
    run_diag = {"mixer": mixer, "reps": run.reps, "cvar_alpha": run.cvar_alpha, "backend": run.backend,
                "optimizer": run.optimizer, "evaluations": run.evaluations, "wall_time_s": run.wall_time_s,
                "gammas": [float(v) for v in run.gammas], "betas": [float(v) for v in run.betas],
                "energy": float(run.energy), "energy_scale": float(run.energy_scale), "qubits": nq,
                "statevector_bytes": statevector_bytes(nq), "restarts": run.restarts,
                "shots": o["shots"], "samples": _top_samples(dist["p"], m, dist["kind"])}
    if counts is not None:
        run_diag["counts"] = {bitstring(index_to_bits(i, m)): int(c) for i, c in
                              sorted(((i, c) for i, c in enumerate(counts) if c), key=lambda t: -t[1])[:TOP_SAMPLES]}
    run_diag["samples_per_run"] = int(o["shots"]) if o["shots"] else None
    solver = {"numpy": "QAOA (qpo numpy statevector)", "qiskit": "QAOA (qiskit StatevectorEstimator)",
              "aer": "QAOA (qiskit-aer)"}.get(run.backend, f"QAOA ({run.backend})")
    return x, solver, "feasible", None, run_diag, dist


def _run_annealing(model: BinaryModel, o: dict, seed: int):
    from qpo.quantum import annealing

    run = annealing.run_annealing(model, sampler=o["sampler"], num_reads=o["num_reads"], num_sweeps=o["num_sweeps"],
                                  penalty_sweep=o["penalty_sweep"], polish=o["polish"], seed=seed,
                                  time_limit=o["time_limit"])
    run_diag = {"sampler": run.sampler, "num_reads": run.n_reads, "wall_time_s": run.wall_time_s,
                "penalty": run.penalty, "penalty_sweep": run.penalty_sweep, "polished": run.polished,
                "p_feasible_reads": run.p_feasible, "parameters": run.parameters, "evaluations": run.n_reads,
                "samples": dict(sorted(run.counts.items(), key=lambda t: -t[1])[:TOP_SAMPLES]),
                "samples_per_run": run.n_reads, "n_improved_by_polish": run.n_improved_by_polish,
                "raw_samples": dict(sorted(run.raw_counts.items(), key=lambda t: -t[1])[:TOP_SAMPLES])}
    dist = {"kind": "counts", "p": _sparse_counts(run.counts), "raw_p": _sparse_counts(run.raw_counts)}
    solver = {"simulated_annealing": "simulated annealing (dwave-samplers)", "tabu": "tabu search (dwave-samplers)",
              "steepest_descent": "steepest descent (dwave-samplers)",
              "exact": "ExactCQMSolver (dimod)"}.get(run.sampler, run.sampler)
    return np.asarray(run.x, float), solver, "feasible", None, run_diag, dist


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


# -- checks and comparisons --------------------------------------------------------------------------
def repair(model: BinaryModel, x) -> np.ndarray | None:
    """A feasible string near ``x`` by greedy moves, or None."""
    x = np.round(np.asarray(x, float)).copy()
    if model.kind == "selection":
        k = model.k
        while x.sum() > k:
            on = np.flatnonzero(x == 1)
            trial = np.repeat(x[None], len(on), 0)
            trial[np.arange(len(on)), on] = 0
            x = trial[int(np.argmin(model.objective(trial)))]
        while model.cardinality == "exact" and x.sum() < k:
            off = np.flatnonzero(x == 0)
            trial = np.repeat(x[None], len(off), 0)
            trial[np.arange(len(off)), off] = 1
            x = trial[int(np.argmin(model.objective(trial)))]
        return x if model.is_feasible(x) else None
    enc = model.encoding
    tickers = list(model.tickers)
    lots = np.array([model.decode(x)[1]["lots"][t] for t in tickers])
    cost = np.array([enc["lot_cost"][t] for t in tickers])
    maxl = np.array([enc["max_lots"][t] for t in tickers])
    lots = np.minimum(lots, maxl)
    while lots @ cost > enc["cash"] + 1e-9 * enc["cash"]:
        held = np.flatnonzero(lots > 0)
        trials = [encode_lots(model, lots - np.eye(len(lots), dtype=int)[i]) for i in held]
        f = model.objective(np.array(trials))
        lots[held[int(np.argmin(f))]] -= 1
    x = encode_lots(model, lots)
    return x if model.is_feasible(x) else None


def encode_lots(model: BinaryModel, lots) -> np.ndarray:
    """Bits of integer lot counts under the model's bounded encoding."""
    x = np.zeros(model.n_variables)
    for t, n in zip(model.tickers, lots):
        bits = model.encoding["bits"][t]
        rest = int(n)
        for j, coef in sorted(bits, key=lambda b: -b[1]):
            if coef <= rest:
                x[j], rest = 1.0, rest - coef
        if rest:
            raise ProblemError(f"{n} lots of {t} has no code (0..{model.encoding['max_lots'][t]} do)")
    return x


def _broken(model: BinaryModel, x) -> str:
    names = [c.name for c in model.constraints if float(c.violation(np.round(x))) > 1e-9 * max(abs(c.rhs), 1)]
    return ", ".join(names) or "?"


def compare(model: BinaryModel, x, reference, dist, run_diag) -> dict:
    """The answer next to the exact optimum (see the module docstring)."""
    f = float(model.objective(x))
    out: dict = {"objective_value": f, "feasible": bool(model.is_feasible(x)),
                 "gap_convention": "(f - f*) / |f*|, f the mean-variance objective to minimize"}
    if reference is None:
        out.update(f_star=None, gap=None, approximation_ratio=None)
        return out
    f_star = float(reference.objective)
    gap = (f - f_star) / abs(f_star) if f_star != 0 else abs(f - f_star)
    out["f_star"] = f_star
    if reference.proven_optimal:
        out["gap"] = gap
    else:  # the reference is only the best known answer: no claim of a gap to the optimum
        out["gap"] = None
        out["gap_to_best_known"] = gap
        out["f_star_note"] = (f"not proven optimal ({reference.method}, status {reference.status}, mip gap "
                              f"{reference.mip_gap}): f_star is the best known objective")
    land = None
    if model.n_variables <= BRUTE_FORCE_MAX_VARIABLES:
        land = landscape(model)
        out["f_max"] = land.f_max
        out["approximation_ratio"] = _ratio(f, land)
        out["n_feasible"] = int(land.feasible.sum())
        out["uniform_p_optimum"] = float(land.optimal.sum() / land.feasible.sum())
    else:
        out["approximation_ratio"] = None
        out["approximation_ratio_note"] = ("needs the worst feasible objective, known by brute force only "
                                           f"(<= {BRUTE_FORCE_MAX_VARIABLES} bits)")
    if dist is None or dist.get("p") is None:
        return out
    if isinstance(dist["p"], tuple):  # sparse reads: (bits, counts)
        X, p = dist["p"]
        total = p.sum()
        if total <= 0 or not len(X):
            return out
        p = p / total
        feas = np.atleast_1d(model.is_feasible(X))
        fvals = np.atleast_1d(model.objective(X))
        opt = feas & (fvals <= f_star + 1e-12 * max(1.0, abs(f_star)))
    else:
        p = np.asarray(dist["p"], float)
        total = p.sum()
        if total <= 0:
            return out
        p = p / total
        if land is not None:
            feas, opt, fvals = land.feasible, land.optimal, land.objective
        else:
            idx = np.flatnonzero(p)
            X = index_to_bits(idx, model.n_variables)
            feas = np.zeros(len(p), bool)
            feas[idx] = model.is_feasible(X)
            fvals = np.full(len(p), np.inf)
            fvals[idx] = model.objective(X)
            opt = feas & (fvals <= f_star + 1e-12 * max(1.0, abs(f_star)))
    p_feas = float(p[feas].sum())
    p_opt = float(p[opt].sum())
    out["p_feasible"] = p_feas
    out["p_optimum"] = p_opt
    out["distribution"] = ("exact probabilities of the final state" if dist["kind"] == "probability"
                           else "fraction of samples")
    if not reference.proven_optimal:
        out["p_optimum_note"] = "probability of the best known answer (the reference is not proven optimal)"
    if p_feas > 0 and (land is not None or isinstance(dist["p"], tuple)):
        mean_f = float((p[feas] * fvals[feas]).sum() / p_feas)
        out["expected_objective_feasible"] = mean_f
    if land is not None and p_feas > 0:
        out["expected_approximation_ratio"] = _ratio(mean_f, land)
    out["tts99_samples"] = _runs_needed(p_opt)
    S = run_diag.get("samples_per_run")
    wall = run_diag.get("wall_time_s")
    if S and wall is not None:
        p_run = 1.0 - (1.0 - p_opt) ** S
        out["tts99_s"] = float(wall * _runs_needed(p_run))
    return out


def _ratio(f: float, land) -> float:
    span = land.f_max - land.f_star
    return 1.0 if span <= 0 else float((land.f_max - f) / span)


def _runs_needed(p: float) -> float:
    if p >= 0.99:
        return 1.0
    if p <= 0:
        return float("inf")
    return float(math.log(0.01) / math.log(1.0 - p))


def _top_samples(p: np.ndarray | None, m: int, kind: str) -> dict:
    if p is None:
        return {}
    nz = np.flatnonzero(p)
    top = nz[np.argsort(-p[nz], kind="stable")[:TOP_SAMPLES]]
    conv = (lambda v: float(v)) if kind == "probability" else (lambda v: int(v))
    return {bitstring(index_to_bits(i, m)): conv(p[i]) for i in top}


def versions() -> dict:
    return package_versions(("numpy", "scipy", "qiskit", "qiskit-aer", "qiskit-optimization", "dimod",
                             "dwave-samplers", "cvxpy", "PySCIPOpt"))


def _bytes(n: int) -> str:
    for unit, size in (("TiB", 2 ** 40), ("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def _whole(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise InvalidValueError(f"{name} must be a whole number >= {lo}, got {v!r}")
    return int(v)


__all__ = ["BINARY_OBJECTIVES", "BINARY_OBJECTIVE_OPTIONS", "METHOD_OPTIONS", "QUANTUM_METHODS", "bitstring",
           "compare", "encode_lots", "repair", "resolve_binary_options", "solve_binary",
           "solve_scip", "statevector_bytes", "versions", "bits_to_index"]
