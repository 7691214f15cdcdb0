"""Bad input and failure: infeasibility named by constraint family, solver fallback, clear errors."""
import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.errors import (
    InfeasibleError,
    InvalidValueError,
    ProblemError,
    SolverError,
    UnknownOptionError,
)

SECTORS = {"AAPL": "Tech", "AMD": "Tech", "MSFT": "Tech", "BAC": "Financials", "JPM": "Financials",
           "XOM": "Energy", "CVX": "Energy"}


@pytest.fixture(scope="module")
def returns(sp500_clean):
    return qpo.prices_to_returns(sp500_clean.loc["2018-01-01":"2022-12-31"])


def _problem(returns, **constraints):
    return qpo.PortfolioProblem.from_returns(returns, constraints=qpo.Constraints(**constraints))


def test_group_minimums_above_the_budget_are_named(returns):
    """Two group minimums summing past 1 are named with the arithmetic, long-only."""
    problem = _problem(returns, groups=SECTORS, group_min={"Tech": 0.6, "Energy": 0.5})
    with pytest.raises(InfeasibleError, match=r"group Energy min 0.5 \+ group Tech min 0.6 = 1.1 > budget 1 "
                                              "with no short positions"):
        qpo.optimize(problem)
    # with shorting allowed the same group minimums are feasible: the rest is sold short
    short = _problem(returns, long_only=False, groups=SECTORS, group_min={"Tech": 0.6, "Energy": 0.5})
    w = qpo.optimize(short).weights
    assert w[["AAPL", "AMD", "MSFT"]].sum() >= 0.6 - 1e-7 and w[["XOM", "CVX"]].sum() >= 0.5 - 1e-7
    assert w.min() < 0


def test_group_minimum_above_its_members_caps(returns):
    """A group minimum its members' max weights cannot reach is named with both numbers."""
    problem = _problem(returns, max_weight=0.1, groups=SECTORS, group_min={"Energy": 0.3})
    with pytest.raises(InfeasibleError, match=r"group Energy min 0.3 > its 2 assets' max weights, 0.2 in all"):
        qpo.optimize(problem, "min_variance")


def test_bounds_and_cardinality_conflicts_are_named(returns):
    with pytest.raises(InfeasibleError, match=r"min_weight 0.06 x 20 assets = 1.2 exceeds the budget"):
        qpo.optimize(_problem(returns, min_weight=0.06))
    with pytest.raises(InfeasibleError, match=r"max_assets 3 x max_weight 0.2 = 0.6 cannot reach a budget of 1"):
        qpo.optimize(_problem(returns, max_weight=0.2, max_assets=3))
    # turnover too small to leave the current portfolio, which breaks the new cap
    w0 = {t: 0.8 / 19 for t in returns.columns}
    w0["AAPL"] = 0.2
    p = _problem(returns, max_weight=0.1, current_weights=w0, max_turnover=0.1)
    with pytest.raises(InfeasibleError, match=r"budget 1 .*; max_weight 0.1 x 20 assets = 2; max_turnover 0.1 from "
                                              r"the current weights \(dropping any one"):
        qpo.optimize(p)


def test_infeasible_targets_say_what_is_reachable(returns):
    problem = _problem(returns, max_weight=0.3)
    top = qpo.efficient_frontier(problem, 2)["expected_return"].iloc[-1]
    with pytest.raises(InfeasibleError, match=rf"target_return 0.9 is above the highest expected return these "
                                              rf"constraints allow, {top:.4g}"):
        qpo.optimize(problem, "efficient_return", target_return=0.9)
    low = qpo.optimize(problem, "min_variance").volatility
    with pytest.raises(InfeasibleError, match=rf"target_volatility 0.05 is below the lowest volatility these "
                                              rf"constraints allow, {low:.4g}"):
        qpo.optimize(problem, "efficient_risk", target_volatility=0.05)


def test_solver_failure_falls_back_and_records_it(returns):
    """SCS stopped after 2 iterations cannot answer; Clarabel does, and the result says so."""
    problem = _problem(returns, max_weight=0.2)
    result = qpo.optimize(problem, solver="SCS", solver_options={"max_iters": 2})
    assert result.solver == "CLARABEL"
    assert result.diagnostics["solvers_tried"][0].startswith("SCS:")
    assert result.fallback_reason.startswith("CLARABEL answered after SCS")
    ref = qpo.optimize(problem)
    np.testing.assert_allclose(result.weights, ref.weights, atol=1e-8)
    with pytest.raises(SolverError, match=r"no solver answered; tried SCS: .*Try other solvers"):
        qpo.optimize(problem, solver=["SCS"], solver_options={"max_iters": 2})
    with pytest.raises(UnknownOptionError, match="unknown solver 'GUROBI'; valid: .*CLARABEL"):
        qpo.optimize(problem, solver="GUROBI")


def test_options_are_checked_per_objective(returns):
    problem = _problem(returns)
    with pytest.raises(UnknownOptionError, match=r"unknown option for efficient_return 'target'; valid: "
                                                 "target_return"):
        qpo.optimize(problem, "efficient_return", target=0.2)
    with pytest.raises(ProblemError, match="efficient_risk needs target_volatility"):
        qpo.optimize(problem, "efficient_risk")
    with pytest.raises(InvalidValueError, match=r"confidence must lie strictly between 0 and 1 \(e.g. 0.95\), got 95"):
        qpo.optimize(problem, "min_cvar", confidence=95)
    with pytest.raises(UnknownOptionError, match="option for min_variance 'risk_aversion'"):
        qpo.optimize(problem, "min_variance", risk_aversion=2)
    with pytest.raises(InvalidValueError, match="risk_budgets must be positive"):
        qpo.optimize(problem, "risk_parity", risk_budgets=np.r_[0.0, np.ones(19)])
    with pytest.raises(UnknownOptionError, match="unknown linkage 'nearest'"):
        qpo.optimize(problem, "hrp", linkage="nearest")


def test_unsupported_combinations_say_what_to_use(returns):
    with pytest.raises(ProblemError, match="max_sharpe cannot take max_assets"):
        qpo.optimize(_problem(returns, max_assets=5), "max_sharpe")
    with pytest.raises(ProblemError, match="risk_parity needs long_only=True"):
        qpo.optimize(_problem(returns, long_only=False), "risk_parity")
    with pytest.raises(ProblemError, match="hrp .* takes no constraints"):
        qpo.optimize(_problem(returns, max_weight=0.2), "hrp")
    mu, cov = returns.mean(), returns.cov()
    with pytest.raises(ProblemError, match="min_cvar needs return scenarios"):
        qpo.optimize(qpo.PortfolioProblem.from_moments(mu, cov), "min_cvar")


def test_constraint_tickers_and_values_are_checked(returns):
    with pytest.raises(ProblemError, match=r"max_weight names tickers outside the universe: \['TSLA'\]"):
        _problem(returns, max_weight={"TSLA": 0.1})
    with pytest.raises(ProblemError, match=r"groups names tickers outside the universe: \['TSLA'\]"):
        _problem(returns, groups={"TSLA": "Auto"})
    with pytest.raises(ProblemError, match=r"group_max names groups \['Materials'\] that no ticker belongs to"):
        _problem(returns, groups=SECTORS, group_max={"Materials": 0.1})
    with pytest.raises(ProblemError, match=r"current_weights holds tickers outside the universe: \['TSLA'\]"):
        _problem(returns, current_weights={"TSLA": 1.0}, max_turnover=0.5)
    with pytest.raises(ProblemError, match="max_turnover needs current_weights"):
        qpo.Constraints(max_turnover=0.2)
    with pytest.raises(ProblemError, match="long_only=True but min_weight is -0.1"):
        qpo.Constraints(min_weight=-0.1)
    with pytest.raises(ProblemError, match="max_assets must be a whole number >= 1, got 2.5"):
        qpo.Constraints(max_assets=2.5)
    with pytest.raises(ProblemError, match="leverage must be a finite number > 0"):
        qpo.Constraints(long_only=False, leverage=0)
    with pytest.raises(ProblemError, match=r"transaction_costs\['AAPL'\] must be a finite number >= 0"):
        qpo.Constraints(transaction_costs={"AAPL": -0.01})


def test_non_psd_covariance_is_reported_or_repaired_on_request(returns):
    mu, cov = returns.mean(), returns.cov()
    vals, vecs = np.linalg.eigh(cov.to_numpy())
    vals[0] = -0.05 * vals[-1]
    bad = pd.DataFrame(vecs @ np.diag(vals) @ vecs.T, index=cov.index, columns=cov.columns)
    with pytest.raises(ProblemError, match="not positive semi-definite .*repair_psd=True"):
        qpo.PortfolioProblem.from_moments(mu, bad)
    fixed = qpo.PortfolioProblem.from_moments(mu, bad, repair_psd=True)
    assert np.linalg.eigvalsh(fixed.cov.to_numpy()).min() >= -1e-15
    # the repair is the Frobenius-nearest PSD matrix: only the negative eigenvalue changed
    expected = vecs @ np.diag(np.clip(vals, 0, None)) @ vecs.T
    np.testing.assert_allclose(fixed.cov.to_numpy(), expected, atol=1e-15)
    assert "1 negative eigenvalue(s) clipped" in fixed.repairs[0]
    result = qpo.optimize(fixed)
    assert result.diagnostics["repairs"] == list(fixed.repairs)
    # a valid covariance is left alone
    assert qpo.PortfolioProblem.from_moments(mu, cov, repair_psd=True).repairs == ()


def test_nan_inputs_and_scenario_mismatch(returns):
    mu, cov = returns.mean(), returns.cov()
    with pytest.raises(ProblemError, match=r"mu holds NaN/inf for \['AMD'\]"):
        qpo.PortfolioProblem.from_moments(mu.where(mu.index != "AMD", np.inf), cov)
    with pytest.raises(ProblemError, match="return scenarios' columns do not match mu's tickers .*only in mu: "
                                           r"\['XOM'\]"):
        qpo.PortfolioProblem.from_moments(mu, cov, returns=returns.drop(columns="XOM"))
    with pytest.raises(ProblemError, match="risk_free_rate must be a finite number"):
        qpo.PortfolioProblem.from_moments(mu, cov, risk_free_rate=float("nan"))


def test_prices_given_as_returns_are_refused_and_returns_of_any_units_are_not(sp500):
    """Prices passed to from_returns gave weights that looked like an answer."""
    import re

    px = sp500.loc["2019-01-01":, ["AAPL", "MSFT", "KO", "XOM"]]
    returns = px.pct_change().iloc[1:]
    with pytest.raises(qpo.ProblemError, match=re.escape("returns look like prices") + ".*qpo.prices_to_returns"):
        qpo.PortfolioProblem.from_returns(px)
    for units in (1e-8, 100.0, 1e4):  # the same returns in other units are returns
        assert qpo.PortfolioProblem.from_returns(returns * units).n_assets == 4
    assert qpo.PortfolioProblem.from_returns(returns + 0.5).n_assets == 4  # all positive, no level
    rates = pd.Series(np.linspace(1e-4, 2e-4, len(returns)), index=returns.index)  # a money-market fund
    assert qpo.PortfolioProblem.from_returns(returns.assign(MMF=rates)).n_assets == 5
    bills = pd.DataFrame({f"T{i}": rates * (1 + 0.1 * i) for i in range(3)})  # a universe of bills: returns too
    assert qpo.PortfolioProblem.from_returns(bills).n_assets == 3
    with pytest.raises(qpo.ProblemError, match="look like prices"):  # most columns levels: a mix is refused too
        qpo.PortfolioProblem.from_returns(px.iloc[1:].assign(R=returns["AAPL"]))
