"""Expected returns from a registered return forecaster, directly or as Black-Litterman views.

``PortfolioProblem.from_returns(returns, mean=ForecastMean())`` uses the registry's champion
(``models:/qpo-return-forecaster@champion``); any ``models:/name@alias`` or
``models:/name/version``, or a :class:`~qpo.forecasting.TrainedForecaster`, can be given instead.

The forecaster predicts each ticker's return over the next ``horizon`` trading days from the
features at the last date of the returns (prices are rebuilt from the returns: every feature is a
ratio of prices, so the scale does not matter). The estimate per period is ``forecast / horizon``.
The rank features compare the problem's names with each other: on a subset of the universe the
model was trained on, the forecasts are those of that smaller cross-section.

Black-Litterman views from forecasts (:class:`ForecastBlackLitterman`): one absolute view per
ticker, ``Q = forecast * periods_per_year / horizon`` (annual), with uncertainty from the
forecaster's out-of-sample error: ``Omega_ii = MSE_i * periods_per_year / horizon``, the
walk-forward mean squared error of that ticker's ``horizon``-day forecast scaled to a year as a
variance is (the overall MSE when the ticker has none). A forecaster that missed by a lot moves
the prior little.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qpo.errors import ProblemError
from qpo.estimation.moments import MeanEstimator


def _forecaster(model, tracking_uri):
    from qpo.forecasting.model import TrainedForecaster
    from qpo.forecasting.registry import load_forecaster

    if isinstance(model, TrainedForecaster):
        return model
    if not isinstance(model, str):
        raise ProblemError("model must be a models:/ URI (e.g. 'models:/qpo-return-forecaster@champion') or a "
                           f"qpo.forecasting.TrainedForecaster, got {type(model).__name__}")
    return load_forecaster(model, tracking_uri=tracking_uri)


def _prices_from_returns(returns: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(returns.index, pd.DatetimeIndex) or len(returns) == 0:
        raise ProblemError("a forecast mean needs returns indexed by date (DatetimeIndex)")
    if len(returns) > 1:
        # the forecaster's features count trading days (ret_21d, 12-1 momentum, ...): weekly or monthly
        # returns would rebuild weekly "prices" and read 21 weeks as 21 days
        step = pd.Series(returns.index).diff().dropna().median()
        if not pd.Timedelta(hours=20) <= step <= pd.Timedelta(days=4):
            raise ProblemError(f"a forecast mean needs daily returns (the forecaster's features and horizon are in "
                               f"trading days), but these are {step} apart (median); give daily returns")
    values = returns.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ProblemError("returns hold NaN/inf; the forecaster needs a complete window")
    base = pd.DataFrame(np.ones((1, returns.shape[1])), columns=returns.columns,
                        index=[returns.index[0] - pd.Timedelta(days=1)])
    growth = pd.DataFrame(np.cumprod(1.0 + values, axis=0), index=returns.index, columns=returns.columns)
    return pd.concat([base, growth])


def forecast_for(returns: pd.DataFrame, model, tracking_uri: str | None = None):
    """``(forecaster, Forecast)`` at the last date of ``returns``; every ticker must be forecast."""
    from dataclasses import replace

    f = _forecaster(model, tracking_uri)
    fc = f.predict(_prices_from_returns(returns))
    # the forecaster names tickers as str; give the forecasts the returns' own labels (e.g. int PERMNOs)
    label = {str(t): t for t in returns.columns}
    fc = replace(fc, values=fc.values.rename(index=label))
    missing = [t for t in returns.columns if t not in fc.values.index]
    if missing:
        raise ProblemError(f"the forecaster has no forecast for {missing}: "
                           f"{ {t: fc.dropped.get(str(t), 'unknown') for t in missing} }")
    return f, fc


@dataclass(frozen=True, eq=False)
class ForecastMean(MeanEstimator):
    """Expected returns per period = the forecaster's ``horizon``-day forecast / ``horizon``."""

    model: object = "models:/qpo-return-forecaster@champion"
    tracking_uri: str | None = None
    name = "forecast"
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def forecaster(self):
        if "f" not in self._cache:
            self._cache["f"] = _forecaster(self.model, self.tracking_uri)
        return self._cache["f"]

    def estimate(self, returns: pd.DataFrame) -> pd.Series:
        f, fc = forecast_for(returns, self.forecaster())
        return (fc.values.reindex(returns.columns) / fc.horizon).rename(None)


def forecast_views(forecaster, forecast, periods_per_year: int = 252) -> tuple[dict[str, float], np.ndarray]:
    """``(views, omega)``: annual absolute views from ``forecast`` and their diagonal
    uncertainty from ``forecaster``'s out-of-sample MSE (see the module doc)."""
    h = forecast.horizon
    per_ticker = forecaster.metadata.get("per_ticker_oos_mse") or {}
    overall = forecaster.metadata.get("oos_mse")
    tickers = list(forecast.values.index)
    mse = []
    for t in tickers:
        v = per_ticker.get(str(t), overall)  # recorded by str ticker (JSON keys)
        if v is None or not np.isfinite(v) or v <= 0:
            raise ProblemError(f"the forecaster records no out-of-sample error for {t!r}, so its views have no "
                               "confidence; use a model registered by qpo (log_and_register records it)")
        mse.append(float(v))
    views = {t: float(forecast.values[t]) * periods_per_year / h for t in tickers}
    return views, np.diag(np.asarray(mse) * periods_per_year / h)


@dataclass(frozen=True, eq=False)
class ForecastBlackLitterman(MeanEstimator):
    """Black-Litterman posterior with the forecaster's views (confidence from its out-of-sample
    error); the other arguments are :class:`~qpo.estimation.BlackLitterman`'s."""

    model: object = "models:/qpo-return-forecaster@champion"
    tracking_uri: str | None = None
    market_weights: object = None
    prior: object = None
    risk_aversion: float = 2.5
    tau: float = 0.05
    covariance: object = "sample"
    periods_per_year: int = 252
    name = "forecast_black_litterman"
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def model_for(self, returns: pd.DataFrame):
        """The :class:`~qpo.estimation.BlackLitterman` this estimator builds for ``returns``."""
        from qpo.estimation.black_litterman import BlackLitterman

        if "f" not in self._cache:
            self._cache["f"] = _forecaster(self.model, self.tracking_uri)
        f, fc = forecast_for(returns, self._cache["f"])
        views, omega = forecast_views(f, fc, self.periods_per_year)
        return BlackLitterman(views=views, omega=omega, market_weights=self.market_weights, prior=self.prior,
                              risk_aversion=self.risk_aversion, tau=self.tau, covariance=self.covariance,
                              periods_per_year=self.periods_per_year)

    def estimate(self, returns: pd.DataFrame) -> pd.Series:
        return self.model_for(returns).estimate(returns)
