"""Severities: an ERROR fails the data, a WARNING is reported (text, JSON, Data Docs) and fails
nothing. Large one-day moves below the implausible limit are warnings: real crashes must neither
stop a run nor pass unseen."""
import json
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import numpy as np
import pytest

import qpo
from qpo.errors import InvalidValueError
from qpo.validation import Severity
from tests.conftest import shared_file

LARGE = "large one-day moves to review"
# the bundled panel's days beyond +-40 % since 2000: Apple's profit warning, AMD's results rally
REAL_LARGE_MOVES = [("AAPL", "2000-09-29", -0.5185), ("AMD", "2016-04-22", 0.5229)]


def _moves(f):
    return [(e["ticker"], e["date"], round(e["simple_return"], 4)) for e in f.examples]


def _page_text(path):
    text = Path(path).read_text(encoding="utf-8")
    text = re.sub(r"<(script|style).*?</\1>", " ", text, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", text)))


@pytest.fixture(scope="module")
def clean_report(sp500_clean):
    return qpo.validate_prices(sp500_clean)


def test_every_check_has_a_severity(clean_report):
    assert len(clean_report.checks) == clean_report.n_expectations
    assert all(isinstance(s, Severity) for s in clean_report.checks.values())
    warnings = [c for c, s in clean_report.checks.items() if s is Severity.WARNING]
    assert warnings == [f"{LARGE} (|return| > 40 %)"]  # every other check is an error, as before


def test_real_large_moves_are_warnings_that_pass(clean_report):
    report = clean_report
    assert report.success and report.failures == [] and report.failed_checks == []
    assert report.raise_if_failed() is report  # a warning never raises
    (w,) = report.warnings
    assert w.severity is Severity.WARNING and report.warning_checks == [w.check]
    assert w.columns == ["simple_return"] and w.unexpected_count == 2
    assert _moves(w) == REAL_LARGE_MOVES

    # the text
    text = str(report)
    assert text.startswith("prices validation: PASSED, 1 warning(s)")
    assert "WARNING (reported, does not stop the run): large one-day moves" in text
    assert "ticker=AAPL, date=2000-09-29" in text and "ticker=AMD, date=2016-04-22" in text
    assert "1 warning(s) to review: large one-day moves to review (|return| > 40 %): 2 row(s)" in report.summary()

    # the JSON (and the dict form): severities as words
    data = json.loads(report.to_json())
    assert data == report.to_dict()
    assert data["success"] is True and data["failures"] == []
    assert [(w["severity"], w["check"], w["unexpected_count"]) for w in data["warnings"]] == [
        ("warning", f"{LARGE} (|return| > 40 %)", 2)]
    assert data["checks"][f"{LARGE} (|return| > 40 %)"] == "warning"
    assert data["checks"]["missing values (price)"] == "error"

    # the Data Docs page: the run succeeded, the warning and its rows are listed under the check
    page = _page_text(report.data_docs)
    assert "Status: Succeeded" in page and "Unsuccessful Expectations 1" in page
    assert f"{LARGE} (|return| > 40 %) [warning: reported, does not stop the run]" in page
    assert "AAPL 2000-09-29" in page and "AMD 2016-04-22" in page
    assert "missing values (price) [error: stops the run]" in page


def test_the_review_limit_is_a_parameter(sp500_clean):
    assert qpo.validate_prices(sp500_clean, review_abs_return=0.55).warnings == []
    lower = qpo.validate_prices(sp500_clean.loc["2008-01-01":"2009-12-31"], review_abs_return=0.3)
    assert lower.success  # the 2008 banks: BAC's +31 % and +35 % rebounds are warnings at 30 %
    assert sorted((d, t) for t, d, _ in _moves(lower.warnings[0])) == [("2008-10-13", "UNH"), ("2009-01-21", "BAC"),
                                                                        ("2009-04-09", "BAC")]
    with pytest.raises(InvalidValueError, match="review_abs_return must be a positive finite number"):
        qpo.validate_prices(sp500_clean, review_abs_return=-0.4)


def test_an_implausible_jump_is_an_error_not_also_a_warning(sp500_clean):
    bad = sp500_clean.loc["2015-01-01":"2019-12-31"].copy()
    bad.loc["2019-02-01", "WMT"] *= 4.0  # +300 % then -75 %: beyond the implausible limit both ways
    report = qpo.validate_prices(bad)
    assert not report.success and report.failed_checks == ["implausible one-day jumps (|log return| > 1)"]
    # each bad row is reported once, at its worst severity: the warning holds only AMD's real rally
    assert [(t, d) for t, d, _ in _moves(report.warnings[0])] == [("AMD", "2016-04-22")]
    assert report.failures[0].severity is Severity.ERROR


def test_errors_and_warnings_together(sp500_clean):
    bad = sp500_clean.loc["2000-01-01":"2001-12-31"].copy()  # holds AAPL's 2000-09-29 fall
    bad.loc["2001-06-15", "KO"] = np.nan
    report = qpo.validate_prices(bad)
    assert not report.success
    assert [f.check for f in report.failures] == ["missing values (price)"]
    assert [(t, d) for t, d, _ in _moves(report.warnings[0])] == [("AAPL", "2000-09-29")]
    assert report.summary() == ("prices data failed 1 of 10 expectations: missing values (price) (KO 1 from "
                                "2001-06-15); 1 warning(s) to "
                                f"review: {LARGE} (|return| > 40 %): 1 row(s)")
    assert "FAILED, 1 warning(s)" in str(report)


def test_bars_get_the_warning_too(goog_bars):
    """A 2-for-1 split missed in the adjusted series halves it in one day: the adjustment check's
    error, and a -50 % day to review."""
    bad = goog_bars.copy()
    bad.loc[1000:, ["open", "high", "low", "close"]] /= 2
    bad.loc[1000, "split_coefficient"] = 2.0
    bad.loc[1000:, "adjusted_close"] /= 2
    report = qpo.validate_ohlcv(bad)
    assert [f.check.split(" (")[0] for f in report.failures] == [
        "adjusted close inconsistent with close, splits and dividends"]
    assert report.warning_checks == [f"{LARGE} (|return| > 40 %)"]
    assert report.warnings[0].examples[0]["simple_return"] == pytest.approx(-0.5, abs=0.03)


def test_cli_validate_prints_warnings_and_exits_0(tmp_path, sp500_clean):
    path = tmp_path / "crash.csv"
    sp500_clean.loc["2000-06-01":"2000-12-29", ["AAPL", "KO"]].reset_index().to_csv(path, index=False)
    proc = subprocess.run([sys.executable, "-m", "qpo.cli", "validate", str(path), "--review-abs-return", "0.45"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "PASSED, 1 warning(s)" in proc.stdout and "(|return| > 45 %)" in proc.stdout
    assert "ticker=AAPL, date=2000-09-29" in proc.stdout and "Data Docs:" in proc.stdout


def test_real_crashes_in_vendor_bars_are_warnings():
    """2008 and March 2020 in the vendor file beside the project: AIG -61 % on 2008-09-15, State
    Street -59 % on 2009-01-20, Occidental -50 % on 2020-03-09. Below the implausible limit, they
    passed unseen before; now each is a warning, and none is an error."""
    path = shared_file("sp500_daily_adjusted.parquet")
    bars = qpo.load_ohlcv(path, tickers=["AIG", "STT", "OXY"], start="2008-01-01", end="2020-12-31")
    report = qpo.validate_ohlcv(bars)
    (w,) = report.warnings
    flagged = {(e["ticker"], e["date"]): e["simple_return"] for e in w.examples}
    crashes = {("AIG", "2008-09-15"): -0.608, ("STT", "2009-01-20"): -0.590, ("OXY", "2020-03-09"): -0.505}
    for day, move in crashes.items():
        assert flagged[day] == pytest.approx(move, abs=0.001)
    blamed = {(e.get("ticker"), e.get("date")) for f in report.failures for e in f.examples}
    assert not blamed & set(crashes)
