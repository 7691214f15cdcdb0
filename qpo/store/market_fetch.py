"""Bringing the store's bars up to date from a market data vendor (Alpha Vantage), incrementally,
each symbol's bars validated against the stored ones before they are written."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from qpo.errors import QpoError
from qpo.store._market_seam import _with_seam, history_factors, off_calendar, validate_against_store
from qpo.store.market_data import last_bar_dates, prices_panel, upsert_bars_readjusting

__all__ = ["FetchResult", "fetch_alphavantage"]


@dataclass
class FetchResult:
    """One symbol's fetch: the output size asked for, bars received and rows written, or the error."""

    symbol: str
    outputsize: str | None = None
    received: int = 0
    written: int = 0
    first: dt.date | None = None
    last: dt.date | None = None
    error: str | None = None
    note: str | None = None  # why the output size is what it is


def _readjusted(engine: Engine, bars: pd.DataFrame, symbol: str, held_last: dt.date) -> bool:
    """Whether the bars' adjusted closes on dates the store already holds differ from the stored
    ones (a dividend or split since re-adjusted the history: only a full fetch keeps it whole)."""
    stored = prices_panel(engine, [symbol], bars["date"].min(), held_last)[symbol].dropna()
    fetched = bars.set_index("date")["adjusted_close"]
    common = stored.index.intersection(fetched.index)
    if len(common) == 0:
        return True  # no overlap: a compact answer would leave a gap
    ratio = fetched.loc[common].to_numpy() / stored.loc[common].to_numpy()
    return bool(np.max(np.abs(ratio - 1.0)) > 1e-6)


def fetch_alphavantage(engine: Engine, symbols: Sequence[str], *, client=None, full: bool = False,
                       today: dt.date | None = None, log: Callable[[str], None] | None = None) -> list[FetchResult]:
    """Bring the store's bars of ``symbols`` up to date from Alpha Vantage, incrementally: a symbol
    with fewer than 100 trading days missing gets a ``compact`` answer (the last 100 days), one
    with none held or more missing (or ``full``) the ``full`` history; when the compact answer's
    adjusted closes disagree with the stored ones (a dividend or split re-adjusted the history),
    the full history is fetched instead. Each symbol's bars are validated (an error-severity
    failure writes nothing for it) and upserted in one transaction (source ``"alphavantage"``).

    An unknown symbol is reported in its result and the others go on; a rate limit, an
    information answer or an unreachable server stops the fetch (the symbols done stay written;
    the rest carry the error)."""
    from qpo.data.alphavantage import AlphaVantageClient, AlphaVantageRequestError, output_size
    from qpo.validation import validate_ohlcv

    log = log or (lambda m: None)
    client = client or AlphaVantageClient(log=log)
    held = last_bar_dates(engine, symbols)
    results: list[FetchResult] = []
    stop: str | None = None
    for symbol in symbols:
        res = FetchResult(symbol)
        results.append(res)
        if stop is not None:
            res.error = f"not fetched: {stop}"
            continue
        last = held.get(symbol)
        res.outputsize = "full" if full else output_size(last, today)
        res.note = ("--full asked" if full else "nothing held" if last is None else
                    f"last bar {last}: {'fewer' if res.outputsize == 'compact' else 'at least'} than 100 trading "
                    "days missing")
        try:
            bars = client.daily_adjusted(symbol, res.outputsize)
            if res.outputsize == "compact" and last is not None and _readjusted(engine, bars, symbol, last):
                log(f"{symbol}: the history was re-adjusted (a dividend or split) or would leave a gap: fetching "
                    "the full history")
                res.outputsize, res.note = "full", "history re-adjusted since the last fetch, or a gap"
                bars = client.daily_adjusted(symbol, "full")
        except AlphaVantageRequestError as exc:
            res.error = str(exc)
            continue
        except QpoError as exc:  # rate limit, information, unreachable: the next calls would fail alike
            res.error = stop = str(exc)
            continue
        res.received = len(bars)
        report = validate_ohlcv(bars)
        readjust = history_factors(engine, bars) if report.success else {}
        if report.success:  # where the new bars meet the stored ones (a compact answer's first day)
            report = _with_seam(report, validate_against_store(engine, bars, "ohlcv", readjust))
        if not report.success:
            res.error = f"{symbol}: the bars failed validation, nothing written: {report.summary()}"
            continue
        odd = off_calendar(engine, bars, "ohlcv")
        if odd is not None:
            report.warnings.append(odd)
            report.checks[odd.check] = odd.severity
        if report.warnings:
            log(f"{symbol}: warning: {report.warning_summary()}")
        res.written = upsert_bars_readjusting(engine, bars, source="alphavantage")[0]
        res.first, res.last = bars["date"].min().date(), bars["date"].max().date()
        log(f"{symbol}: {res.outputsize}, {res.received} bars {res.first} to {res.last}, {res.written} rows "
            "inserted or changed")
    return results
