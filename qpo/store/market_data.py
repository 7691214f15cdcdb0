"""Market data in the store: daily bars (``market_data``, one row per ticker and date) and the
price panel the book is valued and risk-checked with.

Writes are upserts (``INSERT .. ON CONFLICT (ticker, date) DO UPDATE``, on SQLite and on
PostgreSQL), chunked and in one transaction: loading the same bars twice changes nothing (a row is
rewritten only when one of its values differs: its ``updated_at`` then moves), a corrected bar
replaces the old one, and a refused load writes nothing.

Reading: :func:`prices_panel` gives the adjusted closes as a date x ticker panel;
:func:`book_prices` and :func:`book_benchmark` are what pipelines and the dashboard read: the
store's bars when it holds any, else the bundled panel (a fresh install), and they say which.
:func:`seed_market_data` loads the bundled panel and the S&P 500 index into the store.

Market data is public data, not client data: reading and writing it names no actor.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Connection, Engine, case, func, select

from qpo._checks import quote
from qpo.data.loaders import OHLCV_COLUMNS, as_date, load_prices
from qpo.errors import DataError, QpoError
from qpo.store import _inputs as check
from qpo.store._market_seam import _with_seam, bar_numbers, history_factors, off_calendar, refuse_unreadable_keys, validate_against_store
from qpo.store.db import PG_MARKET_BARS_LOCK, one_writer
from qpo.store.models import MarketBar
from qpo.validation import ValidationReport

#: index series kept in the store beside the stocks: ticker -> what it is. They are never part of
#: :func:`book_prices`' universe (a portfolio holds no index); :func:`book_benchmark` reads them.
INDEX_TICKERS: dict[str, str] = {"SP500": "S&P 500 index level"}
#: the benchmark's ticker in the store (and the bundled index's column name)
BENCHMARK_TICKER = "SP500"
#: what :func:`book_prices` and :func:`book_benchmark` return as their origin
STORE, BUNDLED = "store", "bundled"
#: the bundled sources a fresh install falls back to
BUNDLED_PANEL, BUNDLED_INDEX = "sp500", "sp500_index"
#: rows per INSERT statement (11 parameters a row: under SQLite's 32,766 and PostgreSQL's 65,535)
CHUNK_ROWS = 2_000
_VALUE_COLUMNS = ("open", "high", "low", "close", "adjusted_close", "volume", "dividend", "split")


def _insert(engine: Engine):
    name = engine.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    else:  # pragma: no cover - qpo's stores are SQLite and PostgreSQL
        raise DataError(f"market data upserts need SQLite or PostgreSQL, not {name}")
    return insert


def latest_today() -> dt.date:
    """Today, the later of the local and the UTC calendar date: no bar, and no nightly run, may be
    dated after it."""
    return max(dt.date.today(), dt.datetime.now(dt.UTC).date())


def _rows(bars: pd.DataFrame, source: str) -> list[dict]:
    """The bars as rows of ``market_data``, checked: a ticker, a date (not after today) and a
    positive adjusted close on every row, no (ticker, date) twice; dividends unknown are 0, splits
    unknown 1."""
    missing = [c for c in ("date", "ticker", "adjusted_close") if c not in bars.columns]
    if missing:
        raise DataError(f"bars lack columns {missing}; expected {OHLCV_COLUMNS}")
    try:
        source = check.label(source, "source", 32)
    except QpoError:
        raise DataError(f"source must be a short name (1 to 32 characters) such as 'file' or 'alphavantage', "
                        f"got {quote(source)}") from None
    refuse_unreadable_keys(bars)
    tickers = bars["ticker"].astype("string").str.strip()
    if tickers.isna().any():
        i = int(np.flatnonzero(tickers.isna().to_numpy())[0])
        raise DataError(f"row {i + 1} has no ticker; nothing was written")
    for name in pd.unique(tickers.to_numpy()):  # each ticker checked once, as every write of the store checks it
        try:
            check.ticker(str(name))
        except QpoError as exc:
            i = int(np.flatnonzero((tickers == name).to_numpy())[0])
            raise DataError(f"row {i + 1}: {exc}; nothing was written") from None
    dates = pd.to_datetime(bars["date"], errors="coerce")
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise DataError(f"row {i + 1}: {quote(bars['date'].iloc[i])} is not a date; nothing was written")
    today = latest_today()
    future = (dates.dt.date > today).to_numpy()
    if future.any():
        i = int(np.flatnonzero(future)[0])
        raise DataError(f"{int(future.sum())} bar(s) dated after today ({today}), e.g. row {i + 1} ({tickers.iloc[i]} "
                        f"{dates.iloc[i].date()}): a bar is a day that has closed; check the file's dates (a mistyped "
                        "year?); nothing was written")
    adj = bar_numbers(bars, "adjusted_close", "adjusted close")
    bad = ~(np.isfinite(adj) & (adj > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{int(bad.sum())} bar(s) without a positive adjusted close, e.g. row {i + 1} "
                        f"({tickers.iloc[i]} {dates.iloc[i].date()}: {quote(bars['adjusted_close'].iloc[i])}); validate "
                        "the data first (`qpo validate FILE`); nothing was written")
    key = pd.DataFrame({"t": tickers.to_numpy(), "d": dates.to_numpy()})
    dup = key.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(f"{int(dup.sum())} repeated (ticker, date) bar(s), e.g. {tickers.iloc[i]} "
                        f"{dates.iloc[i].date()}; keep one bar per ticker and date; nothing was written")
    cols: dict[str, np.ndarray] = {"adjusted_close": adj}
    for name in ("open", "high", "low", "close", "volume"):
        cols[name] = bar_numbers(bars, name, name) if name in bars.columns else np.full(len(bars), np.nan)
    div = bar_numbers(bars, "dividend_amount", "dividend") if "dividend_amount" in bars.columns else np.zeros(len(bars))
    split = (bar_numbers(bars, "split_coefficient", "split coefficient") if "split_coefficient" in bars.columns
             else np.ones(len(bars)))
    nonpositive = np.flatnonzero(split <= 0)
    if len(nonpositive):
        i = int(nonpositive[0])
        raise DataError(f"row {i + 1}: split coefficient {split[i]:g} is not a split (new shares per old, > 0; "
                        "1 for none); nothing was written")
    cols["dividend"] = np.where(np.isnan(div), 0.0, div)
    cols["split"] = np.where(np.isnan(split), 1.0, split)
    as_lists = {k: [None if math.isnan(x) or math.isinf(x) else x for x in v.tolist()] for k, v in cols.items()}
    day_list = [d.date() for d in dates]
    ticker_list = tickers.tolist()
    return [{"ticker": ticker_list[i], "date": day_list[i], **{k: as_lists[k][i] for k in _VALUE_COLUMNS},
             "source": source} for i in range(len(bars))]


def _rescale(conn, factors: Mapping[str, tuple[pd.Timestamp, float]] | None) -> None:
    """Multiply each ticker's stored adjusted closes before its date by its factor (in ``conn``'s
    transaction): :func:`~qpo.store._market_seam.history_factors`."""
    from sqlalchemy import update

    for ticker, (day, factor) in (factors or {}).items():
        conn.execute(update(MarketBar).where(MarketBar.ticker == ticker, MarketBar.date < pd.Timestamp(day).date())
                     .values(adjusted_close=MarketBar.adjusted_close * float(factor)))


@contextlib.contextmanager
def _writing_bars(engine: Engine) -> Iterator[Connection]:
    """One transaction that writes bars, holding the store's bar-writing lock from its start (SQLite:
    ``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock): what a load reads there before it writes
    (the stored bars a re-adjustment scales) cannot change under it."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        one_writer(conn, PG_MARKET_BARS_LOCK)
        yield conn


def upsert_bars(engine: Engine, bars: pd.DataFrame, *, source: str = "file", _closes_only: bool = False) -> int:
    """Insert or replace daily bars (:data:`qpo.data.OHLCV_COLUMNS`; ``dividend_amount`` and
    ``split_coefficient`` may be absent: 0 and 1). One transaction, chunked upserts. Returns the
    number of rows inserted or changed: the same bars loaded twice return 0 the second time and
    change nothing. A bar without a positive adjusted close, a repeated (ticker, date) or a row
    without a ticker or date is refused (:class:`~qpo.errors.DataError`) and nothing is written.
    (:func:`upsert_bars_readjusting` also re-adjusts the stored history where the bars meet it.)"""
    return _upsert(engine, bars, source, _closes_only, readjust=False)[0]


def upsert_bars_readjusting(engine: Engine, bars: pd.DataFrame, *,
                            source: str = "file") -> tuple[int, dict[str, tuple[pd.Timestamp, float]]]:
    """:func:`upsert_bars`, and in the same transaction each ticker's stored adjusted closes before
    the bars multiplied by the factor that keeps them one adjusted series across a split or dividend
    where the bars meet them (:func:`~qpo.store._market_seam.history_factors`, computed there under
    the bar-writing lock: two loads of one file at once scale the history once, not twice).
    Returns the rows inserted or changed and the factors applied, ``{ticker: (date, factor)}``."""
    return _upsert(engine, bars, source, False, readjust=True)


def _upsert(engine: Engine, bars: pd.DataFrame, source: str, closes_only: bool,
            readjust: bool) -> tuple[int, dict[str, tuple[pd.Timestamp, float]]]:
    if not isinstance(bars, pd.DataFrame):
        raise DataError(f"bars must be a pandas DataFrame, got {type(bars).__name__}")
    rows = _rows(bars.reset_index(drop=True), source)
    if not rows:
        return 0, {}
    with _writing_bars(engine) as conn:
        factors = history_factors(conn, bars) if readjust else {}
        _rescale(conn, factors)
        if engine.dialect.name == "postgresql":
            return _copy_upsert(conn, rows, closes_only), factors
        return _insert_upsert(conn, rows, closes_only), factors


def _insert_upsert(conn: Connection, rows: list[dict], closes_only: bool) -> int:
    """SQLite: chunked ``INSERT .. ON CONFLICT DO UPDATE`` of ``rows`` in ``conn``'s transaction."""
    insert = _insert(conn.engine)
    table = MarketBar.__table__
    stmt = insert(table)
    excluded = stmt.excluded
    changed: ColumnElement[bool] | None = None
    if closes_only:  # a panel's adjusted close over a stored bar: its open, high, low, close (unless it has
        # no open: a panel's bar itself), volume, dividend and split are kept
        panel_bar = table.c.open.is_(None)
        changed = (table.c.adjusted_close.is_distinct_from(excluded.adjusted_close)
                   | (panel_bar & table.c.close.is_distinct_from(excluded.close)))
        set_ = {"adjusted_close": excluded.adjusted_close,
                "close": case((panel_bar, excluded.close), else_=table.c.close)}
    else:
        for name in _VALUE_COLUMNS:  # rewrite a row only when a value differs (NULLs compare as values)
            cond = table.c[name].is_distinct_from(excluded[name])
            changed = cond if changed is None else (changed | cond)
        set_ = {name: excluded[name] for name in _VALUE_COLUMNS}
    stmt = stmt.on_conflict_do_update(
        index_elements=["ticker", "date"],
        set_={**set_, "source": excluded.source, "updated_at": func.now()},
        where=changed).returning(table.c.ticker)  # a row comes back for each bar inserted or changed
    written = 0
    for start in range(0, len(rows), CHUNK_ROWS):
        written += len(conn.execute(stmt, rows[start:start + CHUNK_ROWS]).all())
    return written


_COPIED = ("ticker", "date", *_VALUE_COLUMNS, "source")


def _copy_upsert(conn: Connection, rows: list[dict], closes_only: bool = False) -> int:
    """PostgreSQL: COPY the bars into a temporary table, then one ``INSERT .. SELECT .. ON CONFLICT
    DO UPDATE`` (a few times faster than batched INSERTs), in ``conn``'s transaction."""
    cols = ", ".join(_COPIED)
    if closes_only:  # as upsert_bars: a panel's adjusted close over a stored bar keeps the rest of the bar
        changed = ("m.adjusted_close IS DISTINCT FROM EXCLUDED.adjusted_close "
                   "OR (m.open IS NULL AND m.close IS DISTINCT FROM EXCLUDED.close)")
        updates = ("adjusted_close = EXCLUDED.adjusted_close, "
                   "close = CASE WHEN m.open IS NULL THEN EXCLUDED.close ELSE m.close END, source = EXCLUDED.source")
    else:
        changed = " OR ".join(f"m.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in _VALUE_COLUMNS)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in (*_VALUE_COLUMNS, "source"))
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:  # type: ignore[union-attr]
        cur.execute("CREATE TEMPORARY TABLE qpo_bars_in (ticker varchar(32), date date, open float8, high float8, "
                    "low float8, close float8, adjusted_close float8, volume float8, dividend float8, "
                    "split float8, source varchar(32)) ON COMMIT DROP")
        with cur.copy(f"COPY qpo_bars_in ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(tuple(row[c] for c in _COPIED))
        cur.execute(f"INSERT INTO market_data AS m ({cols}) SELECT {cols} FROM qpo_bars_in "
                    f"ON CONFLICT (ticker, date) DO UPDATE SET {updates}, updated_at = now() WHERE {changed}")
        return max(int(cur.rowcount), 0)


def upsert_panel(engine: Engine, prices: pd.DataFrame, *, source: str = "file") -> int:
    """Insert or replace a date x ticker panel of adjusted closes. A new bar's close is its adjusted
    close (no open, high, low or volume); over a stored bar only the adjusted close changes (a
    vendor's bar keeps its actual close, volume, dividend and split). Empty cells are no bar (a
    ticker not listed yet or any more). Returns the rows inserted or changed, as :func:`upsert_bars`."""
    if not isinstance(prices, pd.DataFrame):
        raise DataError(f"prices must be a pandas DataFrame (dates x tickers), got {type(prices).__name__}")
    if not isinstance(prices.index, pd.DatetimeIndex):
        raise DataError("prices must be indexed by dates (a DatetimeIndex), as qpo.load_prices returns them")
    long = prices.rename_axis(index="date", columns="ticker").stack(future_stack=True).rename("adjusted_close")
    long = long.reset_index()
    long = long[long["adjusted_close"].notna()]
    long["close"] = long["adjusted_close"]
    return upsert_bars(engine, long, source=source, _closes_only=True)


def remove_bars(engine: Engine, tickers: Sequence[str], start, end=None) -> int:
    """Delete the bars of ``tickers`` dated ``start`` to ``end`` (default: every later bar), in one
    transaction: a bar stored with a wrong date or price that a new file cannot replace. Returns
    the bars deleted."""
    from sqlalchemy import delete

    from qpo._checks import check_symbol

    names = sorted({check_symbol(t, error=DataError) for t in tickers})
    if not names:
        raise DataError("name the ticker(s) whose bars to remove")
    first = pd.Timestamp(as_date(start, "start")).date()
    last = None if end is None else pd.Timestamp(as_date(end, "end")).date()
    if last is not None and last < first:
        raise DataError(f"the end {last} is before the start {first}; give --to on or after --from")
    stmt = delete(MarketBar).where(MarketBar.ticker.in_(names), MarketBar.date >= first)
    if last is not None:
        stmt = stmt.where(MarketBar.date <= last)
    with engine.begin() as conn:
        return int(conn.execute(stmt).rowcount or 0)


def closes_differ(engine: Engine) -> bool:
    """Whether any stored bar's actual close differs from its adjusted close (a vendor's bars, not
    panels of adjusted closes only): only then is there a second basis to value shares on."""
    q = select(MarketBar.ticker).where(MarketBar.close.is_not(None), MarketBar.close != MarketBar.adjusted_close)
    with engine.connect() as conn:
        return conn.execute(q.limit(1)).first() is not None


def has_market_data(engine: Engine) -> bool:
    """Whether the store holds any bar."""
    with engine.connect() as conn:
        return conn.execute(select(MarketBar.ticker).limit(1)).first() is not None


def last_bar_dates(engine: Engine, tickers: Iterable[str] | None = None) -> dict[str, dt.date]:
    """The last bar's date of each ticker the store holds (of ``tickers`` when given: a ticker
    without bars is absent from the answer)."""
    q = select(MarketBar.ticker, func.max(MarketBar.date)).group_by(MarketBar.ticker)
    if tickers is not None:
        q = q.where(MarketBar.ticker.in_(list(tickers)))
    with engine.connect() as conn:
        return {t: d for t, d in conn.execute(q)}


def market_data_summary(engine: Engine) -> pd.DataFrame:
    """One row per ticker: ``ticker``, ``first``, ``last`` (dates), ``rows``, ``sources`` (comma
    list), sorted by ticker."""
    q = (select(MarketBar.ticker, func.min(MarketBar.date), func.max(MarketBar.date), func.count(),
                func.min(MarketBar.source), func.max(MarketBar.source))
         .group_by(MarketBar.ticker).order_by(MarketBar.ticker))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return pd.DataFrame([{"ticker": t, "first": a, "last": b, "rows": int(n),
                          "sources": s1 if s1 == s2 else f"{s1},{s2}"} for t, a, b, n, s1, s2 in rows],
                        columns=["ticker", "first", "last", "rows", "sources"])


def prices_panel(engine: Engine, tickers: Sequence[str] | None = None, start=None, end=None, *,
                 actual: bool = False) -> pd.DataFrame:
    """Adjusted closes from the store (``actual``: the actual closes, the price a share traded at
    that day, what a holding is valued at; the adjusted close where a bar has no close):
    ``DatetimeIndex`` named ``date`` (ascending), one float column per ticker (sorted, or in the
    order of ``tickers``; a requested ticker without bars is a column of NaN), NaN where a ticker
    has no bar on a date."""
    start, end = as_date(start, "start"), as_date(end, "end")
    if isinstance(tickers, str):
        tickers = [tickers]
    price = func.coalesce(MarketBar.close, MarketBar.adjusted_close) if actual else MarketBar.adjusted_close
    q = select(MarketBar.date, MarketBar.ticker, price)
    if tickers is not None:
        q = q.where(MarketBar.ticker.in_(list(tickers)))
    if start is not None:
        q = q.where(MarketBar.date >= start.date())
    if end is not None:
        q = q.where(MarketBar.date <= end.date())
    with engine.connect() as conn:
        # plain tuples: pandas probes each SQLAlchemy Row for attributes it lacks (each probe an
        # exception inside SQLAlchemy), which made a 116,000-bar panel take 2-3 s instead of 0.5 s
        rows = [tuple(r) for r in conn.execute(q).all()]
    long = pd.DataFrame(rows, columns=["date", "ticker", "adjusted_close"])
    if long.empty:
        wide = pd.DataFrame(index=pd.DatetimeIndex([], name="date"), columns=list(tickers or []), dtype="float64")
    else:
        long["date"] = pd.to_datetime(long["date"])
        wide = long.pivot(index="date", columns="ticker", values="adjusted_close").sort_index()
        wide = wide.reindex(columns=list(tickers) if tickers is not None else sorted(wide.columns))
    wide.index = pd.DatetimeIndex(wide.index, name="date").as_unit("us")
    wide.columns = pd.Index([str(c) for c in wide.columns])
    wide.columns.name = None
    return wide.astype("float64")


def book_prices(engine: Engine | None, tickers: Sequence[str] | None = None, start=None,
                end=None, *, actual: bool = False) -> tuple[pd.DataFrame, str]:
    """The price panel the book is valued and risk-checked with, and where it came from: the
    store's adjusted closes (``actual``: its actual closes, which the valuation values shares at;
    see :func:`prices_panel`) (``"store"``; index series of :data:`INDEX_TICKERS` left out unless
    asked for) when the store holds any bar, else the bundled panel (``"bundled"``: a fresh
    install, or ``engine`` None; its prices are the only ones it has). ``start``/``end`` are
    inclusive dates."""
    as_date(start, "start"), as_date(end, "end")  # a bad date is refused the same way on both paths
    if engine is not None and has_market_data(engine):
        if tickers is None:
            held = last_bar_dates(engine)
            tickers = sorted(t for t in held if t not in INDEX_TICKERS)
        return prices_panel(engine, tickers, start, end, actual=actual), STORE
    return load_prices(BUNDLED_PANEL, start=start, end=end, tickers=tickers), BUNDLED


def book_dates(engine: Engine | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and last dates of :func:`book_prices`' panel, read cheaply (the store's bars of
    its non-index tickers, else the bundled panel's)."""
    if engine is not None and has_market_data(engine):
        q = select(func.min(MarketBar.date), func.max(MarketBar.date)).where(MarketBar.ticker.not_in(INDEX_TICKERS))
        with engine.connect() as conn:
            first, last = conn.execute(q).one()
        if first is not None:
            return pd.Timestamp(first), pd.Timestamp(last)
    index = load_prices(BUNDLED_PANEL).index
    return index[0], index[-1]


def book_benchmark(engine: Engine | None, start=None, end=None) -> pd.Series:
    """The S&P 500 index level (a Series named ``SP500`` on a ``date`` index): the store's bars of
    :data:`BENCHMARK_TICKER` when it holds any, else the bundled index (the one the daily risk
    report has always used). ``series.attrs["origin"]`` says which (``"store"`` or ``"bundled"``)."""
    if engine is not None and last_bar_dates(engine, [BENCHMARK_TICKER]):
        series = prices_panel(engine, [BENCHMARK_TICKER], start, end)[BENCHMARK_TICKER].dropna()
        series.attrs["origin"] = STORE
        return series
    series = load_prices(BUNDLED_INDEX, start=start, end=end)[BENCHMARK_TICKER]
    series.attrs["origin"] = BUNDLED
    return series


def benchmark_for(benchmark: pd.Series | None, prices: pd.DataFrame, as_of=None) -> pd.Series | None:
    """``benchmark`` when it has a level on every date of ``prices`` from its own first date up to
    ``as_of`` (default: the prices' last date), else None: risk against a benchmark needs its
    return on each of the portfolio's dates (the store may hold stocks newer than its index)."""
    if benchmark is None or benchmark.empty or prices.empty:
        return None
    end = as_date(as_of, "as_of") or prices.index[-1]
    dates = prices.index[(prices.index >= benchmark.index[0]) & (prices.index <= end)]
    return benchmark if dates.isin(benchmark.dropna().index).all() else None


def seed_market_data(engine: Engine, *, log: Callable[[str], None] | None = None) -> int:
    """Load the bundled panel (20 S&P 500 stocks, 1990-2022) and the S&P 500 index into the store
    (source ``"bundled"``), for the tickers the store holds no bar of: a ticker already fetched or
    ingested keeps its history (the bundled prices are adjusted to another date, and would replace
    a vendor's actual closes). Idempotent: returns the rows inserted (0 when already there)."""
    panel = load_prices(BUNDLED_PANEL)
    index = load_prices(BUNDLED_INDEX)
    both = panel.join(index[[BENCHMARK_TICKER]], how="outer")
    held = set(last_bar_dates(engine, [str(c) for c in both.columns]))
    fresh = both[[c for c in both.columns if str(c) not in held]]
    written = upsert_panel(engine, fresh, source="bundled") if fresh.shape[1] else 0
    if log is not None:
        kept = f"; {len(held)} already in the store kept as they are" if held else ""
        log(f"bundled panel: {panel.shape[1]} tickers and the index, {both.index[0].date()} to "
            f"{both.index[-1].date()}: {written} rows inserted{kept}")
    return written


# -- loading files and fetching ------------------------------------------------------------------
@dataclass
class IngestResult:
    """What :func:`ingest_file` did: the validation report, and the rows written (0 when refused)."""

    path: str
    kind: str  # "ohlcv" | "prices"
    report: ValidationReport
    written: int = 0
    tickers: list[str] = field(default_factory=list)
    first: dt.date | None = None
    last: dt.date | None = None
    #: ticker -> the factor its stored adjusted closes before the file were multiplied by (a split or
    #: dividend where the file meets them: :func:`~qpo.store._market_seam.history_factors`)
    readjusted: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.report.success


def ingest_file(engine: Engine, path, *, kind: str = "auto", source: str = "file",
                ticker: str | None = None) -> IngestResult:
    """Validate a CSV/Parquet file (long OHLCV bars or a wide price panel) with qpo's Great
    Expectations suites, then upsert it. A failed error-severity check writes nothing (the result
    carries the report, ``ok`` False); warnings are reported and do not stop the load. The file is
    also validated together with each ticker's last stored bar before it
    (:func:`validate_against_store`): a jump from the stored price is refused (or warned about) as
    one inside the file would be; the stored bars are not written again. ``ticker`` names whose bars
    a one-ticker OHLCV file without a ``ticker`` column holds (an Alpha Vantage CSV download)."""
    from pathlib import Path

    from qpo.data.loaders import check_file_ticker, file_kind, load_ohlcv, load_price_file
    from qpo.errors import UnknownOptionError
    from qpo.validation import validate_ohlcv, validate_prices

    if kind not in ("auto", "prices", "ohlcv"):
        raise UnknownOptionError("file kind", kind, ["auto", "ohlcv", "prices"])
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no file {path}; give the path of a CSV or Parquet file (a price panel or OHLCV bars)")
    kind = file_kind(path) if kind == "auto" else kind
    check_file_ticker(path, kind, ticker)
    if kind == "ohlcv":
        bars = load_ohlcv(path, ticker=ticker)
        report = validate_ohlcv(bars)
        frame = bars
    else:
        frame = load_price_file(path)
        report = validate_prices(frame)
    result = IngestResult(str(path), kind, report)
    if not report.success:
        return result
    readjust = history_factors(engine, frame) if kind == "ohlcv" else {}
    report = result.report = _with_seam(report, validate_against_store(engine, frame, kind, readjust))
    if not report.success:
        return result
    odd = off_calendar(engine, frame, kind)
    if odd is not None:
        report.warnings.append(odd)
        report.checks[odd.check] = odd.severity
    if kind == "ohlcv":  # the factors again, where the bars are written: another load may have come first
        result.written, readjust = upsert_bars_readjusting(engine, frame, source=source)
    else:
        result.written = upsert_panel(engine, frame, source=source)
    result.readjusted = {t: round(f, 10) for t, (_, f) in readjust.items()}
    dates = pd.to_datetime(frame["date"]) if kind == "ohlcv" else frame.index
    result.tickers = sorted(map(str, frame["ticker"].unique())) if kind == "ohlcv" else list(map(str, frame.columns))
    result.first, result.last = dates.min().date(), dates.max().date()
    return result
