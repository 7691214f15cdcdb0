"""A panel's periods a year come from its dates; an as-of date outside them is refused."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qpo.data import check_as_of, infer_frequency, periods_per_year
from qpo.errors import DataError

CASES = [
    (pd.bdate_range("2018-01-01", "2020-12-31"), "business-daily", 252),
    (pd.date_range("2018-01-01", "2020-12-31"), "daily", 365),
    (pd.date_range("2010-01-01", "2020-12-31", freq="W-FRI"), "weekly", 52),
    (pd.date_range("2010-01-01", "2020-12-31", freq="ME"), "monthly", 12),
    (pd.date_range("2010-01-01", "2020-12-31", freq="BME"), "monthly", 12),
    (pd.date_range("2000-01-01", "2020-12-31", freq="QE"), "quarterly", 4),
    (pd.date_range("1990-01-01", "2020-12-31", freq="YE"), "annual", 1),
]


@pytest.mark.parametrize(("index", "name", "p"), CASES, ids=[c[1] + str(i) for i, c in enumerate(CASES)])
def test_frequency_is_read_from_the_dates(index, name, p):
    f = infer_frequency(index)
    assert (f.name, f.periods_per_year, f.source) == (name, p, "inferred")
    assert periods_per_year(index) == p


def test_business_days_with_holidays_and_gaps_stay_business_daily(sp500):
    # the real panel has holidays, the 2001 and 2012 closures and vendor gaps
    assert infer_frequency(sp500.index).periods_per_year == 252
    thinned = sp500.index[np.random.default_rng(0).random(len(sp500.index)) > 0.3]
    assert infer_frequency(thinned).periods_per_year == 252


def test_a_crypto_panel_with_a_missing_weekend_is_still_calendar_daily():
    days = pd.date_range("2021-01-01", "2021-12-31")
    days = days[~((days >= "2021-06-05") & (days <= "2021-06-06"))]
    assert infer_frequency(days).periods_per_year == 365


def test_given_overrides_and_undated_assumes():
    f = infer_frequency(pd.bdate_range("2020-01-01", periods=50), 365)
    assert (f.periods_per_year, f.source) == (365, "given")
    f = infer_frequency(pd.RangeIndex(100))
    assert (f.periods_per_year, f.source) == (252, "assumed")
    assert "no dates" in f.describe()


@pytest.mark.parametrize("bad", [0, -12, 12.5, True, "252"])
def test_a_bad_periods_per_year_is_refused(bad):
    with pytest.raises(DataError, match="positive whole number"):
        infer_frequency(pd.bdate_range("2020-01-01", periods=10), bad)


def test_irregular_or_too_short_dates_are_refused():
    with pytest.raises(DataError, match="pass periods_per_year"):
        infer_frequency(pd.DatetimeIndex(["2020-01-01", "2020-03-15", "2020-06-01", "2020-08-10"]))
    with pytest.raises(DataError, match="2 dates"):
        infer_frequency(pd.DatetimeIndex(["2020-01-01", "2020-01-02"]))


@settings(max_examples=60, deadline=None)
@given(step=st.sampled_from([("D", 365), ("B", 252), ("W-WED", 52), ("MS", 12), ("QS", 4)]),
       n=st.integers(24, 400), start=st.dates(min_value=pd.Timestamp("1990-01-01").date(),
                                               max_value=pd.Timestamp("2030-01-01").date()),
       unit=st.sampled_from(["ns", "us", "s"]))
def test_frequency_whatever_the_start_length_and_resolution(step, n, start, unit):
    freq, p = step
    index = pd.date_range(start, periods=n, freq=freq).as_unit(unit)
    assert infer_frequency(index).periods_per_year == p
    assert infer_frequency(index[::-1]).periods_per_year == p  # unsorted input


def test_as_of_inside_the_data_is_kept_and_outside_refused():
    index = pd.bdate_range("2020-01-01", "2020-12-31")
    assert check_as_of(index) == index[-1]
    assert check_as_of(index, "2020-06-06") == pd.Timestamp("2020-06-06")  # a Saturday inside the data
    with pytest.raises(DataError, match="outside the data, which runs from 2020-01-01 to 2020-12-31"):
        check_as_of(index, "2021-01-04")
    with pytest.raises(DataError, match="outside the data"):
        check_as_of(index, "1970-01-01")
    with pytest.raises(DataError, match="not a date"):
        check_as_of(index, "yesterday-ish")
    with pytest.raises(DataError, match="no dates"):
        check_as_of(pd.RangeIndex(5), "2020-01-01")


@pytest.mark.parametrize(("index", "says"), [
    (pd.date_range("2020-01-01", periods=200, freq="2D"), "2.0 days apart"),
    (pd.date_range("2020-01-01", periods=200, freq="4D"), "4.0 days apart"),
    (pd.bdate_range("2020-01-01", periods=400)[::2], "days apart"),  # every second business day: not 252 a year
    (pd.date_range("2020-01-01", periods=500, freq="h"), r"1.0 hours apart \(median\): intraday"),
    (pd.date_range("2020-01-01", periods=500, freq="min"), "intraday"),
])
def test_spacings_between_daily_and_weekly_or_under_a_day_are_refused(index, says):
    """Each was annualised as daily (365 or 252) before: a wrong volatility that looks right."""
    with pytest.raises(DataError, match=says):
        infer_frequency(index)
    assert infer_frequency(index, 126).periods_per_year == 126  # said by the caller: taken


def test_a_short_business_daily_window_over_a_weekend_is_business_daily():
    """Friday, Monday, Tuesday: calendar gaps of 3 and 1 days (a median of 2) are one business day each."""
    assert infer_frequency(pd.DatetimeIndex(["2024-03-01", "2024-03-04", "2024-03-05"])).periods_per_year == 252


def test_any_five_day_week_is_business_daily_and_seven_is_calendar_daily():
    """A Sunday-to-Thursday market, and Monday-to-Friday closes stamped in UTC that land on the day
    before (every Monday a Sunday), were 365 a year: a volatility sqrt(365/252) too high."""
    week = pd.bdate_range("2018-01-01", "2020-12-31")
    sun_thu = pd.DatetimeIndex([d for d in pd.date_range("2018-01-01", "2020-12-31") if d.day_of_week not in (4, 5)])
    assert infer_frequency(sun_thu).periods_per_year == 252
    assert infer_frequency(week - pd.Timedelta(hours=9)).periods_per_year == 252  # Tokyo's midnight in UTC
    six = pd.DatetimeIndex([d for d in pd.date_range("2018-01-01", "2020-12-31") if d.day_of_week != 4])
    assert (infer_frequency(six).name, infer_frequency(six).periods_per_year) == ("six-day", 313)
    crypto = pd.date_range("2018-01-01", "2020-12-31")
    thinned = crypto[np.random.default_rng(1).random(len(crypto)) > 0.25]  # a quarter of the days missing
    assert infer_frequency(thinned).periods_per_year == 365
    assert infer_frequency(week[(week < "2018-06-01") | (week > "2020-06-01")]).periods_per_year == 252  # one hole


@pytest.mark.parametrize(("freq", "name", "p"), [("SME", "semi-monthly", 24), ("SMS", "semi-monthly", 24),
                                                 ("2W", "fortnightly", 26), ("14D", "fortnightly", 26)])
def test_twice_a_month_is_told_from_every_second_week(freq, name, p):
    f = infer_frequency(pd.date_range("2010-01-01", "2020-12-31", freq=freq))
    assert (f.name, f.periods_per_year) == (name, p)


def test_dates_in_runs_with_long_gaps_are_refused():
    """Month-start dates read month-first (1 to 12 January of each year): daily spacing, 12 dates a
    year; annualised as daily it gave a volatility of 98 % for 18 %."""
    misread = pd.DatetimeIndex(sorted(pd.Timestamp(year=d.year, month=1, day=d.month)
                                      for d in pd.date_range("2010-01-01", "2020-12-01", freq="MS")))
    with pytest.raises(DataError, match=r"come in runs 1 day\(s\) apart with 10 gaps of 354-355 days .* "
                                        "2010-01-12 to 2011-01-01"):
        infer_frequency(misread)
    assert infer_frequency(misread, 12).periods_per_year == 12  # said by the caller: taken


def test_two_frequencies_in_one_panel_are_refused_not_annualised_as_one():
    """Four years of Friday closes then two years of business days: the median says daily, and the
    weekly returns annualised at 252 gave a volatility of 22.8 % for 15.9 %; 60 month-ends then 59
    business days read as weekly (the median landing on the one 5-day gap at the join). Refused,
    naming the stretch; a lone long gap (a market closure, a vendor's missing month) is not one."""
    import qpo

    weeks = pd.date_range("2015-01-02", "2018-12-28", freq="W-FRI")
    days = pd.bdate_range("2019-01-02", "2020-12-31")
    with pytest.raises(DataError, match="mostly business-daily .*the 208 gaps from 2015-01-02 to 2018-12-28 are about "
                                        "7 days apart: two frequencies"):
        infer_frequency(weeks.append(days))
    ends = pd.date_range("2010-01-31", periods=60, freq="BME")
    with pytest.raises(DataError, match="mostly weekly .*the 58 gaps .* are about 30.5 days apart"):
        infer_frequency(ends.append(pd.bdate_range("2015-01-05", periods=59)))
    # mostly weekly, then a year and a half of business days (whose Monday gaps of 3 days a week allows)
    longer = pd.date_range("2015-01-02", "2022-12-30", freq="W-FRI").append(pd.bdate_range("2023-01-02", "2024-06-28"))
    with pytest.raises(DataError, match="mostly weekly .*gaps from 2023-01-02 to 2024-06-28 are about 1 days apart"):
        infer_frequency(longer)
    rng = np.random.default_rng(0)
    prices = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.01, (len(weeks) + len(days), 2)), axis=0)),
                          index=weeks.append(days), columns=["A", "B"])
    with pytest.raises(DataError, match="two frequencies in one panel"):
        qpo.risk_report(pd.Series([1.0, 0.0], index=["A", "B"]), qpo.prices_to_returns(prices))
    assert infer_frequency(weeks.append(days), 252).periods_per_year == 252  # given: the caller's word
    closures = days.delete(slice(100, 130)).delete(slice(300, 320))  # two missing months, one gap each
    assert infer_frequency(closures).periods_per_year == 252
    assert infer_frequency(weeks.delete(slice(50, 54))).periods_per_year == 52  # a missing month of Fridays
