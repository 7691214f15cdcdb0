"""Black-Litterman and the factor-model covariance, against PyPortfolioOpt and independent numpy."""
import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.errors import InvalidValueError, ProblemError


@pytest.fixture(scope="module")
def returns(sp500_clean):
    return qpo.prices_to_returns(sp500_clean.loc["2018-01-01":"2022-12-31"])


@pytest.fixture(scope="module")
def market(returns):
    mw = {t: 1.0 + i for i, t in enumerate(returns.columns)}
    return mw, pd.Series(mw) / sum(mw.values())


@pytest.mark.parametrize("confidences", [None, [0.5, 0.3, 0.9]])
def test_black_litterman_matches_pypfopt(returns, market, confidences):
    """Posterior returns equal PyPortfolioOpt's for absolute views, with the default and Idzorek omega."""
    from pypfopt import BlackLittermanModel

    mw, w = market
    views = {"AAPL": 0.20, "XOM": -0.05, "JPM": 0.10}
    cov = returns.cov() * 252
    pi = 2.5 * cov @ w
    kw = {"omega": "idzorek", "view_confidences": confidences} if confidences else {}
    ref = BlackLittermanModel(cov, pi=pi, absolute_views=views, tau=0.05, **kw).bl_returns()
    bl = qpo.BlackLitterman(views=views, market_weights=mw, risk_aversion=2.5, tau=0.05,
                            view_confidences=confidences)
    post = bl.estimate(returns) * 252
    np.testing.assert_allclose(post.to_numpy(), ref[post.index].to_numpy(), atol=1e-12)
    # the views pull their assets' returns toward the view away from the prior
    prior, _ = bl.posterior(cov)
    for t, view in views.items():
        assert np.sign(post[t] - prior[t]) == np.sign(view - prior[t])
        assert abs(post[t] - view) < abs(prior[t] - view)


def test_black_litterman_relative_view_and_problem(returns, market):
    """A relative view (P, Q) matches PyPortfolioOpt; the estimator plugs into a problem."""
    from pypfopt import BlackLittermanModel

    mw, w = market
    P = pd.DataFrame([[1.0, -1.0]], columns=["MSFT", "KO"])
    cov = returns.cov() * 252
    ref = BlackLittermanModel(cov, pi=2.5 * cov @ w, P=P.reindex(columns=returns.columns, fill_value=0).to_numpy(),
                              Q=np.array([0.03]), tau=0.05).bl_returns()
    bl = qpo.BlackLitterman(views=(P, [0.03]), market_weights=mw)
    problem = qpo.PortfolioProblem.from_returns(returns, mean=bl)
    np.testing.assert_allclose(problem.mu.to_numpy() * 252, ref[problem.tickers].to_numpy(), atol=1e-12)
    # a confident view that MSFT beats KO by far raises MSFT's weight in max-Sharpe
    bold = problem.with_mean(qpo.BlackLitterman(views=(P, [0.30]), market_weights=mw).estimate(returns))
    assert qpo.optimize(bold, "max_sharpe").weights["MSFT"] > qpo.optimize(problem, "max_sharpe").weights["MSFT"]


def test_black_litterman_bad_input(returns):
    """Unknown tickers, mismatched P/Q, bad confidences and missing views are clear errors."""
    with pytest.raises(ProblemError, match=r"outside the universe: \['ZZZ'\]"):
        qpo.BlackLitterman(views={"ZZZ": 0.1}).estimate(returns)
    with pytest.raises(ProblemError, match="1 views in P but 2 returns in Q"):
        qpo.BlackLitterman(views=(pd.DataFrame([[1.0]], columns=["AAPL"]), [0.1, 0.2])).estimate(returns)
    with pytest.raises(ProblemError, match=r"view_confidences needs 1 numbers in \(0, 1\]"):
        qpo.BlackLitterman(views={"AAPL": 0.1}, view_confidences=[1.5]).estimate(returns)
    with pytest.raises(InvalidValueError, match="needs views"):
        qpo.BlackLitterman()
    with pytest.raises(InvalidValueError, match="tau must be a positive number"):
        qpo.BlackLitterman(views={"AAPL": 0.1}, tau=0)


def test_statistical_factor_model(returns):
    """PCA factor model: k leading eigenpairs plus the residual diagonal; the diagonal is exact."""
    est = qpo.FactorModelCovariance(n_factors=2)
    cov = est.estimate(returns)
    S = returns.cov().to_numpy()
    vals, vecs = np.linalg.eigh(S)
    common = vecs[:, -2:] @ np.diag(vals[-2:]) @ vecs[:, -2:].T
    expected = common + np.diag(np.diag(S - common))
    np.testing.assert_allclose(cov.to_numpy(), expected, atol=1e-15)
    np.testing.assert_allclose(np.diag(cov), np.diag(S), rtol=1e-12)
    assert np.linalg.eigvalsh(cov.to_numpy()).min() > 0
    assert np.linalg.matrix_rank(cov.to_numpy() - np.diag(np.diag(cov))) > 2  # not only the common part
    with pytest.raises(InvalidValueError, match="n_factors 20 must be below the number of assets 20"):
        qpo.FactorModelCovariance(n_factors=20).estimate(returns)


def test_factor_model_with_given_factors(returns, sp500_clean):
    """Loadings from OLS on given factor returns (here the S&P 500 index) match scikit-learn's
    regression; residual variances use ddof = 1 + factors."""
    from sklearn.linear_model import LinearRegression

    index = qpo.prices_to_returns(qpo.load_prices("sp500_index").loc["2018-01-01":"2022-12-31"])
    factors = index.reindex(returns.index)
    cov = qpo.FactorModelCovariance(factors=factors).estimate(returns)
    lr = LinearRegression().fit(factors.to_numpy(), returns.to_numpy())
    B = lr.coef_
    resid = returns.to_numpy() - lr.predict(factors.to_numpy())
    D = (resid ** 2).sum(axis=0) / (len(returns) - 2)
    expected = B @ np.atleast_2d(factors.var().to_numpy()) @ B.T + np.diag(D)
    np.testing.assert_allclose(cov.to_numpy(), expected, rtol=1e-9)
    problem = qpo.PortfolioProblem.from_returns(returns, covariance=qpo.FactorModelCovariance(factors=factors))
    assert qpo.optimize(problem).weights.sum() == pytest.approx(1.0)
    with pytest.raises(InvalidValueError, match="factors have no rows for 10 of the returns' dates"):
        qpo.FactorModelCovariance(factors=factors.iloc[10:]).estimate(returns)
