"""A file is validated together with the prices the store already holds (issue 19, audit gap 1):
a one-day file whose price jumps tenfold from the stored close is refused and writes nothing (the
jump check alone cannot see a one-day file), a plausible one-day file is accepted, a large move
from the stored close is a warning, and Alpha Vantage's bars are checked the same way where they
meet the stored ones. On SQLite and on the real PostgreSQL."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from qpo import errors as qpo_errors
from qpo.store import connect
from qpo.store.market_data import ingest_file, prices_panel, upsert_panel
from qpo.store.market_fetch import fetch_alphavantage
from tests.conftest import database_urls
from tests.test_store.test_store import fresh_store_url

STORED_CLOSE = 125.67


@pytest.fixture(params=database_urls())
def engine(request, tmp_path, monkeypatch):
    with fresh_store_url(request.param, tmp_path) as url:
        monkeypatch.setenv("QPO_DATABASE_URL", url)
        monkeypatch.setenv("QPO_HOME", str(tmp_path / "home"))
        yield connect(url)


def _history(engine) -> None:
    """20 business days of AAPL and MSFT ending 2026-12-03 at AAPL 125.67, MSFT 300."""
    dates = pd.bdate_range(end="2026-12-03", periods=20, name="date")
    rng = np.random.default_rng(7)
    aapl = STORED_CLOSE * np.exp(np.r_[np.cumsum(rng.normal(0, 0.01, 19))[::-1], 0.0])
    msft = 300.0 * np.exp(np.r_[np.cumsum(rng.normal(0, 0.01, 19))[::-1], 0.0])
    upsert_panel(engine, pd.DataFrame({"AAPL": aapl, "MSFT": msft}, index=dates))


def _one_day(path, aapl: float, msft: float = 301.5) -> None:
    pd.DataFrame({"AAPL": [aapl], "MSFT": [msft]}, index=pd.DatetimeIndex(["2026-12-04"], name="date")).to_csv(path)


def _dump(engine) -> pd.DataFrame:
    return prices_panel(engine)


def test_a_tenfold_one_day_file_is_refused_and_writes_nothing(engine, tmp_path):
    _history(engine)
    before = _dump(engine)
    path = tmp_path / "day.csv"
    _one_day(path, 1260.0)
    result = ingest_file(engine, path)
    assert not result.ok and result.written == 0
    assert len(result.report.failures) == 1
    check = result.report.failures[0].check
    assert check.startswith("implausible one-day jumps") and "AAPL on 2026-12-04" in check, check
    ex = result.report.failures[0].examples[0]
    assert ex["ticker"] == "AAPL" and ex["date"] == "2026-12-04"
    assert result.report.failures[0].unexpected_count == 1  # MSFT's 0.5 % move is fine
    assert "AAPL on 2026-12-04" in result.report.summary()
    pd.testing.assert_frame_equal(_dump(engine), before)  # nothing written


def test_a_plausible_one_day_file_is_accepted_and_a_large_move_warned(engine, tmp_path):
    _history(engine)
    path = tmp_path / "day.csv"
    _one_day(path, STORED_CLOSE * 1.012)
    result = ingest_file(engine, path)
    assert result.ok and result.written == 2 and not result.report.warnings
    assert result.report.parameters["checked_against_stored_bars"] == 2
    assert _dump(engine).loc["2026-12-04", "AAPL"] == pytest.approx(STORED_CLOSE * 1.012, rel=1e-12)
    assert len(_dump(engine)) == 21  # the stored bars used for the check are not written twice

    # a 45 % fall from the stored close: below the implausible limit, a warning; the file is loaded
    _one_day(path, STORED_CLOSE * 1.012 * 0.55, msft=302.0)
    path2 = tmp_path / "day2.csv"
    pd.read_csv(path).assign(date=["2026-12-07"]).to_csv(path2, index=False)
    result = ingest_file(engine, path2)
    assert result.ok and result.written == 2
    assert [w.check.split(" (")[0] for w in result.report.warnings] == ["large one-day moves to review"]
    assert "AAPL on 2026-12-07" in result.report.warnings[0].check


def test_ohlcv_bars_are_checked_against_the_stored_close(engine, tmp_path):
    _history(engine)
    bars = pd.DataFrame({"date": ["2026-12-04"], "ticker": ["MSFT"], "open": [3000.0], "high": [3030.0],
                         "low": [2990.0], "close": [3015.0], "adjusted_close": [3015.0], "volume": [1e6],
                         "dividend_amount": [0.0], "split_coefficient": [1.0]})
    path = tmp_path / "bars.csv"
    bars.to_csv(path, index=False)
    result = ingest_file(engine, path)
    assert not result.ok and result.written == 0 and "MSFT on 2026-12-04" in result.report.failures[0].check
    assert "MSFT" not in prices_panel(engine, start="2026-12-04").dropna(axis=1).columns


def test_the_cli_names_the_ticker_and_date_and_exits_2(engine, tmp_path, capsys):
    from qpo.cli import main

    _history(engine)
    path = tmp_path / "day.csv"
    _one_day(path, 1260.0)
    assert main(["data", "ingest", str(path)]) == 2
    err = capsys.readouterr().err
    assert "AAPL on 2026-12-04" in err and "nothing was written" in err
    assert main(["data", "ingest", str(path), "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "INVALID_DATA" and out["written"] == 0
    assert any("AAPL on 2026-12-04" in f["check"] for f in out["validation"]["failures"])


class _Client:
    """Alpha Vantage's parsed answer for one symbol (the HTTP client is tested against a local
    server in tests/test_data): a compact answer whose first day meets the stored history."""

    def __init__(self, bars: pd.DataFrame) -> None:
        self.bars = bars

    def daily_adjusted(self, symbol: str, outputsize: str) -> pd.DataFrame:
        return self.bars


def test_alphavantage_bars_that_jump_from_the_stored_close_are_refused(engine):
    _history(engine)
    stored = prices_panel(engine)
    dates = pd.to_datetime(["2026-12-03", "2026-12-04"])  # the compact answer overlaps the stored last day
    close = np.array([STORED_CLOSE, STORED_CLOSE * 10])
    bars = pd.DataFrame({"date": dates, "ticker": "AAPL", "open": close, "high": close * 1.01, "low": close * 0.99,
                         "close": close, "adjusted_close": close, "volume": 1e6, "dividend_amount": 0.0,
                         "split_coefficient": 1.0})
    # the overlap agrees with the store, so no full refetch; the jump is inside the answer: refused
    res = fetch_alphavantage(engine, ["AAPL"], client=_Client(bars), today=dt.date(2026, 12, 5))[0]
    assert res.error and "implausible one-day jumps" in res.error and res.written == 0
    # the answer alone is plausible, but its first day jumps from the stored day before
    bars2 = bars.iloc[[1]].assign(date=pd.to_datetime(["2026-12-04"]))
    bars2 = pd.concat([bars2, bars2.assign(date=pd.to_datetime(["2026-12-07"]))], ignore_index=True)
    res = fetch_alphavantage(engine, ["AAPL"], client=_Client(bars2), today=dt.date(2026, 12, 8), full=True)[0]
    assert res.error and "AAPL on 2026-12-04" in res.error and res.written == 0
    pd.testing.assert_frame_equal(prices_panel(engine), stored)  # nothing written
    # a plausible answer is written
    ok = bars2.assign(close=STORED_CLOSE * 1.01, open=STORED_CLOSE, high=STORED_CLOSE * 1.02, low=STORED_CLOSE * 0.99,
                      adjusted_close=STORED_CLOSE * 1.01)
    res = fetch_alphavantage(engine, ["AAPL"], client=_Client(ok), today=dt.date(2026, 12, 8), full=True)[0]
    assert res.error is None and res.written == 2


def test_a_seam_years_wide_is_not_judged_as_one_day(engine, tmp_path):
    """Stored history that ended years before the file: any move in between may be real (a stock
    that tripled from 2022 to 2026), so the seam is not checked as a one-day jump; it is counted."""
    dates = pd.bdate_range(end="2022-12-30", periods=20, name="date")
    upsert_panel(engine, pd.DataFrame({"AAPL": np.full(20, 40.0)}, index=dates))
    path = tmp_path / "later.csv"
    pd.DataFrame({"AAPL": [125.0, 126.0]}, index=pd.DatetimeIndex(["2026-12-03", "2026-12-04"], name="date")).to_csv(path)
    result = ingest_file(engine, path)
    assert result.ok and result.written == 2, result.report.summary()


def test_a_bar_dated_after_today_is_refused_and_a_wrong_bar_can_be_removed(engine, tmp_path, capsys):
    """A mistyped year (2032 for 2022) would make every nightly run of that day, with every other name
    stale, and its alerts last seen in the future: refused, nothing written. A bar stored wrongly
    before this check (or with a wrong price) is removed by `qpo data remove`."""
    from sqlalchemy import insert

    from qpo.cli import main
    from qpo.store.market_data import latest_today
    from qpo.store.models import MarketBar

    _history(engine)
    stored = _dump(engine)
    ahead = latest_today() + dt.timedelta(days=3)
    path = tmp_path / "typo.csv"
    pd.DataFrame({"AAPL": [126.0]}, index=pd.DatetimeIndex([ahead], name="date")).to_csv(path)
    with pytest.raises(qpo_errors.DataError, match=f"1 bar\\(s\\) dated after today .*AAPL {ahead}.*mistyped year"):
        ingest_file(engine, path)
    pd.testing.assert_frame_equal(_dump(engine), stored)
    with engine.begin() as conn:  # as an older qpo let it in
        conn.execute(insert(MarketBar), [{"ticker": "AAPL", "date": ahead, "adjusted_close": 126.0, "close": 126.0,
                                          "dividend": 0.0, "split": 1.0, "source": "file"}])
    assert main(["data", "remove", "AAPL", "--from", str(ahead), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == 1
    pd.testing.assert_frame_equal(_dump(engine), stored)
    assert main(["data", "remove", "AAPL", "--from", "2026-12-01", "--to", "2026-11-30"]) == 2
    assert "the end 2026-11-30 is before the start 2026-12-01" in capsys.readouterr().err
    assert main(["data", "remove", "AAPL", "--from", "2026-12-03", "--to", "2026-12-03"]) == 0
    assert "1 bar(s) of AAPL removed, from 2026-12-03 to 2026-12-03" in capsys.readouterr().out
    assert _dump(engine).index[-1] == pd.Timestamp("2026-12-03") and pd.isna(_dump(engine).loc["2026-12-03", "AAPL"])


def _bars(path, rows) -> None:
    pd.DataFrame(rows, columns=["date", "ticker", "open", "high", "low", "close", "adjusted_close", "volume",
                                "dividend_amount", "split_coefficient"]).to_csv(path, index=False)


def test_a_split_or_dividend_where_a_file_meets_the_store_readjusts_the_stored_history(engine, tmp_path):
    """A day's bars after the stored ones, with a 2:1 split of AAPL and a 1.50 dividend of MSFT: the
    vendor adjusts the history back from them, the file cannot (it holds only the new day), so the
    stored adjusted closes before it are multiplied by what makes the seam's return the true one
    (AAPL +1.06 %, not -49.5 %; MSFT's day with its dividend, as vendors adjust: close / (close
    before - dividend)), in the same transaction; the returns inside the stored history do not
    change. A stored bar of a price panel has no actual close: only a split the file records is
    taken (the panel may hold the dividend's adjustment already). A plain day changes nothing."""
    _history(engine)
    before = _dump(engine)
    # MSFT's last stored day as a vendor's bar (an actual close of 300, its adjusted close as stored)
    _bars(tmp_path / "msft.csv", [["2026-12-03", "MSFT", 300.0, 301.0, 299.0, 300.0, 300.0, 1e6, 0.0, 1.0]])
    assert ingest_file(engine, tmp_path / "msft.csv").readjusted == {}
    path = tmp_path / "split.csv"
    _bars(path, [["2026-12-04", "AAPL", 63.0, 64.0, 62.5, 63.5, 63.5, 1e6, 0.0, 2.0],
                 ["2026-12-04", "MSFT", 299.0, 301.0, 298.0, 299.0, 299.0, 1e6, 1.5, 1.0]])
    result = ingest_file(engine, path)
    assert result.ok and result.written == 2, result.report
    msft = 299.0 / (299.0 / (300.0 - 1.5) * 300.0)
    assert result.readjusted == pytest.approx({"AAPL": 0.5, "MSFT": msft}, rel=1e-9)
    assert not [w for w in result.report.warnings if "large" in w.check]  # no "large move" to review: there is none
    after = _dump(engine)
    returns = after.pct_change(fill_method=None)
    assert returns.loc["2026-12-04", "AAPL"] == pytest.approx(63.5 * 2 / STORED_CLOSE - 1, rel=1e-9)
    assert returns.loc["2026-12-04", "MSFT"] == pytest.approx(299.0 / 298.5 - 1, rel=1e-9)
    pd.testing.assert_frame_equal(returns.loc[:"2026-12-03"], before.pct_change(fill_method=None), rtol=1e-12)
    assert after.loc[:"2026-12-03", "AAPL"].to_numpy() == pytest.approx(before["AAPL"].to_numpy() * 0.5, rel=1e-12)
    # the next day, without an event, meets the re-adjusted store: nothing more to re-adjust
    plain = tmp_path / "plain.csv"
    _bars(plain, [["2026-12-07", "AAPL", 63.5, 64.5, 63.0, 64.0, 64.0, 1e6, 0.0, 1.0]])
    again = ingest_file(engine, plain)
    assert again.ok and again.readjusted == {} and _dump(engine).loc[:"2026-12-04"].equals(after)
    # a file inside the history (it ends before the stored last bar) is not a seam to re-adjust at
    inside = tmp_path / "inside.csv"
    _bars(inside, [["2026-12-02", "AAPL", 60.0, 61.0, 59.0, 60.5, 60.5, 1e6, 0.0, 2.0]])
    assert ingest_file(engine, inside).readjusted == {}
    # the same again changes nothing (a re-ingest is idempotent)
    same = ingest_file(engine, path)
    assert same.readjusted == {} and same.written == 0


def test_two_loads_of_a_split_file_at_once_readjust_the_history_once(engine, tmp_path, monkeypatch):
    """Two loads of one file with a 2:1 split, both validated (and the factor found) before either
    writes: the factor is found again where the bars are written, under the bar-writing lock, so
    the second load finds the seam already one series and scales nothing (before: both scaled the
    history, by 0.25 in all, and the split day read as a +100 % return)."""
    import threading

    from qpo.store import market_data

    _history(engine)
    before = _dump(engine)
    path = tmp_path / "split.csv"
    _bars(path, [["2026-12-04", "AAPL", 63.0, 64.0, 62.5, 63.5, 63.5, 1e6, 0.0, 2.0]])
    both_validated = threading.Barrier(2, timeout=60)
    write = market_data.upsert_bars_readjusting

    def after_both(*args, **kwargs):
        both_validated.wait()
        return write(*args, **kwargs)

    monkeypatch.setattr(market_data, "upsert_bars_readjusting", after_both)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(ingest_file(engine, path))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 2 and all(r.ok for r in results)
    assert sorted((r.readjusted.get("AAPL", 1.0), r.written) for r in results) == [(0.5, 1), (1.0, 0)]
    after = _dump(engine)
    assert after.loc[:"2026-12-03", "AAPL"].to_numpy() == pytest.approx(before["AAPL"].to_numpy() * 0.5, rel=1e-12)
    assert after["AAPL"].pct_change(fill_method=None).loc["2026-12-04"] == pytest.approx(63.5 * 2 / STORED_CLOSE - 1)


def test_bars_on_a_date_no_other_stored_ticker_has_are_a_warning(engine, tmp_path, capsys):
    """NVDA's file holds a bar on Saturday 2026-11-28, inside the store's calendar (AAPL and MSFT,
    business days): loaded, with a warning naming it (before: "passed all expectations", and every
    pipeline then failed "missing values" for the other tickers on that date). A new day after the
    store's last one is no such date."""
    from qpo.cli import main
    from qpo.store._market_seam import OFF_CALENDAR

    _history(engine)
    path = tmp_path / "nvda.csv"
    _bars(path, [[d, "NVDA", 100.0 + i, 100.0 + i, 100.0 + i, 100.0 + i, 100.0 + i, 1e6, 0.0, 1.0]
                 for i, d in enumerate(["2026-11-27", "2026-11-28", "2026-11-30", "2026-12-04"])])
    result = ingest_file(engine, path)
    assert result.ok and result.written == 4
    (odd,) = [w for w in result.report.warnings if w.check == OFF_CALENDAR]
    assert odd.unexpected_count == 1 and odd.examples == [{"ticker": "NVDA", "date": "2026-11-28"}]
    again = tmp_path / "nvda2.csv"
    _bars(again, [["2026-12-07", "NVDA", 104.0, 104.0, 104.0, 104.0, 104.0, 1e6, 0.0, 1.0]])
    assert main(["data", "ingest", str(again)]) == 0
    assert OFF_CALENDAR not in capsys.readouterr().out
    _bars(again, [["2026-11-29", "NVDA", 101.5, 101.5, 101.5, 101.5, 101.5, 1e6, 0.0, 1.0]])
    assert main(["data", "ingest", str(again)]) == 0
    assert f"warning    {OFF_CALENDAR}" in capsys.readouterr().out


def test_a_file_meeting_stored_bars_of_different_last_dates_is_no_missing_bar(engine, tmp_path):
    """AAPL's last stored bar is 2026-12-03, MSFT's 2026-12-02 (its 3 Dec removed): a file of 4 Dec
    for both meets the store on two dates; each ticker's seam is its own two bars, not a calendar
    (before the review: 'missing bars against the last stored bar' refused the load)."""
    from qpo.store.market_data import remove_bars

    _history(engine)
    remove_bars(engine, ["MSFT"], "2026-12-03")
    path = tmp_path / "day.csv"
    _one_day(path, 126.0, 301.0)
    result = ingest_file(engine, path)
    assert result.ok and result.written == 2, result.report.summary()
