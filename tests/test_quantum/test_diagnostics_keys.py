"""The flat ``OptimizationResult.diagnostics`` (what MLflow logs and studies read) keeps every key
of the typed parts: the exact sets are fixed here for an exact, a QAOA and an annealing result
(and the lots model), so that a refactor of the typed results cannot drop a number silently. A
key added on purpose is added here too."""
from __future__ import annotations

import math
import numbers

import pytest

import qpo

COMMON = {"approximation_ratio", "bitstring", "confidence_interval", "evaluations", "exact_bitstring", "exact_method",
          "exact_proven_optimal", "exact_selected", "exact_wall_time_s", "f_max", "f_star", "feasible", "gap",
          "gap_convention", "model", "n_feasible", "objective_value", "penalty", "penalty_rule", "seed", "selected",
          "uniform_p_optimum", "versions"}
SAMPLED = {"distribution", "expected_approximation_ratio", "expected_objective_feasible", "p_feasible", "p_optimum",
           "samples", "samples_per_run", "tts99_s", "tts99_samples", "wall_time_s"}
KEYS = {
    "exact": COMMON | {"proven_optimal"},
    "qaoa": COMMON | SAMPLED | {"backend", "betas", "counts", "cvar_alpha", "energy", "energy_scale", "gammas", "mixer",
                                "optimizer", "qubits", "reps", "restarts", "shots", "statevector_bytes"},
    "annealing": COMMON | SAMPLED | {"expected_approximation_ratio_raw", "n_improved_by_polish", "num_reads",
                                     "p_feasible_raw", "p_feasible_reads", "p_optimum_raw", "parameters",
                                     "penalty_sweep", "polished", "raw_samples", "sampler"},
}
NUMBERS = {"approximation_ratio", "f_star", "gap", "objective_value", "n_feasible", "uniform_p_optimum",
           "exact_wall_time_s"}


@pytest.fixture(scope="module")
def problem(sp500):
    prices = sp500.loc["2018-01-01":"2020-12-31"].iloc[:, :6]
    return qpo.PortfolioProblem.from_returns(prices.pct_change().dropna()), prices.iloc[-1]


@pytest.mark.parametrize("method", sorted(KEYS))
def test_the_diagnostics_keys_of_each_method(problem, method):
    pb, _ = problem
    kw = {} if method == "exact" else {"seed": 1}
    r = qpo.optimize(pb, "asset_selection", method=method, k=2, **kw)
    assert r.method == method
    d = r.diagnostics
    assert set(d) == KEYS[method], (sorted(set(d) - KEYS[method]), sorted(KEYS[method] - set(d)))
    for k in NUMBERS:  # the numbers are numbers, not prose
        assert isinstance(d[k], numbers.Real) and math.isfinite(d[k]), k
    assert d["f_star"] <= d["objective_value"] + 1e-12 and d["gap"] >= -1e-12
    assert len(d["selected"]) == 2 and d["exact_proven_optimal"] is True
    if method != "exact":
        assert -1e-12 <= d["p_optimum"] <= d["p_feasible"] + 1e-12 <= 1 + 2e-12  # probabilities (float sums)


def test_the_diagnostics_keys_of_the_lots_model(problem):
    pb, last = problem
    r = qpo.optimize(pb, "integer_lots", method="exact", prices=last, cash=2500.0, max_lots=3)
    assert set(r.diagnostics) == KEYS["exact"] | {"encoding", "lots", "shares", "spent", "cash_left"}
    assert r.diagnostics["spent"] + r.diagnostics["cash_left"] == pytest.approx(2500.0)
