"""Return forecasting: features from prices, PyTorch forecasters (MLP, LSTM, GRU) trained on the
CPU, walk-forward evaluation against the historical mean and zero, and the MLflow model
registry that promotes a forecaster only on out-of-sample evidence.

torch and MLflow are imported only when a model is built, trained, logged or loaded."""
from qpo.forecasting.features import (
    FeaturePanel,
    FeatureSpec,
    compute_features,
    forward_returns,
)
from qpo.forecasting.model import (
    MODELS,
    Forecast,
    ForecasterConfig,
    TrainedForecaster,
    train_forecaster,
)
from qpo.forecasting.registry import (
    DEFAULT_MODEL_URI,
    MODEL_NAME,
    Registration,
    champion_forecast,
    load_forecaster,
    log_and_register,
    registry_table,
    train_and_register,
)
from qpo.forecasting.walkforward import (
    WalkForwardResult,
    forecast_metrics,
    rank_ic,
    walk_forward,
)

__all__ = [
    "DEFAULT_MODEL_URI",
    "MODEL_NAME",
    "Registration",
    "champion_forecast",
    "load_forecaster",
    "log_and_register",
    "registry_table",
    "train_and_register",
    "MODELS",
    "FeaturePanel",
    "FeatureSpec",
    "Forecast",
    "ForecasterConfig",
    "TrainedForecaster",
    "WalkForwardResult",
    "compute_features",
    "forecast_metrics",
    "forward_returns",
    "rank_ic",
    "train_forecaster",
    "walk_forward",
]
