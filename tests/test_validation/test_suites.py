"""Each defect injected into real data, exactly once, must be caught by the check named for it;
the clean real data must pass."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.errors import DataValidationError
from tests.conftest import shared_file

WINDOW = slice("2015-01-01", "2019-12-31")


@pytest.fixture(scope="module")
def panel(sp500_clean):
    return sp500_clean.loc[WINDOW].copy()


def test_clean_real_panel_passes(sp500_clean):
    report = qpo.validate_prices(sp500_clean)
    assert report.success, str(report)
    assert report.failures == []
    assert report.n_tickers == 20 and report.n_rows == sp500_clean.size
    assert report.n_expectations >= 8
    assert Path(report.data_docs).exists() and report.data_docs.endswith(".html")


def test_full_bundled_panel_has_a_real_vendor_defect(sp500):
    """Before April 1990 RRC's price is back-filled at 3.322 for 69 days, then 'falls' 67 %:
    the kind of error real feeds have. Validation finds both."""
    report = qpo.validate_prices(sp500)
    assert not report.success
    stale = next(f for f in report.failures if f.check.startswith("stale prices"))
    assert {"ticker": "RRC", "date": "1990-01-02", "stale_days": 68} in stale.examples
    jump = next(f for f in report.failures if f.check.startswith("implausible one-day jumps"))
    assert jump.unexpected_count == 1
    assert jump.examples[0]["ticker"] == "RRC" and jump.examples[0]["date"] == "1990-04-10"


def _only(report, prefix):
    assert not report.success
    assert [f.check.split(" (")[0] for f in report.failures] == [prefix], str(report)
    return report.failures[0]


def test_missing_value(panel):
    bad = panel.copy()
    bad.loc["2017-06-15", "KO"] = np.nan
    f = _only(qpo.validate_prices(bad), "missing values")
    assert f.examples == [{"ticker": "KO", "date": "2017-06-15", "price": None}]


def test_leading_nans_are_not_missing(panel):
    ipo = panel.copy()
    ipo.loc[:"2016-01-01", "AMD"] = np.nan  # not listed yet
    assert qpo.validate_prices(ipo).success


def test_non_positive_price(panel):
    bad = panel.copy()
    bad.loc["2018-03-01", "PFE"] = 0.0
    report = qpo.validate_prices(bad)
    checks = [f.check for f in report.failures]
    assert checks[0].startswith("non-positive prices")
    assert report.failures[0].examples == [{"ticker": "PFE", "date": "2018-03-01", "price": 0.0}]
    # a zero price also breaks the returns around it: no other check may claim the row as missing
    assert not any(c.startswith("missing") for c in checks)


def test_duplicate_date(panel):
    bad = pd.concat([panel, panel.loc[["2019-05-02"]]]).sort_index(kind="stable")
    f = _only(qpo.validate_prices(bad), "duplicate dates")
    assert f.unexpected_count == 2 * 20  # both copies, every ticker
    assert {e["date"] for e in f.examples} == {"2019-05-02"}


def test_unsorted_dates(panel):
    rows = list(panel.index)
    i = rows.index(pd.Timestamp("2016-08-10"))
    rows[i], rows[i + 1] = rows[i + 1], rows[i]
    bad = panel.loc[rows]
    f = _only(qpo.validate_prices(bad), "unsorted dates")
    assert f.unexpected_count == 20
    assert {e["date"] for e in f.examples} == {"2016-08-10"}


def test_stale_prices(panel):
    bad = panel.copy()
    days = bad.loc["2018-01-02":].index[:15]
    bad.loc[days, "JNJ"] = bad.loc[days[0], "JNJ"]  # unchanged for 14 days
    f = _only(qpo.validate_prices(bad), "stale prices")
    assert f.unexpected_count == 15 and {e["ticker"] for e in f.examples} == {"JNJ"}
    assert f.examples[0] == {"ticker": "JNJ", "date": "2018-01-02", "stale_days": 14}
    # the threshold is a parameter, counted in days unchanged: 14 are allowed at 14, not at 13
    assert qpo.validate_prices(bad, max_stale_days=14).success
    assert not qpo.validate_prices(bad, max_stale_days=13).success


def test_stale_prices_in_date_sorted_bars(goog_bars, sp500_clean):
    """Bars sorted by date then ticker interleave the tickers: runs are followed per ticker."""
    ko = sp500_clean.loc["2008-01-01":"2008-12-31", "KO"]
    other = goog_bars[goog_bars["date"].isin(ko.index)].copy()
    mine = other.assign(ticker="KO", open=ko.values, high=ko.values, low=ko.values, close=ko.values,
                        adjusted_close=ko.values)
    mine.iloc[100:131, 2:7] = float(ko.iloc[100])  # 31 equal prices: unchanged for 30 days
    bars = pd.concat([other, mine]).sort_values(["date", "ticker"], kind="stable").reset_index(drop=True)
    f = _only(qpo.validate_ohlcv(bars), "stale prices")
    assert f.unexpected_count == 31 and {e["ticker"] for e in f.examples} == {"KO"}


def test_implausible_jump(panel):
    bad = panel.copy()
    bad.loc["2019-02-01", "WMT"] *= 4.0  # a fat-finger price: +300 % then -75 %
    f = _only(qpo.validate_prices(bad), "implausible one-day jumps")
    assert [(e["ticker"], e["date"]) for e in f.examples] == [("WMT", "2019-02-01"), ("WMT", "2019-02-04")]


def test_wrong_type(panel):
    frame = panel.iloc[:50, :3].copy()
    frame["BAC"] = frame["BAC"].astype(object)
    frame.iloc[10, frame.columns.get_loc("BAC")] = "27,33"  # a decimal comma: the cell is text
    report = qpo.validate_prices(frame)
    wrong = next(f for f in report.failures if f.check.startswith("wrong type"))
    assert wrong.unexpected_count == 1
    assert wrong.examples == [{"ticker": "BAC", "date": str(frame.index[10].date()), "not_a_number": "price: 27,33"}]
    # the unusable cell is also a missing price, and nothing else is blamed
    assert sorted(f.check.split(" (")[0] for f in report.failures) == ["missing values", "wrong type"]


def test_bad_limits_and_frames_are_clear_errors(panel):
    from qpo.errors import DataError, InvalidValueError

    with pytest.raises(InvalidValueError, match="max_stale_days must be a whole number of days >= 1, got 0"):
        qpo.validate_prices(panel, max_stale_days=0)
    with pytest.raises(InvalidValueError, match="max_abs_log_return must be a number > 0"):
        qpo.validate_prices(panel, max_abs_log_return=-0.5)
    with pytest.raises(DataError, match=r"duplicate ticker columns \['KO'\]"):
        qpo.validate_prices(pd.concat([panel[["KO"]], panel[["KO"]]], axis=1))
    with pytest.raises(DataError, match="empty"):
        qpo.validate_prices(panel.iloc[:0])


def test_missing_tickers(panel):
    report = qpo.validate_prices(panel.drop(columns=["XOM"]), expected_tickers=list(panel.columns))
    f = _only(report, "missing tickers")
    assert f.expectation == "expect_column_distinct_values_to_contain_set"


def test_raise_if_failed_carries_the_report(panel):
    bad = panel.copy()
    bad.iloc[5, 0] = -1.0
    with pytest.raises(DataValidationError, match="non-positive prices") as err:
        qpo.validate_prices(bad).raise_if_failed()
    assert not err.value.report.success


# ------------------------------------------------------------------ OHLCV bars
def test_clean_real_bars_pass(goog_bars):
    report = qpo.validate_ohlcv(goog_bars)
    assert report.success, str(report)
    assert report.n_rows == 2148 and report.n_expectations >= 20


@pytest.mark.parametrize("column, value, check", [
    ("high", 0.5, "high < low"),  # the high below the low
    ("open", 10_000.0, "open above high"),
    ("close", 1.0, "close below low"),
])
def test_bar_range_defects(goog_bars, column, value, check):
    bad = goog_bars.copy()
    i = 700
    if check == "high < low":
        bad.loc[i, "high"] = bad.loc[i, "low"] * value
    else:
        bad.loc[i, column] = value
    report = qpo.validate_ohlcv(bad)
    assert check in report.failed_checks, str(report)
    f = next(f for f in report.failures if f.check == check)
    assert f.unexpected_count == 1 and f.examples[0]["date"] == str(bad.loc[i, "date"].date())


def test_bars_with_text_in_two_columns(goog_bars):
    bad = goog_bars.copy()
    bad["open"] = bad["open"].astype(object)
    bad["volume"] = bad["volume"].astype(object)
    bad.loc[42, ["open", "volume"]] = ["n.a.", "1,234"]
    f = next(f for f in qpo.validate_ohlcv(bad).failures if f.check.startswith("wrong type"))
    assert f.unexpected_count == 1 and f.examples[0]["not_a_number"] == "open: n.a.; volume: 1,234"


def test_bars_without_a_ticker_are_reported_not_crashed(tmp_path, goog_bars):
    path = tmp_path / "bars.csv"
    bad = goog_bars.copy()
    bad.loc[7, "ticker"] = None
    bad.to_csv(path, index=False)
    report = qpo.validate_file(path)
    assert "missing values (ticker)" in report.failed_checks


def test_bars_missing_and_negative_volume(goog_bars):
    bad = goog_bars.copy()
    bad.loc[100, "close"] = np.nan
    bad.loc[200, "volume"] = -5
    report = qpo.validate_ohlcv(bad)
    assert "missing values (close)" in report.failed_checks
    assert "negative volume" in report.failed_checks


def test_missed_split_adjustment(goog_bars):
    """A 2-for-1 split that the vendor recorded in close and split_coefficient but not in the
    adjusted series: the adjusted close halves in one day (a -69 % log move, under the jump
    threshold), which only the consistency check sees."""
    bad = goog_bars.copy()
    i = 1000
    bad.loc[i:, ["open", "high", "low", "close"]] /= 2
    bad.loc[i, "split_coefficient"] = 2.0
    bad.loc[i:, "adjusted_close"] /= 2  # should have been left alone: the split is in split_coefficient
    report = qpo.validate_ohlcv(bad)
    f = _only(report, "adjusted close inconsistent with close, splits and dividends")
    assert f.unexpected_count == 1 and f.examples[0]["date"] == str(bad.loc[i, "date"].date())
    assert f.examples[0]["adjustment_gap"] == pytest.approx(-np.log(2), abs=1e-9)
    # done right (raw prices halve, the adjusted series does not move), the same split passes
    good = goog_bars.copy()
    good.loc[i:, ["open", "high", "low", "close"]] /= 2
    good.loc[i, "split_coefficient"] = 2.0
    assert qpo.validate_ohlcv(good).success


def test_bars_duplicate_and_unsorted(goog_bars):
    dup = pd.concat([goog_bars, goog_bars.iloc[[300]]]).sort_values("date", kind="stable").reset_index(drop=True)
    assert "duplicate dates" in qpo.validate_ohlcv(dup).failed_checks
    shuffled = goog_bars.iloc[list(range(0, 400)) + [401, 400] + list(range(402, len(goog_bars)))]
    report = qpo.validate_ohlcv(shuffled.reset_index(drop=True))
    assert report.failed_checks == ["unsorted dates"], str(report)


# ------------------------------------------------------------------ command line
def test_cli_validate_exit_codes(tmp_path, panel):
    good = tmp_path / "good.csv"
    panel.reset_index().to_csv(good, index=False)
    ok = subprocess.run([sys.executable, "-m", "qpo.cli", "validate", str(good), "--json"],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.strip().splitlines()[-1])["success"] is True

    bad_frame = panel.copy()
    bad_frame.loc["2017-06-15", "KO"] = np.nan
    bad = tmp_path / "bad.csv"
    bad_frame.reset_index().to_csv(bad, index=False)
    fail = subprocess.run([sys.executable, "-m", "qpo.cli", "validate", str(bad)],
                          capture_output=True, text=True, timeout=300)
    assert fail.returncode == 1, fail.stderr
    assert "FAILED" in fail.stdout and "missing values" in fail.stdout and "KO" in fail.stdout
    assert "Data Docs:" in fail.stdout

    usage = subprocess.run([sys.executable, "-m", "qpo.cli", "validate", str(good), "--max-stale-days", "0"],
                           capture_output=True, text=True, timeout=300)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    assert "max_stale_days must be a whole number of days >= 1, got 0" in usage.stderr


def test_shared_alpha_vantage_bars_find_real_defects():
    """The vendor file beside the project holds defects of its own: a stale TTWO price, an
    implausible one-day PWR fall, and TRMB's adjusted close doubling on 2007-02-23 while its
    close did not move (a split adjusted the wrong way)."""
    path = shared_file("sp500_daily_adjusted.parquet")
    bars = qpo.load_ohlcv(path, tickers=["AAPL", "PWR", "TTWO", "TRMB"])
    report = qpo.validate_ohlcv(bars)
    assert report.n_tickers == 4 and report.n_rows > 20_000
    by_check = {f.check.split(" (")[0]: f for f in report.failures}
    assert {e["ticker"] for e in by_check["stale prices"].examples} == {"TTWO"}
    assert {e["ticker"] for e in by_check["implausible one-day jumps"].examples} == {"PWR"}
    adj = by_check["adjusted close inconsistent with close, splits and dividends"]
    assert [(e["ticker"], e["date"]) for e in adj.examples] == [("TRMB", "2007-02-23")]


def test_a_bar_missing_inside_a_tickers_history_is_an_error_as_an_empty_panel_cell_is(goog_bars):
    """Two tickers of real bars, one of them missing three days the other has (as the vendor file's
    WELL, SPGI, VIAC, KIM and RHI do): the bars' suite fails "missing bars", naming the ticker and
    the bar after each gap, as the price panel they make fails "missing values" (before: the bars
    PASSED and the panel did not: the same data, opposite verdicts, and prices_to_returns then
    dropped those dates from every ticker's returns). A ticker listed later, or delisted earlier,
    is no gap."""
    from qpo.data.loaders import ohlcv_to_prices
    from qpo.validation import validate_ohlcv, validate_prices

    first = goog_bars.iloc[:300].copy()
    other = first.assign(ticker="GOOX")
    gappy = other.drop(index=other.index[[100, 200, 201]])
    bars = pd.concat([first, gappy], ignore_index=True)
    report = validate_ohlcv(bars)
    assert not report.success
    (missing,) = [f for f in report.failures if f.check.startswith("missing bars")]
    assert [(e["ticker"], e["date"], e["missing_bars"]) for e in missing.examples] == [
        ("GOOX", str(first["date"].iloc[101].date()), 1.0), ("GOOX", str(first["date"].iloc[202].date()), 2.0)]
    assert not validate_prices(ohlcv_to_prices(bars)).success
    # listed later and delisted earlier: no bar missing inside its own history
    listed = pd.concat([first, other.iloc[50:250]], ignore_index=True)
    assert validate_ohlcv(listed).success, validate_ohlcv(listed).summary()
