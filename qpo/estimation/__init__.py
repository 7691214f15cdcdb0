"""Estimators of expected returns and covariance, plugged into a problem as arguments:
``PortfolioProblem.from_returns(returns, mean=EWMAMean(span=120), covariance="ledoit_wolf")``."""
from qpo.estimation.black_litterman import BlackLitterman
from qpo.estimation.moments import (
    COVARIANCE_ESTIMATORS,
    MEAN_ESTIMATORS,
    OAS,
    CovarianceEstimator,
    EWMACovariance,
    EWMAMean,
    FactorModelCovariance,
    HistoricalMean,
    LedoitWolf,
    MeanEstimator,
    SampleCovariance,
    covariance_estimator,
    mean_estimator,
)

__all__ = [
    "BlackLitterman",
    "FactorModelCovariance",
    "COVARIANCE_ESTIMATORS",
    "MEAN_ESTIMATORS",
    "OAS",
    "CovarianceEstimator",
    "EWMACovariance",
    "EWMAMean",
    "HistoricalMean",
    "LedoitWolf",
    "MeanEstimator",
    "SampleCovariance",
    "covariance_estimator",
    "mean_estimator",
]
