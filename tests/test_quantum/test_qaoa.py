"""QAOA: the numpy fast path against Qiskit's own simulators (state, expectation, samples), the
mixers' invariants, hand-computed small cases, exact CVaR, that optimization improves the energy,
determinism, and the input errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import expm

from qpo.errors import InvalidValueError, UnknownOptionError
from qpo.quantum import qaoa as Q
from qpo.quantum.qaoa import StatevectorQAOA, _statevector, initial_parameters, qaoa_circuit, run_qaoa

X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]])
I2 = np.eye(2)


# -- helpers (independent of the module) ----------------------------------------------------------
def random_qubo(n: int, seed: int):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n))
    return (A + A.T) / 2, rng.normal(size=n), float(rng.normal())


def qubo_table(Qm, c, off):
    """x'Qx + c'x + off of every bitstring by enumeration (little-endian index)."""
    n = len(c)
    bits = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(float)
    return np.einsum("si,ij,sj->s", bits, Qm, bits) + bits @ c + off


def qubo_to_pauli(Qm, c, off):
    """The QUBO as a Z/ZZ SparsePauliOp and constant, with x_j = (1 - z_j)/2."""
    from qiskit.quantum_info import SparsePauliOp

    n = len(c)
    terms, const = [], off
    for i in range(n):
        # Q_ii x_i^2 + c_i x_i = (Q_ii + c_i)(1 - z_i)/2
        lin = Qm[i, i] + c[i]
        const += lin / 2
        h = -lin / 2
        for j in range(n):
            if j != i:  # Q_ij x_i x_j + Q_ji x_j x_i = (Q_ij + Q_ji)(1 - z_i - z_j + z_i z_j)/4
                const += Qm[i, j] / 4
                h -= (Qm[i, j] + Qm[j, i]) / 4
        terms.append(("Z", [i], h))
        for j in range(i + 1, n):
            terms.append(("ZZ", [i, j], (Qm[i, j] + Qm[j, i]) / 4))
    return SparsePauliOp.from_sparse_list(terms, n), const


def kron_all(mats):
    out = np.array([[1.0 + 0j]])
    for m in mats:
        out = np.kron(out, m)
    return out


def op_on(n, ops: dict):
    """Dense operator with ops[q] on qubit q (little-endian: qubit 0 is the rightmost kron factor)."""
    return kron_all([ops.get(q, I2) for q in reversed(range(n))])


def dense_state(diag, gammas, betas, mixer, k=None):
    """Reference QAOA state from dense matrix exponentials."""
    n = int(np.log2(len(diag)))
    if mixer == "x":
        psi = np.full(2 ** n, 2 ** (-n / 2), dtype=complex)
        B = sum(op_on(n, {q: X}) for q in range(n))
        mixers = [lambda b: expm(-1j * b * B)]
    else:
        w = np.array([i.bit_count() for i in range(2 ** n)])
        psi = (w == k).astype(complex) / math.sqrt(math.comb(n, k))
        edges = [(0, 1)] if n == 2 else (
            [(j, j + 1) for j in range(0, n - 1, 2)] + [(j, j + 1) for j in range(1, n - 1, 2)] + [(n - 1, 0)])
        hs = [(op_on(n, {i: X, j: X}) + op_on(n, {i: Y, j: Y})) / 2 for i, j in edges]
        mixers = [lambda b, h=h: expm(-1j * b * h) for h in hs]
    for g, b in zip(gammas, betas):
        psi = np.exp(-1j * g * diag) * psi
        for m in mixers:
            psi = m(b) @ psi
    return psi


def overlap(a, b):
    return abs(np.vdot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b))


@pytest.fixture(scope="module")
def model8(real_problem):
    from qpo.quantum.formulation import selection_model

    # risk_aversion 10: the optimum is not simply the top 4 by mean return (checked below)
    return selection_model(real_problem(8), k=4, risk_aversion=10.0)


# -- the fast path against Qiskit ------------------------------------------------------------------
@pytest.mark.parametrize("n", [4, 5, 6, 9])
@pytest.mark.parametrize("mixer", ["x", "xy"])
@pytest.mark.parametrize("p", [1, 2])
def test_state_matches_qiskit_statevector(n, mixer, p):
    from qiskit.quantum_info import Statevector

    Qm, c, off = random_qubo(n, seed=n)
    diag = qubo_table(Qm, c, off)
    op, const = qubo_to_pauli(Qm, c, off)
    np.testing.assert_allclose(Q.ising_diagonal((op, const)), diag, atol=1e-12)
    k = n // 2 if mixer == "xy" else None
    rng = np.random.default_rng(10 * n + p)
    g, b = rng.uniform(-1.5, 1.5, p), rng.uniform(-1.5, 1.5, p)
    fast = StatevectorQAOA(diag, mixer=mixer, k=k).state(g, b)
    assert fast.shape == (2 ** n,) and abs(np.linalg.norm(fast) - 1) < 1e-12
    for dicke in (["gates", "initialize"] if mixer == "xy" else ["gates"]):
        circ = Q.bind_angles(qaoa_circuit(op, p, mixer=mixer, k=k, dicke=dicke), g, b)
        ref = Statevector(circ).data
        assert abs(abs(np.vdot(ref, fast)) - 1) < 1e-9
    if n <= 5:  # and against dense matrix exponentials
        assert abs(overlap(dense_state(diag, g, b, mixer, k), fast) - 1) < 1e-9


@pytest.mark.parametrize("mixer", ["x", "xy"])
def test_state_matches_qiskit_on_real_selection_model(real_problem, mixer):
    from qiskit.quantum_info import Statevector

    from qpo.quantum.formulation import selection_model

    model = selection_model(real_problem(6), k=3, risk_aversion=10.0)
    diag = model.energies()
    op, offset = model.to_ising()
    np.testing.assert_allclose(Q.ising_diagonal((op, offset)), diag, rtol=0, atol=1e-12)
    # angles on the scale of the energies (they are ~0.1 per year)
    g, b = np.array([3.0, 7.0]), np.array([-0.6, -0.3])
    fast = StatevectorQAOA(diag, mixer=mixer, k=3).state(g, b)
    ref = Statevector(Q.bind_angles(qaoa_circuit(model.to_ising(), 2, mixer=mixer, k=3), g, b)).data
    assert abs(abs(np.vdot(ref, fast)) - 1) < 1e-9


def test_xx_plus_yy_angle_and_ring_order():
    from qiskit.circuit.library import XXPlusYYGate
    from qiskit.quantum_info import Operator

    for beta in (0.3, -1.1):
        want = expm(-1j * beta * (np.kron(X, X) + np.kron(Y, Y)) / 2)
        np.testing.assert_allclose(Operator(XXPlusYYGate(2 * beta)).data, want, atol=1e-14)
    assert Q.ring_edges(2) == [(0, 1)]
    assert Q.ring_edges(5) == [(0, 1), (2, 3), (1, 2), (3, 4), (4, 0)]
    assert Q.ring_edges(6) == [(0, 1), (2, 3), (4, 5), (1, 2), (3, 4), (5, 0)]
    op, _ = qubo_to_pauli(*random_qubo(5, 0))
    circ = qaoa_circuit(op, 2, mixer="xy", k=2)
    xy = [tuple(circ.find_bit(q).index for q in inst.qubits) for inst in circ.data if inst.operation.name ==
          "xx_plus_yy"]
    assert xy == Q.ring_edges(5) * 2
    assert {p.name for p in circ.parameters} == {"gamma[0]", "gamma[1]", "beta[0]", "beta[1]"}


@pytest.mark.parametrize("n", range(2, 8))
def test_dicke_gates_prepare_the_exact_dicke_state(n):
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import Statevector

    from qpo.quantum.qaoa._circuits import _dicke_gates

    for k in range(1, n):
        qc = QuantumCircuit(n)
        _dicke_gates(qc, n, k)
        sv = Statevector(qc).data
        want = Q.dicke_state(n, k)
        assert abs(abs(np.vdot(want, sv)) - 1) < 1e-12
        assert want[(1 << k) - 1] == pytest.approx(1 / math.sqrt(math.comb(n, k)))


@pytest.mark.parametrize("mixer", ["x", "xy"])
def test_expectation_matches_qiskit_and_aer_estimators(mixer):
    from qiskit.primitives import StatevectorEstimator
    from qiskit_aer.primitives import EstimatorV2

    n, p = 5, 2
    Qm, c, off = random_qubo(n, seed=42)
    diag = qubo_table(Qm, c, off)
    op, const = qubo_to_pauli(Qm, c, off)
    k = 2 if mixer == "xy" else None
    g, b = np.array([0.4, 0.9]), np.array([-0.7, -0.2])
    sim = StatevectorQAOA(diag, mixer=mixer, k=k)
    fast = sim.expectation(g, b)
    circ = qaoa_circuit(op, p, mixer=mixer, k=k)
    vals = Q.parameter_values(circ, g, b)
    ev_sv = float(StatevectorEstimator().run([(circ, op, vals)]).result()[0].data.evs) + const
    from qiskit import transpile
    from qiskit_aer import AerSimulator

    aer = EstimatorV2(options={"backend_options": {"method": "statevector"}})
    compiled = transpile(circ, AerSimulator(method="statevector"), optimization_level=0)  # XXPlusYY -> basis
    ev_aer = float(aer.run([(compiled, op, Q.parameter_values(compiled, g, b))]).result()[0].data.evs) + const
    assert fast == pytest.approx(ev_sv, abs=1e-8)
    assert fast == pytest.approx(ev_aer, abs=1e-8)
    # and the expectation is the probability-weighted energy
    assert fast == pytest.approx(float(sim.probabilities(g, b) @ diag), abs=1e-12)


@pytest.mark.parametrize("mixer", ["x", "xy"])
def test_sampler_counts_follow_the_fast_path_probabilities(mixer):
    from qiskit.primitives import StatevectorSampler
    from scipy.stats import chisquare

    n = 5
    Qm, c, off = random_qubo(n, seed=7)
    diag = qubo_table(Qm, c, off)
    op, _ = qubo_to_pauli(Qm, c, off)
    k = 2 if mixer == "xy" else None
    g, b = np.array([0.8, 0.5]), np.array([-0.5, -0.9])
    probs = StatevectorQAOA(diag, mixer=mixer, k=k).probabilities(g, b)
    circ = qaoa_circuit(op, 2, mixer=mixer, k=k, measure=True)
    shots = 40_000
    res = StatevectorSampler(seed=3).run([(circ, Q.parameter_values(circ, g, b))], shots=shots).result()
    observed = np.zeros(2 ** n)
    for key, cnt in res[0].data.meas.get_counts().items():
        observed[int(key, 2)] += cnt  # qubit 0 rightmost
    keep = probs * shots >= 5
    rest = ~keep
    obs = np.append(observed[keep], observed[rest].sum())
    exp = np.append(probs[keep], probs[rest].sum()) * shots
    if exp[-1] < 5:  # merge a tiny tail into the last kept bin
        obs, exp = np.append(obs[:-2], obs[-2:].sum()), np.append(exp[:-2], exp[-2:].sum())
    assert chisquare(obs, exp * obs.sum() / exp.sum()).pvalue > 1e-3
    assert np.abs(observed / shots - probs).max() < 0.01
    if mixer == "xy":
        assert observed[np.bitwise_count(np.arange(2 ** n)) != k].sum() == 0


# -- invariants and hand-computed cases ------------------------------------------------------------
@pytest.mark.parametrize("n,k", [(7, 3), (8, 4), (8, 1), (2, 1), (3, 2)])
def test_xy_mixer_keeps_probability_on_weight_k(n, k):
    diag = np.random.default_rng(n).normal(size=2 ** n)
    sim = StatevectorQAOA(diag, mixer="xy", k=k)
    probs = sim.probabilities([0.7, -1.3, 2.1], [0.4, 1.1, -0.8])
    weight = np.bitwise_count(np.arange(2 ** n))
    assert probs[weight != k].sum() < 1e-13
    assert probs[weight == k].sum() == pytest.approx(1.0, abs=1e-12)
    assert probs[weight == k].std() > 1e-3  # the state did move


def test_x_mixer_at_beta_zero_keeps_uniform_probabilities():
    n = 6
    diag = np.random.default_rng(0).normal(size=2 ** n)
    sim = StatevectorQAOA(diag, mixer="x")
    np.testing.assert_allclose(sim.probabilities([0.9, 2.3], [0.0, 0.0]), 1 / 2 ** n, atol=1e-14)


@pytest.mark.parametrize("mixer", ["x", "xy"])
def test_gamma_zero_leaves_the_start_state(mixer):
    n, k = 6, 2
    diag = np.random.default_rng(1).normal(size=2 ** n)
    sim = StatevectorQAOA(diag, mixer=mixer, k=k)
    start = sim.initial_state()
    if mixer == "x":  # |+> is an eigenstate of every X mixer: only a global phase
        for b in (0.3, -1.2):
            assert abs(np.vdot(start, sim.state([0.0, 0.0], [b, 0.5]))) == pytest.approx(1.0, abs=1e-12)
    # gamma = beta = 0: nothing happens, for both mixers
    np.testing.assert_allclose(sim.state([0.0], [0.0]), start, atol=1e-15)
    if mixer == "xy":
        np.testing.assert_allclose(np.abs(start) ** 2, Q.dicke_state(n, k) ** 2, atol=1e-15)
        assert np.count_nonzero(start) == math.comb(n, k)


def test_one_qubit_by_hand():
    e0, e1 = 0.3, -1.1
    diag = np.array([e0, e1])
    sim = StatevectorQAOA(diag, mixer="x")
    for g, b in [(0.7, -0.4), (2.0, 0.9), (-1.3, 0.2)]:
        # |psi> = RX(2b) diag(e^{-i g e0}, e^{-i g e1}) |+>: P(1) = (1 + sin 2b sin(g (e1 - e0)))/2
        p1 = (1 + math.sin(2 * b) * math.sin(g * (e1 - e0))) / 2
        probs = sim.probabilities([g], [b])
        assert probs[1] == pytest.approx(p1, abs=1e-14)
        assert sim.expectation([g], [b]) == pytest.approx((1 - p1) * e0 + p1 * e1, abs=1e-14)
        a0, a1 = np.exp(-1j * g * e0) / math.sqrt(2), np.exp(-1j * g * e1) / math.sqrt(2)
        c, s = math.cos(b), math.sin(b)
        np.testing.assert_allclose(sim.state([g], [b]), [c * a0 - 1j * s * a1, -1j * s * a0 + c * a1], atol=1e-15)


def test_two_qubits_by_hand():
    diag = np.array([5.0, 0.2, -0.6, 3.0])
    # XY, k = 1: start (|01> + |10>)/sqrt 2, one XX+YY rotation; |00>, |11> never populated
    sim = StatevectorQAOA(diag, mixer="xy", k=1)
    g, b = 1.3, -0.45
    # as the one-qubit case with |01> (index 1) as |0> and |10> (index 2) as |1>
    p10 = (1 + math.sin(2 * b) * math.sin(g * (diag[2] - diag[1]))) / 2
    probs = sim.probabilities([g], [b])
    np.testing.assert_allclose(probs, [0, 1 - p10, p10, 0], atol=1e-14)
    assert p10 > 0.8  # the lower of the two energies gained
    # X mixer on 2 qubits: the product of two RX rotations
    sim = StatevectorQAOA(diag, mixer="x")
    rx = expm(-1j * b * X)
    want = np.kron(rx, rx) @ (np.exp(-1j * g * diag) / 2)
    np.testing.assert_allclose(sim.state([g], [b]), want, atol=1e-14)


def test_cvar_exact():
    diag = np.array([2.0, -1.0])
    sim = StatevectorQAOA(diag, mixer="x")
    probs = np.array([0.3, 0.7])
    assert sim.cvar(probs, 0.5) == pytest.approx(-1.0)
    assert sim.cvar(probs, 0.8) == pytest.approx((0.7 * -1 + 0.1 * 2) / 0.8)
    assert sim.cvar(probs, 1.0) == pytest.approx(0.3 * 2 - 0.7)
    # on a real state: alpha = 1 is the mean; a small alpha on the uniform start is the minimum
    n, k = 6, 3
    diag = np.random.default_rng(5).normal(size=2 ** n)
    for mixer in ("x", "xy"):
        sim = StatevectorQAOA(diag, mixer=mixer, k=k)
        g, b = [0.6, 1.1], [-0.4, -0.3]
        probs = sim.probabilities(g, b)
        assert sim.expectation(g, b, cvar_alpha=1.0) == pytest.approx(float(probs @ diag), abs=1e-12)
        assert sim.cvar(probs, 1.0) == pytest.approx(float(probs @ diag), abs=1e-12)
        support = np.arange(2 ** n) if mixer == "x" else np.flatnonzero(np.bitwise_count(np.arange(2 ** n)) == k)
        smallest = 0.5 / support.size  # below the mass of any one state of the uniform start
        assert sim.expectation([0.0], [0.0], cvar_alpha=smallest) == pytest.approx(diag[support].min(), abs=1e-12)
        # CVaR by brute force: sort, take the lowest 60 % of the mass (several states and a fraction)
        order = support[np.argsort(diag[support])]
        cum = np.cumsum(probs[order])
        i = int(np.searchsorted(cum, 0.6))
        assert i >= 2
        want = (probs[order][:i] @ diag[order][:i] + (0.6 - cum[i - 1]) * diag[order][i]) / 0.6
        assert sim.expectation(g, b, cvar_alpha=0.6) == pytest.approx(want, abs=1e-12)
        assert sim.expectation(g, b, cvar_alpha=0.6) < sim.expectation(g, b)


# -- optimization ----------------------------------------------------------------------------------
def test_optimization_improves_the_energy():
    n = 6
    diag = qubo_table(*random_qubo(n, seed=11))
    for mixer, k in (("x", None), ("xy", 3)):
        run = run_qaoa(diag, reps=2, mixer=mixer, k=k, maxiter=150, seed=1)
        support = np.arange(2 ** n) if k is None else np.flatnonzero(np.bitwise_count(np.arange(2 ** n)) == k)
        uniform = diag[support].mean()
        assert run.energy < uniform - 0.2 * diag[support].std()
        assert all(r["final_energy"] < r["start_energy"] for r in run.restarts)
        assert run.energy == min(r["final_energy"] for r in run.restarts)
        assert run.history[0] == pytest.approx(run.best_start["start_energy"])
        assert min(run.history) == pytest.approx(run.energy)
        # the reported energy is the expectation of the original diag at the reported angles
        assert float(run.probabilities @ diag) == pytest.approx(run.energy, rel=1e-9, abs=1e-12)
        assert run.evaluations == sum(r["evaluations"] for r in run.restarts)
        assert run.energy_scale == pytest.approx(diag[support].std())
        assert run.versions["numpy"] == np.__version__


def test_p3_xy_on_real_selection_concentrates_on_the_optimum(model8, real_problem):
    n, k = 8, 4
    diag = model8.energies()
    weight = np.bitwise_count(np.arange(2 ** n))
    feasible = np.flatnonzero(weight == k)
    best = int(feasible[np.argmin(diag[feasible])])
    mu = np.asarray(real_problem(8).annual_mu())
    assert best != sum(1 << int(i) for i in np.argsort(-mu)[:k])  # not just the top 4 by mean return
    run = run_qaoa(diag, reps=3, mixer="xy", k=k, maxiter=300, seed=0)
    uniform = 1 / math.comb(n, k)
    assert run.probabilities[best] > 5 * uniform
    assert run.probabilities[feasible].sum() == pytest.approx(1.0, abs=1e-12)
    f = diag[feasible]
    ratio = (f.max() - run.energy) / (f.max() - f.min())
    assert 0.7 < ratio < 1.0


def test_cvar_objective_and_optimizers():
    n = 5
    diag = qubo_table(*random_qubo(n, seed=2))
    runs = {opt: run_qaoa(diag, reps=1, optimizer=opt, maxiter=60, inits=("tqa",)) for opt in Q.OPTIMIZERS}
    for opt, run in runs.items():
        assert run.optimizer == opt and run.evaluations <= 60
        assert run.energy < run.restarts[0]["start_energy"]
    cv = run_qaoa(diag, reps=1, cvar_alpha=0.25, maxiter=80)
    sim = StatevectorQAOA((diag - cv.energy_shift) / cv.energy_scale)
    value = sim.expectation(cv.gammas, cv.betas, cvar_alpha=0.25)
    assert cv.energy == pytest.approx(value * cv.energy_scale + cv.energy_shift, abs=1e-12)
    assert cv.energy < runs["COBYLA"].energy  # the lowest quarter beats the mean


def test_seeded_runs_are_identical_and_counts_use_qiskit_order():
    n = 6
    diag = qubo_table(*random_qubo(n, seed=4))
    kw = {"reps": 2, "n_random": 2, "maxiter": 40, "shots": 500, "seed": 123}
    a, b = run_qaoa(diag, **kw), run_qaoa(diag, **kw)
    np.testing.assert_array_equal(a.gammas, b.gammas)
    np.testing.assert_array_equal(a.betas, b.betas)
    assert a.energy == b.energy and a.counts == b.counts and a.history == b.history
    assert [r["start_gammas"] for r in a.restarts] == [r["start_gammas"] for r in b.restarts]
    assert [r["init"] for r in a.restarts] == ["linear_ramp", "tqa", "random", "random"]
    c = run_qaoa(diag, **{**kw, "seed": 124})
    assert c.restarts[2]["start_gammas"] != a.restarts[2]["start_gammas"]
    assert sum(a.counts.values()) == 500 and all(len(s) == n for s in a.counts)
    top = max(a.counts, key=a.counts.get)
    assert int(top, 2) == a.most_likely(1)[0][0]  # qubit 0 is the rightmost character


@pytest.mark.parametrize("backend", ["qiskit", "aer"])
def test_qiskit_backends_reproduce_the_numpy_loop(backend, real_problem):
    from qpo.quantum.formulation import selection_model

    model = selection_model(real_problem(6), k=3, risk_aversion=10.0)
    diag = model.energies()
    ising, _ = model.to_ising()  # the offset is inferred from diag
    for mixer in ("x", "xy"):
        kw = {"reps": 2, "mixer": mixer, "k": 3 if mixer == "xy" else None, "maxiter": 15, "inits": ("tqa",),
              "seed": 0}
        ref = run_qaoa(diag, **kw)
        run = run_qaoa(diag, backend=backend, ising=ising, shots=300, **kw)
        assert run.backend == backend and run.evaluations == ref.evaluations
        np.testing.assert_allclose(run.history, ref.history, rtol=0, atol=1e-9)
        np.testing.assert_allclose(run.gammas, ref.gammas, atol=1e-6)
        assert sum(run.counts.values()) == 300
        if backend == "qiskit":
            np.testing.assert_allclose(run.probabilities, ref.probabilities, atol=1e-9)
        else:
            assert run.probabilities is None
        if mixer == "xy":
            assert all(s.count("1") == 3 for s in run.counts)
    # CVaR through the sampler (10,000 shots per evaluation): the first evaluation is at the same start
    kw = {"reps": 1, "mixer": "xy", "k": 3, "cvar_alpha": 0.5, "maxiter": 2, "inits": ("tqa",)}
    exact, sampled = run_qaoa(diag, **kw), run_qaoa(diag, backend=backend, ising=ising, **kw)
    spread = diag[np.bitwise_count(np.arange(64)) == 3].std()
    assert abs(sampled.history[0] - exact.history[0]) < 0.02 * spread


def test_initial_parameters():
    g, b = initial_parameters(4, "linear_ramp", delta=0.8)
    np.testing.assert_allclose(g, [0.1, 0.3, 0.5, 0.7])
    np.testing.assert_allclose(b, [-0.7, -0.5, -0.3, -0.1])
    g, b = initial_parameters(2, "tqa")
    np.testing.assert_allclose(g, np.array([0.25, 0.75]) * Q.TQA_DT)
    np.testing.assert_allclose(b, -np.array([0.75, 0.25]) * Q.TQA_DT)
    g1, b1 = initial_parameters(3, "random", rng=5)
    g2, b2 = initial_parameters(3, "random", rng=np.random.default_rng(5))
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(b1, b2)
    assert ((g1 >= 0) & (g1 <= Q.RANDOM_GAMMA_MAX)).all() and (np.abs(b1) <= Q.RANDOM_BETA_MAX).all()


@pytest.mark.parametrize("n,mixer,k", [(11, "x", None), (11, "xy", 4), (15, "x", None), (15, "xy", 5),
                                        (16, "xy", 8)])
def test_blocked_kernels_match_a_per_gate_reference(n, mixer, k):
    """Above 14 qubits the mixer is split into in-cache chunk blocks and whole-state blocks (and the
    ring's pairs are reordered where they commute): compare with one gate at a time, two layers."""
    diag = np.random.default_rng(n).normal(size=2 ** n)
    g, b = [0.5, -0.8], [0.35, 1.1]
    fast = StatevectorQAOA(diag, mixer=mixer, k=k, threads=2).state(g, b)
    one = StatevectorQAOA(diag, mixer=mixer, k=k, threads=1).state(g, b)
    np.testing.assert_allclose(fast, one, rtol=0, atol=1e-15)  # BLAS may round split products differently
    v = StatevectorQAOA(diag, mixer=mixer, k=k).initial_state()
    idx = np.arange(2 ** n)
    for gamma, beta in zip(g, b):
        v = v * np.exp(-1j * gamma * diag)
        c, s = math.cos(beta), math.sin(beta)
        if mixer == "x":
            for q in range(n):
                t = v.reshape(-1, 2, 1 << q)
                a0, a1 = t[:, 0, :].copy(), t[:, 1, :].copy()
                t[:, 0, :], t[:, 1, :] = c * a0 - 1j * s * a1, c * a1 - 1j * s * a0
        else:
            for i, j in Q.ring_edges(n):  # the definition's order
                lo = idx[(((idx >> i) & 1) == 1) & (((idx >> j) & 1) == 0)]
                hi = lo ^ (1 << i) ^ (1 << j)
                a0, a1 = v[lo].copy(), v[hi].copy()
                v[lo], v[hi] = c * a0 - 1j * s * a1, c * a1 - 1j * s * a0
    np.testing.assert_allclose(fast, v, rtol=0, atol=1e-12 * 2 ** (-n / 2))


def test_phase_by_table_on_large_states():
    """From 2**17 states the phase comes from a 2**16-level table and a Taylor remainder: it must equal
    exp(-i gamma diag) to rounding, for small and (fallback to cos/sin) large gamma."""
    n = 17
    rng = np.random.default_rng(12)
    diag = rng.normal(size=2 ** n)
    diag[:3] = [40.0, -25.0, 7.5]  # a wide range: coarse grid
    sim = StatevectorQAOA(diag, mixer="x")
    plus = np.full(2 ** n, 2 ** (-n / 2))
    for gamma in (0.37, -2.2, 60.0):  # the last one exceeds the table's angle limit
        got = sim.state([gamma], [0.0])
        np.testing.assert_allclose(got, plus * np.exp(-1j * gamma * diag), rtol=0, atol=1e-14 * 2 ** (-n / 2) * 50)
    assert abs(0.37) * sim._step / 2 <= _statevector._TABLE_MAX_ANGLE < abs(60.0) * sim._step / 2
    g, b = [0.4, 1.3], [-0.5, 0.2]
    no_table = StatevectorQAOA(diag, mixer="xy", k=8)
    no_table._grid = None
    np.testing.assert_allclose(StatevectorQAOA(diag, mixer="xy", k=8).state(g, b), no_table.state(g, b),
                               rtol=0, atol=1e-13 * 2 ** (-n / 2))


# -- bad input -------------------------------------------------------------------------------------
def test_bad_input_errors():
    diag = np.arange(8.0)
    with pytest.raises(UnknownOptionError, match="mixer"):
        run_qaoa(diag, mixer="z")
    with pytest.raises(UnknownOptionError, match="initialization"):
        run_qaoa(diag, inits=("warm",))
    with pytest.raises(UnknownOptionError, match="backend"):
        run_qaoa(diag, backend="gpu")
    with pytest.raises(UnknownOptionError, match="optimizer.*COBYLA"):
        run_qaoa(diag, optimizer="adam")
    with pytest.raises(UnknownOptionError):
        initial_parameters(2, "zero")
    for reps in (0, -1, 1.5):
        with pytest.raises(InvalidValueError, match="reps"):
            run_qaoa(diag, reps=reps)
    for alpha in (0.0, -0.2, 1.01, float("nan")):
        with pytest.raises(InvalidValueError, match=r"cvar_alpha must be in \(0, 1\]"):
            run_qaoa(diag, cvar_alpha=alpha)
    for bad in (np.ones(6), np.ones(1), np.ones((2, 4))):
        with pytest.raises(InvalidValueError, match="2\\*\\*n|1-d"):
            StatevectorQAOA(bad)
    with pytest.raises(InvalidValueError, match="xy mixer needs k"):
        run_qaoa(diag, mixer="xy")
    for k in (0, 3, -1, 1.0):
        with pytest.raises(InvalidValueError, match="k must"):
            StatevectorQAOA(diag, mixer="xy", k=k)
    nan = diag.copy()
    nan[5] = np.nan
    with pytest.raises(InvalidValueError, match="NaN.*index 5"):
        run_qaoa(nan)
    for shots in (0, -5, 2.5):
        with pytest.raises(InvalidValueError, match="shots"):
            run_qaoa(diag, shots=shots)
    with pytest.raises(InvalidValueError, match="needs ising"):
        run_qaoa(diag, backend="qiskit")
    op, _ = qubo_to_pauli(*random_qubo(3, 0))
    with pytest.raises(InvalidValueError, match="does not reproduce diag"):
        run_qaoa(diag, backend="qiskit", ising=op)
    with pytest.raises(InvalidValueError, match="gammas and betas"):
        StatevectorQAOA(diag).state([0.1, 0.2], [0.3])
    with pytest.raises(InvalidValueError, match="no starting point"):
        run_qaoa(diag, inits=())
    from qiskit.quantum_info import SparsePauliOp

    with pytest.raises(InvalidValueError, match="only Z / ZZ"):
        qaoa_circuit(SparsePauliOp(["XZI"]), 1)
