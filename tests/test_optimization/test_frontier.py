"""The efficient frontier: the exact, direct and compiled paths agree with each other and with
PyPortfolioOpt; the frontier is monotone; the bootstrap interval and the large-QP path."""
import numpy as np
import pytest

import qpo
from qpo.errors import InvalidValueError

SECTORS = {"AAPL": "Tech", "AMD": "Tech", "MSFT": "Tech", "BAC": "Financials", "JPM": "Financials",
           "XOM": "Energy", "CVX": "Energy"}


@pytest.fixture(scope="module")
def returns(sp500_clean):
    return qpo.prices_to_returns(sp500_clean.loc["2018-01-01":"2022-12-31"])


@pytest.mark.parametrize("constraints, path", [
    ({"max_weight": 0.3}, "active-set"),
    ({"max_weight": 0.3, "groups": SECTORS, "group_max": {"Tech": 0.25}, "group_min": {"Energy": 0.1}}, "active-set"),
    ({"long_only": False, "min_weight": -0.2, "max_weight": 0.4, "leverage": 1.5}, "osqp-direct"),
    ({"max_weight": 0.3, "current_weights": {"AAPL": 0.5, "XOM": 0.5}, "transaction_costs": 0.002,
      "max_turnover": 1.2}, "cvxpy"),
], ids=["box", "groups", "leverage", "costs"])
def test_fast_paths_agree_with_the_compiled_model(returns, constraints, path):
    """Each fast path gives the compiled cvxpy model's frontier (weights to 2e-4, volatility to 1e-7)."""
    problem = qpo.PortfolioProblem.from_returns(returns, constraints=qpo.Constraints(**constraints))
    fast = qpo.efficient_frontier(problem, 12)
    slow = qpo.efficient_frontier(problem, 12, fast=False)
    assert fast.attrs["path"] == path and slow.attrs["path"] == "cvxpy"
    assert fast.attrs["fallback_points"] == []
    np.testing.assert_allclose(fast["target_return"], slow["target_return"], atol=1e-6)
    np.testing.assert_allclose(fast[problem.tickers], slow[problem.tickers], atol=2e-4)
    np.testing.assert_allclose(fast["volatility"], slow["volatility"], atol=1e-7)
    assert (np.diff(fast["volatility"]) > -1e-10).all()
    np.testing.assert_allclose(fast["expected_return"].iloc[1:], fast["target_return"].iloc[1:], atol=1e-9)


def test_frontier_matches_pypfopt_point_by_point(returns):
    """Every point equals PyPortfolioOpt's efficient_return at the same target (weights to 1e-4)."""
    from pypfopt import EfficientFrontier

    problem = qpo.PortfolioProblem.from_returns(returns, constraints=qpo.Constraints(max_weight=0.25))
    frame = qpo.efficient_frontier(problem, 8)
    mu, cov = returns.mean() * 252, returns.cov() * 252
    for _, row in frame.iloc[1:-1].iterrows():
        ef = EfficientFrontier(mu, cov, weight_bounds=(0, 0.25))
        ref = ef.efficient_return(row["target_return"])
        np.testing.assert_allclose(row[problem.tickers].to_numpy(float), np.array([ref[t] for t in problem.tickers]),
                                   atol=1e-4)
    # the ends: the minimum-variance portfolio and the highest-return corner
    ef = EfficientFrontier(mu, cov, weight_bounds=(0, 0.25))
    mv = ef.min_volatility()
    np.testing.assert_allclose(frame.iloc[0][problem.tickers].to_numpy(float), [mv[t] for t in problem.tickers],
                               atol=1e-4)
    top = np.sort(mu.to_numpy())[::-1][:4] @ np.full(4, 0.25)
    assert frame["expected_return"].iloc[-1] == pytest.approx(top, rel=1e-8)


def test_frontier_with_cardinality_and_tracking_error(returns):
    """Non-QP constraints go through the compiled model, point by point, and hold at every point."""
    bench = {t: 1 / 20 for t in returns.columns}
    problem = qpo.PortfolioProblem.from_returns(returns.iloc[:, :12], constraints=qpo.Constraints(
        max_weight=0.5, max_assets=4))
    frame = qpo.efficient_frontier(problem, 5)
    assert frame.attrs["path"] == "cvxpy"
    assert ((frame[problem.tickers].abs() > 1e-9).sum(axis=1) <= 4).all()
    te = qpo.PortfolioProblem.from_returns(returns, constraints=qpo.Constraints(
        benchmark_weights=bench, max_tracking_error=0.05))
    frame = qpo.efficient_frontier(te, 5)
    cov = te.annual_cov()
    w_b = np.full(20, 1 / 20)
    for _, row in frame.iterrows():
        d = row[te.tickers].to_numpy(float) - w_b
        assert np.sqrt(d @ cov @ d) <= 0.05 + 1e-6
    with pytest.raises(InvalidValueError, match="n_points must be a whole number >= 2"):
        qpo.efficient_frontier(te, 1)


def test_bootstrap_interval(returns):
    """The interval is the percentile bootstrap of the portfolio's mean return, reproducible by seed,
    covering the point estimate, and absent (with the reason) without scenarios."""
    problem = qpo.PortfolioProblem.from_returns(returns, constraints=qpo.Constraints(max_weight=0.2))
    a = qpo.optimize(problem, "max_sharpe", seed=7)
    b = qpo.optimize(problem, "max_sharpe", seed=7)
    assert a.confidence_interval == pytest.approx(b.confidence_interval, rel=1e-9)
    lo, hi = a.confidence_interval
    assert lo < a.expected_return < hi
    r = returns.to_numpy() @ a.weights.to_numpy()
    rng = np.random.default_rng(7)
    means = r[rng.integers(0, len(r), size=(1000, len(r)))].mean(axis=1) * 252
    np.testing.assert_allclose([lo, hi], np.quantile(means, [0.025, 0.975]), rtol=1e-10)
    # the normal approximation gives nearly the same width for 1256 daily returns
    se = r.std(ddof=1) / np.sqrt(len(r)) * 252
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert "iid bootstrap of the 1256 return scenarios" in a.diagnostics["confidence_interval"]
    bare = qpo.PortfolioProblem.from_moments(returns.mean(), returns.cov())
    result = qpo.optimize(bare)
    assert result.confidence_interval is None
    assert result.diagnostics["confidence_interval"].startswith("none: the problem has no return scenarios")
    assert qpo.optimize(problem, confidence_level=None).confidence_interval is None


def test_direct_qp_path_matches_the_interior_point(returns, monkeypatch):
    """The OSQP solver-form path (used from 200 assets) gives the same answer as Clarabel, and
    re-solving another problem of the same shape re-uses its session."""
    from qpo.optimization import _direct, classical

    cons = qpo.Constraints(max_weight=0.15, groups=SECTORS, group_max={"Tech": 0.2})
    problem = qpo.PortfolioProblem.from_returns(returns, constraints=cons)
    ref = {obj: qpo.optimize(problem, obj, **kw) for obj, kw in
           (("min_variance", {}), ("efficient_return", {"target_return": 0.2}), ("max_utility", {"risk_aversion": 4}))}
    monkeypatch.setattr(classical, "DIRECT_QP_MIN_ASSETS", 10)
    _direct._last_answer.clear()
    for obj, kw in (("min_variance", {}), ("efficient_return", {"target_return": 0.2}),
                    ("max_utility", {"risk_aversion": 4})):
        got = qpo.optimize(problem, obj, **kw)
        assert got.solver.startswith("OSQP-direct") or got.solver == "active-set"
        np.testing.assert_allclose(got.weights, ref[obj].weights, atol=1e-4)
        assert got.volatility == pytest.approx(ref[obj].volatility, rel=1e-6)
    later = qpo.PortfolioProblem.from_returns(returns.iloc[250:], constraints=cons)
    session = _direct._sessions[("min_variance", problem.resolved.structure())]
    got = qpo.optimize(later, "min_variance")
    assert _direct._sessions[("min_variance", problem.resolved.structure())] is session
    monkeypatch.setattr(classical, "DIRECT_QP_MIN_ASSETS", 10_000)
    np.testing.assert_allclose(got.weights, qpo.optimize(later, "min_variance").weights, atol=1e-4)


def test_a_black_litterman_sweep_reuses_the_compiled_model(returns):
    """Sweeping view strength changes only parameters: no new model is built after the first, and
    a stronger bullish view on one asset never lowers its max-Sharpe weight."""
    from qpo.optimization.classical import compiled_model

    problem = qpo.PortfolioProblem.from_returns(returns, constraints=qpo.Constraints(max_weight=0.3))
    qpo.optimize(problem, "max_sharpe", confidence_level=None)
    misses = compiled_model.cache_info().misses
    weights = []
    for view in (0.05, 0.15, 0.25, 0.35):
        bl = qpo.BlackLitterman(views={"KO": view}, tau=0.05)
        result = qpo.optimize(problem.with_mean(bl.estimate(returns)), "max_sharpe", confidence_level=None)
        weights.append(result.weights["KO"])
    assert compiled_model.cache_info().misses == misses
    assert all(b >= a - 1e-7 for a, b in zip(weights, weights[1:])) and weights[-1] > weights[0]


def test_rolling_re_solves_use_the_exact_active_set_method(returns, monkeypatch):
    """Windows of one shape: the first by OSQP (made exact), the next ones by the active-set method
    from the previous answer; each equals the interior-point answer and is at least as good."""
    from qpo.optimization import _direct, classical

    cons = qpo.Constraints(max_weight=0.12, groups=SECTORS, group_max={"Tech": 0.15, "Financials": 0.1})
    windows = [qpo.PortfolioProblem.from_returns(returns.iloc[i * 63:i * 63 + 504], constraints=cons)
               for i in range(4)]
    ref = [qpo.optimize(p, "min_variance", confidence_level=None) for p in windows]
    monkeypatch.setattr(classical, "DIRECT_QP_MIN_ASSETS", 10)
    _direct._last_answer.clear()
    got = [qpo.optimize(p, "min_variance", confidence_level=None) for p in windows]
    assert got[0].solver.startswith("OSQP-direct") and all(r.solver == "active-set" for r in got[1:])
    for g, r, p in zip(got, ref, windows):
        np.testing.assert_allclose(g.weights, r.weights, atol=1e-6)
        assert g.volatility <= r.volatility * (1 + 1e-9)
        assert p.resolved.violations(g.weights.to_numpy(), tol=1e-12) == []


def test_active_set_method_on_random_qps():
    """Random box/row-constrained QPs from a feasible start: the answer matches a tight interior
    point and satisfies KKT; an infeasible start is refused."""
    import cvxpy as cp

    from qpo.optimization import active_set

    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(5, 30))
        A = rng.normal(size=(n + 5, n))
        H = A.T @ A / n + 1e-3 * np.eye(n)
        q = rng.normal(size=n) * 0.5
        lo, hi = np.full(n, 0.0), np.full(n, rng.uniform(2.0 / n, 0.6))
        G = (rng.uniform(size=(2, n)) < 0.4).astype(float)
        C = np.vstack([np.ones(n), G])
        l, u = np.r_[1.0, -np.inf, -np.inf], np.r_[1.0, 0.5, 0.6]
        x0 = np.full(n, 1.0 / n)
        if (C @ x0 > u).any() or (x0 > hi).any():
            continue
        x = active_set.solve(H, q, lo, hi, C, l, u, x0)
        v = cp.Variable(n)
        prob = cp.Problem(cp.Minimize(0.5 * cp.quad_form(v, cp.psd_wrap(H)) + q @ v),
                          [v >= lo, v <= hi, C[0] @ v == 1, C[1:] @ v <= u[1:]])
        prob.solve(solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
        assert x is not None
        assert 0.5 * x @ H @ x + q @ x <= prob.value + 1e-9
        np.testing.assert_allclose(x, v.value, atol=1e-5)
    assert active_set.solve(np.eye(3), np.zeros(3), np.zeros(3), np.ones(3), np.ones((1, 3)), np.ones(1),
                            np.ones(1), np.array([0.9, 0.9, 0.9])) is None
