"""From a simulation's arrays to a :class:`BacktestResult`: the dated series, the rebalance table,
the risk report of the net returns, the timings and the run's parameters."""
from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qpo.backtesting._panel import Panel
from qpo.backtesting._simulate import REBALANCE_COLUMNS, Simulation
from qpo.backtesting.result import BacktestResult
from qpo.backtesting.strategy import Strategy

if TYPE_CHECKING:
    from qpo.data import Frequency
    from qpo.risk import RiskReport


def risk_of(net: pd.Series, benchmark_returns: pd.Series | None, confidence: float, risk_free_rate: float,
            periods_per_year: Frequency) -> RiskReport:
    """The :class:`qpo.RiskReport` of a backtest's net returns."""
    from qpo.risk import risk_report

    return risk_report(None, net, benchmark=benchmark_returns, confidence=confidence, risk_free_rate=risk_free_rate,
                       periods_per_year=periods_per_year)


def assemble(panel: Panel, strategy: Strategy, sim: Simulation, *, benchmark_returns: pd.Series | None,
             risk_free_rate: float, periods_per_year: Frequency, confidence: float, started: float,
             parameters: dict[str, Any]) -> BacktestResult:
    """The :class:`BacktestResult` of ``strategy``'s simulation ``sim`` on ``panel``; ``started`` is
    the ``time.perf_counter()`` when the simulation began."""
    dates = panel.dates[sim.first:]
    net_s = pd.Series(sim.net, index=dates[1:], name=strategy.name)
    gross_s = pd.Series(sim.gross, index=dates[1:], name=strategy.name)
    equity = pd.Series(np.concatenate([[1.0], np.cumprod(1.0 + sim.net)]), index=dates, name=strategy.name)
    weights = pd.DataFrame(sim.weights, index=dates, columns=panel.columns)
    rebalances = pd.DataFrame.from_records(sim.records, columns=REBALANCE_COLUMNS)
    reb_dates = pd.DatetimeIndex(rebalances["date"], name="date")
    target_weights = pd.DataFrame(sim.targets, index=reb_dates, columns=panel.columns)
    turnover = pd.Series(rebalances["turnover"].to_numpy(), index=reb_dates, name="turnover")
    risk = risk_of(net_s, benchmark_returns, confidence, risk_free_rate, periods_per_year)
    solves = [r["solve_s"] for r in sim.records]
    simulate_s = time.perf_counter() - started
    timings = {"total_s": simulate_s + panel.prepare_s, "prepare_s": panel.prepare_s, "simulate_s": simulate_s,
               "n_solves": len(solves), "solve_median_s": statistics.median(solves),
               "solve_max_s": max(solves), "solve_total_s": float(sum(solves))}
    return BacktestResult(
        strategy=strategy, returns=net_s, gross_returns=gross_s, equity=equity, weights=weights,
        target_weights=target_weights, rebalances=rebalances, turnover=turnover,
        costs_paid=float(rebalances["cost"].sum()), benchmark_returns=benchmark_returns, risk=risk, timings=timings,
        parameters={**parameters, "strategy": strategy.describe(), "first_rebalance": str(dates[0].date()),
                    "last_date": str(dates[-1].date()), "forward_filled": dict(panel.filled)})
