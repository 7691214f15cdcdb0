"""Risk metrics and the risk report.

Conventions (stated once, used everywhere in qpo)
-------------------------------------------------
* Returns are **simple** period returns ``p_t / p_{t-1} - 1``.
* A fixed-weight portfolio is rebalanced to its weights every period: ``r_p = R @ w``.
* ``periods_per_year`` P annualizes: volatility ``std(r, ddof=1) * sqrt(P)``,
  mean return ``mean(r) * P``; CAGR is geometric: ``prod(1 + r) ** (P / n) - 1``. P is a
  property of the data: None (the default) reads it from the returns' dates
  (:func:`qpo.data.infer_frequency`: 252 business days, 365 calendar days, 52 weekly, 12
  monthly); returns without dates (a numpy array, an integer index) take the business-day
  convention, 252 (:data:`qpo.data.BUSINESS_DAYS_PER_YEAR`). A number given overrides.
* Sharpe = ``mean(r - rf/P) / std(r, ddof=1) * sqrt(P)`` with an annual ``risk_free_rate``.
* Max drawdown is on compounded wealth ``prod(1 + r)``, reported as a positive fraction.
* Sortino = ``mean(r - rf/P) / sqrt(mean(min(r - rf/P, 0)^2)) * sqrt(P)`` (downside deviation
  over all periods, target the risk-free rate); Calmar = CAGR / max drawdown.
* Skew and kurtosis are the bias-adjusted sample statistics (pandas' ``skew`` and ``kurt``);
  **kurtosis is excess kurtosis** (0 for a normal distribution).
* Hit rate = the share of periods with a return > 0 (a zero return is not a hit).
* VaR and CVaR are **positive losses** over one period at ``confidence`` c. With the returns
  sorted ascending and ``k = (1 - c) n``: VaR = minus the ``ceil(k)``-th smallest return;
  CVaR = minus the mean of the worst ``k`` returns (fractional ``k`` weights the boundary
  return: Rockafellar-Uryasev), so CVaR >= VaR. Other methods and horizons: :mod:`qpo.risk.var`.
* Against a benchmark b: beta = ``cov(r, b) / var(b)``; alpha (Jensen, annualized) =
  ``P * (mean(r - rf/P) - beta * mean(b - rf/P))``; tracking error = ``std(r - b, ddof=1) * sqrt(P)``;
  information ratio = ``P * mean(r - b) / tracking error``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qpo import measures
from qpo._checks import check_dated, positive, price_like
from qpo.data.calendar import BUSINESS_DAYS_PER_YEAR, Frequency, infer_frequency
from qpo.errors import DataError
from qpo.measures import tail_size

#: the periods a year of returns without dates: the business-day convention
PERIODS_PER_YEAR = BUSINESS_DAYS_PER_YEAR

#: what one period is called, by periods a year
_PERIOD_NAMES = {252: "day", 365: "day", 260: "day", 52: "week", 26: "fortnight", 12: "month", 4: "quarter",
                 2: "half-year", 1: "year"}


def period_name(periods_per_year: float) -> str:
    """What one period of data observed ``periods_per_year`` times a year is called: ``day`` (252 or
    365), ``week`` (52), ``month`` (12), ... and ``period`` otherwise."""
    return _PERIOD_NAMES.get(int(periods_per_year), "period") if float(periods_per_year).is_integer() else "period"


def period_adjective(periods_per_year: float) -> str:
    """``daily`` (252 or 365 a year), ``weekly``, ``monthly``, ... and ``periodic`` otherwise: what
    the returns of data observed ``periods_per_year`` times a year are called."""
    name = period_name(periods_per_year)
    return {"day": "daily", "half-year": "half-yearly", "year": "annual", "period": "periodic"}.get(name, name + "ly")


def frequency_of(returns, periods_per_year=None) -> Frequency:
    """The :class:`qpo.data.Frequency` that annualizes ``returns``: ``periods_per_year`` when given
    (a whole number > 0, or a :class:`~qpo.data.Frequency`), else read from the dates of
    ``returns`` (a Series or DataFrame with a DatetimeIndex), else the business-day convention
    (``source="assumed"``). Irregular dates are a :class:`~qpo.errors.DataError`."""
    if isinstance(periods_per_year, Frequency):
        return periods_per_year
    if periods_per_year is not None:
        return infer_frequency(None, periods_per_year)
    return infer_frequency(getattr(returns, "index", None))


def annualization(returns, periods_per_year=None) -> float:
    """The periods a year that annualize ``returns`` (see :func:`frequency_of`); a number given is
    only checked positive."""
    if periods_per_year is None or isinstance(periods_per_year, Frequency):
        return frequency_of(returns, periods_per_year).periods_per_year
    return _ppy(periods_per_year)


def percent(fraction: float) -> str:
    """0.95 -> '95%', 0.975 -> '97.5%', 0.999 -> '99.9%' (no rounding away of what matters)."""
    return f"{fraction * 100:.6f}".rstrip("0").rstrip(".") + "%"


def _values(returns) -> np.ndarray:
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1:
        raise DataError(f"expected one return series, got an array of shape {r.shape}")
    if r.size == 0:
        raise DataError("the return series is empty")
    if not np.isfinite(r).all():
        raise DataError(f"the return series holds {int((~np.isfinite(r)).sum())} NaN/inf values")
    return r


def check_simple_returns(returns: pd.DataFrame | pd.Series, name: str = "returns", *, assets: bool = True) -> None:
    """Refuse what cannot be simple returns as fractions (0.01 for 1 %), the units a risk report
    compounds and annualizes: columns that move like price levels (:func:`qpo._checks.price_like`),
    and, for the returns of assets or an index (``assets``), a return below -1 (-100 %), which no
    price gives (returns in percent, where -1.5 means -1.5 %, meet it on their first bad day). A
    portfolio's own return series may fall below -100 % (leverage, shorts), so ``assets=False``
    checks only for levels. Before, prices gave an infinite CAGR and percent returns a CAGR of
    -100 %, each beside plausible-looking numbers."""
    frame = returns.to_frame() if isinstance(returns, pd.Series) else returns
    values = frame.to_numpy(dtype=float)
    if assets:
        with np.errstate(invalid="ignore"):
            low = np.argwhere(values < -1.0)
        if len(low):
            i, j = low[0]
            day = frame.index[i]
            raise DataError(f"{name} hold a return of {values[i, j]:.6g} ({frame.columns[j]} on "
                            f"{day.date() if hasattr(day, 'date') else day}): a simple return of an asset is -1 "
                            "(-100 %) or above; give simple returns as fractions (0.01 for 1 %): are these in percent "
                            "(divide by 100)?")
    levels = [str(c) for c, flag in zip(frame.columns, price_like(values)) if flag]
    if levels:
        raise DataError(f"{name} look like prices, not returns: {', '.join(levels[:5])}"
                        f"{f' and {len(levels) - 5} more' if len(levels) > 5 else ''} (every value positive, a median "
                        "above 0.5, each value close to the last, as a price level moves); turn prices into returns "
                        "with qpo.prices_to_returns")


def portfolio_returns(weights: pd.Series, returns: pd.DataFrame) -> pd.Series:
    """Per-period returns of a portfolio held at constant ``weights`` (rebalanced each period).

    ``weights`` is indexed by ticker; every ticker must be a column of ``returns``.
    """
    if not isinstance(weights, pd.Series):
        raise DataError("weights must be a pandas Series indexed by ticker")
    if weights.index.has_duplicates:
        dup = sorted({str(t) for t in weights.index[weights.index.duplicated()]})[:10]
        raise DataError(f"weights name the ticker(s) {dup} more than once; give one weight per ticker")
    check_dated(returns, "returns")
    missing = [t for t in weights.index if t not in returns.columns]
    if missing:
        raise DataError(f"weights name tickers that the returns do not have: {missing}; "
                        f"returns have {list(returns.columns)}")
    sub = returns[list(weights.index)]
    if sub.isna().to_numpy().any():
        cols = sub.columns[sub.isna().any()].tolist()
        raise DataError(f"returns hold NaN for held tickers {cols}; trim the window or drop them")
    out = sub.to_numpy() @ weights.to_numpy(dtype=float)
    return pd.Series(out, index=returns.index, name="portfolio")


def annualized_volatility(returns, periods_per_year: float | None = None) -> float:
    periods_per_year = annualization(returns, periods_per_year)
    return float(np.std(_values(returns), ddof=1) * math.sqrt(periods_per_year))


def cagr(returns, periods_per_year: float | None = None) -> float:
    periods_per_year = annualization(returns, periods_per_year)
    r = _values(returns)
    growth = float(np.prod(1.0 + r))
    return growth ** (periods_per_year / r.size) - 1.0 if growth > 0 else -1.0


def _no_dispersion(sd: float, mean: float) -> bool:
    """A standard deviation that is rounding noise (a constant series gives 1e-19, not 0)."""
    return not sd > 1e-12 * max(abs(mean), 1e-12)


def sharpe_ratio(returns, risk_free_rate: float = 0.0, periods_per_year: float | None = None) -> float:
    periods_per_year = annualization(returns, periods_per_year)
    r = _values(returns) - risk_free_rate / periods_per_year
    sd = float(np.std(r, ddof=1)) if r.size > 1 else 0.0
    return float("nan") if _no_dispersion(sd, float(r.mean())) else float(r.mean() / sd * math.sqrt(periods_per_year))


def drawdown_series(returns: pd.Series) -> pd.Series:
    """Drawdown from the running peak of compounded wealth (<= 0)."""
    wealth = (1.0 + pd.Series(returns, dtype=float)).cumprod()
    peak = np.maximum(wealth.cummax(), 1.0)  # the starting wealth of 1 is a peak too
    return wealth / peak - 1.0


def max_drawdown(returns) -> float:
    """Largest peak-to-trough loss of compounded wealth, as a positive fraction."""
    _values(returns)
    return float(-drawdown_series(pd.Series(np.asarray(returns, dtype=float))).min())


def _tail(r: np.ndarray, confidence: float) -> tuple[np.ndarray, float, int]:
    k, ik = tail_size(r.size, confidence)
    return np.sort(r), k, ik


def historical_var(returns, confidence: float = 0.95) -> float:
    """One-period historical Value at Risk, a positive loss (see the module's conventions)."""
    return measures.var(_values(returns), confidence)


def historical_cvar(returns, confidence: float = 0.95) -> float:
    """One-period historical CVaR (expected shortfall), a positive loss, >= VaR."""
    return measures.cvar(_values(returns), confidence)


def _ppy(periods_per_year) -> float:
    return positive("periods_per_year", periods_per_year, hint="252 for daily, 52 weekly, 12 monthly")


def sortino_ratio(returns, risk_free_rate: float = 0.0, periods_per_year: float | None = None) -> float:
    periods_per_year = annualization(returns, periods_per_year)
    r = _values(returns) - risk_free_rate / periods_per_year
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    return float(r.mean() / downside * math.sqrt(periods_per_year)) if downside > 0 else float("nan")


def calmar_ratio(returns, periods_per_year: float | None = None) -> float:
    periods_per_year = annualization(returns, periods_per_year)
    mdd = max_drawdown(returns)
    return cagr(returns, periods_per_year) / mdd if mdd > 0 else float("nan")


def skewness(returns) -> float:
    """Bias-adjusted sample skewness (pandas' ``Series.skew``)."""
    return float(pd.Series(_values(returns)).skew())


def excess_kurtosis(returns) -> float:
    """Bias-adjusted sample excess kurtosis (pandas' ``Series.kurt``; 0 for a normal distribution)."""
    return float(pd.Series(_values(returns)).kurt())


def hit_rate(returns) -> float:
    """Share of periods with a positive return (zero returns count as misses)."""
    r = _values(returns)
    return float((r > 0).mean())


@dataclass(frozen=True)
class DrawdownInfo:
    """The deepest drawdown: its depth (positive), the peak, the trough and the recovery dates
    (``peak`` is None when the peak is the starting wealth, ``recovery`` None when wealth has not
    regained the peak by the end). Durations count the periods spent below the peak: ``duration``
    for the deepest drawdown, ``longest_duration`` for the longest of the series."""

    max_drawdown: float
    peak: pd.Timestamp | int | None  # a date, or a position on an undated index
    trough: pd.Timestamp | int | None
    recovery: pd.Timestamp | int | None
    duration: int
    longest_duration: int


def drawdown_info(returns: pd.Series) -> DrawdownInfo:
    """Dates and durations of drawdowns of compounded wealth. The start (wealth 1 before the first
    return) is a peak; a period of drawdown ends on the first period whose wealth is back at the peak."""
    r = pd.Series(returns, dtype=float)
    _values(r)
    dd = drawdown_series(r).to_numpy()
    idx = r.index
    trough_i = int(np.argmin(dd))
    depth = float(-dd[trough_i])
    underwater = dd < 0
    # runs of consecutive underwater periods; a run's length counts its periods until recovery
    longest, run = 0, 0
    for u in underwater:
        run = run + 1 if u else 0
        longest = max(longest, run)
    if depth <= 0:
        return DrawdownInfo(0.0, None, None, None, 0, 0)
    peak_i = trough_i
    while peak_i >= 0 and dd[peak_i] < 0:
        peak_i -= 1
    peak = idx[peak_i] if peak_i >= 0 else None  # None: the peak is the starting wealth
    after = np.flatnonzero(~underwater[trough_i:])
    rec_i = trough_i + int(after[0]) if after.size else None
    duration = (rec_i if rec_i is not None else len(dd)) - (peak_i + 1)
    return DrawdownInfo(depth, peak, idx[trough_i], idx[rec_i] if rec_i is not None else None, int(duration),
                        int(longest))


def _aligned_benchmark(r: pd.Series, benchmark: pd.Series) -> np.ndarray:
    """The benchmark's returns on the portfolio's dates; by calendar day when both sides have one
    stamp a day in one zone and differ only in the time of day (an index's closes stamped 16:00,
    the portfolio's at midnight). Never filled."""
    given = pd.Series(benchmark, dtype=float)
    b = given.reindex(r.index)
    if b.isna().any() and isinstance(r.index, pd.DatetimeIndex) and isinstance(given.index, pd.DatetimeIndex) \
            and str(r.index.tz) == str(given.index.tz):
        days, bdays = r.index.normalize(), given.index.normalize()
        if days.is_unique and bdays.is_unique:
            by_day = pd.Series(given.to_numpy(), index=bdays).reindex(days)
            if by_day.notna().sum() > b.notna().sum():
                b = pd.Series(by_day.to_numpy(), index=r.index)
    if b.isna().any() and isinstance(r.index, pd.DatetimeIndex) and isinstance(given.index, pd.DatetimeIndex) \
            and (r.index.tz is None) != (given.index.tz is None):
        zoned, naive = ("the benchmark's", "the portfolio's") if r.index.tz is None else ("the portfolio's",
                                                                                        "the benchmark's")
        raise DataError(f"{zoned} dates carry a time zone and {naive} do not, so no date is the same; give both "
                        "in one zone, or both without (tz_localize(None))")
    if b.isna().any():
        missing = b.index[b.isna()]
        raise DataError(f"the benchmark has no return on {len(missing)} of the portfolio's {len(r)} dates "
                        f"(first {getattr(missing[0], 'date', lambda: missing[0])()}); give benchmark returns "
                        "on the same dates as the portfolio's (qpo aligns by date and does not fill)")
    return b.to_numpy()


def benchmark_statistics(returns: pd.Series, benchmark: pd.Series, risk_free_rate: float = 0.0,
                         periods_per_year: float | None = None) -> dict[str, float]:
    """Beta, alpha (annualized Jensen), correlation, tracking error and information ratio against a
    benchmark return series on the same dates (conventions: the module docstring)."""
    periods_per_year = annualization(returns, periods_per_year)
    r = _values(returns)
    b = _aligned_benchmark(pd.Series(returns), benchmark)
    _values(b)
    rf = risk_free_rate / periods_per_year
    var_b = float(np.var(b, ddof=1))
    cov = float(np.cov(r, b, ddof=1)[0, 1])
    beta = float("nan") if _no_dispersion(math.sqrt(var_b), float(b.mean())) else cov / var_b
    alpha = periods_per_year * (float(np.mean(r - rf)) - beta * float(np.mean(b - rf)))
    active = r - b
    te = float(np.std(active, ddof=1) * math.sqrt(periods_per_year))
    sd_r, sd_b = float(np.std(r, ddof=1)), math.sqrt(var_b)
    flat = _no_dispersion(sd_r, float(r.mean())) or _no_dispersion(sd_b, float(b.mean()))
    return {
        "beta": beta, "alpha": alpha,
        "correlation": float("nan") if flat else cov / (sd_r * sd_b),
        "tracking_error": te,
        "information_ratio": (float("nan") if _no_dispersion(te, float(active.mean()))
                              else float(active.mean() * periods_per_year / te)),
        "active_return": float(active.mean() * periods_per_year),
    }
