"""A recorded split that the prices do not show: its own check, injected into real bars.

A split of ratio r recorded on a bar whose close did not move by about 1/r, while the adjusted close
jumps by r instead, is consistent with the adjustment rule (the adjusted close follows
close * r / previous close), and a 2-for-1 jump (+69 % in log) stays under the implausible limit:
before this check such a bar passed validation."""
import numpy as np
import pytest

import qpo
from qpo.validation import MAX_SPLIT_SHORTFALL, Severity
from tests.conftest import shared_file

SPLIT = "recorded split not shown by the close"
I = 1000  # a bar in the middle of GOOG's history (2008-02)


def _errors(report):
    return [f.check.split(" (")[0] for f in report.failures]


def _unshown_split(bars, ratio):
    """The vendor books a split of ``ratio`` on bar I, the close does not move, and the adjusted close
    (back-adjusted history unchanged) jumps by the ratio from bar I on."""
    bad = bars.copy()
    bad.loc[I, "split_coefficient"] = ratio
    bad.loc[I:, "adjusted_close"] *= ratio
    return bad


@pytest.mark.parametrize("ratio", [2.0, 1.5, 0.5], ids=["2-for-1", "3-for-2", "1-for-2"])
def test_a_split_the_close_does_not_show(goog_bars, ratio):
    bad = _unshown_split(goog_bars, ratio)
    report = qpo.validate_ohlcv(bad)
    assert not report.success
    assert _errors(report) == [SPLIT], str(report)  # no other check sees it: the record is self-consistent
    f = report.failures[0]
    assert f.severity is Severity.ERROR and f.columns == ["split_shortfall"]
    assert f.unexpected_count == 1
    assert f.examples == [{"split_shortfall": pytest.approx(np.log(bad.loc[I, "close"] * ratio / bad.loc[I - 1, "close"])
                                                            / np.log(ratio)),
                           "ticker": "GOOG", "date": str(bad.loc[I, "date"].date())}]
    assert f.examples[0]["split_shortfall"] > MAX_SPLIT_SHORTFALL  # the close moved far less than half-way
    assert report.checks[f.check] is Severity.ERROR


def test_a_split_recorded_with_the_wrong_ratio(goog_bars):
    """A 4-for-1 split in the prices booked as 2-for-1: the adjusted close halves, consistently with
    the record; the close moved by the square of the recorded ratio."""
    bad = goog_bars.copy()
    bad.loc[I:, ["open", "high", "low", "close"]] /= 4
    bad.loc[I, "split_coefficient"] = 2.0
    bad.loc[I:, "adjusted_close"] /= 2
    report = qpo.validate_ohlcv(bad)
    assert _errors(report) == [SPLIT], str(report)
    assert report.failures[0].examples[0]["split_shortfall"] == pytest.approx(-1.0, abs=0.05)


@pytest.mark.parametrize("ratio", [2.0, 1.25, 1 / 3], ids=["2-for-1", "5-for-4", "1-for-3"])
def test_genuine_splits_pass(goog_bars, ratio):
    """Done right (the raw prices move by 1/ratio, the adjusted series is continuous), a split passes,
    reverse splits included."""
    good = goog_bars.copy()
    good.loc[I:, ["open", "high", "low", "close"]] /= ratio
    good.loc[I, "split_coefficient"] = ratio
    report = qpo.validate_ohlcv(good)
    assert report.success and report.failures == [] and report.warnings == [], str(report)


def test_small_ratios_are_not_judged(goog_bars):
    """A 5 % stock dividend booked as a split moves the close less than an ordinary volatile day: whether the
    close showed it cannot be told from one day, so the check leaves ratios within 1/1.25..1.25 alone."""
    assert qpo.validate_ohlcv(_unshown_split(goog_bars, 1.05)).success


def test_split_defect_in_real_vendor_bars():
    """The vendor file beside the project: ANTM (then WellPoint) books a 2-for-1 split on 2002-03-18
    while its close rose 2.5 % and its adjusted close doubled; AAPL's four genuine splits pass."""
    path = shared_file("sp500_daily_adjusted.parquet")
    bars = qpo.load_ohlcv(path, tickers=["AAPL", "ANTM"])
    assert (bars.loc[bars["ticker"] == "AAPL", "split_coefficient"] != 1).sum() >= 4
    report = qpo.validate_ohlcv(bars)
    split = next(f for f in report.failures if f.check.startswith(SPLIT))
    assert [(e["ticker"], e["date"]) for e in split.examples] == [("ANTM", "2002-03-18")]
    adj = [f for f in report.failures if f.check.startswith("adjusted close inconsistent")]
    assert not adj or ("ANTM", "2002-03-18") not in [(e["ticker"], e["date"]) for e in adj[0].examples]
