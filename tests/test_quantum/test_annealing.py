"""Annealing samplers (dwave-samplers, local) on real selection and lot models: every sampler finds
the brute-force optimum of small instances, the BQM energies are the model's, seeds reproduce,
the penalty sweep and polishing do what they say, and bad input is refused with a clear error."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from qpo.errors import InvalidValueError, ProblemError, UnknownOptionError
from qpo.quantum.annealing import (
    SAMPLERS,
    default_budget,
    local_search,
    run_annealing,
    sampler_parameters,
)
from qpo.quantum.formulation import lots_model, selection_model


def _all_bits(m: int) -> np.ndarray:
    return np.array(list(itertools.product([0, 1], repeat=m)))[:, ::-1]  # row i = little-endian bits of i


def _brute_selection(model):
    """The optimum over every feasible choice, by model.objective, independent of any sampler."""
    n, k = model.n_variables, model.k
    sizes = [k] if model.cardinality == "exact" else range(k + 1)
    X = []
    for j in sizes:
        for combo in itertools.combinations(range(n), j):
            x = np.zeros(n)
            x[list(combo)] = 1
            X.append(x)
    X = np.array(X)
    f = model.objective(X)
    return X[int(np.argmin(f))], float(f.min()), f


def _brute(model):
    X = _all_bits(model.n_variables).astype(float)
    ok = model.is_feasible(X)
    f = np.where(ok, model.objective(X), np.inf)
    return X[int(np.argmin(f))], float(f.min())


def _index(bits) -> int:
    return int((np.asarray(bits, dtype=np.int64) << np.arange(len(bits), dtype=np.int64)).sum())


@pytest.fixture(scope="module")
def sel12(real_problem):
    return selection_model(real_problem(12), 4)


@pytest.fixture(scope="module")
def sel10_at_most(real_problem):
    return selection_model(real_problem(10), 3, cardinality="at_most")


@pytest.fixture(scope="module")
def lots6(real_problem, last_prices):
    pb = real_problem(6)
    return lots_model(pb, prices=last_prices[pb.tickers], cash=1000.0, max_lots=3)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_finds_the_brute_force_optimum_of_a_selection(sampler, sel12, sel10_at_most):
    for model in (sel12, sel10_at_most):
        x_star, f_star, f_all = _brute_selection(model)
        assert np.sort(f_all)[1] > f_star + 1e-9  # a unique optimum: the bits must match too
        # the brute force through the model's own energy table agrees
        E = model.objective_energies()
        mask = model.feasible_mask()
        assert E[mask].min() == pytest.approx(f_star, abs=1e-12)
        run = run_annealing(model, sampler=sampler, seed=1)
        assert run.feasible and run.sampler == sampler
        assert run.objective == pytest.approx(f_star, abs=1e-12)
        np.testing.assert_array_equal(run.x, x_star)
        assert run.weights.sum() == pytest.approx(x_star.sum() / model.k)
        assert run.versions["dimod"] and run.versions["dwave-samplers"]


@pytest.mark.parametrize("sampler", ["simulated_annealing", "tabu"])
def test_samplers_find_the_lots_optimum(sampler, lots6):
    x_star, f_star = _brute(lots6)
    run = run_annealing(lots6, sampler=sampler, seed=2)
    assert run.feasible
    assert run.objective == pytest.approx(f_star, abs=1e-12)
    np.testing.assert_array_equal(run.x, x_star)


def test_exact_sampler_agrees_with_brute_force_on_selection_and_lots(sel12, sel10_at_most, lots6):
    for model in (sel12, sel10_at_most, lots6):
        x_star, f_star = _brute(model)
        run = run_annealing(model, sampler="exact")
        np.testing.assert_array_equal(run.x, x_star)
        assert run.objective == pytest.approx(f_star, abs=1e-12)
        assert run.n_reads == 1 and run.counts == {run.bitstring: 1}
        assert run.parameters["n_states_enumerated"] == 2 ** model.n_variables
        assert run.parameters["n_feasible_states"] == int(model.feasible_mask().sum())


@pytest.mark.parametrize("which", ["sel10_at_most", "lots6"])
def test_bqm_energies_of_the_reads_are_the_models_energy_table(which, request):
    model = request.getfixturevalue(which)
    assert model.slack_variables  # both have slack bits: the table covers decision and slack bits
    run = run_annealing(model, num_reads=40, num_sweeps=50, polish=False, seed=5)
    table = model.energies()
    bqm = model.to_bqm()
    assert list(run.variables) == list(bqm.variables) == list(model.variables) + list(model.slack_variables)
    idx = np.array([_index(row) for row in run.raw_samples])
    np.testing.assert_allclose(run.raw_energies, table[idx], rtol=0, atol=1e-10)
    np.testing.assert_allclose(bqm.energies((run.raw_samples, list(run.variables))), table[idx], atol=1e-10)
    # random strings too, and E = f exactly where the constraint's residual is zero
    rng = np.random.default_rng(0)
    Z = rng.integers(0, 2, (300, model.n_qubits))
    Z[:, : model.n_variables] = run.raw_samples[rng.integers(0, len(run.raw_samples), 300), : model.n_variables]
    Z = np.vstack([Z, run.samples])
    E = bqm.energies((Z, list(run.variables)))
    np.testing.assert_allclose(E, table[[_index(z) for z in Z]], atol=1e-10)
    con = model.constraints[0]
    coefs = model.slack[0][2]
    s_val = Z[:, model.n_variables:] @ coefs * model.slack_unit[0]
    resid = Z[:, : model.n_variables] @ con.coefficients + s_val - con.rhs
    f = model.objective(Z[:, : model.n_variables].astype(float))
    # E = f + P (residual in the constraint's unit)^2, exactly
    np.testing.assert_allclose(E - f, model.penalty * (resid / con.unit) ** 2, rtol=1e-9, atol=1e-12)
    zero = np.abs(resid) < 1e-9
    if model.kind == "selection":  # (real prices never leave an exact multiple of the slack step)
        assert zero.sum() >= 1 and (model.is_feasible(Z[zero, : model.n_variables]).all())
    np.testing.assert_allclose(E[zero], f[zero], atol=1e-12)
    assert (E[~zero] > f[~zero]).all()


def test_polished_slack_bits_zero_the_residual_of_repaired_reads(sel10_at_most):
    # a tiny penalty leaves the raw reads over the cardinality; repair fixes x and the slack bits follow
    run = run_annealing(sel10_at_most, num_reads=30, penalty_sweep=(0.01,), seed=4)
    m = sel10_at_most.n_variables
    assert run.polish["repaired"] > 0
    changed = (run.samples[:, :m] != run.raw_samples[:, :m]).any(axis=1)
    fixed = changed & sel10_at_most.is_feasible(run.samples[:, :m].astype(float))
    assert fixed.any()
    S = run.samples[fixed]
    slack_val = S[:, m:] @ sel10_at_most.slack[0][2]
    np.testing.assert_array_equal(S[:, :m].sum(axis=1) + slack_val, sel10_at_most.k)
    np.testing.assert_allclose(run.energies[fixed], sel10_at_most.objective(S[:, :m].astype(float)), atol=1e-12)


@pytest.mark.parametrize("sampler", ["simulated_annealing", "tabu", "steepest_descent"])
def test_same_seed_same_answer(sampler, real_problem):
    model = selection_model(real_problem(20), 5)
    kw = {"num_reads": 12, "polish": False}
    a = run_annealing(model, sampler=sampler, seed=11, **kw)
    b = run_annealing(model, sampler=sampler, seed=11, **kw)
    c = run_annealing(model, sampler=sampler, seed=12, **kw)
    np.testing.assert_array_equal(a.raw_samples, b.raw_samples)
    assert a.counts == b.counts and a.objective == b.objective and a.seed == 11
    assert not np.array_equal(a.raw_samples, c.raw_samples)


def test_penalty_sweep_records_every_step_and_keeps_the_best_feasible(sel12):
    _, f_star, _ = _brute_selection(sel12)
    mults = (0.01, 1.0, 4.0)
    run = run_annealing(sel12, num_reads=30, penalty_sweep=mults, polish=False, seed=0)
    rows = run.penalty_sweep
    assert [r["multiplier"] for r in rows] == list(mults)
    np.testing.assert_allclose([r["penalty"] for r in rows], [sel12.penalty * m for m in mults])
    tiny, one, _ = rows
    # too small a penalty: the lowest-energy reads break the cardinality
    assert tiny["lowest_energy_read_feasible"] is False
    assert tiny["p_feasible"] < one["p_feasible"]
    assert tiny["best_energy"] < f_star  # below the constrained optimum: the penalty does not bind
    assert one["lowest_energy_read_feasible"] is True
    # the answer is feasible and comes from a step that had feasible reads
    assert run.feasible and sel12.is_feasible(run.x)
    best = min(r["best_feasible_objective"] for r in rows if r["best_feasible_objective"] is not None)
    assert run.objective == pytest.approx(best, abs=1e-15)
    assert run.penalty in [r["penalty"] for r in rows if r["best_feasible_objective"] == best]
    assert run.penalty != rows[0]["penalty"] or tiny["best_feasible_objective"] == best
    assert run.objective >= f_star - 1e-12


def test_base_penalty_override_and_its_sweep(sel12):
    run = run_annealing(sel12, num_reads=5, penalty=0.3, penalty_sweep=(1, 2), seed=0)
    assert [r["penalty"] for r in run.penalty_sweep] == [0.3, 0.6]
    assert run.penalty in (0.3, 0.6)


def test_polishing_never_makes_a_read_worse_and_reaches_a_swap_optimum(real_problem):
    model = selection_model(real_problem(20), 5)
    kw = {"num_reads": 40, "num_sweeps": 30, "penalty_sweep": (0.05,), "seed": 3}
    raw = run_annealing(model, polish=False, **kw)
    pol = run_annealing(model, polish=True, **kw)
    np.testing.assert_array_equal(raw.raw_samples, pol.raw_samples)  # same reads, then polished
    m = model.n_variables
    f0, f1 = model.objective(pol.raw_samples[:, :m].astype(float)), model.objective(pol.samples[:, :m].astype(float))
    ok0, ok1 = model.is_feasible(pol.raw_samples[:, :m].astype(float)), model.is_feasible(pol.samples[:, :m].astype(float))
    assert (ok1 | ~ok0).all()  # feasible reads stay feasible
    assert (f1[ok0] <= f0[ok0] + 1e-12).all()  # and no feasible read gets a higher objective
    assert (ok1[~ok0] | (pol.energies[~ok0] <= pol.raw_energies[~ok0] + 1e-12)).all()
    assert pol.p_feasible == raw.p_feasible < 1.0  # measured before polishing
    assert pol.polish["repaired"] > 0 and pol.n_improved_by_polish > 0 and pol.polished
    assert pol.objective <= raw.objective + 1e-12
    # the answer is a 1-swap local optimum: no one-out-one-in move lowers f
    x = pol.x
    on, off = np.flatnonzero(x == 1), np.flatnonzero(x == 0)
    for i, j in itertools.product(on, off):
        y = x.copy()
        y[i], y[j] = 0, 1
        assert model.objective(y) >= pol.objective - 1e-12


def test_local_search_reaches_the_optimum_of_a_small_selection_and_refuses_infeasible_starts(sel12, lots6):
    x_star, f_star, _ = _brute_selection(sel12)
    x0 = np.zeros(12)
    x0[[5, 6, 7, 8]] = 1  # not the optimum (which holds assets 0, 1, ...): the search has to swap
    assert sel12.objective(x0) > f_star + 1e-6
    x = local_search(sel12, x0)
    np.testing.assert_array_equal(x, x_star)  # four swaps away, reached by steepest swaps
    np.testing.assert_array_equal(local_search(sel12, x_star), x_star)  # the optimum is a fixed point
    # on lots, single flips within the budget are moves too: from nothing bought it buys
    y = local_search(lots6, np.zeros(lots6.n_variables))
    assert lots6.is_feasible(y) and lots6.objective(y) < lots6.objective(np.zeros(lots6.n_variables))
    with pytest.raises(InvalidValueError, match="feasible"):
        local_search(sel12, np.ones(12))


def test_counts_add_up_and_p_feasible_matches_a_recount(sel12):
    run = run_annealing(sel12, num_reads=25, num_sweeps=40, penalty_sweep=(0.2,), polish=False, seed=9)
    assert sum(run.counts.values()) == run.n_reads == 25
    assert run.counts == run.raw_counts
    m = sel12.n_variables
    assert all(len(key) == m and set(key) <= {"0", "1"} for key in run.counts)
    recount = sum(c for key, c in run.counts.items() if sum(map(int, key)) == sel12.k) / run.n_reads
    assert run.p_feasible == pytest.approx(recount)
    assert 0 < run.p_feasible < 1
    # keys read left to right in the model's variable order (not Qiskit's reversed order)
    assert run.bitstring == "".join(str(int(v)) for v in run.x) and run.counts[run.bitstring] >= 1
    assert run.bitstring.find("1") == int(np.flatnonzero(run.x)[0])
    polished = run_annealing(sel12, num_reads=25, num_sweeps=40, penalty_sweep=(0.2,), seed=9)
    assert sum(polished.counts.values()) == sum(polished.raw_counts.values()) == 25
    assert polished.raw_counts == run.counts


def test_time_limit_stops_simulated_annealing_between_reads(real_problem):
    model = selection_model(real_problem(20), 5)
    run = run_annealing(model, num_reads=50, num_sweeps=20000, time_limit=1e-4, polish=False, seed=0)
    assert 1 <= run.n_reads < 50 and sum(run.counts.values()) == run.n_reads
    assert run.parameters["time_limit"] == 1e-4


def test_defaults_scale_with_size_and_are_recorded(sel12):
    small, big = default_budget("simulated_annealing", 12), default_budget("simulated_annealing", 120)
    assert small["num_sweeps"] == 100 and big["num_sweeps"] == 600
    assert default_budget("steepest_descent", 300)["num_reads"] == 300
    run = run_annealing(sel12, sampler="tabu", seed=0)
    assert run.parameters["num_reads"] == run.n_reads == default_budget("tabu", 12)["num_reads"]
    assert run.parameters["timeout"] is None and run.parameters["tenure"] == 3
    run = run_annealing(sel12, seed=0)
    assert run.parameters["num_sweeps"] == 100 and len(run.parameters["beta_range"]) == 2


def test_bad_input_is_refused_with_what_is_valid(sel12, lots6, real_problem):
    with pytest.raises(UnknownOptionError) as e:
        run_annealing(sel12, sampler="quantum_annealer")
    assert all(s in str(e.value) for s in SAMPLERS)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InvalidValueError, match="num_reads"):
            run_annealing(sel12, num_reads=bad)
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidValueError, match="penalty"):
            run_annealing(sel12, penalty=bad)
    with pytest.raises(InvalidValueError, match="penalty_sweep"):
        run_annealing(sel12, penalty_sweep=(1.0, 0.0))
    with pytest.raises(InvalidValueError, match="penalty_sweep"):
        run_annealing(sel12, penalty_sweep=())
    big = lots_model(real_problem(12), prices=100.0, cash=1000.0, max_lots=3)
    assert big.n_variables == 24
    with pytest.raises(InvalidValueError, match="at most 20 decision variables, this model has 24"):
        run_annealing(big, sampler="exact")
    with pytest.raises(UnknownOptionError) as e:
        run_annealing(sel12, beta_rnage=(0.1, 10))
    assert "beta_range" in str(e.value) and "beta_schedule_type" in str(e.value)
    with pytest.raises(UnknownOptionError, match="unknown tabu option 'num_sweeps_per_beta'.*tenure"):
        run_annealing(sel12, sampler="tabu", num_sweeps_per_beta=2)
    assert "tenure" in sampler_parameters("tabu") and "num_reads" not in sampler_parameters("tabu")
    with pytest.raises(InvalidValueError, match="num_sweeps applies to simulated_annealing only"):
        run_annealing(sel12, sampler="tabu", num_sweeps=100)
    with pytest.raises(InvalidValueError, match="tenure"):
        run_annealing(sel12, sampler="tabu", tenure=50)  # the sampler's own check, reworded
    with pytest.raises(InvalidValueError, match="seed"):
        run_annealing(sel12, seed=-1)
    with pytest.raises(ProblemError, match="BinaryModel"):
        run_annealing(real_problem(12))
