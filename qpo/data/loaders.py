"""Loaders. A wide price file comes back with ascending, unique dates and float prices, or is
refused with a :class:`~qpo.errors.DataError` that names the problem; bars keep the file's rows
as they are (order and duplicates), but for a file written newest first (every ticker's dates
falling, as Alpha Vantage writes them), whose rows are reversed. Nothing is filled or de-duplicated: finding defects in the
values (gaps, jumps, stale or non-positive prices) is the job of :mod:`qpo.validation`, which
runs before anything uses the data.

Shapes
------
price panel
    ``DataFrame`` indexed by a ``DatetimeIndex`` named ``date``, one float column per ticker,
    adjusted close prices. A ticker's leading/trailing NaNs mean "not listed yet / any more".
OHLCV bars
    long ``DataFrame`` with the columns :data:`OHLCV_COLUMNS` (Alpha Vantage daily-adjusted
    naming), one row per (ticker, date).
"""
from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from qpo._checks import check_symbol
from qpo.data._read import (
    drop_row_numbers,
    fail,
    find_date_column,
    header_of,
    is_unnamed,
    kind_of,
    listing,
    parse_dates,
    read_csv,
    require_file,
    short,
    to_numbers,
)
from qpo.data.calendar import day_end
from qpo.errors import DataError, UnknownOptionError, quoted

OHLCV_COLUMNS = [
    "date",
    "ticker",
    "open",
    "high",
    "low",
    "close",
    "adjusted_close",
    "volume",
    "dividend_amount",
    "split_coefficient",
]
_OHLCV_REQUIRED = ["date", "open", "high", "low", "close", "adjusted_close", "volume"]
# absent columns are unknown, not "no dividend, no split": NaN keeps the adjustment check off them
_OHLCV_OPTIONAL_DEFAULTS = {"dividend_amount": np.nan, "split_coefficient": np.nan}


def _skfolio_data_file(name: str) -> Path:
    spec = importlib.util.find_spec("skfolio")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the bundled S&P 500 data ships with the 'skfolio' package; install it "
                        "with `pip install skfolio` (it is a dependency of qpo)")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name
    if not path.exists():
        raise DataError(f"skfolio is installed but its data file {path} is missing; reinstall skfolio")
    return path


def _read_skfolio_csv(name: str) -> pd.DataFrame:
    df = pd.read_csv(_skfolio_data_file(name), index_col=0, parse_dates=True)
    df.index = pd.DatetimeIndex(df.index, name="date")
    df.columns.name = None
    return df.astype("float64")


def _sp500() -> pd.DataFrame:
    return _read_skfolio_csv("sp500_dataset.csv.gz")


def _sp500_index() -> pd.DataFrame:
    df = _read_skfolio_csv("sp500_index.csv.gz")
    df.columns = ["SP500"]
    return df


#: Bundled real data, offline: name -> (loader, description).
PRICE_SOURCES: dict[str, tuple[Callable[[], pd.DataFrame], str]] = {
    "sp500": (_sp500, "20 S&P 500 stocks, daily adjusted close, 1990-2022 (skfolio's real panel)"),
    "sp500_index": (_sp500_index, "S&P 500 index level, daily, 1990-2022 (skfolio's real series)"),
}


def as_date(value, name: str) -> pd.Timestamp | None:
    """``value`` as a date (``None`` stays ``None``); a clear error when it is not one."""
    if value is None:
        return None
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{name} {quoted(value)} is not a date; write it as YYYY-MM-DD") from exc


def _slice(df: pd.DataFrame, start, end) -> pd.DataFrame:
    start, end = as_date(start, "start"), as_date(end, "end")
    if start is None and end is None:
        return df
    idx = df.index
    mask = np.ones(len(idx), dtype=bool)
    if start is not None:
        mask &= idx >= start
    if end is not None:
        mask &= idx <= day_end(end)
    return df.loc[mask]


def is_file_source(source) -> bool:
    """A path (``Path``, or a string naming a .csv/.parquet/.pq file) rather than a bundled source."""
    return isinstance(source, Path) or (isinstance(source, str) and source not in PRICE_SOURCES and bool(
        re.search(r"\.(csv|parquet|pq)(\.gz)?$", source, re.I)))


def _select(df: pd.DataFrame, tickers: Sequence[str] | None) -> pd.DataFrame:
    if tickers is None:
        return df
    tickers = list(tickers)
    missing = [t for t in tickers if t not in df.columns]
    if missing:
        raise DataError(f"tickers not in the data: {missing}; available: {list(df.columns)}")
    return df[tickers]


def load_prices(
    source: str | Path = "sp500",
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    tickers: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Adjusted close prices, ``DatetimeIndex`` x tickers.

    Parameters
    ----------
    source
        ``"sp500"`` (20 real S&P 500 stocks, 1990-2022), ``"sp500_index"`` (the index), or the
        path of a CSV/Parquet file: a wide price panel or long OHLCV bars (see
        :func:`load_price_file`).
    start, end
        Inclusive date bounds.
    tickers
        Columns to keep, in this order.
    """
    if is_file_source(source):
        return _select(load_price_file(source, start=start, end=end), tickers)
    if isinstance(source, str) and source in PRICE_SOURCES:
        df = PRICE_SOURCES[source][0]()
    else:
        raise UnknownOptionError("price source", source,
                                 list(PRICE_SOURCES) + ["<path to a .csv or .parquet file>"])
    return _select(_slice(df, start, end), tickers)


# ------------------------------------------------------------------ Parquet
def restore_index(df: pd.DataFrame) -> pd.DataFrame:
    """The index pandas recorded in a Parquet file, as columns: a ``DatetimeIndex`` (named or not)
    and named indexes become columns; row numbers (an unnamed integer index) are dropped."""
    idx = df.index
    if isinstance(idx, pd.RangeIndex):
        return df
    if isinstance(idx, pd.MultiIndex):
        named = [n for n in idx.names if n is not None]
        return df.reset_index(level=named) if named else df.reset_index(drop=True)
    if idx.name is not None:
        return df.reset_index(names=str(idx.name)) if str(idx.name) not in map(str, df.columns) else df.reset_index(drop=True)
    if isinstance(idx, pd.DatetimeIndex) or not pd.api.types.is_integer_dtype(idx):
        lower = {str(c).lower() for c in df.columns}
        return df.reset_index(names="date" if "date" not in lower else "index")
    return df.reset_index(drop=True)


def read_parquet(path: Path, columns=None, filters=None) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path, columns=columns, filters=filters)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types; turned into a clear message
        raise fail(f"could not read {path.name} as Parquet: {' '.join(str(exc).split())}") from exc
    if isinstance(df.columns, pd.MultiIndex):  # ("Adj Close", "AAPL"), ("Volume", "AAPL"): a yfinance download
        raise fail(f"{path.name}: its columns have {df.columns.nlevels} levels ({multi_levels(df.columns)}), not one "
                   "ticker each; select one price field first, e.g. frame['Adj Close'].to_parquet(...)")
    df = restore_index(df)
    df.columns = [str(c) for c in df.columns]
    df.attrs["qpo_read"] = ""
    return df


def multi_levels(columns: pd.MultiIndex) -> str:
    """Two example columns of a MultiIndex and its first level's values, for a message."""
    first = sorted({str(v) for v in columns.get_level_values(0)})
    shown = ", ".join(short(str(c), 40) for c in list(columns[:2]))
    return f"e.g. {shown}; first level: {', '.join(short(v, 20) for v in first[:6])}" + (" ..." if len(first) > 6 else "")


def _read_table(path: Path, columns=None, filters=None) -> pd.DataFrame:
    """The file as a frame (CSV dialect sniffed, Parquet index restored); errors are DataErrors."""
    require_file(path)
    return read_parquet(path, columns, filters) if kind_of(path) == "parquet" else read_csv(path)


def _is_long_ohlcv(df: pd.DataFrame) -> bool:
    cols = {str(c).strip().lower() for c in df.columns}
    return {"open", "high", "low", "close"} <= cols


def file_kind(path: str | Path) -> str:
    """``"ohlcv"`` for long bars (open/high/low/close columns), else ``"prices"``; reads only the
    header (a CSV's separator and byte-order mark are sniffed as :func:`load_price_file` does)."""
    return "ohlcv" if _is_long_ohlcv(pd.DataFrame(columns=header_of(Path(path)))) else "prices"


def check_file_ticker(path: Path, kind: str, ticker: str | None) -> None:
    """A ticker given for a file is for a one-ticker OHLCV file: refused for a price panel."""
    if ticker is not None and kind != "ohlcv":
        raise DataError(f"{path.name} is a price panel (one column per ticker): a ticker given for the file "
                        f"({quoted(ticker)}) is only for a file of one ticker's OHLCV bars; leave it out")


def _label(path: Path, df: pd.DataFrame) -> str:
    read = df.attrs.get("qpo_read", "")
    return f"{path.name} ({read})" if read else path.name


def _in_date_order(out: pd.DataFrame, label: str) -> pd.DataFrame:
    """Dates ascending: a file written newest first is reversed; repeated or shuffled dates are
    refused, naming rows (a shuffled row is often a mistyped date, which sorting would hide)."""
    idx = out.index
    dup = idx.duplicated(keep=False)
    if dup.any():
        first = idx[dup][0]
        rows = [str(i + 1) for i in np.flatnonzero(idx == first)[:3]]
        n = int(idx[dup].nunique())
        raise fail(f"{label}: {n} date(s) appear more than once, e.g. {first.date()} in rows {', '.join(rows)}; "
                   "keep one row per date")
    if idx.is_monotonic_increasing:
        return out
    if idx.is_monotonic_decreasing:
        return out.iloc[::-1]
    pos = int(np.flatnonzero(np.diff(idx.asi8) < 0)[0])
    raise fail(f"{label}: dates out of order: row {pos + 2} ({idx[pos + 1].date()}) comes after row {pos + 1} "
               f"({idx[pos].date()}); sort the file by date (oldest or newest first) or fix the date")


def load_price_file(path: str | Path, start=None, end=None) -> pd.DataFrame:
    """Load a price panel a user brings.

    Two layouts are understood:

    * wide: the dates and one column of prices per ticker. The dates are the index pandas wrote
      (``to_parquet()``, or ``to_csv()``'s first column, named or not), or a column named
      ``date``/``timestamp``/``datetime`` (any case), or a first column of text that reads as dates.
      Numbers are never taken for dates.
    * long OHLCV bars in Alpha Vantage's daily-adjusted columns: the ``adjusted_close`` of each
      ticker becomes its column (see :func:`load_ohlcv`);
    * long prices, one row per date and ticker: a date, a ``ticker`` (or ``symbol``) and one price
      column (``adjusted_close``, ``adj_close``, ``close``, ``price``, ``value``), pivoted; a date and
      ticker given twice is refused with its rows.

    CSVs may carry a byte-order mark and use ``;`` (or tab) separators; a semicolon-separated
    file with decimal commas (``1,23``) is read as such (``frame.attrs["qpo_read"]`` says how a
    file was read). A wide file comes back with ascending, unique dates and float columns; a
    file whose dates cannot be found or read, that repeats or shuffles dates, or holds text
    where prices belong is refused with a :class:`~qpo.errors.DataError` naming the columns or
    rows. Missing prices stay NaN: :mod:`qpo.validation` judges them. Bars become a panel
    through :func:`ohlcv_to_prices`, which sorts the dates and refuses duplicate (ticker, date)
    rows: validate bars with :func:`qpo.validate_ohlcv` (or ``qpo.validation.validate_source``) first.
    """
    path = Path(path)
    df = _read_table(path)
    if _is_long_ohlcv(df):  # bars outside [start, end] are not pivoted (nor refused for duplicates)
        return ohlcv_to_prices(load_ohlcv(path, start=start, end=end, _frame=df))
    label = _label(path, df)
    date_col = find_date_column(df, label)
    attrs, df = dict(df.attrs), drop_row_numbers(df, date_col)
    df.attrs = attrs
    tidy = _tidy_columns(df, date_col)
    if tidy is not None:  # one row per date and ticker: pivoted
        return _slice(_from_tidy(df, date_col, *tidy, label), start, end)
    if len(df) == 0:
        raise fail(f"{label} has no rows, only the columns {listing(df.columns)}; a price file needs one row per date")
    tickers = [c for c in df.columns if c != date_col]
    if not tickers:
        raise fail(f"{label} has dates ({date_col!r}) but no price columns; a wide price file has one column per ticker")
    unnamed = [c for c in tickers if is_unnamed(c)]
    if unnamed:
        raise fail(f"{label}: column(s) {listing(unnamed, 3)} have no name in the header but hold values; "
                   "name each ticker's column")
    dates = parse_dates(df[date_col], label, date_col)
    out = to_numbers(df[tickers], tickers, label)
    out.index = pd.DatetimeIndex(dates, name="date")
    out.columns = [str(c) for c in out.columns]
    out.attrs = {"qpo_read": attrs.get("qpo_read", "")}
    return _slice(_in_date_order(out, label), start, end)


def _ticker_from_filename(path: Path) -> str | None:
    m = re.match(r"DA-(?P<t>[A-Za-z0-9.\-]+?)-T-", path.name)
    return m.group("t") if m else None


def load_ohlcv(
    path: str | Path,
    ticker: str | None = None,
    tickers: Sequence[str] | None = None,
    start=None,
    end=None,
    *,
    _frame: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Long OHLCV bars in Alpha Vantage's daily-adjusted columns.

    Accepts ``timestamp`` or ``date`` for the date column. A single-ticker file (as Alpha Vantage
    returns them) has no ``ticker`` column: pass ``ticker=`` or name the file
    ``DA-<TICKER>-T-...``. ``dividend_amount``/``split_coefficient`` are NaN (unknown) when absent.
    Rows keep the file's order, duplicates included; a file written newest first (every ticker's
    dates strictly falling, Alpha Vantage's order) is reversed, so its dates rise.
    """
    path = Path(path)
    filters = None
    if _frame is None and path.suffix.lower() in (".parquet", ".pq") and tickers is not None:
        filters = [("ticker", "in", list(tickers))]
    df = _frame if _frame is not None else _read_table(path, filters=filters)
    label, attrs = _label(path, df), dict(df.attrs)
    df = df.rename(columns={c: str(c).lower().strip() for c in df.columns})
    if "timestamp" in df.columns and "date" not in df.columns:
        df = df.rename(columns={"timestamp": "date"})
    if "date" not in df.columns and len(df.columns) and is_unnamed(df.columns[0]):
        df = df.rename(columns={df.columns[0]: "date"})  # the unnamed index to_csv() writes
    if "adjusted_close" not in df.columns and "adj_close" in df.columns:
        df = df.rename(columns={"adj_close": "adjusted_close"})
    missing = [c for c in _OHLCV_REQUIRED if c not in df.columns]
    if missing:
        raise DataError(f"{path.name}: missing OHLCV columns {missing}; expected Alpha Vantage "
                        f"daily-adjusted columns {OHLCV_COLUMNS} ('timestamp' may stand for 'date')")
    if ticker is not None:
        ticker = check_symbol(ticker, error=DataError)
        if "ticker" in df.columns:
            raise DataError(f"{path.name} has its own 'ticker' column ({listing(df['ticker'].astype(str).unique())}): "
                            f"a ticker given for the file ({quoted(ticker)}) is only for a file of one ticker's bars "
                            "without one; leave it out")
    if "ticker" not in df.columns:
        ticker = ticker or _ticker_from_filename(path)
        if ticker is None:
            raise DataError(f"{path.name} has no 'ticker' column: say whose bars they are (ticker=... in Python, "
                            "--ticker SYMBOL on the command line) or name the file DA-<TICKER>-T-<date>.csv as "
                            "Alpha Vantage downloads are named")
        df = df.assign(ticker=ticker)
    if len(df) == 0 and filters is None:  # (a ticker filter may select nothing: that is an answer)
        raise fail(f"{label} has no rows, only the columns {listing(df.columns)}; bars need one row per (ticker, date)")
    for col, default in _OHLCV_OPTIONAL_DEFAULTS.items():
        if col not in df.columns:
            df[col] = default
    df = df[OHLCV_COLUMNS].copy()
    df.attrs = attrs
    df = to_numbers(df, [c for c in OHLCV_COLUMNS if c not in ("date", "ticker")], label, as_float=False)
    df["date"] = parse_dates(df["date"], label, "date").to_numpy()
    df["ticker"] = df["ticker"].astype(str)
    steps = df.groupby("ticker", sort=False)["date"].diff().dropna()
    if len(steps) and (steps < pd.Timedelta(0)).all():
        df = df.iloc[::-1]  # newest first: each ticker's rows reversed rise (mixed orders are left to validation)
    if tickers is not None:
        df = df[df["ticker"].isin(list(tickers))]
    start, end = as_date(start, "start"), as_date(end, "end")
    if start is not None:
        df = df[df["date"] >= start]
    if end is not None:
        df = df[df["date"] <= day_end(end)]
    return df.reset_index(drop=True)


#: the price column of a long file of one row per date and ticker (``date,ticker,close``)
TIDY_PRICE_COLUMNS = ("adjusted_close", "adj_close", "adj close", "adjclose", "close", "price", "value")
TIDY_TICKER_COLUMNS = ("ticker", "symbol")


def _tidy_columns(df: pd.DataFrame, date_col: str) -> tuple[str, str] | None:
    """(ticker column, price column) of a long file holding exactly a date, a ticker and a price
    column (names of :data:`TIDY_TICKER_COLUMNS` and :data:`TIDY_PRICE_COLUMNS`, any case), else None."""
    rest = [c for c in df.columns if c != date_col]
    if len(rest) != 2:
        return None
    names = {str(c).strip().lower(): c for c in rest}
    ticker = next((names[n] for n in TIDY_TICKER_COLUMNS if n in names), None)
    price = next((names[n] for n in TIDY_PRICE_COLUMNS if n in names), None)
    return (ticker, price) if ticker is not None and price is not None else None


def _from_tidy(df: pd.DataFrame, date_col: str, ticker_col: str, price_col: str, label: str) -> pd.DataFrame:
    """The wide panel of a long ``date, ticker, price`` file; a (date, ticker) given twice is refused."""
    if len(df) == 0:
        raise fail(f"{label} has no rows, only the columns {listing(df.columns)}")
    dates = parse_dates(df[date_col], label, date_col)
    tickers = df[ticker_col].astype(str).str.strip()
    blank = np.flatnonzero((tickers == "") | df[ticker_col].isna().to_numpy())
    if len(blank):
        raise fail(f"{label}: column {ticker_col!r} is empty on row(s) {', '.join(str(i + 1) for i in blank[:3])}")
    values = to_numbers(df[[price_col]], [price_col], label)[price_col].to_numpy()
    long = pd.DataFrame({"date": pd.DatetimeIndex(dates), "ticker": tickers.to_numpy(), "price": values})
    dup = long.duplicated(["date", "ticker"], keep=False)
    if dup.any():
        first = long.iloc[int(np.flatnonzero(dup.to_numpy())[0])]
        same = np.flatnonzero(((long["ticker"] == first["ticker"]) & (long["date"] == first["date"])).to_numpy())
        raise fail(f"{label}: {first['ticker']} on {first['date'].date()} is given {len(same)} times (rows "
                   f"{', '.join(str(i + 1) for i in same[:3])}; {int(dup.sum())} rows repeat a date and ticker); "
                   "keep one price per date and ticker")
    wide = long.pivot(index="date", columns="ticker", values="price").sort_index()
    wide.index = pd.DatetimeIndex(wide.index, name="date")
    wide.columns = [str(c) for c in wide.columns]
    wide.columns.name = None
    wide.attrs = {"qpo_read": df.attrs.get("qpo_read", "")}
    return wide.astype("float64")


def ohlcv_to_prices(bars: pd.DataFrame, field: str = "adjusted_close") -> pd.DataFrame:
    """Pivot long bars to a wide price panel of ``field``; dates sorted, tickers sorted.

    Duplicate (ticker, date) rows are an error here: validate the bars first.
    """
    if field not in bars.columns:
        raise DataError(f"field {quoted(field)} not in bars; valid: {[c for c in bars.columns if c not in ('date', 'ticker')]}")
    dup = bars.duplicated(["ticker", "date"])
    if dup.any():
        first = bars.loc[dup, ["ticker", "date"]].iloc[0]
        raise DataError(f"{int(dup.sum())} duplicate (ticker, date) rows, e.g. {first['ticker']} "
                        f"{first['date'].date()}; run qpo.validate_ohlcv(bars) to see them all")
    wide = bars.pivot(index="date", columns="ticker", values=field).sort_index()
    wide.index = pd.DatetimeIndex(wide.index, name="date")
    wide.columns.name = None
    return wide.astype("float64")


def data_hash(df: pd.DataFrame) -> str:
    """SHA-256 of a frame's values, index and column names (stable across runs and machines)."""
    h = hashlib.sha256()
    h.update("|".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
    return h.hexdigest()
