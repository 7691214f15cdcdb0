"""Return forecasting: features from prices, PyTorch forecasters (MLP, LSTM, GRU) trained on the
CPU, and walk-forward evaluation against the historical mean and zero.

This package knows no MLflow: logging, registering, promoting and loading forecasters from the
model registry live in :mod:`qpo.tracking` (``qpo.tracking.train_and_register``,
``qpo.tracking.load_forecaster``). torch is imported only when a model is built, trained or loaded.

Modules: ``features`` (the one feature function), ``_config`` (:class:`ForecasterConfig`),
``_networks`` (the networks), ``_training`` (:func:`train_forecaster`, :func:`fit`), ``model``
(:class:`TrainedForecaster` and its :class:`Forecast`), ``walkforward`` (:func:`walk_forward`).
"""
from qpo.forecasting._config import MODELS, ForecasterConfig
from qpo.forecasting._training import fit, samples, train_forecaster
from qpo.forecasting.features import (
    FeaturePanel,
    FeatureSpec,
    compute_features,
    forward_returns,
)
from qpo.forecasting.model import Forecast, TrainedForecaster, window_at
from qpo.forecasting.walkforward import (
    WalkForwardResult,
    forecast_metrics,
    rank_ic,
    walk_forward,
)

__all__ = [
    "MODELS",
    "FeaturePanel",
    "FeatureSpec",
    "Forecast",
    "ForecasterConfig",
    "TrainedForecaster",
    "WalkForwardResult",
    "compute_features",
    "fit",
    "forecast_metrics",
    "forward_returns",
    "rank_ic",
    "samples",
    "train_forecaster",
    "walk_forward",
    "window_at",
]
