"""Walk-forward evaluation of a forecaster against two baselines, out of sample.

The scheme
----------
* Forecast dates are every ``horizon`` trading days from ``start`` (non-overlapping: each
  forecast's realized return is a separate period, so the per-date statistics are independent
  of each other's labels).
* Every ``retrain_months`` months a new fold begins at its first forecast date ``c``. Its model is
  trained on the samples whose label was known at ``c`` (sample date ``t`` with
  ``t + horizon <= c``), from the first date (``window="expanding"``) or from ``train_years``
  before ``c`` (``"rolling"``), with early stopping on the last dates of that period. It then
  forecasts every date of the fold from features at that date.
* Baselines at each forecast date ``t``: the **historical mean** (the mean daily return of each
  ticker over the same training window up to ``t``, times ``horizon``) and **zero**.

Metrics (per fold and overall, for the model and each baseline)
---------------------------------------------------------------
``mean_ic``, ``ic_std``, ``ic_t_stat``
    the Spearman rank correlation between forecasts and realized returns across tickers on each
    forecast date (dates with at least 3 tickers), its mean, standard deviation and
    ``mean / (std / sqrt(dates))``. A constant forecast (zero) has no rank correlation: NaN.
``ic_positive_share``
    the share of dates with IC > 0.
``hit_rate``
    the share of forecasts whose sign is the realized return's (NaN for the zero forecast).
``mse``
    the mean squared error of the forecast return.
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qpo._checks import is_number, number, positive, quote, whole
from qpo.errors import DataError, InvalidValueError, UnknownOptionError
from qpo.forecasting._config import ForecasterConfig
from qpo.forecasting._training import fit
from qpo.forecasting.features import compute_features, forward_returns
from qpo.forecasting.model import TrainedForecaster, window_at

FORECASTS = ("model", "historical_mean", "zero")
WINDOWS = ("expanding", "rolling")


def rank_ic(forecast: pd.DataFrame, realized: pd.DataFrame, min_names: int = 3) -> pd.Series:
    """Spearman correlation across columns, per row (date), of two aligned dates x tickers frames;
    NaN on dates with fewer than ``min_names`` pairs or a constant side."""
    f = forecast.to_numpy(dtype=float)
    r = realized.reindex(index=forecast.index, columns=forecast.columns).to_numpy(dtype=float)
    ok = np.isfinite(f) & np.isfinite(r)
    f = np.where(ok, f, np.nan)
    r = np.where(ok, r, np.nan)
    rf = pd.DataFrame(f).rank(axis=1).to_numpy(copy=True)
    rr = pd.DataFrame(r).rank(axis=1).to_numpy(copy=True)
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "mean of empty slice" on dates without pairs
        rf -= np.nanmean(rf, axis=1, keepdims=True)
        rr -= np.nanmean(rr, axis=1, keepdims=True)
        num = np.nansum(rf * rr, axis=1)
        den = np.sqrt(np.nansum(rf ** 2, axis=1) * np.nansum(rr ** 2, axis=1))
        ic = np.where((n >= min_names) & (den > 0), num / den, np.nan)
    return pd.Series(ic, index=forecast.index, name="ic")


def forecast_metrics(forecast: pd.DataFrame, realized: pd.DataFrame) -> dict[str, float]:
    """The metrics of one forecast (dates x tickers) against the realized returns."""
    ic = rank_ic(forecast, realized).dropna()
    f = forecast.to_numpy(dtype=float)
    r = realized.reindex(index=forecast.index, columns=forecast.columns).to_numpy(dtype=float)
    ok = np.isfinite(f) & np.isfinite(r)
    n_ic = len(ic)
    std = float(ic.std(ddof=1)) if n_ic > 1 else math.nan
    nonzero = ok & (f != 0)
    return {
        "mean_ic": float(ic.mean()) if n_ic else math.nan,
        "ic_std": std,
        "ic_t_stat": float(ic.mean() / (std / math.sqrt(n_ic))) if n_ic > 1 and std > 0 else math.nan,
        "ic_positive_share": float((ic > 0).mean()) if n_ic else math.nan,
        "hit_rate": float((np.sign(f[nonzero]) == np.sign(r[nonzero])).mean()) if nonzero.any() else math.nan,
        "mse": float(np.mean((f[ok] - r[ok]) ** 2)) if ok.any() else math.nan,
        "n_dates": float(n_ic),
        "n_forecasts": float(ok.sum()),
    }


@dataclass(eq=False)
class WalkForwardResult:
    """Out-of-sample forecasts, their metrics and the fold record."""

    config: ForecasterConfig
    forecasts: dict[str, pd.DataFrame]  # "model" / "historical_mean" / "zero" -> dates x tickers
    realized: pd.DataFrame  # dates x tickers: the realized horizon return of each forecast
    folds: pd.DataFrame  # one row per fold
    metrics: pd.DataFrame  # rows FORECASTS, columns the metric names
    models: list[TrainedForecaster]  # one per fold
    window: str
    retrain_months: int
    seconds: float

    @property
    def ic(self) -> pd.DataFrame:
        """Per forecast date: the rank IC of the model and of the historical mean."""
        return pd.DataFrame({k: rank_ic(self.forecasts[k], self.realized) for k in ("model", "historical_mean")})

    @property
    def beats_historical_mean(self) -> bool:
        m = self.metrics
        return bool(np.isfinite(m.loc["model", "mean_ic"]) and
                    m.loc["model", "mean_ic"] > np.nan_to_num(m.loc["historical_mean", "mean_ic"], nan=-np.inf))

    def verdict(self) -> str:
        """One plain sentence: does the model beat the historical mean out of sample?"""
        m = self.metrics
        mi, bi = m.loc["model", "mean_ic"], m.loc["historical_mean", "mean_ic"]
        mt, bt = m.loc["model", "ic_t_stat"], m.loc["historical_mean", "ic_t_stat"]
        mse_m, mse_b, mse_z = m.loc["model", "mse"], m.loc["historical_mean", "mse"], m.loc["zero", "mse"]
        name = self.config.model.upper()
        head = (f"The {name} {'beats' if self.beats_historical_mean else 'does NOT beat'} the historical mean "
                f"out of sample: mean rank IC {mi:.4f} (t = {mt:.2f}) against {bi:.4f} (t = {bt:.2f}) over "
                f"{int(m.loc['model', 'n_dates'])} forecast dates.")
        mse = (f" Its MSE is {mse_m:.3g}, against {mse_b:.3g} for the historical mean and {mse_z:.3g} for zero"
               f" ({'lower' if mse_m < min(mse_b, mse_z) else 'not lower'} than both).")
        sig = "" if not np.isfinite(mt) or abs(mt) >= 2 else " The model's IC is not significant (|t| < 2)."
        return head + mse + sig

    def per_ticker_mse(self) -> pd.Series:
        """Out-of-sample mean squared error of the model's forecast, per ticker."""
        err = (self.forecasts["model"] - self.realized) ** 2
        return err.mean().dropna()

    def summary_metrics(self) -> dict[str, float]:
        """Flat metrics for MLflow: ``oos_<metric>`` for the model, ``<baseline>_<metric>`` for
        the baselines."""
        out: dict[str, float] = {}
        for name, row in self.metrics.iterrows():
            prefix = "oos" if name == "model" else f"baseline_{name}"
            out.update({f"{prefix}_{k}": float(v) for k, v in row.items() if np.isfinite(v)})
        out["beats_historical_mean"] = float(self.beats_historical_mean)
        return out


def _months(value: object) -> int:
    return whole("retrain_months", value, 1, 120)


def walk_forward(prices: pd.DataFrame, config: ForecasterConfig | None = None, *, start=None,
                 retrain_months: int = 12, window: str = "expanding", train_years: float | None = None,
                 min_train_years: float = 3.0, volume: pd.DataFrame | None = None, threads: int | None = None,
                 max_missing_fraction: float = 0.25, periods_per_year: int | None = None,
                 progress: Callable[[int, int, dict], None] | None = None) -> WalkForwardResult:
    """Walk-forward out-of-sample evaluation of ``config`` on ``prices`` (see the module doc).

    ``start`` is the first forecast date (default: ``min_train_years`` of samples after the
    features exist); ``progress(fold, folds, row)`` is called after each fold. Years
    (``min_train_years``, ``train_years``) count ``periods_per_year`` rows of the prices: None
    reads it from their dates (:func:`qpo.data.infer_frequency`: 252 for business days, 365 for
    calendar days)."""
    from qpo.data.calendar import infer_frequency
    from qpo.data.loaders import as_date

    started = time.perf_counter()
    config = config or ForecasterConfig()
    months = _months(retrain_months)
    number("max_missing_fraction", max_missing_fraction, 0.0, 1.0)
    positive("min_train_years", min_train_years, hint="a number of years")
    if window not in WINDOWS:
        raise UnknownOptionError("walk-forward window", window, list(WINDOWS))
    rolling_years = 0.0  # the rolling window's length (unused by an expanding one)
    if window == "rolling":
        if train_years is None or not is_number(train_years) or not train_years > 0:
            raise InvalidValueError(f"a rolling window needs train_years > 0 (e.g. 5), got {quote(train_years)}")
        rolling_years = float(train_years)
    panel = compute_features(prices, config.features, volume)
    target = forward_returns(prices, config.horizon).to_numpy(dtype=float)
    dates, T, h = panel.dates, len(panel.dates), config.horizon
    ppy = infer_frequency(dates, periods_per_year).periods_per_year
    first_sample = config.min_history
    start = as_date(start, "start")
    if start is None:
        s = first_sample + int(round(min_train_years * ppy)) + h
    else:
        s = int(dates.searchsorted(start))
        if s < first_sample + h + 60:
            need = dates[min(first_sample + h + 60, T - 1)].date()
            raise DataError(f"start {start.date()} leaves too little history to train: the first forecast date "
                            f"can be {need} at the earliest (features need {config.features.lookback} periods, "
                            f"window {config.window}, {h}-period labels, 60 sample dates)")
    last = T - 1 - h  # the last date whose realized return is known
    if s > last:
        raise DataError(f"too little history for a walk-forward: the first forecast date would be "
                        f"{dates[min(s, T - 1)].date()} but realized {h}-period returns end at {dates[max(last, 0)].date()}; "
                        f"the prices ({dates[0].date()} to {dates[-1].date()}) need about "
                        f"{(first_sample + h + int(min_train_years * ppy)) / ppy + 1:.1f} years")
    test_pos = np.arange(s, last + 1, h)
    test_dates = dates[test_pos]
    # fold boundaries: every `months` months from the first forecast date
    bounds, b = [], test_dates[0]
    while b <= test_dates[-1]:
        bounds.append(b)
        b = b + pd.DateOffset(months=months)
    fold_of = np.searchsorted(np.array(bounds, dtype="datetime64[ns]"), test_dates.values, side="right") - 1

    px = prices.to_numpy(dtype=float)
    daily = np.vstack([np.full((1, px.shape[1]), np.nan), px[1:] / px[:-1] - 1.0])
    finite = np.isfinite(daily)
    csum = np.vstack([np.zeros((1, px.shape[1])), np.cumsum(np.where(finite, daily, 0.0), axis=0)])
    ccount = np.vstack([np.zeros((1, px.shape[1])), np.cumsum(finite, axis=0)])

    N = len(panel.tickers)
    out = {k: np.full((len(test_pos), N), np.nan) for k in FORECASTS}
    fold_rows, models = [], []
    folds = sorted(set(fold_of.tolist()))
    assert config.window is not None  # set by ForecasterConfig.__post_init__
    for k, f in enumerate(folds):
        rows = np.nonzero(fold_of == f)[0]
        cutoff = int(test_pos[rows[0]])
        train_start = 0 if window == "expanding" else max(0, cutoff - int(round(rolling_years * ppy)))
        model = fit(panel, target, config, end_position=cutoff, start_position=train_start, threads=threads,
                    max_missing_fraction=max_missing_fraction)
        models.append(model)
        for r in rows:
            t = int(test_pos[r])
            x, ok = window_at(panel, t, config.window)
            if ok.any():
                out["model"][r, ok] = model._predict_array(x[ok])
            cnt = ccount[t + 1] - ccount[train_start + 1]
            with np.errstate(invalid="ignore", divide="ignore"):
                hist = (csum[t + 1] - csum[train_start + 1]) / cnt * h
            listed = panel.listed[t]
            out["historical_mean"][r] = np.where(listed & (cnt >= 20), hist, np.nan)
            out["zero"][r] = np.where(listed, 0.0, np.nan)
        realized_f = target[test_pos[rows]]
        both = ~np.isnan(out["model"][rows]) & ~np.isnan(out["historical_mean"][rows])  # the pairs the whole scores
        fm = forecast_metrics(pd.DataFrame(np.where(both, out["model"][rows], np.nan)), pd.DataFrame(realized_f))
        fb = forecast_metrics(pd.DataFrame(np.where(both, out["historical_mean"][rows], np.nan)),
                              pd.DataFrame(realized_f))
        row = {"fold": k + 1, "train_start": dates[train_start],
               "train_end": dates[cutoff], "test_start": dates[test_pos[rows[0]]], "test_end": dates[test_pos[rows[-1]]],
               "n_train": model.n_train, "n_validation": model.n_validation, "n_dropped_nan": model.n_dropped_nan,
               "epochs": len(model.history), "best_epoch": model.best_epoch,
               "best_val_loss": min(e["val_loss"] for e in model.history), "fit_seconds": model.fit_seconds,
               "n_test_dates": len(rows), "mean_ic": fm["mean_ic"], "baseline_mean_ic": fb["mean_ic"],
               "hit_rate": fm["hit_rate"], "mse": fm["mse"], "baseline_mse": fb["mse"]}
        fold_rows.append(row)
        if progress is not None:
            progress(k + 1, len(folds), row)
    frames = {k: pd.DataFrame(v, index=test_dates, columns=panel.tickers) for k, v in out.items()}
    realized = pd.DataFrame(target[test_pos], index=test_dates, columns=panel.tickers)
    common = frames["model"].notna() & frames["historical_mean"].notna()
    for name in frames:  # every forecast is scored on the same (date, ticker) pairs
        frames[name] = frames[name].where(common)
    metrics = pd.DataFrame({k: forecast_metrics(frames[k], realized) for k in FORECASTS}).T
    metrics.index.name = "forecast"
    return WalkForwardResult(config, frames, realized, pd.DataFrame(fold_rows), metrics, models, window, months,
                             time.perf_counter() - started)
