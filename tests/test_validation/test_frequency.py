"""Validation at the data's own frequency: a monthly panel's moves are "one-month" moves, and its
implausible-jump limit is widened for the longer period (x sqrt(21 trading days), capped at x 2:
|log return| 2.0 by default), so a real crash month is a warning to review, not an error, while a
data error (a price 100 times too large) is still an error. Daily panels are checked as before."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.validation.suites import MAX_PERIOD_FACTOR, period_limits


@pytest.fixture(scope="module")
def monthly(sp500_clean) -> pd.DataFrame:
    """The bundled panel at month ends, 2000-2022 (20 names)."""
    return sp500_clean.resample("ME").last()


def _by_check(report):
    return {f.check: f for f in report.failures + report.warnings}


def test_period_limits_by_frequency():
    days = pd.bdate_range("2020-01-01", periods=300)
    assert period_limits(days, 1.0) == ("business-daily", "one-day", 1.0)
    assert period_limits(pd.date_range("2020-01-01", periods=300), 1.0) == ("daily", "one-day", 1.0)
    assert period_limits(pd.date_range("2000-01-31", periods=60, freq="ME"), 1.0) == ("monthly", "one-month", 2.0)
    name, word, limit = period_limits(pd.date_range("2020-01-03", periods=60, freq="W-FRI"), 1.0)
    assert (name, word) == ("weekly", "one-week") and limit == pytest.approx(min(math.sqrt(252 / 52), 2.0))
    assert period_limits(pd.date_range("2000-03-31", periods=40, freq="QE"), 0.5) == ("quarterly", "one-quarter", 1.0)
    assert MAX_PERIOD_FACTOR == 2.0
    assert period_limits(pd.DatetimeIndex(["2020-01-01", "2020-01-02"]), 1.0)[1] == "one-day"  # too few: as daily


def test_a_real_30_percent_month_is_a_one_month_warning_not_an_error(monthly):
    """LLY rose 31.2 % in June 2000 (month-end closes): with a 25 % review threshold it is a warning
    that says "month", and the data passes."""
    report = qpo.validate_prices(monthly, review_abs_return=0.25)
    assert report.success and not report.failures
    (warning,) = report.warnings
    assert warning.check == "large one-month moves to review (|return| > 25 %)"
    rows = {(e["ticker"], e["date"]): e["simple_return"] for e in qpo.validate_prices(
        monthly[["LLY"]], review_abs_return=0.25).warnings[0].examples}
    assert rows[("LLY", "2000-06-30")] == pytest.approx(0.31199, abs=1e-4)
    assert "one-day" not in str(report) and "month" in str(report)
    assert report.parameters["frequency"] == "monthly" and report.parameters["period_max_abs_log_return"] == 2.0


def test_a_crash_month_beyond_the_daily_limit_is_a_warning_on_monthly_prices(monthly):
    """AIG's month-end close fell from about $21.5 (August 2008) to $3.33 (September 2008): -84 %,
    |log return| 1.86. On daily prices that is an implausible jump (an error, > 1.0); as one month
    it is a real move to review."""
    px = monthly.loc["2007-01-31":"2009-12-31", ["KO", "JNJ"]].copy()
    before, after = px.index < "2008-09-30", px.index >= "2008-09-30"
    px.loc[before, "AIG"] = np.linspace(60.0, 21.5, before.sum())  # a steady slide to August 2008
    px.loc[after, "AIG"] = np.linspace(3.33, 1.5, after.sum())
    report = qpo.validate_prices(px)
    assert report.success, str(report)
    (warning,) = report.warnings
    assert warning.check == "large one-month moves to review (|return| > 40 %)"
    assert [(e["ticker"], e["date"]) for e in warning.examples] == [("AIG", "2008-09-30")]
    assert warning.examples[0]["simple_return"] == pytest.approx(3.33 / 21.5 - 1)  # -84.5 %
    daily = px.copy()
    daily.index = pd.bdate_range("2020-01-01", periods=len(px))  # the same prices read as days: an error
    bad = qpo.validate_prices(daily)
    assert not bad.success and bad.failed_checks == ["implausible one-day jumps (|log return| > 1)"]


def test_a_price_100_times_too_large_is_still_an_error_monthly(monthly):
    px = monthly[["KO", "PEP"]].copy()
    px.iloc[100, 0] *= 100
    report = qpo.validate_prices(px)
    assert not report.success
    assert report.failed_checks == ["implausible one-month jumps (|log return| > 2)"]
    assert _by_check(report)["implausible one-month jumps (|log return| > 2)"].unexpected_count == 2  # up, then down


def test_daily_panels_keep_their_limits_and_words(sp500_clean):
    report = qpo.validate_prices(sp500_clean.iloc[-300:])
    assert "frequency" not in report.parameters
    assert {c for c in report.checks if "jumps" in c or "moves" in c} == {
        "implausible one-day jumps (|log return| > 1)", "large one-day moves to review (|return| > 40 %)"}
