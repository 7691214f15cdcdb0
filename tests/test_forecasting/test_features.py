"""Features from prices: each value against a hand computation, listing and warm-up NaN, volume,
bad input, and the look-ahead proof (changing the future never changes a feature of the past)."""
from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from qpo.errors import DataError, InvalidValueError
from qpo.forecasting import FeatureSpec, compute_features, forward_returns
from tests.test_forecasting.conftest import perturb_after

BASE = ["ret_1d", "ret_5d", "ret_21d", "ret_63d", "vol_21d", "vol_63d", "mom_12_1"]


def feature(panel, name, t, ticker):
    return panel.values[t, panel.tickers.index(ticker), panel.names.index(name)]


def first_finite(panel, name, ticker) -> int:
    col = panel.values[:, panel.tickers.index(ticker), panel.names.index(name)]
    return int(np.flatnonzero(np.isfinite(col))[0])


@pytest.fixture(scope="module")
def panel(prices):
    return compute_features(prices)


# --------------------------------------------------------------------------- values by hand
def test_names_and_shape(prices, panel):
    assert panel.names == BASE + [f"rank_{n}" for n in BASE]
    assert panel.values.shape == (len(prices), 6, 14) and panel.values.dtype == np.float64
    assert list(panel.tickers) == list(prices.columns) and panel.dates.equals(prices.index)
    assert FeatureSpec().lookback == 252 and FeatureSpec(momentum=None).lookback == 63
    assert FeatureSpec(momentum=None, volume=True).lookback == 251
    assert FeatureSpec(momentum=(126, 5)).base_names[-1] == "mom_126_5"
    assert FeatureSpec(ranks=False).names == BASE


@pytest.mark.parametrize("t", [300, 1234, 2264])
@pytest.mark.parametrize("ticker", ["AAPL", "JPM", "XOM"])
def test_base_features_equal_hand_computation(prices, panel, t, ticker):
    p = [float(v) for v in prices[ticker].to_numpy()]
    for h in (1, 5, 21, 63):
        assert feature(panel, f"ret_{h}d", t, ticker) == pytest.approx(p[t] / p[t - h] - 1, rel=1e-12, abs=1e-15)
    for w in (21, 63):
        daily = [p[k] / p[k - 1] - 1 for k in range(t - w + 1, t + 1)]
        assert len(daily) == w
        want = statistics.stdev(daily) * math.sqrt(252)  # ddof = 1, annualized
        assert feature(panel, f"vol_{w}d", t, ticker) == pytest.approx(want, rel=1e-9)
    assert feature(panel, "mom_12_1", t, ticker) == pytest.approx(p[t - 21] / p[t - 252] - 1, rel=1e-12)


@pytest.mark.parametrize("t", [300, 2000])
def test_ranks_are_scaled_average_ranks(panel, t):
    for name in BASE:
        j = panel.names.index(name)
        vals = panel.values[t, :, j]
        want = (rankdata(vals, method="average") - 1) / (len(vals) - 1) - 0.5
        np.testing.assert_allclose(panel.values[t, :, panel.names.index(f"rank_{name}")], want, atol=1e-12)
        assert panel.values[t, :, panel.names.index(f"rank_{name}")].min() == -0.5
        assert panel.values[t, :, panel.names.index(f"rank_{name}")].max() == 0.5


def test_ties_get_the_average_rank(prices):
    # TWIN is KO times 2 (a power of two: every ratio is bit-identical), so its returns tie KO's
    px = prices[["AAPL", "KO", "XOM"]].assign(TWIN=prices["KO"] * 2.0)
    p = compute_features(px)
    t = 1500
    for name in BASE:
        j, r = p.names.index(name), p.names.index(f"rank_{name}")
        assert p.values[t, 1, j] == p.values[t, 3, j]
        want = (rankdata(p.values[t, :, j], method="average") - 1) / 3 - 0.5
        np.testing.assert_allclose(p.values[t, :, r], want, atol=1e-12)
        assert p.values[t, 1, r] == p.values[t, 3, r]
        # two tied of four share rank 1.5, 2.5 or 3.5: scaled -1/3, 0 or 1/3
        assert min(abs(p.values[t, 1, r] - c) for c in (-1 / 3, 0.0, 1 / 3)) < 1e-12


def test_single_ticker_rank_is_zero(prices):
    p = compute_features(prices[["KO"]])
    ranks = p.values[:, 0, len(BASE):]
    base = p.values[:, 0, :len(BASE)]
    assert np.array_equal(np.isnan(ranks), np.isnan(base))
    assert (ranks[np.isfinite(ranks)] == 0).all()


def test_forward_returns_by_hand(prices):
    fr = forward_returns(prices, 21)
    p = prices["MSFT"].to_numpy()
    assert fr["MSFT"].iloc[100] == pytest.approx(p[121] / p[100] - 1, rel=1e-12)
    assert fr.iloc[-21:].isna().all().all() and fr.iloc[:-21].notna().all().all()


# --------------------------------------------------------------------------- NaN: warm-up, listing, gaps
def test_warm_up_nan_ends_exactly_when_the_history_is_there(panel):
    want = {"ret_1d": 1, "ret_5d": 5, "ret_21d": 21, "ret_63d": 63, "vol_21d": 21, "vol_63d": 63, "mom_12_1": 252}
    for name, first in want.items():
        assert first_finite(panel, name, "AAPL") == first, name
        assert first_finite(panel, f"rank_{name}", "AAPL") == first, name
        col = panel.values[:, 0, panel.names.index(name)]
        assert np.isfinite(col[first:]).all(), name


def test_ticker_listed_late(prices):
    px = prices.copy()
    px.iloc[:300, px.columns.get_loc("KO")] = np.nan  # KO's first price is at position 300
    p = compute_features(px)
    want = {"ret_1d": 301, "ret_5d": 305, "ret_21d": 321, "ret_63d": 363, "vol_21d": 321, "vol_63d": 363,
            "mom_12_1": 552}
    for name, first in want.items():
        assert first_finite(p, name, "KO") == first, name
        assert first_finite(p, f"rank_{name}", "KO") == first, name
    assert not p.listed[:300, 3].any() and p.listed[300:, 3].all()
    # before KO has a value, the others are ranked among themselves (5 names: steps of 1/4)
    t = 310
    j = p.names.index("ret_21d")
    others = [0, 1, 2, 4, 5]
    want_r = (rankdata(p.values[t, others, j]) - 1) / 4 - 0.5
    np.testing.assert_allclose(p.values[t, others, p.names.index("rank_ret_21d")], want_r, atol=1e-12)
    # the other tickers' features do not depend on KO at all (base features are per ticker)
    full = compute_features(prices)
    assert np.array_equal(p.values[:, others, :len(BASE)], full.values[:, others, :len(BASE)], equal_nan=True)
    # the long frame has no KO rows before its listing
    frame = p.to_frame()
    assert frame.loc[frame["ticker"] == "KO", "date"].min() == px.index[300]
    assert len(frame) == len(px) * 6 - 300


def test_gap_in_prices(prices):
    px = prices.copy()
    px.iloc[500:510, px.columns.get_loc("JNJ")] = np.nan  # a ten-day halt
    p = compute_features(px)
    i = p.tickers.index("JNJ")
    assert np.isnan(p.values[500:510, i]).all() and not p.listed[500:510, i].any()
    assert np.isnan(feature(p, "ret_1d", 510, "JNJ")) and np.isfinite(feature(p, "ret_1d", 511, "JNJ"))
    assert np.isnan(feature(p, "vol_21d", 530, "JNJ")) and np.isfinite(feature(p, "vol_21d", 531, "JNJ"))
    assert np.isfinite(feature(p, "ret_5d", 515, "JNJ"))  # P[515] / P[510]


def test_to_frame_rows_and_dates(prices, panel):
    d = prices.index[[400, 401]]
    frame = panel.to_frame(dates=d)
    assert list(frame.columns) == ["date", "ticker", *panel.names] and len(frame) == 12
    row = frame[(frame["date"] == d[1]) & (frame["ticker"] == "XOM")].iloc[0]
    assert row["ret_5d"] == feature(panel, "ret_5d", 401, "XOM")
    with pytest.raises(DataError, match="not in the prices"):
        panel.to_frame(dates=[pd.Timestamp("1999-01-04")])


# --------------------------------------------------------------------------- volume
@pytest.fixture(scope="module")
def goog():
    from backtesting.test import GOOG  # real Google daily bars 2004-2013

    return GOOG[["Close"]].rename(columns={"Close": "GOOG"}), GOOG[["Volume"]].rename(columns={"Volume": "GOOG"})


def test_volume_ratio_by_hand(goog):
    px, vol = goog
    p = compute_features(px, FeatureSpec(volume=True), volume=vol)
    assert p.names[7] == "volume_ratio" and "rank_volume_ratio" in p.names
    v = vol["GOOG"].to_numpy(dtype=float)
    for t in (251, 1000, len(v) - 1):
        want = math.log(statistics.fmean(v[t - 20:t + 1]) / statistics.fmean(v[t - 251:t + 1]))
        assert feature(p, "volume_ratio", t, "GOOG") == pytest.approx(want, rel=1e-9)
    assert first_finite(p, "volume_ratio", "GOOG") == 251
    assert feature(p, "rank_volume_ratio", 1000, "GOOG") == 0.0  # a single ticker


def test_zero_volume_is_missing_not_minus_infinity(goog):
    px, vol = goog
    vol = vol.astype(float).copy()
    vol.iloc[600] = 0.0
    p = compute_features(px, FeatureSpec(volume=True), volume=vol)
    col = p.values[:, 0, p.names.index("volume_ratio")]
    assert np.isnan(col[600:621]).all() and np.isfinite(col[599]) and np.isfinite(col[852])


def test_volume_spec_without_volume_is_a_clear_error(goog):
    with pytest.raises(DataError, match="volume=True.*no volume"):
        compute_features(goog[0], FeatureSpec(volume=True))
    with pytest.raises(DataError, match="volume must be a DataFrame"):
        compute_features(goog[0], FeatureSpec(volume=True), volume=goog[1]["GOOG"].to_numpy())


# --------------------------------------------------------------------------- bad input
def _bad(prices, kind):
    px = prices.iloc[:400].copy()
    if kind == "no dates":
        return px.reset_index(drop=True)
    if kind == "unsorted":
        return px.iloc[::-1]
    if kind == "duplicate dates":
        return pd.concat([px.iloc[:200], px.iloc[199:]])
    if kind == "zero":
        px.iloc[50, 2] = 0.0
        return px
    if kind == "negative":
        px.iloc[50, 4] = -3.0
        return px
    if kind == "duplicate tickers":
        return px.rename(columns={"JNJ": "AAPL"})
    if kind == "text":
        return px.astype(object).assign(KO="n/a")
    if kind == "inf":
        px.iloc[10, 0] = np.inf
        return px
    if kind == "not a frame":
        return px.to_numpy()
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, message", [
    ("no dates", "DatetimeIndex"), ("unsorted", "increasing and unique"), ("duplicate dates", "increasing and unique"),
    ("zero", r"positive.*\['JPM'\]"), ("negative", r"positive.*\['MSFT'\]"), ("duplicate tickers", r"duplicate.*AAPL"),
    ("text", "numeric"), ("inf", "inf"), ("not a frame", "DataFrame"),
])
def test_bad_prices_are_refused(prices, kind, message):
    with pytest.raises(DataError, match=message):
        compute_features(_bad(prices, kind))


def test_too_little_history_says_how_many_prices(prices):
    with pytest.raises(DataError, match="need 253 prices") as err:
        compute_features(prices.iloc[:252])
    assert "252" in str(err.value)
    with pytest.raises(DataError, match="need 64 prices"):
        compute_features(prices.iloc[:63], FeatureSpec(momentum=None))
    assert compute_features(prices.iloc[:64], FeatureSpec(momentum=None)).values.shape[0] == 64
    assert compute_features(prices.iloc[:253]).values.shape[0] == 253


@pytest.mark.parametrize("kw", [
    dict(return_horizons=(0, 5)), dict(return_horizons=()), dict(return_horizons=(1.5,)), dict(return_horizons=(True,)),
    dict(vol_windows=(1,)), dict(momentum=(21, 252)), dict(momentum=(252, 21, 5)), dict(momentum=(252, 0)),
])
def test_bad_feature_spec(kw):
    with pytest.raises(InvalidValueError, match=next(iter(kw)).split("_")[0]):
        FeatureSpec(**kw)


def test_feature_spec_round_trip():
    spec = FeatureSpec(return_horizons=(1, 10), vol_windows=(5,), momentum=(126, 5), volume=True, ranks=False)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert FeatureSpec(return_horizons=[1, 2]).return_horizons == (1, 2)


# --------------------------------------------------------------------------- look-ahead proof
@pytest.mark.parametrize("d_pos", [700, 1500])
def test_changing_future_prices_never_changes_past_features(prices, panel, d_pos):
    d = prices.index[d_pos]
    for seed in (1, 2):
        p2 = compute_features(perturb_after(prices, d, seed=seed))
        assert np.array_equal(p2.values[:d_pos + 1], panel.values[:d_pos + 1], equal_nan=True)
        # the perturbation is real: features after d change (so the test can fail)
        assert not np.allclose(p2.values[d_pos + 1:d_pos + 30], panel.values[d_pos + 1:d_pos + 30], equal_nan=True)
    # garbage future: a constant price, and the panel reversed in time
    junk = prices.copy()
    junk.iloc[d_pos + 1:] = 1e6
    assert np.array_equal(compute_features(junk).values[:d_pos + 1], panel.values[:d_pos + 1], equal_nan=True)
    rev = prices.copy()
    rev.iloc[d_pos + 1:] = prices.iloc[::-1].iloc[: len(prices) - d_pos - 1].to_numpy()
    assert np.array_equal(compute_features(rev).values[:d_pos + 1], panel.values[:d_pos + 1], equal_nan=True)
    # and no future at all: the features of a truncated panel are the same numbers
    assert np.array_equal(compute_features(prices.iloc[:d_pos + 1]).values, panel.values[:d_pos + 1], equal_nan=True)


def test_changing_future_volume_never_changes_past_features(goog):
    px, vol = goog
    spec = FeatureSpec(volume=True)
    base = compute_features(px, spec, volume=vol)
    d = px.index[900]
    vol2 = vol.astype(float).copy()
    vol2.loc[vol2.index > d] *= 7.0
    p2 = compute_features(perturb_after(px, d), spec, volume=vol2)
    assert np.array_equal(p2.values[:901], base.values[:901], equal_nan=True)
    assert not np.allclose(p2.values[901:950], base.values[901:950])


def test_forward_returns_are_the_only_forward_quantity(prices):
    d_pos, h = 1000, 21
    fr, fr2 = forward_returns(prices, h), forward_returns(perturb_after(prices, prices.index[d_pos]), h)
    # a label at t is P[t+h] / P[t] - 1: unchanged exactly when t + h <= d
    assert fr.iloc[:d_pos - h + 1].equals(fr2.iloc[:d_pos - h + 1])
    assert (fr.iloc[d_pos - h + 1] != fr2.iloc[d_pos - h + 1]).all()
