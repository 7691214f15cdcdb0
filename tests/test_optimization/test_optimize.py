"""The first cut of qpo.optimize, cross-checked against PyPortfolioOpt and skfolio."""
import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.errors import InfeasibleError, ProblemError, UnknownOptionError


@pytest.fixture(scope="module")
def returns(sp500_clean):
    return qpo.prices_to_returns(sp500_clean.loc["2018-01-01":"2022-12-31"])


@pytest.mark.parametrize("max_weight", [1.0, 0.10])
def test_min_variance_matches_pypfopt_and_skfolio(returns, max_weight):
    from pypfopt import EfficientFrontier
    from skfolio.optimization import MeanRisk, ObjectiveFunction

    problem = qpo.PortfolioProblem.from_returns(returns, constraints=qpo.Constraints(max_weight=max_weight))
    result = qpo.optimize(problem, "min_variance")
    ef = EfficientFrontier(None, returns.cov() * 252, weight_bounds=(0, max_weight))
    ref = pd.Series(ef.min_volatility())
    np.testing.assert_allclose(result.weights[ref.index].to_numpy(), ref.to_numpy(), atol=1e-4)
    sk = MeanRisk(objective_function=ObjectiveFunction.MINIMIZE_RISK, max_weights=max_weight).fit(returns)
    np.testing.assert_allclose(result.weights.to_numpy(), sk.weights_, atol=1e-4)
    assert result.weights.sum() == pytest.approx(1.0, abs=1e-8)
    assert result.weights.max() <= max_weight + 1e-8 and result.weights.min() >= -1e-10
    realized = returns.to_numpy() @ result.weights.to_numpy()
    assert result.volatility == pytest.approx(np.std(realized, ddof=1) * np.sqrt(252), rel=1e-9)
    assert result.status == "optimal" and result.solver == "CLARABEL"
    assert set(result.timings) == {"build_s", "solve_s", "total_s"}


def test_max_sharpe_matches_pypfopt(returns):
    from pypfopt import EfficientFrontier

    rf = 0.02
    problem = qpo.PortfolioProblem.from_returns(returns, constraints=qpo.Constraints(max_weight=0.3),
                                                risk_free_rate=rf)
    result = qpo.optimize(problem, "max_sharpe")
    ef = EfficientFrontier(returns.mean() * 252, returns.cov() * 252, weight_bounds=(0, 0.3))
    ref = pd.Series(ef.max_sharpe(risk_free_rate=rf))
    np.testing.assert_allclose(result.weights[ref.index].to_numpy(), ref.to_numpy(), atol=1e-4)
    _, _, ref_sharpe = ef.portfolio_performance(risk_free_rate=rf)
    assert result.sharpe == pytest.approx(ref_sharpe, rel=1e-5)
    # no other feasible portfolio does better: min-variance is one of them
    mv = qpo.optimize(problem, "min_variance")
    assert result.sharpe >= mv.sharpe


def test_max_sharpe_without_positive_excess_return_says_so(returns):
    problem = qpo.PortfolioProblem.from_returns(returns, risk_free_rate=5.0)
    with pytest.raises(InfeasibleError, match="exceeds the risk-free rate"):
        qpo.optimize(problem, "max_sharpe")
    # one asset beats the rate, but a 40 % cap forces 60 % into losers: 252 x (0.4 x 0.001 - 0.6 x 0.002)
    mu = np.array([0.001, -0.002, -0.002])
    capped = qpo.PortfolioProblem.from_moments(mu, np.diag([1e-4, 1e-4, 1e-4]), qpo.Constraints(max_weight=0.4),
                                               tickers=["A", "B", "C"])
    with pytest.raises(InfeasibleError, match=r"within these constraints the highest is -0.2016 "):
        qpo.optimize(capped, "max_sharpe")
    # without the cap the same problem solves: all in A
    free = capped.with_constraints(qpo.Constraints())
    assert qpo.optimize(free, "max_sharpe").weights["A"] == pytest.approx(1.0, abs=1e-6)


def test_infeasible_max_weight_is_named(returns):
    problem = qpo.PortfolioProblem.from_returns(returns, constraints=qpo.Constraints(max_weight=0.04))
    with pytest.raises(InfeasibleError, match=r"max_weight 0.04 x 20 assets = 0.8 cannot reach"):
        qpo.optimize(problem)


def test_bad_inputs_are_clear_errors(returns):
    with pytest.raises(UnknownOptionError, match="max_sharpe, max_utility, min_cvar, min_variance, risk_parity"):
        qpo.optimize(qpo.PortfolioProblem.from_returns(returns), "min_varience")
    with pytest.raises(UnknownOptionError, match="method 'quantum'"):
        qpo.optimize(qpo.PortfolioProblem.from_returns(returns), method="quantum")
    nan = returns.copy()
    nan.iloc[3, 2] = np.nan
    with pytest.raises(ProblemError, match=r"NaN/inf in columns \['BAC'\]"):
        qpo.PortfolioProblem.from_returns(nan)
    mu, cov = returns.mean(), returns.cov()
    with pytest.raises(ProblemError, match="only in mu: \\['XOM'\\]"):
        qpo.PortfolioProblem.from_moments(mu, cov.drop(index="XOM", columns="XOM"))
    asym = cov.copy()
    asym.iloc[0, 1] += 1e-3
    with pytest.raises(ProblemError, match="not symmetric"):
        qpo.PortfolioProblem.from_moments(mu, asym)
    neg = cov.copy()
    neg.iloc[0, 0] = -1e-3
    with pytest.raises(ProblemError, match="not positive semi-definite"):
        qpo.PortfolioProblem.from_moments(mu, neg)
    with pytest.raises(InfeasibleError, match="min_weight 0.5 > max_weight 0.2"):
        qpo.Constraints(min_weight=0.5, max_weight=0.2)
    for bad in (float("inf"), float("nan"), np.float64("-inf")):  # a number, named as not finite
        with pytest.raises(ProblemError, match=f"max_weight must be a finite number, got {bad}"):
            qpo.Constraints(max_weight=bad)


def test_from_moments_arrays_and_result_dict():
    mu = np.array([0.0004, 0.0003, 0.0002])
    cov = np.diag([4e-4, 1e-4, 2.5e-4])
    problem = qpo.PortfolioProblem.from_moments(mu, cov, tickers=["A", "B", "C"])
    result = qpo.optimize(problem, "min_variance")
    # closed form for a diagonal covariance: w_i proportional to 1 / sigma_i^2
    inv = 1 / np.diag(cov)
    np.testing.assert_allclose(result.weights.to_numpy(), inv / inv.sum(), atol=1e-6)
    d = result.to_dict()
    assert d["weights"]["B"] == pytest.approx(result.weights["B"]) and d["periods_per_year"] == 252
    assert "min_variance" in repr(result)
