"""MLflow tracking: the one run helper every pipeline uses, and the model registry of the return
forecasters (registering, promoting and loading them, and turning a registered model into a
forecast mean for the optimizer).

Modules: ``mlflow_run`` (:func:`tracked_run`), ``registry`` (reading the registry:
:func:`load_forecaster`, :func:`registry_table`, the champion), ``registration``
(:func:`train_and_register`, :func:`log_and_register`, the promotion rule), ``forecast_means``
(:func:`forecast_mean`, :func:`resolve_mean`) and ``forecaster_pyfunc`` (the MLflow model-from-code
file logged with every forecaster) and ``server`` (``qpo ui mlflow``: the team's tracking server,
:func:`~qpo.tracking.server.server_command`). MLflow is imported only when it is used.
"""
from qpo.tracking.forecast_means import forecast_mean, resolve_mean
from qpo.tracking.mlflow_run import TrackedRun, code_version, configure, tracked_run
from qpo.tracking.registration import (
    PYFUNC_CODE,
    Registration,
    input_example,
    log_and_register,
    promotion_decision,
    train_and_register,
)
from qpo.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    DEFAULT_MODEL_URI,
    MODEL_NAME,
    champion_forecast,
    current_champion,
    load_forecaster,
    numeric_tag,
    registry_client,
    registry_table,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "DEFAULT_MODEL_URI",
    "MODEL_NAME",
    "PYFUNC_CODE",
    "Registration",
    "TrackedRun",
    "champion_forecast",
    "code_version",
    "configure",
    "current_champion",
    "forecast_mean",
    "input_example",
    "load_forecaster",
    "log_and_register",
    "numeric_tag",
    "promotion_decision",
    "registry_client",
    "registry_table",
    "resolve_mean",
    "tracked_run",
    "train_and_register",
]
