"""The binary formulations: every export (QUBO table, BQM, CQM, QuadraticProgram, Ising) gives the
same energies; the default penalty makes the penalized minimum the constrained one; the exact
references (brute force, SCIP) agree."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import qpo
from qpo.errors import InvalidValueError, ProblemError, UnknownOptionError
from qpo.quantum.exact import (
    brute_force,
    index_to_bits,
    landscape,
    solve_exact,
    solve_scip,
)
from qpo.quantum.formulation import (
    bounded_coefficients,
    lots_model,
    qubo_energies,
    selection_model,
)


def _all_bits(m):
    return np.array(list(itertools.product([0, 1], repeat=m)))[:, ::-1]  # row i = little-endian bits of i


def test_qubo_table_matches_enumeration():
    rng = np.random.default_rng(3)
    Q = rng.normal(size=(7, 7))
    Q = (Q + Q.T) / 2
    c = rng.normal(size=7)
    X = _all_bits(7)
    want = np.einsum("si,ij,sj->s", X, Q, X) + X @ c + 0.25
    np.testing.assert_allclose(qubo_energies(Q, c, 0.25), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("upper", list(range(1, 41)) + [127, 128, 1000])
def test_bounded_encoding_reaches_exactly_zero_to_upper(upper):
    coefs = bounded_coefficients(upper)
    assert coefs.dtype.kind == "i" and (coefs >= 1).all()
    values = {int(v) for v in _all_bits(len(coefs)) @ coefs} if len(coefs) <= 12 else None
    if values is not None:
        assert values == set(range(upper + 1))
    assert coefs.sum() == upper and len(coefs) == upper.bit_length()


def test_selection_objective_is_the_mean_variance_utility_of_equal_weights(real_problem):
    pb = real_problem(10)
    model = selection_model(pb, 4, risk_aversion=3.0)
    S, mu = pb.annual_cov(), pb.annual_mu()
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = np.zeros(10)
        x[rng.choice(10, 4, replace=False)] = 1
        w = x / 4
        assert model.objective(x) == pytest.approx(1.5 * w @ S @ w - mu @ w, abs=1e-14)
        weights, info = model.decode(x)
        np.testing.assert_allclose(weights.to_numpy(), w)
        assert info["selected"] == [t for t, v in zip(pb.tickers, x) if v]


@pytest.mark.parametrize("cardinality", ["exact", "at_most"])
def test_every_export_has_the_same_energy(real_problem, cardinality):
    from qiskit.quantum_info import Statevector

    model = selection_model(real_problem(7), 3, cardinality=cardinality, risk_aversion=4.0)
    E = model.energies()
    assert len(E) == 2 ** model.n_qubits
    assert model.n_qubits == 7 + (0 if cardinality == "exact" else 2)  # slack 0..3 in bits 1, 2
    bqm = model.to_bqm()
    H, off = model.to_ising()
    labels = list(model.variables) + list(model.slack_variables)
    rng = np.random.default_rng(1)
    for idx in rng.choice(len(E), 40, replace=False):
        z = index_to_bits(idx, model.n_qubits)
        assert bqm.energy(dict(zip(labels, z))) == pytest.approx(E[idx], abs=1e-12)
        basis = np.zeros(len(E))
        basis[idx] = 1.0
        assert float(np.real(Statevector(basis).expectation_value(H))) + off == pytest.approx(E[idx], abs=1e-12)
    # on feasible strings with the right slack the penalty vanishes: E = f
    X = _all_bits(model.n_qubits)
    dec = X[:, :7]
    feas = model.is_feasible(dec)
    if cardinality == "exact":
        np.testing.assert_allclose(E[feas], model.objective(dec[feas]), atol=1e-12)
    # the penalized minimum is feasible and is the constrained optimum
    best = int(np.argmin(E))
    assert model.is_feasible(dec[best])
    assert E[best] == pytest.approx(model.objective(dec[feas]).min(), abs=1e-12)


def test_cqm_and_quadratic_program_agree_with_the_model(real_problem, last_prices):
    from qiskit_optimization.converters import QuadraticProgramToQubo

    pb = real_problem(6)
    for model in (selection_model(pb, 2, risk_aversion=2.0),
                  lots_model(pb, last_prices.iloc[:6], cash=1200.0, max_lots=2, risk_aversion=2.0)):
        cqm = model.to_cqm()
        qp = model.to_quadratic_program()
        X = _all_bits(model.n_variables)
        f = model.objective(X)
        feas = model.is_feasible(X)
        names = list(model.variables)
        for i in range(0, len(X), max(1, len(X) // 60)):
            sample = dict(zip(names, X[i]))
            assert cqm.objective.energy(sample) == pytest.approx(f[i], abs=1e-12)
            assert cqm.check_feasible(sample, atol=1e-9) == feas[i]
            assert qp.objective.evaluate(X[i]) == pytest.approx(f[i], abs=1e-12)
            assert qp.is_feasible(X[i]) == feas[i]
        # qiskit-optimization's own penalty conversion finds the same constrained optimum
        qubo = QuadraticProgramToQubo().convert(qp) if model.kind == "selection" else None
        if qubo is not None:
            nq = qubo.get_num_vars()
            Xq = _all_bits(nq)
            vals = np.array([qubo.objective.evaluate(x) for x in Xq])
            assert f[feas].min() == pytest.approx(vals.min(), abs=1e-9)


@pytest.mark.parametrize("risk_aversion", [0.5, 5.0, 50.0])
@pytest.mark.parametrize("cardinality", ["exact", "at_most"])
def test_brute_force_and_scip_agree_on_selection(real_problem, risk_aversion, cardinality):
    model = selection_model(real_problem(12), 4, cardinality=cardinality, risk_aversion=risk_aversion)
    bf, scip = brute_force(model), solve_scip(model)
    assert scip.proven_optimal and bf.proven_optimal
    assert scip.objective == pytest.approx(bf.objective, abs=1e-10)
    np.testing.assert_array_equal(scip.x, bf.x)
    assert bf.n_feasible == (math.comb(12, 4) if cardinality == "exact" else sum(math.comb(12, j) for j in range(5)))
    # the optimum is not simply the top-k by expected return once risk matters
    if risk_aversion == 50.0:
        top = set(np.argsort(-real_problem(12).annual_mu())[:4])
        assert set(np.flatnonzero(bf.x)) != top


def test_brute_force_and_scip_agree_on_lots(real_problem, last_prices):
    pb = real_problem(6)
    model = lots_model(pb, last_prices.iloc[:6], cash=1500.0, max_lots=3, risk_aversion=5.0)
    bf, scip = brute_force(model), solve_scip(model)
    assert scip.objective == pytest.approx(bf.objective, abs=1e-10)
    w, info = model.decode(bf.x)
    spent = sum(info["lots"][t] * last_prices[t] for t in pb.tickers)
    assert info["spent"] == pytest.approx(spent) and spent <= 1500.0
    np.testing.assert_allclose(w.to_numpy(), [info["lots"][t] * last_prices[t] / 1500.0 for t in pb.tickers])
    # every lot vector within max_lots and the cash was considered: compare with a direct enumeration
    best = np.inf
    S, mu = pb.annual_cov(), pb.annual_mu()
    px = last_prices.iloc[:6].to_numpy()
    for lots in itertools.product(range(4), repeat=6):
        lots = np.array(lots)
        if lots @ px <= 1500.0:
            w = lots * px / 1500.0
            best = min(best, 2.5 * w @ S @ w - mu @ w)
    assert bf.objective == pytest.approx(best, abs=1e-12)


def test_scip_answers_above_the_brute_force_size(real_problem):
    model = selection_model(real_problem(20), 5, risk_aversion=10.0)
    land = landscape(model)  # 2^20: still enumerable here, as the check
    sol = solve_exact(model, method="scip")
    assert sol.method == "scip" and sol.objective == pytest.approx(land.f_star, abs=1e-10)


def test_penalty_is_recorded_and_overridable(real_problem):
    pb = real_problem(8)
    m = selection_model(pb, 3)
    assert m.penalty > 0 and "default" in m.penalty_rule
    m2 = selection_model(pb, 3, penalty=7.5)
    assert m2.penalty == 7.5 and m2.penalty_rule.startswith("given")
    assert m.with_penalty(2.0).penalty == 2.0
    # a larger penalty raises infeasible energies only
    E1, E2 = m.energies(), m.energies(penalty=10 * m.penalty)
    feas = m.feasible_mask()
    np.testing.assert_allclose(E1[feas], E2[feas])
    assert (E2[~feas] > E1[~feas]).all()


def test_bad_input_is_refused_clearly(real_problem, last_prices):
    pb = real_problem(6)
    with pytest.raises(InvalidValueError, match="between 1 and the number of assets"):
        selection_model(pb, 7)
    with pytest.raises(InvalidValueError, match="no asset is not a portfolio"):
        selection_model(pb, 0)
    with pytest.raises(InvalidValueError, match="whole number"):
        selection_model(pb, 2.5)
    with pytest.raises(ProblemError, match="needs k"):
        selection_model(pb)
    with pytest.raises(UnknownOptionError, match="valid: at_most, exact"):
        selection_model(pb, 2, cardinality="around")
    with pytest.raises(ProblemError, match="cannot honour"):
        selection_model(pb.with_constraints(qpo.Constraints(max_weight=0.3)), 2)
    with pytest.raises(InvalidValueError, match="below the cheapest lot"):
        lots_model(pb, last_prices.iloc[:6], cash=1.0)
    with pytest.raises(InvalidValueError, match="whole number of shares"):
        lots_model(pb, last_prices.iloc[:6], cash=1000.0, lot_size=2.5)
    with pytest.raises(InvalidValueError, match="positive finite"):
        lots_model(pb, last_prices.iloc[:6].mul(-1), cash=1000.0)
    with pytest.raises(ProblemError, match="no value for"):
        lots_model(pb, last_prices.iloc[:3], cash=1000.0)
    with pytest.raises(InvalidValueError, match="penalty"):
        selection_model(pb, 2, penalty=0.0)
    with pytest.raises(InvalidValueError, match="brute force is for at most"):
        brute_force(lots_model(real_problem(12), last_prices.iloc[:12], cash=5000.0, max_lots=3))
    # max_assets on the problem gives an at-most selection
    m = selection_model(pb.with_constraints(qpo.Constraints(max_assets=3)))
    assert (m.k, m.cardinality) == (3, "at_most")
