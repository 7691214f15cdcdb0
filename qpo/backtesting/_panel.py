"""The prepared price panel: everything a backtest needs that does not depend on the strategy. The
rebalance schedule, the estimation window of each rebalance, which tickers are eligible at it, and
the gaps policy applied to the prices."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qpo.backtesting._inputs import (
    FREQUENCIES,
    GAP_POLICIES,
    Rebalance,
    check_date,
    check_prices,
    check_rebalance,
    check_window,
)
from qpo.data.calendar import day_end
from qpo.errors import DataError, InvalidValueError, UnknownOptionError


@dataclass
class Panel:
    """The price rows a backtest uses, as numpy arrays, and its rebalance rows."""

    dates: pd.DatetimeIndex  # price rows used, 0..T
    columns: pd.Index  # the tickers as given
    labels: pd.Index  # the same, as a plain object index (fast for per-rebalance frames)
    P: np.ndarray  # prices after the gap policy (NaN before a listing, and after an end without ffill)
    R: np.ndarray  # simple returns, R[k] = P[k] / P[k-1] - 1, NaN where undefined; R[0] is NaN
    R0: np.ndarray  # R with NaN as 0 (for drift: only tickers without prices are NaN, and they are not held)
    real_cum: np.ndarray  # real_cum[k, i] = real prices of ticker i in rows < k
    schedule: np.ndarray  # rebalance rows
    window: int
    expanding: bool
    s0: int  # first return row of an expanding window
    filled: dict[object, int]  # ticker -> number of forward-filled prices (gaps="ffill")
    prepare_s: float

    def window_rows(self, t: int) -> tuple[int, int]:
        """Returns rows [a, t] the estimators see at rebalance row t."""
        a = t - self.window + 1
        if self.expanding:
            a = min(a, self.s0)
        return a, t

    def eligible(self, t: int) -> np.ndarray:
        """Tickers with real prices on every row of the window (rows a-1 .. t)."""
        a, _ = self.window_rows(t)
        return np.flatnonzero(self.real_cum[t + 1] - self.real_cum[a - 1] == t - a + 2)


def rebalance_rows(dates: pd.DatetimeIndex, rebalance: Rebalance, window: int, start: pd.Timestamp | None
                   ) -> np.ndarray:
    """The rebalance rows of ``dates``: those with ``window`` returns behind them and a date after
    them, on or after ``start``; every ``rebalance``-th one, or the last of each calendar period."""
    T = len(dates) - 1
    ok = np.arange(T + 1)
    ok = ok[(ok >= window) & (ok < T)]
    if start is not None:
        ok = ok[dates[ok] >= start]
    if isinstance(rebalance, int):
        return ok[::rebalance] if len(ok) else ok
    freq = FREQUENCIES[rebalance]
    if freq is None:
        return ok
    periods = dates.to_period(freq).asi8
    last_of_period = np.flatnonzero(np.diff(periods) != 0)  # row k is the last of its period when k+1 is not
    return np.intersect1d(ok, last_of_period)


def prepare(prices: object, rebalance: object, window: object, expanding: object, start: object, end: object,
            gaps: object) -> Panel:
    """The checked arguments as a :class:`Panel` (prices from the first row any window uses)."""
    t0 = time.perf_counter()
    frame = check_prices(prices)
    rule = check_rebalance(rebalance)
    n_window = check_window(window)
    if not isinstance(expanding, bool):
        raise InvalidValueError(f"expanding must be True or False, got {expanding!r}")
    if gaps not in GAP_POLICIES:
        raise UnknownOptionError("gaps policy", gaps, GAP_POLICIES)
    first, last = check_date("start", start), check_date("end", end)
    if first is not None and last is not None and first >= last:
        raise InvalidValueError(f"start {first.date()} must be before end {last.date()}")
    if last is not None:
        frame = frame.loc[:day_end(last)]  # an end date keeps its close, at whatever time it is stamped
        if len(frame) < 3:
            raise DataError(f"prices hold {len(frame)} date(s) up to end {last.date()}; need at least 3")
    dates = frame.index
    T = len(dates) - 1
    if n_window >= T:
        raise InvalidValueError(f"window {n_window} is longer than the data allows: the prices give {T} "
                                f"returns ({dates[1].date()} to {dates[-1].date()}), and a rebalance needs {n_window} "
                                "returns up to it and at least one date after it; use a shorter window or more history")
    schedule = rebalance_rows(dates, rule, n_window, first)
    if len(schedule) == 0:
        raise DataError(f"no rebalance date: none of the scheduled dates ({rule!r}) from "
                        f"{(first or dates[n_window]).date()} has {n_window} returns behind it and a date after "
                        f"it in the data ({dates[0].date()} to {dates[-1].date()})")
    f = int(schedule[0])
    if T - f < 2:
        raise DataError(f"the first rebalance {dates[f].date()} leaves {T - f} out-of-sample return(s) before "
                        f"{dates[-1].date()}; a backtest needs at least 2")
    s0 = 1 if first is None else max(1, int(dates.searchsorted(first, side="left")))
    a_first = min(f - n_window + 1, s0) if expanding else f - n_window + 1
    u0 = a_first - 1  # the first price row any estimation window uses
    P = frame.to_numpy(dtype=float)[u0:].copy()
    dates = dates[u0:]
    schedule = schedule - u0
    s0 = max(1, s0 - u0)
    real = ~np.isnan(P)
    filled = apply_gap_policy(P, real, dates, frame.columns, str(gaps))
    R = np.full_like(P, np.nan)
    with np.errstate(invalid="ignore"):
        R[1:] = P[1:] / P[:-1] - 1.0
    real_cum = np.zeros((len(P) + 1, P.shape[1]), dtype=np.int64)
    np.cumsum(real, axis=0, out=real_cum[1:])
    return Panel(dates=dates, columns=frame.columns, labels=pd.Index(list(frame.columns), dtype=object), P=P,
                 R=R, R0=np.nan_to_num(R, nan=0.0), real_cum=real_cum, schedule=schedule, window=n_window,
                 expanding=expanding, s0=s0, filled=filled, prepare_s=time.perf_counter() - t0)


def apply_gap_policy(P: np.ndarray, real: np.ndarray, dates: pd.DatetimeIndex, columns: pd.Index,
                     gaps: str) -> dict[object, int]:
    """Find internal gaps and early ends; raise, or forward-fill them in place (``real`` keeps
    saying which prices are real). The number of filled prices by ticker."""
    T = len(P) - 1
    has_any = real.any(axis=0)
    first = np.where(has_any, real.argmax(axis=0), T + 1)
    last = np.where(has_any, T - real[::-1].argmax(axis=0), -1)
    rows = np.arange(T + 1)[:, None]
    inside = (rows > first) & (rows < last)
    internal = inside & ~real
    problems = []
    for i in np.flatnonzero(internal.any(axis=0) | (has_any & (last < T))):
        if internal[:, i].any():
            k = int(internal[:, i].argmax())
            problems.append(f"{columns[i]} (no price from {dates[k].date()}, {int(internal[:, i].sum())} missing "
                            "between its first and last price)")
        else:
            problems.append(f"{columns[i]} (prices end {dates[last[i]].date()}, before the end "
                            f"{dates[T].date()})")
    if not problems:
        return {}
    if gaps == "raise":
        raise DataError(f"prices have gaps in {len(problems)} ticker(s) over the backtest's dates "
                        f"({dates[0].date()} to {dates[T].date()}): {'; '.join(problems[:10])}"
                        f"{' ...' if len(problems) > 10 else ''}. Pass gaps='ffill' to carry the last price forward "
                        "(zero return; the filled stretch never counts as real data), or drop these tickers")
    filled = {}
    for i in np.flatnonzero(internal.any(axis=0) | (has_any & (last < T))):
        col = P[:, i]
        idx = np.where(real[:, i], np.arange(T + 1), 0)
        np.maximum.accumulate(idx, out=idx)
        after = np.arange(T + 1) >= first[i]
        filled_i = after & ~real[:, i]
        col[after] = col[idx[after]]
        filled[columns[i]] = int(filled_i.sum())
    return filled
