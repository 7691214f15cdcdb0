"""Data validation with Great Expectations (GX 1.x).

Both suites run on a *long* frame (one row per ticker and date, in the data's own order) to
which qpo adds three derived columns per ticker, so that plain GX expectations can see
time-series defects:

``step_days``
    days since the ticker's previous row (negative: dates out of order; 0: a repeated date);
``stale_days``
    for each row of a run of identical consecutive prices, the number of days the price stayed
    unchanged in that run (the run's length minus one);
``log_return``
    ``log(p_t / p_{t-1})`` against the ticker's previous row.

Policy for wide panels: a ticker's NaNs *before its first* and *after its last* price mean
"not listed yet / any more" and are not defects; every other NaN is a missing value.

A cell that holds text instead of a number (``"27,33"``) is reported as a wrong type, with the
column and the text in ``not_a_number``; it is also a missing price.

Each expectation carries ``meta.check``, the defect it looks for; the report lists every
failed one with the offending (ticker, date, value) rows and the Data Docs page written for
the run (``QPO_DATA_DOCS_DIR``, default ``data_docs/`` in ``QPO_HOME``).
"""
from __future__ import annotations

import numbers
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qpo import config
from qpo.errors import DataError, InvalidValueError, UnknownOptionError
from qpo.validation.frames import (
    add_adjustment_gap,
    add_series_columns,
    numeric_columns,
    panel_to_long,
)
from qpo.validation.report import FailedExpectation, ValidationReport

#: A price unchanged for more than this many consecutive days is stale.
DEFAULT_MAX_STALE_DAYS = 10
#: A day whose adjusted-close log return differs from the log return implied by the close, the split
#: coefficient and the dividend by more than this has a broken adjustment (a missed split, say).
DEFAULT_MAX_ADJUSTMENT_GAP = 0.05
#: A one-day |log return| above this (a fall of more than 63 %, a rise of more than 172 %) is implausible.
DEFAULT_MAX_ABS_LOG_RETURN = 1.0
_EXAMPLES = 20


def _price_expectations(price_cols: list[str], max_stale_days: int, max_abs_log_return: float,
                        expected_tickers: list[str] | None, has_volume: bool):
    import great_expectations.expectations as gxe

    ex = []
    key_cols = ["date", "ticker"] + price_cols + (["volume"] if has_volume else [])
    for c in key_cols:
        ex.append(gxe.ExpectColumnValuesToNotBeNull(column=c, meta={"check": f"missing values ({c})"}))
    ex.append(gxe.ExpectColumnValuesToBeNull(column="not_a_number",
                                             meta={"check": "wrong type (text where a number belongs)"}))
    for c in price_cols:
        ex.append(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, strict_min=True,
                                                    meta={"check": f"non-positive prices ({c})"}))
    if has_volume:
        ex.append(gxe.ExpectColumnValuesToBeBetween(column="volume", min_value=0,
                                                    meta={"check": "negative volume"}))
    ex.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=["ticker", "date"],
                                                  meta={"check": "duplicate dates"}))
    ex.append(gxe.ExpectColumnValuesToBeBetween(column="step_days", min_value=0,
                                                meta={"check": "unsorted dates"}))
    ex.append(gxe.ExpectColumnValuesToBeBetween(column="stale_days", max_value=max_stale_days,
                                                meta={"check": f"stale prices (unchanged > {max_stale_days} days)"}))
    ex.append(gxe.ExpectColumnValuesToBeBetween(column="log_return", min_value=-max_abs_log_return,
                                                max_value=max_abs_log_return,
                                                meta={"check": f"implausible one-day jumps (|log return| > {max_abs_log_return:g})"}))
    if expected_tickers:
        ex.append(gxe.ExpectColumnDistinctValuesToContainSet(column="ticker", value_set=sorted(expected_tickers),
                                                             meta={"check": "missing tickers"}))
    return ex


def _ohlcv_expectations(max_adjustment_gap: float):
    import great_expectations.expectations as gxe

    gap = gxe.ExpectColumnValuesToBeBetween(
        column="adjustment_gap", min_value=-max_adjustment_gap, max_value=max_adjustment_gap,
        meta={"check": f"adjusted close inconsistent with close, splits and dividends (> {max_adjustment_gap:g})"})
    pairs = [("high", "low", "high < low"), ("high", "open", "open above high"),
             ("high", "close", "close above high"), ("open", "low", "open below low"),
             ("close", "low", "close below low")]
    return [gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=a, column_B=b, or_equal=True,
                                                        meta={"check": check}) for a, b, check in pairs] + [gap]


def _run_suite(kind: str, long: pd.DataFrame, expectations, example_cols: list[str]) -> tuple[Any, str | None]:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    docs_dir = config.data_docs_dir()
    # in memory, but for one Data Docs site in QPO_DATA_DOCS_DIR (no temporary sites, no analytics)
    ctx = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={"qpo": {"class_name": "SiteBuilder", "store_backend": {
            "class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)}}},
        analytics_enabled=False, progress_bars=ProgressBarsConfig(globally=False)))
    asset = ctx.data_sources.add_pandas(f"qpo_{kind}").add_dataframe_asset(kind)
    batch_def = asset.add_batch_definition_whole_dataframe("whole")
    suite = ctx.suites.add(gx.ExpectationSuite(name=f"qpo_{kind}"))
    for e in expectations:
        suite.add_expectation(e)
    vdef = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"qpo_{kind}_{uuid.uuid4().hex[:8]}",
                                                                  data=batch_def, suite=suite))
    checkpoint = ctx.checkpoints.add(gx.Checkpoint(
        name=f"qpo_{kind}_checkpoint", validation_definitions=[vdef],
        actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["qpo"])],
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": example_cols,
                       "partial_unexpected_count": _EXAMPLES}))
    result = checkpoint.run(batch_parameters={"dataframe": long})
    (identifier, vresult), = result.run_results.items()
    page = None
    try:
        urls = ctx.get_docs_sites_urls(resource_identifier=identifier, site_name="qpo")
        page = urls[0]["site_url"] if urls else None
    except Exception:  # noqa: BLE001 - the index is the fallback
        page = (docs_dir / "index.html").as_uri()
    if page and page.startswith("file://"):
        page = str(Path(page[len("file://"):]))
    return vresult, page


def _failures(vresult, long: pd.DataFrame) -> list[FailedExpectation]:
    out = []
    for r in vresult.results:
        if r.success:
            continue
        cfg = r.expectation_config
        kw = cfg.kwargs
        columns = [kw[k] for k in ("column", "column_A", "column_B") if k in kw] + list(kw.get("column_list", []))
        res = r.result or {}
        examples = []
        for row in (res.get("unexpected_index_list") or [])[:_EXAMPLES]:
            if isinstance(row, dict):
                examples.append({k: _plain(v) for k, v in row.items()})
            else:
                examples.append({"row": row})
        error = _exception_message(r.exception_info)
        if error:
            observed = f"the check could not run: {error}"
        else:
            observed = res.get("observed_value") if not examples else None
        count = res.get("unexpected_count")
        out.append(FailedExpectation(
            check=(cfg.meta or {}).get("check", cfg.type), expectation=cfg.type, columns=columns,
            unexpected_count=int(count) if count is not None else 0,
            unexpected_percent=res.get("unexpected_percent"), examples=examples,
            observed=observed if not isinstance(observed, (list, set)) or len(observed) < 50 else f"{len(observed)} values"))
    return out


def _plain(v):
    """A JSON-ready value: dates as ISO strings, numpy scalars as Python numbers, NaN as None."""
    if isinstance(v, pd.Timestamp):
        return str(v.date()) if v == v.normalize() else v.isoformat()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def _exception_message(info) -> str | None:
    """GX 1.x keeps errors either flat or per metric: {metric_id: {raised_exception, exception_message}}."""
    if not info:
        return None
    infos = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    msgs = [i.get("exception_message") for i in infos if i.get("raised_exception")]
    return "; ".join(str(m) for m in msgs if m) or None


def _report(kind, long, vresult, page, params) -> ValidationReport:
    dates = pd.to_datetime(long["date"], errors="coerce")
    failures = _failures(vresult, long)
    return ValidationReport(
        kind=kind, success=bool(vresult.success) and not failures, n_rows=len(long),
        n_tickers=int(long["ticker"].nunique()),
        start=str(dates.min().date()) if dates.notna().any() else None,
        end=str(dates.max().date()) if dates.notna().any() else None,
        n_expectations=len(vresult.results), failures=failures, data_docs=page, parameters=params)


def validate_prices(prices: pd.DataFrame, *, max_stale_days: int = DEFAULT_MAX_STALE_DAYS,
                    max_abs_log_return: float = DEFAULT_MAX_ABS_LOG_RETURN,
                    expected_tickers: list[str] | None = None) -> ValidationReport:
    """Validate a wide price panel (dates x tickers) with Great Expectations.

    Checks: missing values (internal gaps), wrong types, non-positive prices, duplicate dates,
    unsorted dates, stale prices (unchanged more than ``max_stale_days`` days running),
    implausible one-day jumps (``|log return| > max_abs_log_return``) and, when
    ``expected_tickers`` is given, missing tickers. Returns a :class:`ValidationReport`
    (``report.raise_if_failed()`` raises :class:`~qpo.errors.DataValidationError`).
    """
    params = {"max_stale_days": max_stale_days, "max_abs_log_return": max_abs_log_return,
              "expected_tickers": expected_tickers}
    _check_params(max_stale_days, max_abs_log_return)
    long = panel_to_long(prices)
    ex = _price_expectations(["price"], max_stale_days, max_abs_log_return, expected_tickers, has_volume=False)
    vresult, page = _run_suite("prices", long, ex, ["ticker", "date"])
    return _report("prices", long, vresult, page, params)


def validate_ohlcv(bars: pd.DataFrame, *, max_stale_days: int = DEFAULT_MAX_STALE_DAYS,
                   max_abs_log_return: float = DEFAULT_MAX_ABS_LOG_RETURN,
                   max_adjustment_gap: float = DEFAULT_MAX_ADJUSTMENT_GAP,
                   expected_tickers: list[str] | None = None) -> ValidationReport:
    """Validate long OHLCV bars (:func:`qpo.load_ohlcv`'s columns): everything
    :func:`validate_prices` checks (on ``adjusted_close``; missing values and non-positive
    prices on every price column), plus high < low, open/close outside [low, high], negative
    volume, and an adjusted close whose day-to-day change disagrees with the one implied by the
    raw close, the split coefficient and the dividend (``|gap| > max_adjustment_gap`` in log
    return: a missed or doubled split or dividend adjustment)."""
    from qpo.data.loaders import OHLCV_COLUMNS

    params = {"max_stale_days": max_stale_days, "max_abs_log_return": max_abs_log_return,
              "max_adjustment_gap": max_adjustment_gap, "expected_tickers": expected_tickers}
    _check_params(max_stale_days, max_abs_log_return)
    if not (isinstance(max_adjustment_gap, numbers.Real) and max_adjustment_gap > 0):
        raise InvalidValueError(f"max_adjustment_gap must be a number > 0, got {max_adjustment_gap!r}")
    if not isinstance(bars, pd.DataFrame):
        raise DataError(f"bars must be a pandas DataFrame, got {type(bars).__name__}")
    missing = [c for c in OHLCV_COLUMNS if c not in bars.columns]
    if missing:
        raise DataError(f"bars lack columns {missing}; load them with qpo.load_ohlcv (expected {OHLCV_COLUMNS})")
    long = numeric_columns(bars[OHLCV_COLUMNS].reset_index(drop=True).copy(),
                           ["open", "high", "low", "close", "adjusted_close", "volume", "split_coefficient",
                            "dividend_amount"])
    long = add_adjustment_gap(add_series_columns(long, "adjusted_close"))
    long = long.drop(columns=["split_coefficient", "dividend_amount"])  # GX copies every column it filters
    ex = _price_expectations(["open", "high", "low", "close", "adjusted_close"], max_stale_days,
                             max_abs_log_return, expected_tickers, has_volume=True) + _ohlcv_expectations(
        max_adjustment_gap)
    vresult, page = _run_suite("ohlcv", long, ex, ["ticker", "date"])
    return _report("ohlcv", long, vresult, page, params)


def _check_params(max_stale_days, max_abs_log_return):
    if isinstance(max_stale_days, bool) or not isinstance(max_stale_days, numbers.Integral) or max_stale_days < 1:
        raise InvalidValueError(f"max_stale_days must be a whole number of days >= 1, got {max_stale_days!r}")
    if isinstance(max_abs_log_return, bool) or not isinstance(max_abs_log_return, numbers.Real) \
            or not max_abs_log_return > 0:
        raise InvalidValueError(f"max_abs_log_return must be a number > 0 (1.0 allows a fall of 63 %), "
                                f"got {max_abs_log_return!r}")


def validate_source(source: str | Path, *, start=None, kind: str = "auto",
                    max_stale_days: int = DEFAULT_MAX_STALE_DAYS,
                    max_abs_log_return: float = DEFAULT_MAX_ABS_LOG_RETURN,
                    max_adjustment_gap: float = DEFAULT_MAX_ADJUSTMENT_GAP) -> tuple[ValidationReport, pd.DataFrame | None]:
    """Load a source exactly as it is and validate it with the suite that fits it.

    ``source`` is a bundled source name (``"sp500"``...) or the path of a CSV/Parquet file: long
    OHLCV bars (``kind="ohlcv"``) or a wide price panel (``"prices"``); ``"auto"`` tells them
    apart by their columns. Rows before ``start`` are left out. Returns the report and, when the
    data passed, the adjusted-close price panel (dates sorted); ``None`` when it failed.
    Raises :class:`~qpo.errors.DataError` when the source cannot be read at all.
    """
    from qpo.data.loaders import (
        PRICE_SOURCES,
        file_kind,
        is_file_source,
        load_ohlcv,
        load_price_file,
        load_prices,
        ohlcv_to_prices,
    )

    if kind not in ("auto", "prices", "ohlcv"):
        raise UnknownOptionError("validation kind", kind, ["auto", "prices", "ohlcv"])
    _check_params(max_stale_days, max_abs_log_return)
    if not (isinstance(max_adjustment_gap, numbers.Real) and max_adjustment_gap > 0):
        raise InvalidValueError(f"max_adjustment_gap must be a number > 0, got {max_adjustment_gap!r}")
    limits = {"max_stale_days": max_stale_days, "max_abs_log_return": max_abs_log_return}
    if isinstance(source, str) and source in PRICE_SOURCES:
        prices = load_prices(source, start=start)
        report = validate_prices(prices, **limits)
        return report, (prices if report.success else None)
    if not is_file_source(source):
        raise UnknownOptionError("price source", source, list(PRICE_SOURCES) + ["<path to a .csv or .parquet file>"])
    path = Path(source)
    if kind == "auto":
        kind = file_kind(path)
    if kind == "ohlcv":
        bars = load_ohlcv(path, start=start)
        report = validate_ohlcv(bars, max_adjustment_gap=max_adjustment_gap, **limits)
        return report, (ohlcv_to_prices(bars) if report.success else None)
    prices = load_price_file(path, start=start)
    report = validate_prices(prices, **limits)
    return report, (prices if report.success else None)


def validate_file(path: str | Path, kind: str = "auto", **limits) -> ValidationReport:
    """Validate a CSV/Parquet file (OHLCV bars or a wide price panel); see :func:`validate_source`."""
    return validate_source(Path(path), kind=kind, **limits)[0]
