"""Market data in the store (qpo.store.market_data), on SQLite and on the real PostgreSQL: upserts
that are idempotent and replace a corrected bar, the panel read back exactly as it was written, the
bundled fallback on a fresh store, a newer day ingested becoming the day the book is priced on, and
a file that fails validation writing nothing."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

import qpo
from qpo.errors import DataError
from qpo.store import connect
from qpo.store.market_data import (
    BUNDLED,
    STORE,
    benchmark_for,
    book_benchmark,
    book_prices,
    has_market_data,
    ingest_file,
    last_bar_dates,
    market_data_summary,
    prices_panel,
    seed_market_data,
    upsert_bars,
    upsert_panel,
)
from tests.conftest import database_urls
from tests.test_store.test_store import fresh_store_url


@pytest.fixture(params=database_urls())
def engine(request, tmp_path, monkeypatch):
    with fresh_store_url(request.param, tmp_path) as url:
        monkeypatch.setenv("QPO_DATABASE_URL", url)
        yield connect(url)


def _dump(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT ticker, date, open, high, low, close, adjusted_close, volume, dividend, split, source, updated_at "
            "FROM market_data ORDER BY ticker, date"))]


def _bars(tickers=("AAA", "BBB"), start="2023-01-02", days=30, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=days)
    frames = []
    for i, t in enumerate(tickers):
        close = 50.0 * (i + 1) * np.exp(np.cumsum(rng.normal(0, 0.01, days)))
        frames.append(pd.DataFrame({"date": dates, "ticker": t, "open": close * 0.995, "high": close * 1.01,
                                    "low": close * 0.99, "close": close, "adjusted_close": close,
                                    "volume": rng.integers(1_000, 9_000, days).astype(float),
                                    "dividend_amount": 0.0, "split_coefficient": 1.0}))
    return pd.concat(frames, ignore_index=True)


def test_upsert_is_idempotent_and_a_corrected_bar_replaces(engine):
    bars = _bars()
    assert upsert_bars(engine, bars) == 60
    first = _dump(engine)
    assert len(first) == 60
    assert upsert_bars(engine, bars) == 0  # the same bars again: nothing changes, updated_at included
    assert _dump(engine) == first

    fixed = bars.iloc[[5]].copy()
    fixed["adjusted_close"] = fixed["close"] = 123.25
    fixed["volume"] = np.nan  # unknown now: stored as NULL
    assert upsert_bars(engine, fixed, source="vendor") == 1
    after = _dump(engine)
    assert len(after) == 60
    changed = [r for r in after if r not in first]
    (row,) = changed
    assert row[0] == "AAA" and str(row[1]) == "2023-01-09"
    assert row[5] == row[6] == 123.25 and row[7] is None and row[10] == "vendor"
    panel = prices_panel(engine)
    assert panel.loc[bars.loc[5, "date"], "AAA"] == 123.25
    assert panel.loc[bars.loc[6, "date"], "AAA"] == bars.loc[6, "adjusted_close"]


def test_prices_panel_shape_and_values(engine):
    bars = _bars(("AAA", "BBB", "CCC"), days=20)
    bars = bars[~((bars["ticker"] == "CCC") & (bars["date"] < "2023-01-10"))]  # CCC listed later: NaN before
    upsert_bars(engine, bars)
    panel = prices_panel(engine)
    assert panel.shape == (20, 3) and list(panel.columns) == ["AAA", "BBB", "CCC"]
    assert panel.index.name == "date" and panel.index.is_monotonic_increasing and panel.dtypes.eq("float64").all()
    assert panel["CCC"].isna().sum() == 6 and panel["AAA"].notna().all()
    expected = bars.pivot(index="date", columns="ticker", values="adjusted_close")
    np.testing.assert_array_equal(panel.to_numpy(), expected.to_numpy())
    part = prices_panel(engine, ["BBB", "ZZZ"], start="2023-01-05", end="2023-01-12")
    assert list(part.columns) == ["BBB", "ZZZ"] and part["ZZZ"].isna().all()
    assert part.index[0] == pd.Timestamp("2023-01-05") and part.index[-1] == pd.Timestamp("2023-01-12") and len(part) == 6
    assert last_bar_dates(engine) == {"AAA": dt.date(2023, 1, 27), "BBB": dt.date(2023, 1, 27),
                                      "CCC": dt.date(2023, 1, 27)}
    summary = market_data_summary(engine).set_index("ticker")
    assert summary.loc["CCC", "rows"] == 14 and summary.loc["CCC", "first"] == dt.date(2023, 1, 10)


def test_fresh_store_falls_back_to_the_bundled_panel(engine):
    assert not has_market_data(engine)
    prices, origin = book_prices(engine, start="2020-01-01")
    assert origin == BUNDLED
    pd.testing.assert_frame_equal(prices, qpo.load_prices("sp500", start="2020-01-01"))
    bench = book_benchmark(engine, start="2020-01-01")
    assert bench.attrs["origin"] == BUNDLED and bench.index[-1] == pd.Timestamp("2022-12-28")
    assert book_prices(None)[1] == BUNDLED
    with pytest.raises(DataError, match="start 'notadate' is not a date"):
        book_prices(engine, start="notadate")


def test_seed_round_trips_and_a_newer_day_is_the_day_priced(engine, tmp_path):
    assert seed_market_data(engine) == 8313 * 21
    assert seed_market_data(engine) == 0  # idempotent
    prices, origin = book_prices(engine)
    assert origin == STORE
    pd.testing.assert_frame_equal(prices, qpo.load_prices("sp500"))  # bit for bit, index tickers left out
    bench = book_benchmark(engine)
    assert bench.attrs["origin"] == STORE
    pd.testing.assert_series_equal(bench, qpo.load_prices("sp500_index")["SP500"], check_freq=False)

    # a new day's closes for the 20 stocks and the index, as a wide file the user ingests
    last = prices.iloc[-1]
    new = pd.concat([last * 1.01, pd.Series({"SP500": bench.iloc[-1] * 1.005})]).to_frame("2022-12-29").T
    new.index = pd.DatetimeIndex(["2022-12-29"], name="date")
    history = pd.concat([pd.concat([prices, bench], axis=1).iloc[-30:], new])
    path = tmp_path / "newday.csv"
    history.to_csv(path)
    result = ingest_file(engine, path)
    assert result.ok and result.kind == "prices" and result.written == 21  # only the new day's bars are new
    prices2, origin2 = book_prices(engine, start="2022-01-01")
    assert origin2 == STORE and prices2.index[-1] == pd.Timestamp("2022-12-29")
    assert prices2.loc["2022-12-29", "AAPL"] == pytest.approx(last["AAPL"] * 1.01, rel=1e-15)
    assert benchmark_for(book_benchmark(engine, start="2022-01-01"), prices2) is not None
    # the store's stocks newer than its index: no benchmark rather than a misaligned one
    upsert_panel(engine, pd.DataFrame({"AAPL": [200.0]}, index=pd.DatetimeIndex(["2022-12-30"], name="date")))
    prices3, _ = book_prices(engine, start="2022-01-01")
    assert benchmark_for(book_benchmark(engine, start="2022-01-01"), prices3) is None
    assert benchmark_for(book_benchmark(engine, start="2022-01-01"), prices3, as_of="2022-12-29") is not None


def test_seeding_and_panels_keep_a_vendors_bars(engine):
    """`make run` seeds every time: the bundled prices never replace a ticker's fetched history, and
    a panel of adjusted closes over a vendor's bar changes its adjusted close only."""
    day = dt.date(2022, 12, 28)
    bar = pd.DataFrame({"date": [pd.Timestamp(day)], "ticker": ["AAPL"], "open": [127.0], "high": [131.0],
                        "low": [126.0], "close": [126.5], "adjusted_close": [125.9], "volume": [8.5e7],
                        "dividend_amount": [0.23], "split_coefficient": [1.0]})
    assert upsert_bars(engine, bar, source="vendor") == 1
    written = seed_market_data(engine)
    assert written == 8313 * 20  # the 19 other stocks and the index; AAPL's history is the vendor's
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT date, open, close, adjusted_close, dividend, source FROM market_data "
                                 "WHERE ticker = 'AAPL'")).all()
    assert [tuple(r)[1:] for r in rows] == [(127.0, 126.5, 125.9, 0.23, "vendor")]
    assert seed_market_data(engine) == 0
    # a panel's adjusted close over the vendor's bar: the actual close, dividend and volume stay
    assert upsert_panel(engine, pd.DataFrame({"AAPL": [125.5], "MSFT": [240.0]},
                                             index=pd.DatetimeIndex([day], name="date"))) == 2
    with engine.connect() as conn:
        got = {t: tuple(r) for t, *r in conn.execute(text(
            "SELECT ticker, open, close, adjusted_close, volume, dividend, source FROM market_data "
            "WHERE date = :d AND ticker IN ('AAPL', 'MSFT')"), {"d": day})}
    assert got["AAPL"] == (127.0, 126.5, 125.5, 8.5e7, 0.23, "file")
    assert got["MSFT"][1:3] == (240.0, 240.0) and got["MSFT"][0] is None  # a panel's own bar: close follows
    assert upsert_panel(engine, pd.DataFrame({"AAPL": [125.5], "MSFT": [240.0]},
                                             index=pd.DatetimeIndex([day], name="date"))) == 0


def test_a_bad_file_writes_nothing(engine, tmp_path, goog_bars):
    upsert_bars(engine, _bars())
    before = _dump(engine)
    bad = goog_bars.iloc[:300].copy()
    bad.loc[100, "high"] = bad.loc[100, "low"] * 0.5  # high < low: an error-severity check
    path = tmp_path / "bars.csv"
    bad.to_csv(path, index=False)
    result = ingest_file(engine, path)
    assert not result.ok and result.written == 0 and "high < low" in result.report.failed_checks
    assert _dump(engine) == before
    panel = goog_bars.iloc[:300].pivot(index="date", columns="ticker", values="adjusted_close")
    panel.iloc[50, 0] = -3.0
    panel.to_csv(tmp_path / "panel.csv")
    result = ingest_file(engine, tmp_path / "panel.csv")
    assert not result.ok and result.report.failed_checks[0].startswith("non-positive prices") and _dump(engine) == before

    good = goog_bars.iloc[:300]
    good.to_csv(path, index=False)
    result = ingest_file(engine, path)
    assert result.ok and result.kind == "ohlcv" and result.written == 300 and result.tickers == ["GOOG"]
    # a refused upsert (a repeated bar, a non-positive close) is refused whole
    twice = pd.concat([_bars(("NEW",)), _bars(("NEW",)).iloc[[3]]])
    with pytest.raises(DataError, match="repeated"):
        upsert_bars(engine, twice)
    neg = _bars(("NEW",))
    neg.loc[7, "adjusted_close"] = 0.0
    with pytest.raises(DataError, match="positive adjusted close.*row 8"):
        upsert_bars(engine, neg)
    assert "NEW" not in last_bar_dates(engine)


def test_bulk_upsert_of_100k_bars(engine):
    """10^5 bars in one transaction in seconds (measured: ~1 s on SQLite and PostgreSQL here)."""
    import time

    tickers = [f"T{i:03d}" for i in range(100)]
    bars = _bars(tickers, start="2019-01-01", days=1000, seed=3)
    t0 = time.perf_counter()
    assert upsert_bars(engine, bars) == 100_000
    seconds = time.perf_counter() - t0
    assert seconds < 60, seconds  # generous: a loaded 2-core machine
    assert upsert_bars(engine, bars) == 0
    assert prices_panel(engine).shape == (1000, 100)


def test_the_daily_report_reports_the_newer_day_ingested(tmp_path, sp500):
    """The daily-report pipeline reads the store (``prices_source="store"``, its default): after a
    newer day is ingested, that day is the report's date; on a store without market data it reports
    the bundled panel's last date."""
    from qpo.workbench.pipelines import run_pipeline
    from tests.test_workbench import seed_demo_book

    engine = connect()
    seed_demo_book(engine, prices=sp500)
    params = {"portfolio": "Conservative Income", "lookback_days": 250, "history_start": "2019-01-01"}
    run = run_pipeline("daily-report", params)
    assert run.status == "FINISHED", run.error
    assert run.metrics["as_of"] == "2022-12-28" and run.metrics["prices_origin"] == "bundled"
    assert "benchmark_var" in run.metrics

    seed_market_data(engine)
    new = (sp500.iloc[[-1]] * 0.99).set_axis(pd.DatetimeIndex(["2022-12-29"], name="date"))
    new["SP500"] = book_benchmark(engine).iloc[-1] * 0.995
    path = tmp_path / "2022-12-29.csv"
    pd.concat([prices_panel(engine, start="2022-12-01"), new]).to_csv(path)
    assert ingest_file(engine, path).written == 21
    run = run_pipeline("daily-report", params)
    assert run.status == "FINISHED", run.error
    assert run.metrics["as_of"] == "2022-12-29" and run.metrics["prices_origin"] == "store"
    assert "benchmark_var" in run.metrics  # the store's index covers the new day


@pytest.mark.parametrize("ticker", ["K\tO", "A\x1bB", "K\x00O", "A\u202eB", "X" * 10_000, "two words", " "])
def test_hostile_tickers_are_refused_with_a_short_message_and_nothing_written(engine, ticker):
    """Market data goes through the same ticker check as every other write of the store: no control,
    format or NUL characters, no spaces, 1 to 16 characters; the message quotes only the start."""
    upsert_bars(engine, _bars(("OK",)))
    before = _dump(engine)
    bars = pd.concat([_bars(("NEW",)), _bars((ticker,), seed=1)], ignore_index=True)
    with pytest.raises(DataError) as info:
        upsert_bars(engine, bars)
    message = str(info.value)
    assert "row 31" in message and "nothing was written" in message and len(message) < 300, message
    assert "\x1b" not in message and "\x00" not in message and "\u202e" not in message
    panel = pd.DataFrame({"NEW": [10.0, 11.0], ticker: [1.0, 2.0]}, index=pd.bdate_range("2023-03-01", periods=2))
    with pytest.raises(DataError) as info:
        upsert_panel(engine, panel)
    assert len(str(info.value)) < 300
    assert _dump(engine) == before and "NEW" not in last_bar_dates(engine)


def test_ingesting_a_file_with_a_huge_ticker_prints_a_short_error(tmp_path, monkeypatch, capsys):
    from qpo.cli import main

    monkeypatch.setenv("QPO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QPO_DATABASE_URL", raising=False)
    dates = pd.bdate_range("2023-01-02", periods=40)
    panel = pd.DataFrame({"AAA": np.linspace(10, 12, 40), "B" * 10_000: np.linspace(20, 21, 40)}, index=dates)
    panel.index.name = "date"
    panel.to_csv(tmp_path / "long.csv")
    status = main(["data", "ingest", str(tmp_path / "long.csv"), "--kind", "prices"])
    err = capsys.readouterr().err
    assert status != 0 and "B" * 100 not in err and max(len(line) for line in err.splitlines()) < 400, err[:500]


def test_an_alpha_vantage_csv_download_is_ingested_under_the_ticker_given(tmp_path, monkeypatch, capsys):
    """Alpha Vantage's CSV (datatype=csv): 'timestamp' first, newest first, no ticker column. Named
    on the command line, it validates and loads rising; a second load changes nothing."""
    import json

    from qpo.cli import main

    monkeypatch.setenv("QPO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QPO_DATABASE_URL", raising=False)
    bars = _bars(tickers=("AAA",), days=60)
    download = bars.drop(columns=["ticker"]).rename(columns={"date": "timestamp"}).iloc[::-1]
    download = download[["timestamp"] + [c for c in download.columns if c != "timestamp"]]
    download.to_csv(tmp_path / "query.csv", index=False)
    assert main(["data", "ingest", str(tmp_path / "query.csv")]) == 2
    assert "--ticker SYMBOL" in capsys.readouterr().err
    assert main(["data", "ingest", str(tmp_path / "query.csv"), "--ticker", "AAA", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["written"] == 60 and out["tickers"] == ["AAA"] and out["first"] == "2023-01-02"
    stored = prices_panel(connect(), ["AAA"], "2023-01-01", "2023-12-31")["AAA"]
    np.testing.assert_allclose(stored.to_numpy(), bars["adjusted_close"].to_numpy(), rtol=1e-12)
    assert main(["data", "ingest", str(tmp_path / "query.csv"), "--ticker", "AAA", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["written"] == 0
    assert main(["validate", str(tmp_path / "query.csv"), "--ticker", "AAA"]) == 0
    assert "PASSED" in capsys.readouterr().out


def test_a_hole_inside_one_names_history_is_carried_and_said(tmp_path, sp500):
    """Two days' bars came in without XOM, then a day with it: XOM has a hole of two dates inside its
    history. The store's pipelines carry it at its last close and say so (a warning to review), as
    the nightly runs do, instead of refusing every portfolio's report; a longer hole stays an error."""
    import warnings

    from qpo.errors import DataWarning
    from qpo.workbench.pipelines import run_pipeline
    from qpo.workbench.prices import RAGGED_END_DATES, carry_holes, validate_price_source
    from tests.test_workbench import seed_demo_book

    engine = connect()
    seed_demo_book(engine, prices=sp500)
    seed_market_data(engine)
    days = pd.DatetimeIndex(["2022-12-29", "2022-12-30", "2023-01-03"], name="date")
    new = pd.DataFrame(np.outer([0.99, 0.995, 1.0], sp500.iloc[-1].to_numpy()), index=days, columns=sp500.columns)
    new.iloc[:2, new.columns.get_loc("XOM")] = np.nan
    new["SP500"] = float(book_benchmark(engine).iloc[-1])
    for k in range(3):
        path = tmp_path / f"day{k}.csv"
        new.iloc[[k]].dropna(axis=1).to_csv(path)
        ingest_file(engine, path)
    report, prices = validate_price_source("store", start="2019-01-01")
    assert report.success, report.summary()
    (carried,) = [w for w in report.warnings if "carried at their last close" in w.check]
    assert "XOM 2 from 2022-12-29" in carried.check and carried.unexpected_count == 2
    assert prices.loc["2022-12-29":"2022-12-30", "XOM"].tolist() == [sp500["XOM"].iloc[-1]] * 2
    run = run_pipeline("daily-report", {"portfolio": "Conservative Income", "lookback_days": 250,
                                        "history_start": "2019-01-01"})
    assert run.status == "FINISHED", run.error
    assert run.metrics["as_of"] == "2023-01-03" and any("XOM 2 from" in w for w in run.data_warnings)

    # the rule alone: holes up to RAGGED_END_DATES dates filled from the last close; longer ones, the
    # dates before a listing and after the last bar left alone
    idx = pd.bdate_range("2024-01-01", periods=20)
    a = pd.Series(np.arange(1.0, 21.0), index=idx)
    panel = pd.DataFrame({"short": a, "long": a, "edges": a})
    panel.iloc[3:3 + RAGGED_END_DATES, 0] = np.nan
    panel.iloc[3:4 + RAGGED_END_DATES, 1] = np.nan
    panel.iloc[:2, 2] = panel.iloc[-2:, 2] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = carry_holes(panel)
    assert out["short"].iloc[3:3 + RAGGED_END_DATES].tolist() == [3.0] * RAGGED_END_DATES
    pd.testing.assert_series_equal(out["long"], panel["long"])
    pd.testing.assert_series_equal(out["edges"], panel["edges"])
    (w,) = [c for c in caught if issubclass(c.category, DataWarning)]
    assert "1 ticker(s)" in str(w.message) and "short 5 from 2024-01-04" in str(w.message)
