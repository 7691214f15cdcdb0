"""The research notebooks' prices (``prices_source = "store"``, their default): the store's market
data once it holds any, so a day ingested is a day the backtest, frontier, quantum and forecaster
pipelines see; the bundled panel on a fresh install."""
from __future__ import annotations

import pandas as pd

from qpo.workbench.prices import STORE_SOURCE, notebook_prices, validate_price_source


def test_a_fresh_install_reads_the_bundled_panel_and_its_index(qpo_home, sp500):
    got = notebook_prices(STORE_SOURCE, start="2015-01-01")
    assert got.origin == "bundled"
    pd.testing.assert_frame_equal(got.prices, sp500.loc["2015-01-01":])
    assert got.benchmark is not None and got.benchmark.index.equals(got.prices.index)
    assert not (qpo_home / "qpo.db").exists()  # reading created no store
    bundled = notebook_prices("sp500", start="2015-01-01")
    pd.testing.assert_frame_equal(bundled.prices, got.prices)
    pd.testing.assert_series_equal(bundled.benchmark, got.benchmark, check_names=False)


def test_a_day_ingested_into_the_store_is_a_day_the_notebooks_see(qpo_home, sp500):
    from qpo.store import connect
    from qpo.store.market_data import seed_market_data, upsert_panel

    engine = connect()
    seed_market_data(engine)
    last = sp500.iloc[-1]
    new_day = pd.Timestamp("2022-12-29")
    upsert_panel(engine, pd.DataFrame([last * 1.01], index=pd.DatetimeIndex([new_day], name="date")))
    upsert_panel(engine, pd.DataFrame({"SP500": [3800.0]}, index=pd.DatetimeIndex([new_day], name="date")))
    got = notebook_prices(STORE_SOURCE, start="2022-01-01", tickers=["AAPL", "MSFT"])
    assert got.origin == "store"
    assert list(got.prices.columns) == ["AAPL", "MSFT"]
    assert got.prices.index[-1] == new_day
    assert got.prices.loc[new_day, "AAPL"] == float(last["AAPL"]) * 1.01
    assert got.benchmark is not None and got.benchmark.iloc[-1] == 3800.0
    # the index series is the benchmark, not a stock of the panel
    assert "SP500" not in notebook_prices(STORE_SOURCE, start="2022-01-01").prices.columns
    # an end date before the new day leaves it out
    assert notebook_prices(STORE_SOURCE, start="2022-01-01", end="2022-12-28").prices.index[-1] < new_day
    # the pipelines validate what the notebooks will read
    report, prices = validate_price_source(STORE_SOURCE, start="2022-01-01")
    assert report.success and prices.index[-1] == new_day


def test_a_store_day_without_its_index_gives_no_benchmark(qpo_home, sp500):
    """A stock day the index lacks: no benchmark (a backtest against it would miss a return), said
    by None rather than by a benchmark with a hole."""
    from qpo.store import connect
    from qpo.store.market_data import seed_market_data, upsert_panel

    engine = connect()
    seed_market_data(engine)
    upsert_panel(engine, pd.DataFrame([sp500.iloc[-1]], index=pd.DatetimeIndex(["2022-12-29"], name="date")))
    got = notebook_prices(STORE_SOURCE, start="2022-01-01")
    assert got.prices.index[-1] == pd.Timestamp("2022-12-29") and got.benchmark is None


def test_a_day_ingested_for_only_some_names_is_left_out_with_a_warning(qpo_home, sp500):
    """A newer day's bars for AAPL and KO only (as `qpo data fetch --symbols AAPL MSFT` leaves a
    store): the research notebooks' prices end on the last date that prices every current name, with
    a DataWarning naming the day and the names that have it (before: the backtest pipeline FAILED
    on 'prices have gaps in 18 ticker(s)', and the quantum notebook's dropna(axis=1) kept only AAPL
    and KO, a study of 2 names that looked like one of 20). A ticker that left the data years ago
    does not hold the end back; an end given is kept as given."""
    import pytest

    from qpo.errors import DataWarning
    from qpo.store import connect
    from qpo.store.market_data import seed_market_data, upsert_panel
    from qpo.workbench.prices import common_end

    engine = connect()
    seed_market_data(engine)
    days = pd.DatetimeIndex(["2022-12-29", "2022-12-30"], name="date")
    upsert_panel(engine, pd.DataFrame({"AAPL": [130.0, 131.0], "KO": [63.0, 63.5]}, index=days))
    with pytest.warns(DataWarning, match=r"last 2 date\(s\), to 2022-12-30, price only 2 of the 20 current names "
                                         r"\(AAPL, KO\): the prices end on 2022-12-28"):
        got = notebook_prices(STORE_SOURCE, start="2022-01-01")
    assert got.prices.index[-1] == pd.Timestamp("2022-12-28") and not got.prices.isna().any().any()
    pd.testing.assert_frame_equal(got.prices, sp500.loc["2022-01-01":])
    assert notebook_prices(STORE_SOURCE, start="2022-01-01", end="2022-12-30").prices.index[-1] == days[-1]
    # a name delisted long before the end is not current: it does not hold the end back
    panel = sp500.loc["2022-06-01":, ["AAPL", "KO"]].copy()
    panel.loc["2022-09-01":, "KO"] = float("nan")
    assert common_end(panel).equals(panel)


def test_a_short_window_with_a_name_without_prices_is_kept_whole():
    """Five dates and a column with no price in them (a recent start, a name not listed yet): the
    panel is kept as it is (before the review: an empty panel, 'the prices end on' its last date)."""
    from qpo.workbench.prices import common_end

    days = pd.bdate_range("2024-01-02", periods=5)
    panel = pd.DataFrame({"AAA": [1.0, 2, 3, 4, 5], "NEW": [float("nan")] * 5}, index=days)
    assert common_end(panel).equals(panel)
