"""Weights do not depend on the units of the returns (issue 16).

Every objective whose answer is unit-free gives the same weights, within 1e-6, on returns
multiplied by any scale from 1e-8 to 1e4 (hypothesis: random real sub-panels, random scales,
log-uniform), and reports its figures in the caller's units. The optimizer rescales inside
(:mod:`qpo.optimization._scale`); before it did, returns x 1e-12 gave other "optimal" weights and
``risk_parity`` called returns x 1e6 infeasible.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qpo
from qpo.errors import InfeasibleError

UNIT_FREE = ("min_variance", "max_sharpe", "min_cvar", "risk_parity", "hrp", "max_diversification",
             "efficient_return", "efficient_risk")
TOL = 1e-6


@pytest.fixture(scope="module")
def panel(sp500_clean) -> pd.DataFrame:
    return qpo.prices_to_returns(sp500_clean)


def _targets(problem: qpo.PortfolioProblem) -> dict[str, float]:
    """Targets inside the feasible range of the unscaled problem: halfway from the minimum-variance
    portfolio to the best asset (return), 1.25 x the least volatility (risk)."""
    mv = qpo.optimize(problem, "min_variance", confidence_level=None)
    best = float(problem.annual_mu().max())
    cap = problem.constraints.max_weight
    return {"target_return": mv.expected_return + 0.5 * (best - mv.expected_return) * (0.5 if cap else 1.0),
            "target_volatility": 1.25 * mv.volatility}


def _solve(problem, objective, targets, scale):
    opts = {}
    if objective == "efficient_return":
        opts["target_return"] = targets["target_return"] * scale
    if objective == "efficient_risk":
        opts["target_volatility"] = targets["target_volatility"] * scale
    try:
        return qpo.optimize(problem, objective, confidence_level=None, **opts)
    except InfeasibleError as exc:
        return exc


def _sub_panel(panel, seed, n_assets, n_periods):
    rng = np.random.default_rng(seed)
    cols = sorted(rng.choice(panel.shape[1], size=n_assets, replace=False))
    start = int(rng.integers(0, len(panel) - n_periods))
    return panel.iloc[start:start + n_periods, cols]


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31 - 1), n_assets=st.integers(4, 12), n_periods=st.integers(80, 400),
       log_scale=st.floats(-8.0, 4.0), capped=st.booleans())
@pytest.mark.parametrize("objective", UNIT_FREE)
def test_weights_do_not_depend_on_the_units(panel, objective, seed, n_assets, n_periods, log_scale, capped):
    returns = _sub_panel(panel, seed, n_assets, n_periods)
    scale = 10.0 ** log_scale
    cons = qpo.Constraints(max_weight=0.4) if capped and objective != "hrp" else None
    base = qpo.PortfolioProblem.from_returns(returns, covariance="ledoit_wolf", constraints=cons)
    scaled = qpo.PortfolioProblem.from_returns(returns * scale, covariance="ledoit_wolf", constraints=cons)
    targets = _targets(base)
    a, b = _solve(base, objective, targets, 1.0), _solve(scaled, objective, targets, scale)
    if isinstance(a, Exception) or isinstance(b, Exception):  # max_sharpe when no asset beats 0: both say so
        assert type(a) is type(b), (a, b)
        return
    diff = np.abs(a.weights.to_numpy() - b.weights.to_numpy()).max()
    assert diff <= TOL, f"{objective} at scale {scale:.3g}: weights differ by {diff:.3g}"
    # the figures are in the caller's units
    assert b.expected_return == pytest.approx(a.expected_return * scale, rel=1e-5, abs=1e-9 * scale)
    assert b.volatility == pytest.approx(a.volatility * scale, rel=1e-5)
    if objective == "min_cvar":
        assert b.diagnostics["cvar"] == pytest.approx(a.diagnostics["cvar"] * scale, rel=1e-5)
    if objective == "efficient_risk":
        assert b.volatility <= targets["target_volatility"] * scale * (1 + 1e-6)


@pytest.mark.parametrize(("objective", "scale"), [("min_variance", 1e-12), ("min_cvar", 1e-12),
                                                  ("max_sharpe", 1e-12), ("risk_parity", 1e6),
                                                  ("efficient_return", 1e6)])
def test_the_reported_cases(panel, objective, scale):
    """The probe's findings: x 1e-12 gave other weights (max_sharpe: 'infeasible'); risk_parity and
    efficient_return called x 1e6 infeasible."""
    returns = panel.iloc[-500:, :8]
    base = qpo.PortfolioProblem.from_returns(returns)
    targets = _targets(base)
    a = _solve(base, objective, targets, 1.0)
    b = _solve(qpo.PortfolioProblem.from_returns(returns * scale), objective, targets, scale)
    assert not isinstance(b, Exception), b
    assert np.abs(a.weights.to_numpy() - b.weights.to_numpy()).max() <= TOL


@pytest.mark.parametrize("scale", [1e-8, 1e4])
def test_frontier_and_the_direct_qp_path(panel, scale):
    """The frontier's exact path and the direct QP path (from 200 assets) scale alike."""
    returns = panel.iloc[-400:, :10]
    cons = qpo.Constraints(max_weight=0.3)
    f1 = qpo.efficient_frontier(qpo.PortfolioProblem.from_returns(returns, constraints=cons), n_points=8)
    f2 = qpo.efficient_frontier(qpo.PortfolioProblem.from_returns(returns * scale, constraints=cons), n_points=8)
    tickers = list(returns.columns)
    assert np.abs(f1[tickers].to_numpy() - f2[tickers].to_numpy()).max() <= TOL
    np.testing.assert_allclose(f2["volatility"], f1["volatility"] * scale, rtol=1e-6)
    np.testing.assert_allclose(f2["target_return"], f1["target_return"] * scale, rtol=1e-6)

    rng = np.random.default_rng(3)
    factors = rng.normal(0, 0.01, size=(300, 5))
    big = pd.DataFrame(factors @ rng.normal(0, 1, size=(5, 210)) + rng.normal(0.0003, 0.01, size=(300, 210)),
                       columns=[f"S{i:03d}" for i in range(210)])
    cons = qpo.Constraints(max_weight=0.05)
    for objective, opts in (("min_variance", {}), ("efficient_return", {"target_return": 0.12})):
        r1 = qpo.optimize(qpo.PortfolioProblem.from_returns(big, constraints=cons), objective,
                          confidence_level=None, **opts)
        scaled_opts = {k: v * scale for k, v in opts.items()}
        r2 = qpo.optimize(qpo.PortfolioProblem.from_returns(big * scale, constraints=cons), objective,
                          confidence_level=None, **scaled_opts)
        assert {r1.solver, r2.solver} <= {"OSQP-direct", "OSQP-direct+active-set", "active-set"}, (r1.solver, r2.solver)
        assert np.abs(r1.weights.to_numpy() - r2.weights.to_numpy()).max() <= TOL


@pytest.mark.parametrize("scale", [1e-8, 1e-4, 1e4])
def test_unit_dependent_objectives_still_answer(panel, scale):
    """max_utility (a fixed risk aversion) and max_sharpe at a nonzero risk-free rate depend on the
    units by definition: they are solved as asked, finite, on any scale."""
    returns = panel.iloc[-300:, :6]
    p = qpo.PortfolioProblem.from_returns(returns * scale, constraints=qpo.Constraints(transaction_costs=0.001,
                                          current_weights=dict.fromkeys(returns.columns, 1 / 6)))
    for objective, opts in (("max_utility", {"risk_aversion": 3.0}), ("min_variance", {})):
        r = qpo.optimize(p, objective, confidence_level=None, **opts)
        assert np.isfinite(r.weights.to_numpy()).all() and abs(r.weights.sum() - 1) <= 1e-6
    # max_utility is exactly the same problem with risk_aversion / scale
    a = qpo.optimize(qpo.PortfolioProblem.from_returns(returns), "max_utility", risk_aversion=3.0,
                     confidence_level=None)
    b = qpo.optimize(qpo.PortfolioProblem.from_returns(returns * scale), "max_utility", risk_aversion=3.0 / scale,
                     confidence_level=None)
    assert np.abs(a.weights.to_numpy() - b.weights.to_numpy()).max() <= TOL
