"""The price panel a notebook or pipeline reads, by the name of its source.

``"store"`` (:data:`STORE_SOURCE`, the pipelines' default) is the store's market data (what
``qpo data seed|ingest|fetch`` left there), so a newer day ingested is the day a scheduled run
sees; on a fresh install (no store, or a store without market data) it is the bundled panel,
as :func:`qpo.store.market_data.book_prices` reads it. A bundled source's name (``"sp500"``) or
the path of a CSV/Parquet file reads that instead (:func:`qpo.load_prices`).
"""
from __future__ import annotations

from typing import NamedTuple

import pandas as pd

#: the price source naming the store's market data (the bundled panel on a fresh install)
STORE_SOURCE = "store"
#: the bundled panel whose index is the S&P 500
_BUNDLED_WITH_INDEX = "sp500"


class NotebookPrices(NamedTuple):
    """A price panel, where it came from (``"store"``, ``"bundled"``, or the source's name), and
    the S&P 500 index over it when one covers every date of the panel (else None)."""

    prices: pd.DataFrame
    origin: str
    benchmark: pd.Series | None


def _store_engine():
    """The configured store when it exists (read-only use: nothing is created), else None."""
    from qpo.store import connect
    from qpo.store.db import store_exists

    return connect(create=False) if store_exists() else None


def notebook_prices(source: str, *, start=None, end=None, tickers=None, common: bool = True) -> NotebookPrices:
    """The prices of ``source`` from ``start`` to ``end`` (inclusive dates, None: the data's own),
    of ``tickers`` (None: every stock of the source), with where they came from and the S&P 500
    index that covers them (see the module). The store's prices without an ``end`` end on the last
    date that prices every current name (:func:`common_end`; ``common=False``: on its last date)."""
    from qpo.data import load_prices
    from qpo.store.market_data import benchmark_for, book_benchmark, book_prices

    if source == STORE_SOURCE:
        engine = _store_engine()
        prices, origin = book_prices(engine, tickers, start=start, end=end)
        if origin == "store":
            prices = carry_holes(prices)
        if end is None and common:
            prices = common_end(prices)
        index = book_benchmark(engine if origin == "store" else None, start=start, end=end)
        return NotebookPrices(prices, origin, benchmark_for(index, prices))
    prices = load_prices(source, start=start, end=end, tickers=tickers)
    if source == _BUNDLED_WITH_INDEX:
        index = load_prices("sp500_index", start=start, end=end)["SP500"]
        return NotebookPrices(prices, source, benchmark_for(index, prices))
    return NotebookPrices(prices, str(source), None)


#: a ticker whose last price is this many dates (or fewer) before the panel's last one is current
#: (a day's bars that came in for only some names); one that ends earlier has left the data
RAGGED_END_DATES = 5


def common_end(prices: pd.DataFrame) -> pd.DataFrame:
    """``prices`` up to the last date that prices every current ticker (one whose last price is at
    most :data:`RAGGED_END_DATES` dates before the panel's end): a day's bars ingested for only some
    names leaves the others with a gap at the end that the backtest refuses and the returns drop.
    A :class:`qpo.errors.DataWarning` names the later dates and the names that have them (pass
    ``history_end`` to choose the end). Unchanged when the end is not ragged."""
    import warnings

    import numpy as np

    from qpo.errors import DataWarning

    if len(prices) < 2 or prices.shape[1] == 0:
        return prices
    seen = prices.notna().to_numpy()
    rows = np.arange(len(prices))
    last = np.where(seen.any(axis=0), np.where(seen, rows[:, None], -1).max(axis=0), -1)
    current = (last >= 0) & (last >= len(prices) - 1 - RAGGED_END_DATES)  # a column without a price is not
    if not current.any():
        return prices
    end = int(last[current].min())
    if end == len(prices) - 1:
        return prices
    ahead = [str(t) for t, k in zip(prices.columns, last, strict=True) if k > end]
    warnings.warn(DataWarning(
        f"the prices' last {len(prices) - 1 - end} date(s), to {prices.index[-1].date()}, price only "
        f"{len(ahead)} of the {int(current.sum())} current names ({', '.join(ahead[:5])}"
        f"{' ...' if len(ahead) > 5 else ''}): the prices end on {prices.index[end].date()}, the last date "
        "that prices them all (ingest the others' bars, or give history_end)"), stacklevel=3)
    return prices.iloc[:end + 1]


def validate_price_source(source, *, start=None):
    """:func:`qpo.validation.validate_source` for a bundled name or a file; for ``"store"`` the
    panel :func:`notebook_prices` reads (the store's bars, or the bundled panel on a fresh
    install) validated as a price panel. Returns the report and the prices (None if it failed)."""
    from qpo.errors import UnknownOptionError
    from qpo.validation import validate_prices, validate_source

    if source != STORE_SOURCE:
        try:
            return validate_source(source, start=start)
        except UnknownOptionError as exc:  # name the store among the valid sources
            raise UnknownOptionError(exc.kind, exc.value, [*exc.valid, STORE_SOURCE]) from None
    import warnings

    from qpo.errors import DataWarning
    from qpo.validation.report import FailedExpectation, Severity

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        prices = notebook_prices(source, start=start, common=False).prices  # every date (an as_of may be the newest)
    report = validate_prices(prices)
    for w in caught:  # holes carried at the last close: to review, in the report and the run's warnings
        if issubclass(w.category, DataWarning) and getattr(w.message, "count", None) is not None:
            report.warnings.append(FailedExpectation(
                check=str(w.message), expectation="carried at the last close", columns=["price"],
                unexpected_count=int(getattr(w.message, "count", 0)), unexpected_percent=None,
                severity=Severity.WARNING))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return report, (prices if report.success else None)


def as_of_outside_the_book(parameter: str, as_of) -> str | None:
    """Why a pipeline that reads the book cannot run as of ``as_of`` (not a date, or outside the
    dates of the book's prices), or None: refused before a run is created, as a data source's is."""
    import re

    import pandas as pd

    from qpo.data import check_as_of
    from qpo.errors import DataError
    from qpo.store import connect
    from qpo.store.market_data import book_dates

    text = str(as_of).strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return f"parameter {parameter}: {as_of!r} is not a date written YYYY-MM-DD"
    first, last = book_dates(connect(create=False))
    try:
        check_as_of(pd.DatetimeIndex([first, last]), text)
    except DataError as exc:
        return f"parameter {parameter}: {exc} (the book's prices)"
    return None


def carry_holes(prices: pd.DataFrame) -> pd.DataFrame:
    """``prices`` with each hole inside a ticker's history of at most :data:`RAGGED_END_DATES`
    dates (days whose bars came in without it, the next ones with it) filled with its last close,
    as the nightly runs carry a held name; a :class:`qpo.errors.DataWarning` names each carried
    ticker, how many dates and from when (ingest its bars). Longer holes stay missing (the
    validation's "missing values" refuses them). Unchanged when there is no such hole."""
    import warnings

    import numpy as np

    from qpo.errors import DataWarning

    values = prices.to_numpy(dtype=float, copy=True)
    if values.size == 0 or not np.isnan(values).any():
        return prices
    n = len(values)
    rows = np.arange(n)[:, None]
    seen = ~np.isnan(values)
    before = np.maximum.accumulate(np.where(seen, rows, -1), axis=0)  # the last priced row so far
    after = np.minimum.accumulate(np.where(seen, rows, n)[::-1], axis=0)[::-1]  # the next priced row
    hole = ~seen & (before >= 0) & (after < n) & (after - before - 1 <= RAGGED_END_DATES)
    if not hole.any():
        return prices
    cols = np.nonzero(hole.any(axis=0))[0]
    values[hole] = values[before[hole], np.nonzero(hole)[1]]
    shown = []
    for j in cols[:5]:
        first = int(np.argmax(hole[:, j]))
        shown.append(f"{prices.columns[j]} {int(hole[:, j].sum())} from {prices.index[first].date()}")
    warning = DataWarning(
        f"{len(cols)} ticker(s) miss bars inside their history, carried at their last close: {', '.join(shown)}"
        f"{' ...' if len(cols) > 5 else ''} (ingest their bars: until then their returns there are 0)")
    warning.count = int(hole.sum())  # type: ignore[attr-defined]  # the prices carried, for a report
    warnings.warn(warning, stacklevel=3)
    return pd.DataFrame(values, index=prices.index, columns=prices.columns)
