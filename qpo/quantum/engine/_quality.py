"""Judging an answer against the exact reference: :func:`assess` gives its
:class:`~qpo.quantum.result.SolutionQuality` (the figures are defined in :mod:`qpo.quantum.engine`)."""
from __future__ import annotations

import math
from typing import TypeAlias

import numpy as np

from qpo.quantum.exact import ExactSolution, Landscape, index_to_bits, reference_landscape
from qpo.quantum.formulation import BinaryModel
from qpo.quantum.result import GapConvention, SolutionQuality

#: a method's distribution over decision strings: a dense vector of probabilities (or counts) indexed
#: little-endian, or sparse reads ``(bits (s, m), counts (s,))``
Distribution: TypeAlias = np.ndarray | tuple[np.ndarray, np.ndarray]


def assess(model: BinaryModel, x, reference: ExactSolution | None, p: Distribution | None = None,
           samples_per_run: int | None = None, wall_time_s: float | None = None) -> SolutionQuality:
    """The answer ``x`` next to the exact optimum ``reference`` (None: nothing can be compared), with the
    probabilities of the method's distribution ``p`` when given (and, from ``samples_per_run`` and
    ``wall_time_s``, the time to solution)."""
    f = float(model.objective(x))
    feasible = bool(model.is_feasible(x))
    if reference is None:
        return SolutionQuality(objective_value=f, feasible=feasible)
    f_star = float(reference.objective)
    convention = GapConvention.RELATIVE if f_star != 0 else GapConvention.ABSOLUTE
    gap = (f - f_star) / abs(f_star) if f_star != 0 else abs(f - f_star)
    out: dict = {"objective_value": f, "feasible": feasible, "gap_convention": convention, "f_star": f_star}
    if reference.proven_optimal:
        out["gap"] = gap
    else:  # the reference is only the best known answer: no claim of a gap to the optimum
        out["gap_to_best_known"] = gap
    land = reference_landscape(model, reference)  # brute force's own table: not enumerated again
    if land is not None:
        out.update(f_max=land.f_max, approximation_ratio=_ratio(f, land), n_feasible=int(land.feasible.sum()),
                   uniform_p_optimum=float(land.optimal.sum() / land.feasible.sum()))
    out.update(_probabilities(model, f_star, land, p, samples_per_run, wall_time_s))
    return SolutionQuality(**out)


def _probabilities(model: BinaryModel, f_star: float, land: Landscape | None, dist: Distribution | None,
                   samples_per_run: int | None, wall_time_s: float | None) -> dict:
    """P(feasible), P(optimum), the expected objective and ratio and TTS99 of the distribution."""
    if dist is None:
        return {}
    tol = model.tie_tolerance
    if isinstance(dist, tuple):  # sparse reads: (bits, counts)
        X, p = dist
        total = p.sum()
        if total <= 0 or not len(X):
            return {}
        p = p / total
        feas = np.atleast_1d(model.is_feasible(X))
        fvals = np.atleast_1d(model.objective(X))
        opt = feas & (fvals <= f_star + tol)
    else:
        p = np.asarray(dist, float)
        total = p.sum()
        if total <= 0:
            return {}
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
            opt = feas & (fvals <= f_star + tol)
    p_feas = float(p[feas].sum())
    p_opt = float(p[opt].sum())
    out: dict = {"p_feasible": p_feas, "p_optimum": p_opt}
    if p_feas > 0 and (land is not None or isinstance(dist, tuple)):
        mean_f = float((p[feas] * fvals[feas]).sum() / p_feas)
        out["expected_objective_feasible"] = mean_f
        if land is not None:
            out["expected_approximation_ratio"] = _ratio(mean_f, land)
    out["tts99_samples"] = _runs_needed(p_opt)
    if samples_per_run and wall_time_s is not None:
        p_run = 1.0 - (1.0 - p_opt) ** samples_per_run
        out["tts99_s"] = float(wall_time_s * _runs_needed(p_run))
    return out


def _ratio(f: float, land: Landscape) -> float:
    span = land.f_max - land.f_star
    return 1.0 if span <= 0 else float((land.f_max - f) / span)


def _runs_needed(p: float) -> float:
    if p >= 0.99:
        return 1.0
    if p <= 0:
        return float("inf")
    return float(math.log(0.01) / math.log(1.0 - p))
