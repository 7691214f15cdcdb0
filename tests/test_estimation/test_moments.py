"""Estimators against PyPortfolioOpt (and scikit-learn/pandas) on the bundled real data."""
import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.errors import InvalidValueError, UnknownOptionError
from qpo.estimation import (
    OAS,
    EWMACovariance,
    EWMAMean,
    LedoitWolf,
    covariance_estimator,
    mean_estimator,
)


@pytest.fixture(scope="module")
def returns(sp500_clean):
    return qpo.prices_to_returns(sp500_clean.loc["2017-01-01":"2021-12-31"])


def test_ewma_mean_matches_pypfopt_and_pandas(returns):
    from pypfopt import expected_returns

    got = EWMAMean(span=250).estimate(returns)
    ref = expected_returns.ema_historical_return(returns, returns_data=True, compounding=False, span=250,
                                                 frequency=1)
    np.testing.assert_allclose(got[ref.index].to_numpy(), ref.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(got.to_numpy(), returns.ewm(span=250).mean().iloc[-1].to_numpy(), rtol=1e-10)
    # recent periods count more: the EWMA mean differs from the sample mean
    assert np.abs(got - returns.mean()).max() > 1e-5


def test_ewma_covariance_matches_pypfopt(returns):
    from pypfopt import risk_models

    sub = returns.iloc[:, :6]
    got = EWMACovariance(span=120).estimate(sub)
    ref = risk_models.exp_cov(sub, returns_data=True, span=120, frequency=1)
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("estimator, method", [(LedoitWolf(), "ledoit_wolf"), (OAS(), "oracle_approximating")])
def test_shrinkage_matches_pypfopt(returns, estimator, method):
    from pypfopt import risk_models

    got = estimator.estimate(returns)
    ref = getattr(risk_models.CovarianceShrinkage(returns, returns_data=True, frequency=1), method)()
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-9, atol=1e-14)
    # shrinkage pulls the off-diagonal toward zero and leaves a well-conditioned matrix
    sample = returns.cov().to_numpy()
    off = ~np.eye(len(got), dtype=bool)
    assert np.abs(got.to_numpy()[off]).sum() < np.abs(sample[off]).sum()
    assert np.linalg.cond(got.to_numpy()) < np.linalg.cond(sample)


@pytest.mark.parametrize("cov", ["sample", "ewma", "ledoit_wolf", "oas", EWMACovariance(span=60)])
@pytest.mark.parametrize("mean", ["historical", "ewma", EWMAMean(span=60)])
def test_every_estimator_builds_a_problem_that_solves(returns, mean, cov):
    problem = qpo.PortfolioProblem.from_returns(returns, mean=mean, covariance=cov,
                                                constraints=qpo.Constraints(max_weight=0.2))
    result = qpo.optimize(problem, "min_variance")
    assert result.weights.sum() == pytest.approx(1.0) and result.weights.max() <= 0.2 + 1e-8
    assert list(problem.cov.columns) == list(returns.columns)


def test_bad_estimators_are_clear_errors(returns):
    with pytest.raises(UnknownOptionError, match="unknown covariance estimator 'shrunk'; valid: .*ledoit_wolf"):
        qpo.PortfolioProblem.from_returns(returns, covariance="shrunk")
    with pytest.raises(UnknownOptionError, match="unknown mean estimator 'capm'; valid: .*ewma"):
        mean_estimator("capm")
    with pytest.raises(InvalidValueError, match="span must be a number of periods >= 1"):
        EWMAMean(span=0)
    with pytest.raises(InvalidValueError, match="span"):
        covariance_estimator(EWMACovariance(span=-3))
    assert isinstance(covariance_estimator("oas"), OAS)
    assert pd.api.types.is_float_dtype(mean_estimator("historical").estimate(returns))
