"""The quantum-vs-classical study reads the typed parts of the result: it shows the exact optimum the
result already carries (never solved a second time), the distribution by its kind, and the same
numbers as the flat diagnostics."""
from __future__ import annotations

import math

import numpy as np
import pytest

import qpo
from qpo.errors import ProblemError
from qpo.quantum import BinaryOutcome, DistributionKind, GapConvention
from qpo.quantum.exact import brute_force
from qpo.quantum.formulation import selection_model
from qpo.reporting.quantum import QuantumStudy, quantum_study


def _forbid_exact_solves(monkeypatch):
    """Every exact solver, and the brute-force landscape, raises from here on (wherever it was imported)."""
    import qpo.quantum.engine._solve as solve_module
    import qpo.quantum.exact as exact_module

    def refuse(*args, **kwargs):
        raise AssertionError("the exact reference (or its landscape) was solved again")

    for module, name in ((exact_module, "solve_exact"), (exact_module, "brute_force"), (exact_module, "solve_scip"),
                         (exact_module, "landscape"), (solve_module, "solve_exact")):
        monkeypatch.setattr(module, name, refuse)


def test_the_study_does_not_solve_the_exact_reference_again(real_problem, monkeypatch):
    pb = real_problem(8)
    result = qpo.optimize(pb, "asset_selection", method="qaoa", k=3, risk_aversion=10.0, reps=1, seed=3, shots=256,
                          confidence_level=None)
    f_star = result.binary.quality.f_star
    _forbid_exact_solves(monkeypatch)
    study = QuantumStudy.from_result(pb, result)
    assert study.model is result.binary.model  # not rebuilt
    table = study.comparison()
    assert table["objective f"].iloc[1] == f_star == result.diagnostics["f_star"]
    assert study.exact.diagnostics["objective_value"] == f_star and study.exact.diagnostics["gap"] == 0.0
    assert study.exact.diagnostics["selected"] == result.diagnostics["exact_selected"]
    assert study.metrics()["f_star"] == f_star
    for fig in (study.distribution_figure(), study.landscape_figure(), study.selection_figure()):
        assert fig.data
    # the brute-force optimum, computed here independently, is the f* shown
    monkeypatch.undo()
    assert f_star == pytest.approx(brute_force(selection_model(pb, 3, risk_aversion=10.0)).objective, abs=1e-15)


def test_quantum_study_solves_the_reference_once(real_problem, monkeypatch):
    import qpo.quantum.exact as exact_module

    calls = []
    real = exact_module.brute_force

    def counting(model):
        calls.append(model.n_variables)
        return real(model)

    enumerated = []
    real_landscape = exact_module.landscape

    def counting_landscape(model):
        enumerated.append(model.n_variables)
        return real_landscape(model)

    monkeypatch.setattr(exact_module, "brute_force", counting)
    monkeypatch.setattr(exact_module, "landscape", counting_landscape)
    study = quantum_study(real_problem(8), "asset_selection", method="annealing", k=3, risk_aversion=10.0, seed=1)
    assert study.landscape_figure().data and study.outcome.quality.f_max is not None
    assert calls == [8]  # the reference inside optimize, and nothing more
    assert enumerated == [8]  # its landscape once: judging the answer and the figure reuse it
    assert study.outcome.reference.landscape.f_max == study.outcome.quality.f_max
    assert study.exact.weights.sum() == pytest.approx(1.0)
    assert study.exact.expected_return == pytest.approx(real_problem(8).annual_mu() @ study.exact.weights.to_numpy())


def test_the_exact_answer_of_the_study_is_the_exact_method_s(real_problem):
    """The reference's answer built from the stored parts equals a separate exact solve, number by number."""
    pb = real_problem(8)
    study = quantum_study(pb, "asset_selection", method="qaoa", k=3, risk_aversion=10.0, reps=1, seed=2)
    exact = qpo.optimize(pb, "asset_selection", method="exact", k=3, risk_aversion=10.0, seed=2, confidence_level=None)
    assert study.exact.solver == exact.solver and study.exact.status == exact.status
    assert study.exact.expected_return == exact.expected_return and study.exact.volatility == exact.volatility
    ours, theirs = study.exact.diagnostics, exact.diagnostics
    skip = {"exact_wall_time_s", "versions"}
    assert set(ours) == set(theirs)
    for key in set(ours) - skip:
        if isinstance(ours[key], float):  # the approximation ratio of the optimum: 1 to rounding
            assert ours[key] == pytest.approx(theirs[key], rel=1e-12, abs=1e-15), key
        else:
            assert ours[key] == theirs[key], key


def test_the_typed_parts_behind_the_diagnostics(real_problem):
    pb = real_problem(8)
    r = qpo.optimize(pb, "asset_selection", method="qaoa", k=3, risk_aversion=10.0, reps=1, seed=5, shots=64)
    b = r.binary
    assert isinstance(b, BinaryOutcome) and b.method == "qaoa" and b.model.n_variables == 8
    assert b.distribution.kind is DistributionKind.EXACT_STATEVECTOR
    assert r.diagnostics["distribution"] == DistributionKind.EXACT_STATEVECTOR.description
    assert b.quality.gap_convention is GapConvention.RELATIVE
    assert r.diagnostics["gap_convention"] == GapConvention.RELATIVE.description
    assert sum(b.distribution.counts.values()) == 64 == b.distribution.samples_per_run
    assert b.run.reps == 1 and r.diagnostics["gammas"] == [float(g) for g in b.run.gammas]
    assert b.reference.proven_optimal and b.quality.f_star == b.reference.objective
    q = b.quality
    for key in ("objective_value", "f_star", "gap", "f_max", "approximation_ratio", "n_feasible", "uniform_p_optimum",
                "p_feasible", "p_optimum", "expected_approximation_ratio", "tts99_samples", "tts99_s"):
        assert r.diagnostics[key] == getattr(q, key), key
    assert q.n_feasible == math.comb(8, 3)
    # annealing: sampled reads, and the sampler's own reads judged before polishing
    a = qpo.optimize(pb, "asset_selection", method="annealing", k=3, risk_aversion=10.0, seed=1).binary
    assert a.distribution.kind is DistributionKind.SAMPLED and a.distribution.before_polish is not None
    assert a.quality_before_polish.p_feasible == a.run.p_feasible
    fractions = a.distribution.probabilities()
    assert sum(fractions.values()) == pytest.approx(1.0)
    # the exact method: the run is the reference itself, no distribution
    e = qpo.optimize(pb, "asset_selection", method="exact", k=3).binary
    assert e.run is e.reference and e.distribution is None and e.quality.p_optimum is None
    # the typed part is not in the plain-data view (diagnostics is its flat view)
    assert "binary" not in r.to_dict() and r.to_dict()["diagnostics"]["f_star"] == q.f_star


def test_a_study_needs_a_binary_result(real_problem):
    pb = real_problem(6)
    with pytest.raises(ProblemError, match="needs the result of a binary objective"):
        QuantumStudy.from_result(pb, qpo.optimize(pb, "min_variance", confidence_level=None))


def test_without_a_reference_the_study_shows_the_answer_alone(real_problem, monkeypatch):
    """The exact solver failing in time leaves no reference: the study shows the answer, no exact row."""
    import qpo.quantum.engine._solve as solve_module
    from qpo.errors import SolverError

    def fail(*args, **kwargs):
        raise SolverError("SCIP found no solution (time limit 0.01 s)")

    monkeypatch.setattr(solve_module, "solve_exact", fail)
    study = quantum_study(real_problem(6), "asset_selection", method="annealing", k=2, seed=0)
    assert study.exact is None and study.result.binary.reference is None
    assert "time limit" in study.result.diagnostics["reference_error"]
    assert len(study.comparison()) == 1 and list(study.selection().columns) == ["weight", "chosen"]
    assert study.metrics()["optimal_found"] == 0.0 and "exact_expected_return" not in study.metrics()
    assert np.isclose(study.result.weights.sum(), 1.0)
    assert study.distribution_figure().data and study.selection_figure().data
    assert "no exact reference" in study.landscape_figure().layout.annotations[0].text  # nothing enumerated


def test_a_result_does_not_hold_a_large_final_state(real_problem, monkeypatch):
    """A QAOA result keeps its top samples and every number, not a 2**n state vector (128 MiB at
    24 qubits) for as long as it lives; small states stay."""
    from qpo.quantum.engine import _solve

    pb = real_problem(6)
    kw = dict(method="qaoa", k=2, risk_aversion=10.0, reps=1, mixer="xy", seed=3)
    full = qpo.optimize(pb, "asset_selection", **kw)
    assert full.binary.run.probabilities is not None  # 2**n amplitudes, n small: kept
    monkeypatch.setattr(_solve, "KEEP_STATE_MAX_AMPLITUDES", 8)
    lean = qpo.optimize(pb, "asset_selection", **kw)
    assert lean.binary.run.probabilities is None
    assert lean.binary.distribution is not None and lean.binary.distribution.probabilities()
    assert lean.binary.distribution.probabilities() == full.binary.distribution.probabilities()
    for key, value in full.diagnostics.items():
        if "time" not in key and not key.endswith("_s"):
            assert lean.diagnostics[key] == value, key
    with pytest.raises(qpo.InvalidValueError, match="run_qaoa returns the whole state"):
        lean.binary.run.most_likely(3)
