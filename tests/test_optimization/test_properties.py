"""Property tests on random valid problems: weights sum to the budget, every bound and constraint
holds, the frontier is monotone, and no feasible portfolio beats the optimum."""
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qpo
from qpo.errors import InfeasibleError

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(draw, allow_short=True):
    n = draw(st.integers(3, 8))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    T = 120
    factors = rng.normal(0, 0.01, size=(T, 2))
    R = factors @ rng.normal(1, 0.5, size=(2, n)) + rng.normal(0, 0.01, size=(T, n)) + rng.normal(3e-4, 3e-4, size=n)
    tickers = [f"A{i}" for i in range(n)]
    returns = pd.DataFrame(R, columns=tickers)
    short = allow_short and draw(st.booleans())
    max_w = draw(st.floats(1.0 / n + 0.05, 1.0))
    kw = {"max_weight": max_w}
    if short:
        kw.update(long_only=False, min_weight=-draw(st.floats(0.05, 0.5)))
        if draw(st.booleans()):
            kw["leverage"] = draw(st.floats(1.05, 2.0))
    if draw(st.booleans()) and n >= 4:
        groups = {t: ("G1" if i < n // 2 else "G2") for i, t in enumerate(tickers)}
        # a cap on G1 that G2's own maximum can make up to a full budget
        cap = max(draw(st.floats(0.5, 0.9)), 1 - max_w * (n - n // 2) + 0.01)
        kw.update(groups=groups, group_max={"G1": cap})
    constraints = qpo.Constraints(**kw)
    return qpo.PortfolioProblem.from_returns(returns, constraints=constraints)


def _check(problem, w, tol=1e-6):
    assert abs(w.sum() - problem.constraints.budget) <= tol
    assert problem.resolved.violations(w, problem.annual_cov(), tol=tol) == []


@SETTINGS
@given(problems(), st.sampled_from(["min_variance", "max_utility", "min_cvar"]))
def test_every_constraint_holds(problem, objective):
    result = qpo.optimize(problem, objective, confidence_level=None)
    w = result.weights.to_numpy()
    _check(problem, w)
    # optimality against feasible alternatives: the min-variance answer beats a feasible random mix
    if objective == "min_variance":
        cov = problem.annual_cov()
        others = qpo.efficient_frontier(problem, 4)[problem.tickers].to_numpy()
        for other in others:
            assert w @ cov @ w <= (other @ cov @ other) * (1 + 1e-7)


@SETTINGS
@given(problems())
def test_frontier_is_monotone_and_feasible(problem):
    frame = qpo.efficient_frontier(problem, 8)
    assert (np.diff(frame["target_return"]) >= -1e-12).all()
    assert (np.diff(frame["volatility"]) >= -1e-7).all()
    for w in frame[problem.tickers].to_numpy():
        _check(problem, w)
    slow = qpo.efficient_frontier(problem, 8, fast=False)
    np.testing.assert_allclose(frame["volatility"], slow["volatility"], atol=1e-5)


@SETTINGS
@given(problems(allow_short=False))
def test_risk_parity_and_max_sharpe(problem):
    frame = qpo.efficient_frontier(problem, 10)
    try:
        sharpe = qpo.optimize(problem, "max_sharpe", confidence_level=None)
    except InfeasibleError as exc:  # only when no feasible portfolio earns more than the risk-free rate
        assert "exceeds the risk-free rate" in str(exc)
        assert frame["expected_return"].max() <= problem.risk_free_rate + 1e-9
        sharpe = None
    if sharpe is not None:
        _check(problem, sharpe.weights.to_numpy())
        assert sharpe.sharpe >= frame["sharpe"].max() - 1e-6
    plain = problem.with_constraints(qpo.Constraints())
    rp = qpo.optimize(plain, "risk_parity", confidence_level=None)
    contrib = np.array(list(rp.diagnostics["risk_contributions"].values()))
    np.testing.assert_allclose(contrib, 1 / problem.n_assets, atol=1e-8)
