"""The walk-forward backtester: :func:`backtest` and :func:`compare_strategies`."""
from __future__ import annotations

import numbers
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from qpo.backtesting.result import BacktestComparison, BacktestResult
from qpo.backtesting.strategy import Strategy, as_strategy
from qpo.errors import DataError, InvalidValueError, QpoError, UnknownOptionError
from qpo.optimization.engine import _number
from qpo.risk.metrics import _check_confidence

#: calendar rebalance frequencies: the last trading day of each period in the data
FREQUENCIES = {"D": None, "W": "W", "M": "M", "Q": "Q", "A": "Y"}
GAP_POLICIES = ("raise", "ffill")
_VALID_REBALANCE = [*FREQUENCIES, "<a whole number N of trading days>"]


# -- input checks ---------------------------------------------------------------------------------
def _check_prices(prices) -> pd.DataFrame:
    if not isinstance(prices, pd.DataFrame):
        raise DataError(f"prices must be a pandas DataFrame of prices (dates x tickers), got {type(prices).__name__}")
    if not isinstance(prices.index, pd.DatetimeIndex):
        raise DataError(f"prices must have a DatetimeIndex of dates as rows, got {type(prices.index).__name__}; "
                        "e.g. prices.index = pd.to_datetime(prices.index)")
    if prices.shape[1] == 0 or len(prices) < 3:
        raise DataError(f"prices hold {len(prices)} dates x {prices.shape[1]} tickers; a backtest needs tickers "
                        "and at least 3 dates")
    if prices.columns.has_duplicates:
        raise DataError(f"duplicate tickers in prices: {sorted(map(str, prices.columns[prices.columns.duplicated()]))}")
    if prices.index.has_duplicates:
        dup = prices.index[prices.index.duplicated()]
        raise DataError(f"prices have {len(dup)} duplicate date(s) (first {dup[0].date()}); keep one row per date")
    if not prices.index.is_monotonic_increasing:
        i = int(np.flatnonzero(np.diff(prices.index.asi8) < 0)[0])
        raise DataError(f"prices' dates are not sorted ({prices.index[i + 1].date()} follows "
                        f"{prices.index[i].date()}); sort them: prices.sort_index()")
    non_numeric = [c for c in prices.columns if not pd.api.types.is_numeric_dtype(prices[c])]
    if non_numeric:
        raise DataError(f"prices must be numbers; columns {non_numeric[:10]} are not")
    values = prices.to_numpy(dtype=float)
    bad = np.isinf(values) | (values <= 0)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        cols = prices.columns[bad.any(axis=0)].tolist()
        raise DataError(f"prices must be positive and finite; {int(bad.sum())} value(s) are not, in {cols[:10]} "
                        f"(first: {prices.columns[c]} = {values[r, c]!r} on {prices.index[r].date()}); "
                        "validate them first (qpo.validate_prices) or drop those tickers")
    return prices


def _timestamp(name, v):
    if v is None:
        return None
    try:
        ts = pd.Timestamp(v)
    except (ValueError, TypeError) as exc:
        raise InvalidValueError(f"{name} must be a date (e.g. '2015-01-01'), got {v!r}") from exc
    if ts is pd.NaT:
        raise InvalidValueError(f"{name} must be a date, got {v!r}")
    return ts


def _check_rebalance(rebalance):
    if isinstance(rebalance, bool):
        raise UnknownOptionError("rebalance frequency", rebalance, _VALID_REBALANCE)
    if isinstance(rebalance, numbers.Integral):
        if rebalance < 1:
            raise InvalidValueError(f"rebalance every N trading days needs N >= 1, got {rebalance}")
        return int(rebalance)
    if isinstance(rebalance, str) and rebalance in FREQUENCIES:
        return rebalance
    raise UnknownOptionError("rebalance frequency", rebalance, _VALID_REBALANCE)


# -- the prepared panel: everything that does not depend on the strategy ------------------------
@dataclass
class _Panel:
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
    filled: dict  # ticker -> number of forward-filled prices (gaps="ffill")
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


def _schedule(dates: pd.DatetimeIndex, rebalance, window: int, start) -> np.ndarray:
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


def _prepare(prices, rebalance, window, expanding, start, end, gaps) -> _Panel:
    t0 = time.perf_counter()
    prices = _check_prices(prices)
    rebalance = _check_rebalance(rebalance)
    if isinstance(window, bool) or not isinstance(window, numbers.Integral) or window < 2:
        raise InvalidValueError(f"window must be a whole number of daily returns >= 2, got {window!r}")
    window = int(window)
    if not isinstance(expanding, bool):
        raise InvalidValueError(f"expanding must be True or False, got {expanding!r}")
    if gaps not in GAP_POLICIES:
        raise UnknownOptionError("gaps policy", gaps, GAP_POLICIES)
    start, end = _timestamp("start", start), _timestamp("end", end)
    if start is not None and end is not None and start >= end:
        raise InvalidValueError(f"start {start.date()} must be before end {end.date()}")
    if end is not None:
        prices = prices.loc[:end]
        if len(prices) < 3:
            raise DataError(f"prices hold {len(prices)} date(s) up to end {end.date()}; need at least 3")
    dates = prices.index
    T = len(dates) - 1
    if window >= T:
        raise InvalidValueError(f"window {window} is longer than the data allows: the prices give {T} daily returns "
                                f"({dates[1].date()} to {dates[-1].date()}), and a rebalance needs {window} returns up "
                                "to it and at least one day after it; use a shorter window or more history")
    schedule = _schedule(dates, rebalance, window, start)
    if len(schedule) == 0:
        raise DataError(f"no rebalance date: none of the scheduled dates ({rebalance!r}) from "
                        f"{(start or dates[window]).date()} has {window} daily returns behind it and a day after it "
                        f"in the data ({dates[0].date()} to {dates[-1].date()})")
    f = int(schedule[0])
    if T - f < 2:
        raise DataError(f"the first rebalance {dates[f].date()} leaves {T - f} out-of-sample return(s) before "
                        f"{dates[-1].date()}; a backtest needs at least 2")
    s0 = 1 if start is None else max(1, int(dates.searchsorted(start, side="left")))
    a_first = min(f - window + 1, s0) if expanding else f - window + 1
    u0 = a_first - 1  # the first price row any estimation window uses
    P = prices.to_numpy(dtype=float)[u0:].copy()
    dates = dates[u0:]
    schedule = schedule - u0
    s0 = max(1, s0 - u0)
    real = ~np.isnan(P)
    filled = _apply_gap_policy(P, real, dates, prices.columns, gaps)
    R = np.full_like(P, np.nan)
    with np.errstate(invalid="ignore"):
        R[1:] = P[1:] / P[:-1] - 1.0
    real_cum = np.zeros((len(P) + 1, P.shape[1]), dtype=np.int64)
    np.cumsum(real, axis=0, out=real_cum[1:])
    return _Panel(dates=dates, columns=prices.columns, labels=pd.Index(list(prices.columns), dtype=object), P=P,
                  R=R, R0=np.nan_to_num(R, nan=0.0), real_cum=real_cum, schedule=schedule, window=window,
                  expanding=expanding, s0=s0, filled=filled, prepare_s=time.perf_counter() - t0)


def _apply_gap_policy(P: np.ndarray, real: np.ndarray, dates, columns, gaps) -> dict:
    """Find internal gaps and early ends; raise, or forward-fill them in place (``real`` keeps
    saying which prices are real)."""
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


# -- the simulation -------------------------------------------------------------------------------
_FILTERED_MAPPINGS = ("min_weight", "max_weight", "transaction_costs", "market_impact", "benchmark_weights")


def _restrict(constraints, tickers: list) -> object:
    """``constraints`` with per-ticker entries outside ``tickers`` left out."""
    from qpo.optimization import Constraints

    if constraints is None:
        return Constraints()
    keep = set(tickers)
    changes = {}
    for name in _FILTERED_MAPPINGS:
        v = getattr(constraints, name)
        if isinstance(v, (Mapping, pd.Series)):
            d = dict(v)
            if set(d) - keep:
                changes[name] = {k: x for k, x in d.items() if k in keep}
    if constraints.groups is not None:
        groups = {k: g for k, g in dict(constraints.groups).items() if k in keep}
        present = {str(g) for g in groups.values()}
        changes["groups"] = groups or None
        for name in ("group_min", "group_max"):
            v = getattr(constraints, name)
            if v is not None:
                changes[name] = {g: x for g, x in dict(v).items() if str(g) in present} or None
    return replace(constraints, **changes) if changes else constraints


class _Decider:
    """The decision at a rebalance row: target weights over all tickers, or a failure."""

    def __init__(self, panel: _Panel, strategy: Strategy, costs: float, solver, risk_free_rate, periods_per_year):
        self.panel, self.s, self.costs, self.solver = panel, strategy, costs, solver
        self.rf, self.ppy = risk_free_rate, periods_per_year
        self._constraints: dict[tuple, object] = {}
        base = strategy.constraints
        self.track_current = strategy.cost_aware or (base is not None and base.current_weights is not None)

    def constraints(self, idx: np.ndarray, w_held: np.ndarray):
        key = tuple(idx.tolist())
        c = self._constraints.get(key)
        if c is None:
            c = self._constraints[key] = _restrict(self.s.constraints, self.panel.labels[idx].tolist())
        if self.track_current:
            names = self.panel.labels[idx]
            cash = not np.any(w_held)
            changes = {"current_weights": dict(zip(names, w_held[idx].tolist()))}
            if self.s.cost_aware:
                changes["transaction_costs"] = self.costs
            if cash and c.max_turnover is not None:
                changes["max_turnover"] = None  # the first trade from cash is not turnover
            c = replace(c, **changes)
        return c

    def __call__(self, t: int, w_held: np.ndarray):
        """(weights or None, solver, message, n_assets)."""
        from qpo.optimization import PortfolioProblem, optimize

        p, s = self.panel, self.s
        idx = p.eligible(t)
        n = len(p.labels)
        if len(idx) == 0:
            a, _ = p.window_rows(t)
            return None, None, (f"no ticker has real prices over the whole estimation window "
                                f"{p.dates[max(a - 1, 0)].date()}..{p.dates[t].date()}"), 0
        if s.is_baseline:
            w = np.zeros(n)
            w[idx] = 1.0 / len(idx)
            return w, s.objective, "", len(idx)
        a, _ = p.window_rows(t)
        block = p.R[a:t + 1] if len(idx) == n else p.R[a:t + 1, idx]
        frame = pd.DataFrame(block, index=p.dates[a:t + 1], columns=p.labels[idx], copy=False)
        try:
            problem = PortfolioProblem.from_returns(frame, mean=s._mean_est, covariance=s._cov_est,
                                                    constraints=self.constraints(idx, w_held),
                                                    periods_per_year=self.ppy, risk_free_rate=self.rf)
            res = optimize(problem, s.objective, confidence_level=None, solver=self.solver, **s.options)
        except QpoError as exc:
            return None, None, f"{type(exc).__name__}: {exc}", len(idx)
        w = np.zeros(n)
        w[idx] = res.weights.to_numpy()
        return w, res.solver, "", len(idx)


def _simulate(panel: _Panel, strategy: Strategy, costs: float, solver, risk_free_rate: float,
              periods_per_year: int):
    """Drift and rebalance over the panel; the raw arrays and rebalance records."""
    decide = _Decider(panel, strategy, costs, solver, risk_free_rate, periods_per_year)
    T, n = panel.P.shape[0] - 1, panel.P.shape[1]
    rows = panel.schedule if strategy.objective != "buy_and_hold" else panel.schedule[:1]
    f = int(rows[0])
    W = np.empty((T - f + 1, n))  # end-of-day weights, rows f..T
    gross = np.empty(T - f)  # returns of rows f+1..T
    factor = np.ones(T - f)  # (1 - cost) charged in each day's net return
    records, targets = [], []
    w = np.zeros(n)

    def rebalance(t: int, w_held: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        w_new, solver_name, message, n_assets = decide(t, w_held)
        solve_s = time.perf_counter() - t0
        if w_new is None:
            w_new, status, turnover = w_held, "failed", 0.0
        else:
            status, turnover = "ok", float(np.abs(w_new - w_held).sum())
        cost = costs * turnover
        factor[max(t - f - 1, 0)] *= 1.0 - cost  # the first trade's cost goes into the first day's return
        records.append({"date": panel.dates[t], "n_assets": n_assets, "turnover": turnover, "cost": cost,
                        "status": status, "solver": solver_name, "solve_s": solve_s, "message": message})
        targets.append(w_new)
        return w_new

    w = rebalance(f, w)
    W[0] = w
    bounds = [*(int(r) for r in rows[1:]), T]
    prev = f
    for t in bounds:
        seg = slice(prev + 1, t + 1)
        growth = np.cumprod(1.0 + panel.R0[seg], axis=0)
        values = growth * w
        wealth = values.sum(axis=1) + (1.0 - w.sum())
        if (wealth <= 0).any():
            k = prev + 1 + int(np.flatnonzero(wealth <= 0)[0])
            raise DataError(f"{strategy.name}: the portfolio's wealth falls to zero or below on {panel.dates[k].date()}; "
                            "its weights are undefined from there (check the constraints' leverage)")
        before = np.concatenate([[1.0], wealth[:-1]])
        gross[prev - f: t - f] = wealth / before - 1.0
        W[prev - f + 1: t - f + 1] = values / wealth[:, None]
        if t == T:  # never a rebalance (the schedule stops before the last date)
            break
        w = rebalance(t, W[t - f].copy())
        W[t - f] = w
        prev = t
    net = (1.0 + gross) * factor - 1.0
    return f, W, gross, net, records, np.array(targets)


# -- public ---------------------------------------------------------------------------------------
def _check_benchmark(benchmark, dates: pd.DatetimeIndex):
    if benchmark is None:
        return None
    if isinstance(benchmark, pd.DataFrame) and benchmark.shape[1] == 1:
        benchmark = benchmark.iloc[:, 0]
    if not isinstance(benchmark, pd.Series):
        raise DataError(f"benchmark must be a pandas Series of prices (levels) with a DatetimeIndex, or None; got "
                        f"{type(benchmark).__name__}")
    if not isinstance(benchmark.index, pd.DatetimeIndex):
        raise DataError(f"benchmark must have a DatetimeIndex, got {type(benchmark.index).__name__}")
    if benchmark.index.has_duplicates:
        raise DataError(f"benchmark has duplicate dates (first {benchmark.index[benchmark.index.duplicated()][0].date()})")
    b = benchmark.reindex(dates).to_numpy(dtype=float)
    missing = np.isnan(b)
    if missing.any():
        raise DataError(f"benchmark has no price on {int(missing.sum())} of the backtest's {len(dates)} dates "
                        f"({dates[0].date()} to {dates[-1].date()}; first missing: {dates[missing.argmax()].date()}); "
                        "give it a price on every date of the backtest, e.g. "
                        "benchmark.reindex(prices.index).ffill() if you accept stale prices")
    if (b <= 0).any() or np.isinf(b).any():
        raise DataError("benchmark prices must be positive and finite")
    name = benchmark.name if benchmark.name is not None else "benchmark"
    return pd.Series(b[1:] / b[:-1] - 1.0, index=dates[1:], name=str(name))


def _check_run_args(costs, risk_free_rate, periods_per_year, confidence):
    _number("costs", costs, lo=0.0, hi=1.0, hi_open=True)
    _number("risk_free_rate", risk_free_rate)
    if isinstance(periods_per_year, bool) or not isinstance(periods_per_year, numbers.Integral) \
            or periods_per_year < 1:
        raise InvalidValueError(f"periods_per_year must be a whole number >= 1, got {periods_per_year!r}")
    _check_confidence(confidence)


def _run(panel: _Panel, strategy: Strategy, *, costs, benchmark_returns, risk_free_rate, periods_per_year,
         confidence, solver, parameters) -> BacktestResult:
    t0 = time.perf_counter()
    f, W, gross, net, records, targets = _simulate(panel, strategy, float(costs), solver, float(risk_free_rate),
                                                   int(periods_per_year))
    dates = panel.dates[f:]
    net_s = pd.Series(net, index=dates[1:], name=strategy.name)
    gross_s = pd.Series(gross, index=dates[1:], name=strategy.name)
    equity = pd.Series(np.concatenate([[1.0], np.cumprod(1.0 + net)]), index=dates, name=strategy.name)
    weights = pd.DataFrame(W, index=dates, columns=panel.columns)
    rebalances = pd.DataFrame.from_records(records, columns=["date", "n_assets", "turnover", "cost", "status",
                                                             "solver", "solve_s", "message"])
    reb_dates = pd.DatetimeIndex(rebalances["date"], name="date")
    target_weights = pd.DataFrame(targets, index=reb_dates, columns=panel.columns)
    turnover = pd.Series(rebalances["turnover"].to_numpy(), index=reb_dates, name="turnover")
    failures = [{"date": r["date"], "reason": r["message"]} for r in records if r["status"] == "failed"]
    risk = _risk(net_s, benchmark_returns, confidence, risk_free_rate, periods_per_year)
    solves = [r["solve_s"] for r in records]
    total_s = time.perf_counter() - t0
    timings = {"total_s": total_s + panel.prepare_s, "prepare_s": panel.prepare_s, "simulate_s": total_s,
               "n_solves": len(solves), "solve_median_s": statistics.median(solves),
               "solve_max_s": max(solves), "solve_total_s": float(sum(solves))}
    return BacktestResult(
        strategy=strategy, returns=net_s, gross_returns=gross_s, equity=equity, weights=weights,
        target_weights=target_weights, rebalances=rebalances, turnover=turnover,
        costs_paid=float(rebalances["cost"].sum()), failures=failures, benchmark_returns=benchmark_returns,
        risk=risk, timings=timings,
        parameters={**parameters, "strategy": strategy.describe(), "first_rebalance": str(dates[0].date()),
                    "last_date": str(dates[-1].date()), "forward_filled": dict(panel.filled)})


def _risk(net, benchmark_returns, confidence, risk_free_rate, periods_per_year):
    from qpo.risk import risk_report

    return risk_report(None, net, benchmark=benchmark_returns, confidence=confidence, risk_free_rate=risk_free_rate,
                       periods_per_year=periods_per_year)


def _setup(prices, rebalance, window, expanding, costs, benchmark, start, end, risk_free_rate, periods_per_year,
           confidence, gaps, solver):
    _check_run_args(costs, risk_free_rate, periods_per_year, confidence)
    panel = _prepare(prices, rebalance, window, expanding, start, end, gaps)
    f = int(panel.schedule[0])
    bench = _check_benchmark(benchmark, panel.dates[f:])
    parameters = {"rebalance": rebalance, "window": int(window), "expanding": expanding, "costs": float(costs),
                  "start": None if start is None else str(pd.Timestamp(start).date()),
                  "end": None if end is None else str(pd.Timestamp(end).date()),
                  "risk_free_rate": float(risk_free_rate), "periods_per_year": int(periods_per_year),
                  "confidence": float(confidence), "gaps": gaps, "solver": solver,
                  "benchmark": None if bench is None else bench.name}
    run_kw = dict(costs=costs, benchmark_returns=bench, risk_free_rate=risk_free_rate,
                  periods_per_year=periods_per_year, confidence=confidence, solver=solver, parameters=parameters)
    return panel, run_kw


def backtest(prices: pd.DataFrame, strategy, *, rebalance="M", window: int = 252, expanding: bool = False,
             costs: float = 0.0, benchmark: pd.Series | None = None, start=None, end=None,
             risk_free_rate: float = 0.0, periods_per_year: int = 252, confidence: float = 0.95,
             gaps: str = "raise", solver=None) -> BacktestResult:
    """Walk-forward backtest of ``strategy`` on a price panel.

    Parameters
    ----------
    prices
        Prices (levels), a DataFrame with a sorted, unique DatetimeIndex as rows and one column per
        ticker. Returns are simple, ``p_t / p_{t-1} - 1``.
    strategy
        A :class:`qpo.Strategy`, or an objective name (``"min_variance"``, ``"equal_weight"``, ...),
        which means ``Strategy(name)``.
    rebalance
        A whole number N (every N trading days, the first at the first eligible date) or a
        calendar frequency: ``"D"``, ``"W"``, ``"M"``, ``"Q"``, ``"A"`` (the last trading day of
        each period in the data).
    window
        Daily returns the estimators see at each rebalance, ending at the rebalance date
        (inclusive). ``expanding=True`` uses every return since ``start`` (the data's first when
        None) up to the rebalance date, and at least ``window``.
    costs
        Cost per unit of traded weight (0.001 = 10 bp), charged at the rebalance's close:
        ``wealth *= 1 - costs * turnover``, ``turnover = sum |w_new - w_drifted|`` (the first
        trade, from cash, counts ``sum |w|``).
    benchmark
        Benchmark prices (levels), a Series; it must have a price on every date from the first
        rebalance to the end (it is reindexed to them; a missing one is an error).
    start, end
        The first rebalance is the first scheduled date on or after ``start`` with ``window``
        returns behind it (the window may reach back before ``start``); prices after ``end`` are
        ignored.
    risk_free_rate, periods_per_year, confidence
        The annual risk-free rate and periods per year of each rebalance's problem (``max_sharpe``
        uses the rate) and of the risk report of the net returns (``confidence`` for VaR/CVaR).
    gaps
        ``"raise"`` or ``"ffill"``: see the gaps policy below.
    solver
        Passed to :func:`qpo.optimize` (a solver to try first, or a list of solvers).

    Timing (no look-ahead)
    ----------------------
    The decision at rebalance date t uses returns up to and including t (the close of t); the new
    weights trade at t's close and earn from t+1. A scheduled date on the last date of the data
    is skipped (nothing would be earned). Out-of-sample returns run from the day after the first
    rebalance to ``end``; ``equity`` is 1.0 at the first rebalance's close before costs, so the
    first trade's cost is charged in the first day's net return (later costs on their rebalance
    day's). Between rebalances the weights drift: ``r_p,t = w_{t-1}·r_t`` and
    ``w_t = w_{t-1} ⊙ (1 + r_t) / (1 + r_p,t)`` (any ``1 - sum w`` is cash earning 0).

    skfolio's ``cross_val_predict`` (default ``weight_drift=False``) instead holds each test
    period's weights constant (rebalanced daily, ``r_p,t = w·r_t``): with the same folds and
    estimators its weights equal qpo's, and its returns equal qpo's weights applied as constant
    weights, not qpo's returns (the tests show both).

    Failures
    --------
    A rebalance whose solve raises a :class:`qpo.QpoError` (infeasible, solver failure, ...)
    keeps the drifted weights (no trade, no cost), is recorded in ``result.failures`` and as
    ``status="failed"`` in ``result.rebalances``, and the backtest goes on. A failing first
    rebalance holds cash (zero return) until a solve succeeds.

    Gaps policy
    -----------
    Leading NaNs (a ticker not yet listed) are allowed: a ticker is eligible at a rebalance only
    if it has real prices over the whole estimation window (the price before its first return
    through the rebalance date), so the universe may change over time; with ``expanding=True`` a
    ticker listed after the window's start is therefore never eligible. Internal gaps (NaN
    between a ticker's first and last price in the backtest's rows) and a ticker whose prices end
    before ``end``: with ``gaps="raise"`` (default) a :class:`qpo.DataError` names the tickers
    and the first gap date; with ``gaps="ffill"`` the last price is carried forward (zero return;
    the price after the gap earns the whole move since the last real price), the filled stretch
    never counts as real data for eligibility, and a held ticker whose prices stop is carried at
    its last price until the next rebalance sells it.

    Efficiency
    ----------
    Each rebalance builds its problem from a numpy slice of the returns; the optimizer's model
    is compiled once per (objective, universe size, constraint structure) and re-solved by
    parameters (``cost_aware`` keeps the structure: the current weights are parameters).
    """
    strategy = as_strategy(strategy)
    panel, run_kw = _setup(prices, rebalance, window, expanding, costs, benchmark, start, end, risk_free_rate,
                           periods_per_year, confidence, gaps, solver)
    return _run(panel, strategy, **run_kw)


def compare_strategies(prices: pd.DataFrame, strategies, **backtest_kwargs) -> BacktestComparison:
    """:func:`backtest` of several strategies on the same data, schedule and costs.

    ``strategies`` is a list of :class:`qpo.Strategy` objects or objective names (names must be
    unique: give ``Strategy(..., name=...)`` to run one objective twice), or a mapping
    name -> strategy. ``backtest_kwargs`` are :func:`backtest`'s keywords.
    """
    if isinstance(strategies, (str, Strategy)):
        strategies = [strategies]
    if isinstance(strategies, Mapping):
        items = [replace(as_strategy(s), name=str(k)) for k, s in strategies.items()]
    else:
        try:
            items = [as_strategy(s) for s in strategies]
        except TypeError as exc:
            raise InvalidValueError("strategies must be a list of qpo.Strategy objects or names, or a mapping "
                                    "name -> strategy") from exc
    if not items:
        raise InvalidValueError("compare_strategies needs at least one strategy")
    names = [s.name for s in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InvalidValueError(f"strategy names must be unique; {dup} appear more than once: give each a name, "
                                "e.g. Strategy('min_variance', name='min_variance_lw', covariance='ledoit_wolf')")
    unknown = sorted(set(backtest_kwargs) - set(_BACKTEST_KEYWORDS))
    if unknown:
        raise UnknownOptionError("backtest keyword", unknown[0], _BACKTEST_KEYWORDS)
    kw = {**_BACKTEST_KEYWORDS, **backtest_kwargs}
    panel, run_kw = _setup(prices, **kw)
    results = {s.name: _run(panel, s, **run_kw) for s in items}
    return BacktestComparison(results=results, benchmark_returns=run_kw["benchmark_returns"],
                              parameters=dict(run_kw["parameters"]))


_BACKTEST_KEYWORDS = {"rebalance": "M", "window": 252, "expanding": False, "costs": 0.0, "benchmark": None,
                      "start": None, "end": None, "risk_free_rate": 0.0, "periods_per_year": 252,
                      "confidence": 0.95, "gaps": "raise", "solver": None}
