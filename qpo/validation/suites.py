"""Data validation with Great Expectations (GX 1.x).

Both suites are GX expectation suites on a *long* view of the data (one row per ticker and date,
in the data's own order) with derived columns per ticker, so that plain GX expectations can see
time-series defects. OHLCV bars are long already: GX runs the suite on them. A wide price panel
(dates x tickers) is never melted into a long copy: :mod:`qpo.validation._panel` evaluates the
same expectations column by column with vectorised numpy (a 2,000 x 5,000 panel in seconds and a
few hundred MB), and GX writes the results' Data Docs page as for any validation. Either way a
result holds counts and at most 20 offending rows (GX's ``SUMMARY`` format), so that reports stay
small (well under 100 kB) whatever the number of defects. The long view's columns:

``step_days``
    days since the ticker's previous row (negative: dates out of order; 0: a repeated date);
``stale_days``
    for each row of a run of identical consecutive prices, the number of days the price stayed
    unchanged in that run (the run's length minus one);
``log_return``
    ``log(p_t / p_{t-1})`` against the ticker's previous row;
``simple_return``
    ``p_t / p_{t-1} - 1``, on the rows whose move is not already implausible.

OHLCV bars add ``adjustment_gap`` and ``split_shortfall`` (see :mod:`qpo.validation.frames`).

Policy for wide panels: a ticker's NaNs *before its first* and *after its last* price mean
"not listed yet / any more" and are not defects; every other NaN is a missing value.

A cell that holds text instead of a number (``"27,33"``) is reported as a wrong type, with the
column and the text in ``not_a_number``; it is also a missing price.

Every check has a :class:`~qpo.validation.Severity`. An ERROR means the data is wrong: the
report fails (``report.success`` is False, a pipeline stops before writing anything). A WARNING
means rows to review: they are listed in ``report.warnings`` (its text, its JSON and the Data
Docs) and nothing stops. The warnings today: a large one-day move below the implausible limit
(``|return| > review_abs_return``, 40 %): real crashes (AIG on 2008-09-15, -61 %; OXY on
2020-03-09, -50 %) must neither stop a run nor pass unseen; and (OHLCV bars) a split recorded on a
ticker's first bar, which no previous close can confirm. Every other check is an error.

A price must be positive and finite: 0, a negative price, ``inf`` and ``-inf`` are errors of one
check (``non-positive prices``), and returns and runs of unchanged prices are computed between valid
prices only, so that each bad price is reported once.

Each expectation carries ``meta.check``, the defect it looks for, and ``meta.severity``; the
report lists every failed one with its count, its first offending (ticker, date, value) rows,
for wide panels each affected ticker's count and first date (the first 20 tickers), and the Data
Docs page written for the run (``QPO_DATA_DOCS_DIR``, default ``data_docs/`` in ``QPO_HOME``).
"""
from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qpo._checks import positive
from qpo.errors import DataError, InvalidValueError, UnknownOptionError
from qpo.validation._gx import expect, long_report, publish_results, run_suite
from qpo.validation._gx import report as build_report
from qpo.validation._panel import Panel, evaluate, plain
from qpo.validation.frames import (
    add_adjustment_gap,
    add_missing_bars,
    add_record_checks,
    add_series_columns,
    add_simple_return,
    add_split_shortfall,
    numeric_columns,
)
from qpo.validation.report import Severity, ValidationReport

#: A price unchanged for more than this many consecutive days is stale.
DEFAULT_MAX_STALE_DAYS = 10
#: A day whose adjusted-close log return differs from the log return implied by the close, the split
#: coefficient and the dividend by more than this has a broken adjustment (a missed split, say).
DEFAULT_MAX_ADJUSTMENT_GAP = 0.05
#: A one-day |log return| above this (a fall of more than 63 %, a rise of more than 172 %) is implausible.
DEFAULT_MAX_ABS_LOG_RETURN = 1.0
#: A one-day |simple return| above this (and not implausible) is a large move to review: a warning.
DEFAULT_REVIEW_ABS_RETURN = 0.40
#: A recorded split whose close moved by less than half of it, or by more than one and a half times it
#: (in log terms), is not shown by the close: closer to no split, or to another ratio, than to its own.
MAX_SPLIT_SHORTFALL = 0.5
#: The largest factor by which a longer period widens the implausible-jump limit (see :func:`period_limits`).
MAX_PERIOD_FACTOR = 2.0
#: What a move over one period of each frequency (:func:`qpo.data.infer_frequency`) is called in a check.
PERIOD_WORDS = {"business-daily": "one-day", "daily": "one-day", "weekly": "one-week", "fortnightly": "two-week",
                "monthly": "one-month", "quarterly": "one-quarter", "half-yearly": "half-year", "annual": "one-year"}
_LARGEST = float(np.finfo(np.float64).max)
#: expected tickers written out in a report's parameters; beyond this, their count
_LISTED_TICKERS = 50


def period_limits(dates, max_abs_log_return: float) -> tuple[str, str, float]:
    """The frequency of data dated ``dates`` (``"monthly"``; business-daily when it cannot be told),
    what one period's move is called (``"one-month"``) and the implausible-jump limit at that
    frequency.

    The rule: the limits are set for daily prices; a period of ``d`` trading days (21 for a month,
    ``252 / periods_per_year``, at least 1) widens the implausible |log return| limit by
    ``sqrt(d)`` (returns over independent days add up: their spread grows as the square root of
    time), capped at :data:`MAX_PERIOD_FACTOR` so that a data error (a price 100 times too large,
    |log return| 4.6) is still an error: 1.0 on daily prices, 2.0 (a fall of 86 %, a rise of 639 %)
    on weekly or monthly ones. The review threshold (a warning) stays the same move at every
    frequency: its job is to show a crash, or a split the prices missed (2-for-1: -50 %), and a
    missed split is the same move over a day or a month."""
    from qpo.data.calendar import infer_frequency

    try:
        freq = infer_frequency(pd.DatetimeIndex(dates))
    except DataError:  # too few or irregular dates: the other checks say what is wrong with them
        return "business-daily", "one-day", float(max_abs_log_return)
    days = max(1.0, 252.0 / freq.periods_per_year)
    factor = min(float(np.sqrt(days)), MAX_PERIOD_FACTOR)
    return freq.name, PERIOD_WORDS.get(freq.name, "one-period"), float(max_abs_log_return) * factor


def _price_expectations(price_cols: list[str], max_stale_days: int, max_abs_log_return: float,
                        review_abs_return: float, expected_tickers: list[str] | None, has_volume: bool,
                        period: str = "one-day") -> list[Any]:
    import great_expectations.expectations as gxe

    ex = []
    key_cols = ["date", "ticker"] + price_cols + (["volume"] if has_volume else [])
    for c in key_cols:
        ex.append(expect(gxe.ExpectColumnValuesToNotBeNull, f"missing values ({c})", column=c))
    ex.append(expect(gxe.ExpectColumnValuesToBeNull, "wrong type (text where a number belongs)", column="not_a_number"))
    for c in price_cols:  # 0 < price <= the largest finite float: inf and -inf fail as well as 0 and -1
        ex.append(expect(gxe.ExpectColumnValuesToBeBetween, f"non-positive prices ({c}; infinite ones too)", column=c,
                         min_value=0, strict_min=True, max_value=_LARGEST))
    if has_volume:
        ex.append(expect(gxe.ExpectColumnValuesToBeBetween, "negative volume", column="volume", min_value=0))
    ex.append(expect(gxe.ExpectCompoundColumnsToBeUnique, "duplicate dates", column_list=["ticker", "date"]))
    ex.append(expect(gxe.ExpectColumnValuesToBeBetween, "unsorted dates", column="step_days", min_value=0))
    ex.append(expect(gxe.ExpectColumnValuesToBeBetween, f"stale prices (unchanged > {max_stale_days} days)",
                     column="stale_days", max_value=max_stale_days))
    ex.append(expect(gxe.ExpectColumnValuesToBeBetween, f"implausible {period} jumps (|log return| > {max_abs_log_return:g})",
                     column="log_return", min_value=-max_abs_log_return, max_value=max_abs_log_return))
    ex.append(expect(gxe.ExpectColumnValuesToBeBetween, f"large {period} moves to review (|return| > {review_abs_return * 100:g} %)",
                     Severity.WARNING, column="simple_return", min_value=-review_abs_return, max_value=review_abs_return))
    if expected_tickers:
        ex.append(expect(gxe.ExpectColumnDistinctValuesToContainSet, "missing tickers", column="ticker",
                         value_set=sorted(expected_tickers)))
    return ex


def _ohlcv_expectations(max_adjustment_gap: float) -> list[Any]:
    import great_expectations.expectations as gxe

    pairs = [("high", "low", "high < low"), ("high", "open", "open above high"),
             ("high", "close", "close above high"), ("open", "low", "open below low"),
             ("close", "low", "close below low")]
    ex = [expect(gxe.ExpectColumnPairValuesAToBeGreaterThanB, check, column_A=a, column_B=b, or_equal=True)
          for a, b, check in pairs]
    ex.append(expect(gxe.ExpectColumnValuesToBeBetween,
                     f"adjusted close inconsistent with close, splits and dividends (> {max_adjustment_gap:g})",
                     column="adjustment_gap", min_value=-max_adjustment_gap, max_value=max_adjustment_gap))
    ex.append(expect(gxe.ExpectColumnValuesToBeBetween,
                     f"recorded split not shown by the close (|log(close * split / previous close)| > "
                     f"{MAX_SPLIT_SHORTFALL:g} |log split|)",
                     column="split_shortfall", min_value=-MAX_SPLIT_SHORTFALL, max_value=MAX_SPLIT_SHORTFALL))
    ex.append(expect(gxe.ExpectColumnValuesToBeNull,
                     "invalid split coefficients (valid: finite and > 0; 1 = no split)", column="invalid_split"))
    ex.append(expect(gxe.ExpectColumnValuesToBeNull,
                     "invalid dividend amounts (valid: finite and >= 0; 0 = no dividend)", column="invalid_dividend"))
    ex.append(expect(gxe.ExpectColumnValuesToBeNull,
                     "split on a ticker's first bar not judged (no previous close to show it)", Severity.WARNING,
                     column="first_bar_split"))
    return ex


def validate_prices(prices: pd.DataFrame, *, max_stale_days: int = DEFAULT_MAX_STALE_DAYS,
                    max_abs_log_return: float = DEFAULT_MAX_ABS_LOG_RETURN,
                    review_abs_return: float = DEFAULT_REVIEW_ABS_RETURN,
                    expected_tickers: list[str] | None = None) -> ValidationReport:
    """Validate a wide price panel (dates x tickers) with Great Expectations.

    Errors: missing values (internal gaps), wrong types, non-positive or infinite prices, duplicate dates,
    unsorted dates, stale prices (unchanged more than ``max_stale_days`` days running),
    implausible one-day jumps (``|log return| > max_abs_log_return``) and, when
    ``expected_tickers`` is given, missing tickers. Warning: large one-day moves to review
    (``|simple return| > review_abs_return`` while not implausible). Prices observed weekly,
    monthly, ... are checked per period ("implausible one-month jumps") with the implausible limit
    widened for the longer period (:func:`period_limits`). Returns a
    :class:`ValidationReport` (``report.raise_if_failed()`` raises
    :class:`~qpo.errors.DataValidationError` on an error, never on a warning).
    """
    params = {"max_stale_days": max_stale_days, "max_abs_log_return": max_abs_log_return,
              "review_abs_return": review_abs_return, "expected_tickers": _listed(expected_tickers)}
    _check_params(max_stale_days, max_abs_log_return, review_abs_return)
    panel = Panel(prices, float(max_abs_log_return))
    freq, period, limit = period_limits(panel.dates, max_abs_log_return)
    if freq != "business-daily":  # the limit at the data's own frequency (see period_limits)
        params.update(frequency=freq, period_max_abs_log_return=limit)
        panel.max_abs_log_return = limit
    ex = _price_expectations(["price"], max_stale_days, limit, review_abs_return, expected_tickers,
                             has_volume=False, period=period)
    outcomes = []
    for e in ex:  # each derived column computed when first needed, dropped when no later check needs it
        cfg = e.configuration
        outcomes.append(evaluate(panel, cfg.type, dict(cfg.kwargs)))
        if cfg.kwargs.get("column") in ("step_days", "stale_days", "simple_return"):
            panel.forget(cfg.kwargs["column"])
            if cfg.kwargs["column"] == "simple_return":
                panel.forget("log_return")
    vresult, page = publish_results("prices", ex, outcomes)
    on = panel.dates[panel.listed.any(axis=1) & ~np.asarray(panel.dates.isna())]
    return build_report("prices", vresult, page, params, n_rows=panel.n_rows, n_tickers=len(panel.tickers),
                        start=plain(on.min()) if len(on) else None, end=plain(on.max()) if len(on) else None)


def _listed(tickers: list[str] | None) -> list[str] | str | None:
    """Expected tickers as a report's parameter: the list, or its count when long (reports stay small)."""
    if tickers is None or len(tickers) <= _LISTED_TICKERS:
        return tickers
    return f"{len(tickers)} tickers ({', '.join(map(str, list(tickers)[:5]))}, ...)"


def validate_ohlcv(bars: pd.DataFrame, *, max_stale_days: int = DEFAULT_MAX_STALE_DAYS,
                   max_abs_log_return: float = DEFAULT_MAX_ABS_LOG_RETURN,
                   max_adjustment_gap: float = DEFAULT_MAX_ADJUSTMENT_GAP,
                   review_abs_return: float = DEFAULT_REVIEW_ABS_RETURN,
                   expected_tickers: list[str] | None = None, missing_bars: bool = True) -> ValidationReport:
    """Validate long OHLCV bars (:func:`qpo.load_ohlcv`'s columns): everything
    :func:`validate_prices` checks (on ``adjusted_close``; missing values and non-positive
    prices on every price column), plus the errors high < low, open/close outside [low, high],
    negative volume, an adjusted close whose day-to-day change disagrees with the one implied by
    the raw close, the split coefficient and the dividend (``|gap| > max_adjustment_gap`` in log
    return: a missed or doubled split or dividend adjustment), and a recorded split that the
    close does not show (``split_coefficient`` r while the close did not move by about 1/r:
    ``|log(close_t * r / close_{t-1})| > MAX_SPLIT_SHORTFALL * |log r|``, for splits beyond
    5-for-4 either way; an adjusted close that then jumps by r is consistent with the record, so
    only this check sees it), a missing bar (a date the other tickers have, inside a ticker's own
    first to last bar: the bars' missing value, which the price panel they make would hold as an
    empty cell), and split or dividend records that make no sense: a
    ``split_coefficient`` that is not finite and > 0 (0, -2, NaN, inf: 1 means no split) or a
    ``dividend_amount`` that is not finite and >= 0 (a column missing on every row is one the file
    did not have: not checked). Warning: a split recorded on a ticker's first bar (beyond 5-for-4
    either way), which no previous close can confirm. ``missing_bars=False`` leaves the missing-bar
    check out, for bars that are not one file's days (each ticker's last stored bar and first new one,
    on dates of their own)."""
    import great_expectations.expectations as gxe

    from qpo.data.loaders import OHLCV_COLUMNS

    params = {"max_stale_days": max_stale_days, "max_abs_log_return": max_abs_log_return,
              "max_adjustment_gap": max_adjustment_gap, "review_abs_return": review_abs_return,
              "expected_tickers": _listed(expected_tickers)}
    _check_params(max_stale_days, max_abs_log_return, review_abs_return, max_adjustment_gap)
    if not isinstance(bars, pd.DataFrame):
        raise DataError(f"bars must be a pandas DataFrame, got {type(bars).__name__}")
    missing = [c for c in OHLCV_COLUMNS if c not in bars.columns]
    if missing:
        raise DataError(f"bars lack columns {missing}; load them with qpo.load_ohlcv (expected {OHLCV_COLUMNS})")
    long = numeric_columns(bars[OHLCV_COLUMNS].reset_index(drop=True).copy(),
                           ["open", "high", "low", "close", "adjusted_close", "volume", "split_coefficient",
                            "dividend_amount"])
    long = add_split_shortfall(add_adjustment_gap(add_series_columns(long, "adjusted_close")))
    long = add_record_checks(long)
    freq, period, limit = period_limits(pd.to_datetime(long["date"], errors="coerce").dropna().unique(),
                                        max_abs_log_return)
    if freq != "business-daily":  # the limit at the data's own frequency (see period_limits)
        params.update(frequency=freq, period_max_abs_log_return=limit)
    long = add_simple_return(long, limit)
    long = long.drop(columns=["split_coefficient", "dividend_amount"])  # GX copies every column it filters
    ex = _price_expectations(["open", "high", "low", "close", "adjusted_close"], max_stale_days,
                             limit, review_abs_return, expected_tickers, has_volume=True, period=period)
    ex += _ohlcv_expectations(max_adjustment_gap)
    if missing_bars:  # the bars' "missing values": a date the others have, inside a ticker's history
        long = add_missing_bars(long)
        ex.insert(1, expect(gxe.ExpectColumnValuesToBeBetween, "missing bars (a date other tickers have, inside a "
                            "ticker's history; the bar after the gap shown)", column="missing_bars", max_value=0))
    vresult, page = run_suite("ohlcv", long, ex, ["ticker", "date"])
    return long_report("ohlcv", long, vresult, page, params)


def _check_params(max_stale_days: object, max_abs_log_return: object, review_abs_return: object,
                  max_adjustment_gap: object = DEFAULT_MAX_ADJUSTMENT_GAP) -> None:
    if isinstance(max_stale_days, bool) or not isinstance(max_stale_days, numbers.Integral) or int(max_stale_days) < 1:
        raise InvalidValueError(f"max_stale_days must be a whole number of days >= 1, got {max_stale_days!r}")
    if isinstance(max_abs_log_return, bool) or not isinstance(max_abs_log_return, numbers.Real) \
            or not float(max_abs_log_return) > 0:
        raise InvalidValueError(f"max_abs_log_return must be a number > 0 (1.0 allows a fall of 63 %), "
                                f"got {max_abs_log_return!r}")
    if not (isinstance(max_adjustment_gap, numbers.Real) and float(max_adjustment_gap) > 0):
        raise InvalidValueError(f"max_adjustment_gap must be a number > 0, got {max_adjustment_gap!r}")
    positive("review_abs_return", review_abs_return, hint="a simple return: 0.4 reviews moves beyond 40 %")


def validate_source(source: str | Path, *, start=None, kind: str = "auto", ticker: str | None = None,
                    max_stale_days: int = DEFAULT_MAX_STALE_DAYS,
                    max_abs_log_return: float = DEFAULT_MAX_ABS_LOG_RETURN,
                    max_adjustment_gap: float = DEFAULT_MAX_ADJUSTMENT_GAP,
                    review_abs_return: float = DEFAULT_REVIEW_ABS_RETURN) -> tuple[ValidationReport, pd.DataFrame | None]:
    """Load a source exactly as it is and validate it with the suite that fits it.

    ``source`` is a bundled source name (``"sp500"``...) or the path of a CSV/Parquet file: long
    OHLCV bars (``kind="ohlcv"``) or a wide price panel (``"prices"``); ``"auto"`` tells them
    apart by their columns; ``ticker`` names whose bars a one-ticker OHLCV file without a ``ticker``
    column holds (as Alpha Vantage's CSV downloads are). Rows before ``start`` are left out. Returns the report and, when the
    data passed (no error; warnings may be listed), the adjusted-close price panel (dates
    sorted); ``None`` when it failed. Raises :class:`~qpo.errors.DataError` when the source
    cannot be read at all.
    """
    from qpo.data.loaders import (
        PRICE_SOURCES,
        check_file_ticker,
        file_kind,
        is_file_source,
        load_ohlcv,
        load_price_file,
        load_prices,
        ohlcv_to_prices,
    )

    if kind not in ("auto", "prices", "ohlcv"):
        raise UnknownOptionError("validation kind", kind, ["auto", "prices", "ohlcv"])
    _check_params(max_stale_days, max_abs_log_return, review_abs_return, max_adjustment_gap)
    limits: dict[str, Any] = {"max_stale_days": max_stale_days, "max_abs_log_return": max_abs_log_return,
                              "review_abs_return": review_abs_return}
    if isinstance(source, str) and source in PRICE_SOURCES:
        prices = load_prices(source, start=start)
        result = validate_prices(prices, **limits)
        return result, (prices if result.success else None)
    if not is_file_source(source):
        raise UnknownOptionError("price source", source, list(PRICE_SOURCES) + ["<path to a .csv or .parquet file>"])
    path = Path(source)
    if kind == "auto":
        kind = file_kind(path)
    check_file_ticker(path, kind, ticker)
    if kind == "ohlcv":
        bars = load_ohlcv(path, ticker=ticker, start=start)
        result = validate_ohlcv(bars, max_adjustment_gap=max_adjustment_gap, **limits)
        return result, (ohlcv_to_prices(bars) if result.success else None)
    prices = load_price_file(path, start=start)
    result = validate_prices(prices, **limits)
    return result, (prices if result.success else None)


def validate_file(path: str | Path, kind: str = "auto", ticker: str | None = None, **limits: Any) -> ValidationReport:
    """Validate a CSV/Parquet file (OHLCV bars or a wide price panel); see :func:`validate_source`."""
    return validate_source(Path(path), kind=kind, ticker=ticker, **limits)[0]
