"""Review findings on the forecaster: each test failed before its fix.

1. ``predict_frame`` on a frame whose index is not unique (``pd.concat`` of two feature frames)
   crashed with a pandas ValueError; duplicate (date, ticker) rows were silently windowed as days.
2. ``predict_frame`` windowed over *rows*, not dates: a frame with a ticker's NaN rows dropped
   (``frame.dropna()``) gave a recurrent model a window that spans a gap, which ``predict`` (and
   the walk-forward) refuse.
3. Samples in a newly listed ticker's warm-up (no features yet: a valid NaN before a listing)
   counted as "missing" against ``max_missing_fraction``: a universe where many names list late
   was refused with "the prices have gaps".
4. ``ForecastMean`` / ``ForecastBlackLitterman`` on weekly returns silently rebuilt weekly
   "prices" and read 21 *weeks* as 21 days.
5. The logged input example was empty (or all NaN) when the first tickers were delisted (or
   newly listed) at the end of the data.
6. ``load_forecaster`` on a registered model that is not a qpo forecaster leaked an
   ``MlflowException`` instead of the DataError it means to raise.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qpo.errors import DataError, ProblemError
from qpo.forecasting import compute_features, train_forecaster
from qpo.tracking import input_example

from .conftest import small_config


# --------------------------------------------------------------------------- 1. non-unique index / duplicates
def test_predict_frame_on_concatenated_frames(prices, trained_mlp):
    panel = compute_features(prices)
    d1, d2 = panel.dates[-30], panel.dates[-1]
    f1, f2 = panel.to_frame([d1]), panel.to_frame([d2])
    both = pd.concat([f1, f2])  # index 0..5, 0..5: not unique
    out = trained_mlp.predict_frame(both)
    assert out.index.equals(both.index)
    np.testing.assert_allclose(out.to_numpy()[:6], trained_mlp.predict(prices, d1).values.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(out.to_numpy()[6:], trained_mlp.predict(prices, d2).values.to_numpy(), rtol=1e-6)
    # a shuffled frame: every row still gets its own forecast
    shuffled = both.sample(frac=1.0, random_state=0)
    by_key = dict(zip(zip(both["date"], both["ticker"]), out.to_numpy()))
    got = trained_mlp.predict_frame(shuffled)
    for (d, t), v in zip(zip(shuffled["date"], shuffled["ticker"]), got.to_numpy()):
        assert v == pytest.approx(by_key[(d, t)], rel=1e-6)


def test_predict_frame_refuses_duplicate_rows(prices, trained_mlp):
    frame = compute_features(prices.iloc[-300:]).to_frame(prices.index[-3:])
    dup = pd.concat([frame, frame.iloc[:2]], ignore_index=True)
    with pytest.raises(DataError, match="duplicate"):
        trained_mlp.predict_frame(dup)


# --------------------------------------------------------------------------- 2. windows follow dates, not rows
def test_predict_frame_window_does_not_span_a_gap(prices, trained_gru):
    px = prices.iloc[-400:].copy()
    g = 320
    px.iloc[g, px.columns.get_loc("KO")] = np.nan  # a one-day halt
    frame = compute_features(px).to_frame()
    clean = frame.dropna().reset_index(drop=True)  # drop the NaN-feature rows first, as users do
    out = trained_gru.predict_frame(clean)
    ko = (clean["ticker"] == "KO").to_numpy()
    first_after = clean.loc[ko & (clean["date"] > px.index[g]).to_numpy(), "date"].min()
    # predict() refuses a window that holds the gap; predict_frame must agree
    fc = trained_gru.predict(px, as_of=first_after, max_missing_fraction=0.5)
    assert "KO" in fc.dropped
    row = ko & (clean["date"] == first_after).to_numpy()
    assert np.isnan(out[row]).all()
    # where both have a forecast they agree (the other tickers on that date)
    other = (~ko) & (clean["date"] == first_after).to_numpy()
    np.testing.assert_allclose(out[other].to_numpy(), fc.values.drop("KO", errors="ignore").to_numpy(), rtol=1e-5)


# --------------------------------------------------------------------------- 3. warm-up is not a gap
def test_late_listings_are_not_counted_as_gaps(prices):
    px = prices.loc[:"2008-06-30"].copy()
    px.iloc[:900, :4] = np.nan  # four of six names listed in 2007: NaN before their listing, no gaps
    m = train_forecaster(px, small_config(max_epochs=1))
    assert m.n_dropped_nan > 0  # the warm-up samples are dropped and counted ...
    # ... but they are not gaps: a real gap still counts against the threshold
    gappy = px.copy()
    rng = np.random.default_rng(0)
    gappy.iloc[rng.choice(np.arange(300, 900), 40, replace=False), 4] = np.nan
    with pytest.raises(DataError, match="max_missing_fraction"):
        train_forecaster(gappy, small_config(max_epochs=1), max_missing_fraction=0.05)


# --------------------------------------------------------------------------- 4. daily returns only
def test_forecast_mean_refuses_weekly_returns(prices, trained_mlp):
    from qpo.estimation import ForecastBlackLitterman, ForecastMean

    weekly = prices.resample("W-FRI").last().pct_change().dropna()
    with pytest.raises(ProblemError, match="daily returns"):
        ForecastMean(trained_mlp).estimate(weekly)
    with pytest.raises(ProblemError, match="daily returns"):
        ForecastBlackLitterman(trained_mlp).estimate(weekly)
    daily = prices.pct_change().dropna()
    mu = ForecastMean(trained_mlp).estimate(daily)
    np.testing.assert_allclose(mu.to_numpy(), trained_mlp.predict(prices).per_period.to_numpy(), rtol=1e-5)


# --------------------------------------------------------------------------- 5. a real input example
def test_input_example_uses_tickers_with_features(prices, trained_mlp):
    px = prices.copy()
    px.iloc[-40:, :2] = np.nan  # AAPL, JNJ delisted before the end
    ex = input_example(trained_mlp, px)
    assert len(ex) == 2 and np.isfinite(ex[trained_mlp.feature_names].to_numpy(dtype=float)).all()
    assert set(ex["ticker"]) == {"JPM", "KO"}
    px = prices.copy()
    px.iloc[:-100, :2] = np.nan  # AAPL, JNJ listed 100 days before the end: no features yet
    ex = input_example(trained_mlp, px)
    assert len(ex) == 2 and np.isfinite(ex[trained_mlp.feature_names].to_numpy(dtype=float)).all()
    # the bundled case is unchanged: the first two tickers
    assert input_example(trained_mlp, prices)["ticker"].tolist() == ["AAPL", "JNJ"]


# --------------------------------------------------------------------------- 6. a foreign model
@pytest.mark.xdist_group("forecast_registry")
def test_loading_a_model_that_is_not_a_forecaster_is_a_data_error(qpo_home, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow
    from sklearn.linear_model import LinearRegression

    from qpo.tracking import load_forecaster
    from qpo.tracking.mlflow_run import configure

    configure()
    with mlflow.start_run():  # a registered model of another flavour (no qpo forecaster inside)
        mlflow.sklearn.log_model(LinearRegression().fit(np.eye(3), [1.0, 2.0, 3.0]), name="m",
                                 registered_model_name="qpo-foreign", pip_requirements=["scikit-learn"])
    with pytest.raises(DataError, match="is not a qpo forecaster"):
        load_forecaster("models:/qpo-foreign/1")


# --------------------------------------------------------------------------- 7. tickers that are not str
def test_integer_ticker_labels(prices):
    """CRSP-style integer ids: the model keeps tickers as str; predict used to call them all
    unknown ("not trained on tickers ['10001', ...]; it was trained on ['10001', ...]")."""
    from qpo.estimation import ForecastBlackLitterman, ForecastMean

    px = prices.loc[:"2010-12-31"].copy()
    px.columns = list(range(10001, 10001 + px.shape[1]))
    m = train_forecaster(px, small_config(max_epochs=1))
    fc = m.predict(px)
    assert list(fc.values.index) == [str(c) for c in px.columns] and np.isfinite(fc.values).all()
    rets = px.pct_change().dropna()
    mu = ForecastMean(m).estimate(rets)
    assert list(mu.index) == list(px.columns)
    np.testing.assert_allclose(mu.to_numpy(), fc.per_period.to_numpy(), rtol=1e-5)
    m.metadata.update({"oos_mse": 0.01, "per_ticker_oos_mse": {str(c): 0.004 for c in px.columns}})
    est = ForecastBlackLitterman(m)
    bl = est.model_for(rets)
    assert list(bl.views) == list(px.columns) and np.allclose(np.diag(bl.omega), 0.004 * 252 / 21)
    assert np.isfinite(est.estimate(rets)).all()
    ex = input_example(m, px)  # what log_and_register logs: a KeyError before
    assert ex["ticker"].tolist() == ["10001", "10002"] and np.isfinite(ex[m.feature_names].to_numpy(float)).all()


def test_a_negative_ic_is_never_promoted_even_above_a_worse_baseline():
    from qpo.tracking import promotion_decision

    promote, reason = promotion_decision(-0.057, -0.165, None, None)
    assert not promote and "not positive" in reason
    promote, reason = promotion_decision(0.0, -0.1, None, None)
    assert not promote
    promote, reason = promotion_decision(0.01, -0.1, None, None)
    assert promote and "no champion" in reason
