"""Estimators of expected returns and covariance, plugged into a problem as arguments:
``PortfolioProblem.from_returns(returns, mean=EWMAMean(span=120), covariance="ledoit_wolf")``.

A forecast mean takes a loaded forecaster: ``ForecastMean(forecaster)``; the name ``"forecast"``
(the model registry's champion) is resolved above the optimizer, by ``qpo.tracking.forecast_mean()``."""
from qpo.estimation.black_litterman import BlackLitterman
from qpo.estimation.forecast import ForecastBlackLitterman, ForecastMean, forecast_views
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
    "ForecastBlackLitterman",
    "ForecastMean",
    "forecast_views",
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
