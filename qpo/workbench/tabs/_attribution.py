"""The History tab's attribution (:mod:`qpo.workbench.tabs.history`): Brinson-Fachler by sector over
a period, against the equal-weighted portfolio of the names priced on every day of it.

The benchmark cannot be the portfolio's stored one: that is an index (the S&P 500, or a ticker's
closes), and the prices hold no index constituents nor their weights. So it is the names the book's
prices (the store's market data, else the bundled panel) price on every day of the period, each at
the same weight; a name without a price on some day of the period (listed later, delisted, a gap) is
left out, and the note says how many and which."""
from __future__ import annotations

import datetime as dt
import html

import pandas as pd

#: how many left-out names the note lists before "and n more"
LEFT_OUT_SHOWN = 5
#: where the prices came from, as the note says it (``board.prices_origin``)
ORIGINS = {"store": "the store's market data", "bundled": "the bundled S&amp;P 500 panel"}
BENCHMARK_NOTE = (
    "<b>Benchmark</b>: the <b>equal-weighted</b> portfolio of the {n} names of {origin} priced on every day of the "
    "period (each at 1/{n}, grouped by GICS sector){left}: not the S&amp;P 500 index, nor the portfolio's stored "
    "benchmark, indexes whose constituents and weights the prices do not hold. The portfolio's weights are those of its "
    "ledger at the close of the period's first day (cash is a 'Cash' sector that earns nothing); both are held "
    "at these weights, rebalanced daily, and the daily effects are Carino-linked, so allocation + selection + "
    "interaction add up to the active return.")


def equal_weighted(prices: pd.DataFrame, first: pd.Timestamp, stop: pd.Timestamp) -> tuple[pd.Series, list[str]]:
    """The benchmark of the period from ``first`` to ``stop`` (price dates): each name of ``prices``
    with a close on every date of it at 1/n, and the names left out (a close missing on some date)."""
    from qpo.errors import DataError

    window = prices.loc[first:stop]
    full = window.notna().all()
    names = [str(t) for t in full.index[full.to_numpy(dtype=bool)]]
    left = [str(t) for t in full.index[~full.to_numpy(dtype=bool)]]
    if not names:
        raise DataError(f"no name has a price on every day from {first.date()} to {stop.date()}: no benchmark for "
                        "this period; choose another")
    return pd.Series(1.0 / len(names), index=names), left


def benchmark_note(n: int, left: list[str], origin: str | None) -> str:
    """The note on the benchmark (HTML): how many names, from which prices, which were left out."""
    said = ""
    if left:
        shown = ", ".join(html.escape(t) for t in left[:LEFT_OUT_SHOWN])
        more = len(left) - LEFT_OUT_SHOWN
        said = (f"; {len(left)} name{'s' if len(left) != 1 else ''} without a price on every day of the period "
                f"{'are' if len(left) != 1 else 'is'} left out ({shown}{f' and {more} more' if more > 0 else ''})")
    where = ORIGINS.get(origin or "", "the book's prices")
    return BENCHMARK_NOTE.format(n=n, origin=where, left=said)


def attribute(prices: pd.DataFrame, shares: pd.DataFrame, values: pd.Series, sectors, start: dt.date | None,
              end: dt.date | None) -> tuple[pd.DataFrame, tuple[pd.Timestamp, pd.Timestamp], list[str]]:
    """Brinson-Fachler over the price dates from ``start`` to ``end`` (each moved to the last price
    date on or before it; the start no earlier than the ledger's first valued day), the portfolio
    held as on that first day (``shares`` and ``values``: the ledger's, by price date), against
    :func:`equal_weighted`: (the table, the window's first and last dates, the names left out)."""
    from qpo.data import prices_to_returns
    from qpo.errors import DataError, InvalidValueError
    from qpo.risk import brinson_fachler

    if values.empty:
        raise DataError("no attribution: the portfolio has no value from its ledger (see above)")
    if start is None or end is None:
        raise InvalidValueError("choose both dates of the attribution period")
    dates = prices.index
    last = dates[dates <= pd.Timestamp(end)]
    if last.empty or last[-1] <= values.index[0]:
        raise InvalidValueError(f"the period must end after the ledger's first valued day, "
                                f"{values.index[0].date()}; it ends on {end}")
    stop = last[-1]
    on_or_before = dates[dates <= pd.Timestamp(start)]
    first = max(on_or_before[-1] if len(on_or_before) else dates[0], values.index[0])
    if first >= stop:
        raise InvalidValueError(f"the period's start ({start}) must be before its end ({end}), on price dates")
    held = shares.loc[first]
    held = held[held.abs() > 1e-9]
    if held.empty:
        raise DataError(f"the portfolio held no shares at the close of {first.date()}: nothing to attribute")
    unpriced = [str(t) for t in held.index if prices.loc[first:stop, t].isna().any()]
    if unpriced:
        raise DataError(f"the held {', '.join(unpriced)} {'has' if len(unpriced) == 1 else 'have'} no price on some "
                        f"days from {first.date()} to {stop.date()}: choose another period")
    weights = held * prices.loc[first, held.index] / values.loc[first]
    bench, left = equal_weighted(prices, first, stop)
    names = list(dict.fromkeys([*bench.index, *held.index]))
    returns = prices_to_returns(prices.loc[first:stop, names])
    table = brinson_fachler(weights, bench, returns, sectors)
    return table, (first, stop), left
