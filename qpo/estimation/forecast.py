"""Expected returns from a return forecaster, directly or as Black-Litterman views.

Both estimators take a loaded forecaster (a :class:`qpo.forecasting.TrainedForecaster`):
``PortfolioProblem.from_returns(returns, mean=ForecastMean(forecaster))``. qpo.estimation does
not read the model registry; the layers above resolve a ``models:/`` URI or the name
``"forecast"`` (the registry's champion) into an estimator: ``qpo.tracking.forecast_mean()``
(the champion, ``models:/qpo-return-forecaster@champion``), ``qpo.tracking.forecast_mean(uri,
black_litterman=True)``, or ``ForecastMean(qpo.load_forecaster(uri))``.

The forecaster predicts each ticker's return over the next ``horizon`` periods (trading days for
business-daily returns) from the
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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from qpo.data.calendar import infer_frequency
from qpo.errors import LookAheadError, ProblemError
from qpo.estimation.black_litterman import BlackLitterman
from qpo.estimation.moments import CovarianceEstimator, MeanEstimator

if TYPE_CHECKING:
    from qpo.forecasting import Forecast, TrainedForecaster

#: the registry's champion (qpo.tracking.DEFAULT_MODEL_URI; named here for the error messages only)
DEFAULT_MODEL_URI = "models:/qpo-return-forecaster@champion"


def _check_forecaster(forecaster: object, estimator: str) -> None:
    """A clear error unless ``forecaster`` is a loaded :class:`~qpo.forecasting.TrainedForecaster`."""
    from qpo.forecasting import TrainedForecaster

    if isinstance(forecaster, TrainedForecaster):
        return
    bl = ", black_litterman=True" if estimator == "ForecastBlackLitterman" else ""
    if forecaster is None or isinstance(forecaster, str):
        uri = forecaster if isinstance(forecaster, str) and forecaster.startswith("models:/") else DEFAULT_MODEL_URI
        given = "no forecaster" if forecaster is None else f"the string {forecaster!r}"
        raise ProblemError(f"{estimator} takes a loaded forecaster (a qpo.forecasting.TrainedForecaster), not {given}: "
                           f"qpo.estimation does not read the model registry. Pass "
                           f"{estimator}(qpo.load_forecaster({uri!r})), or let the registry build the estimator: "
                           f"qpo.forecast_mean({uri!r}{bl})")
    raise ProblemError(f"{estimator} takes a loaded forecaster (a qpo.forecasting.TrainedForecaster, e.g. "
                       f"qpo.load_forecaster({DEFAULT_MODEL_URI!r})), got {type(forecaster).__name__}")


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


def forecast_for(returns: pd.DataFrame, forecaster: TrainedForecaster) -> Forecast:
    """``forecaster``'s forecast at the last date of ``returns``; every ticker must be forecast. A
    date before the forecaster's training end is refused (look-ahead)."""
    from dataclasses import replace

    prices = _prices_from_returns(returns)  # dated, daily, complete: checked first
    if forecaster.in_sample(returns.index[-1]):  # an optimizer's mean (a backtest's rebalance): refused
        raise LookAheadError(forecaster.in_sample_text(returns.index[-1]) + "; a backtest with it would trade on "
                             "the future: start it after the training end, or train the forecaster walk-forward")
    fc = forecaster.predict(prices)
    # the forecaster names tickers as str; give the forecasts the returns' own labels (e.g. int PERMNOs)
    label = {str(t): t for t in returns.columns}
    fc = replace(fc, values=fc.values.rename(index=label))
    missing = [t for t in returns.columns if t not in fc.values.index]
    if missing:
        raise ProblemError(f"the forecaster has no forecast for {missing}: "
                           f"{ {t: fc.dropped.get(str(t), 'unknown') for t in missing} }")
    return fc


@dataclass(frozen=True, eq=False)
class ForecastMean(MeanEstimator):
    """Expected returns per period = ``forecaster``'s ``horizon``-day forecast / ``horizon``."""

    forecaster: TrainedForecaster | None = None
    name = "forecast"

    def __post_init__(self) -> None:
        _check_forecaster(self.forecaster, "ForecastMean")

    def estimate(self, returns: pd.DataFrame) -> pd.Series:
        assert self.forecaster is not None  # checked when made
        fc = forecast_for(returns, self.forecaster)
        return (fc.values.reindex(returns.columns) / fc.horizon).rename(None)


def forecast_views(forecaster: TrainedForecaster, forecast: Forecast,
                   periods_per_year: int | None = None) -> tuple[dict[str, float], np.ndarray]:
    """``(views, omega)``: annual absolute views from ``forecast`` and their diagonal
    uncertainty from ``forecaster``'s out-of-sample MSE (see the module doc); ``periods_per_year``
    None: the forecast's own (that of the prices it was made from)."""
    h = forecast.horizon
    if periods_per_year is None:
        periods_per_year = forecast.periods_per_year
    per_ticker = forecaster.metadata.get("per_ticker_oos_mse") or {}
    overall = forecaster.metadata.get("oos_mse")
    tickers = list(forecast.values.index)
    mse = []
    for t in tickers:
        v = per_ticker.get(str(t), overall)  # recorded by str ticker (JSON keys)
        if v is None or not np.isfinite(v) or v <= 0:
            raise ProblemError(f"the forecaster records no out-of-sample error for {t!r}, so its views have no "
                               "confidence; use a model registered by qpo (qpo.tracking.log_and_register records it)")
        mse.append(float(v))
    views = {t: float(forecast.values[t]) * periods_per_year / h for t in tickers}
    return views, np.diag(np.asarray(mse) * periods_per_year / h)


@dataclass(frozen=True, eq=False)
class ForecastBlackLitterman(MeanEstimator):
    """Black-Litterman posterior with ``forecaster``'s views (confidence from its out-of-sample
    error); the other arguments are :class:`~qpo.estimation.BlackLitterman`'s."""

    forecaster: TrainedForecaster | None = None
    market_weights: Mapping[str, float] | None = None
    prior: Mapping[str, float] | None = None
    risk_aversion: float = 2.5
    tau: float = 0.05
    covariance: str | CovarianceEstimator = "sample"
    periods_per_year: int | None = None  # None: from the returns' dates
    name = "forecast_black_litterman"

    def __post_init__(self) -> None:
        _check_forecaster(self.forecaster, "ForecastBlackLitterman")

    def model_for(self, returns: pd.DataFrame) -> BlackLitterman:
        """The :class:`~qpo.estimation.BlackLitterman` this estimator builds for ``returns``."""
        assert self.forecaster is not None  # checked when made
        fc = forecast_for(returns, self.forecaster)
        ppy = infer_frequency(returns.index, self.periods_per_year).periods_per_year
        views, omega = forecast_views(self.forecaster, fc, ppy)
        return BlackLitterman(views=views, omega=omega, market_weights=self.market_weights, prior=self.prior,
                              risk_aversion=self.risk_aversion, tau=self.tau, covariance=self.covariance,
                              periods_per_year=ppy)

    def estimate(self, returns: pd.DataFrame) -> pd.Series:
        return self.model_for(returns).estimate(returns)
