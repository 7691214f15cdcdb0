"""The calendar of a panel: how many periods make a year, inferred from its dates, and whether an
as-of date lies within them.

Every annual figure (volatility x sqrt(P), mean x P, Sharpe, VaR horizons) needs P, the number of
periods a year. It is a property of the data, not a constant: US equities trade about 252 days a
year, a crypto panel has a price every calendar day (365), weekly and monthly panels 52 and 12.
:func:`infer_frequency` reads it from the dates:

* the spacing of consecutive dates (their median, in days) tells daily (a median of 1 day) from
  weekly, monthly, quarterly, half-yearly and annual data; intraday data (under half a day) and
  data every second to fourth day are refused (annualising them as daily would be wrong);
* daily data with prices on weekends (more than 10 % of its dates on a Saturday or Sunday) is
  calendar-daily (365); without, business-daily (252);
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
    ("fortnightly", 26, 13.0, 15.0),
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
    names = {252: "business-daily", 365: "daily", 52: "weekly", 26: "fortnightly", 12: "monthly", 4: "quarterly",
             2: "half-yearly", 1: "annual"}
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
    if median <= 1.5:
        weekend = float(np.mean(dates.day_of_week >= 5))
        if weekend > _WEEKEND_SHARE:
            return Frequency("daily", 365)
        return Frequency("business-daily", BUSINESS_DAYS_PER_YEAR)
    for name, p, lo, hi in _SPACINGS:
        if lo <= median <= hi:
            return Frequency(name, p)
    raise DataError(f"the dates are {median:.1f} days apart (median), which is not daily, weekly, monthly, "
                    f"quarterly or annual data; pass periods_per_year to say how many periods make a year")


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
