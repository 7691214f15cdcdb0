"""Walk-forward evaluation: metrics against scipy and hand computations, the fold scheme and its
purging, the baselines, determinism, bad input, and the look-ahead proof on a real run."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from qpo.errors import DataError, InvalidValueError, UnknownOptionError
from qpo.forecasting import (
    compute_features,
    forecast_metrics,
    forward_returns,
    rank_ic,
    walk_forward,
)
from tests.test_forecasting.conftest import (
    perturb_after,
    small_config,
    state_dicts_equal,
)

H = 21


@pytest.fixture(scope="module")
def wf(prices):
    return walk_forward(prices, small_config(max_epochs=3), retrain_months=12)


@pytest.fixture(scope="module")
def signals(prices):
    """A real signal (trailing 21-day return) and what followed (next 21-day return), every 21st
    day, rounded so that ties occur, with holes."""
    f = (prices / prices.shift(21) - 1).iloc[300::21].round(2)
    r = forward_returns(prices, 21).iloc[300::21].round(3)
    f.iloc[3, [0, 1]] = np.nan
    f.iloc[4, :4] = np.nan  # two pairs left
    r.iloc[5, 2] = np.nan
    f.iloc[6] = 0.05  # a constant forecast
    r = r.dropna(how="all")
    return f.loc[r.index], r


# --------------------------------------------------------------------------- metrics
def test_rank_ic_equals_scipy_spearman_per_date(signals):
    f, r = signals
    ic = rank_ic(f, r)
    assert ic.index.equals(f.index)
    ties = 0
    for d in f.index:
        ok = f.loc[d].notna() & r.loc[d].notna()
        x, y = f.loc[d][ok], r.loc[d][ok]
        ties += int(x.duplicated().any() or y.duplicated().any())
        if ok.sum() < 3 or x.nunique() == 1 or y.nunique() == 1:
            assert np.isnan(ic[d]), d
        else:
            assert ic[d] == pytest.approx(spearmanr(x, y).statistic, abs=1e-12), d
    assert ties > 5  # the comparison covered tied values
    assert np.isnan(ic.iloc[4]) and np.isnan(ic.iloc[6]) and np.isfinite(ic.iloc[3])
    assert rank_ic(f, r, min_names=7).isna().all()  # six names: never enough


def test_forecast_metrics_by_hand(signals):
    f, r = signals
    m = forecast_metrics(f, r)
    ics = []
    for d in f.index:
        ok = f.loc[d].notna() & r.loc[d].notna()
        if ok.sum() >= 3 and f.loc[d][ok].nunique() > 1 and r.loc[d][ok].nunique() > 1:
            ics.append(spearmanr(f.loc[d][ok], r.loc[d][ok]).statistic)
    ics = np.array(ics)
    assert m["n_dates"] == len(ics)
    assert m["mean_ic"] == pytest.approx(ics.mean(), abs=1e-12)
    assert m["ic_std"] == pytest.approx(ics.std(ddof=1), rel=1e-10)
    assert m["ic_t_stat"] == pytest.approx(ics.mean() / (ics.std(ddof=1) / math.sqrt(len(ics))), rel=1e-10)
    assert m["ic_positive_share"] == pytest.approx((ics > 0).mean())
    fv, rv = f.to_numpy(), r.to_numpy()
    ok = np.isfinite(fv) & np.isfinite(rv)
    nz = ok & (fv != 0)
    assert (fv[ok] == 0).sum() > 0  # rounding made zero forecasts: they are not counted as hits or misses
    assert m["hit_rate"] == pytest.approx(np.mean(np.sign(fv[nz]) == np.sign(rv[nz])))
    assert m["mse"] == pytest.approx(np.mean((fv[ok] - rv[ok]) ** 2), rel=1e-12)
    assert m["n_forecasts"] == ok.sum()


def test_zero_forecast_has_no_ic_no_hit_rate_but_an_mse(signals):
    _, r = signals
    m = forecast_metrics(r * 0.0, r)
    assert np.isnan(m["mean_ic"]) and np.isnan(m["ic_t_stat"]) and np.isnan(m["hit_rate"])
    assert m["n_dates"] == 0
    assert m["mse"] == pytest.approx(np.nanmean(r.to_numpy() ** 2), rel=1e-12)


# --------------------------------------------------------------------------- the scheme
def test_forecast_dates_folds_and_realized(prices, wf):
    dates = prices.index
    pos = dates.get_indexer(wf.realized.index)
    assert pos[0] == 252 + 3 * 252 + H  # default start: features, three years of samples, one label
    assert (np.diff(pos) == H).all() and pos[-1] <= len(dates) - 1 - H < pos[-1] + H
    pd.testing.assert_frame_equal(wf.realized, forward_returns(prices, H).iloc[pos])
    folds = wf.folds
    assert len(folds) == len(wf.models) == 5 and folds["fold"].tolist() == [1, 2, 3, 4, 5]
    assert folds["n_test_dates"].sum() == len(pos)
    for k, row in folds.iterrows():
        assert wf.models[k].train_end == row["train_end"] == row["test_start"]
        # fold k holds the forecast dates in [first + 12k months, first + 12(k+1) months)
        lo, hi = dates[pos[0]] + pd.DateOffset(months=12 * k), dates[pos[0]] + pd.DateOffset(months=12 * (k + 1))
        inside = wf.realized.index[(wf.realized.index >= lo) & (wf.realized.index < hi)]
        assert row["test_start"] == inside[0] and row["test_end"] == inside[-1]
        assert row["n_test_dates"] == len(inside)
        assert row["train_start"] == dates[0] and wf.models[k].train_start == dates[252]
    for name in ("model", "historical_mean", "zero"):
        assert wf.forecasts[name].index.equals(wf.realized.index)
        assert list(wf.forecasts[name].columns) == list(prices.columns)


def test_walk_forward_training_is_purged_at_each_cutoff(prices, monkeypatch):
    import qpo.forecasting._training as training  # where fit() builds its samples

    calls, real = [], training.samples
    monkeypatch.setattr(training, "samples", lambda p, pos, w: calls.append(np.asarray(pos).copy()) or real(p, pos, w))
    res = walk_forward(prices, small_config(max_epochs=1), retrain_months=12)
    cutoffs = prices.index.get_indexer(res.folds["test_start"])
    assert len(calls) == 2 * len(cutoffs)
    for k, c in enumerate(cutoffs):
        train, val = calls[2 * k], calls[2 * k + 1]
        assert val.max() + H == c  # every training label is known at the fold's first forecast date ...
        assert train.max() + H < val.min()  # ... and purged from the validation labels
        assert res.models[k].n_validation == 6 * len(val)


def test_model_forecasts_are_the_fold_models_predictions(prices, wf):
    frame = compute_features(prices)
    for k, row in wf.folds.iterrows():
        d = wf.realized.loc[row["test_start"]:row["test_end"]].index[-1]
        want = wf.models[k].predict_frame(frame.to_frame(dates=[d])).to_numpy()
        np.testing.assert_allclose(wf.forecasts["model"].loc[d].to_numpy(), want, rtol=1e-6, atol=1e-9)
        via_predict = wf.models[k].predict(prices, as_of=d).values
        np.testing.assert_allclose(wf.forecasts["model"].loc[d].to_numpy(), via_predict.to_numpy(), rtol=1e-5)


def test_historical_mean_baseline_by_hand(prices, wf):
    p = prices.to_numpy()
    daily = p[1:] / p[:-1] - 1  # daily[k - 1] is the return from k - 1 to k
    for d in (wf.realized.index[0], wf.realized.index[40]):
        t = prices.index.get_loc(d)
        want = daily[:t].mean(axis=0) * H  # returns of days 1..t (the expanding window starts at day 0)
        np.testing.assert_allclose(wf.forecasts["historical_mean"].loc[d].to_numpy(), want, rtol=1e-9)
    assert (wf.forecasts["zero"] == 0).all().all()


def test_rolling_window_trains_and_averages_over_the_last_years(prices):
    res = walk_forward(prices, small_config(max_epochs=1), retrain_months=24, window="rolling", train_years=2.5)
    p = prices.to_numpy()
    for k, row in res.folds.iterrows():
        c = prices.index.get_loc(row["test_start"])
        assert row["train_start"] == prices.index[c - 630] == res.models[k].train_start
        d = res.realized.loc[row["test_start"]:row["test_end"]].index[-1]
        t = prices.index.get_loc(d)
        want = (p[c - 629:t + 1] / p[c - 630:t] - 1).mean(axis=0) * H  # days c-629..t of the window
        np.testing.assert_allclose(res.forecasts["historical_mean"].loc[d].to_numpy(), want, rtol=1e-9)
    assert res.window == "rolling" and res.retrain_months == 24 and len(res.folds) == 3


def test_metrics_table_and_helpers(wf):
    m = wf.metrics
    assert list(m.index) == ["model", "historical_mean", "zero"]
    for name in m.index:
        got, want = m.loc[name], pd.Series(forecast_metrics(wf.forecasts[name], wf.realized))
        pd.testing.assert_series_equal(got, want, check_names=False)
    assert np.isnan(m.loc["zero", "mean_ic"]) and np.isnan(m.loc["zero", "hit_rate"])
    assert m.loc["zero", "mse"] == pytest.approx(np.nanmean(wf.realized.where(wf.forecasts["zero"].notna())
                                                            .to_numpy() ** 2))
    assert m.loc["model", "n_forecasts"] == m.loc["zero", "n_forecasts"] > 300  # all scored on the same pairs
    assert wf.beats_historical_mean == (m.loc["model", "mean_ic"] > m.loc["historical_mean", "mean_ic"])
    assert f"{m.loc['model', 'mean_ic']:.4f}" in wf.verdict()
    s = wf.summary_metrics()
    assert s["oos_mean_ic"] == m.loc["model", "mean_ic"] and "baseline_zero_mse" in s
    assert "baseline_zero_mean_ic" not in s  # NaN metrics are left out
    err = ((wf.forecasts["model"] - wf.realized) ** 2).mean()
    pd.testing.assert_series_equal(wf.per_ticker_mse(), err.dropna())
    pd.testing.assert_series_equal(wf.ic["model"], rank_ic(wf.forecasts["model"], wf.realized), check_names=False)
    for k, row in wf.folds.iterrows():
        idx = wf.realized.loc[row["test_start"]:row["test_end"]].index
        fm = forecast_metrics(wf.forecasts["model"].loc[idx], wf.realized.loc[idx])
        assert row["mean_ic"] == pytest.approx(fm["mean_ic"], nan_ok=True)
        assert row["epochs"] == len(wf.models[k].history) and row["best_epoch"] == wf.models[k].best_epoch


# --------------------------------------------------------------------------- look-ahead proof
@pytest.mark.parametrize("where", ["a fold's first forecast date", "inside a fold"])
def test_changing_prices_after_t0_leaves_every_forecast_up_to_t0_unchanged(prices, wf, where):
    # t0 = a cutoff is the sharpest case: the fold's first forecast is made at t0 by a model whose
    # labels must all be known at t0 (a model that used labels ending up to t0 + horizon would move)
    t0 = wf.folds["test_start"].iloc[2] if where.startswith("a fold") else wf.realized.index[len(wf.realized) // 2]
    res = walk_forward(perturb_after(prices, t0, seed=11), small_config(max_epochs=3), retrain_months=12)
    upto, after = wf.realized.index <= t0, wf.realized.index > t0
    assert upto.sum() >= 25 and after.sum() >= 25
    for name in ("model", "historical_mean", "zero"):
        assert res.forecasts[name].loc[upto].equals(wf.forecasts[name].loc[upto]), name
    early = wf.folds["test_start"] <= t0
    assert 0 < early.sum() < len(wf.folds)
    for k in range(len(wf.folds)):
        if early[k]:  # trained on labels known by t0: the same network, bit for bit
            assert state_dicts_equal(wf.models[k].net, res.models[k].net)
        # a later fold validates on labels that end after t0: its validation losses see the change
        assert (res.models[k].history == wf.models[k].history) == bool(early[k])
    assert not state_dicts_equal(wf.models[-1].net, res.models[-1].net)
    # the change was real: forecasts after t0 moved, and so did the metrics
    assert (res.forecasts["model"].loc[after] != wf.forecasts["model"].loc[after]).to_numpy().mean() > 0.9
    assert not res.metrics.equals(wf.metrics)


# --------------------------------------------------------------------------- determinism
def test_same_seed_same_walk_forward_mlp(prices, wf):
    again = walk_forward(prices, small_config(max_epochs=3), retrain_months=12)
    assert again.metrics.equals(wf.metrics) and again.forecasts["model"].equals(wf.forecasts["model"])
    other = walk_forward(prices, small_config(max_epochs=3, seed=5), retrain_months=12)
    assert not other.forecasts["model"].equals(wf.forecasts["model"])
    assert other.forecasts["historical_mean"].equals(wf.forecasts["historical_mean"])


@pytest.mark.slow
def test_same_seed_same_walk_forward_gru(prices):
    cfg = small_config("gru", max_epochs=2)
    a = walk_forward(prices, cfg, retrain_months=24)
    b = walk_forward(prices, cfg, retrain_months=24)
    assert a.metrics.equals(b.metrics) and a.forecasts["model"].equals(b.forecasts["model"])
    assert all(state_dicts_equal(x.net, y.net) for x, y in zip(a.models, b.models))
    c = walk_forward(prices, small_config("gru", max_epochs=2, seed=1), retrain_months=24)
    assert not c.forecasts["model"].equals(a.forecasts["model"])


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw, error, message", [
    (dict(window="rolling"), InvalidValueError, "rolling window needs train_years"),
    (dict(window="rolling", train_years=-1), InvalidValueError, "train_years"),
    (dict(window="sliding"), UnknownOptionError, "expanding, rolling"),
    (dict(retrain_months=0), InvalidValueError, "retrain_months"),
    (dict(retrain_months=1.5), InvalidValueError, "retrain_months"),
    (dict(max_missing_fraction=1.5), InvalidValueError, "max_missing_fraction"),
    (dict(min_train_years=0), InvalidValueError, "min_train_years"),
    (dict(start="2004-06-01"), DataError, "at the earliest"),
    (dict(start="not a date"), DataError, "not a date"),
    (dict(start="2012-12-20"), DataError, "too little history"),
])
def test_bad_walk_forward_options(prices, kw, error, message):
    with pytest.raises(error, match=message):
        walk_forward(prices, small_config(max_epochs=1), **kw)


def test_walk_forward_needs_enough_history(prices):
    with pytest.raises(DataError, match="too little history for a walk-forward.*need about"):
        walk_forward(prices.iloc[:1000], small_config(max_epochs=1))
    with pytest.raises(DataError, match="need 253 prices"):
        walk_forward(prices.iloc[:200], small_config(max_epochs=1))


def test_walk_forward_nan_threshold_and_progress(prices):
    gappy = prices.copy()
    rng = np.random.default_rng(0)
    for j in range(3):
        gappy.iloc[rng.choice(np.arange(300, len(gappy)), 60, replace=False), j] = np.nan
    with pytest.raises(DataError, match="max_missing_fraction"):
        walk_forward(gappy, small_config(max_epochs=1), retrain_months=36)
    seen = []
    res = walk_forward(gappy, small_config(max_epochs=1), retrain_months=36, max_missing_fraction=0.9,
                       progress=lambda k, n, row: seen.append((k, n, row["fold"])))
    assert seen == [(1, 2, 1), (2, 2, 2)]
    assert (res.folds["n_dropped_nan"] > 0).all()
    missing = res.forecasts["model"].isna()
    assert missing.to_numpy().any()  # tickers without features at a date get no forecast ...
    for name in ("historical_mean", "zero"):  # ... and every forecast is scored on the same pairs
        assert res.forecasts[name].isna().equals(missing), name
    assert res.metrics["n_forecasts"].nunique() == 1


def test_each_folds_ics_are_scored_on_the_pairs_the_whole_is(prices):
    """The overall metrics score the model and the historical mean on the (date, ticker) pairs both
    forecast; each fold's row used every pair each had (the baseline needs 20 days of history, the
    model a year): fold 3's baseline IC was 0.0442 where the same pairs gave 0.0598. Now each fold's
    ICs are those of the overall frames restricted to its dates."""
    from qpo.forecasting.walkforward import forecast_metrics

    late = prices.copy()
    first = late.columns[0]
    late.loc[:late.index[len(late) // 2], first] = np.nan  # listed half way: the baseline forecasts it first
    wf = walk_forward(late, small_config(max_epochs=1), retrain_months=12)
    for _, row in wf.folds.iterrows():
        on = (wf.realized.index >= row["test_start"]) & (wf.realized.index <= row["test_end"])
        for name, col in (("model", "mean_ic"), ("historical_mean", "baseline_mean_ic")):
            want = forecast_metrics(wf.forecasts[name][on], wf.realized[on])["mean_ic"]
            assert row[col] == pytest.approx(want, rel=1e-12, nan_ok=True)
