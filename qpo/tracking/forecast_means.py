"""Forecast means from the model registry: where a ``models:/`` URI or the mean name
``"forecast"`` becomes an estimator.

The optimizer and the estimators know no registry: :class:`qpo.estimation.ForecastMean` and
:class:`qpo.estimation.ForecastBlackLitterman` take a loaded forecaster. The layers above
(reports, pipelines, the CLI, a notebook) resolve a registered model here first::

    mean = qpo.tracking.forecast_mean()                       # the champion's forecasts / horizon
    mean = qpo.tracking.forecast_mean(uri, black_litterman=True, market_weights=mw)
    problem = qpo.PortfolioProblem.from_returns(returns, mean=mean)

:func:`resolve_mean` passes every other mean (a name such as ``"ewma"``, an estimator) through.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qpo.errors import ProblemError
from qpo.tracking.registry import DEFAULT_MODEL_URI, load_forecaster

if TYPE_CHECKING:
    from qpo.estimation import ForecastBlackLitterman, ForecastMean, MeanEstimator
    from qpo.forecasting import TrainedForecaster


def forecast_mean(model: str | TrainedForecaster = DEFAULT_MODEL_URI, *, tracking_uri: str | None = None,
                  black_litterman: bool = False, **options: Any) -> ForecastMean | ForecastBlackLitterman:
    """The forecast mean of a registered forecaster (default: the registry's champion,
    ``models:/qpo-return-forecaster@champion``), loaded now: a
    :class:`~qpo.estimation.ForecastMean`, or with ``black_litterman=True`` a
    :class:`~qpo.estimation.ForecastBlackLitterman` (``options``: its market weights, prior,
    risk aversion, tau, covariance, periods per year).

    ``model`` is ``models:/name@alias``, ``models:/name/version`` or ``models:/name`` (see
    :func:`qpo.tracking.load_forecaster`: an unknown model, alias or version, or an empty
    registry, is a :class:`~qpo.errors.DataError` that says what the registry holds), or a
    :class:`~qpo.forecasting.TrainedForecaster` already loaded."""
    from qpo.estimation import ForecastBlackLitterman, ForecastMean
    from qpo.forecasting import TrainedForecaster

    if isinstance(model, TrainedForecaster):
        forecaster = model
    elif isinstance(model, str):
        forecaster = load_forecaster(model, tracking_uri=tracking_uri)
    else:
        raise ProblemError(f"model must be a models:/ URI (e.g. {DEFAULT_MODEL_URI!r}) or a "
                           f"qpo.forecasting.TrainedForecaster, got {type(model).__name__}")
    if black_litterman:
        return ForecastBlackLitterman(forecaster, **options)
    if options:
        raise ProblemError(f"{sorted(options)} are options of the Black-Litterman forecast mean; "
                           "give black_litterman=True or leave them out")
    return ForecastMean(forecaster)


def resolve_mean(mean: str | MeanEstimator, *, tracking_uri: str | None = None) -> str | MeanEstimator:
    """``mean`` ready for :meth:`qpo.PortfolioProblem.from_returns`: the name ``"forecast"``
    becomes the champion's :func:`forecast_mean`, a ``models:/`` URI that model's; any other
    name or estimator is returned as it is."""
    if isinstance(mean, str) and mean == "forecast":
        return forecast_mean(DEFAULT_MODEL_URI, tracking_uri=tracking_uri)
    if isinstance(mean, str) and mean.startswith("models:/"):
        return forecast_mean(mean, tracking_uri=tracking_uri)
    return mean
