"""The walk-forward backtester's entry points: :func:`backtest` and :func:`compare_strategies`.

The jobs live in private modules: argument checks (``_inputs``), the prepared panel and its
rebalance schedule (``_panel``), the simulation loop (``_simulate``) and the result with its risk
report and timings (``_assemble``).
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import pandas as pd

from qpo.backtesting._assemble import assemble
from qpo.backtesting._inputs import (
    FREQUENCIES,
    GAP_POLICIES,
    check_benchmark,
    check_date,
    check_prices,
    check_run_args,
)
from qpo.backtesting._panel import Panel, prepare
from qpo.backtesting._simulate import simulate
from qpo.backtesting.result import BacktestComparison, BacktestResult
from qpo.backtesting.strategy import Strategy, as_strategy
from qpo.data.calendar import Frequency
from qpo.errors import InvalidValueError, UnknownOptionError

__all__ = ["FREQUENCIES", "GAP_POLICIES", "backtest", "compare_strategies"]


def _setup(prices: object, rebalance: object, window: object, expanding: object, costs: object, benchmark: object,
           start: object, end: object, risk_free_rate: object, periods_per_year: object, confidence: object,
           gaps: object, solver: str | list[str] | None) -> tuple[Panel, dict[str, Any]]:
    """The checked arguments: the prepared panel, and the keywords of :func:`_run`."""
    cost_rate, rf, frequency, conf = check_run_args(costs, risk_free_rate, periods_per_year, confidence,
                                                    check_prices(prices).index)
    ppy = frequency.periods_per_year
    panel = prepare(prices, rebalance, ppy if window is None else window, expanding, start, end, gaps)
    first, last = check_date("start", start), check_date("end", end)
    bench = check_benchmark(benchmark, panel.dates[int(panel.schedule[0]):])
    parameters = {"rebalance": rebalance, "window": panel.window, "expanding": expanding, "costs": cost_rate,
                  "start": None if first is None else str(first.date()),
                  "end": None if last is None else str(last.date()),
                  "risk_free_rate": rf, "periods_per_year": ppy, "frequency": frequency.describe(), "confidence": conf,
                  "gaps": gaps, "solver": solver,
                  "benchmark": None if bench is None else bench.name}
    run_kw = dict(costs=cost_rate, benchmark_returns=bench, risk_free_rate=rf, periods_per_year=frequency,
                  confidence=conf, solver=solver, parameters=parameters)
    return panel, run_kw


def _refuse_all_failed(strategy: Strategy, records: list[dict[str, Any]]) -> None:
    """A backtest none of whose rebalances could be solved held cash throughout: its zero returns
    would read as a result (CAGR 0 %, beside the other strategies), so it is an error of the first
    failure's kind, with its message."""
    from qpo import errors

    if not records or any(r["status"] != "failed" for r in records):
        return
    first = records[0]
    kind, sep, why = str(first["message"]).partition(": ")
    cls = getattr(errors, kind, None) if sep else None
    cls = cls if isinstance(cls, type) and issubclass(cls, errors.QpoError) else errors.DataError
    raise cls(f"every one of the {len(records)} rebalances of {strategy.name!r} failed, so it never invested (its "
              f"returns would be 0, not a result); the first, on {first['date'].date()}: {why if sep else first['message']}")


def _run(panel: Panel, strategy: Strategy, *, costs: float, benchmark_returns: pd.Series | None,
         risk_free_rate: float, periods_per_year: Frequency, confidence: float, solver: str | list[str] | None,
         parameters: dict[str, Any]) -> BacktestResult:
    t0 = time.perf_counter()
    sim = simulate(panel, strategy, costs, solver, risk_free_rate, periods_per_year.periods_per_year)
    _refuse_all_failed(strategy, sim.records)
    return assemble(panel, strategy, sim, benchmark_returns=benchmark_returns, risk_free_rate=risk_free_rate,
                    periods_per_year=periods_per_year, confidence=confidence, started=t0, parameters=parameters)


def backtest(prices: pd.DataFrame, strategy: Strategy | str, *, rebalance: str | int = "M", window: int | None = None,
             expanding: bool = False, costs: float = 0.0, benchmark: pd.Series | None = None,
             start: str | pd.Timestamp | None = None, end: str | pd.Timestamp | None = None,
             risk_free_rate: float = 0.0, periods_per_year: int | None = None, confidence: float = 0.95,
             gaps: str = "raise", solver: str | list[str] | None = None) -> BacktestResult:
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
        A whole number N (every N periods of the data, i.e. trading days for daily prices, the
        first at the first eligible date) or a calendar frequency: ``"D"``, ``"W"``, ``"M"``,
        ``"Q"``, ``"A"`` (the last date of each period in the data).
    window
        Returns (periods of the data) the estimators see at each rebalance, ending at the
        rebalance date (inclusive); None (default): one year of them, ``periods_per_year``
        (252 business days, 365 calendar days, 52 weeks, 12 months). ``expanding=True`` uses
        every return since ``start`` (the data's first when None) up to the rebalance date, and at
        least ``window``.
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
        ``periods_per_year`` None (default) reads it from the prices' dates
        (:func:`qpo.data.infer_frequency`; irregular dates are a :class:`qpo.DataError`); the
        result's ``parameters["frequency"]`` and its risk report's notes say which.
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


def compare_strategies(prices: pd.DataFrame,
                       strategies: Strategy | str | Iterable[Strategy | str] | Mapping[str, Strategy | str],
                       **backtest_kwargs: Any) -> BacktestComparison:
    """:func:`backtest` of several strategies on the same data, schedule and costs.

    ``strategies`` is a list of :class:`qpo.Strategy` objects or objective names (names must be
    unique: give ``Strategy(..., name=...)`` to run one objective twice), or a mapping
    name -> strategy. ``backtest_kwargs`` are :func:`backtest`'s keywords.
    """
    if isinstance(strategies, Mapping):
        items = [replace(as_strategy(s), name=str(k)) for k, s in strategies.items()]
    else:
        try:
            items = [as_strategy(s) for s in ([strategies] if isinstance(strategies, (str, Strategy)) else strategies)]
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


_BACKTEST_KEYWORDS: dict[str, Any] = {"rebalance": "M", "window": None, "expanding": False, "costs": 0.0, "benchmark": None,
                                      "start": None, "end": None, "risk_free_rate": 0.0, "periods_per_year": None,
                                      "confidence": 0.95, "gaps": "raise", "solver": None}
