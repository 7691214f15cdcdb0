"""A forecaster counts periods at its prices' own frequency: a panel priced every calendar day has
365 periods a year, a monthly one 12. ``Forecast.periods_per_year`` says which, ``annualized`` is
the per-period forecast x periods a year, and the walk-forward's years (``min_train_years``,
``train_years``) are that many rows, so they span that many calendar years."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qpo.forecasting import FeatureSpec, train_forecaster, walk_forward
from tests.test_forecasting.conftest import TICKERS, small_config

#: features for monthly prices: windows in months (the default 252-period momentum would need 21 years)
MONTHLY_FEATURES = FeatureSpec(return_horizons=(1, 3), vol_windows=(3, 6), momentum=(12, 1))


@pytest.fixture(scope="module")
def calendar_prices(prices) -> pd.DataFrame:
    """The last 1,400 prices of the six names, dated every calendar day (as crypto is)."""
    px = prices.iloc[-1400:]
    return pd.DataFrame(px.to_numpy(), index=pd.date_range(end="2012-12-31", periods=len(px)), columns=TICKERS)


@pytest.fixture(scope="module")
def monthly_prices() -> pd.DataFrame:
    """240 month ends (2000-2019) of six random-walk prices."""
    rng = np.random.default_rng(7)
    idx = pd.date_range("2000-01-31", periods=240, freq="ME")
    return pd.DataFrame(100 * np.cumprod(1 + rng.normal(0.006, 0.05, (240, 6)), axis=0), index=idx, columns=TICKERS)


def test_a_calendar_day_forecast_is_annualized_with_365_periods(calendar_prices):
    model = train_forecaster(calendar_prices, small_config(max_epochs=2, horizon=7))
    f = model.predict(calendar_prices)
    assert f.periods_per_year == 365 and f.horizon == 7 and f.as_of == pd.Timestamp("2012-12-31")
    np.testing.assert_allclose(f.per_period, f.values / 7)
    np.testing.assert_allclose(f.annualized, f.values / 7 * 365)  # not x 252


def test_a_monthly_forecast_is_annualized_with_12_periods(monthly_prices):
    model = train_forecaster(monthly_prices, small_config(max_epochs=2, horizon=3, sample_stride=1,
                                                          features=MONTHLY_FEATURES))
    f = model.predict(monthly_prices)
    assert f.periods_per_year == 12 and f.horizon == 3 and len(f.values) == 6
    np.testing.assert_allclose(f.annualized, f.values / 3 * 12)  # a 3-month forecast x 4
    assert np.all(np.abs(f.annualized) > np.abs(f.values) * 3.99)


def test_walk_forward_counts_calendar_day_years_as_365_rows(calendar_prices):
    config = small_config(max_epochs=1, horizon=7)
    wf = walk_forward(calendar_prices, config, min_train_years=2, window="rolling", train_years=1.5,
                      retrain_months=120)
    dates = calendar_prices.index
    first = dates[config.min_history + 2 * 365 + 7]  # two years of daily samples after the features exist
    assert wf.forecasts["model"].index[0] == first
    fold = wf.folds.iloc[0]
    assert (fold["train_end"] - fold["train_start"]).days == round(1.5 * 365)  # 1.5 years back, not 378 days
    assert (wf.forecasts["model"].index[1] - first).days == 7  # every horizon, in calendar days


def test_walk_forward_counts_monthly_years_as_12_rows(monthly_prices):
    config = small_config(max_epochs=1, horizon=1, sample_stride=1, features=MONTHLY_FEATURES)
    wf = walk_forward(monthly_prices, config, min_train_years=5, window="rolling", train_years=4, retrain_months=60)
    dates = monthly_prices.index
    first = dates[config.min_history + 5 * 12 + 1]
    assert wf.forecasts["model"].index[0] == first
    assert len(wf.forecasts["model"]) == len(dates) - 1 - 1 - (config.min_history + 5 * 12 + 1) + 1
    for _, fold in wf.folds.iterrows():  # each rolling window spans 4 years of months (48 rows)
        assert dates.get_loc(fold["train_end"]) - dates.get_loc(fold["train_start"]) == 48
    assert (wf.folds["test_start"].diff().dropna().dt.days.between(365 * 5 - 2, 365 * 5 + 2)).all()  # every 60 months
