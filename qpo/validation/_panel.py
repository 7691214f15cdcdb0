"""The price suite's checks on a wide panel (dates x tickers), vectorised over its cells.

The expectations are the ones the suite declares (:mod:`qpo.validation.suites`) on the panel's
*long view*: one row per ticker and date, ticker by ticker in the panel's own date order, from
each ticker's first to its last price (NaNs before and after mean "not listed", not "missing").
That view is never built: each column of it (``price``, ``step_days``, ``stale_days``,
``log_return``, ``simple_return``, ``not_a_number``) is a dates x tickers array, each check a
boolean mask over it, and each result holds counts, the first :data:`EXAMPLES` offending rows
(in the long view's order: the first tickers first) and, per ticker, how many rows and the first
date, for the first :data:`EXAMPLES` tickers. Results have Great Expectations' ``SUMMARY`` shape
(``unexpected_count``, ``partial_unexpected_index_list``...), so that GX renders them in the Data
Docs like any other validation result.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from qpo.errors import DataError

#: offending rows listed per check, and tickers summarised per check
EXAMPLES = 20
_INDEX_COLUMNS = ["ticker", "date"]


def plain(v: Any) -> Any:
    """A JSON-ready value: dates as ISO strings, numpy scalars as Python values, NaN as None,
    infinities as ``"inf"``/``"-inf"``, long text cut to 200 characters."""
    if v is pd.NaT:
        return None
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        v = pd.Timestamp(v)
        if pd.isna(v):
            return None
        return str(v.date()) if v == v.normalize() else v.isoformat()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        if np.isnan(v):
            return None
        if np.isinf(v):
            return "inf" if v > 0 else "-inf"
    if isinstance(v, str) and len(v) > 200:
        return v[:200] + f"... ({len(v)} characters)"
    return v


class Panel:
    """A wide price panel's long view, column by column, computed on demand."""

    def __init__(self, prices: pd.DataFrame, max_abs_log_return: float) -> None:
        if not isinstance(prices, pd.DataFrame):
            raise DataError(f"prices must be a pandas DataFrame (dates x tickers), got {type(prices).__name__}")
        if prices.shape[1] == 0 or prices.shape[0] == 0:
            raise DataError(f"the price panel is empty (shape {prices.shape})")
        if isinstance(prices.columns, pd.MultiIndex):
            raise DataError(f"the price panel's columns have {prices.columns.nlevels} levels (e.g. "
                            f"{str(prices.columns[0])[:60]}), not one ticker each: a download of several fields? "
                            "validate one, e.g. frame['Adj Close']")
        if prices.columns.has_duplicates:
            dup = sorted({str(c) for c in prices.columns[prices.columns.duplicated()]})
            raise DataError(f"the price panel has duplicate ticker columns {dup}; keep one column per ticker")
        self.max_abs_log_return = max_abs_log_return
        self.tickers = [str(c) for c in prices.columns]
        self.dates = pd.DatetimeIndex(pd.to_datetime(pd.Series(prices.index, dtype="object"), errors="coerce"))
        self.texts: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # column -> rows and texts of cells not a number
        T, N = prices.shape
        numeric = all(pd.api.types.is_numeric_dtype(t) for t in prices.dtypes)
        if numeric:
            if any(isinstance(t, pd.api.extensions.ExtensionDtype) for t in prices.dtypes):  # Float64: pd.NA
                self.price = prices.to_numpy(dtype="float64", na_value=np.nan)
            else:
                self.price = prices.to_numpy(dtype="float64", copy=False)
            present = ~np.isnan(self.price)
        else:
            self.price = np.empty((T, N), dtype="float64")
            present = np.empty((T, N), dtype=bool)
            for j in range(N):
                raw = prices.iloc[:, j]
                num = pd.to_numeric(raw, errors="coerce") if not pd.api.types.is_numeric_dtype(raw) else raw
                self.price[:, j] = num.to_numpy(dtype="float64")
                present[:, j] = raw.notna().to_numpy()
                bad = np.flatnonzero(present[:, j] & np.isnan(self.price[:, j]))
                if len(bad):
                    self.texts[j] = (bad, raw.to_numpy()[bad])
        # the listed range of each ticker: first to last cell that holds anything (all of it when none does)
        any_cell = present.any(axis=0)
        first = np.where(any_cell, present.argmax(axis=0), 0)
        last = np.where(any_cell, T - 1 - present[::-1].argmax(axis=0), T - 1)
        rows = np.arange(T)[:, None]
        self.listed = (rows >= first) & (rows <= last)
        self.n_rows = int((last - first + 1).sum())
        self.valid = np.isfinite(self.price) & (self.price > 0)  # a price returns and runs can be computed from
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    # -- the long view's columns: (values, has a value) ------------------------------------------
    def column(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self._cache:
            if name not in _COLUMNS:
                raise DataError(f"no column {name!r} in a price panel's checks; known: {sorted(_COLUMNS)}")
            self._cache[name] = _COLUMNS[name](self)
        return self._cache[name]

    def forget(self, name: str) -> None:
        self._cache.pop(name, None)

    def _with_previous(self) -> np.ndarray:
        """Cells whose ticker has a row just before (the previous panel row is listed too)."""
        both = np.zeros_like(self.listed)
        both[1:] = self.listed[1:] & self.listed[:-1]
        return both

    def _step_days(self) -> tuple[np.ndarray, np.ndarray]:
        step = np.full(len(self.dates), np.nan)
        d = self.dates.asi8.astype("float64")
        d[np.asarray(self.dates.isna())] = np.nan
        step[1:] = (d[1:] - d[:-1]) / 86_400e9
        has = self._with_previous() & ~np.isnan(step)[:, None]
        return np.broadcast_to(step[:, None], self.listed.shape), has

    def _log_return(self) -> tuple[np.ndarray, np.ndarray]:
        lr = np.full(self.price.shape, np.nan)
        ok = self.valid[1:] & self.valid[:-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            np.log(self.price[1:] / self.price[:-1], out=lr[1:], where=ok)
        return lr, ~np.isnan(lr)

    def _simple_return(self) -> tuple[np.ndarray, np.ndarray]:
        lr, has = self.column("log_return")
        with np.errstate(invalid="ignore"):
            keep = has & (np.abs(lr) <= self.max_abs_log_return)
        sr = np.full(lr.shape, np.nan)
        np.expm1(lr, out=sr, where=keep)
        return sr, keep

    def _stale_days(self) -> tuple[np.ndarray, np.ndarray]:
        """Per cell of a run of identical valid prices, the run's length minus one; 0 elsewhere."""
        T = self.price.shape[0]
        changed = np.ones(self.price.shape, dtype=bool)  # a run starts here
        changed[1:] = ~(self.valid[1:] & self.valid[:-1] & (self.price[1:] == self.price[:-1]))
        idx = np.arange(T, dtype=np.int32)[:, None]
        start = np.maximum.accumulate(np.where(changed, idx, 0), axis=0)
        ends = np.ones(self.price.shape, dtype=bool)  # a run ends here
        ends[:-1] = changed[1:]
        del changed
        end = np.minimum.accumulate(np.where(ends, idx, T)[::-1], axis=0)[::-1]
        del ends
        stale = np.where(self.valid, end - start, 0)
        return stale, self.listed

    def _price(self) -> tuple[np.ndarray, np.ndarray]:
        return self.price, self.listed & ~np.isnan(self.price)

    def _not_a_number(self) -> tuple[np.ndarray, np.ndarray]:
        mask = np.zeros(self.price.shape, dtype=bool)
        for j, (rows, _) in self.texts.items():
            mask[rows, j] = True
        return mask, mask  # the texts are looked up in self.texts

    def value(self, name: str, t: int, j: int) -> Any:
        if name == "not_a_number":
            rows, texts = self.texts[j]
            return plain("price: " + str(texts[int(np.searchsorted(rows, t))]))
        if name in ("date", "ticker"):
            return None
        return plain(self.column(name)[0][t, j])

    # -- results in GX's SUMMARY shape -----------------------------------------------------------
    def result(self, mask: np.ndarray, column: str, *, nonmissing: int | None = None) -> dict[str, Any]:
        """The SUMMARY result of a check whose offending cells are ``mask`` on ``column``."""
        count = int(np.count_nonzero(mask))
        per_ticker = np.count_nonzero(mask, axis=0) if count else np.zeros(len(self.tickers), dtype=int)
        hit = np.flatnonzero(per_ticker)
        rows: list[dict[str, Any]] = []
        for j in hit:
            if len(rows) >= EXAMPLES:
                break
            for t in np.flatnonzero(mask[:, j])[:EXAMPLES - len(rows)]:
                row = {"ticker": plain(self.tickers[j]), "date": plain(self.dates[t])}
                if column not in row:
                    row[column] = self.value(column, int(t), int(j))
                rows.append(row)
        tickers = [{"ticker": plain(self.tickers[j]), "count": int(per_ticker[j]),
                    "first_date": plain(self.dates[int(mask[:, j].argmax())])} for j in hit[:EXAMPLES]]
        elements = self.n_rows
        missing = elements - nonmissing if nonmissing is not None else 0
        base = nonmissing if nonmissing is not None else elements
        out: dict[str, Any] = {
            "element_count": elements, "unexpected_count": count,
            "unexpected_percent": 100.0 * count / base if base else None,
            "partial_unexpected_list": [r.get(column) for r in rows],
            "partial_unexpected_counts": _value_counts([r.get(column) for r in rows]),
            "unexpected_index_column_names": _INDEX_COLUMNS,
            "partial_unexpected_index_list": rows,
            "qpo_tickers": tickers, "qpo_n_tickers": int(len(hit))}
        if nonmissing is not None:
            out.update(missing_count=missing, missing_percent=100.0 * missing / elements if elements else None,
                       unexpected_percent_total=100.0 * count / elements if elements else None,
                       unexpected_percent_nonmissing=out["unexpected_percent"])
        return out


def _value_counts(values: list[Any]) -> list[dict[str, Any]]:
    counts: dict[str, list[Any]] = {}
    for v in values:
        counts.setdefault(repr(v), [v, 0])[1] += 1
    return [{"value": v, "count": n} for v, n in sorted(counts.values(), key=lambda vn: -vn[1])]


def evaluate(panel: Panel, kind: str, kwargs: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Whether the expectation ``kind`` (GX's snake-case type) with ``kwargs`` holds on the panel's
    long view, and its SUMMARY result."""
    column = kwargs.get("column")
    if kind == "expect_column_distinct_values_to_contain_set":
        observed = sorted(set(panel.tickers))
        return set(kwargs["value_set"]) <= set(observed), {"observed_value": observed}
    if kind == "expect_compound_columns_to_be_unique":
        return _verdict(panel.result(_duplicates(panel), "date"))
    if kind == "expect_column_values_to_not_be_null":
        if column == "date":
            mask = panel.listed & np.asarray(panel.dates.isna())[:, None]
        elif column == "ticker":
            mask = np.zeros_like(panel.listed)  # every cell of a panel has its column's ticker
        else:
            mask = panel.listed & ~panel.column(str(column))[1]
        return _verdict(panel.result(mask, str(column)))
    if kind == "expect_column_values_to_be_null":
        return _verdict(panel.result(panel.column(str(column))[1], str(column)))
    if kind == "expect_column_values_to_be_between":
        values, has = panel.column(str(column))
        inside = np.ones(has.shape, dtype=bool)
        lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
        with np.errstate(invalid="ignore"):
            if lo is not None:
                inside &= (values > lo) if kwargs.get("strict_min") else (values >= lo)
            if hi is not None:
                inside &= (values < hi) if kwargs.get("strict_max") else (values <= hi)
        mask = has & ~inside
        del inside
        result = panel.result(mask, str(column), nonmissing=int(np.count_nonzero(has)))
        return _verdict(result)
    raise DataError(f"the price panel checks know no expectation {kind!r}")


def _verdict(result: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    return result["unexpected_count"] == 0, result


def _duplicates(panel: Panel) -> np.ndarray:
    """Cells whose (ticker, date) appears more than once among the ticker's listed rows."""
    mask = np.zeros_like(panel.listed)
    repeated = np.flatnonzero(panel.dates.duplicated(keep=False))
    if len(repeated):
        codes = pd.factorize(panel.dates[repeated], use_na_sentinel=False)[0]
        listed = panel.listed[repeated].astype(np.int32)
        copies = np.zeros((codes.max() + 1, listed.shape[1]), dtype=np.int32)
        np.add.at(copies, codes, listed)
        mask[repeated] = (copies[codes] >= 2) & panel.listed[repeated]
    return mask


_COLUMNS: dict[str, Callable[[Panel], tuple[np.ndarray, np.ndarray]]] = {
    "price": Panel._price, "step_days": Panel._step_days, "log_return": Panel._log_return,
    "simple_return": Panel._simple_return, "stale_days": Panel._stale_days, "not_a_number": Panel._not_a_number}
