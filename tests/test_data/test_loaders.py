import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.errors import DataError, UnknownOptionError
from tests.conftest import shared_file


def test_sp500_is_skfolios_real_panel(sp500):
    from skfolio.datasets import load_sp500_dataset

    ref = load_sp500_dataset()
    assert sp500.shape == (8313, 20)
    assert isinstance(sp500.index, pd.DatetimeIndex)
    assert sp500.index[0] == pd.Timestamp("1990-01-02") and sp500.index[-1] == pd.Timestamp("2022-12-28")
    np.testing.assert_allclose(sp500.to_numpy(), ref.to_numpy())
    assert list(sp500.columns) == list(ref.columns)


def test_sp500_index_and_slicing():
    idx = qpo.load_prices("sp500_index", start="2020-03-01", end="2020-03-31")
    assert list(idx.columns) == ["SP500"]
    assert idx.index.min() >= pd.Timestamp("2020-03-01") and idx.index.max() <= pd.Timestamp("2020-03-31")
    assert len(idx) == 22  # trading days in March 2020
    # the COVID crash: the index lost about a third from its February peak to March 23
    assert idx["SP500"].min() == pytest.approx(2237.40, abs=0.01)


def test_tickers_selection_and_unknown_ticker():
    px = qpo.load_prices("sp500", tickers=["MSFT", "AAPL"])
    assert list(px.columns) == ["MSFT", "AAPL"]
    with pytest.raises(DataError, match="NVDA"):
        qpo.load_prices("sp500", tickers=["NVDA"])


def test_unknown_source_lists_valid_ones():
    with pytest.raises(UnknownOptionError) as err:
        qpo.load_prices("nasdaq")
    msg = str(err.value)
    assert "'nasdaq'" in msg and "sp500" in msg and "sp500_index" in msg and ".csv" in msg


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_wide_file_round_trip(tmp_path, sp500, suffix):
    panel = sp500.iloc[-300:, :5]
    path = tmp_path / f"panel{suffix}"
    frame = panel.reset_index()
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    back = qpo.load_prices(str(path))
    pd.testing.assert_frame_equal(back, panel, check_freq=False, check_names=False)


def test_alpha_vantage_single_ticker_csv(tmp_path, goog_bars):
    # Alpha Vantage's own CSV: 'timestamp', newest first, no ticker column; the file name carries it
    av = goog_bars.drop(columns=["ticker"]).rename(columns={"date": "timestamp"}).iloc[::-1]
    path = tmp_path / "DA-GOOG-T-2013-03-01.csv"
    av.to_csv(path, index=False)
    bars = qpo.load_ohlcv(path)
    assert list(bars.columns) == qpo.data.OHLCV_COLUMNS
    assert (bars["ticker"] == "GOOG").all() and len(bars) == len(goog_bars)
    # newest first is the vendor's order, not a defect: the rows come back rising and validate
    assert bars["date"].is_monotonic_increasing and bars["date"].iloc[-1] == pd.Timestamp("2013-03-01")
    pd.testing.assert_frame_equal(bars, goog_bars[qpo.data.OHLCV_COLUMNS].reset_index(drop=True), check_dtype=False)
    assert qpo.validate_ohlcv(bars).success
    prices = qpo.load_prices(str(path))
    assert list(prices.columns) == ["GOOG"] and prices.index.is_monotonic_increasing
    assert prices["GOOG"].iloc[0] == pytest.approx(goog_bars["close"].iloc[0])


def test_newest_first_bars_of_several_tickers_rise_and_mixed_orders_are_left_to_validation(tmp_path, goog_bars):
    two = pd.concat([goog_bars.iloc[:200], goog_bars.iloc[:200].assign(ticker="GOOGL")])
    interleaved = two.sort_values(["date", "ticker"], ascending=[False, True])  # date-major, newest first
    interleaved.to_csv(tmp_path / "two.csv", index=False)
    bars = qpo.load_ohlcv(tmp_path / "two.csv")
    for ticker, rows in bars.groupby("ticker"):
        assert rows["date"].is_monotonic_increasing and len(rows) == 200, ticker
    assert qpo.validate_ohlcv(bars).success
    # one ticker newest first, the other oldest first: not the vendor's order, so kept for validation to judge
    mixed = pd.concat([goog_bars.iloc[:200].iloc[::-1], goog_bars.iloc[:200].assign(ticker="GOOGL")])
    mixed.to_csv(tmp_path / "mixed.csv", index=False)
    kept = qpo.load_ohlcv(tmp_path / "mixed.csv")
    assert kept["date"].iloc[0] == goog_bars["date"].iloc[199]
    assert qpo.validate_ohlcv(kept).failed_checks == ["unsorted dates"]


def test_a_one_ticker_bars_file_is_named_by_the_ticker_given_and_only_such_a_file(tmp_path, goog_bars, sp500):
    av = goog_bars.drop(columns=["ticker"]).rename(columns={"date": "timestamp"}).iloc[::-1]
    av.to_csv(tmp_path / "daily_adjusted.csv", index=False)  # a download saved under another name
    with pytest.raises(DataError, match="no 'ticker' column.*--ticker SYMBOL"):
        qpo.load_ohlcv(tmp_path / "daily_adjusted.csv")
    bars = qpo.load_ohlcv(tmp_path / "daily_adjusted.csv", ticker=" GOOG ")
    assert set(bars["ticker"]) == {"GOOG"} and bars["date"].is_monotonic_increasing
    report, prices = qpo.validate_source(tmp_path / "daily_adjusted.csv", ticker="GOOG")
    assert report.success and list(prices.columns) == ["GOOG"]
    with pytest.raises(DataError, match="not a ticker symbol"):
        qpo.load_ohlcv(tmp_path / "daily_adjusted.csv", ticker="GO OG")
    goog_bars.to_csv(tmp_path / "bars.csv", index=False)
    with pytest.raises(DataError, match=r"its own 'ticker' column \(GOOG\).*'MSFT'.*leave it out"):
        qpo.load_ohlcv(tmp_path / "bars.csv", ticker="MSFT")
    sp500.iloc[-50:, :3].to_csv(tmp_path / "panel.csv")
    with pytest.raises(DataError, match="is a price panel .*leave it out"):
        qpo.validate_source(tmp_path / "panel.csv", ticker="AAPL")


def test_bars_file_is_sliced_before_it_is_pivoted(tmp_path, goog_bars):
    """What the pipeline validates (bars from `start`) is what the notebook loads."""
    bars = pd.concat([goog_bars, goog_bars.iloc[[10]]])  # a duplicate in 2004
    path = tmp_path / "bars.csv"
    bars.to_csv(path, index=False)
    with pytest.raises(DataError, match="duplicate"):
        qpo.load_prices(str(path))
    later = qpo.load_prices(str(path), start="2010-01-01")
    assert later.index[0] >= pd.Timestamp("2010-01-01") and later.index.is_monotonic_increasing
    report, prices = qpo.validate_source(str(path), start="2010-01-01")
    assert report.success
    pd.testing.assert_frame_equal(prices, later)
    with pytest.raises(DataError, match="start 'soon' is not a date"):
        qpo.load_prices(str(path), start="soon")


def test_ohlcv_missing_columns_and_ticker(tmp_path, goog_bars):
    path = tmp_path / "bars.csv"
    goog_bars.drop(columns=["ticker"]).to_csv(path, index=False)
    with pytest.raises(DataError, match="no 'ticker' column"):
        qpo.load_ohlcv(path)
    goog_bars.drop(columns=["high"]).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"missing OHLCV columns \['high'\]"):
        qpo.load_ohlcv(path)


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        qpo.load_price_file(tmp_path / "nope.csv")
    bad = tmp_path / "prices.xlsx"
    bad.write_text("x")
    with pytest.raises(DataError, match="unsupported file type"):
        qpo.load_price_file(bad)


def test_returns_conventions(sp500):
    px = sp500[["AAPL", "KO"]].iloc[:5]
    simple = qpo.prices_to_returns(px)
    np.testing.assert_allclose(simple.to_numpy(), (px.to_numpy()[1:] / px.to_numpy()[:-1]) - 1)
    log = qpo.prices_to_returns(px, kind="log")
    np.testing.assert_allclose(log.to_numpy(), np.log(px.to_numpy()[1:] / px.to_numpy()[:-1]))
    with pytest.raises(UnknownOptionError, match="simple"):
        qpo.prices_to_returns(px, kind="pct")
    with pytest.raises(DataError, match="sorted, unique dates"):
        qpo.prices_to_returns(px.iloc[::-1])


def test_data_hash_is_stable_and_sensitive(sp500):
    a = qpo.data_hash(sp500)
    assert a == qpo.data_hash(sp500.copy())
    changed = sp500.copy()
    changed.iloc[100, 3] *= 1.0001
    assert qpo.data_hash(changed) != a


def test_shared_alpha_vantage_parquet():
    path = shared_file("sp500_daily_adjusted.parquet")
    bars = qpo.load_ohlcv(path, tickers=["AAPL", "MSFT"], start="2020-01-01", end="2020-12-31")
    assert set(bars["ticker"]) == {"AAPL", "MSFT"}
    prices = qpo.ohlcv_to_prices(bars)
    assert prices.shape == (253, 2)


def test_returns_given_as_prices_are_refused_by_prices_to_returns(sp500):
    """Returns passed as prices gave returns of returns (-1.82 for AAPL's first day), unseen."""
    returns = qpo.prices_to_returns(sp500.iloc[-100:, :3])
    with pytest.raises(DataError, match=r"prices must be positive: [A-Z]+ is -?\d.* on \d{4}-\d\d-\d\d .* returns already"):
        qpo.prices_to_returns(returns)
    zero = sp500.iloc[-100:, :3].copy()
    zero.iloc[50, 1] = 0.0
    with pytest.raises(DataError, match=r"is 0 on .*\(1 value\(s\) at or below 0\)"):
        qpo.prices_to_returns(zero)
