"""``qpo.optimize`` with the binary objectives: every method's answer is checked against the exact
optimum, repaired or replaced, and the diagnostics are right."""
from __future__ import annotations

import math

import numpy as np
import pytest

import qpo
from qpo.errors import InvalidValueError, ProblemError, UnknownOptionError
from qpo.quantum.exact import brute_force
from qpo.quantum.formulation import lots_model, selection_model


def test_exact_method_returns_the_shared_result(real_problem):
    pb = real_problem(12)
    r = qpo.optimize(pb, "asset_selection", method="exact", k=4, risk_aversion=10.0)
    assert isinstance(r, qpo.OptimizationResult) and r.method == "exact" and r.status == "optimal"
    d = r.diagnostics
    bf = brute_force(selection_model(pb, 4, risk_aversion=10.0))
    assert d["objective_value"] == pytest.approx(bf.objective) and d["gap"] == 0.0
    assert d["approximation_ratio"] == pytest.approx(1.0)
    assert d["n_feasible"] == math.comb(12, 4) and d["uniform_p_optimum"] == pytest.approx(1 / math.comb(12, 4))
    chosen = [t for t, v in zip(pb.tickers, bf.x) if v]
    assert d["selected"] == chosen == d["exact_selected"]
    np.testing.assert_allclose(r.weights[chosen], 0.25)
    assert r.weights.sum() == pytest.approx(1.0)
    w = r.weights.to_numpy()
    assert r.expected_return == pytest.approx(pb.annual_mu() @ w)
    assert r.volatility == pytest.approx(np.sqrt(w @ pb.annual_cov() @ w))
    assert d["bitstring"] == "".join("1" if t in chosen else "0" for t in pb.tickers)
    assert set(d["versions"]) >= {"qiskit", "dimod", "dwave-samplers", "numpy"}


def test_lots_exact_spends_within_the_cash(real_problem, last_prices):
    pb = real_problem(6)
    r = qpo.optimize(pb, "integer_lots", method="exact", prices=last_prices.iloc[:6], cash=2500.0, max_lots=3,
                     risk_aversion=5.0)
    d = r.diagnostics
    spent = sum(d["lots"][t] * last_prices[t] for t in pb.tickers)
    assert spent <= 2500.0 and d["spent"] == pytest.approx(spent)
    assert r.weights.sum() == pytest.approx(spent / 2500.0)
    assert "bounded binary encoding" in d["encoding"]


def test_qubit_limit_falls_back_to_the_exact_answer_with_the_reason(real_problem, last_prices):
    pb = real_problem(12)
    # 12 assets x 2 bits + the budget's slack bits: well above 24 qubits; refused, never attempted
    r = qpo.optimize(pb, "integer_lots", method="qaoa", prices=last_prices.iloc[:12], cash=4000.0, max_lots=3)
    assert r.status == "fallback" and "statevector" in r.fallback_reason and "max_qubits=24" in r.fallback_reason
    assert r.solver.endswith("(fallback)") and r.diagnostics["gap"] == 0.0
    # a configurable limit
    r2 = qpo.optimize(pb, "asset_selection", method="qaoa", k=3, max_qubits=10)
    assert r2.status == "fallback" and "12 qubits" in r2.fallback_reason
    assert r2.diagnostics["selected"] == r2.diagnostics["exact_selected"]


def test_repair_makes_an_infeasible_answer_feasible(real_problem):
    from qpo.quantum.engine import repair

    model = selection_model(real_problem(10), 4, risk_aversion=5.0)
    x = np.ones(10)
    fixed = repair(model, x)
    assert model.is_feasible(fixed) and fixed.sum() == 4
    # greedy: each drop is the best single drop
    trial = np.ones(10)
    for _ in range(6):
        on = np.flatnonzero(trial)
        cands = [trial.copy() for _ in on]
        for c, i in zip(cands, on):
            c[i] = 0
        trial = cands[int(np.argmin([model.objective(c) for c in cands]))]
    np.testing.assert_array_equal(fixed, trial)
    x = np.zeros(10)
    assert repair(model, x).sum() == 4


def test_repair_of_lots_sells_until_the_cash_holds(real_problem, last_prices):
    from qpo.quantum.engine import encode_lots, repair

    model = lots_model(real_problem(6), last_prices.iloc[:6], cash=600.0, max_lots=3)
    x = encode_lots(model, [3] * 6)
    assert not model.is_feasible(x)
    fixed = repair(model, x)
    assert model.is_feasible(fixed)
    assert model.decode(fixed)[1]["spent"] <= 600.0


def test_bad_input_gets_clear_errors(real_problem, last_prices):
    pb = real_problem(6)
    with pytest.raises(InvalidValueError, match="between 1 and the number of assets"):
        qpo.optimize(pb, "asset_selection", method="exact", k=7)
    with pytest.raises(InvalidValueError, match="no asset"):
        qpo.optimize(pb, "asset_selection", method="exact", k=0)
    with pytest.raises(InvalidValueError, match="cheapest lot"):
        qpo.optimize(pb, "integer_lots", method="exact", prices=last_prices.iloc[:6], cash=5.0)
    with pytest.raises(InvalidValueError, match="whole number of shares"):
        qpo.optimize(pb, "integer_lots", method="exact", prices=last_prices.iloc[:6], cash=1000.0, lot_size=0.5)
    with pytest.raises(UnknownOptionError, match="unknown method 'quantum'.*annealing.*qaoa"):
        qpo.optimize(pb, "asset_selection", method="quantum", k=2)
    with pytest.raises(UnknownOptionError, match="option for asset_selection with method 'qaoa'.*reps"):
        qpo.optimize(pb, "asset_selection", method="qaoa", k=2, depth=3)
    with pytest.raises(ProblemError, match="continuous weights: use method='classical'"):
        qpo.optimize(pb, "min_variance", method="qaoa")
    with pytest.raises(ProblemError, match="binary problem"):
        qpo.optimize(pb, "asset_selection", k=2)
    with pytest.raises(ProblemError, match="integer_lots needs prices, cash"):
        qpo.optimize(pb, "integer_lots", method="exact")
    with pytest.raises(InvalidValueError, match="max_qubits must be a whole number"):
        qpo.optimize(pb, "asset_selection", method="qaoa", k=2, max_qubits=0)
    # the default objective of a quantum method is asset selection
    assert qpo.optimize(pb, method="exact", k=2).objective == "asset_selection"


def test_qaoa_diagnostics_are_the_final_state_s(real_problem):
    from qpo.quantum.exact import landscape
    from qpo.quantum.qaoa import StatevectorQAOA

    pb = real_problem(8)
    r = qpo.optimize(pb, "asset_selection", method="qaoa", k=3, risk_aversion=10.0, reps=2, seed=5, shots=512)
    d = r.diagnostics
    assert d["mixer"] == "xy" and d["reps"] == 2 and r.solver.startswith("QAOA")
    model = selection_model(pb, 3, risk_aversion=10.0)
    land = landscape(model)
    # rebuild the final state from the recorded angles: P(optimum), P(feasible), the expected ratio
    sim = StatevectorQAOA(model.energies(), mixer="xy", k=3)
    # the angles are those of the normalized cost (diag - shift) / scale: a shift is a global phase
    p = sim.probabilities(np.array(d["gammas"]) / d["energy_scale"], np.array(d["betas"]))
    assert d["p_optimum"] == pytest.approx(p[land.optimal].sum(), abs=1e-12)
    assert d["p_feasible"] == pytest.approx(1.0, abs=1e-12) == pytest.approx(p[land.feasible].sum())
    mean_f = (p[land.feasible] * land.objective[land.feasible]).sum() / p[land.feasible].sum()
    assert d["expected_approximation_ratio"] == pytest.approx((land.f_max - mean_f) / (land.f_max - land.f_star))
    assert d["tts99_samples"] == pytest.approx(math.log(0.01) / math.log(1 - d["p_optimum"]))
    p_run = 1 - (1 - d["p_optimum"]) ** 512
    assert d["tts99_s"] == pytest.approx(d["wall_time_s"] * max(1.0, math.log(0.01) / math.log(1 - p_run)))
    # the samples are the most likely strings, in ticker order
    top = max(d["samples"], key=d["samples"].get)
    idx = int(top[::-1], 2)
    assert d["samples"][top] == pytest.approx(p.max()) and p[idx] == pytest.approx(p.max())
    # the answer: the best string the shots saw
    assert sum(d["counts"].values()) == 512
    seen = [s for s in d["counts"]]
    best_seen = min(seen, key=lambda s: model.objective(np.array([c == "1" for c in s], float)))
    assert d["bitstring"] == best_seen
    # seeded
    again = qpo.optimize(pb, "asset_selection", method="qaoa", k=3, risk_aversion=10.0, reps=2, seed=5, shots=512)
    assert again.diagnostics["counts"] == d["counts"] and again.diagnostics["gammas"] == d["gammas"]


def test_qaoa_with_slack_bits_sums_them_out(real_problem):
    from qpo.quantum.exact import landscape
    from qpo.quantum.qaoa import StatevectorQAOA

    pb = real_problem(6)
    r = qpo.optimize(pb, "asset_selection", method="qaoa", k=2, cardinality="at_most", risk_aversion=10.0,
                     reps=1, seed=2)
    d = r.diagnostics
    assert d["mixer"] == "x" and d["qubits"] == 6 + 2
    model = selection_model(pb, 2, cardinality="at_most", risk_aversion=10.0)
    land = landscape(model)
    p = StatevectorQAOA(model.energies(), mixer="x").probabilities(np.array(d["gammas"]) / d["energy_scale"],
                                                                   np.array(d["betas"]))
    dec = np.bincount(np.arange(len(p)) & 63, weights=p, minlength=64)
    assert d["p_feasible"] == pytest.approx(dec[land.feasible].sum(), abs=1e-12)
    assert d["p_optimum"] == pytest.approx(dec[land.optimal].sum(), abs=1e-12)
    assert 0 < d["p_feasible"] < 1


def test_an_infeasible_qaoa_answer_is_repaired_and_said(real_problem):
    pb = real_problem(8)
    # a penalty far too small: the X mixer's samples choose too many names; 16 shots see no feasible one
    r = qpo.optimize(pb, "asset_selection", method="qaoa", k=2, risk_aversion=1.0, mixer="x", penalty=1e-6,
                     shots=16, seed=0)
    assert r.status == "repaired" and "no sample satisfies" in r.fallback_reason
    assert "repaired greedily" in r.fallback_reason and r.diagnostics["feasible"]
    assert len(r.diagnostics["selected"]) == 2 and r.diagnostics["p_feasible"] < 0.05
    assert r.diagnostics["penalty"] == 1e-6


def test_annealing_finds_the_optimum_of_twenty_names(real_problem):
    pb = real_problem(20)
    for sampler in ("simulated_annealing", "tabu"):
        r = qpo.optimize(pb, "asset_selection", method="annealing", k=5, risk_aversion=10.0, sampler=sampler, seed=4)
        d = r.diagnostics
        assert r.status == "feasible" and d["gap"] == pytest.approx(0.0, abs=1e-12)
        assert d["selected"] == d["exact_selected"] and d["approximation_ratio"] == pytest.approx(1.0)
        assert 0 < d["p_optimum"] <= 1 and d["uniform_p_optimum"] == pytest.approx(1 / math.comb(20, 5))
        assert sum(d["samples"].values()) == d["num_reads"]


def test_auto_picks_by_size_and_unknown_sampler_is_refused(real_problem):
    pb = real_problem(8)
    small = qpo.optimize(pb, "asset_selection", method="auto", k=2, seed=1)
    assert small.diagnostics["method_used"] == "qaoa" and "8 qubits <= auto_qaoa_qubits=12" in small.diagnostics[
        "auto_choice"]
    big = qpo.optimize(pb, "asset_selection", method="auto", k=2, auto_qaoa_qubits=4, seed=1)
    assert big.diagnostics["method_used"] == "annealing" and big.solver.startswith("simulated annealing")
    with pytest.raises(UnknownOptionError, match="unknown sampler 'quantum_magic'; valid: exact, simulated_annealing"):
        qpo.optimize(pb, "asset_selection", method="annealing", k=2, sampler="quantum_magic")
    with pytest.raises(ProblemError, match="XY mixer keeps the number of chosen assets fixed"):
        qpo.optimize(pb, "asset_selection", method="qaoa", k=2, cardinality="at_most", mixer="xy")


def test_without_shots_the_answer_is_the_most_likely_feasible_string(real_problem):
    from qpo.quantum.exact import index_to_bits, landscape
    from qpo.quantum.qaoa import StatevectorQAOA

    pb = real_problem(8)
    r = qpo.optimize(pb, "asset_selection", method="qaoa", k=3, mixer="x", shots=None, maxiter=5, seed=0)
    d = r.diagnostics
    model = selection_model(pb, 3)
    land = landscape(model)
    p = StatevectorQAOA(model.energies(), mixer="x").probabilities(np.array(d["gammas"]) / d["energy_scale"],
                                                                   np.array(d["betas"]))
    p_feasible = np.where(land.feasible, p, -1.0)
    want = index_to_bits(int(np.argmax(p_feasible)), 8)
    assert d["bitstring"] == "".join("1" if v else "0" for v in want)
    assert "counts" not in d


def test_unproven_or_missing_reference_makes_no_gap_claim(real_problem):
    from qpo.quantum.engine import assess
    from qpo.quantum.exact import ExactSolution
    from qpo.quantum.result import BinaryOutcome

    model = selection_model(real_problem(6), 2)
    x = np.array([1, 1, 0, 0, 0, 0], float)
    best_known = ExactSolution(x=np.array([0, 0, 1, 1, 0, 0], float), objective=-1.0, method="scip",
                               proven_optimal=False, wall_time_s=1.0, mip_gap=0.3, status="user_limit")
    q = assess(model, x, best_known)
    assert q.gap is None and q.gap_to_best_known == pytest.approx((model.objective(x) + 1.0) / 1.0)
    assert not q.optimal
    out = BinaryOutcome(model=model, method="exact", x=x, solver="SCIP (cvxpy)", status="feasible", quality=q,
                        reference=best_known, run=best_known).diagnostics()
    assert out["gap"] is None and out["gap_to_best_known"] == q.gap_to_best_known
    assert "not proven optimal" in out["f_star_note"]
    none = assess(model, x, None)
    assert none.f_star is None and none.gap is None and none.objective_value == model.objective(x)
    flat = BinaryOutcome(model=model, method="exact", x=x, solver="", status="", quality=none, reference=None,
                         run=best_known).diagnostics()
    assert flat["f_star"] is None and flat["gap"] is None and flat["objective_value"] == model.objective(x)


def test_more_option_checks(real_problem, last_prices):
    pb = real_problem(6)
    with pytest.raises(ProblemError, match="breaks the problem's max_assets=2"):
        qpo.optimize(pb.with_constraints(qpo.Constraints(max_assets=2)), "asset_selection", method="exact", k=3)
    with pytest.raises(InvalidValueError, match="time_limit must be a positive number"):
        qpo.optimize(pb, "asset_selection", method="exact", k=2, exact_method="scip", time_limit="10")
    with pytest.raises(ProblemError, match="solver= and solver_options= choose the classical"):
        qpo.optimize(pb, "asset_selection", method="exact", k=2, solver="SCIP")
    r = qpo.optimize(pb, "asset_selection", method="qaoa", k=2, inits="tqa", seed=0)
    assert [s["init"] for s in r.diagnostics["restarts"]] == ["tqa"]
    # annealing on more than 24 bits still scores its reads
    big = qpo.optimize(real_problem(10), "integer_lots", method="annealing", prices=last_prices.iloc[:10],
                       cash=600.0, seed=0)
    assert big.diagnostics["model"]["n_variables"] > 24
    assert 0 < big.diagnostics["p_feasible"] <= 1 and big.diagnostics["p_optimum"] is not None
    assert big.diagnostics["exact_method"] == "scip"


@pytest.mark.parametrize("scale", [1.0, 1e-6, 1e-8, 1e4])
def test_the_exact_selection_and_its_quality_do_not_depend_on_the_units(scale):
    """A zero-mean selection (min variance of 2 or 3 of 6 names) on returns x 1e-6 or 1e-8: before,
    objective values within an absolute 1e-12 counted as one optimum, so brute force took the first
    feasible string (A0, A1 for A0, A2), SCIP's absolute tolerances picked a wrong set at 1e-8, and
    tabu's right answer was reported with a gap of -0.52 and a uniform P(optimum) of 1.0. Ties are
    now 1e-9 of the model's largest coefficient, and SCIP solves the objective in those units."""
    import itertools

    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 6)) * 0.01
    cov = a @ a.T + np.diag(rng.uniform(1e-5, 4e-4, 6))
    names = [f"A{i}" for i in range(6)]
    problem = qpo.PortfolioProblem.from_moments(np.zeros(6), cov * scale ** 2, tickers=names)
    for k in (2, 3):
        best = min(itertools.combinations(range(6), k), key=lambda s: cov[np.ix_(s, s)].sum())
        want = [names[i] for i in best]
        for exact in ("brute_force", "scip"):
            r = qpo.optimize(problem, "asset_selection", method="exact", k=k, risk_aversion=1, exact_method=exact)
            assert r.binary.selected == want, (scale, k, exact)
        tabu = qpo.optimize(problem, "asset_selection", method="annealing", k=k, risk_aversion=1, sampler="tabu",
                            seed=3)
        q = tabu.binary.quality
        assert tabu.binary.selected == want and q.gap == pytest.approx(0.0, abs=1e-9)
        assert q.uniform_p_optimum == pytest.approx(1 / math.comb(6, k)) and q.p_optimum <= 1.0


def test_at_most_k_with_fewer_names_says_how_much_is_cash():
    """Every name's utility negative: "at most 3" chooses none, all cash (the model's optimum: 0
    beats every loss), and the result says so (before: weights summing to 0, a NaN Sharpe, status
    optimal, no word); with fewer names than k, the cash share is stated likewise."""
    names = ["A", "B", "C", "D", "E"]
    cov = np.diag([0.04, 0.05, 0.06, 0.07, 0.08])
    losing = qpo.PortfolioProblem.from_moments(np.full(5, -0.05), cov, tickers=names)
    r = qpo.optimize(losing, "asset_selection", method="exact", k=3, cardinality="at_most", risk_aversion=1)
    assert r.binary.selected == [] and r.diagnostics["cash_weight"] == pytest.approx(1.0)
    assert r.diagnostics["note"] == "0 of at most 3 names at 1/3 each: 100.0% of the portfolio is cash (its return " \
                                    "and risk are the names' only)"
    one = qpo.PortfolioProblem.from_moments(np.array([0.30, -0.05, -0.05, -0.05, -0.05]), cov, tickers=names)
    r = qpo.optimize(one, "asset_selection", method="exact", k=3, cardinality="at_most", risk_aversion=1)
    assert r.binary.selected == ["A"] and r.diagnostics["cash_weight"] == pytest.approx(2 / 3)
    full = qpo.optimize(one, "asset_selection", method="exact", k=3, risk_aversion=1)
    assert "cash_weight" not in full.diagnostics and len(full.binary.selected) == 3
