"""The simulation loop: drift the weights between rebalances, decide at each rebalance (a solve on
its estimation window, or a baseline), charge the costs, and record every rebalance."""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qpo.backtesting._panel import Panel
from qpo.backtesting.strategy import Strategy
from qpo.errors import DataError, LookAheadError, QpoError

if TYPE_CHECKING:
    from qpo.optimization import Constraints

#: the per-ticker mappings of a :class:`qpo.Constraints`, cut down to each rebalance's universe
_FILTERED_MAPPINGS = ("min_weight", "max_weight", "transaction_costs", "market_impact", "benchmark_weights")
#: the columns of the rebalance table (one row per rebalance)
REBALANCE_COLUMNS = ["date", "n_assets", "turnover", "cost", "status", "solver", "solve_s", "message"]


def restrict(constraints: Constraints | None, tickers: list[object]) -> Constraints:
    """``constraints`` with per-ticker entries outside ``tickers`` left out."""
    from qpo.optimization import Constraints

    if constraints is None:
        return Constraints()
    keep = set(tickers)
    changes: dict[str, Any] = {}
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
            bounds = getattr(constraints, name)
            if bounds is not None:
                changes[name] = {g: x for g, x in dict(bounds).items() if str(g) in present} or None
    return replace(constraints, **changes) if changes else constraints


#: a rebalance's decision: (weights over all tickers or None when it failed, solver, message, n eligible)
Decision = tuple[np.ndarray | None, str | None, str, int]


class Decider:
    """The decision at a rebalance row: target weights over all tickers, or a failure."""

    def __init__(self, panel: Panel, strategy: Strategy, costs: float, solver: str | list[str] | None,
                 risk_free_rate: float, periods_per_year: int) -> None:
        self.panel, self.s, self.costs, self.solver = panel, strategy, costs, solver
        self.rf, self.ppy = risk_free_rate, periods_per_year
        self._constraints: dict[tuple[int, ...], Constraints] = {}
        base = strategy.constraints
        self.track_current = strategy.cost_aware or (base is not None and base.current_weights is not None)

    def constraints(self, idx: np.ndarray, w_held: np.ndarray) -> Constraints:
        key = tuple(idx.tolist())
        c = self._constraints.get(key)
        if c is None:
            c = self._constraints[key] = restrict(self.s.constraints, self.panel.labels[idx].tolist())
        if self.track_current:
            names = self.panel.labels[idx]
            cash = not np.any(w_held)
            changes: dict[str, Any] = {"current_weights": dict(zip(names, w_held[idx].tolist(), strict=True))}
            if self.s.cost_aware:
                changes["transaction_costs"] = self.costs
            if cash and c.max_turnover is not None:
                changes["max_turnover"] = None  # the first trade from cash is not turnover
            c = replace(c, **changes)
        return c

    def __call__(self, t: int, w_held: np.ndarray) -> Decision:
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
            res = optimize(problem, s.objective, confidence_level=None, solver=self.solver, **(s.options or {}))
        except LookAheadError:
            raise  # not a rebalance to sit out in cash: the backtest itself would trade on the future
        except QpoError as exc:
            return None, None, f"{type(exc).__name__}: {exc}", len(idx)
        w = np.zeros(n)
        w[idx] = res.weights.to_numpy()
        return w, res.solver, "", len(idx)


@dataclass
class Simulation:
    """The raw outcome of :func:`simulate`, from the first rebalance row ``first`` to the last row T."""

    first: int  # the first rebalance row f
    weights: np.ndarray  # end-of-day weights, rows f..T
    gross: np.ndarray  # returns before costs, rows f+1..T
    net: np.ndarray  # returns after costs, rows f+1..T
    records: list[dict[str, Any]]  # one per rebalance, keyed by REBALANCE_COLUMNS
    targets: np.ndarray  # the weights held after each rebalance (the drifted ones when it failed)


def simulate(panel: Panel, strategy: Strategy, costs: float, solver: str | list[str] | None, risk_free_rate: float,
             periods_per_year: int) -> Simulation:
    """Drift and rebalance over the panel; the raw arrays and rebalance records."""
    decide = Decider(panel, strategy, costs, solver, risk_free_rate, periods_per_year)
    T, n = panel.P.shape[0] - 1, panel.P.shape[1]
    rows = panel.schedule if strategy.objective != "buy_and_hold" else panel.schedule[:1]
    f = int(rows[0])
    W = np.empty((T - f + 1, n))  # end-of-day weights, rows f..T
    gross = np.empty(T - f)  # returns of rows f+1..T
    factor = np.ones(T - f)  # (1 - cost) charged in each day's net return
    records: list[dict[str, Any]] = []
    targets: list[np.ndarray] = []
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
            raise DataError(f"{strategy.name}: the portfolio's wealth falls to zero or below on "
                            f"{panel.dates[k].date()}; its weights are undefined from there (check the constraints' "
                            "leverage)")
        before = np.concatenate([[1.0], wealth[:-1]])
        gross[prev - f: t - f] = wealth / before - 1.0
        W[prev - f + 1: t - f + 1] = values / wealth[:, None]
        if t == T:  # never a rebalance (the schedule stops before the last date)
            break
        w = rebalance(t, W[t - f].copy())
        W[t - f] = w
        prev = t
    net = (1.0 + gross) * factor - 1.0
    return Simulation(first=f, weights=W, gross=gross, net=net, records=records, targets=np.array(targets))
