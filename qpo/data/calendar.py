"""The calendar of a panel: how many periods make a year, inferred from its dates, and whether an
as-of date lies within them.

Every annual figure (volatility x sqrt(P), mean x P, Sharpe, VaR horizons) needs P, the number of
periods a year. It is a property of the data, not a constant: US equities trade about 252 days a
year, a crypto panel has a price every calendar day (365), weekly and monthly panels 52 and 12.
:func:`infer_frequency` reads it from the dates:

* the spacing of consecutive dates (their median, in days) tells daily (a median of 1 day) from
  weekly, monthly, quarterly, half-yearly and annual data; intraday data (under half a day) and
  data every second to fourth day are refused (annualising them as daily would be wrong);
* daily data is told apart by the days of the week it uses (a day counts when it holds at least
  half as many dates as the busiest): all seven is calendar-daily (365, crypto), six a six-day
  week (313), five or fewer business-daily (252), whichever five they are (a Sunday-to-Thursday
  market, or Monday-to-Friday closes stamped in UTC that fall on the day before); a window too
  short to hold two weeks falls back to the share of dates on a weekend (over 10 %: 365);
* semi-monthly data (the 15th and the month's end, 24 a year) is told from fortnightly data (every
  14 days, 26) by how many dates a year it holds;
* dates that come in runs (a few consecutive periods, then a gap of at least 20 of them, three
  times or more, the gaps holding most of the span) are refused: that is no one frequency, and
  most often dates read the wrong way round (1 February 2010 as 2 January);
* dates of two frequencies (a stretch of :data:`MIXED_RUN` or more consecutive gaps outside the
  inferred frequency's spacing: weekly history, then daily prices) are refused: annualised as one,
  the other stretch would be read at the wrong frequency;
* dates spaced irregularly (a median spacing that is none of these) are refused: pass
  ``periods_per_year`` instead of guessing.

Data without dates (an integer index) cannot say: the business-daily convention is assumed and
the :class:`Frequency` says so (``source="assumed"``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from qpo.errors import DataError, quoted

BUSINESS_DAYS_PER_YEAR = 252

#: (name, periods a year, smallest and largest median spacing in days)
_SPACINGS: tuple[tuple[str, int, float, float], ...] = (
    ("weekly", 52, 5.0, 8.0),
    ("fortnightly", 26, 13.0, 17.0),
    ("monthly", 12, 27.0, 32.0),
    ("quarterly", 4, 88.0, 93.0),
    ("half-yearly", 2, 178.0, 185.0),
    ("annual", 1, 360.0, 367.0),
)
_WEEKEND_SHARE = 0.10


@dataclass(frozen=True)
class Frequency:
    """How often a panel is observed. ``source``: ``"inferred"`` from its dates, ``"given"`` by
    the caller, or ``"assumed"`` (no dates to read: the business-daily convention)."""

    name: str
    periods_per_year: int
    source: str = "inferred"

    def describe(self) -> str:
        how = {"inferred": "inferred from the dates", "given": "as given",
               "assumed": "assumed: the data has no dates"}[self.source]
        return f"{self.name}, {self.periods_per_year} periods a year ({how})"


def _given(periods_per_year) -> Frequency:
    if isinstance(periods_per_year, bool) or not isinstance(periods_per_year, (int, np.integer)) or periods_per_year <= 0:
        raise DataError(f"periods_per_year must be a positive whole number (252 business days, 365 calendar "
                        f"days, 52 weeks, 12 months), got {quoted(periods_per_year)}")
    names = {252: "business-daily", 365: "daily", 313: "six-day", 52: "weekly", 26: "fortnightly",
             24: "semi-monthly", 12: "monthly", 4: "quarterly", 2: "half-yearly", 1: "annual"}
    p = int(periods_per_year)
    return Frequency(names.get(p, f"{p} a year"), p, "given")


def infer_frequency(index, periods_per_year: int | None = None) -> Frequency:
    """The frequency of data observed on ``index`` (a panel's dates); ``periods_per_year`` given
    overrides the inference. Raises :class:`~qpo.errors.DataError` when dated data is too short
    (fewer than 3 dates) or too irregular to tell."""
    if periods_per_year is not None:
        return _given(periods_per_year)
    if not isinstance(index, pd.DatetimeIndex):
        return Frequency("business-daily", BUSINESS_DAYS_PER_YEAR, "assumed")
    dates = index.dropna().unique().sort_values()
    if len(dates) < 3:
        raise DataError(f"{len(dates)} dates cannot tell how often the data is observed; pass periods_per_year "
                        f"(252 business days, 365 calendar days, 52 weeks, 12 months)")
    gaps = np.diff(dates.to_numpy().astype("datetime64[s]").astype(np.int64)) / 86_400.0
    median = float(np.median(gaps))
    if median < 0.5:
        raise DataError(f"the dates are {median * 24:.1f} hours apart (median): intraday data, whose annual figures "
                        "depend on the trading hours; resample it to one price a day (the close), or pass "
                        "periods_per_year to say how many periods make a year")
    if 1.5 < median < _SPACINGS[0][2]:
        days = dates.to_numpy().astype("datetime64[D]")
        if float(np.median(np.busday_count(days[:-1], days[1:]))) <= 1.0:  # a weekend in a short window
            return Frequency("business-daily", BUSINESS_DAYS_PER_YEAR)
        raise DataError(f"the dates are {median:.1f} days apart (median): not every day nor every week (every "
                        "second or third day would be annualised as daily, wrongly); pass periods_per_year to say "
                        "how many periods make a year")
    _refuse_runs(dates, gaps, median)
    if median <= 1.5:
        return _refuse_mixed(dates, gaps, _daily(dates))
    for name, p, lo, hi in _SPACINGS:
        if lo <= median <= hi:
            if name == "fortnightly":
                return _refuse_mixed(dates, gaps, _fortnightly_or_semimonthly(gaps))
            return _refuse_mixed(dates, gaps, Frequency(name, p))
    raise DataError(f"the dates are {median:.1f} days apart (median), which is not daily, weekly, monthly, "
                    f"quarterly or annual data; pass periods_per_year to say how many periods make a year")


#: the spacings (days) of consecutive dates each frequency allows: weekends, holidays and closures
#: (a daily gap up to 5 days: Hurricane Sandy's), a weekly date moved by a holiday, months of 28-31 days
_ALLOWED_GAPS = {365: (0.5, 3.5), 313: (0.5, 3.5), BUSINESS_DAYS_PER_YEAR: (0.5, 5.5), 52: (3.0, 11.0),
                 26: (9.0, 21.0), 24: (9.0, 21.0), 12: (20.0, 40.0), 4: (75.0, 105.0), 2: (160.0, 200.0),
                 1: (330.0, 400.0)}
#: consecutive gaps whose median outside the allowed spacing makes a stretch of another frequency
#: (one long gap, a vendor's missing month or a market closure, moves no median of 8)
MIXED_RUN = 8


def _refuse_mixed(dates: pd.DatetimeIndex, gaps: np.ndarray, frequency: Frequency) -> Frequency:
    """``frequency``, unless the dates hold a stretch of another spacing: :data:`MIXED_RUN`
    consecutive gaps whose median lies outside the frequency's allowed spacing (weekly history,
    then daily prices; or daily prices inside weekly ones, whose Monday gaps of 3 days are allowed
    weekly but whose median is 1). Annualised at one frequency, the other stretch's returns would
    be read wrongly (weekly returns as daily: a volatility of 22.8 % for 15.9 %)."""
    lo, hi = _ALLOWED_GAPS[frequency.periods_per_year]
    if len(gaps) < MIXED_RUN:
        return frequency
    medians = np.median(np.lib.stride_tricks.sliding_window_view(gaps, MIXED_RUN), axis=1)
    off = (medians < lo) | (medians > hi)
    if not off.any():
        return frequency
    first = int(np.flatnonzero(off)[0])
    after = np.flatnonzero(~off[first:])
    last = first + (int(after[0]) if len(after) else len(off) - first) - 1 + MIXED_RUN - 1
    typical = float(np.median(gaps[first:last + 1]))
    other = np.flatnonzero((gaps[first:last + 1] < lo) if typical < lo else (gaps[first:last + 1] > hi))
    first, last = first + int(other[0]), first + int(other[-1])  # the stretch from its first gap of the other kind
    raise DataError(f"the dates change spacing: mostly {frequency.name} (median {float(np.median(gaps)):g} days apart), "
                    f"but the {last - first + 1} gaps from {dates[first].date()} to {dates[last + 1].date()} are about "
                    f"{typical:g} days apart: two frequencies in one panel cannot be annualised as one (the other "
                    "stretch's returns would be read at the wrong frequency); resample the prices to one frequency "
                    "(e.g. prices.resample('W-FRI').last()), keep the part of one frequency, or pass periods_per_year")


def _daily(dates: pd.DatetimeIndex) -> Frequency:
    """Daily data: business-daily (252), a six-day week (313) or calendar-daily (365), by the days of
    the week in use."""
    span_days = (dates[-1] - dates[0]) / pd.Timedelta(days=1)
    if span_days < 14:  # not two whole weeks: which weekdays are missing cannot be told
        weekend = float(np.mean(dates.day_of_week >= 5))
        if weekend > _WEEKEND_SHARE:
            return Frequency("daily", 365)
        return Frequency("business-daily", BUSINESS_DAYS_PER_YEAR)
    per_day = np.bincount(np.asarray(dates.day_of_week), minlength=7)
    in_use = int(np.sum(per_day >= 0.5 * per_day.max()))
    if in_use >= 7:
        return Frequency("daily", 365)
    if in_use == 6:
        return Frequency("six-day", 313)
    return Frequency("business-daily", BUSINESS_DAYS_PER_YEAR)


def _fortnightly_or_semimonthly(gaps: np.ndarray) -> Frequency:
    """Dates 13-17 days apart: every 14 days (26 a year) or twice a month (24), by their count a year."""
    per_year = len(gaps) * 365.25 / float(gaps.sum())
    if abs(per_year - 24.0) < abs(per_year - 26.09):
        return Frequency("semi-monthly", 24)
    return Frequency("fortnightly", 26)


def _long_gaps(gaps: np.ndarray, median: float) -> np.ndarray | None:
    """Which gaps break the dates into runs (see the module), or None when they do not."""
    long = gaps > max(20.0 * median, 20.0)
    if int(long.sum()) < 3 or float(gaps[long].sum()) < 0.5 * float(gaps.sum()):
        return None
    return long


def comes_in_runs(values) -> bool:
    """True when ``values`` (dates, any order) come in runs separated by long gaps (see the module)."""
    dates = pd.DatetimeIndex(values).dropna().unique().sort_values()
    if len(dates) < 3:
        return False
    gaps = np.diff(dates.to_numpy().astype("datetime64[s]").astype(np.int64)) / 86_400.0
    return _long_gaps(gaps, float(np.median(gaps))) is not None


def _refuse_runs(dates: pd.DatetimeIndex, gaps: np.ndarray, median: float) -> None:
    """Refuse dates in runs separated by long gaps (see the module)."""
    long = _long_gaps(gaps, median)
    if long is None:
        return
    at = int(np.flatnonzero(long)[0])
    raise DataError(f"the dates come in runs {median:g} day(s) apart with {int(long.sum())} gaps of "
                    f"{float(np.min(gaps[long])):g}-{float(np.max(gaps[long])):g} days between them (the first from "
                    f"{dates[at].date()} to {dates[at + 1].date()}): that is no one frequency; dates read the wrong way "
                    "round (day and month swapped) look like this. Check the dates, or pass periods_per_year")


def day_end(when: pd.Timestamp) -> pd.Timestamp:
    """The last instant an inclusive ``end`` covers: a date (midnight) covers its whole day, so a
    close stamped 16:00 (or 21:00 in UTC) on the end date is kept; a time given is kept as given."""
    return when + pd.Timedelta(days=1) - pd.Timedelta(1, "ns") if when == when.normalize() else when


def periods_per_year(index, given: int | None = None) -> int:
    """Shortcut: ``infer_frequency(index, given).periods_per_year``."""
    return infer_frequency(index, given).periods_per_year


def check_as_of(index: pd.DatetimeIndex, as_of=None) -> pd.Timestamp:
    """The as-of date of a run on data dated ``index``: ``as_of`` (default: the last date), refused
    with a :class:`~qpo.errors.DataError` when it lies before the first date or after the last."""
    if not isinstance(index, pd.DatetimeIndex) or len(index) == 0:
        raise DataError("the data has no dates (a date index is needed to report as of a date)")
    first, last = index.min(), index.max()
    if as_of is None:
        return last
    try:
        when = pd.Timestamp(as_of)
    except (TypeError, ValueError) as exc:
        raise DataError(f"as_of {quoted(as_of)} is not a date (use YYYY-MM-DD)") from exc
    if pd.isna(when):
        raise DataError(f"as_of {quoted(as_of)} is not a date (use YYYY-MM-DD)")
    if when.tzinfo is not None and index.tz is None:
        when = when.tz_localize(None)
    if not first <= when <= last:
        raise DataError(f"as_of {when.date()} is outside the data, which runs from {first.date()} to {last.date()}")
    return when
