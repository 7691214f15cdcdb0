"""The typed result of a binary solve (``optimize(..., method="exact" | "qaoa" | "annealing" | "auto")``).

``OptimizationResult.binary`` is a :class:`BinaryOutcome`: the model that was solved, the answer's
bits, the exact reference it is judged against (or why there is none), the quality of the answer
(:class:`SolutionQuality`), the distribution the answer was drawn from (:class:`SampleDistribution`,
its kind a :class:`DistributionKind`) and the record of the run (:class:`~qpo.quantum.qaoa.QAOARun`,
:class:`~qpo.quantum.annealing.AnnealingRun`, :class:`~qpo.quantum.exact.ExactSolution` or
:class:`QubitLimit`). ``OptimizationResult.diagnostics`` is the flat view of these parts that MLflow
logs, made by :meth:`BinaryOutcome.diagnostics` (its keys are described in :mod:`qpo.quantum.engine`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np

from qpo.quantum.annealing import AnnealingRun
from qpo.quantum.exact import BRUTE_FORCE_MAX_VARIABLES, ExactSolution
from qpo.quantum.formulation import bitstring
from qpo.quantum.qaoa import QAOARun, statevector_bytes

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from qpo.quantum.formulation import BinaryModel


class DistributionKind(Enum):
    """What the numbers of a :class:`SampleDistribution` are."""

    #: ``|<x|psi>|^2`` of the simulated final state (QAOA on the numpy or qiskit statevector)
    EXACT_STATEVECTOR = "exact_statevector"
    #: counts of samples (annealing reads; QAOA shots when no exact state is kept, as on aer)
    SAMPLED = "sampled"

    @property
    def description(self) -> str:
        """The sentence shown to a reader (``diagnostics["distribution"]``)."""
        return _DISTRIBUTION_TEXT[self]


_DISTRIBUTION_TEXT = {DistributionKind.EXACT_STATEVECTOR: "exact probabilities of the final state",
                      DistributionKind.SAMPLED: "fraction of samples"}


class GapConvention(Enum):
    """How ``SolutionQuality.gap`` compares the objective ``f`` with the optimum ``f*``."""

    #: ``(f - f*) / |f*|``
    RELATIVE = "relative"
    #: ``|f - f*|``, used when ``f* = 0``
    ABSOLUTE = "absolute"

    @property
    def description(self) -> str:
        """The sentence shown to a reader (``diagnostics["gap_convention"]``)."""
        return _GAP_TEXT[self]


_GAP_TEXT = {GapConvention.RELATIVE: "(f - f*) / |f*|, f the mean-variance objective to minimize",
             GapConvention.ABSOLUTE: "|f - f*| (f* = 0), f the mean-variance objective to minimize"}


@dataclass(frozen=True)
class SolutionQuality:
    """The answer next to the exact optimum (None where it cannot be said; see :mod:`qpo.quantum.engine`).

    ``objective_value`` is ``f`` of the answer and ``f_star`` the reference's objective. ``gap`` is
    None when the reference is not proven optimal (then ``gap_to_best_known`` holds the same number).
    ``f_max``, ``approximation_ratio``, ``n_feasible`` and ``uniform_p_optimum`` come from the brute-force
    landscape (at most ``BRUTE_FORCE_MAX_VARIABLES`` bits). The probabilities and ``tts99_*`` are of the
    method's distribution (None for the exact method, or without a reference).
    """

    objective_value: float
    feasible: bool
    gap_convention: GapConvention = GapConvention.RELATIVE
    f_star: float | None = None
    gap: float | None = None
    gap_to_best_known: float | None = None
    f_max: float | None = None
    approximation_ratio: float | None = None
    n_feasible: int | None = None
    uniform_p_optimum: float | None = None
    p_feasible: float | None = None
    p_optimum: float | None = None
    expected_objective_feasible: float | None = None
    expected_approximation_ratio: float | None = None
    tts99_samples: float | None = None
    tts99_s: float | None = None

    @property
    def optimal(self) -> bool:
        """The answer is a proven optimum (a gap is only claimed against a proven reference)."""
        return self.gap is not None and self.gap <= 1e-9


@dataclass(frozen=True)
class SampleDistribution:
    """The distribution a sampler's answer came from, over decision strings (slack bits summed out).

    A string lists the model's variables left to right (``1`` = chosen; not Qiskit's reversed order).
    ``samples`` holds the most likely strings: their probability (``EXACT_STATEVECTOR``) or count
    (``SAMPLED``). ``samples_per_run`` is the shots or reads of one run (None: QAOA drew no shots);
    ``counts`` the strings QAOA's shots saw; ``before_polish`` the annealing sampler's own reads.
    """

    kind: DistributionKind
    samples: dict[str, Any]
    samples_per_run: int | None = None
    counts: dict[str, int] | None = None
    before_polish: SampleDistribution | None = None

    def probabilities(self) -> dict[str, float]:
        """The stored strings with their probability: exact ones as they are, counts over all samples."""
        if self.kind is DistributionKind.EXACT_STATEVECTOR:
            return {s: float(v) for s, v in self.samples.items()}
        total = self.samples_per_run or sum(self.samples.values()) or 1
        return {s: v / total for s, v in self.samples.items()}


@dataclass(frozen=True)
class QubitLimit:
    """QAOA was not run: the model needs more qubits than ``max_qubits`` allows (its statevector takes
    ``16 * 2**qubits`` bytes); the exact answer replaced it."""

    qubits: int
    max_qubits: int


@dataclass(frozen=True, eq=False)
class BinaryOutcome:
    """How a binary objective was solved, in typed parts (``OptimizationResult.binary``).

    ``method`` is the method that ran (``"exact"``, ``"qaoa"`` or ``"annealing"``; ``auto_choice`` says
    why when ``"auto"`` chose it). ``x`` are the answer's decision bits: checked feasible, repaired
    or replaced by the reference's (``fallback_reason``). ``reference`` is the exact optimum it is
    judged against (for the exact method, the answer itself), None when the exact solver failed
    (``reference_error`` says why). ``run`` is the record of the run; ``distribution`` what its samples
    were; ``quality_before_polish`` the annealing sampler's own reads judged the same way.
    """

    model: BinaryModel
    method: str
    x: np.ndarray
    solver: str
    status: str
    quality: SolutionQuality
    reference: ExactSolution | None
    run: QAOARun | AnnealingRun | ExactSolution | QubitLimit
    distribution: SampleDistribution | None = None
    quality_before_polish: SolutionQuality | None = None
    reference_error: str | None = None
    fallback_reason: str | None = None
    auto_choice: str | None = None
    seed: int = 0
    versions: dict[str, str | None] = field(default_factory=dict)

    @property
    def weights(self) -> pd.Series:
        """The portfolio of ``x`` (by ticker)."""
        return self.model.decode(self.x)[0]

    @property
    def decoded(self) -> dict:
        """What ``x`` means: the selected tickers; for lots the lots, shares, cash spent and left."""
        return self.model.decode(self.x)[1]

    @property
    def selected(self) -> list[str]:
        return list(self.decoded["selected"])

    @property
    def bitstring(self) -> str:
        return bitstring(self.x)

    def reference_outcome(self) -> BinaryOutcome | None:
        """The exact reference as an answer of its own (method ``"exact"``), for a side-by-side view;
        built from what this outcome holds, nothing is solved again. None without a reference."""
        ref = self.reference
        if ref is None:
            return None
        if self.method == "exact" and self.run is ref:
            return self
        q = self.quality
        proven = ref.proven_optimal
        quality = SolutionQuality(
            objective_value=float(ref.objective), feasible=True, gap_convention=q.gap_convention,
            f_star=float(ref.objective), gap=0.0 if proven else None, gap_to_best_known=None if proven else 0.0,
            f_max=q.f_max, approximation_ratio=None if q.f_max is None else 1.0, n_feasible=q.n_feasible,
            uniform_p_optimum=q.uniform_p_optimum)
        return BinaryOutcome(model=self.model, method="exact", x=ref.x, solver=ref.solver_name,
                             status="optimal" if proven else "feasible", quality=quality, reference=ref, run=ref,
                             seed=self.seed, versions=self.versions)

    def diagnostics(self) -> dict[str, Any]:
        """The flat view (``OptimizationResult.diagnostics``, what MLflow logs): every number of the typed
        parts under the keys described in :mod:`qpo.quantum.engine`."""
        model = self.model
        out: dict[str, Any] = {"model": model.describe(), "penalty": model.penalty, "penalty_rule": model.penalty_rule,
                               "seed": int(self.seed), "versions": dict(self.versions)}
        if self.auto_choice:
            out["auto_choice"] = self.auto_choice
        if model.kind == "lots":
            out["encoding"] = model.encoding["note"]
        cash = self.decoded.get("cash_weight", 0.0)
        if model.kind == "selection" and cash > 1e-12:  # an "at most k" answer with fewer than k names
            out["cash_weight"] = cash
            out["note"] = (f"{len(self.selected)} of at most {model.k} names at 1/{model.k} each: "
                           f"{cash:.1%} of the portfolio is cash (its return and risk are the names' only)")
        if self.reference_error:
            out["reference_error"] = self.reference_error
        out.update(_run_view(self))
        if self.fallback_reason:
            out["fallback_reason"] = self.fallback_reason
        out.update(_quality_view(self.quality, self))
        if self.quality_before_polish is not None:
            raw = _quality_view(self.quality_before_polish, self)
            out["p_feasible_raw"], out["p_optimum_raw"] = raw.get("p_feasible"), raw.get("p_optimum")
            if "expected_approximation_ratio" in raw:
                out["expected_approximation_ratio_raw"] = raw["expected_approximation_ratio"]
        out.update(self.decoded)
        out["bitstring"] = self.bitstring
        ref = self.reference
        if ref is not None:
            out["exact_bitstring"] = bitstring(ref.x)
            out["exact_selected"] = model.decode(ref.x)[1]["selected"]
            out["exact_method"] = ref.method
            out["exact_proven_optimal"] = ref.proven_optimal
            out["exact_wall_time_s"] = ref.wall_time_s
            if ref.mip_gap is not None:
                out["exact_mip_gap"] = ref.mip_gap
        if self.auto_choice:
            out["method_used"] = self.method
        return out


# -- the flat view, part by part -------------------------------------------------------------------
def _run_view(o: BinaryOutcome) -> dict[str, Any]:
    run, dist = o.run, o.distribution
    if isinstance(run, QubitLimit):
        return {"qubits": run.qubits, "max_qubits": run.max_qubits}
    if isinstance(run, QAOARun):
        nq = o.model.n_qubits
        out: dict[str, Any] = {
            "mixer": run.mixer, "reps": run.reps, "cvar_alpha": run.cvar_alpha, "backend": run.backend,
            "optimizer": run.optimizer, "evaluations": run.evaluations, "wall_time_s": run.wall_time_s,
            "gammas": [float(v) for v in run.gammas], "betas": [float(v) for v in run.betas],
            "energy": float(run.energy), "energy_scale": float(run.energy_scale), "qubits": nq,
            "statevector_bytes": statevector_bytes(nq), "restarts": run.restarts}
        if dist is not None:
            out["shots"] = dist.samples_per_run
            out["samples"] = dict(dist.samples)
            if dist.counts is not None:
                out["counts"] = dict(dist.counts)
            out["samples_per_run"] = dist.samples_per_run
        return out
    if isinstance(run, AnnealingRun):
        out = {"sampler": run.sampler, "num_reads": run.n_reads, "wall_time_s": run.wall_time_s,
               "penalty": run.penalty, "penalty_sweep": run.penalty_sweep, "polished": run.polished,
               "p_feasible_reads": run.p_feasible, "parameters": run.parameters, "evaluations": run.n_reads}
        if dist is not None:
            out["samples"] = dict(dist.samples)
            out["samples_per_run"] = dist.samples_per_run
        out["n_improved_by_polish"] = run.n_improved_by_polish
        if dist is not None and dist.before_polish is not None:
            out["raw_samples"] = dict(dist.before_polish.samples)
        return out
    # the exact method: the run is the reference itself
    out = {"evaluations": 2 ** o.model.n_variables if run.method == "brute_force" else None,
           "proven_optimal": run.proven_optimal}
    if run.mip_gap is not None:
        out["mip_gap"] = run.mip_gap
    return out


def _quality_view(q: SolutionQuality, o: BinaryOutcome) -> dict[str, Any]:
    out: dict[str, Any] = {"objective_value": q.objective_value, "feasible": q.feasible,
                           "gap_convention": q.gap_convention.description}
    ref = o.reference
    if ref is None:
        out.update(f_star=None, gap=None, approximation_ratio=None)
        return out
    out["f_star"] = q.f_star
    out["gap"] = q.gap
    if not ref.proven_optimal:
        out["gap_to_best_known"] = q.gap_to_best_known
        out["f_star_note"] = (f"not proven optimal ({ref.method}, status {ref.status}, mip gap {ref.mip_gap}): "
                              "f_star is the best known objective")
    if o.model.n_variables <= BRUTE_FORCE_MAX_VARIABLES:
        out.update(f_max=q.f_max, approximation_ratio=q.approximation_ratio, n_feasible=q.n_feasible,
                   uniform_p_optimum=q.uniform_p_optimum)
    else:
        out["approximation_ratio"] = None
        out["approximation_ratio_note"] = ("needs the worst feasible objective, known by brute force only "
                                           f"(<= {BRUTE_FORCE_MAX_VARIABLES} bits)")
    if q.p_feasible is None or o.distribution is None:
        return out
    out["p_feasible"] = q.p_feasible
    out["p_optimum"] = q.p_optimum
    out["distribution"] = o.distribution.kind.description
    if not ref.proven_optimal:
        out["p_optimum_note"] = "probability of the best known answer (the reference is not proven optimal)"
    for key in ("expected_objective_feasible", "expected_approximation_ratio", "tts99_samples", "tts99_s"):
        value = getattr(q, key)
        if value is not None:
            out[key] = value
    return out


__all__ = ["BinaryOutcome", "DistributionKind", "GapConvention", "QubitLimit", "SampleDistribution",
           "SolutionQuality"]
