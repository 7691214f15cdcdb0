"""A backtest's argument checks: the price panel, the benchmark, dates, the rebalance frequency and
the run's numbers. Each returns the checked value or raises a :class:`qpo.QpoError` saying what
was wrong and what is valid."""
from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from qpo._checks import check_confidence, number, whole
from qpo.data.calendar import Frequency, infer_frequency
from qpo.errors import DataError, InvalidValueError, UnknownOptionError

#: calendar rebalance frequencies: the last trading day of each period in the data
FREQUENCIES: dict[str, str | None] = {"D": None, "W": "W", "M": "M", "Q": "Q", "A": "Y"}
#: what to do with a ticker's internal gaps and early ends (see :func:`qpo.backtest`)
GAP_POLICIES = ("raise", "ffill")
_VALID_REBALANCE = [*FREQUENCIES, "<a whole number N of trading days>"]

#: a checked rebalance rule: a calendar frequency of :data:`FREQUENCIES` or every N trading days
Rebalance = str | int


def check_prices(prices: object) -> pd.DataFrame:
    """A dates x tickers DataFrame of positive finite prices (NaN allowed) with sorted unique dates."""
    if not isinstance(prices, pd.DataFrame):
        raise DataError(f"prices must be a pandas DataFrame of prices (dates x tickers), got {type(prices).__name__}")
    if not isinstance(prices.index, pd.DatetimeIndex):
        raise DataError(f"prices must have a DatetimeIndex of dates as rows, got {type(prices.index).__name__}; "
                        "e.g. prices.index = pd.to_datetime(prices.index)")
    if prices.shape[1] == 0 or len(prices) < 3:
        raise DataError(f"prices hold {len(prices)} dates x {prices.shape[1]} tickers; a backtest needs tickers "
                        "and at least 3 dates")
    if prices.columns.has_duplicates:
        raise DataError(f"duplicate tickers in prices: {sorted(map(str, prices.columns[prices.columns.duplicated()]))}")
    if prices.index.has_duplicates:
        dup = prices.index[prices.index.duplicated()]
        raise DataError(f"prices have {len(dup)} duplicate date(s) (first {dup[0].date()}); keep one row per date")
    if not prices.index.is_monotonic_increasing:
        i = int(np.flatnonzero(np.diff(prices.index.asi8) < 0)[0])
        raise DataError(f"prices' dates are not sorted ({prices.index[i + 1].date()} follows "
                        f"{prices.index[i].date()}); sort them: prices.sort_index()")
    non_numeric = [c for c in prices.columns if not pd.api.types.is_numeric_dtype(prices[c])]
    if non_numeric:
        raise DataError(f"prices must be numbers; columns {non_numeric[:10]} are not")
    values = prices.to_numpy(dtype=float)
    bad = np.isinf(values) | (values <= 0)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        cols = prices.columns[bad.any(axis=0)].tolist()
        raise DataError(f"prices must be positive and finite; {int(bad.sum())} value(s) are not, in {cols[:10]} "
                        f"(first: {prices.columns[c]} = {values[r, c]!r} on {prices.index[r].date()}); "
                        "validate them first (qpo.validate_prices) or drop those tickers")
    return prices


def check_date(name: str, v: object) -> pd.Timestamp | None:
    """``v`` as a Timestamp (None stays None)."""
    if v is None:
        return None
    try:
        ts = pd.Timestamp(v)
    except (ValueError, TypeError) as exc:
        raise InvalidValueError(f"{name} must be a date (e.g. '2015-01-01'), got {v!r}") from exc
    if ts is pd.NaT:
        raise InvalidValueError(f"{name} must be a date, got {v!r}")
    return ts


def check_rebalance(rebalance: object) -> Rebalance:
    """A calendar frequency of :data:`FREQUENCIES`, or a whole number N >= 1 of trading days."""
    if isinstance(rebalance, bool):
        raise UnknownOptionError("rebalance frequency", rebalance, _VALID_REBALANCE)
    if isinstance(rebalance, numbers.Integral):
        if rebalance < 1:
            raise InvalidValueError(f"rebalance every N trading days needs N >= 1, got {rebalance}")
        return int(rebalance)
    if isinstance(rebalance, str) and rebalance in FREQUENCIES:
        return rebalance
    raise UnknownOptionError("rebalance frequency", rebalance, _VALID_REBALANCE)


def check_window(window: object) -> int:
    """The estimation window, a whole number of returns (periods of the data) >= 2."""
    return whole("window", window, lo=2, hint="returns, periods of the data (days for daily prices)")


def check_run_args(costs: object, risk_free_rate: object, periods_per_year: object, confidence: object,
                   dates: pd.DatetimeIndex) -> tuple[float, float, Frequency, float]:
    """The cost rate in [0, 1), the risk-free rate, the frequency of the prices observed on ``dates``
    (``periods_per_year`` a whole number >= 1, or None: inferred from the dates) and the confidence."""
    costs_rate, rf = number("costs", costs, lo=0.0, hi=1.0, hi_open=True), number("risk_free_rate", risk_free_rate)
    given = None if periods_per_year is None else whole("periods_per_year", periods_per_year, lo=1)
    return costs_rate, rf, infer_frequency(dates, given), check_confidence(confidence)


def check_benchmark(benchmark: object, dates: pd.DatetimeIndex) -> pd.Series | None:
    """The benchmark's simple returns over ``dates[1:]`` from its prices (None stays None); it must
    have a positive finite price on every one of ``dates``."""
    if benchmark is None:
        return None
    if isinstance(benchmark, pd.DataFrame) and benchmark.shape[1] == 1:
        benchmark = benchmark.iloc[:, 0]
    if not isinstance(benchmark, pd.Series):
        raise DataError(f"benchmark must be a pandas Series of prices (levels) with a DatetimeIndex, or None; got "
                        f"{type(benchmark).__name__}")
    if not isinstance(benchmark.index, pd.DatetimeIndex):
        raise DataError(f"benchmark must have a DatetimeIndex, got {type(benchmark.index).__name__}")
    if benchmark.index.has_duplicates:
        first = benchmark.index[benchmark.index.duplicated()][0]
        raise DataError(f"benchmark has duplicate dates (first {first.date()})")
    b = benchmark.reindex(dates).to_numpy(dtype=float)
    missing = np.isnan(b)
    if missing.any():
        raise DataError(f"benchmark has no price on {int(missing.sum())} of the backtest's {len(dates)} dates "
                        f"({dates[0].date()} to {dates[-1].date()}; first missing: {dates[missing.argmax()].date()}); "
                        "give it a price on every date of the backtest, e.g. "
                        "benchmark.reindex(prices.index).ffill() if you accept stale prices")
    if (b <= 0).any() or np.isinf(b).any():
        raise DataError("benchmark prices must be positive and finite")
    name = benchmark.name if benchmark.name is not None else "benchmark"
    return pd.Series(b[1:] / b[:-1] - 1.0, index=dates[1:], name=str(name))
