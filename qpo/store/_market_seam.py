"""Where new bars meet the stored ones: the last stored bar of each ticker before a load's first
new bar, validated with it (:func:`validate_against_store`), so that a jump across the seam is
caught as a jump inside a file is (:mod:`qpo.store.market_data` loads through it)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, case, func, select

from qpo.store.models import MarketBar
from qpo.validation import ValidationReport
from qpo.validation.report import FailedExpectation, Severity


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return values


def refuse_unreadable_keys(bars: pd.DataFrame) -> None:
    """A ticker a database cannot store (a lone surrogate) and a date given as a number (20230103
    would be read as nanoseconds after 1970) are refused naming the row, before anything else."""
    import numbers

    from qpo._checks import quote
    from qpo.errors import DataError, QpoError
    from qpo.store import _inputs as check

    for i, name in enumerate(bars["ticker"].tolist()):
        if isinstance(name, str) and not name.isascii():
            try:
                check.ticker(name.strip())
            except QpoError as exc:
                raise DataError(f"row {i + 1}: {exc}; nothing was written") from None
    if bars["date"].dtype.kind in "biufcO":
        for i, d in enumerate(bars["date"].tolist()):
            if isinstance(d, numbers.Real):
                raise DataError(f"row {i + 1}: date {quote(d)} is a number, not a date (write it YYYY-MM-DD); "
                                "nothing was written")


def bar_numbers(frame: pd.DataFrame, name: str, label: str) -> np.ndarray:
    """Column ``name`` of bars as floats, NaN where it is empty; a value that is not a finite number
    (text, true/false, an infinite or out-of-range number) is refused with a
    :class:`~qpo.errors.DataError` naming the row and the field, never stored as something else."""
    import math
    import numbers

    from qpo._checks import quote
    from qpo.errors import DataError

    column = frame[name]
    if column.dtype.kind in "iuf":  # plain numbers: only an infinite one is refused
        values = column.to_numpy(dtype="float64", na_value=np.nan)
        inf = np.flatnonzero(np.isinf(values))
        if not len(inf):
            return values
        bad = int(inf[0])
    else:  # text, booleans (numpy, nullable, arrow), dates, categories, objects: each value read
        out = np.full(len(column), np.nan)
        bad = -1
        for i, v in enumerate(column.astype(object).tolist()):
            if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float | np.floating) and math.isnan(v)) or (
                    isinstance(v, str) and v.strip().lower() in ("", "nan")):  # empty, as pandas writes it
                continue
            if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Real | str):
                bad = i
                break
            try:
                x = float(v.strip()) if isinstance(v, str) else float(v)
            except (ValueError, OverflowError):
                bad = i
                break
            if not math.isfinite(x):
                bad = i
                break
            out[i] = x
        if bad < 0:
            return out
    raise DataError(f"row {bad + 1}: {label} {quote(column.iloc[bad])} is not a finite number; nothing was written")



#: tickers per ``IN (...)`` list when reading the stored bars a load meets
_IN_CHUNK = 900


def _long_closes(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """``ticker``, ``date`` (Timestamp), ``adjusted_close`` of a file's bars or panel, priced cells only."""
    if kind == "ohlcv":
        long = pd.DataFrame({"ticker": frame["ticker"].astype(str).str.strip().to_numpy(),
                             "date": pd.to_datetime(frame["date"], errors="coerce").to_numpy(),
                             "adjusted_close": _column(frame, "adjusted_close")})
    else:
        long = frame.rename_axis(index="date", columns="ticker").stack(future_stack=True)
        long = long.rename("adjusted_close").reset_index()
        long["ticker"] = long["ticker"].astype(str)
        long["date"] = pd.to_datetime(long["date"])
        long["adjusted_close"] = pd.to_numeric(long["adjusted_close"], errors="coerce")
    return long[long["date"].notna() & long["adjusted_close"].notna()]


@contextlib.contextmanager
def _reading(bind: Engine | Connection) -> Iterator[Connection]:
    """A connection to read with: ``bind`` itself inside a transaction, else a new one."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as conn:
            yield conn


def _stored_before(engine: Engine | Connection, first: pd.Series) -> pd.DataFrame:
    """Each ticker's last stored bar strictly before ``first[ticker]`` (a date): ``ticker``, ``date``,
    ``adjusted_close``, ``close`` (NaN for a panel's bar); tickers without such a bar are absent."""
    rows: list[tuple] = []
    by_date = first.groupby(first.dt.date)
    with _reading(engine) as conn:
        for day, group in by_date:
            tickers = list(group.index)
            for start in range(0, len(tickers), _IN_CHUNK):
                chunk = tickers[start:start + _IN_CHUNK]
                last = (select(MarketBar.ticker.label("t"), func.max(MarketBar.date).label("d"))
                        .where(MarketBar.ticker.in_(chunk), MarketBar.date < day)
                        .group_by(MarketBar.ticker).subquery())
                actual = case((MarketBar.open.is_(None), None), else_=MarketBar.close)  # a panel's close is its adjusted one
                q = (select(MarketBar.ticker, MarketBar.date, MarketBar.adjusted_close, actual)
                     .join(last, (MarketBar.ticker == last.c.t) & (MarketBar.date == last.c.d)))
                rows += [tuple(r) for r in conn.execute(q)]
    out = pd.DataFrame(rows, columns=["ticker", "date", "adjusted_close", "close"])
    out["close"] = pd.to_numeric(out["close"], errors="coerce")
    out["date"] = pd.to_datetime(out["date"])
    return out


def _near(new_dates, stored_dates, spacing: float) -> np.ndarray:
    """Which seams are a few periods wide (a one-period move), not years (any move in between)."""
    gap = np.asarray(new_dates, dtype="datetime64[ns]") - np.asarray(stored_dates, dtype="datetime64[ns]")
    return gap <= np.timedelta64(int(round(max(7.0, 3 * spacing) * 86_400)), "s")


#: the smallest re-adjustment made: below it, the rounding of a vendor's prices (2 decimals on $20)
READJUST_TOLERANCE = 5e-4


def _last_dates(engine: Engine | Connection, tickers: list[str]) -> dict[str, pd.Timestamp]:
    out: dict[str, pd.Timestamp] = {}
    with _reading(engine) as conn:
        for start in range(0, len(tickers), _IN_CHUNK):
            q = (select(MarketBar.ticker, func.max(MarketBar.date)).where(MarketBar.ticker.in_(tickers[start:start + _IN_CHUNK]))
                 .group_by(MarketBar.ticker))
            out.update({str(t): pd.Timestamp(d) for t, d in conn.execute(q)})
    return out


def history_factors(engine: Engine | Connection, bars: pd.DataFrame) -> dict[str, tuple[pd.Timestamp, float]]:
    """What the stored adjusted closes of each ticker need, where OHLCV ``bars`` meet them, to stay
    one adjusted series: ``{ticker: (its first new date, factor)}`` for the stored bars before that
    date. A vendor adjusts the whole history back from a split or dividend; a file of the days
    after the stored ones carries the new adjustment only in its own rows, so its first adjusted
    close would step from the stored one by the split (a 2:1 split read as a -50 % day).

    Made only where the file reaches the ticker's last stored bar (its bars replace every stored one
    from its first date on: a file inside the history, on another adjustment basis, is left to the
    seam check) and the seam is a few periods wide. With the stored bar's actual close, the factor
    makes the seam's adjusted return the actual one with the first new bar's split ``c`` and
    dividend ``D`` as vendors adjust (``close x c / (stored close - D) - 1``); a stored bar of a price
    panel (no actual close) takes only the splits the file records, and only when they explain the
    seam's step better than no split does. Factors within :data:`READJUST_TOLERANCE` of 1 (rounding)
    are not made; returns inside the stored history do not change by a factor.

    ``engine`` may be a connection in a transaction: :func:`~qpo.store.market_data.upsert_bars`
    computes the factors again there, under the store's bar-writing lock, so that two loads of one
    file at once re-adjust the history once (the second finds the seam already one series)."""
    need = ("ticker", "date", "adjusted_close", "close")
    if any(c not in bars.columns for c in need):
        return {}
    frame = pd.DataFrame({"ticker": bars["ticker"].astype(str).str.strip().to_numpy(),
                          "date": pd.to_datetime(bars["date"], errors="coerce").to_numpy(),
                          "adjusted_close": _column(bars, "adjusted_close"), "close": _column(bars, "close"),
                          "dividend": _column(bars, "dividend_amount") if "dividend_amount" in bars.columns else 0.0,
                          "split": _column(bars, "split_coefficient") if "split_coefficient" in bars.columns else 1.0})
    frame = frame[frame["date"].notna()].sort_values(["ticker", "date"], kind="stable")
    if frame.empty:
        return {}
    frame["dividend"] = frame["dividend"].fillna(0.0)
    frame["split"] = frame["split"].where(np.isfinite(frame["split"]) & (frame["split"] > 0), 1.0)
    firsts = frame.groupby("ticker", sort=False).head(1).set_index("ticker")
    lasts = frame.groupby("ticker", sort=False)["date"].max()
    stored = _stored_before(engine, firsts["date"]).set_index("ticker")
    if stored.empty:
        return {}
    ends = _last_dates(engine, list(stored.index))
    spacing = _spacing_days(frame["date"])
    out: dict[str, tuple[pd.Timestamp, float]] = {}
    for ticker, old in stored.iterrows():
        new = firsts.loc[ticker]
        if lasts[ticker] < ends.get(str(ticker), lasts[ticker]) or not _near([new["date"]], [old["date"]], spacing)[0]:
            continue
        if np.isfinite(old["close"]) and old["close"] > new["dividend"]:
            growth = new["close"] * new["split"] / (old["close"] - new["dividend"])
            factor = new["adjusted_close"] / (growth * old["adjusted_close"])
        else:  # a panel's bar: the splits the file records, if they explain the seam's step
            mine = frame[frame["ticker"] == ticker]
            split = float(np.prod(1.0 / mine["split"].to_numpy(dtype=float)))
            step = float(new["adjusted_close"] / old["adjusted_close"])
            factor = split if split != 1.0 and abs(np.log(step / split)) < abs(np.log(step)) else 1.0
        if np.isfinite(factor) and factor > 0 and abs(factor - 1.0) > READJUST_TOLERANCE:
            out[str(ticker)] = (pd.Timestamp(new["date"]), float(factor))
    return out


def validate_against_store(engine: Engine, bars: pd.DataFrame, kind: str = "ohlcv",
                           factors: dict[str, tuple[pd.Timestamp, float]] | None = None) -> ValidationReport | None:
    """Validate where new bars meet the stored ones: each ticker's last stored bar before its first
    new bar, followed by that first new bar, through the same suite (:func:`qpo.validation.validate_ohlcv`
    on the adjusted closes, with the new data's implausible-jump limit), so that a jump across the
    seam (a one-day file at 1,260 on a stored close of 125.67) is an error and a large move a
    warning, exactly as inside a file. ``bars`` are OHLCV bars (``kind="ohlcv"``) or a wide panel
    (``kind="prices"``). The stored bars only inform the check: nothing is written. Returns None
    when no ticker has a stored bar before its new ones (nothing to compare with)."""
    from qpo.data.loaders import OHLCV_COLUMNS as columns
    from qpo.validation import validate_ohlcv
    from qpo.validation.suites import DEFAULT_MAX_ABS_LOG_RETURN, period_limits

    long = _long_closes(bars, kind)
    if long.empty:
        return None
    long = long.sort_values(["ticker", "date"], kind="stable")
    firsts = long.groupby("ticker", sort=False).head(1).set_index("ticker")
    stored = _stored_before(engine, firsts["date"])
    if stored.empty:
        return None
    if factors:  # the stored closes as the load leaves them: re-adjusted for a split or dividend at the seam
        scale = stored["ticker"].map(lambda t: factors[t][1] if t in factors else 1.0).astype(float)
        stored = stored.assign(adjusted_close=stored["adjusted_close"] * scale)
    new = firsts.loc[stored["ticker"]].reset_index()
    # only a seam a few periods wide is a one-period move: a stored history that ended long before
    # the new bars (2020, then a file from 2024) may have moved any amount in between, legitimately
    near = _near(new["date"].to_numpy(), stored.set_index("ticker").loc[new["ticker"], "date"].to_numpy(),
                 _spacing_days(long["date"]))
    skipped = int((~near).sum())
    stored, new = stored[stored["ticker"].isin(new["ticker"][near])], new[near]
    if stored.empty:
        return None
    seam = pd.concat([stored[["ticker", "date", "adjusted_close"]], new[["ticker", "date", "adjusted_close"]]],
                     ignore_index=True)
    seam = seam.sort_values(["ticker", "date"], kind="stable").reset_index(drop=True)
    for name in ("open", "high", "low", "close"):  # only the adjusted closes are compared: OHLC consistent
        seam[name] = seam["adjusted_close"]
    seam["volume"], seam["dividend_amount"], seam["split_coefficient"] = 0.0, 0.0, 1.0
    limit = period_limits(long["date"].unique(), DEFAULT_MAX_ABS_LOG_RETURN)[2]
    report = validate_ohlcv(seam[columns], max_abs_log_return=limit, missing_bars=False)  # each ticker's own dates
    report.parameters["stored_bars"] = int(len(stored))
    report.parameters["seams_too_wide_to_check"] = skipped
    return report


def _spacing_days(dates: pd.Series) -> float:
    """The median spacing of the new data's dates, in days (1 for a single date)."""
    unique = pd.DatetimeIndex(dates.unique()).sort_values()
    if len(unique) < 2:
        return 1.0
    return float(np.median(np.diff(unique.to_numpy()).astype("timedelta64[s]").astype(np.int64))) / 86_400.0


def _with_seam(report: ValidationReport, seam: ValidationReport | None) -> ValidationReport:
    """``report`` with the failures and warnings of the seam's validation added, each named as a
    check against the stored bars and naming its first ticker and date."""
    if seam is None:
        return report
    for found in (*seam.failures, *seam.warnings):
        where = ""
        if found.examples:
            ex = found.examples[0]
            where = f", e.g. {ex.get('ticker', '?')} on {ex.get('date', '?')}"
        found.check = f"{found.check} against the last stored bar{where}"
    report.failures += seam.failures
    report.warnings += seam.warnings
    report.success = report.success and seam.success
    report.parameters["checked_against_stored_bars"] = seam.parameters.get("stored_bars", 0)
    if seam.data_docs:
        report.parameters["stored_bars_data_docs"] = seam.data_docs
    return report


#: the warning :func:`off_calendar` adds
OFF_CALENDAR = "bars on dates no other stored ticker has (a holiday? a wrong date?)"


def off_calendar(engine: Engine | Connection, frame: pd.DataFrame, kind: str) -> FailedExpectation | None:
    """A warning for the new bars dated inside the store's calendar (after the other tickers' first
    stored date, before their last) on a date none of them has: a market holiday or a wrong date,
    which would leave every other ticker without a price that day (every pipeline's prices then
    fail "missing values"). None when there is none, or nothing to compare with."""
    long = _long_closes(frame, kind)
    if long.empty:
        return None
    tickers = sorted(map(str, long["ticker"].unique()))
    lo, hi = long["date"].min().date(), long["date"].max().date()
    others = MarketBar.ticker.not_in(tickers)
    with _reading(engine) as conn:
        first, last = conn.execute(select(func.min(MarketBar.date), func.max(MarketBar.date)).where(others)).one()
        if first is None:
            return None
        stored = {pd.Timestamp(d) for (d,) in conn.execute(
            select(MarketBar.date).where(others, MarketBar.date.between(lo, hi)).distinct())}
    inside = (long["date"] > pd.Timestamp(first)) & (long["date"] < pd.Timestamp(last))
    odd = long[inside & ~long["date"].isin(stored)].sort_values(["date", "ticker"])
    if odd.empty:
        return None
    examples = [{"ticker": t, "date": str(d.date())} for t, d in zip(odd["ticker"], odd["date"], strict=True)][:5]
    return FailedExpectation(check=OFF_CALENDAR, expectation="the store's calendar", columns=["date"],
                             unexpected_count=len(odd), unexpected_percent=100.0 * len(odd) / len(long),
                             examples=examples, severity=Severity.WARNING)
