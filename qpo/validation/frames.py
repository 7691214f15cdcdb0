"""The long frames the OHLCV suite runs on: one row per (ticker, date) in the data's own order, plus
derived columns that let plain Great Expectations see time-series defects (see
:mod:`qpo.validation.suites`; wide price panels are checked without a long copy, in
:mod:`qpo.validation._panel`)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def numeric_columns(long: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """Make ``cols`` numeric. Text that is not a number goes to one column, ``not_a_number``
    (``"close: 27,33"``; several columns joined by ``"; "``), which is missing on clean rows."""
    notes = pd.Series(np.nan, index=long.index, dtype=object)
    for c in cols:
        raw = long[c]
        if pd.api.types.is_numeric_dtype(raw):  # the usual case: nothing can be text
            long[c] = raw.astype("float64")
            continue
        num = pd.to_numeric(raw, errors="coerce")
        bad = raw.notna() & num.isna()
        if bad.any():
            text = c + ": " + raw[bad].astype(str)
            notes[bad] = np.where(notes[bad].isna(), text, notes[bad].astype(str) + "; " + text)
        long[c] = num.astype("float64")
    long["not_a_number"] = notes if notes.notna().any() else np.nan  # all-missing floats: a cheap check
    return long


def _group_key(ticker: pd.Series) -> pd.Series:
    return ticker.astype(object).where(ticker.notna(), "\x00missing ticker")


def add_series_columns(long: pd.DataFrame, price_col: str) -> pd.DataFrame:
    """Add step_days, stale_days and log_return per ticker, following each ticker's own rows in
    the frame's order (tickers may be interleaved, as in date-sorted files). Rows without a ticker
    (reported by the missing-values check) form one group of their own."""
    ticker = _group_key(long["ticker"])
    dates = pd.to_datetime(long["date"], errors="coerce")
    long["step_days"] = (dates - dates.groupby(ticker, sort=False).shift(1)).dt.days.astype("float64")
    px = long[price_col]
    prev = px.groupby(ticker, sort=False).shift(1)
    # returns and runs only between valid prices: a zero, negative or infinite price is its own error, reported once
    valid = np.isfinite(px) & (px > 0)
    prev_valid = np.isfinite(prev) & (prev > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (px / prev).where(valid & prev_valid)
        long["log_return"] = np.log(ratio)
    changed = (px != prev) | ~valid | ~prev_valid  # True on each ticker's first row (prev is NaN there)
    run = changed.astype("int64").groupby(ticker, sort=False).cumsum()
    run_length = run.groupby([ticker, run], sort=False).transform("size")
    long["stale_days"] = (run_length - 1).where(valid, 0).astype("int64")
    return long


def add_missing_bars(long: pd.DataFrame) -> pd.DataFrame:
    """``missing_bars``: for each bar, how many of the data's dates (any ticker's) fall strictly
    between it and its ticker's bar before it in date order: a bar missing inside a ticker's
    history, as an empty cell inside a panel's column is (NaN on a ticker's first bar; a listing
    that starts or ends inside the data is not a gap)."""
    dates = pd.to_datetime(long["date"], errors="coerce")
    calendar = pd.DatetimeIndex(dates.dropna().unique()).sort_values()
    at = pd.Series(calendar.get_indexer(dates), index=long.index, dtype="float64").where(dates.notna())
    frame = pd.DataFrame({"key": long["ticker"].astype(str), "at": at})[long["ticker"].notna()].dropna(subset=["at"])
    frame = frame.sort_values(["key", "at"], kind="stable")
    gap = frame["at"] - frame.groupby("key", sort=False)["at"].shift(1) - 1.0
    long["missing_bars"] = gap.clip(lower=0.0).reindex(long.index)
    return long


def add_adjustment_gap(long: pd.DataFrame) -> pd.DataFrame:
    """``adjustment_gap``: adjusted-close log return minus the log return implied by the raw close,
    the split coefficient and the dividend, ``(close_t * split_t + dividend_t) / close_{t-1}``."""
    prev_close = long["close"].groupby(_group_key(long["ticker"]), sort=False).shift(1)
    # unknown splits or dividends (NaN: the file had no such column) leave the gap unknown, unchecked
    implied = (long["close"] * long["split_coefficient"] + long["dividend_amount"]) / prev_close
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = long["log_return"] - np.log(implied.where(implied > 0))
    long["adjustment_gap"] = gap.replace([np.inf, -np.inf], np.nan)
    return long


#: Splits closer to 1 than this (stock dividends, spin-offs booked as splits) move the close less than
#: a volatile day does, so whether the close showed them cannot be told: they are not judged.
MIN_JUDGED_SPLIT = 1.25


def add_split_shortfall(long: pd.DataFrame) -> pd.DataFrame:
    """``split_shortfall``: on a bar with a recorded split of ratio ``r`` (``split_coefficient``), the
    share of the split the raw close did *not* show, ``log(close_t * r / close_{t-1}) / log r``: about
    0 for a split the close shows (it moved by ``1/r``), 1 when the close did not move at all, -1 when
    it moved by ``1/r**2``. Missing on bars without a split and for ratios within
    [1/``MIN_JUDGED_SPLIT``, ``MIN_JUDGED_SPLIT``]. Dividends are left out: a spin-off's value booked as
    a dividend is not a split."""
    prev_close = long["close"].groupby(_group_key(long["ticker"]), sort=False).shift(1)
    r = long["split_coefficient"]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_r = np.log(r.where(r > 0))
        judged = log_r.abs() >= np.log(MIN_JUDGED_SPLIT) - 1e-6  # vendors write 1.249999 for 5-for-4
        moved = long["close"] * r / prev_close
        shortfall = np.log(moved.where(moved > 0)) / log_r
    long["split_shortfall"] = shortfall.where(judged).replace([np.inf, -np.inf], np.nan)
    return long


def _invalid_text(values: pd.Series, bad: pd.Series) -> pd.Series:
    """The offending values as text (``"0"``, ``"-2"``, ``"inf"``, ``"missing"``) on ``bad`` rows, missing elsewhere."""
    text = values.map(lambda v: "missing" if pd.isna(v) else f"{v:g}")
    return text.where(bad).astype(object)


def add_record_checks(long: pd.DataFrame) -> pd.DataFrame:
    """``invalid_split`` and ``invalid_dividend``: the ``split_coefficient`` that is not finite and > 0,
    the ``dividend_amount`` that is not finite and >= 0, as text (``"0"``, ``"inf"``, ``"missing"``),
    missing on valid rows. A column that is missing on every row is one the file did not have (the
    loader fills it with NaN: unknown, not checked); in a column the file had, a missing value is
    invalid (1 means no split, 0 no dividend); text that is not a number is reported once, as a
    wrong type (``not_a_number``). ``first_bar_split``: a split ratio recorded on a
    ticker's first bar, where no previous close shows whether it happened (only ratios the split
    check would judge, beyond ``MIN_JUDGED_SPLIT`` either way)."""
    text = long["not_a_number"].astype(object) if "not_a_number" in long else pd.Series(np.nan, index=long.index)
    for col, out, valid in (("split_coefficient", "invalid_split", lambda v: v > 0),
                            ("dividend_amount", "invalid_dividend", lambda v: v >= 0)):
        v = long[col]
        known = bool(v.notna().any())
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(v) & valid(v)) if known else pd.Series(False, index=long.index)
        if bad.any() and text.notna().any():  # a text cell: a wrong type, reported there
            bad &= ~text.astype(str).str.contains(f"{col}: ", regex=False).to_numpy()
        long[out] = _invalid_text(v, bad) if bad.any() else np.nan  # all-missing: a cheap check
    r = long["split_coefficient"]
    first = ~_group_key(long["ticker"]).duplicated()
    with np.errstate(divide="ignore", invalid="ignore"):
        judged = np.isfinite(r) & (r > 0) & (np.log(r.where(r > 0)).abs() >= np.log(MIN_JUDGED_SPLIT) - 1e-6)
    long["first_bar_split"] = r.where(first & judged)
    return long


def add_simple_return(long: pd.DataFrame, max_abs_log_return: float) -> pd.DataFrame:
    """``simple_return``: ``p_t / p_{t-1} - 1`` from ``log_return``, on the rows whose move is not already
    implausible (``|log return| <= max_abs_log_return``: a larger move is an error of its own, reported
    once)."""
    lr = long["log_return"]
    long["simple_return"] = np.expm1(lr).where(lr.abs() <= max_abs_log_return)
    return long
